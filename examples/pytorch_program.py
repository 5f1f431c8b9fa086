"""A PyTorch training program that runs on gradflow by renaming the import.

A small CNN learns the 8x8 handwritten digits shipped with gradflow: a Dataset subclass and a
DataLoader, an nn.Module with Conv2d, BatchNorm2d, Dropout and Linear, Adam with a StepLR
schedule, train and eval loops, and the state dict saved and loaded back. Everything below
the marked block is PyTorch code, unchanged; run it with ``--torch`` to use PyTorch itself
(if installed) and compare.

    python examples/pytorch_program.py               # gradflow
    python examples/pytorch_program.py --torch       # the same program on PyTorch
    python examples/pytorch_program.py --epochs 5 --checkpoint digits_cnn.pt
"""

import argparse
import os
import sys
import tempfile
from importlib import resources

import numpy

# ---- the only gradflow-specific part: the imports, and where the data comes from ---------
if "--torch" in sys.argv:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.utils.data import DataLoader, Dataset
else:
    import gradflow as torch
    import gradflow.nn as nn
    import gradflow.nn.functional as F
    import gradflow.optim as optim
    from gradflow.utils.data import DataLoader, Dataset


def load_digits_arrays(train):
    """The digits as NumPy arrays: images float32 (N, 1, 8, 8) in [0, 1], labels int64."""
    path = resources.files("gradflow.data").joinpath("digits.npz")
    with path.open("rb") as file, numpy.load(file) as npz:
        pixels, labels, is_test = npz["pixels"], npz["labels"], npz["is_test"]
    keep = ~is_test if train else is_test
    images = (pixels[keep].reshape(-1, 1, 8, 8) / 16.0).astype(numpy.float32)
    return images, labels[keep].astype(numpy.int64)


# ---- from here on: PyTorch code --------------------------------------------------------------
class DigitsDataset(Dataset):
    def __init__(self, train=True):
        images, labels = load_digits_arrays(train)
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return self.images[idx], self.labels[idx]


class DigitsCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))  # 16 x 4 x 4
        x = self.pool(F.relu(self.bn2(self.conv2(x))))  # 32 x 2 x 2
        x = torch.flatten(x, 1)
        return self.fc(self.dropout(x))


def train_one_epoch(model, loader, optimizer, device):
    model.train()
    total_loss, total = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * images.size(0)
        total += images.size(0)
    return total_loss / total


def evaluate(model, loader, device):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            _, predicted = torch.max(outputs, 1)
            correct += (predicted == labels).sum().item()
            total += labels.size(0)
    return correct / total


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train a small CNN on the 8x8 digits.")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch instead")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="default: a temporary file")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_loader = DataLoader(DigitsDataset(train=True), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(DigitsDataset(train=False), batch_size=256)

    model = DigitsCNN().to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{torch.__name__} on {device}: {n_params} parameters")

    for epoch in range(1, args.epochs + 1):
        loss = train_one_epoch(model, train_loader, optimizer, device)
        scheduler.step()
        accuracy = evaluate(model, test_loader, device)
        lr = scheduler.get_last_lr()[0]
        print(f"epoch {epoch}  loss {loss:.4f}  test accuracy {100 * accuracy:.1f}%  lr {lr:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or os.path.join(tmp, "digits_cnn.pt")
        torch.save(model.state_dict(), path)
        restored = DigitsCNN().to(device)
        restored.load_state_dict(torch.load(path, map_location=device))
        restored_accuracy = evaluate(restored, test_loader, device)
    print(f"reloaded from {os.path.basename(path)}: test accuracy {100 * restored_accuracy:.1f}%")
    return accuracy


if __name__ == "__main__":
    main()
