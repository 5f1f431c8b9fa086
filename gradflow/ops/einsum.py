"""einsum, and the products built on it: tensordot, inner, kron; cross (linalg.cross) and
bilinear (nn.functional.bilinear), which live here beside them but are built on other ops.

Memory: Einsum keeps its operands broadcast to the equation's sizes (views, no copies), which
each other's gradients read.
"""

from __future__ import annotations

import string
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import unbroadcast
from gradflow.ops.linalg import _tensor_args
from gradflow.tensor import Tensor


class Einsum(Function):
    """NumPy's/CuPy's einsum on operands broadcast to the equation's sizes. The gradient of
    each operand is another einsum: the output gradient with the other operands, onto that
    operand's subscripts (an identity matrix per repeated subscript, a vector of ones per
    subscript summed inside that operand only), then summed over its broadcast dims.
    Saves the operands, which each other's gradients read."""

    op_name = "einsum"
    terms: tuple
    output: str
    sizes: dict

    def forward(self, *arrays):
        xp = get_array_module(arrays[0])
        self.shapes = [a.shape for a in arrays]
        full = [
            xp.broadcast_to(a, tuple(self.sizes[c] for c in term))
            for a, term in zip(arrays, self.terms)
        ]
        self.save_for_backward(*full)
        return _einsum(",".join(self.terms) + "->" + self.output, full)

    def backward(self, g):
        full = self.saved_arrays
        xp = get_array_module(g)
        grads = []
        for i, (term, shape) in enumerate(zip(self.terms, self.shapes)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(t, a) for j, (t, a) in enumerate(zip(self.terms, full)) if j != i]
            terms = [self.output] + [t for t, _ in others]
            operands = [g] + [a for _, a in others]
            seen = set("".join(terms))
            fresh = iter(c for c in _LETTERS if c not in seen and c not in term)
            target = ""
            for c in term:
                if c in target:  # a repeated subscript (a diagonal): spread by an identity
                    d = next(fresh)
                    terms.append(c + d)
                    operands.append(xp.eye(self.sizes[c], dtype=g.dtype))
                    target += d
                else:
                    if c not in seen:  # summed inside this operand only: broadcast back
                        terms.append(c)
                        operands.append(xp.ones(self.sizes[c], dtype=g.dtype))
                        seen.add(c)
                    target += c
            grad = _einsum(",".join(terms) + "->" + target, operands)
            grads.append(unbroadcast(grad, shape))
        return tuple(grads)

    def backward_graph(self, g):
        # backward's einsums on Tensors: each operand's gradient is an einsum of g with the
        # other operands (graph inputs, broadcast as forward broadcast them), so it is itself
        # differentiated by this op.
        from gradflow.autograd.differentiable import const, graph_input
        from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph

        full = self.saved_arrays
        xp = get_array_module(g.array)
        tensors = []
        for j, (a, shape) in enumerate(zip(full, self.shapes)):
            lead = a.ndim - len(shape)  # forward's broadcast_to, undone: the input's own values
            index = (0,) * lead + tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)
            tensors.append(graph_input(self, j, a[index]).expand(a.shape))
        grads = []
        for i, (term, shape) in enumerate(zip(self.terms, self.shapes)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(t, a) for j, (t, a) in enumerate(zip(self.terms, tensors)) if j != i]
            terms = [self.output] + [t for t, _ in others]
            operands = [g] + [a for _, a in others]
            sizes = dict(self.sizes)
            seen = set("".join(terms))
            fresh = iter(c for c in _LETTERS if c not in seen and c not in term)
            target = ""
            for c in term:
                if c in target:
                    d = next(fresh)
                    sizes[d] = self.sizes[c]
                    terms.append(c + d)
                    operands.append(const(xp.eye(self.sizes[c], dtype=g.dtype)))
                    target += d
                else:
                    if c not in seen:
                        terms.append(c)
                        operands.append(const(xp.ones(self.sizes[c], dtype=g.dtype)))
                        seen.add(c)
                    target += c
            grad = Einsum.apply(*operands, terms=tuple(terms), output=target, sizes=sizes)
            grads.append(unbroadcast_graph(grad, shape))
        return tuple(grads)


_LETTERS = string.ascii_letters


