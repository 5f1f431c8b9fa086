"""Stacking and splitting in NumPy's names, built on cat and slicing: hstack, vstack,
dstack, column_stack, atleast_1d/2d/3d, tensor_split, hsplit/vsplit/dsplit, meshgrid.

Each is a composite of shape ops (no node of its own): the pieces of a split are views, and
nothing saves an array for backward.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any

from gradflow.ops._util import normalize_dim
from gradflow.ops.shape import Reshape, _ints, _tensors, cat, expand
from gradflow.tensor import Tensor


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-D tensors: output i varies along dim i ('ij', the default) or
    with the first two dims swapped ('xy', NumPy's default)."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    tensors = _tensors(tensors, "meshgrid")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if any(t.ndim > 1 for t in tensors):
        raise ValueError("meshgrid: expects 0-D or 1-D tensors")
    sizes = [t.numel() for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(tensors):
        at = (1 - i if i < 2 else i) if swap else i
        lay = tuple(-1 if k == at else 1 for k in range(len(tensors)))
        out.append(expand(t.reshape(lay), sizes))
    return tuple(out)


def _one_spec(op: str, positional: Any, **named: Any) -> Any:
    """The split's one spec: positional (the documented indices_or_sections) or one of PyTorch's
    keyword names for it (sections=, indices=, tensor_indices_or_sections=)."""
    given = {k: v for k, v in named.items() if v is not None}
    if positional is not None:
        given = {"indices_or_sections": positional, **given}
    if len(given) != 1:
        names = ", ".join(["indices_or_sections", *named])
        raise TypeError(f"{op}() takes one of {names}; got {sorted(given) or 'none'}")
    return next(iter(given.values()))


def tensor_split(
    input: Tensor,
    indices_or_sections: Any = None,
    dim: int = 0,
    *,
    sections: int | None = None,
    indices: Sequence[int] | None = None,
    tensor_indices_or_sections: Tensor | None = None,
) -> tuple:
    """Pieces along `dim`: an int n gives n pieces, the first n % size ones one longer; a list
    of indices gives the pieces between them (views of input). PyTorch's keyword names for the
    second argument (sections=, indices=, tensor_indices_or_sections=) work too."""
    spec = _one_spec(
        "tensor_split", indices_or_sections, sections=sections, indices=indices,
        tensor_indices_or_sections=tensor_indices_or_sections,
    )  # fmt: skip
    d = normalize_dim(dim, input.ndim, "tensor_split")
    n = input.shape[d]
    if isinstance(spec, Tensor):
        spec = spec.item() if spec.ndim == 0 else spec.tolist()
    if isinstance(spec, list | tuple):
        bounds = [0, *_ints(spec, "tensor_split", "indices"), n]
    else:
        sections = operator.index(spec)
        if sections <= 0:
            raise ValueError(
                f"tensor_split: number of sections must be larger than 0, got {sections}"
            )
        small, extra = divmod(n, sections)
        bounds = [0]
        for k in range(sections):
            bounds.append(bounds[-1] + small + (k < extra))
    lead = (slice(None),) * d
    return tuple(input[lead + (slice(a, max(a, b)),)] for a, b in itertools.pairwise(bounds))


def _split_dim(x: Tensor, spec: Any, dim: int, op: str) -> tuple:
    if isinstance(spec, int) and (spec <= 0 or x.shape[dim] % spec):
        raise ValueError(
            f"torch.{op} attempted to split along dimension {dim}, but the size of the dimension "
            f"{x.shape[dim]} is not divisible by the split_size {spec}!"
        )
    return tensor_split(x, spec, dim)


def hsplit(
    input: Tensor,
    indices_or_sections: Any = None,
    *,
    sections: int | None = None,
    indices: Sequence[int] | None = None,
) -> tuple:
    """tensor_split along dim 1 (dim 0 of a 1-D tensor); an int must divide the size.
    PyTorch's keyword names sections= and indices= work too."""
    spec = _one_spec("hsplit", indices_or_sections, sections=sections, indices=indices)
    if input.ndim == 0:
        raise ValueError("hsplit: requires a tensor with at least 1 dimension")
    return _split_dim(input, spec, 1 if input.ndim > 1 else 0, "hsplit")


def vsplit(
    input: Tensor,
    indices_or_sections: Any = None,
    *,
    sections: int | None = None,
    indices: Sequence[int] | None = None,
) -> tuple:
    """tensor_split along dim 0 of a tensor of at least 2 dims; an int must divide the size.
    PyTorch's keyword names sections= and indices= work too."""
    spec = _one_spec("vsplit", indices_or_sections, sections=sections, indices=indices)
    if input.ndim < 2:
        raise ValueError(f"vsplit: requires a tensor with at least 2 dimensions, got {input.ndim}")
    return _split_dim(input, spec, 0, "vsplit")


def dsplit(
    input: Tensor,
    indices_or_sections: Any = None,
    *,
    sections: int | None = None,
    indices: Sequence[int] | None = None,
) -> tuple:
    """tensor_split along dim 2 of a tensor of at least 3 dims; an int must divide the size.
    PyTorch's keyword names sections= and indices= work too."""
    spec = _one_spec("dsplit", indices_or_sections, sections=sections, indices=indices)
    if input.ndim < 3:
        raise ValueError(f"dsplit: requires a tensor with at least 3 dimensions, got {input.ndim}")
    return _split_dim(input, spec, 2, "dsplit")


_ATLEAST = {  # (ndim wanted, ndim of the tensor) -> its new shape, from its shape
    (1, 0): lambda s: (1,),
    (2, 0): lambda s: (1, 1),
    (2, 1): lambda s: (1, s[0]),
    (3, 0): lambda s: (1, 1, 1),
    (3, 1): lambda s: (1, s[0], 1),
    (3, 2): lambda s: (*s, 1),
}


def _atleast(tensors: tuple, ndim: int) -> Any:
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        return tuple(_atleast(tuple(tensors[0]), ndim))
    out = []
    for t in _tensors(tensors, f"atleast_{ndim}d"):
        if t.ndim < ndim:
            t = Reshape.apply(t, shape=_ATLEAST[ndim, t.ndim](t.shape))
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dim (0-d -> (1,)); one tensor in, one out."""
    return _atleast(tensors, 1)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dims: 0-d -> (1, 1), (n,) -> (1, n)."""
    return _atleast(tensors, 2)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dims: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    return _atleast(tensors, 3)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    tensors = [atleast_1d(t) for t in _tensors(tensors, "hstack")]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 0, 1-D tensors as rows."""
    return cat([atleast_2d(t) for t in _tensors(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 2 (depth), after atleast_3d."""
    return cat([atleast_3d(t) for t in _tensors(tensors, "dstack")], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 1, 0-d and 1-D tensors as columns."""
    tensors = _tensors(tensors, "column_stack")
    return cat([t.reshape(t.numel(), 1) if t.ndim <= 1 else t for t in tensors], 1)
