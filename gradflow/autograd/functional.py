"""``gradflow.autograd.functional``: PyTorch's ``torch.autograd.functional`` (vjp, jvp,
jacobian, hessian, hvp, vhp), with its signatures and return forms, built on
``gradflow.grad`` and create_graph (differentiable.py). ``grad`` and ``backward`` (defined in
gradients.py) are importable from here as before.

A function's `inputs` may be one Tensor or a tuple of them; results follow the same form (a
Tensor for a Tensor, tuples for tuples), as PyTorch's do. The inputs are detached copies that
require grad (with create_graph, inputs that require grad keep their graph), so the results
are constants unless ``create_graph=True``. jvp uses the double-vjp trick (a reverse pass
through the reverse pass), so every op the function uses needs its double backward; hvp uses
the symmetry of the Hessian (hvp = vhp for twice-differentiable functions), one double
backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradflow.autograd.gradients import backward, grad

__all__ = ["backward", "grad", "hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _as_tuple(x: Any, arg: str, fn: str) -> tuple[bool, tuple]:
    from gradflow.tensor import Tensor

    is_tuple = isinstance(x, tuple | list)
    items = tuple(x) if is_tuple else (x,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"element {i} of {arg}" if is_tuple else arg
            raise TypeError(
                f"{fn}: {where} must be a Tensor (or {arg} a tuple of Tensors), got "
                f"{type(item).__name__}"
            )
    return is_tuple, items


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs that require grad: the tensor itself in the graph (a view) when create_graph
    and it already requires grad, else a detached leaf."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))
        else:
            out.append(t.detach().requires_grad_(True))
    return tuple(out)


def _finish(items: tuple, create_graph: bool) -> tuple:
    """Results are detached unless create_graph (PyTorch's _grad_postprocess)."""
    if create_graph:
        return items
    return tuple(_detach(x) for x in items)


def _detach(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_detach(y) for y in x)
    return None if x is None else x.detach()


def _fill(grads: tuple, like: tuple, strict: bool, fn: str, what: str) -> tuple:
    """None gradients (the output does not depend on that input) as zeros; an error when
    strict."""
    from gradflow.creation import zeros_like

    out = []
    for i, (g, x) in enumerate(zip(grads, like)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"{fn}: the output of the function is independent of input {i} ({what}); "
                    "this is not allowed in strict mode (pass strict=False to get zeros)"
                )
            g = zeros_like(x)
        out.append(g)
    return tuple(out)


def _grad(outputs: tuple, inputs: tuple, grad_outputs: tuple, create_graph: bool) -> tuple:
    """gradflow.grad over the outputs that require grad (those that don't contribute
    nothing); None per input no gradient reaches."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    wanted = [t for t in inputs if t.requires_grad]
    if not pairs or not wanted:
        return (None,) * len(inputs)
    got = iter(
        grad(
            [o for o, _ in pairs],
            wanted,
            [g for _, g in pairs],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
    )
    return tuple(next(got) if t.requires_grad else None for t in inputs)


def _check_v(v: Any, like: tuple, fn: str, what: str) -> tuple:
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(
                f"{fn}: v can be omitted only when {what} is a single Tensor with one element; "
                f"pass v with the shape of {what}"
            )
        from gradflow.creation import ones_like

        return (ones_like(like[0]),)
    _, vs = _as_tuple(v, "v", fn)
    if len(vs) != len(like):
        raise RuntimeError(f"{fn}: v has {len(vs)} Tensors but {what} has {len(like)}")
    for i, (a, b) in enumerate(zip(vs, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(
                f"{fn}: entry {i} of v has shape {tuple(a.shape)} but entry {i} of {what} has "
                f"shape {tuple(b.shape)}; they must match"
            )
    return vs


def _call(func: Callable, inputs: tuple, fn: str) -> tuple[bool, tuple]:
    out = func(*inputs)
    return _as_tuple(out, "the function's output", fn)


def vjp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), v^T J): the vector-Jacobian product, PyTorch's signature. `v` has the
    output's shape (omit it for a one-element output)."""
    from gradflow.autograd.grad_mode import enable_grad

    tuple_in, inputs = _as_tuple(inputs, "inputs", "vjp")
    with enable_grad():
        inputs = _prepare(inputs, create_graph)
        tuple_out, outputs = _call(func, inputs, "vjp")
        vs = _check_v(v, outputs, "vjp", "the output")
        grads = _fill(_grad(outputs, inputs, vs, create_graph), inputs, strict, "vjp", "vjp")
    outputs, grads = _finish(outputs, create_graph), _finish(grads, create_graph)
    return (outputs if tuple_out else outputs[0]), (grads if tuple_in else grads[0])


def jvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), J v): the Jacobian-vector product, PyTorch's signature, by the
    double-vjp trick (u -> J^T u is linear in u; its vjp with v is J v). `v` has the inputs'
    shapes (omit it for a one-element input)."""
    from gradflow.autograd.grad_mode import enable_grad
    from gradflow.creation import zeros_like

    _, inputs = _as_tuple(inputs, "inputs", "jvp")
    with enable_grad():
        inputs = _prepare(inputs, create_graph)
        tuple_out, outputs = _call(func, inputs, "jvp")
        vs = _check_v(v, inputs, "jvp", "inputs")
        us = tuple(zeros_like(o).requires_grad_(True) for o in outputs)
        grads = _grad(outputs, inputs, us, create_graph=True)
        pairs = [(g, v_) for g, v_ in zip(grads, vs) if g is not None and g.requires_grad]
        if pairs:
            got = grad(
                [g for g, _ in pairs],
                list(us),
                [v_ for _, v_ in pairs],
                retain_graph=True,
                create_graph=create_graph,
                allow_unused=True,
            )
        else:
            got = (None,) * len(us)
        out = _fill(tuple(got), outputs, strict, "jvp", "jvp")
    outputs, out = _finish(outputs, create_graph), _finish(out, create_graph)
    return (outputs if tuple_out else outputs[0]), (out if tuple_out else out[0])


def jacobian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """The Jacobian of func at inputs, PyTorch's signature and forms: a Tensor of shape
    ``output.shape + input.shape`` for one output and one input; a tuple over inputs, over
    outputs, or a tuple (outputs) of tuples (inputs). Reverse mode, one backward per output
    element (``vectorize`` is accepted and changes nothing)."""
    from gradflow.autograd.grad_mode import enable_grad

    if strategy != "reverse-mode":
        raise NotImplementedError(
            f"jacobian: strategy={strategy!r} is not supported (gradflow has no forward mode); "
            "use strategy='reverse-mode'"
        )
    tuple_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        inputs = _prepare(inputs, create_graph)
        tuple_out, outputs = _call(func, inputs, "jacobian")
        table = tuple(_jacobian_rows(o, inputs, create_graph, strict) for o in outputs)
    table = tuple(_finish(row, create_graph) for row in table)
    if not tuple_out:
        return table[0] if tuple_in else table[0][0]
    return table if tuple_in else tuple(row[0] for row in table)


def _jacobian_rows(out: Any, inputs: tuple, create_graph: bool, strict: bool) -> tuple:
    """d out / d each input, shaped out.shape + input.shape."""
    from gradflow.creation import zeros, zeros_like
    from gradflow.ops.shape import stack

    n = out.numel()
    rows: list[list] = [[] for _ in inputs]
    flat = out.reshape(-1)
    for j in range(n):
        if out.requires_grad:
            grads = _grad((flat[j],), inputs, (None,), create_graph)
        else:
            grads = (None,) * len(inputs)
        for i, g in enumerate(grads):
            if g is None:
                if strict:
                    raise RuntimeError(
                        f"jacobian: output element {j} is independent of input {i}; this is "
                        "not allowed in strict mode (pass strict=False to get zeros)"
                    )
                g = zeros_like(inputs[i])
            rows[i].append(g)
    result = []
    for x, r in zip(inputs, rows):
        shape = tuple(out.shape) + tuple(x.shape)
        if not r:
            result.append(zeros(shape, dtype=x.dtype, device=x.device))
        else:
            result.append(stack(r).reshape(shape))
    return tuple(result)


def _scalar_func(func: Callable, fn: str) -> Callable:
    def wrapped(*inputs: Any) -> Any:
        out = func(*inputs)
        _, outs = _as_tuple(out, "the function's output", fn)
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError(
                f"{fn}: the function must return a single Tensor with one element, got "
                + ", ".join(str(tuple(o.shape)) for o in outs)
            )
        return outs[0]

    return wrapped


def hessian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """The Hessian of a scalar func at inputs, PyTorch's signature and forms: a Tensor of shape
    ``input.shape + input.shape`` for one input, a tuple of tuples (H[i][j]: inputs i, j) for
    several. The Jacobian of the gradient (taken with create_graph)."""
    from gradflow.creation import zeros_like

    tuple_in, inputs = _as_tuple(inputs, "inputs", "hessian")
    scalar = _scalar_func(func, "hessian")

    def gradient(*xs: Any) -> Any:
        out = scalar(*xs)
        grads = _grad((out,), xs, (None,), create_graph=True)
        if strict and any(g is None for g in grads):
            raise RuntimeError(
                "hessian: the output of the function is independent of an input; this is "
                "not allowed in strict mode (pass strict=False to get zeros)"
            )
        grads = tuple(zeros_like(x) if g is None else g for g, x in zip(grads, xs))
        return grads if tuple_in else grads[0]

    return jacobian(
        gradient,
        inputs if tuple_in else inputs[0],
        create_graph=create_graph,
        strict=strict,
        strategy=outer_jacobian_strategy,
    )


def vhp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), v^T H): a vector-Hessian product of a scalar func, PyTorch's
    signature. `v` has the inputs' shapes."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), H v): a Hessian-vector product of a scalar func, PyTorch's signature.
    Computed as v^T H (the Hessian of a twice-differentiable function is symmetric), which
    needs one double backward where PyTorch's hvp takes two."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(
    func: Callable, inputs: Any, v: Any, create_graph: bool, strict: bool, fn: str
) -> tuple:
    from gradflow.autograd.grad_mode import enable_grad

    tuple_in, inputs = _as_tuple(inputs, "inputs", fn)
    with enable_grad():
        inputs = _prepare(inputs, create_graph)
        out = _scalar_func(func, fn)(*inputs)
        vs = _check_v(v, inputs, fn, "inputs")
        first = _grad((out,), inputs, (None,), create_graph=True)
        if strict and any(g is None for g in first):
            raise RuntimeError(
                f"{fn}: the output of the function is independent of an input; this is not "
                "allowed in strict mode (pass strict=False to get zeros)"
            )
        pairs = [(g, v_) for g, v_ in zip(first, vs) if g is not None and g.requires_grad]
        if pairs:
            wanted = [t for t in inputs]
            got = grad(
                [g for g, _ in pairs],
                wanted,
                [v_ for _, v_ in pairs],
                retain_graph=True,
                create_graph=create_graph,
                allow_unused=True,
            )
        else:
            got = (None,) * len(inputs)
        prod = _fill(tuple(got), inputs, strict, fn, fn)
    (out,), prod = _finish((out,), create_graph), _finish(prod, create_graph)
    return out, (prod if tuple_in else prod[0])
