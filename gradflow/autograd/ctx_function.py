"""PyTorch-style custom Functions: static ``forward(ctx, *args)`` / ``backward(ctx, *grads)``
on Tensors, with ``ctx.save_for_backward`` and ``ctx.saved_tensors``.

gradflow's own ops write forward/backward on raw arrays (function.py). A subclass of Function
whose ``forward`` is a staticmethod is PyTorch's kind instead, and ``apply`` runs it here: the
user's forward runs on Tensors under no_grad, then one node (``_CtxNode``) records the graph
around its outputs; that node's backward calls the user's backward on Tensors (under no_grad)
and hands the engine arrays. PyTorch 2's ``setup_context(ctx, inputs, output)`` with a
ctx-less forward works too.
"""

from __future__ import annotations

from typing import Any

from gradflow.autograd import grad_mode
from gradflow.autograd.function import Function


class FunctionCtx:
    """The ``ctx`` a PyTorch-style Function's forward and backward share; it also holds any
    attribute the user sets on it (``ctx.scale = 2``)."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self.non_differentiable: set[int] = set()
        self._saved: tuple = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        return self._saved

    def mark_non_differentiable(self, *tensors: Any) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors: Any) -> None:
        """Accepted for PyTorch code that writes an input in place in forward."""

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward gets None (not zeros) for outputs no gradient reached."""
        self.materialize_grads = bool(value)


class _CtxNode(Function):
    """The graph node around a PyTorch-style Function's outputs."""

    user: Any  # the user's Function class
    ctx: Any
    outputs: tuple  # the arrays the user's forward returned
    single: bool

    def forward(self, *arrays: Any) -> Any:
        return self.outputs[0] if self.single else self.outputs

    def checked(self, result: Any) -> tuple:
        """The user's backward's result as a tuple of one gradient per forward argument (a
        lone gradient wrapped; trailing Nones past the arguments allowed); RuntimeError naming
        the Function when it returned fewer, or more that are not None. Shared by backward and,
        under create_graph, autograd/differentiable.py."""
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self.needs_input_grad)
        if len(result) < n or any(r is not None for r in result[n:]):
            raise RuntimeError(
                f"function {self.user.__name__}.backward returned {len(result)} gradients, but "
                f"forward took {n} arguments: return one per argument (None for non-tensors)"
            )
        return result

    def backward(self, *grads: Any) -> tuple:
        ctx = self.ctx
        wrapped = tuple(
            None if g is None and not ctx.materialize_grads else Tensor._wrap(g) for g in grads
        )
        with grad_mode.no_grad():
            result = self.checked(self.user.backward(ctx, *wrapped))
        out = []
        for needed, r in zip(self.needs_input_grad, result):
            out.append(r.array if needed and isinstance(r, Tensor) else r if needed else None)
        return tuple(out)


def ctx_apply(cls: type, *args: Any, **kwargs: Any) -> Any:
    """``apply`` of a PyTorch-style Function (see the module docstring)."""
    enabled = grad_mode.state.enabled
    needs = tuple(isinstance(a, Tensor) and a.requires_grad and enabled for a in args)
    ctx = FunctionCtx(needs)
    with grad_mode.no_grad():
        if _has_setup_context(cls):
            result = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, result)
        else:
            result = cls.forward(ctx, *args, **kwargs)
    single = not isinstance(result, tuple)
    results = (result,) if single else result
    for i, r in enumerate(results):
        if not isinstance(r, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward returned a {type(r).__name__} as output {i}; "
                "a PyTorch-style Function's forward returns Tensors"
            )
    outs = _CtxNode.apply(
        *args,
        user=cls,
        ctx=ctx,
        outputs=tuple(r.array for r in results),
        single=single,
        op_name=cls.__name__,
    )
    outs = (outs,) if single else outs
    for r, o in zip(results, outs):
        if id(r) in ctx.non_differentiable:
            o.detach_()
    return outs[0] if single else outs


def _has_setup_context(cls: type) -> bool:
    return any("setup_context" in k.__dict__ for k in cls.__mro__ if k is not Function)


from gradflow.tensor import Tensor  # noqa: E402  (tensor.py imports the ops, which import us)
