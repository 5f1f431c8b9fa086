"""Optimizers and learning-rate schedules, shaped like torch.optim.

opt = gradflow.optim.Adam(model.parameters(), lr=1e-3)
sched = gradflow.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
for x, y in data:
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
sched.step()
"""

from gradflow.optim import lr_scheduler
from gradflow.optim.adadelta import Adadelta
from gradflow.optim.adafactor import Adafactor
from gradflow.optim.adagrad import Adagrad
from gradflow.optim.adam import Adam, AdamW
from gradflow.optim.adamax import Adamax
from gradflow.optim.asgd import ASGD
from gradflow.optim.lbfgs import LBFGS
from gradflow.optim.nadam import NAdam
from gradflow.optim.optimizer import Optimizer
from gradflow.optim.radam import RAdam
from gradflow.optim.rmsprop import RMSprop
from gradflow.optim.rprop import Rprop
from gradflow.optim.sgd import SGD

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "lr_scheduler",
    "swa_utils",
]


def __getattr__(name: str) -> object:
    # swa_utils builds on gradflow.nn (AveragedModel is a Module): imported on first use, so
    # that importing gradflow.optim does not import nn.
    if name == "swa_utils":
        import importlib

        return importlib.import_module("gradflow.optim.swa_utils")
    raise AttributeError(f"module 'gradflow.optim' has no attribute {name!r}")
