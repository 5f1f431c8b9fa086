"""Function: the base of every differentiable op, and the one hot path that records the graph.

An op subclasses Function and writes two methods on raw arrays (NumPy or CuPy):

    class Square(Function):
        def forward(self, x):
            self.save_for_backward(x)          # keeps x only while a graph is recorded
            return x * x

        def backward(self, grad):
            (x,) = self.saved_arrays
            return 2 * x * grad                # one gradient per input (None where not needed)

    y = Square.apply(t)                        # Tensors in, Tensors out

An op declares its parameters as annotated class attributes; ``apply`` takes them as keyword
arguments and sets them on the op (a default value makes one optional):

    class Clip(Function):
        low: float | None
        high: float | None = None

    Clip.apply(x, low=0.0)                     # self.low == 0.0, self.high is None

An unknown keyword is a TypeError at the call naming the op and the keyword; so is a missing
required one, where forward first reads it (not an AttributeError deep inside). Every op also
takes ``op_name``: the name of the public function the user called (``conv1d`` for the op
conv1d and conv2d share), which messages and the grad_fn's repr use (``<Conv1dBackward>``); a
class may set a default ``op_name``. Inputs that are not Tensors (Python scalars, arrays) are
passed to forward as they are and treated as constants. ``self.needs_input_grad`` says which
inputs need a gradient: backward computes nothing for the others and returns None in their place.

Graph links: an output Tensor holds its Function strongly; a Function holds, per input, an
edge to the node that produced it (its Function, or the leaf Tensor itself). Nothing points
back, so a graph is freed as soon as its last Tensor is.
"""

from __future__ import annotations

import inspect
from typing import Any, NoReturn

import numpy

from gradflow.autograd import anomaly as _anomaly
from gradflow.autograd import grad_mode

_state = grad_mode.state
_ndarray = numpy.ndarray
_generic = numpy.generic


