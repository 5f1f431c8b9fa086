"""Shape ops: reshape/view, squeeze/unsqueeze/flatten, transpose/permute, expand/broadcast_to,
cat/stack, split/chunk, flip, repeat/tile, contiguous, narrow, roll, movedim, select.
(Padding is ops/padding.py; tril/triu/diagonal/trace ops/diagonals.py; NumPy's stacking and
splitting helpers, hstack/vsplit/atleast_2d/meshgrid, ops/stacking.py.)

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

import numpy

from gradflow.autograd.differentiable import unbroadcast as _unb
from gradflow.autograd.function import Function
from gradflow.backend import blas, get_array_module
from gradflow.ops._util import normalize_dim, normalize_dims, unbroadcast
from gradflow.tensor import Tensor


class Reshape(Function):
    shape: tuple

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.source)

    def backward_graph(self, g):
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

    def backward_graph(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return Permute.apply(g, dims=tuple(inverse))


class Expand(Function):
    shape: tuple

    def forward(self, x):
        self.source = x.shape  # saves the shape only
        if x.size == math.prod(self.shape):
            return x.reshape(self.shape)  # nothing stretched: a plain view, writable like x
        return get_array_module(x).broadcast_to(x, self.shape)  # a read-only view, no copy

    def backward(self, g):
        return unbroadcast(g, self.source)

    def backward_graph(self, g):
        return _unb(g, self.source)


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

    # Under create_graph g is a Tensor, and its slices are differentiable ops: the same code.
    backward_graph = backward


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

    def backward_graph(self, *grads):
        return Concatenate.apply(*grads, dim=self.dim, new_dim=False)


class Flip(Function):
    dims: tuple | None

    def forward(self, x):
        return get_array_module(x).flip(x, self.dims)

    def backward(self, g):
        return get_array_module(g).flip(g, self.dims)

    def backward_graph(self, g):
        return Flip.apply(g, dims=self.dims)


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

    def backward_graph(self, g):
        split = [s for pair in zip(self.reps, self.source) for s in pair]
        return g.reshape(split).sum(dim=tuple(range(0, len(split), 2)))


class Contiguous(Function):
    def forward(self, x):
        return blas.ascontiguous(x)  # a transposed float32 layout through OpenBLAS's omatcopy

    def backward(self, g):
        return g

    def backward_graph(self, g):
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
    shape, source = _ints(shape, op, "shape"), tuple(source)  # messages print (2, 3), not Size
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


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one dim may be -1); a view when NumPy can give one."""
    return Reshape.apply(
        input, shape=_resolve_shape(shape, input.array.size, input.shape, "reshape")
    )


