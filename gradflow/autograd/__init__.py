"""Autograd: the Function base class, the backward engine, grad mode and ``grad()``."""

from gradflow.autograd.function import Function
from gradflow.autograd.functional import grad
from gradflow.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "enable_grad", "grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]