class Function:
    """Base class of differentiable operations; see the module docstring for the contract."""

    # Class-level defaults keep the per-call cost down: apply sets only what differs.
    _recording = False
    _saved: tuple | None = None
    _saved_epoch: int = 0
    _checked: bool = False
    _input_meta: tuple = ()
    _freed = False
    _num_outputs = 1
    _edges: tuple = ()
    _pre_hooks: dict | None = None
    _retained: dict | None = None
    _anomaly_trace: Any = None  # where forward ran, recorded only in anomaly mode
    needs_input_grad: tuple = ()
    # The public name of the op for messages and the grad_fn's repr ("" : the class name).
    op_name = ""
    # The declared parameters (see the module docstring), filled in by __init_subclass__.
    _params: frozenset = frozenset({"op_name"})
    _required_params: frozenset = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = set()
        for klass in cls.__mro__:
            if klass is Function or not issubclass(klass, Function):
                continue
            for name, annotation in inspect.get_annotations(klass).items():
                if not name.startswith("_") and "ClassVar" not in str(annotation):
                    declared.add(name)
        cls._params = frozenset(declared | {"op_name"})
        cls._required_params = frozenset(n for n in declared if not hasattr(cls, n))
        # A Function written outside gradflow gets its outputs and gradients checked (shape,
        # type), so a mistake in it is named instead of surfacing as a NumPy error later.
        cls._checked = not cls.__module__.startswith("gradflow.")
        if isinstance(cls.__dict__.get("forward"), staticmethod):
            # PyTorch's kind: forward(ctx, *args) on Tensors (autograd/ctx_function.py).
            from gradflow.autograd.ctx_function import ctx_apply

            cls.apply = classmethod(ctx_apply)

    def forward(self, *arrays: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(*arrays)")

    def backward(self, *grad_outputs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement backward(*grad_outputs) to be differentiated"
        )

    def backward_graph(self, *grad_outputs: Any) -> Any:
        """The differentiable form of backward, used only under ``create_graph=True``: the same
        formula on Tensors (the incoming gradients; the forward's inputs and outputs rebuilt with
        ``gradflow.autograd.differentiable.graph_input`` / ``graph_output``), written with
        gradflow ops, so the gradients it returns carry a graph. One per input, None where
        ``needs_input_grad`` is False. An op without one: its gradients raise, naming it, when
        differentiated again (differentiable.py)."""
        from gradflow.autograd.differentiable import missing_message

        raise RuntimeError(missing_message(self))

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward; a no-op when nothing is being recorded (no_grad)."""
        if self._recording:
            self._saved = arrays

    @property
    def saved_arrays(self) -> tuple:
        """The arrays passed to save_for_backward (freed after backward)."""
        if self._freed:
            raise RuntimeError(_freed_message(self))
        return self._saved or ()

    @classmethod
    def inner(cls, recording: bool, **params: Any) -> Function:
        """An instance of this one-input op for another op to call directly, on arrays (a fused
        op that reuses this op's math): ``fn.forward(x)``, later ``fn.backward(g)``. It saves
        for backward only when ``recording``; the outer op keeps ``fn.saved_arrays`` among its
        own saved arrays and hands them back (``fn.restore_saved``) before calling backward, so
        the engine frees them with the outer node's."""
        fn = cls.__new__(cls)
        if params:
            if not cls._params.issuperset(params):
                _reject_params(cls, params)
            fn.__dict__.update(params)
        missing = cls._required_params - params.keys()
        if missing:
            raise _missing_param(cls, min(missing))
        if recording:
            fn._recording = True
            fn.needs_input_grad = (True,)
        return fn

    def restore_saved(self, arrays: tuple) -> None:
        """Give an inner op (see ``inner``) back the arrays it saved in forward."""
        self._saved = arrays

    @property
    def name(self) -> str:
        """The op's name in messages: its op_name (the function the user called), else the
        class name. Calling it, PyTorch's ``grad_fn.name()``, gives the node's name
        (``"MaxPool1dBackward"``)."""
        return _NodeName(self.op_name or type(self).__name__, self)

    def __repr__(self) -> str:
        # PyTorch's spelling of a backward node: op_name "max_pool1d" -> MaxPool1dBackward.
        op = self.op_name
        name = "".join(w[:1].upper() + w[1:] for w in op.split("_")) if op else type(self).__name__
        return f"<{name}Backward>"

    @property
    def next_functions(self) -> tuple:
        """PyTorch's graph links, one (node, output index) per input: the producing node, an
        AccumulateGrad for a leaf that requires grad, (None, 0) for a constant."""
        return tuple(
            (None, 0) if e is None else (AccumulateGrad(e[0]), 0) if e[1] == -1 else e
            for e in self._edges
        )

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run forward on the inputs' arrays; record the graph when a gradient is needed."""
        fn = cls.__new__(cls)
        if params:
            if not cls._params.issuperset(params):
                _reject_params(cls, params)
            fn.__dict__.update(params)
        enabled = _state.enabled
        arrays = []
        edges = []
        first = None
        recording = False
        # One pass over the inputs: arrays for forward, edges for backward, and the
        # device/dtype check (this loop runs for every op, so it stays flat).
        for x in inputs:
            if isinstance(x, Tensor):
                a = x.array
                arrays.append(a)
                if first is None:
                    first = a
                elif (
                    type(a) is not type(first)
                    or (type(a) is not _ndarray and a.device != first.device)  # cuda:0 vs cuda:1
                    or (
                        a.dtype is not first.dtype
                        and (a.dtype.kind == "f" or first.dtype.kind == "f")
                    )
                ):
                    _check_compatible(fn, [t for t in inputs if isinstance(t, Tensor)])
                if _any_rebase[0] and enabled and _versions.stale_view(a, x._epoch):
                    _raise_stale_view(fn, x)
                if x._requires_grad and enabled:
                    gf = x.grad_fn
                    edges.append((x, -1) if gf is None else (gf, x._output_nr))
                    recording = True
                else:
                    edges.append(None)
            else:
                arrays.append(x)
                edges.append(None)
        if recording:
            fn._recording = True
            fn.needs_input_grad = tuple([e is not None for e in edges])
        else:
            fn.needs_input_grad = (False,) * len(inputs)

        try:
            out = fn.forward(*arrays)
        except AttributeError as exc:  # free unless raised (zero-cost try)
            if exc.obj is fn and exc.name in cls._required_params:
                raise _missing_param(cls, exc.name) from None
            raise
        if _anomaly.enabled:  # the one read anomaly mode costs per op when it is off
            _anomaly.check_forward(fn, out)
        if cls._checked:
            _check_forward_output(fn, out)

        if type(out) is tuple:
            outs = tuple(_as_array(o) for o in out)
            if not recording:
                return tuple(_make(o, None, False, 0) for o in outs)
            fn._num_outputs = len(outs)
            fn._output_meta = tuple((o.shape, o.dtype) for o in outs)
            _link(fn, edges, inputs)
            return tuple(
                _make(o, fn, True, i) if o.dtype.kind in "fc" else _make(o, None, False, 0)
                for i, o in enumerate(outs)
            )
        if type(out) is not _ndarray and isinstance(out, _generic):
            out = numpy.asarray(out)
        if not recording or out.dtype.kind not in "fc":
            return _make(out, None, False, 0)  # integer/bool results carry no gradient
        _link(fn, edges, inputs)
        return _make(out, fn, True, 0)


def _reject_params(cls: type, params: dict) -> NoReturn:
    """The TypeError for keyword arguments that are not the op's declared parameters."""
    unknown = ", ".join(repr(k) for k in sorted(params.keys() - cls._params))
    raise TypeError(
        f"{cls.__name__}.apply() got unexpected keyword argument(s) {unknown}; "
        f"{cls.__name__} declares the parameters: {', '.join(sorted(cls._params))}"
    )


def _missing_param(cls: type, name: str) -> TypeError:
    """The error for a required parameter that apply was not given (found when forward reads
    it, so apply pays nothing for the check)."""
    return TypeError(f"{cls.__name__}.apply() missing required keyword argument {name!r}")


def _raise_stale_view(fn: Function, x: Tensor) -> NoReturn:
    raise RuntimeError(
        f"{fn.name}: an input (shape {tuple(x.shape)}) shares memory with a tensor that was "
        "written in place, with a gradient recorded, after this input was made (it is a view "
        "taken before an in-place write to the tensor it views, or the tensor a view of which "
        "was written); it shows the new values but not their history, so gradients through it "
        "would be wrong. Use the tensor that was written, or take the view again after the "
        "write (e.g. index the tensor again)."
    )


def _check_forward_output(fn: Function, out: Any) -> None:
    """A user Function's forward must return an array or a tuple of arrays."""
    outs = out if type(out) is tuple else (out,)
    for i, o in enumerate(outs):
        if not (hasattr(o, "shape") and hasattr(o, "dtype")) or isinstance(o, Tensor):
            what = "a Tensor" if isinstance(o, Tensor) else f"a {type(o).__name__}"
            where = f"output {i}" if type(out) is tuple else "its output"
            raise TypeError(
                f"{fn.name}.forward returned {what} as {where}; forward works on arrays: return "
                "a NumPy/CuPy array, or a tuple of them for several outputs"
            )


# Lists collecting every node recorded while one is pushed: utils/checkpoint.py learns which
# nodes its segment made (the graph's edges point only backwards, into older nodes too). A node
# goes into every list pushed, not only the innermost: a recomputation nested in another
# (differentiable.py re-links what it records) must show its nodes to the outer one too.
_recorders: list[list] = []


def record(node: Function) -> None:
    """Show a node made by hand (its ``_edges`` set directly, not through ``apply``) to the
    recorders, as ``_link`` shows the others: a recomputation that re-links its fresh leaves
    (differentiable.decomposed_backward_graph) must find it too."""
    for recorded in _recorders:
        recorded.append(node)


def _link(fn: Function, edges: list, inputs: tuple) -> None:
    """Record the edges, and the write epoch the saved arrays are valid at (versions.py)."""
    fn._edges = tuple(edges)
    if _recorders:
        for recorded in _recorders:
            recorded.append(fn)
    if fn._checked:
        fn._input_meta = tuple(
            (x.shape, x.dtype) if isinstance(x, Tensor) else None for x in inputs
        )
    if fn._saved:
        fn._saved_epoch = _versions._epoch[0]


def _as_array(x: Any) -> Any:
    if type(x) is not _ndarray and isinstance(x, _generic):
        return numpy.asarray(x)
    return x


def _check_compatible(fn: Function, tensors: list) -> None:
    """One device per op; float dtypes must agree (elementwise arithmetic has promoted them
    before it gets here, as PyTorch does; every other op refuses a mix)."""
    first = tensors[0].array
    kind = type(first)
    fdtype = first.dtype if first.dtype.kind == "f" else None
    for t in tensors[1:]:
        a = t.array
        if type(a) is not kind or (kind is not _ndarray and a.device != first.device):
            _raise_mismatch(fn.name, tensors, "device")
        if a.dtype.kind == "f":
            if fdtype is None:
                fdtype = a.dtype
            elif a.dtype != fdtype:
                _raise_mismatch(fn.name, tensors, "dtype")


def _raise_mismatch(op: str, tensors: list, what: str) -> None:
    desc = ", ".join(
        f"Tensor(shape={tuple(t.shape)}, dtype={t.dtype}, device={t.device})" for t in tensors
    )
    if what == "device":
        advice = "move them to one device first, e.g. x.to('cuda') or x.cpu()"
        raise RuntimeError(f"{op}: expected all tensors on the same device, got {desc}; {advice}")
    raise DtypeMismatchError(
        f"{op}: expected floating tensors of one dtype, got {desc}; convert one "
        "with .float() or .double() (as in PyTorch, only elementwise arithmetic promotes "
        "float32 and float64)"
    )


class DtypeMismatchError(TypeError, RuntimeError):
    """An op other than elementwise arithmetic given float tensors of two dtypes: a TypeError
    (gradflow's kind for dtype errors) and a RuntimeError (PyTorch's)."""


def _freed_message(fn: Function) -> str:
    return (
        f"Trying to backward through {fn.name} a second time, but its saved arrays "
        "were freed after the first backward. Pass retain_graph=True to the first backward() "
        "(or gradflow.grad()) if you need to backward through the graph again."
    )


from gradflow.autograd import versions as _versions  # noqa: E402
from gradflow.autograd.versions import _any_rebase  # noqa: E402
from gradflow.tensor import Tensor  # noqa: E402
from gradflow.tensor import _make_tensor as _make  # noqa: E402  (tensor.py imports the ops, which import us)


class _NodeName(str):
    """A node's op name (``grad_fn.name == "conv1d"``) that, called as PyTorch's
    ``grad_fn.name()``, returns the node's name (``"Conv1dBackward"``)."""

    def __new__(cls, op: str, node: Function) -> _NodeName:
        self = super().__new__(cls, op)
        self.node = node  # its repr is built only when called: messages use the str alone
        return self

    def __call__(self) -> str:
        return repr(self.node)[1:-1]


class AccumulateGrad:
    """The node ``next_functions`` names for a leaf: ``variable`` is the leaf Tensor."""

    next_functions = ()

    def __init__(self, variable: Any) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"