def view(x: Tensor, shape: Sequence[int]) -> Tensor:
    """reshape under PyTorch's other name.

    gradflow's view *is* reshape: where the strides allow it NumPy returns a view, and on a
    non-contiguous input it copies (PyTorch's view would raise instead). The gradient is the
    same either way; only writes through the result differ (they don't reach a copied input).
    """
    return Reshape.apply(x, shape=_resolve_shape(shape, x.array.size, x.shape, "view"))


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop dims of size 1: all of them, or those in `dim` (int or tuple; others are kept)."""
    dims = normalize_dims(dim, input.ndim, "squeeze")
    shape = tuple(
        n for d, n in enumerate(input.shape) if n != 1 or (dims is not None and d not in dims)
    )
    return input if shape == input.shape else Reshape.apply(input, shape=shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at `dim` (in [-ndim - 1, ndim])."""
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return Reshape.apply(input, shape=input.shape[:d] + (1,) + input.shape[d:])


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim (inclusive) into one; a 0-d tensor becomes shape (1,)."""
    start = normalize_dim(start_dim, input.ndim, "flatten")
    end = normalize_dim(end_dim, input.ndim, "flatten")
    if input.ndim == 0:  # dims 0 and -1 only, as in PyTorch
        return Reshape.apply(input, shape=(1,))
    if start > end:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim}) "
            f"for shape {tuple(input.shape)}"
        )
    merged = math.prod(input.shape[start : end + 1])
    return Reshape.apply(input, shape=input.shape[:start] + (merged,) + input.shape[end + 1 :])


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder dimensions: output dim i is input dim dims[i]."""
    dims = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise ValueError(
            f"permute: dims {dims} must be a permutation of the {input.ndim} dims of a tensor of "
            f"shape {tuple(input.shape)}"
        )
    return Permute.apply(input, dims=dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (a view)."""
    dims = list(range(input.ndim))
    d0 = normalize_dim(dim0, input.ndim, "transpose")
    d1 = normalize_dim(dim1, input.ndim, "transpose")
    if input.ndim == 0:
        return input
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, dims=tuple(dims))


def expand(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to `shape` without copying: size-1 dims stretch, new dims are prepended,
    and -1 keeps a dim's size (PyTorch's expand)."""
    shape = _ints(shape, "expand", "shape")
    return Expand.apply(x, shape=_expanded_shape(x.shape, shape, "expand"))


def broadcast_to(input: Tensor, size: Sequence[int]) -> Tensor:
    """Broadcast to `size` (NumPy's broadcast_to, same as expand)."""
    size = _ints(size, "broadcast_to", "size")
    return Expand.apply(input, shape=_expanded_shape(input.shape, size, "broadcast_to"))


def _expanded_shape(source: tuple, shape: tuple, op: str) -> tuple:
    source = tuple(source)  # messages print (2, 3), not Size([2, 3])
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


concat = cat


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """cat under NumPy's name, with PyTorch's argument name for it: `axis` is cat's dim."""
    return cat(tensors, axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new `dim` (in [-ndim - 1, ndim])."""
    tensors = _tensors(tensors, "stack")
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"stack: expects tensors of one shape, got {shapes}")
    d = normalize_dim(dim, len(shape) + 1, "stack")
    return Concatenate.apply(*tensors, dim=d, new_dim=True, op_name="stack")


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple:
    """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the sizes in a
    list that sums to the dim's size. Returns a tuple of tensors (views of tensor)."""
    if tensor.ndim == 0:
        raise ValueError("split: a 0-d tensor can't be split; unsqueeze it first")
    d = normalize_dim(dim, tensor.ndim, "split")
    n = tensor.shape[d]
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
                f"({n}) of a tensor of shape {tuple(tensor.shape)}"
            )
    return Split.apply(tensor, dim=d, sizes=sizes)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` pieces of ceil(n / chunks) along `dim` (fewer if n is small)."""
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks}")
    if input.ndim == 0:
        raise ValueError("chunk: a 0-d tensor can't be split; unsqueeze it first")
    d = normalize_dim(dim, input.ndim, "chunk")
    if input.shape[d] == 0:  # PyTorch gives `chunks` empty pieces
        return split(input, [0] * chunks, d)
    return split(input, -(-input.shape[d] // chunks), d)


def flip(input: Tensor, dims: int | Sequence[int]) -> Tensor:
    """Reverse the order of elements along `dims` (a view)."""
    dims = normalize_dims(dims, input.ndim, "flip")
    return Flip.apply(input, dims=dims if input.ndim else ())  # a 0-d tensor: dim 0 flips nothing


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


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Tile input (PyTorch's tile): like repeat, but fewer sizes than dims are padded with 1s."""
    dims = _ints(dims, "tile", "sizes")
    return _repeat(input, (1,) * (input.ndim - len(dims)) + dims, "tile")


def contiguous(x: Tensor) -> Tensor:
    """x itself when its array is C-contiguous, else a C-contiguous copy (differentiable)."""
    if x.array.flags.c_contiguous:
        return x
    return Contiguous.apply(x)


# ---- more shape ops (PyTorch's names) ---------------------------------------------------
class Unbind(Function):
    """The slices of x along `dim` (views, dim removed); backward stacks their gradients."""

    dim: int

    def forward(self, x):
        lead = (slice(None),) * self.dim
        return tuple(x[lead + (i,)] for i in range(x.shape[self.dim]))

    def backward(self, *grads):
        return get_array_module(grads[0]).stack(grads, axis=self.dim)

    def backward_graph(self, *grads):
        return Concatenate.apply(*grads, dim=self.dim, new_dim=True)


class Roll(Function):
    shifts: Any
    dims: Any

    def forward(self, x):
        return get_array_module(x).roll(x, self.shifts, self.dims)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return get_array_module(g).roll(g, back, self.dims)

    def backward_graph(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return Roll.apply(g, shifts=back, dims=self.dims)


def narrow(input: Tensor, dim: int, start: Any, length: int) -> Tensor:
    """The slice [start, start + length) of input along `dim` (a view); start may be negative or a
    0-d integer tensor."""
    d = normalize_dim(dim, input.ndim, "narrow")
    n = input.shape[d] if input.ndim else 1
    start, length = operator.index(start), operator.index(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start ({start}) is out of range for dim {d} of size {n}")
    if start < 0:
        start += n
    if length < 0:
        raise RuntimeError(f"narrow: length must be non-negative, got {length}")
    if start + length > n:
        raise RuntimeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n})."
        )
    return input[(slice(None),) * d + (slice(start, start + length),)]


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along `dim`, as a tuple of tensors without that dim (views)."""
    if input.ndim == 0:
        raise ValueError("unbind: a 0-d tensor has no dim to unbind")
    d = normalize_dim(dim, input.ndim, "unbind")
    if input.shape[d] == 0:
        return ()
    return Unbind.apply(input, dim=d)


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim `dim` into `sizes` (one may be -1)."""
    d = normalize_dim(dim, input.ndim, "unflatten")
    sizes = _ints(sizes, "unflatten", "sizes")
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    inner = _resolve_shape(sizes, input.shape[d], (input.shape[d],), "unflatten")
    return Reshape.apply(input, shape=input.shape[:d] + inner + input.shape[d + 1 :])


def roll(
    input: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None
) -> Tensor:
    """Shift elements along `dims` by `shifts`, wrapping around; without dims, over the
    flattened tensor (shape kept)."""
    many = isinstance(shifts, list | tuple)
    if dims is None:
        if many and len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
        return Roll.apply(input, shifts=operator.index(shifts[0] if many else shifts), dims=None)
    dims = tuple(dims) if isinstance(dims, list | tuple) else (dims,)
    shifts = _ints(shifts if many else (shifts,), "roll", "shifts")
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    dims = tuple(normalize_dim(d, input.ndim, "roll") for d in dims)
    if input.ndim == 0:
        return input
    return Roll.apply(input, shifts=shifts, dims=dims)


def movedim(input: Tensor, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """Move dims `source` to positions `destination` (the others keep their order)."""
    src = tuple(source) if isinstance(source, list | tuple) else (source,)
    dst = tuple(destination) if isinstance(destination, list | tuple) else (destination,)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {src} and destination {dst} must have the same length")
    src = tuple(normalize_dim(d, input.ndim, "movedim") for d in src)
    dst = tuple(normalize_dim(d, input.ndim, "movedim") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dim in source {src} or destination {dst}")
    order = [d for d in range(input.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Permute.apply(input, dims=tuple(order)) if input.ndim else input


moveaxis = movedim
swapdims = transpose


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """transpose under NumPy's name, with PyTorch's argument names for it (axis0, axis1)."""
    return transpose(input, axis0, axis1)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane of `dims`, from the first towards the second."""
    dims = tuple(dims)
    if len(dims) != 2 or input.ndim < 2:
        raise ValueError(f"rot90: needs 2 dims and a tensor of >= 2 dims, got {dims}, {input.ndim}")
    d0, d1 = (normalize_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: the two dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return input
    return Rot90.apply(input, k=k, dim0=d0, dim1=d1)


class Rot90(Function):
    """rot90 by k in {1, 2, 3} quarter turns in the plane (dim0, dim1): a view (a flip and, for
    odd k, a swap of the two dims), as before. Its gradient, the rotation back, is a reversed
    transposed view that a leaf would copy element by element (NumPy's copy of such a view
    of a (1024, 1024) float32: 6.5 ms); backward makes it contiguous in two cheap copies
    instead: the flip (whole rows, or a reversed last dim) and then the transpose, through
    OpenBLAS's omatcopy where blas.ascontiguous takes it (1 ms). Saves nothing."""

    k: int
    dim0: int
    dim1: int

    @staticmethod
    def _turn(a, k, d0, d1):
        """a turned by k quarter turns (1, 2, 3) from d0 towards d1: numpy.rot90's views."""
        xp = get_array_module(a)
        if k == 2:
            return xp.flip(a, (d0, d1))
        if k == 1:
            return xp.swapaxes(xp.flip(a, d1), d0, d1)
        return xp.swapaxes(xp.flip(a, d0), d0, d1)

    def forward(self, x):
        return self._turn(x, self.k, self.dim0, self.dim1)

    def backward(self, g):
        back, d0, d1 = 4 - self.k, self.dim0, self.dim1
        xp = get_array_module(g)
        if xp is not numpy or back == 2:
            return self._turn(g, back, d0, d1)  # a flip alone copies fast enough
        flipped = numpy.ascontiguousarray(numpy.flip(g, d1 if back == 1 else d0))
        return blas.ascontiguous(numpy.swapaxes(flipped, d0, d1))

    def backward_graph(self, g):
        return Rot90.apply(g, k=4 - self.k, dim0=self.dim0, dim1=self.dim1)


def repeat_interleave(
    input: Tensor | None = None,
    repeats: Any = None,
    dim: int | None = None,
    *,
    output_size: int | None = None,
) -> Tensor:
    """Each element (slice along `dim`) repeated `repeats` times in place: [1, 2] -> [1, 1,
    2, 2]; repeats is an int or one count per element; dim=None flattens first. With one
    argument (``repeat_interleave(counts)`` or ``repeat_interleave(repeats=counts)``, PyTorch's
    other overload), the counts give the result 0, 1, 2, ... repeated."""
    if input is None:  # repeat_interleave(repeats=counts)
        if not isinstance(repeats, Tensor):
            raise TypeError("repeat_interleave() missing its input (or a repeats tensor alone)")
        input, repeats = repeats, None
    xp = get_array_module(input.array)
    if repeats is None:  # repeat_interleave(counts)
        if input.ndim != 1 or input.dtype.kind not in "iu":
            raise ValueError("repeat_interleave: repeats must be a 1-D integer tensor")
        return Tensor._wrap(xp.repeat(xp.arange(input.shape[0], dtype=xp.int64), input.array))
    if dim is None:
        input, d = input.reshape(-1), 0
    else:
        d = normalize_dim(dim, input.ndim, "repeat_interleave")
    n = input.shape[d] if input.ndim else 1
    counts = repeats.array if isinstance(repeats, Tensor) else operator.index(repeats)
    if isinstance(counts, int) and counts >= 0 and output_size in (None, n * counts):
        input = input.reshape(1) if input.ndim == 0 else input
        return RepeatInterleave.apply(input, dim=d, repeats=counts)
    if isinstance(counts, int):
        counts = xp.full(n, counts, xp.int64)
    elif counts.ndim == 0 or counts.shape == (1,):
        counts = xp.full(n, int(counts.reshape(-1)[0]), xp.int64)
    elif counts.shape != (n,) or counts.dtype.kind not in "iu":
        raise ValueError(
            f"repeat_interleave: repeats must be an int or {n} integer counts (one per element "
            f"along dim {d}), got shape {tuple(counts.shape)}"
        )
    if type(counts) is not type(input.array):  # counts given on the host for a cuda tensor
        from gradflow.backend import move_array

        counts = move_array(counts, input.device)
    if counts.size and int(counts.min()) < 0:
        raise ValueError("repeat_interleave: repeats can not be negative")
    index = xp.repeat(xp.arange(n, dtype=xp.int64), counts)
    if output_size is not None and index.size != output_size:
        raise ValueError(
            f"repeat_interleave: output_size {output_size} differs from the {index.size} "
            "repeated elements"
        )
    from gradflow.ops.indexing import GetItem

    input = input.reshape(1) if input.ndim == 0 else input
    return GetItem.apply(input, index=(slice(None),) * d + (index,), op_name="repeat_interleave")


class RepeatInterleave(Function):
    """repeat_interleave by one count for every element: a repeat along dim forward, the sum of
    each element's copies backward (a reshape and a sum; the index route scatters them one by
    one, 2.2x torch's time at (512, 1024) repeated twice)."""

    op_name = "repeat_interleave"
    dim: int
    repeats: int

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return get_array_module(x).repeat(x, self.repeats, axis=self.dim)

    def _grouped(self, g: Any) -> tuple:
        d = self.dim
        return (*g.shape[:d], self.x_shape[d], self.repeats, *g.shape[d + 1 :])

    def backward(self, g):
        # with no copies (repeats 0) the sum over the empty axis is zeros of x's shape
        return g.reshape(self._grouped(g)).sum(axis=self.dim + 1)

    def backward_graph(self, g):
        return g.reshape(self._grouped(g)).sum(dim=self.dim + 1)


def broadcast_shapes(*shapes: Any) -> tuple:
    """The shape the given shapes broadcast to (an error naming them when they don't)."""
    import numpy

    try:
        return tuple(
            numpy.broadcast_shapes(*(s if isinstance(s, tuple | list) else (s,) for s in shapes))
        )
    except ValueError:
        raise ValueError(f"broadcast_shapes: shapes {shapes} don't broadcast together") from None


def broadcast_tensors(*tensors: Tensor) -> tuple:
    """The tensors expanded to their common broadcast shape (views)."""
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if t.shape == shape else expand(t, shape) for t in tensors)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at `index` along `dim`, that dim removed (a view): x.select(1, 0) is x[:, 0]."""
    d = normalize_dim(dim, input.ndim, "select")
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    index, n = operator.index(index), input.shape[d]
    if not -n <= index < n:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
            f"dimension {d}"
        )
    return input[(slice(None),) * d + (index,)]


def take(input: Tensor, index: Any) -> Tensor:
    """The elements of the flattened input at `index` (any shape; negative counts from the end)."""
    return input.reshape(-1)[index]


def flipud(input: Tensor) -> Tensor:
    """Reverse dim 0 (up/down)."""
    if input.ndim < 1:
        raise ValueError("flipud: input must be >= 1-d")
    return flip(input, 0)


def fliplr(input: Tensor) -> Tensor:
    """Reverse dim 1 (left/right)."""
    if input.ndim < 2:
        raise ValueError("fliplr: input must be >= 2-d")
    return flip(input, 1)
