"""Module's full backward hooks (register_full_backward_hook and its pre-hook): the module's
inputs and outputs pass through one identity node each, whose backward hands the hooks the
gradients of the outputs and of the inputs, as torch's BackwardHook does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import is_grad_enabled
from gradflow.tensor import Tensor, _make_tensor

if TYPE_CHECKING:
    from gradflow.nn.module import Module


class _HookIdentity(Function):
    """Identity on the tensors passed through it; its backward hands their gradients to a
    module's backward hooks (PyTorch's BackwardHookFunction)."""

    op_name = "backward_hook_function"
    on_grads: Any  # called with the tuple of incoming gradient arrays, returns the outgoing

    def forward(self, *arrays):
        return tuple(a.view() for a in arrays)  # views: the same storage, as in PyTorch

    def backward(self, *grads):
        return self.on_grads(grads)


def _as_tensor(array: Any) -> Tensor | None:
    return None if array is None else _make_tensor(array, None, False, 0)


class _BackwardHooks:
    """The state of one call of a module with backward hooks: which positional inputs and
    outputs pass through the identity nodes, and the grad_output the hooks see."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.n_inputs = 0
        self.input_positions: list[int] = []
        self.grad_output: tuple = ()

    @staticmethod
    def _positions(values: Any) -> list[int]:
        return [
            i
            for i, v in enumerate(values)
            if isinstance(v, Tensor) and v.requires_grad and v.dtype.kind == "f"
        ]

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        if not is_grad_enabled():
            return args
        self.input_positions = self._positions(args)
        if not self.input_positions:
            return args
        outs = _HookIdentity.apply(
            *(args[i] for i in self.input_positions), on_grads=self._on_input_grads
        )
        args = list(args)
        for i, t in zip(self.input_positions, outs):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, out: Any) -> Any:
        single = isinstance(out, Tensor)
        values = (out,) if single else out
        if not is_grad_enabled() or not isinstance(values, tuple | list):
            return out
        positions = self._positions(values)
        if not positions:
            return out
        self.n_outputs, self.output_positions = len(values), positions
        outs = _HookIdentity.apply(*(values[i] for i in positions), on_grads=self._on_output_grads)
        values = list(values)
        for i, t in zip(positions, outs):
            values[i] = t
        if single:
            return values[0]
        return type(out)(*values) if hasattr(out, "_fields") else type(out)(values)  # namedtuple

    def _pack(self, positions: list[int], count: int, arrays: tuple) -> tuple:
        packed: list = [None] * count
        for i, a in zip(positions, arrays):
            packed[i] = _as_tensor(a)
        return tuple(packed)

    def _unpack(self, kind: str, positions: list[int], count: int, values: Any, old: tuple):
        """The arrays of a hook's replacement tuple at `positions` (checked like PyTorch)."""
        if not isinstance(values, tuple | list) or len(values) != count:
            got = len(values) if isinstance(values, tuple | list) else type(values).__name__
            raise RuntimeError(
                f"Backward hook returned an invalid number of {kind}, got {got}, but expected "
                f"{count}"
            )
        arrays = []
        for i, a in zip(positions, old):
            v = values[i]
            if v is None:
                arrays.append(a * 0)
            elif isinstance(v, Tensor) and tuple(v.shape) == tuple(a.shape):
                arrays.append(v.array)
            else:
                raise RuntimeError(
                    f"Backward hook of {type(self.module).__name__} returned {kind}[{i}] of "
                    f"shape {tuple(getattr(v, 'shape', ()))}; expected a Tensor of shape "
                    f"{tuple(a.shape)} or None"
                )
        return tuple(arrays)

    def _on_output_grads(self, grads: tuple) -> tuple:
        module = self.module
        grad_output = self._pack(self.output_positions, self.n_outputs, grads)
        for hook in tuple(module._backward_pre_hooks.values()):
            changed = hook(module, grad_output)
            if changed is not None:
                grads = self._unpack(
                    "grad_output", self.output_positions, self.n_outputs, changed, grads
                )
                grad_output = self._pack(self.output_positions, self.n_outputs, grads)
        self.grad_output = grad_output
        if not self.input_positions:  # no input needs a gradient: PyTorch calls the hooks now
            grad_input = (None,) * self.n_inputs
            for hook in tuple(module._backward_hooks.values()):
                hook(module, grad_input, grad_output)
        return grads

    def _on_input_grads(self, grads: tuple) -> tuple:
        module = self.module
        for hook in tuple(module._backward_hooks.values()):
            grad_input = self._pack(self.input_positions, self.n_inputs, grads)
            changed = hook(module, grad_input, self.grad_output)
            if changed is not None:
                grads = self._unpack(
                    "grad_input", self.input_positions, self.n_inputs, changed, grads
                )
        return grads
