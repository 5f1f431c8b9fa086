"""Autograd: the Function base class, the backward engine (with ``queue_callback``: run a
function when the current backward finishes), grad mode, grad(), anomaly mode, gradcheck."""

from gradflow.autograd import functional
from gradflow.autograd.anomaly import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from gradflow.autograd.ctx_function import FunctionCtx
from gradflow.autograd.engine import queue_callback
from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from gradflow.autograd.gradcheck import gradcheck, gradgradcheck
from gradflow.autograd.gradients import backward, grad
from gradflow.autograd.variable import Variable

__all__ = [
    "AnomalyError",
    "Function",
    "FunctionCtx",
    "Variable",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "no_grad",
    "queue_callback",
    "set_detect_anomaly",
    "set_grad_enabled",
]
