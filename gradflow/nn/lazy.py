"""Lazy modules, as torch.nn's: layers whose input size is inferred from their first input.

``LazyLinear(out_features)``, ``LazyConv{1,2,3}d(out_channels, kernel_size, ...)``,
``LazyConvTranspose{1,2,3}d``, ``LazyBatchNorm{1,2,3}d()`` and ``LazyInstanceNorm{1,2,3}d()``
take their concrete class's arguments minus the input size (in_features, in_channels,
num_features). Until the first call their weights (and a norm's running statistics) are
``UninitializedParameter`` / ``UninitializedBuffer`` placeholders (gradflow.nn.parameter). The
first call infers the size from the input, materializes the placeholders in place (the same
objects: an optimizer built before holds them already), initializes them as the concrete
class does, and turns the module into that class (``cls_to_become``: a LazyLinear becomes a
Linear).

    >>> import gradflow
    >>> layer = LazyLinear(3)
    >>> layer.has_uninitialized_params()
    True
    >>> y = layer(gradflow.ones(2, 5))
    >>> type(layer).__name__, tuple(layer.weight.shape)
    ('Linear', (3, 5))

As in PyTorch: ``state_dict()`` before the first call holds the placeholders themselves;
``load_state_dict`` on the lazy module materializes them to the checkpoint's shapes (gradflow
also sets the inferred size from them; loading through a parent module needs a forward
first); an optimizer that creates state at construction (Adagrad) must be built after the
first call, as PyTorch's documentation says for all lazy modules.
"""

from __future__ import annotations

import itertools
from typing import Any

from gradflow.nn import init
from gradflow.nn.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from gradflow.nn.linear import Linear
from gradflow.nn.module import check_size
from gradflow.nn.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)
from gradflow.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from gradflow.tensor import Tensor


class LazyModuleMixin:
    """What the lazy modules share (torch.nn.modules.lazy.LazyModuleMixin): a forward pre-hook
    that calls ``initialize_parameters(*args)`` on the first call, then turns the module into
    ``cls_to_become``; ``has_uninitialized_params()``; loading a state_dict into placeholders.
    """

    cls_to_become: type | None = None

    def _lazy_start(self) -> None:
        """Register the first call's hook (after the concrete constructor has run)."""
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self) -> bool:
        """Whether any of this module's own parameters or buffers is still a placeholder."""
        values = itertools.chain(self._parameters.values(), self._buffers.values())
        return any(is_lazy(v) for v in values)

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        """Infer the sizes from the first input and materialize the placeholders."""
        raise NotImplementedError(
            f"{type(self).__name__}: a lazy module must define initialize_parameters(input)"
        )

    def _sizes_from_loaded(self) -> None:
        """Set the inferred size from parameters a state_dict materialized."""

    def _materialize_from(self, state_dict: dict[str, Any], prefix: str) -> None:
        """Give each placeholder the shape of its value in state_dict (under prefix), as
        Module.load_state_dict asks every submodule before it loads (this module's own load,
        or its parent's)."""
        own = itertools.chain(self._parameters.items(), self._buffers.items())
        for name, value in list(own):
            loaded = state_dict.get(prefix + name)
            if is_lazy(value) and loaded is not None and not is_lazy(loaded):
                shape = loaded.array.shape if isinstance(loaded, Tensor) else loaded.shape
                value.materialize(tuple(shape))
        if not self.has_uninitialized_params():
            self._sizes_from_loaded()

    def _uninitialized(self, device: Any, dtype: Any) -> None:
        """Replace weight and bias (those not None) with placeholders."""
        for name in ("weight", "bias"):
            if self._parameters.get(name) is not None:
                self._parameters[name] = UninitializedParameter(device=device, dtype=dtype)


