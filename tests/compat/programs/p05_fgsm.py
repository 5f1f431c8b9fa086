import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, 2)
    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)

def data(n):
    y = torch.randint(0, 2, (n,))
    x = torch.rand(n, 1, 14, 14) * 0.3
    x[y == 1, :, :, 7:] += 0.5   # class 1: right half brighter
    x[y == 0, :, :, :7] += 0.5
    return x.clamp(0, 1), y

model = Net()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x, y = data(256)
for it in range(40):
    opt.zero_grad()
    loss = F.nll_loss(model(x), y)
    loss.backward()
    opt.step()
print(f"train loss {loss.item():.4f}")

def fgsm_attack(image, epsilon, data_grad):
    sign_data_grad = data_grad.sign()
    perturbed = image + epsilon * sign_data_grad
    return torch.clamp(perturbed, 0, 1)

model.eval()
xt, yt = data(200)
for epsilon in [0.0, 0.1, 0.3]:
    data_ = xt.clone().detach()
    data_.requires_grad = True
    output = model(data_)
    loss = F.nll_loss(output, yt)
    model.zero_grad()
    loss.backward()
    adv = fgsm_attack(data_, epsilon, data_.grad.data)
    with torch.no_grad():
        final_pred = model(adv).max(1, keepdim=True)[1]
    acc = final_pred.eq(yt.view_as(final_pred)).sum().item() / len(yt)
    print(f"Epsilon: {epsilon}\tTest Accuracy = {acc:.3f}")

# saliency map with autograd.grad
img = xt[:4].clone()
img.requires_grad_()
scores = model(img)
top = scores.gather(1, scores.argmax(dim=1, keepdim=True)).sum()
(grad,) = torch.autograd.grad(top, img)
saliency, _ = grad.abs().max(dim=1)
print("saliency", tuple(saliency.shape), f"{saliency.mean().item():.5f}", img.grad is None)

# PGD, a few steps, with projection
x_adv = xt[:16].clone().detach() + 0.01 * torch.randn_like(xt[:16])
for _ in range(5):
    x_adv.requires_grad_(True)
    l = F.nll_loss(model(x_adv), yt[:16])
    g, = torch.autograd.grad(l, [x_adv])
    x_adv = x_adv.detach() + 0.05 * g.sign()
    x_adv = torch.min(torch.max(x_adv, xt[:16] - 0.2), xt[:16] + 0.2).clamp(0.0, 1.0)
print("pgd acc", (model(x_adv).argmax(1) == yt[:16]).float().mean().item(), "linf", (x_adv - xt[:16]).abs().max().item())
