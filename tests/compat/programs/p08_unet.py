import os, tempfile
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)

def double_conv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                         nn.Conv2d(o, o, 3, padding=1), nn.ReLU(inplace=True))

class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = double_conv(1, 8)
        self.down2 = double_conv(8, 16)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, kernel_size=2, stride=2)
        self.conv_up2 = double_conv(32, 16)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.reduce1 = nn.Conv2d(16, 8, 1)
        self.conv_up1 = double_conv(16, 8)
        self.out = nn.Conv2d(8, 1, 1)
        self.act = nn.Sigmoid()
    def forward(self, x):
        c1 = self.down1(x)
        c2 = self.down2(self.pool(c1))
        b = self.bottleneck(self.pool(c2))
        u2 = self.conv_up2(torch.cat([self.up2(b), c2], dim=1))
        u1 = self.reduce1(self.up1(u2))
        u1 = self.conv_up1(torch.cat((u1, c1), 1))
        return self.act(self.out(u1))

def blobs(n, s=16):
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    cx, cy = torch.randint(3, s - 3, (n, 1, 1)), torch.randint(3, s - 3, (n, 1, 1))
    mask = (((xx - cx) ** 2 + (yy - cy) ** 2) < 9).float().unsqueeze(1)
    noisy = (mask + 0.4 * torch.randn_like(mask)).clamp(0, 1)
    return noisy, mask

model = TinyUNet()
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
bce = nn.BCELoss()
x, m = blobs(64)
for step in range(60):
    opt.zero_grad()
    pred = model(x)
    loss = bce(pred, m)
    loss.backward()
    opt.step()
    if step % 15 == 0:
        print(f"step {step} bce {loss.item():.4f}")
# interpolate check & dice
small = F.interpolate(pred, size=(8, 8), mode="nearest")
big = F.interpolate(pred, scale_factor=2, mode="bilinear", align_corners=True)
dice = (2 * (pred > 0.5).float().mul(m).sum() / ((pred > 0.5).float().sum() + m.sum())).item()
print("interp", tuple(small.shape), tuple(big.shape), f"dice {dice:.3f}")

path = os.path.join(tempfile.mkdtemp(), "unet.pth")
torch.save(model.state_dict(), path)
class TinyUNetV2(TinyUNet):
    def __init__(self):
        super().__init__()
        self.aux = nn.Conv2d(8, 2, 1)   # new head, not in checkpoint
state = torch.load(path)
m2 = TinyUNetV2()
result = m2.load_state_dict(state, strict=False)
print("missing", result.missing_keys, "unexpected", result.unexpected_keys)
m2.eval(); model.eval()
with torch.no_grad():
    print("same output", torch.allclose(m2(x[:4]), model(x[:4]), atol=1e-6))
del state["out.bias"]
state["extra.weight"] = torch.zeros(1)
r = TinyUNet().load_state_dict(state, strict=False)
print(r.missing_keys, r.unexpected_keys)
try:
    TinyUNet().load_state_dict(state)
except RuntimeError as e:
    print("strict error:", str(e).splitlines()[0][:60])
