"""Corpus snippets: training loops, optimizers, schedulers, data loading, checkpoints."""

import copy
import os
import tempfile

from compat_corpus import snippet
from compat_nn import fill_deterministic


def regression_data(torch):
    x = torch.linspace(-1, 1, 32).reshape(16, 2)
    y = (x @ torch.tensor([[1.5], [-2.0]]) + 0.3).squeeze(1)
    return x, y


def _loop(torch, optimizer_factory, steps=10, scheduler_factory=None):
    nn = torch.nn
    x, y = regression_data(torch)
    model = fill_deterministic(torch, nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)))
    optimizer = optimizer_factory(model.parameters())
    scheduler = scheduler_factory(optimizer) if scheduler_factory else None
    criterion = nn.MSELoss()
    losses, lrs = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(model(x).squeeze(-1), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        lrs.append(optimizer.param_groups[0]["lr"])
    return losses, lrs, model


@snippet(rtol=1e-4)
def sgd_training_loop(torch):
    losses, _, model = _loop(torch, lambda p: torch.optim.SGD(p, lr=0.1))
    return [losses, model[0].weight]


@snippet(rtol=1e-4)
def sgd_momentum_nesterov_weight_decay(torch):
    losses, _, _ = _loop(
        torch,
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    )
    return losses


@snippet(rtol=1e-4)
def adam_training_loop(torch):
    losses, _, model = _loop(torch, lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.99)))
    return [losses, model[2].bias]


@snippet(rtol=1e-4)
def adamw_amsgrad(torch):
    losses, _, _ = _loop(
        torch, lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.01, amsgrad=True)
    )
    return losses


@snippet(rtol=1e-4)
def rmsprop_and_adagrad(torch):
    rms, _, _ = _loop(torch, lambda p: torch.optim.RMSprop(p, lr=1e-2))
    ada, _, _ = _loop(torch, lambda p: torch.optim.Adagrad(p, lr=1e-1))
    return [rms, ada]


@snippet
def step_lr_schedule(torch):
    sched = torch.optim.lr_scheduler
    _, lrs, _ = _loop(
        torch,
        lambda p: torch.optim.SGD(p, lr=0.1),
        steps=7,
        scheduler_factory=lambda o: sched.StepLR(o, step_size=3, gamma=0.5),
    )
    return lrs


@snippet
def multistep_exponential_lambda(torch):
    sched = torch.optim.lr_scheduler
    results = []
    for factory in (
        lambda o: sched.MultiStepLR(o, milestones=[2, 4], gamma=0.1),
        lambda o: sched.ExponentialLR(o, gamma=0.9),
        lambda o: sched.LambdaLR(o, lr_lambda=lambda epoch: 0.95**epoch),
    ):
        _, lrs, _ = _loop(torch, lambda p: torch.optim.SGD(p, lr=0.1), 5, factory)
        results.append(lrs)
    return results


@snippet
def cosine_and_get_last_lr(torch):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=1e-5)
    lrs = []
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


@snippet
def one_cycle_schedule(torch):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    lrs = []
    for _ in range(9):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@snippet
def warmup_with_sequential_lr(torch):
    sched = torch.optim.lr_scheduler
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    warmup = sched.LinearLR(optimizer, start_factor=0.1, total_iters=3)
    decay = sched.CosineAnnealingLR(optimizer, T_max=5)
    scheduler = sched.SequentialLR(optimizer, schedulers=[warmup, decay], milestones=[3])
    lrs = []
    for _ in range(8):
        optimizer.step()
        scheduler.step()
        lrs.append(round(optimizer.param_groups[0]["lr"], 6))
    return lrs


@snippet
def reduce_lr_on_plateau(torch):
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                           patience=1)  # fmt: skip
    lrs = []
    for val_loss in [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7]:
        scheduler.step(val_loss)
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@snippet
def manual_lr_change_and_param_groups(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 1e-3}],
        lr=1e-2,
        momentum=0.9,
    )
    for group in optimizer.param_groups:
        group["lr"] *= 0.5
    optimizer.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 5.0})
    return [[g["lr"] for g in optimizer.param_groups], optimizer.param_groups[1]["momentum"],
            len(optimizer.param_groups)]  # fmt: skip