def _einsum(equation: str, arrays: Any) -> Any:
    """xp.einsum; NumPy with three or more operands is told to pick a contraction order (its
    default sums over every index at once, O(product of all sizes))."""
    xp = get_array_module(arrays[0])
    if xp is numpy and len(arrays) == 2:
        out = _matmul_einsum(equation, *arrays)
        if out is not None:
            return out
    if xp is numpy and len(arrays) > 2:
        return numpy.einsum(equation, *arrays, optimize=True)
    return xp.einsum(equation, *arrays)


def _matmul_einsum(equation: str, a: Any, b: Any) -> Any:
    """A two-operand NumPy einsum as one batched matmul (BLAS; numpy.einsum without optimize
    never calls it, and with it still loops for subscripts kept from both operands): the
    subscripts in both operands and the output are the batch, those in both but not the output
    are contracted, those of one operand kept in the output are its rows (a) or columns (b);
    a subscript of one operand only and not kept is summed first. None (numpy.einsum) for a
    repeated subscript in one term and for anything but two floating arrays of one dtype."""
    if a.dtype != b.dtype or a.dtype.kind not in "fc":
        return None
    lhs, out = equation.split("->")
    ta, tb = lhs.split(",")
    if len(set(ta)) != len(ta) or len(set(tb)) != len(tb):
        return None
    # summed inside one operand only
    only_a = [c for c in ta if c not in tb and c not in out]
    if only_a:
        a = a.sum(axis=tuple(ta.index(c) for c in only_a))
        ta = "".join(c for c in ta if c not in only_a)
    only_b = [c for c in tb if c not in ta and c not in out]
    if only_b:
        b = b.sum(axis=tuple(tb.index(c) for c in only_b))
        tb = "".join(c for c in tb if c not in only_b)
    batch = [c for c in out if c in ta and c in tb]
    rows = [c for c in out if c in ta and c not in tb]
    cols = [c for c in out if c in tb and c not in ta]
    inner = [c for c in ta if c in tb and c not in out]
    size = dict(zip(ta, a.shape)) | dict(zip(tb, b.shape))

    def prod(letters: list) -> int:
        n = 1
        for c in letters:
            n *= size[c]
        return n

    nb, nr, nc, nk = prod(batch), prod(rows), prod(cols), prod(inner)
    a2 = a.transpose([ta.index(c) for c in batch + rows + inner]).reshape(nb, nr, nk)
    b2 = b.transpose([tb.index(c) for c in batch + inner + cols]).reshape(nb, nk, nc)
    result = numpy.matmul(a2, b2).reshape([size[c] for c in batch + rows + cols])
    order = batch + rows + cols
    if order == list(out):
        return result
    # C order, as numpy.einsum's own output
    return numpy.ascontiguousarray(result.transpose([order.index(c) for c in out]))


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation: ``einsum("ij,jk->ik", a, b)`` is a @ b. Subscripts are letters,
    ``...`` stands for broadcast leading dims, and without ``->`` the output is the letters
    that appear once, in alphabetical order (after the ``...`` dims). The operands may also be
    passed as one list."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(
            "einsum: the first argument must be the equation string; the sublist format "
            "einsum(op1, [0, 1], op2, [1, 2]) is not supported, write the subscripts as letters"
        )
    tensors = _tensor_args("einsum", **{f"operand {i}": t for i, t in enumerate(operands)})
    if not tensors:
        raise RuntimeError("einsum(): must provide at least one operand")
    terms, output, sizes = _parse_einsum(equation, [tuple(t.shape) for t in tensors])
    return Einsum.apply(*tensors, terms=terms, output=output, sizes=sizes)


