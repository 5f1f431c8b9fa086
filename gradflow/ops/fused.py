"""Linear + activation in one graph node: y = f(x @ W^T + b), for f in ``FUSED_ACTIVATIONS``.

``nn.Sequential`` runs this op for a ``Linear`` followed by ``ReLU``, ``Sigmoid``, ``Tanh``,
``GELU`` or ``SiLU`` (see gradflow.nn.fusion). It computes what the two unfused nodes compute:

- cpu: the activation op's own NumPy forward and backward (``Function.inner``), then
  Linear's products (``linalg.linear_grads``): the same arithmetic, so the same bits.
- cuda (the kernel route): one pass of ``bias_act_bwd`` (kernels/fused.cu) writes
  dZ = dY * f'(Z) and sums db in a fixed order, without reading dZ back; dW = dZ^T X and
  dX = dZ W go through cuBLAS. When W needs no gradient (a frozen layer), dZ has no second
  reader, and dX = (dY * f'(Z)) W may come from ``fused_act_matmul_bwd`` (kernels/matmul.cu),
  which never writes dZ: gradflow.kernels.dispatch picks that or cuBLAS per shape class.

Saved for backward: x (for dW), W (for dx), and on the kernel route Z, which the kernels
differentiate at; on cpu, whatever the activation op saves (a bool mask for relu).
"""

from __future__ import annotations

from typing import Any

from gradflow.autograd import function
from gradflow.autograd.function import Function
from gradflow.backend.routing import uses_kernels
from gradflow.kernels import activations
from gradflow.ops import unary
from gradflow.ops.linalg import check_linear_args, linear_grads, rows_matmul

# activation name (kernels/activations.py's table) -> (the unfused op, its parameters)
FUSED_ACTIVATIONS = {
    a.name: (unary.ACTIVATION_FUNCTIONS[a.function], a.params)
    for a in activations.TABLE
    if a.code is not None and a.function is not None
}


class LinearActivation(Function):
    """y = f(x @ W^T + b) in one node (x: (..., in), W: (out, in), b: (out,)); self.activation
    names f (a key of FUSED_ACTIVATIONS)."""

    activation: str

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        z = rows_matmul(x, weight.T)  # 3-D x on cuda: one 2-D GEMM, no copy of weight.T
        if bias is not None:
            z += bias
        self.kernel = uses_kernels(z)
        op, params = FUSED_ACTIVATIONS[self.activation]
        self.act = op.inner(self._recording and not self.kernel, **params)
        y = self.act.forward(z)
        self.x_shape = x.shape
        saved = (x if need_w else None, weight if need_x else None)
        if self.kernel:
            self.save_for_backward(*saved, z)
        else:
            self.save_for_backward(*saved, *self.act.saved_arrays)
        return y

    def backward(self, g):
        x, weight, *act_saved = self.saved_arrays
        if self.kernel:
            return self._kernel_backward(g, x, weight, act_saved[0])
        self.act.restore_saved(tuple(act_saved))
        dz = self.act.backward(g)
        self.act.restore_saved(())  # the engine frees the originals with this node's
        return linear_grads(dz, x, weight, self.needs_input_grad)

    def _kernel_backward(self, g, x, weight, z):
        from gradflow.kernels import bias_act_bwd, dispatch, fused_act_matmul_bwd

        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        g2 = g.reshape(-1, g.shape[-1])
        z2 = z.reshape(g2.shape)
        act = self.activation
        gx = gw = db = None
        fused_dx = (
            need_x
            and not need_w  # dZ has no second reader: dX need not write it
            and dispatch.choose("act_matmul_bwd", g2.size * weight.shape[1], g2) == "fused"
        )
        if fused_dx:
            gx = fused_act_matmul_bwd(g2, z2, weight.T, act)
        elif need_x or need_w:
            dz, db = bias_act_bwd(g2, z2, act)
            if need_x:
                gx = dz @ weight
            if need_w:
                gw = dz.T @ x.reshape(-1, x.shape[-1])
        if need_b and db is None:  # the bias sum alone: dY f'(Z) is summed, never written
            _, db = bias_act_bwd(g2, z2, act, write_dz=False)
        if gx is not None:
            gx = gx.reshape(self.x_shape)
        if len(self.needs_input_grad) == 2:
            return gx, gw
        return gx, gw, db if need_b else None

    def backward_graph(self, g):
        # The unfused pair rebuilt around this node's saved arrays: a linear node on this node's
        # edges, and the activation node on it (its saved arrays those the fused forward kept,
        # or, on the kernel route, made again from z); each differentiates in its own
        # backward_graph.
        from gradflow.ops.linalg import LinearFunction

        x, weight, *act_saved = self.saved_arrays
        linear = LinearFunction.__new__(LinearFunction)
        linear._saved, linear._saved_epoch = (x, weight), self._saved_epoch
        linear._edges, linear.needs_input_grad = self._edges, self.needs_input_grad
        op, params = FUSED_ACTIVATIONS[self.activation]
        act = op.inner(True, **params)
        if self.kernel:
            act.forward(act_saved[0])  # z: the activation saves what its backward reads
        else:
            act.restore_saved(tuple(act_saved))
        act._saved_epoch = self._saved_epoch
        act._edges = ((linear, 0),)
        if function._recorders:  # nodes made by hand: a re-linking recomputation must see them
            function.record(linear)
            function.record(act)
        return linear.backward_graph(act.backward_graph(g))


def linear_activation(x: Any, weight: Any, bias: Any, activation: str) -> Any:
    """f(x @ weight.T + bias) as one graph node; activation is a key of FUSED_ACTIVATIONS.

    The arguments are checked as ``ops.linalg.linear`` checks them."""
    if activation not in FUSED_ACTIVATIONS:
        raise ValueError(
            f"linear_activation: unknown activation {activation!r}; expected one of "
            f"{sorted(FUSED_ACTIVATIONS)}"
        )
    check_linear_args(x, weight, bias, "linear_activation")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return LinearActivation.apply(*inputs, activation=activation)
