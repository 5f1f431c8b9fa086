import os, random, tempfile, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

def seed_everything(seed=0):
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
seed_everything(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
use_amp = device.type == "cuda"
print(f"Using device: {device}, amp={use_amp}")

class MLP(nn.Module):
    def __init__(self, d_in=20, hidden=(64, 32), n_out=3, p=0.1):
        super().__init__()
        layers, prev = [], d_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.LayerNorm(h), nn.SiLU(), nn.Dropout(p)]
            prev = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_out)
    def forward(self, x):
        return self.head(self.body(x))

model = MLP().to(device)
print(model)
n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"Trainable parameters: {n_params:,}")
if hasattr(torch, "compile") and device.type == "cuda":
    model = torch.compile(model)
X = torch.randn(1024, 20); W = torch.randn(20, 3)
Y = (X @ W).argmax(dim=1)
X, Y = X.to(device, non_blocking=True), Y.to(device)
opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

@torch.no_grad()
def evaluate(m, x, y):
    m.eval()
    logits = m(x)
    return (logits.argmax(1) == y).float().mean().item(), F.softmax(logits, dim=-1)

t0 = time.time()
hist = []
for epoch in range(8):
    model.train()
    perm = torch.randperm(X.shape[0], device=device)
    for i in range(0, X.shape[0], 128):
        idx = perm[i:i + 128]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            out = model(X[idx])
            loss = F.cross_entropy(out, Y[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
    acc, probs = evaluate(model, X, Y)
    hist.append(loss.detach().cpu())
    print(f"[{epoch + 1}/8] loss={loss:.4f} acc={acc:.3f} probs[0]={probs[0]} elapsed={time.time() - t0:.1f}s")
arr = probs.detach().cpu().numpy()
print(type(arr).__name__, arr.shape, arr.dtype, f"{arr.sum(1).mean():.4f}")
print("loss history", torch.stack(hist))
path = os.path.join(tempfile.mkdtemp(), "tensors.pt")
torch.save([t.clone() for t in hist] + [torch.arange(3)], path)
back = torch.load(path, weights_only=True)
print(len(back), back[-1], all(torch.equal(a, b) for a, b in zip(back, hist)))
print(f"weight stats: mean={model.head.weight.mean():.4f} std={model.head.weight.std().item():.4f}")
print("tensor repr:", model.head.bias.data, repr(torch.tensor([1.5, 2.0])))
print(f"{'params':>10}: {n_params}", torch.get_default_dtype(), X.dtype, Y.dtype, X.device)
