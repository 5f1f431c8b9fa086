"""Identity, Linear (y = x W^T + b) and Bilinear, with PyTorch's default initialization."""

from __future__ import annotations

import math
from typing import Any

from gradflow import creation
from gradflow.nn import init
from gradflow.nn.module import Module, check_size
from gradflow.nn.parameter import Parameter
from gradflow.ops.einsum import bilinear
from gradflow.ops.linalg import linear
from gradflow.tensor import Tensor


class Identity(Module):
    """Returns its input unchanged (a placeholder that keeps a model's structure)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Linear(Module):
    """y = x W^T + b for x of shape (..., in_features).

    weight (out_features, in_features) and bias (out_features,) start from U(-k, k) with
    k = 1/sqrt(in_features), as in PyTorch. in_features and out_features must be ints >= 1
    (a negative one is a RuntimeError, as in PyTorch; see gradflow.nn.module.check_size).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        in_features = check_size(type(self).__name__, "in_features", in_features)
        out_features = check_size(type(self).__name__, "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(creation.empty(out_features, in_features, device=device,
                                               dtype=dtype))  # fmt: skip
        if bias:
            self.bias = Parameter(creation.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.linear_default_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return linear(x, self.weight, self.bias)

    def check_input(self, x: Any) -> None:
        """A ValueError unless x is a Tensor of shape (..., in_features)."""
        if not isinstance(x, Tensor) or x.ndim == 0 or x.shape[-1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"Linear(in_features={self.in_features}): expected input of shape "
                f"(..., {self.in_features}), got {shape}"
            )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Bilinear(Module):
    """y = x1^T A x2 + b for x1 (..., in1_features) and x2 (..., in2_features): weight
    (out_features, in1_features, in2_features) and bias (out_features,) start from U(-k, k)
    with k = 1/sqrt(in1_features), as in PyTorch."""

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        name = type(self).__name__
        self.in1_features = check_size(name, "in1_features", in1_features)
        self.in2_features = check_size(name, "in2_features", in2_features)
        self.out_features = check_size(name, "out_features", out_features)
        shape = (self.out_features, self.in1_features, self.in2_features)
        self.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(self.out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
