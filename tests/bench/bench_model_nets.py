"""Small models for tests/bench/test_bench_model.py, named by "module:callable" specs."""

import gradflow
from gradflow import nn


def mlp() -> nn.Module:
    """An 8-16-4 MLP (leaf layers 0, 1, 2)."""
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def torch_mlp():
    """mlp() in torch, the same state_dict names."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def torch_inplace():
    """mlp() in torch with an in-place ReLU (which cannot run alone on a leaf needing grad)."""
    import torch

    nn = torch.nn
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(inplace=True), nn.Linear(16, 4))


def torch_renamed():
    """mlp() in torch under other names (no weights can be copied)."""
    import torch

    class Renamed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.act, self.last = torch.nn.Linear(8, 16), torch.nn.ReLU(), None
            self.last = torch.nn.Linear(16, 4)

        def forward(self, x):
            return self.last(self.act(self.first(x)))

    return Renamed()


class Shared(nn.Module):
    """One ReLU called twice in forward, and an add outside any leaf module."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(self.act(x)) + x)


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 4)
        self.scale = nn.Parameter(gradflow.ones(4))

    def forward(self, x):
        return self.inner(x) * self.scale


class OwnWeight(nn.Module):
    """A layer with a parameter of its own and a child: both timed, the child not summed."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Inner()

    def forward(self, x):
        return self.block(x)


def not_a_model():
    return gradflow.tensor([1.0])


NOT_CALLABLE = 3
