"""Trigonometric and hyperbolic functions: sin, cos, tan, asin, acos, atan, sinh, cosh,
asinh, acosh, atanh (tanh, an activation, is in unary.py).

Memory: each saves its input or its output, whichever its backward reads.
"""

from __future__ import annotations

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops.unary import _float_input, sqrt
from gradflow.tensor import Tensor


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sin(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).cos(x)

    def backward_graph(self, g):
        return g * cos(graph_input(self, 0, self.saved_arrays[0]))


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cos(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return -g * get_array_module(x).sin(x)

    def backward_graph(self, g):
        return -g * sin(graph_input(self, 0, self.saved_arrays[0]))


class Tan(Function):
    op_name = "tan"

    def forward(self, x):
        y = get_array_module(x).tan(x)
        self.save_for_backward(y)  # the output: d tan = 1 + tan^2
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * (1 + y * y)

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return g * (1 + y * y)


class Asin(Function):
    op_name = "asin"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arcsin(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt(1 - x * x)

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g / sqrt(1 - x * x)


class Acos(Function):
    op_name = "acos"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arccos(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return -g / get_array_module(x).sqrt(1 - x * x)

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return -g / sqrt(1 - x * x)


class Atan(Function):
    op_name = "atan"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arctan(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 + x * x)

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g / (1 + x * x)


class Sinh(Function):
    op_name = "sinh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sinh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).cosh(x)

    def backward_graph(self, g):
        return g * cosh(graph_input(self, 0, self.saved_arrays[0]))


class Cosh(Function):
    op_name = "cosh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cosh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).sinh(x)

    def backward_graph(self, g):
        return g * sinh(graph_input(self, 0, self.saved_arrays[0]))


class Asinh(Function):
    op_name = "asinh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arcsinh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt(x * x + 1)

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g / sqrt(x * x + 1)


class Acosh(Function):
    op_name = "acosh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arccosh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt((x - 1) * (x + 1))  # PyTorch's form

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g / sqrt((x - 1) * (x + 1))


class Atanh(Function):
    op_name = "atanh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arctanh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 - x * x)

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g / (1 - x * x)


def sin(input: Tensor) -> Tensor:
    return Sin.apply(_float_input(input, "sin"))


def cos(input: Tensor) -> Tensor:
    return Cos.apply(_float_input(input, "cos"))


def tan(input: Tensor) -> Tensor:
    return Tan.apply(_float_input(input, "tan"))


def asin(input: Tensor) -> Tensor:
    return Asin.apply(_float_input(input, "asin"))


def acos(input: Tensor) -> Tensor:
    return Acos.apply(_float_input(input, "acos"))


def atan(input: Tensor) -> Tensor:
    return Atan.apply(_float_input(input, "atan"))


def sinh(input: Tensor) -> Tensor:
    return Sinh.apply(_float_input(input, "sinh"))


def cosh(input: Tensor) -> Tensor:
    return Cosh.apply(_float_input(input, "cosh"))


def asinh(input: Tensor) -> Tensor:
    return Asinh.apply(_float_input(input, "asinh"))


def acosh(input: Tensor) -> Tensor:
    return Acosh.apply(_float_input(input, "acosh"))


def atanh(input: Tensor) -> Tensor:
    return Atanh.apply(_float_input(input, "atanh"))