@snippet
def tensor_dataset_and_loader(torch):
    DataLoader, TensorDataset = torch.utils.data.DataLoader, torch.utils.data.TensorDataset

    x = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    dataset = TensorDataset(x, y)
    loader = DataLoader(dataset, batch_size=4, shuffle=False)
    batches = [(xb.shape, yb.tolist()) for xb, yb in loader]
    return [len(dataset), dataset[3], len(loader), batches,
            len(DataLoader(dataset, batch_size=4, drop_last=True))]  # fmt: skip


@snippet
def shuffled_loader_covers_everything(torch):
    DataLoader, TensorDataset = torch.utils.data.DataLoader, torch.utils.data.TensorDataset

    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.arange(10)), batch_size=3, shuffle=True)
    seen = sorted(v for (batch,) in loader for v in batch.tolist())
    g = torch.Generator()
    g.manual_seed(0)
    seeded = DataLoader(TensorDataset(torch.arange(10)), batch_size=5, shuffle=True, generator=g)
    return [seen, [b[0].shape for b in seeded]]


@snippet
def dataset_subclass_and_collate(torch):
    DataLoader, Dataset = torch.utils.data.DataLoader, torch.utils.data.Dataset

    class Squares(Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, idx):
            x = torch.tensor([float(idx)])
            return x, x**2

    def collate(batch):
        xs, ys = zip(*batch)
        return torch.stack(xs), torch.stack(ys)

    default = [(x.shape, y.sum().item()) for x, y in DataLoader(Squares(5), batch_size=2)]
    custom = next(iter(DataLoader(Squares(5), batch_size=5, collate_fn=collate)))
    return [default, custom]


