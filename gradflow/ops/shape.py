"""Shape ops: reshape/view, squeeze/unsqueeze/flatten, transpose/permute, expand/broadcast_to,
cat/stack, split/chunk, pad, flip, repeat/tile, contiguous.

Forward results are NumPy/CuPy views wherever the array module gives one (reshape of a
contiguous array, transpose, expand, flip, split); none of these ops saves an array for
backward, only shapes and dims.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from typing import Any

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import normalize_dim, normalize_dims, unbroadcast
from gradflow.tensor import Tensor


class Reshape(Function):
    shape: tuple

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.source)


class Permute(Function):
    dims: tuple | None

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.transpose(inverse)


class Expand(Function):
    shape: tuple

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        if x.size == math.prod(self.shape):
            return x.reshape(self.shape)  # nothing stretched: a plain view, writable like x
        return get_array_module(x).broadcast_to(x, self.shape)  # a read-only view, no copy

    def backward(self, g):
        return unbroadcast(g, self.source)


class Concatenate(Function):
    """cat (join along an existing dim) and stack (along a new dim), any number of inputs."""

    dim: int
    new_dim: bool

    def forward(self, *arrays):
        xp = get_array_module(arrays[0])
        if self.new_dim:
            return xp.stack(arrays, axis=self.dim)
        self.sizes = [a.shape[self.dim] for a in arrays]  # saves sizes only
        return xp.concatenate(arrays, axis=self.dim)

    def backward(self, g):
        lead = (slice(None),) * self.dim
        grads = []
        start = 0
        for k, need in enumerate(self.needs_input_grad):
            if self.new_dim:
                piece = lead + (k,)
            else:
                piece = lead + (slice(start, start + self.sizes[k]),)
                start += self.sizes[k]
            grads.append(g[piece] if need else None)
        return tuple(grads)


class Split(Function):
    """Pieces of `sizes` along `dim` (views); the engine passes zeros for unused pieces."""

    dim: int
    sizes: tuple

    def forward(self, x):
        lead = (slice(None),) * self.dim
        bounds = [0, *itertools.accumulate(self.sizes)]
        return tuple(x[lead + (slice(a, b),)] for a, b in itertools.pairwise(bounds))

    def backward(self, *grads):
        return get_array_module(grads[0]).concatenate(grads, axis=self.dim)


class Pad(Function):
    """Constant padding (cropping for negative widths), or reflect/replicate/circular."""

    mode: str
    value: float
    widths: tuple

    def forward(self, x):
        xp = get_array_module(x)
        self.shape = x.shape  # saves the shape (and, for copied modes, small index maps)
        if self.mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in self.widths]
            out = xp.pad(x, grow, mode="constant", constant_values=self.value)
            return out[self._crop(out.shape)]
        # Each padded dim gathers along itself through a 1-D source-index map, so backward
        # is a scatter-add of 1-D indices per dim, whatever the mode.
        self.maps = {}
        out = x
        numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[self.mode]
        for d, (a, b) in enumerate(self.widths):
            if a or b:
                source = xp.pad(xp.arange(x.shape[d]), (a, b), mode=numpy_mode)
                self.maps[d] = source
                out = xp.take(out, source, axis=d)
        return out

    def _crop(self, padded: tuple) -> tuple:
        return tuple(slice(-min(a, 0), n + min(b, 0)) for (a, b), n in zip(self.widths, padded))

    def backward(self, g):
        xp = get_array_module(g)
        if self.mode == "constant":
            grow = [(max(a, 0), max(b, 0)) for a, b in self.widths]
            inside = tuple(slice(a, a + n) for (a, _), n in zip(grow, self.shape))
            if all(a >= 0 and b >= 0 for a, b in self.widths):
                return g[inside]  # no cropping: the input's region of g, a view
            padded = [n + a + b for n, (a, b) in zip(self.shape, grow)]
            full = xp.zeros(padded, g.dtype)
            full[self._crop(padded)] = g
            return full[inside]
        for d in sorted(self.maps, reverse=True):
            source = self.maps[d]
            moved = xp.moveaxis(g, d, 0)
            out = xp.zeros((self.shape[d],) + moved.shape[1:], g.dtype)
            xp.add.at(out, source, moved)
            g = xp.moveaxis(out, 0, d)
        return g


class Flip(Function):
    dims: tuple | None

    def forward(self, x):
        return get_array_module(x).flip(x, self.dims)

    def backward(self, g):
        return get_array_module(g).flip(g, self.dims)


class Tile(Function):
    """np.tile with len(reps) == ndim (PyTorch's repeat); backward sums the copies."""

    reps: tuple

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        return get_array_module(x).tile(x, self.reps)

    def backward(self, g):
        # View the gradient as (r0, n0, r1, n1, ...) and sum over the repeat axes.
        split = [s for pair in zip(self.reps, self.source) for s in pair]
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))


