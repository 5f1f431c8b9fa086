import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset, DataLoader

torch.manual_seed(0)
N, C, T = 512, 3, 64
t = torch.linspace(0, 1, T)
freqs = torch.randint(0, 3, (N,))
X = torch.sin(2 * torch.pi * (freqs.float() + 1).view(-1, 1, 1) * 3 * t) + 0.3 * torch.randn(N, C, T)
y = freqs
loader = DataLoader(TensorDataset(X[:400], y[:400]), batch_size=16, shuffle=True)
val = (X[400:], y[400:])

class ConvGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(C, 16, kernel_size=5, padding=2), nn.BatchNorm1d(16), nn.GELU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, kernel_size=3, padding=1, dilation=1), nn.BatchNorm1d(32), nn.GELU(), nn.MaxPool1d(kernel_size=2, stride=2),
            nn.Dropout(0.2),
        )
        self.gru = nn.GRU(32, 32, num_layers=2, batch_first=True, dropout=0.1)
        self.head = nn.Linear(32, 3)
    def forward(self, x):
        f = self.features(x)            # (B, 32, T/4)
        f = f.permute(0, 2, 1)          # (B, T/4, 32)
        out, h_n = self.gru(f)
        return self.head(out[:, -1, :])

model = ConvGRU()
EPOCHS, ACCUM = 4, 2
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
steps_per_epoch = len(loader) // ACCUM
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, epochs=EPOCHS, steps_per_epoch=steps_per_epoch)
crit = nn.CrossEntropyLoss(label_smoothing=0.05)
for epoch in range(EPOCHS):
    model.train()
    opt.zero_grad()
    tot = 0.0
    for i, (xb, yb) in enumerate(loader):
        loss = crit(model(xb), yb) / ACCUM
        loss.backward()
        tot += loss.item()
        if (i + 1) % ACCUM == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    model.eval()
    with torch.inference_mode():
        logits = model(val[0])
        acc = (logits.argmax(-1) == val[1]).float().mean()
        vloss = F.cross_entropy(logits, val[1])
    print(f"epoch {epoch} train {tot / (len(loader) / ACCUM):.4f} val {vloss:.4f} acc {acc:.3f} lr {sched.get_last_lr()[0]:.2e} mom {opt.param_groups[0]['betas'][0]:.3f}")
