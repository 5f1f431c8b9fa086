import os, tempfile
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset, DataLoader, random_split

torch.manual_seed(0)
rng = np.random.default_rng(0)

class TabularDataset(Dataset):
    def __init__(self, n=600):
        self.X = rng.normal(size=(n, 8)).astype(np.float32)
        w = np.arange(1, 9, dtype=np.float32) / 8
        self.y = (self.X @ w + 0.5 * np.sin(self.X[:, 0]) + 0.05 * rng.normal(size=n)).astype(np.float32)
    def __len__(self):
        return len(self.X)
    def __getitem__(self, idx):
        return {"features": torch.from_numpy(self.X[idx]), "target": torch.tensor(self.y[idx])}

ds = TabularDataset()
train_ds, val_ds = random_split(ds, [500, 100], generator=torch.Generator().manual_seed(42))
train_loader = DataLoader(train_ds, batch_size=32, shuffle=True, num_workers=2, drop_last=True)
val_loader = DataLoader(val_ds, batch_size=64, shuffle=False, num_workers=2)

def build():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

model = build()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=2)
criterion = nn.MSELoss()
ckpt = os.path.join(tempfile.mkdtemp(), "best.pt")

def evaluate(m):
    m.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for batch in val_loader:
            pred = m(batch["features"]).squeeze(-1)
            tot += criterion(pred, batch["target"]).item() * len(batch["target"])
            n += len(batch["target"])
    return tot / n

best, bad, patience = float("inf"), 0, 4
for epoch in range(30):
    model.train()
    for batch in train_loader:
        x, y = batch["features"], batch["target"]
        optimizer.zero_grad()
        loss = criterion(model(x).squeeze(-1), y)
        loss.backward()
        optimizer.step()
    val = evaluate(model)
    scheduler.step(val)
    print(f"epoch {epoch:2d} train {loss.item():.4f} val {val:.4f} lr {optimizer.param_groups[0]['lr']:.5f}")
    if val < best - 1e-4:
        best, bad = val, 0
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "best": best}, ckpt)
    else:
        bad += 1
        if bad >= patience:
            print("early stopping")
            break

checkpoint = torch.load(ckpt, map_location="cpu")
model2 = build()
model2.load_state_dict(checkpoint["model"])
opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2, weight_decay=1e-2)
opt2.load_state_dict(checkpoint["optimizer"])
start = checkpoint["epoch"] + 1
print(f"resumed at epoch {start}, best {checkpoint['best']:.4f}, reload val {evaluate(model2):.4f}")
assert abs(evaluate(model2) - checkpoint["best"]) < 1e-5
model2.train()
for batch in train_loader:
    opt2.zero_grad()
    loss = criterion(model2(batch["features"]).squeeze(-1), batch["target"])
    loss.backward()
    opt2.step()
print(f"after resume val {evaluate(model2):.4f} step {opt2.state_dict()['state'][0]['step']}")
