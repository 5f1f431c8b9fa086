"""gradflow: tensors with reverse-mode autodiff on NumPy (cpu) or CuPy (cuda)."""

__version__ = "0.1.0"

import math as _math

# autograd first: it enters the tensor/ops/autograd import circle through autograd/function.py,
# the one entry that loads it whole (docs/DESIGN.md §10).
from gradflow import autograd, cuda, nn

# isort: split
from gradflow import accelerator, amp, backends, distributions, jit, linalg, special, testing
from gradflow.autograd import (
    Function,
    enable_grad,
    grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from gradflow.backend import CudaUnavailableError, Device, get_array_module
from gradflow.backend import Device as device
from gradflow.compat import (
    are_deterministic_algorithms_enabled,
    autocast,
    compile,
    equal,
    get_float32_matmul_precision,
    get_num_threads,
    is_floating_point,
    is_tensor,
    numel,
    set_float32_matmul_precision,
    set_num_threads,
    set_printoptions,
    use_deterministic_algorithms,
)
from gradflow.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from gradflow.dtypes import (
    bfloat16,
    bool,
    cdouble,
    cfloat,
    complex64,
    complex128,
    double,
    dtype,
    finfo,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    iinfo,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
)
from gradflow.layout import (
    channels_last,
    channels_last_3d,
    contiguous_format,
    layout,
    memory_format,
    preserve_format,
    strided,
)
from gradflow.legacy_types import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from gradflow.ops.activations import (
    celu,
    celu_,
    hardshrink,
    prelu,
    relu_,
    rrelu,
    rrelu_,
    selu,
    selu_,
    threshold,
    threshold_,
)
from gradflow.ops.arithmetic import (
    add,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    div,
    divide,
    eq,
    floor_divide,
    fmod,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    multiply,
    ne,
    neg,
    pow,
    remainder,
    rsub,
    sub,
    subtract,
    true_divide,
    where,
)
from gradflow.ops.construction import (
    as_strided,
    block_diag,
    cartesian_prod,
    combinations,
    diagflat,
    diagonal_scatter,
    index_reduce,
    narrow_copy,
    negative,
    range,  # torch.range (deprecated there: end inclusive)
    ravel,
    select_scatter,
    slice_scatter,
    t,
    tril_indices,
    triu_indices,
    unravel_index,
    vander,
)
from gradflow.ops.conversion import clone
from gradflow.ops.decompositions import cholesky, det, logdet, slogdet
from gradflow.ops.decompositions import inv as inverse
from gradflow.ops.diagonals import (
    diag,
    diag_embed,
    diagonal,
    trace,
    tril,
    triu,
)
from gradflow.ops.differences import cumulative_trapezoid, diff, gradient, trapezoid, trapz
from gradflow.ops.distance import cdist, cosine_similarity, pairwise_distance
from gradflow.ops.einsum import cross, einsum, inner, kron, tensordot
from gradflow.ops.gamma import digamma, igamma, igammac, lgamma, mvlgamma, polygamma
from gradflow.ops.indexing import (
    gather,
    index_select,
    masked_select,
    take_along_axis,
    take_along_dim,
)
from gradflow.ops.linalg import (
    addbmm,
    addmm,
    addmv,
    addr,
    baddbmm,
    bmm,
    chain_matmul,
    dot,
    ger,
    matmul,
    mm,
    mv,
    outer,
    vdot,
)
from gradflow.ops.matrix_functions import matrix_exp
from gradflow.ops.matrix_functions import matrix_power_legacy as matrix_power
from gradflow.ops.norms import norm
from gradflow.ops.pointwise_extras import (
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    fmax,
    fmin,
    frexp,
    gcd,
    heaviside,
    isin,
    isreal,
    lcm,
    ldexp,
    logaddexp2,
    nextafter,
)
from gradflow.ops.pointwise_math import (
    addcdiv,
    addcmul,
    allclose,
    arctan2,
    atan2,
    copysign,
    deg2rad,
    float_power,
    hypot,
    isclose,
    lerp,
    logaddexp,
    logit,
    nan_to_num,
    rad2deg,
    signbit,
    xlogy,
)
from gradflow.ops.random_ops import bernoulli, multinomial
from gradflow.ops.reduction import (
    all,
    amax,
    amin,
    aminmax,
    any,
    argmax,
    argmin,
    cummax,
    cummin,
    cumprod,
    cumsum,
    logcumsumexp,
    logsumexp,
    max,
    mean,
    median,
    min,
    nanmean,
    nansum,
    prod,
    quantile,
    std,
    std_mean,
    sum,
    var,
    var_mean,
)
from gradflow.ops.rounding import ceil, fix, floor, frac, round, trunc
from gradflow.ops.scatter import (
    index_add,
    index_copy,
    index_fill,
    index_put,
    masked_fill,
    masked_scatter,
    put,
    scatter,
    scatter_add,
    scatter_reduce,
)
from gradflow.ops.shape import (
    broadcast_shapes,
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    contiguous,
    expand,
    flatten,
    flip,
    fliplr,
    flipud,
    moveaxis,
    movedim,
    narrow,
    permute,
    repeat,
    repeat_interleave,
    reshape,
    roll,
    rot90,
    select,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    take,
    tile,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    view,
)
from gradflow.ops.softmax import log_softmax, softmax
from gradflow.ops.sorting import (
    argsort,
    argwhere,
    bincount,
    bucketize,
    count_nonzero,
    histc,
    kthvalue,
    mode,
    msort,
    nonzero,
    searchsorted,
    sort,
    topk,
    unique,
    unique_consecutive,
)
from gradflow.ops.special import erf, erfc, erfinv
from gradflow.ops.special_functions import i0, sinc
from gradflow.ops.spectral import pinverse
from gradflow.ops.spectral import qr_legacy as qr
from gradflow.ops.spectral import svd_legacy as svd
from gradflow.ops.stacking import (
    atleast_1d,
    atleast_2d,
    atleast_3d,
    column_stack,
    dsplit,
    dstack,
    hsplit,
    hstack,
    meshgrid,
    row_stack,
    tensor_split,
    vsplit,
    vstack,
)
from gradflow.ops.statistics import (
    corrcoef,
    cov,
    dist,
    histogram,
    nanmedian,
    nanquantile,
    pdist,
    renorm,
)
from gradflow.ops.tensor_extras import cholesky_inverse, cholesky_solve
from gradflow.ops.triangular import lu_legacy as lu
from gradflow.ops.triangular import lu_solve_legacy as lu_solve
from gradflow.ops.triangular import lu_unpack, triangular_solve
from gradflow.ops.trigonometric import (
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atanh,
    cos,
    cosh,
    sin,
    sinh,
    tan,
)
from gradflow.ops.trigonometric import acos as arccos
from gradflow.ops.trigonometric import acosh as arccosh
from gradflow.ops.trigonometric import asin as arcsin
from gradflow.ops.trigonometric import asinh as arcsinh
from gradflow.ops.trigonometric import atan as arctan
from gradflow.ops.trigonometric import atanh as arctanh
from gradflow.ops.unary import (
    abs,
    absolute,
    elu,
    exp,
    exp2,
    expm1,
    gelu,
    leaky_relu,
    log,
    log1p,
    log2,
    log10,
    positive,
    reciprocal,
    relu,
    rsqrt,
    sgn,
    sigmoid,
    sign,
    silu,
    softplus,
    sqrt,
    square,
    tanh,
)
from gradflow.random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from gradflow.serialization import CheckpointError, load, save
from gradflow.tensor import Size, Tensor

# isort: split
# data and optim import gradflow.tensor directly, which needs the core above loaded first.
from gradflow import (
    data,
    evolution,
    optim,
    utils,  # torch.utils.data's names: gradflow.utils.data
)

# PyTorch's module-level constants torch.pi, torch.e, torch.inf and torch.nan, Python floats
# (`float` in this module is the dtype alias, so they come from math).
pi, e, inf, nan = _math.pi, _math.e, _math.inf, _math.nan
