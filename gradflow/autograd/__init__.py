"""Autograd: the Function base class, the backward engine, grad mode, grad(), anomaly mode."""

from gradflow.autograd.anomaly import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from gradflow.autograd.function import Function
from gradflow.autograd.functional import grad
from gradflow.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "AnomalyError",
    "Function",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "no_grad",
    "set_detect_anomaly",
    "set_grad_enabled",
]
