"""Which of two GPU implementations runs, where gradflow has both: ours or the library's.

The choices, each between one of our kernels and a default that leans on cuBLAS or CuPy:

- ``"act_matmul_bwd"``: dX = (dY * f'(Z)) @ W^T when W needs no gradient (the backward of
  ops.fused.LinearActivation with a frozen weight). ``"fused"``: our tiled kernel
  (kernels/matmul.cu), which forms dY * f'(Z) while loading its tiles and never writes it;
  ``"cublas"``: bias_act_bwd writes dZ, then cuBLAS multiplies. Work: M N K.
- ``"bias_sum"``: a bias gradient, the sum over the rows of an [R, C] gradient.
  ``"kernel"``: sum_to_bias (kernels/fused.cu, fixed order); ``"cupy"``: CuPy's reduction.
  Work: R C.
- ``"attention"``: scaled_dot_product_attention on the kernel route (float32/float64 cuda).
  ``"flash"``: the tiled kernels (attn_flash_fwd/bwd in kernels/attention.cu), which never
  write the (..., L, S) scores and recompute P in the backward; ``"rows"``: cuBLAS GEMMs with
  attn_softmax_fwd/bwd between them, P kept. Only where the tiled kernels apply: no dropout,
  no gradient for an additive mask, one batch shape, head dims <= 128; elsewhere "rows"
  whatever the table says. Work: B H L S E (the batch and heads, query and key lengths, head
  dim: the GEMMs' multiply-adds).

A choice depends on the shape class (the size of the work: small, medium or large; see
``BOUNDS``) and on the GPU architecture ("sm_90" covers H100 and H200). It is read from
``dispatch_table.json`` next to this file, which ``python -m gradflow.bench.tune --write``
writes from measurements on a GPU, with a record of the numbers under ``benchmarks/results/``.
An architecture or class the table does not hold gets ``DEFAULTS``: the library's side, which
needs no measurement to be trusted (for "attention", "rows": the tiled kernels are off until a
GPU has measured them). The CPU emulation (gradflow.testing.emulation) has no
architecture, so it gets the defaults too; tests drive the other side with ``forced``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("dispatch_table.json")

CHOICES = {
    "act_matmul_bwd": ("fused", "cublas"),
    "bias_sum": ("kernel", "cupy"),
    "attention": ("flash", "rows"),
}
DEFAULTS = {"act_matmul_bwd": "cublas", "bias_sum": "cupy", "attention": "rows"}
CLASSES = ("small", "medium", "large")
# Upper bounds of the small and medium classes, in units of each op's work.
BOUNDS = {
    "act_matmul_bwd": (1 << 21, 1 << 27),
    "bias_sum": (1 << 16, 1 << 22),
    "attention": (1 << 26, 1 << 32),
}

_table: dict | None = None
_forced: dict[str, str] = {}
_arch_of_device: dict[int, str] = {}


def shape_class(op: str, work: int) -> str:
    """The class of `work` units of op's work: "small", "medium" or "large" (see BOUNDS)."""
    small, medium = BOUNDS[_check_op(op)]
    return "small" if work <= small else "medium" if work <= medium else "large"


def choose(op: str, work: int, array: Any) -> str:
    """The implementation of op to run for `work` units on `array`'s device (see module doc)."""
    forced_choice = _forced.get(op)
    if forced_choice is not None:
        return forced_choice
    default = DEFAULTS[_check_op(op)]
    arch = architecture(array)
    entry = table().get(arch) if arch is not None else None
    if entry is None:
        return default
    return entry["choices"].get(op, {}).get(shape_class(op, work), default)


def architecture(array: Any) -> str | None:
    """The GPU architecture of a CuPy array, "sm_<major><minor>"; None for NumPy arrays."""
    device = getattr(array, "device", None)
    device_id = getattr(device, "id", None)
    if device_id is None or not hasattr(device, "compute_capability"):
        return None
    arch = _arch_of_device.get(device_id)
    if arch is None:
        arch = _arch_of_device[device_id] = f"sm_{device.compute_capability}"
    return arch


def table() -> dict:
    """The architectures section of dispatch_table.json, read and checked once."""
    global _table
    if _table is None:
        _table = parse_table(json.loads(TABLE_PATH.read_text()), str(TABLE_PATH))
    return _table


def parse_table(data: Any, source: str) -> dict:
    """The {arch: {"choices": {op: {class: choice}}, ...}} map of a dispatch table, checked."""
    archs = data.get("architectures") if isinstance(data, dict) else None
    if not isinstance(archs, dict):
        raise ValueError(f"{source}: expected an object with an 'architectures' object")
    for arch, entry in archs.items():
        choices = entry.get("choices") if isinstance(entry, dict) else None
        if not isinstance(choices, dict):
            raise ValueError(f"{source}: architecture {arch!r} has no 'choices' object")
        for op, by_class in choices.items():
            if op not in CHOICES or not isinstance(by_class, dict):
                raise ValueError(
                    f"{source}: {arch}: unknown op {op!r}; expected one of {sorted(CHOICES)}"
                )
            for cls, choice in by_class.items():
                if cls not in CLASSES or choice not in CHOICES[op]:
                    raise ValueError(
                        f"{source}: {arch}.{op}: {cls!r} -> {choice!r}; expected a class in "
                        f"{CLASSES} and a choice in {CHOICES[op]}"
                    )
    return archs


@contextlib.contextmanager
def forced(op: str, choice: str) -> Iterator[None]:
    """Run `choice` for op whatever the table says (tests and benchmarks of both sides)."""
    if choice not in CHOICES[_check_op(op)]:
        raise ValueError(f"dispatch.forced: {op!r} has choices {CHOICES[op]}, not {choice!r}")
    previous = _forced.get(op)
    _forced[op] = choice
    try:
        yield
    finally:
        if previous is None:
            del _forced[op]
        else:
            _forced[op] = previous


def _check_op(op: str) -> str:
    if op not in CHOICES:
        raise ValueError(f"dispatch: unknown op {op!r}; expected one of {sorted(CHOICES)}")
    return op