@snippet
def dict_samples_are_collated(torch):
    DataLoader, Dataset = torch.utils.data.DataLoader, torch.utils.data.Dataset

    class Records(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": torch.full((2,), float(i)), "label": i, "name": f"r{i}"}

    batch = next(iter(DataLoader(Records(), batch_size=4)))
    return [batch["x"], batch["label"], batch["name"]]


@snippet
def random_split_lengths(torch):
    data = torch.utils.data
    Subset, TensorDataset, random_split = data.Subset, data.TensorDataset, data.random_split

    dataset = TensorDataset(torch.arange(100))
    train, val = random_split(dataset, [80, 20], generator=torch.Generator().manual_seed(42))
    a, b, c = random_split(dataset, [0.5, 0.3, 0.2])
    first = Subset(dataset, range(10))
    union = sorted(int(x[0]) for part in (train, val) for x in part)
    return [len(train), len(val), [len(a), len(b), len(c)], len(first), union == list(range(100))]


@snippet
def state_dict_file_round_trip(torch):
    nn = torch.nn
    model = fill_deterministic(torch, nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pth")
        torch.save(model.state_dict(), path)
        restored = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        restored.load_state_dict(torch.load(path, map_location="cpu"))
    restored.eval()
    x = torch.ones(2, 3)
    with torch.no_grad():
        return [restored(x), torch.equal(model(x), restored(x))]


@snippet(rtol=1e-4)
def checkpoint_resume(torch):
    nn = torch.nn
    x, y = regression_data(torch)

    def build():
        model = fill_deterministic(torch, nn.Linear(2, 1))
        return model, torch.optim.Adam(model.parameters(), lr=0.05)

    def train(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x).squeeze(1), y)
            loss.backward()
            optimizer.step()
        return loss.item()

    model, optimizer = build()
    train(model, optimizer, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt.pt")
        torch.save({"epoch": 3, "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": 0.5}, path)  # fmt: skip
        checkpoint = torch.load(path, weights_only=False)
    model2, optimizer2 = build()
    model2.load_state_dict(checkpoint["model_state_dict"])
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    return [checkpoint["epoch"], train(model, optimizer, 3), train(model2, optimizer2, 3)]


@snippet
def best_model_deepcopy(torch):
    nn = torch.nn
    model = fill_deterministic(torch, nn.Linear(2, 1))
    best_state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model.weight.add_(1.0)
    changed = model.weight.clone()
    model.load_state_dict(best_state)
    clone = copy.deepcopy(model)
    return [changed, model.weight, clone.weight, clone is not model]


@snippet(rtol=1e-4)
def evaluation_loop(torch):
    nn = torch.nn
    x = torch.linspace(-1, 1, 40).reshape(20, 2)
    labels = (x.sum(dim=1) > 0).long()
    model = fill_deterministic(torch, nn.Linear(2, 2))
    model.eval()
    correct, total, running = 0, 0, 0.0
    with torch.no_grad():
        for i in range(0, 20, 5):
            xb, yb = x[i : i + 5], labels[i : i + 5]
            outputs = model(xb)
            running += nn.functional.cross_entropy(outputs, yb).item() * xb.size(0)
            _, predicted = outputs.max(1)
            total += yb.size(0)
            correct += predicted.eq(yb).sum().item()
    return [correct, total, f"{100.0 * correct / total:.2f}", running / total]


@snippet(rtol=1e-4)
def gradient_accumulation(torch):
    nn = torch.nn
    x, y = regression_data(torch)
    model = fill_deterministic(torch, nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    for i in range(4):
        xb, yb = x[i * 4 : (i + 1) * 4], y[i * 4 : (i + 1) * 4]
        loss = nn.functional.mse_loss(model(xb).squeeze(1), yb)
        (loss / 4).backward()
    grad = model.weight.grad.clone()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return [grad, model.weight, model.weight.grad is None]


@snippet(rtol=1e-4)
def classifier_with_batchnorm_and_dropout(torch):
    nn = torch.nn
    F = torch.nn.functional

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 8)
            self.bn = nn.BatchNorm1d(8)
            self.drop = nn.Dropout(0.0)
            self.fc2 = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(self.drop(F.relu(self.bn(self.fc1(x)))))

    x = torch.linspace(-1, 1, 32).reshape(16, 2)
    y = (x[:, 0] > x[:, 1]).long()
    model = fill_deterministic(torch, Classifier())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(5):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return [loss.item(), logits, model.bn.running_mean, model.bn.num_batches_tracked]


@snippet
def optimizer_state_dict_layout(torch):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    sd = optimizer.state_dict()
    return [sorted(sd.keys()), sorted(sd["state"].keys()), sorted(sd["state"][0].keys()),
            sd["param_groups"][0]["params"], sd["param_groups"][0]["lr"],
            float(sd["state"][0]["step"])]  # fmt: skip


@snippet(compare=False)
def random_weights_training_smoke(torch):
    """Default (random) initialization: the values differ between frameworks; both must run."""
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = regression_data(torch)
    first = None
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x).squeeze(1), y)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    return loss.item() < first


@snippet
def load_map_location_forms(torch):
    model = fill_deterministic(torch, torch.nn.Linear(2, 2))
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "checkpoints"), exist_ok=True)
        paths = []
        for epoch in range(2):
            path = os.path.join(tmp, "checkpoints", f"epoch_{epoch}.pt")
            torch.save({"epoch": epoch, "state_dict": model.state_dict()}, path)
            paths.append(path)
        loaded = [
            torch.load(paths[-1], map_location=lambda storage, loc: storage),
            torch.load(paths[-1], map_location={"cuda:0": "cpu"}),
            torch.load(paths[-1], map_location=torch.device("cpu"), weights_only=True),
        ]
    return [[c["epoch"] for c in loaded], loaded[0]["state_dict"]["weight"],
            sorted(os.path.basename(p) for p in paths)]  # fmt: skip
