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
from gradflow.optim.adam import Adam, AdamW
from gradflow.optim.optimizer import Optimizer
from gradflow.optim.rmsprop import RMSprop
from gradflow.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
