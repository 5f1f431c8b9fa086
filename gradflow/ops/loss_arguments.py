"""Argument checks of the loss functions (ops/losses.py, regression_losses.py,
margin_losses.py, ctc_loss.py): each raises an error that names the
loss, the argument, its shape and dtype, and what was expected (PyTorch's rules)."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy

from gradflow.backend import is_cuda_array
from gradflow.ops._util import float_input
from gradflow.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: Any, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{op}: argument 'reduction' is {reduction!r}; expected 'mean', 'sum' or 'none'"
        )


def check_weight(weight: Any, n_classes: int, input: Tensor, op: str) -> None:
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: argument 'weight' must be a Tensor, got {type(weight).__name__}")
    if weight.shape != (n_classes,) or weight.dtype != input.dtype:
        raise ValueError(
            f"{op}: argument 'weight' has shape {tuple(weight.shape)} and dtype {weight.dtype}; "
            f"expected one {input.dtype} weight per class, shape ({n_classes},)"
        )


def class_target_args(
    input: Any, target: Any, weight: Any, ignore_index: int, reduction: str, op: str,
    allow_probs: bool,
) -> tuple[Tensor, Tensor, bool, bool]:  # fmt: skip
    """Validate (input, target, weight); returns (input, target, is_probability_target,
    lifted) with a (C,) input lifted to (1, C) (lifted says to drop that dim again)."""
    input = float_input(input, op)
    check_reduction(reduction, op)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: argument 'target' must be a Tensor, got {type(target).__name__}")
    if input.ndim == 0:
        raise ValueError(f"{op}: argument 'input' is 0-d; expected (N, C), (N, C, d1, ...) or (C,)")
    lifted = input.ndim == 1
    if lifted:
        input = input.reshape(1, -1)
        target = target.reshape(1, *target.shape)
    n_classes = input.shape[1]
    if n_classes == 0:
        raise ValueError(f"{op}: argument 'input' of shape {tuple(input.shape)} has no classes")
    check_weight(weight, n_classes, input, op)
    index_shape = (input.shape[0],) + tuple(input.shape[2:])
    if allow_probs and target.dtype.kind == "f" and target.shape == input.shape:
        if target.dtype != input.dtype:
            raise TypeError(
                f"{op}: probability 'target' has dtype {target.dtype}; expected {input.dtype} "
                "like 'input'"
            )
        return input, target, True, lifted
    shown = lambda s: s[1:] if lifted else s  # noqa: E731  (shapes as the caller gave them)
    if target.dtype.kind not in "iu":
        probs = f", or class probabilities of shape {shown(tuple(input.shape))}"
        raise TypeError(
            f"{op}: argument 'target' has dtype {target.dtype} and shape "
            f"{shown(tuple(target.shape))}; expected integer class indices (int64) of shape "
            f"{shown(index_shape)}" + (probs if allow_probs else "")
        )
    if target.shape != index_shape:
        raise ValueError(
            f"{op}: argument 'target' has shape {shown(tuple(target.shape))} for 'input' of "
            f"shape {shown(tuple(input.shape))}; expected class indices of shape "
            f"{shown(index_shape)}"
        )
    if target.dtype != numpy.int64:
        target = target.long()
    if not is_cuda_array(target.array):  # on cuda this would synchronize; the kernels give NaN
        t = target.array
        bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
        if bad.any():
            pos = tuple(int(i) for i in numpy.argwhere(bad)[0])
            raise IndexError(
                f"{op}: target holds class index {int(t[pos])} at position "
                f"{shown(pos)}, outside [0, {n_classes}) for 'input' with {n_classes} classes "
                f"(and not ignore_index={ignore_index})"
            )
    return input, target, False, lifted


def pair_args(input: Any, target: Any, reduction: str, op: str) -> tuple[Tensor, Tensor]:
    input = float_input(input, op)
    check_reduction(reduction, op)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: argument 'target' must be a Tensor, got {type(target).__name__}")
    if target.dtype != input.dtype:
        raise TypeError(
            f"{op}: argument 'target' has dtype {target.dtype}; expected {input.dtype} like 'input'"
        )
    _check_broadcast(input, target, op, ("input", "target"))
    return input, target


def _check_broadcast(a: Tensor, b: Tensor, op: str, names: tuple[str, str]) -> None:
    """A ValueError naming both arguments unless the shapes of a and b broadcast."""
    try:
        numpy.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: argument '{names[1]}' has shape {tuple(b.shape)}, which does not broadcast "
            f"with '{names[0]}' of shape {tuple(a.shape)}"
        ) from None


def warn_if_shapes_differ(input: Tensor, target: Tensor, op: str) -> None:
    """PyTorch's UserWarning for mse_loss/l1_loss when the shapes differ: they broadcast, so an
    (N, 1) input against an (N,) target silently gives an (N, N) loss."""
    if input.shape != target.shape:
        warnings.warn(
            f"{op}: using a target size {tuple(target.shape)} that is different to the input "
            f"size {tuple(input.shape)}. This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_stacklevel() -> int:
    """The stacklevel (for warnings.warn from the caller of this) of the first frame outside
    gradflow: the user's line, also through nn.MSELoss and Module.__call__."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def check_unit_interval(x: Any, op: str, name: str) -> None:
    """A ValueError when a cpu array holds values outside [0, 1] (NaN included), naming the
    first one and where it is; cuda arrays are not read back (see BCE)."""
    bad = ~((x >= 0) & (x <= 1))
    if bad.any():
        pos = tuple(int(i) for i in numpy.argwhere(bad)[0]) if x.ndim else ()
        at = f" at position {pos}" if pos else ""
        raise ValueError(
            f"{op}: argument '{name}' holds {x[pos]}{at}, outside [0, 1]; expected probabilities"
        )


def optional_float(t: Any, input: Tensor, op: str, name: str) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(t).__name__}")
    try:
        ok = numpy.broadcast_shapes(t.shape, input.shape) == input.shape
    except ValueError:
        ok = False
    if not ok or t.dtype != input.dtype:
        raise ValueError(
            f"{op}: argument '{name}' has shape {tuple(t.shape)} and dtype {t.dtype}; expected "
            f"a {input.dtype} tensor that broadcasts to 'input' of shape {tuple(input.shape)}"
        )


def binary_args(input: Any, target: Any, weight: Any, reduction: str, op: str) -> tuple:
    input, target = pair_args(input, target, reduction, op)
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: argument 'target' has shape {tuple(target.shape)}; expected the shape of "
            f"'input', {tuple(input.shape)}"
        )
    optional_float(weight, input, op, "weight")
    return input, target


def legacy_reduction(size_average: Any, reduce: Any, reduction: str, op: str) -> str:
    """PyTorch's deprecated size_average/reduce pair turned into a reduction string, with its
    warning (reduce=False gives 'none', size_average=False 'sum', else 'mean'); reduction itself
    (checked) when both are None."""
    if size_average is None and reduce is None:
        check_reduction(reduction, op)
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    out = "none" if not reduce else "mean" if size_average else "sum"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{out}' instead.",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )
    return out


def float_pair(a: Any, b: Any, op: str, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Two floating-point Tensors whose shapes broadcast (b cast to a's dtype)."""
    a = float_input(a, op, names[0])
    b = float_input(b, op, names[1])
    _check_broadcast(a, b, op, names)
    return a, b.to(a.dtype) if b.dtype != a.dtype else b