def _parse_einsum(equation: str, shapes: list) -> tuple:
    """(input terms, output term, size of each letter) with every ``...`` spelled out in
    letters the equation does not use; RuntimeError for an equation that does not fit."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(
            f"einsum(): the equation {equation!r} names {len(terms)} operands but "
            f"{len(shapes)} were given"
        )
    for part in [*terms, out]:
        bad = set(part.replace("...", "")) - set(_LETTERS)
        if bad or part.count("...") > 1:
            raise RuntimeError(
                f"einsum(): invalid subscripts {part!r} in {equation!r}: use letters a-z, A-Z "
                "and at most one '...' per operand"
            )
    unused = [c for c in _LETTERS if c not in eq]
    dims = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if len(shape) < named or ("..." not in term and len(shape) != named):
            raise RuntimeError(
                f"einsum(): the subscripts {term!r} need {named} dims"
                f"{' or more' if '...' in term else ''}, but the operand has shape {shape}"
            )
        dims.append(len(shape) - named)
    ellipsis = "".join(unused[: max(dims, default=0)])
    terms = [t.replace("...", ellipsis[len(ellipsis) - n :]) for t, n in zip(terms, dims)]
    if arrow:
        out = out.replace("...", ellipsis)
    else:
        letters = "".join(terms)
        out = ellipsis + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        )
    for c in out:
        if out.count(c) > 1:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once")
        if not any(c in t for t in terms):
            raise RuntimeError(
                f"einsum(): output subscript {c} does not appear in any input operand"
            )
    sizes: dict = {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        for c, n in zip(term, shape):
            seen = sizes.get(c, 1)
            if n != seen and n != 1 and seen != 1:
                raise RuntimeError(
                    f"einsum(): subscript {c} has size {n} for operand {i} which does not "
                    f"broadcast with previously seen size {seen}"
                )
            sizes[c] = n if seen == 1 else seen
    return tuple(terms), out, sizes


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Contract the last `dims` dims of a with the first `dims` of b, or the dims listed in
    ``dims=([dims of a], [dims of b])``."""
    from gradflow.ops._util import normalize_dim

    a, b = _tensor_args("tensordot", a=a, b=b)
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise RuntimeError(
                f"tensordot: dims must be in [0, {min(a.ndim, b.ndim)}] for shapes "
                f"{tuple(a.shape)} and {tuple(b.shape)}, got {dims}"
            )
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        da = [normalize_dim(d, a.ndim, "tensordot") for d in da]
        db = [normalize_dim(d, b.ndim, "tensordot") for d in db]
        if len(da) != len(db):
            raise RuntimeError(
                f"tensordot: both dims lists must have one length, got {len(da)} and {len(db)}"
            )
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(
                f"tensordot: contracted dimensions need to match, but first has size "
                f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in dim {j}"
            )
    sa = _LETTERS[: a.ndim]
    sb = list(_LETTERS[a.ndim : a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = "".join(c for i, c in enumerate(sa) if i not in da)
    out += "".join(c for j, c in enumerate(sb) if j not in db)
    return einsum(f"{sa},{''.join(sb)}->{out}", a, b)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum over the last dims of input and other (a product with a 0-d side)."""
    from gradflow.ops.arithmetic import mul

    a, b = _tensor_args("inner", input=input, other=other)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return tensordot(a, b, ([-1], [-1]))


class Kron(Function):
    """The Kronecker product of two arrays of one float dtype and one rank: forward one
    broadcast product laid out as the result (a dims interleaved with b's), backward the
    gradient transposed once to (a's dims, b's dims), whose products with b and with a (two
    GEMVs) are a's and b's gradients. Saves both operands."""

    op_name = "kron"

    def _interleaved(self, g):
        """g as [a0, b0, a1, b1, ...] transposed to (a's dims, b's dims), one copy, as a
        (a.size, b.size) matrix; the same on a Tensor."""
        a_shape, b_shape = self.shapes
        n = len(a_shape)
        pairs = tuple(s for pair in zip(a_shape, b_shape) for s in pair)
        order = tuple(range(0, 2 * n, 2)) + tuple(range(1, 2 * n, 2))
        return g.reshape(pairs).permute(order) if isinstance(g, Tensor) else (
            get_array_module(g).ascontiguousarray(g.reshape(pairs).transpose(order))
        )  # fmt: skip

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        self.save_for_backward(a, b)
        xp = get_array_module(a)
        n = a.ndim
        # the last dims' pairs written out first (a's elements repeated, b's last dim tiled:
        # small arrays), so the product's rows are runs of a.shape[-1] * b.shape[-1] elements,
        # not of b.shape[-1] (a (64, 64) x (16, 16) forward: 0.96 -> 0.2 ms)
        a_rep = xp.repeat(a, b.shape[-1], axis=-1)
        b_rep = xp.tile(b, (1,) * (n - 1) + (a.shape[-1],))
        last = (a.shape[-1] * b.shape[-1],)
        a_view = a_rep.reshape(tuple(s for k in range(n - 1) for s in (a.shape[k], 1)) + last)
        b_view = b_rep.reshape(tuple(s for k in range(n - 1) for s in (1, b.shape[k])) + last)
        return (a_view * b_view).reshape(tuple(x * y for x, y in zip(a.shape, b.shape)))

    def backward(self, g):
        a, b = self.saved_arrays
        rows = self._interleaved(g).reshape(a.size, b.size)
        ga = (rows @ b.reshape(-1)).reshape(a.shape) if self.needs_input_grad[0] else None
        gb = (a.reshape(-1) @ rows).reshape(b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import graph_input

        a = graph_input(self, 0, self.saved_arrays[0])
        b = graph_input(self, 1, self.saved_arrays[1])
        rows = self._interleaved(g).reshape(a.numel(), b.numel())
        ga = (rows @ b.reshape(-1)).reshape(a.shape) if self.needs_input_grad[0] else None
        gb = (a.reshape(-1) @ rows).reshape(b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: blocks input[i, j] * other, of shape input.shape * other.shape."""
    from gradflow.ops.shape import reshape

    a, b = _tensor_args("kron", input=input, other=other)
    n = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (n - a.ndim) + tuple(a.shape))
    b = reshape(b, (1,) * (n - b.ndim) + tuple(b.shape))
    if a.dtype == b.dtype and a.dtype.kind == "f" and n > 0:
        return Kron.apply(a, b)
    sa, sb = _LETTERS[:n], _LETTERS[n : 2 * n]
    pairs = "".join(x + y for x, y in zip(sa, sb))
    shape = tuple(x * y for x, y in zip(a.shape, b.shape))
    return reshape(einsum(f"{sa},{sb}->{pairs}", a, b), shape)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along dim (input and other broadcast)."""
    from gradflow.ops._util import normalize_dim
    from gradflow.ops.shape import reshape

    a, b = _tensor_args("linalg.cross", input=input, other=other)
    n = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (n - a.ndim) + tuple(a.shape))
    b = reshape(b, (1,) * (n - b.ndim) + tuple(b.shape))
    d = normalize_dim(dim, n, "linalg.cross")
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise RuntimeError(
            f"linalg.cross: inputs dimension {dim} must have length 3, got {a.shape[d]} and "
            f"{b.shape[d]}"
        )
    # the components as views along d, six products and a cat: NumPy's three-operand einsum
    # with the Levi-Civita tensor took 117 ms forward and backward for 2^18 vectors (torch 7)
    from gradflow.ops.shape import cat

    a0, a1, a2 = (a.narrow(d, k, 1) for k in range(3))
    b0, b1, b2 = (b.narrow(d, k, 1) for k in range(3))
    return cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """torch.cross: the cross product along dim (the first dim of size 3 when None)."""
    if dim is None:
        shape = numpy.broadcast_shapes(tuple(input.shape), tuple(other.shape))
        sizes = [i for i, n in enumerate(shape) if n == 3]
        if not sizes:
            raise RuntimeError("cross: no dimension of size 3 in input")
        dim = sizes[0] - len(shape)
    return linalg_cross(input, other, dim=dim)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y[..., o] = input1[..., i] weight[o, i, j] input2[..., j] + bias[o], as
    torch.nn.functional.bilinear: input1 and input2 share their leading dims (no broadcasting,
    as torch). Computed as one GEMM, input1 [B, I] @ weight laid out [I, O*J], then per row and
    output the dot with input2 (a multiply and a sum over J): NumPy's three-operand einsum took
    1.5 s forward and backward at B = 4096, I = J = 64, O = 32, against 0.43 s for torch."""
    if (
        weight.ndim != 3
        or input1.shape[-1:] != weight.shape[1:2]
        or (input2.shape[-1:] != weight.shape[2:3])
    ):
        raise RuntimeError(
            f"bilinear: expected input1 (..., {weight.shape[1] if weight.ndim == 3 else '?'}), "
            f"input2 (..., {weight.shape[2] if weight.ndim == 3 else '?'}) and a 3-D weight, "
            f"got {tuple(input1.shape)}, {tuple(input2.shape)} and {tuple(weight.shape)}"
        )
    lead = tuple(input1.shape[:-1])
    if lead != tuple(input2.shape[:-1]):
        raise RuntimeError(
            f"bilinear(): input batch dimensions do not match: input1 of shape "
            f"{tuple(input1.shape)} and input2 of shape {tuple(input2.shape)} must agree in all "
            "but their last dim"
        )
    o, i, j = weight.shape
    x1, x2 = input1.reshape(-1, i), input2.reshape(-1, j)
    t = x1.matmul(weight.permute(1, 0, 2).reshape(i, o * j)).reshape(-1, o, j)
    out = (t * x2.unsqueeze(1)).sum(-1).reshape(*lead, o)
    return out if bias is None else out + bias
