"""gradflow: tensors with reverse-mode autodiff on NumPy (cpu) or CuPy (cuda)."""

__version__ = "0.1.0"

# autograd first: it enters the tensor/ops/autograd import circle through autograd/function.py,
# the one entry that loads it whole (docs/DESIGN.md §10).
from gradflow import autograd, cuda, nn
from gradflow.autograd import (
    Function,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from gradflow.backend import CudaUnavailableError, Device, get_array_module
from gradflow.backend import Device as device
from gradflow.creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from gradflow.dtypes import (
    bool,
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    uint8,
)
from gradflow.ops.arithmetic import (
    add,
    clamp,
    clip,
    div,
    eq,
    ge,
    gt,
    isfinite,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    sub,
    where,
)
from gradflow.ops.conversion import clone
from gradflow.ops.indexing import (
    gather,
    index_select,
    masked_select,
    take_along_axis,
    take_along_dim,
)
from gradflow.ops.linalg import matmul
from gradflow.ops.reduction import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from gradflow.ops.shape import (
    broadcast_to,
    cat,
    chunk,
    concat,
    contiguous,
    expand,
    flatten,
    flip,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    tile,
    transpose,
    unsqueeze,
    view,
)
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.unary import (
    abs,
    cos,
    elu,
    exp,
    expm1,
    gelu,
    leaky_relu,
    log,
    log1p,
    relu,
    rsqrt,
    sigmoid,
    sign,
    silu,
    sin,
    softplus,
    sqrt,
    tanh,
)
from gradflow.random import Generator, manual_seed
from gradflow.serialization import CheckpointError, load, save
from gradflow.tensor import Tensor

# isort: split
# data and optim import gradflow.tensor directly, which needs the core above loaded first.
from gradflow import data, optim