def _infer_parameters(module: Any, args: tuple, kwargs: dict) -> None:
    """The first call's pre-hook: initialize, check, drop the hook, become the concrete class."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise RuntimeError(f"module {type(module).__name__} has not been fully initialized")
    module._initialize_hook.remove()
    del module._initialize_hook
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become


def _first_tensor(module: Any, args: tuple) -> Tensor:
    if not args or not isinstance(args[0], Tensor):
        got = type(args[0]).__name__ if args else "nothing"
        raise TypeError(f"{type(module).__name__}: expected an input Tensor, got {got}")
    return args[0]


# ---- Linear ------------------------------------------------------------------------------------


class LazyLinear(LazyModuleMixin, Linear):
    """Linear with in_features inferred from the first input's last dim:
    LazyLinear(out_features, bias=True, device=None, dtype=None)."""

    cls_to_become = Linear

    def __init__(
        self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        out_features = check_size(type(self).__name__, "out_features", out_features)
        object.__setattr__(self, "_building", True)
        Linear.__init__(self, 1, out_features, bias, device, dtype)
        del self.__dict__["_building"]
        self.in_features = 0
        self._uninitialized(device, dtype)
        self._lazy_start()

    def reset_parameters(self) -> None:
        if not self.__dict__.get("_building") and not self.has_uninitialized_params():
            Linear.reset_parameters(self)

    def initialize_parameters(self, input: Any, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():
            return
        x = _first_tensor(self, (input,))
        if x.ndim == 0:
            raise ValueError(f"{type(self).__name__}: expected an input of shape (..., features)")
        self.in_features = int(x.shape[-1])
        self.weight.materialize((self.out_features, self.in_features))
        if self.bias is not None:
            self.bias.materialize((self.out_features,))
        self.reset_parameters()

    def _sizes_from_loaded(self) -> None:
        self.in_features = int(self.weight.shape[1])


# ---- convolutions ------------------------------------------------------------------------------


class _LazyConvMixin(LazyModuleMixin):
    """The lazy convolutions: in_channels from the first input's channel dim."""

    def _lazy_conv(self, device: Any, dtype: Any) -> None:
        del self.__dict__["_building"]
        self.in_channels = 0
        self._uninitialized(device, dtype)
        self._lazy_start()

    def reset_parameters(self) -> None:
        if not self.__dict__.get("_building") and not self.has_uninitialized_params():
            self.cls_to_become.reset_parameters(self)

    def initialize_parameters(self, input: Any, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():
            return
        x = _first_tensor(self, (input,))
        n = self._dims
        if x.ndim not in (n + 1, n + 2):
            raise RuntimeError(
                f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                f"{type(self).__name__}, but got input of size: {list(x.shape)}"
            )
        self.in_channels = int(x.shape[1] if x.ndim == n + 2 else x.shape[0])
        if self.in_channels % self.groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels must be divisible by groups: the input "
                f"has {self.in_channels} channels, groups={self.groups}"
            )
        self._materialize_conv()
        self.reset_parameters()

    def _materialize_conv(self) -> None:
        groups, k = self.groups, self.kernel_size
        if self._transposed:
            self.weight.materialize((self.in_channels, self.out_channels // groups, *k))
        else:
            self.weight.materialize((self.out_channels, self.in_channels // groups, *k))
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))

    def _sizes_from_loaded(self) -> None:
        shape = self.weight.shape
        self.in_channels = int(shape[0] if self._transposed else shape[1] * self.groups)


def _lazy_conv_init(
    self: Any, concrete: type, out_channels: Any, args: tuple, kwargs: dict
) -> None:
    """Run the concrete constructor with a stand-in in_channels (the groups, so that its checks
    pass) and no initialization, then put placeholders in."""
    groups = kwargs.get("groups", 1)
    object.__setattr__(self, "_building", True)
    concrete.__init__(
        self, groups if isinstance(groups, int) and groups > 0 else 1, out_channels, *args, **kwargs
    )
    self._lazy_conv(kwargs.get("device"), kwargs.get("dtype"))


_CONV_DOC = """{concrete} with in_channels inferred from the first input: {name}(out_channels,
    kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros',
    device=None, dtype=None)."""

_CONV_TRANSPOSE_DOC = """{concrete} with in_channels inferred from the first input:
    {name}(out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1, padding_mode='zeros', device=None, dtype=None)."""


def _lazy_conv_class(name: str, concrete: type) -> type:
    """A LazyConv*/LazyConvTranspose* class: the concrete class's signature minus in_channels
    (torch's argument order: a transposed conv has output_padding before groups, dilation
    after bias)."""
    if concrete._transposed:

        def __init__(
            self: Any,
            out_channels: int,
            kernel_size: Any,
            stride: Any = 1,
            padding: Any = 0,
            output_padding: Any = 0,
            groups: int = 1,
            bias: bool = True,
            dilation: Any = 1,
            padding_mode: str = "zeros",
            device: Any = None,
            dtype: Any = None,
        ) -> None:
            _lazy_conv_init(
                self,
                concrete,
                out_channels,
                (kernel_size, stride, padding, output_padding),
                {
                    "groups": groups,
                    "bias": bias,
                    "dilation": dilation,
                    "padding_mode": padding_mode,
                    "device": device,
                    "dtype": dtype,
                },
            )

        doc = _CONV_TRANSPOSE_DOC
    else:

        def __init__(
            self: Any,
            out_channels: int,
            kernel_size: Any,
            stride: Any = 1,
            padding: Any = 0,
            dilation: Any = 1,
            groups: int = 1,
            bias: bool = True,
            padding_mode: str = "zeros",
            device: Any = None,
            dtype: Any = None,
        ) -> None:
            _lazy_conv_init(
                self,
                concrete,
                out_channels,
                (kernel_size, stride, padding, dilation),
                {
                    "groups": groups,
                    "bias": bias,
                    "padding_mode": padding_mode,
                    "device": device,
                    "dtype": dtype,
                },
            )

        doc = _CONV_DOC
    __init__.__qualname__ = f"{name}.__init__"
    namespace = {
        "__init__": __init__,
        "cls_to_become": concrete,
        "__doc__": doc.format(concrete=concrete.__name__, name=name),
        "__module__": __name__,
        "__qualname__": name,
    }
    return type(name, (_LazyConvMixin, concrete), namespace)


LazyConv1d = _lazy_conv_class("LazyConv1d", Conv1d)
LazyConv2d = _lazy_conv_class("LazyConv2d", Conv2d)
LazyConv3d = _lazy_conv_class("LazyConv3d", Conv3d)
LazyConvTranspose1d = _lazy_conv_class("LazyConvTranspose1d", ConvTranspose1d)
LazyConvTranspose2d = _lazy_conv_class("LazyConvTranspose2d", ConvTranspose2d)
LazyConvTranspose3d = _lazy_conv_class("LazyConvTranspose3d", ConvTranspose3d)


# ---- normalization -----------------------------------------------------------------------------


class _LazyNormMixin(LazyModuleMixin):
    """The lazy batch and instance norms: num_features from the first input's channel dim."""

    _unbatched_rank: int | None = None  # instance norms: the rank of an unbatched input

    def _lazy_norm(
        self,
        concrete: type,
        eps: float,
        momentum: Any,
        affine: bool,
        track_running_stats: bool,
        device: Any,
        dtype: Any,
        bias: bool,
    ) -> None:
        concrete.__init__(
            self, 1, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.num_features = 0
        self._uninitialized(device, dtype)
        if track_running_stats:
            for name in ("running_mean", "running_var"):
                self._buffers[name] = UninitializedBuffer(device=device, dtype=dtype)
        self._lazy_start()

    def reset_parameters(self) -> None:
        """PyTorch's _NormBase.reset_parameters: running statistics reset, weight ones, bias
        zeros (once materialized)."""
        if self.has_uninitialized_params() or not self.num_features:
            return
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def initialize_parameters(self, input: Any, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params() and self.num_features:
            return
        x = _first_tensor(self, (input,))
        if x.ndim < 2 and x.ndim != self._unbatched_rank:
            raise ValueError(
                f"{type(self).__name__}: expected an input with a channel dim, got shape "
                f"{tuple(x.shape)}"
            )
        unbatched = x.ndim == self._unbatched_rank
        self.num_features = int(x.shape[0] if unbatched else x.shape[1])
        for name in ("weight", "bias"):
            if self._parameters.get(name) is not None:
                self._parameters[name].materialize((self.num_features,))
        for name in ("running_mean", "running_var"):
            if self._buffers.get(name) is not None:
                self._buffers[name].materialize((self.num_features,))
        self.reset_parameters()

    def _sizes_from_loaded(self) -> None:
        for name in ("weight", "running_mean"):
            value = self._parameters.get(name, self._buffers.get(name))
            if value is not None:
                self.num_features = int(value.shape[0])
                return


_NORM_DOC = """{concrete} with num_features inferred from the first input's channel dim:
    {name}(eps=1e-05, momentum=0.1, affine={affine}, track_running_stats={track}, device=None,
    dtype=None)."""


def _lazy_norm_class(
    name: str, concrete: type, affine: bool, track: bool, unbatched_rank: int | None
) -> type:
    def __init__(
        self: Any,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = affine,
        track_running_stats: bool = track,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        self._lazy_norm(concrete, eps, momentum, affine, track_running_stats, device, dtype, bias)

    namespace = {
        "__init__": __init__,
        "cls_to_become": concrete,
        "_unbatched_rank": unbatched_rank,
        "__doc__": _NORM_DOC.format(
            concrete=concrete.__name__, name=name, affine=affine, track=track
        ),
        "__module__": __name__,
        "__qualname__": name,
    }
    return type(name, (_LazyNormMixin, concrete), namespace)


LazyBatchNorm1d = _lazy_norm_class("LazyBatchNorm1d", BatchNorm1d, True, True, None)
LazyBatchNorm2d = _lazy_norm_class("LazyBatchNorm2d", BatchNorm2d, True, True, None)
LazyBatchNorm3d = _lazy_norm_class("LazyBatchNorm3d", BatchNorm3d, True, True, None)
LazyInstanceNorm1d = _lazy_norm_class("LazyInstanceNorm1d", InstanceNorm1d, True, True, 2)
LazyInstanceNorm2d = _lazy_norm_class("LazyInstanceNorm2d", InstanceNorm2d, True, True, 3)
LazyInstanceNorm3d = _lazy_norm_class("LazyInstanceNorm3d", InstanceNorm3d, True, True, 4)

__all__ = [
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "LazyLinear",
    "LazyModuleMixin",
]
