"""The array path of the optimizers: in-place updates run over cache-sized pieces.

An update function ``update(*arrays, s, t, xp, *hyper)`` works on same-shaped arrays (the
parameter first, then its gradient and state, None for state it does not use) and two scratch
arrays ``s`` and ``t``, with NumPy/CuPy ufuncs writing through ``out=``, so a step allocates
nothing. On the CPU a large parameter goes through it in flat pieces of CHUNK elements: an
update makes about a dozen passes over its arrays, and on a piece that fits in L2 only the
first read and the last write of each array reach memory (measured in
benchmarks/results/2026-12-07-code-figures.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradflow.backend import get_array_module, routing
from gradflow.backend.routing import uses_kernels

CHUNK = 1 << 16  # elements per piece: 256 KiB of float32, several arrays fit in L2 at once


class Scratch:
    """Two flat CHUNK-sized work arrays per NumPy dtype, reused across parameters and steps."""

    __slots__ = ("_pairs",)

    def __init__(self) -> None:
        self._pairs: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def pair(self, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        pair = self._pairs.get(dtype)
        if pair is None:
            pair = self._pairs[dtype] = (np.empty(CHUNK, dtype), np.empty(CHUNK, dtype))
        return pair


def update_in_chunks(
    update: Callable[..., None], arrays: tuple, scratch: Scratch, *hyper: Any
) -> None:
    """Runs ``update(*arrays, s, t, xp, *hyper)`` over the arrays, in pieces on the CPU.

    ``arrays[0]`` is the parameter, updated in place; the state arrays the optimizer allocated
    are C-contiguous, so their flat views write through. A non-contiguous parameter is
    updated whole.
    """
    p = arrays[0]
    xp = get_array_module(p)
    if type(p) is not np.ndarray:  # CuPy: whole arrays, one kernel per ufunc
        update(*arrays, xp.empty_like(p), xp.empty_like(p), xp, *hyper)
        return
    n = p.size
    s, t = scratch.pair(p.dtype)
    if n <= CHUNK:
        shape = p.shape
        update(*arrays, s[:n].reshape(shape), t[:n].reshape(shape), xp, *hyper)
        return
    if not p.flags.c_contiguous:
        update(*arrays, np.empty_like(p), np.empty_like(p), xp, *hyper)
        return
    flats = [None if a is None else a.reshape(-1) for a in arrays]
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        pieces = [None if f is None else f[start:stop] for f in flats]
        update(*pieces, s[: stop - start], t[: stop - start], xp, *hyper)


def takes_kernel_route(array: Any) -> bool:
    """True when a parameter's array goes through kernels/optim.cu (cuda, or the emulation):
    uses_kernels also checks the dtype (float32/float64, what the kernels are built for)."""
    return uses_kernels(array) and bool(array.flags.c_contiguous)


class KernelBatches:
    """Parameters bound for one fused multi-tensor launch each, by (dtype, device, key).

    ``add(key, *arrays)`` files a parameter's arrays (param, grad, state...) under its launch;
    ``items()`` yields (key, lists of arrays) in the order the launches were first seen.
    """

    __slots__ = ("_backend", "_batches")

    def __init__(self) -> None:
        self._backend = routing.kernel_backend()
        self._batches: dict[tuple, list[list[Any]]] = {}

    def add(self, key: Any, param: Any, grad: Any, *state: Any) -> None:
        if not grad.flags.c_contiguous:
            grad = get_array_module(grad).ascontiguousarray(grad)
        device = self._device_of(param)
        lists = self._batches.get((param.dtype, device, key))
        if lists is None:
            lists = self._batches[(param.dtype, device, key)] = [[] for _ in range(2 + len(state))]
        for target, array in zip(lists, (param, grad, *state)):
            target.append(array)

    def items(self) -> list[tuple[Any, list[list[Any]]]]:
        return [(dkey[2], lists) for dkey, lists in self._batches.items()]

    def _device_of(self, array: Any) -> Any:
        if self._backend is not None:
            return self._backend.device_of(array)
        return array.device.id  # a CuPy array


def decayed_grad(
    p: Any,
    g: Any,
    t: Any,
    xp: Any,
    weight_decay: float,
    maximize: bool,
    decoupled: bool = False,
    lr: float = 0.0,
) -> Any:
    """PyTorch's ``g = -g if maximize; g = g + weight_decay p`` into the scratch ``t``, or ``g``
    itself when neither applies (the gradient is never written). ``decoupled`` (AdamW's decay)
    scales the parameter instead: ``p *= 1 - lr weight_decay``, and the gradient is only negated.
    """
    if decoupled:
        if weight_decay:
            p *= 1 - lr * weight_decay
        weight_decay = 0.0
    if weight_decay:
        xp.multiply(p, weight_decay, out=t)
        return xp.subtract(t, g, out=t) if maximize else xp.add(g, t, out=t)
    if maximize:
        return xp.negative(g, out=t)
    return g


def lerp_toward(m: Any, g: Any, weight: float, s: Any, xp: Any) -> None:
    """m = lerp(m, g, weight) in place (s is scratch), as PyTorch's lerp_: m + w (g - m) for
    w < 0.5, else g - (g - m)(1 - w), so that w = 1 (beta1 = 0) gives exactly g. With
    m + 1 (g - m) a tiny g after a large m would cancel to 0 (g - m rounds to -m)."""
    if abs(weight) < 0.5:
        xp.subtract(g, m, out=s)
        s *= weight
        m += s
    else:
        xp.subtract(m, g, out=s)  # g - (g - m)(1 - w) = g + (m - g)(1 - w), bit for bit
        s *= 1 - weight
        xp.add(g, s, out=m)


def average_square(avg: Any, x: Any, decay: float, s: Any, xp: Any) -> None:
    """avg = decay avg + (1 - decay) x^2 in place (s is scratch): the running average of
    squares that Adam's second moment, RMSprop and Adadelta keep."""
    avg *= decay
    xp.multiply(x, x, out=s)
    s *= 1 - decay
    avg += s