class Contiguous(Function):
    def forward(self, x):
        return get_array_module(x).ascontiguousarray(x)

    def backward(self, g):
        return g


# ---- public functions ------------------------------------------------------------------
def _ints(values: Sequence[Any], op: str, what: str) -> tuple:
    """Sizes as a tuple of ints; a float (2.5) is refused, not truncated."""
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise TypeError(f"{op}: {what} must be ints, got {tuple(values)!r}") from None


def _resolve_shape(shape: Sequence[Any], size: int, source: tuple, op: str) -> tuple:
    """The target shape with -1 filled in; a clear error when it can't hold `size` elements."""
    shape = _ints(shape, op, "shape")
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}: at most one -1, other sizes >= 0")
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0 or size % known:
            raise ValueError(
                f"{op}: shape {shape} is invalid for input of shape {source} ({size} elements)"
            )
        shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    elif known != size:
        raise ValueError(
            f"{op}: shape {shape} is invalid for input of shape {source} ({size} elements)"
        )
    return shape


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one dim may be -1); a view when NumPy can give one."""
    return Reshape.apply(x, shape=_resolve_shape(shape, x.array.size, x.shape, "reshape"))


def view(x: Tensor, shape: Sequence[int]) -> Tensor:
    """reshape under PyTorch's other name.

    gradflow's view *is* reshape: where the strides allow it NumPy returns a view, and on a
    non-contiguous input it copies (PyTorch's view would raise instead). The gradient is the
    same either way; only writes through the result differ (they don't reach a copied input).
    """
    return Reshape.apply(x, shape=_resolve_shape(shape, x.array.size, x.shape, "view"))


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    """Drop dims of size 1: all of them, or those in `dim` (int or tuple; others are kept)."""
    dims = normalize_dims(dim, x.ndim, "squeeze")
    shape = tuple(
        n for d, n in enumerate(x.shape) if n != 1 or (dims is not None and d not in dims)
    )
    return x if shape == x.shape else Reshape.apply(x, shape=shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at `dim` (in [-ndim - 1, ndim])."""
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return Reshape.apply(x, shape=x.shape[:d] + (1,) + x.shape[d:])


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim (inclusive) into one; a 0-d tensor becomes shape (1,)."""
    start = normalize_dim(start_dim, x.ndim, "flatten")
    end = normalize_dim(end_dim, x.ndim, "flatten")
    if x.ndim == 0:  # dims 0 and -1 only, as in PyTorch
        return Reshape.apply(x, shape=(1,))
    if start > end:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim}) "
            f"for shape {tuple(x.shape)}"
        )
    merged = math.prod(x.shape[start : end + 1])
    return Reshape.apply(x, shape=x.shape[:start] + (merged,) + x.shape[end + 1 :])


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder dimensions: output dim i is input dim dims[i]."""
    dims = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(
            f"permute: dims {dims} must be a permutation of the {x.ndim} dims of a tensor of "
            f"shape {tuple(x.shape)}"
        )
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (a view)."""
    dims = list(range(x.ndim))
    d0 = normalize_dim(dim0, x.ndim, "transpose")
    d1 = normalize_dim(dim1, x.ndim, "transpose")
    if x.ndim == 0:
        return x
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, dims=tuple(dims))


def expand(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to `shape` without copying: size-1 dims stretch, new dims are prepended,
    and -1 keeps a dim's size (PyTorch's expand)."""
    shape = _ints(shape, "expand", "shape")
    return Expand.apply(x, shape=_expanded_shape(x.shape, shape, "expand"))


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to `shape` (NumPy's broadcast_to, same as expand)."""
    shape = _ints(shape, "broadcast_to", "shape")
    return Expand.apply(x, shape=_expanded_shape(x.shape, shape, "broadcast_to"))


def _expanded_shape(source: tuple, shape: tuple, op: str) -> tuple:
    lead = len(shape) - len(source)
    if lead < 0:
        raise ValueError(
            f"{op}: the target shape {shape} has fewer dims than the tensor's {source}"
        )
    out = list(shape[:lead])
    if any(s < 0 for s in out):
        raise ValueError(f"{op}: -1 is not allowed for the new leading dims of {shape}")
    for i, (n, s) in enumerate(zip(source, shape[lead:])):
        if s == -1:
            s = n
        elif n != s and n != 1:
            raise ValueError(
                f"{op}: can't expand shape {source} to {shape}: dim {lead + i} has size {n}, "
                f"which must be 1 or equal {s}"
            )
        out.append(s)
    return tuple(out)


def _tensors(tensors: Sequence[Tensor], op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {i}")
    return tensors


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing `dim`; every other dim must match."""
    tensors = _tensors(tensors, "cat")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim, "cat")
    if first.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors can't be concatenated; use stack")
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d
        ):
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"cat: shapes {shapes} must match except in dim {d}")
    return Concatenate.apply(*tensors, dim=d, new_dim=False, op_name="cat")


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new `dim` (in [-ndim - 1, ndim])."""
    tensors = _tensors(tensors, "stack")
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"stack: expects tensors of one shape, got {shapes}")
    d = normalize_dim(dim, len(shape) + 1, "stack")
    return Concatenate.apply(*tensors, dim=d, new_dim=True, op_name="stack")


def split(x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple:
    """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the sizes in a
    list that sums to the dim's size. Returns a tuple of tensors (views of x)."""
    if x.ndim == 0:
        raise ValueError("split: a 0-d tensor can't be split; unsqueeze it first")
    d = normalize_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and not (step == 0 and n == 0):
            raise ValueError(f"split: split_size must be a positive int, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] if n else [0]
    else:
        sizes = list(_ints(split_size_or_sections, "split", "sections"))
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(
                f"split: sections {sizes} must be non-negative and sum to the size of dim {d} "
                f"({n}) of a tensor of shape {tuple(x.shape)}"
            )
    return Split.apply(x, dim=d, sizes=sizes)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` pieces of ceil(n / chunks) along `dim` (fewer if n is small)."""
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks}")
    if x.ndim == 0:
        raise ValueError("chunk: a 0-d tensor can't be split; unsqueeze it first")
    d = normalize_dim(dim, x.ndim, "chunk")
    return split(x, max(-(-x.shape[d] // chunks), 1), d)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0) -> Tensor:
    """Pad with PyTorch's convention: `pad` lists (before, after) pairs from the LAST dim
    backwards, e.g. (1, 1, 2, 0) pads the last dim by 1 on both sides and the one before it by
    2 at the start. Modes: constant (with `value`; negative widths crop), reflect (mirror
    without the edge), replicate (repeat the edge), circular (wrap around)."""
    pad = _ints(pad, "pad", "widths")
    if len(pad) % 2 or len(pad) > 2 * x.ndim:
        raise ValueError(
            f"pad: expects an even number of widths, at most 2 per dim ({2 * x.ndim} for shape "
            f"{tuple(x.shape)}), got {pad}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if x.ndim == 0:
        return x  # no widths to apply (checked above), and NumPy can't pad a 0-d array
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs[::-1]
    limit = {"reflect": "size - 1", "circular": "size", "replicate": "any size"}.get(mode)
    for d, (a, b) in enumerate(widths):
        n = x.shape[d]
        if limit and (a or b):
            most = {"reflect": n - 1, "circular": n}.get(mode, max(a, b))
            if min(a, b) < 0 or max(a, b) > most or n == 0:
                raise ValueError(
                    f"pad: {mode} padding ({a}, {b}) doesn't fit dim {d} of size {n}: widths "
                    f"must be >= 0 and at most {limit}, on a non-empty dim"
                )
        if n + a + b < 0:
            raise ValueError(f"pad: widths ({a}, {b}) crop more than dim {d} of size {n}")
    return Pad.apply(x, widths=widths, mode=mode, value=value)


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """Reverse the order of elements along `dims` (a view)."""
    dims = normalize_dims(dims, x.ndim, "flip")
    return Flip.apply(x, dims=dims if x.ndim else ())  # a 0-d tensor: dim 0 flips nothing


def repeat(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Tile x: `sizes` gives the copies per dim (PyTorch's repeat, NumPy's tile); it must have
    at least x.ndim entries, extra leading ones add dims."""
    return _repeat(x, _ints(sizes, "repeat", "sizes"), "repeat")


def _repeat(x: Tensor, sizes: tuple, op: str) -> Tensor:
    if len(sizes) < x.ndim:
        raise ValueError(
            f"{op}: needs at least one size per dim: got {sizes} for shape {tuple(x.shape)}"
        )
    if any(s < 0 for s in sizes):
        raise ValueError(f"{op}: sizes must be non-negative, got {sizes}")
    lead = len(sizes) - x.ndim
    if lead:
        x = Reshape.apply(x, shape=(1,) * lead + x.shape)
    return Tile.apply(x, reps=sizes)


def tile(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Tile x (PyTorch's tile): like repeat, but fewer sizes than dims are padded with 1s."""
    sizes = _ints(sizes, "tile", "sizes")
    return _repeat(x, (1,) * (x.ndim - len(sizes)) + sizes, "tile")


def contiguous(x: Tensor) -> Tensor:
    """x itself when its array is C-contiguous, else a C-contiguous copy (differentiable)."""
    if x.array.flags.c_contiguous:
        return x
    return Contiguous.apply(x)
