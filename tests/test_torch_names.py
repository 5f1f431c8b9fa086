"""PyTorch's core names and call forms: Tensor(...) constructors, Size, legacy typed tensors,
dtype aliases, factory keywords, Tensor.data, new_*, type/type_as, f-string formatting,
autograd.Variable/backward/inference_mode, PyTorch-style custom Functions, accelerator,
backends and amp."""

import math

import numpy
import pytest

import gradflow as gf


@pytest.fixture
def th():
    return pytest.importorskip("torch")


# ---- Tensor(...) and typed constructors ----------------------------------------------------
def test_tensor_constructor_forms_follow_torch_tensor():
    assert gf.Tensor(3).shape == (3,) and gf.Tensor(3).dtype == gf.float32
    assert gf.Tensor(2, 3).shape == (2, 3)
    assert gf.Tensor(gf.Size([2, 3])).shape == (2, 3)
    assert gf.Tensor().shape == (0,)
    t = gf.Tensor([1, 2])
    assert t.dtype == gf.float32 and t.tolist() == [1.0, 2.0]
    assert gf.Tensor(numpy.array([1.0, 2.0])).dtype == gf.float32  # float64 data -> float32
    base = gf.ones(2)
    assert gf.Tensor(base).array is base.array  # shares storage, as torch.Tensor(t)


def test_tensor_constructor_errors():
    with pytest.raises(TypeError, match="data must be a sequence"):
        gf.Tensor(2.5)
    with pytest.raises(TypeError, match="sizes \\(ints\\) or one sequence"):
        gf.Tensor([1], [2])
    with pytest.raises(ValueError, match="non-negative"):
        gf.Tensor(-1)


def test_typed_constructors_and_isinstance():
    x = gf.LongTensor([1, 2])
    assert x.dtype == gf.int64 and x.tolist() == [1, 2]
    assert gf.FloatTensor(3).shape == (3,) and gf.BoolTensor([True]).dtype == gf.bool
    assert gf.DoubleTensor([1]).dtype == gf.float64
    assert isinstance(gf.ones(2), gf.FloatTensor) and not isinstance(gf.ones(2), gf.LongTensor)
    assert not isinstance(gf.ones(2), gf.cuda.FloatTensor)


def test_type_names_and_type_as():
    assert gf.ones(2).type() == "gradflow.FloatTensor"
    assert gf.ones(2).type("torch.LongTensor").dtype == gf.int64
    assert gf.ones(2).type(gf.float64).dtype == gf.float64
    assert gf.zeros(2).type_as(gf.ones(1, dtype=gf.int64)).dtype == gf.int64
    with pytest.raises(TypeError, match="unknown tensor type"):
        gf.ones(2).type("torch.ComplexTensor")


def test_dtype_aliases_are_torchs():
    assert gf.float is gf.float32 and gf.double is gf.float64 and gf.half is gf.float16
    assert gf.int is gf.int32 and gf.long is gf.int64 and gf.short is gf.int16
    assert gf.bool == numpy.dtype(bool)


def test_size_is_a_tuple_with_numel(th):
    s = gf.zeros(2, 3, 4).shape
    assert isinstance(s, gf.Size) and isinstance(s, tuple) and s == (2, 3, 4)
    assert s.numel() == 24 and s[1:] == (3, 4) and s[-1] == 4
    assert gf.zeros(2, 3).size() == th.zeros(2, 3).size()
    assert repr(s) == "gradflow.Size([2, 3, 4])"


# ---- factories ---------------------------------------------------------------------------------
def test_randint_call_forms(th):
    assert gf.randint(10, (3,)).shape == (3,)
    x = gf.randint(3, 10, (50,))
    assert x.dtype == gf.int64 and int(x.min()) >= 3 and int(x.max()) < 10
    assert gf.randint(0, 5, size=(2, 2)).shape == (2, 2)
    assert gf.randint(5, size=(4,)).shape == (4,)
    with pytest.raises(TypeError, match="missing its size"):
        gf.randint(5)
    th.randint(10, (3,))  # the same forms work in torch


def test_factories_accept_torchs_keywords():
    assert gf.zeros(2, layout=gf.strided, pin_memory=False).shape == (2,)
    assert gf.zeros_like(gf.ones(2), memory_format=gf.preserve_format).shape == (2,)
    assert gf.empty(2, 3, memory_format=gf.contiguous_format).shape == (2, 3)
    assert gf.tensor([1.0], pin_memory=False).shape == (1,)
    assert gf.ones(2).to("cpu", non_blocking=True, memory_format=gf.channels_last).shape == (2,)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        gf.zeros(2, colour="red")
    with pytest.raises(NotImplementedError, match="out= is not supported"):
        gf.zeros(2, out=gf.ones(2))


def test_to_copy_always_copies():
    x = gf.ones(2)
    assert x.to("cpu") is x and x.to("cpu", copy=True).array is not x.array


def test_new_factories_keep_dtype_and_device(th):
    x = gf.ones(2, 3, dtype=gf.float64)
    assert x.new_zeros(4).dtype == gf.float64 and x.new_zeros((2, 2)).shape == (2, 2)
    assert x.new_ones(2, 2).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_full((2,), 7).dtype == gf.float64
    assert x.new_empty(3).shape == (3,)
    assert x.new_tensor([1, 2]).dtype == gf.float64
    assert x.new_zeros(2, dtype=gf.int64).dtype == gf.int64
    t = th.ones(2, 3, dtype=th.float64)
    assert t.new_tensor([1, 2]).dtype == th.float64 and t.new_full((2,), 7).dtype == th.float64


# ---- Tensor.data ----------------------------------------------------------------------------
def test_data_is_a_tensor_sharing_storage_outside_the_graph():
    p = gf.nn.Parameter(gf.ones(3))
    (p * 2).sum().backward()
    d = p.data
    assert isinstance(d, gf.Tensor) and not d.requires_grad and d.grad_fn is None
    p.data.add_(p.grad, alpha=-0.5)
    assert p.tolist() == [0.0, 0.0, 0.0] and p.requires_grad
    p.data.copy_(gf.tensor([1.0, 2.0, 3.0]))
    p.data.fill_(3.0)
    p.data.mul_(2)
    assert p.tolist() == [6.0, 6.0, 6.0]
    p.data = gf.zeros(2)
    assert p.shape == (2,) and p.requires_grad
    with pytest.raises(TypeError, match="must be set to a Tensor"):
        p.data = numpy.zeros(2)


def test_a_write_through_data_after_saving_is_caught():
    w = gf.ones(3, requires_grad=True)
    y = (w * w).sum()  # saves w
    w.data.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|in-place"):
        y.backward()


# ---- formatting and comparison methods -------------------------------------------------------
def test_format_spec_formats_the_value(th):
    loss = gf.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" == f"{th.tensor(0.123456):.3f}"
    assert f"{gf.tensor(3):d}" == "3"
    assert f"{gf.ones(2)}" == repr(gf.ones(2))
    with pytest.raises(TypeError, match="only 0-d tensors take a format spec"):
        f"{gf.ones(2):.3f}"


def test_comparison_methods_and_aliases():
    a, b = gf.tensor([1.0, 2.0, 3.0]), gf.tensor([2.0, 2.0, 2.0])
    assert a.eq(b).tolist() == [False, True, False]
    assert a.ne(b).tolist() == [True, False, True]
    assert a.lt(b).tolist() == a.less(b).tolist() == [True, False, False]
    assert a.le(2).tolist() == [True, True, False]
    assert a.gt(b).tolist() == a.greater(b).tolist() == [False, False, True]
    assert a.ge(b).tolist() == a.greater_equal(b).tolist() == [False, True, True]
    assert a.equal(a.clone()) and not a.equal(b)


def test_stride_counts_elements(th):
    x = gf.zeros(2, 3, 4)
    assert x.stride() == th.zeros(2, 3, 4).stride() and x.stride(1) == 4
    assert x.transpose(0, 2).stride() == th.zeros(2, 3, 4).transpose(0, 2).stride()


# ---- autograd names ---------------------------------------------------------------------------
def test_variable_returns_a_tensor():
    x = gf.ones(2)
    assert gf.autograd.Variable(x) is x
    v = gf.autograd.Variable(x, requires_grad=True)
    assert v.requires_grad and v.array is x.array
    with pytest.raises(TypeError, match="has to be a tensor"):
        gf.autograd.Variable([1.0])


def test_inference_mode_and_bare_no_grad_decorator():
    x = gf.ones(2, requires_grad=True)

    @gf.no_grad
    def bare(t):
        return t * 2

    @gf.inference_mode()
    def called(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad
    with gf.inference_mode():
        assert not (x * 2).requires_grad
    with gf.inference_mode(False):
        assert (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_autograd_backward_with_inputs_accumulates_only_there():
    a = gf.ones(2, requires_grad=True)
    b = gf.ones(2, requires_grad=True)
    (a * b * 3).sum().backward(inputs=[a])
    assert a.grad.tolist() == [3.0, 3.0] and b.grad is None
    gf.autograd.backward([(a * 2).sum()], inputs=[a])
    assert a.grad.tolist() == [5.0, 5.0]
    gf.autograd.backward((a * b).sum())
    assert b.grad.tolist() == [1.0, 1.0]


def test_grad_materialize_and_create_graph():
    a = gf.ones(2, requires_grad=True)
    b = gf.ones(2, requires_grad=True)
    ga, gb = gf.autograd.grad((a * 2).sum(), [a, b], materialize_grads=True)
    assert ga.tolist() == [2.0, 2.0] and gb.tolist() == [0.0, 0.0]
    (a * a).sum().backward(create_graph=True)
    assert a.grad.grad_fn is not None and a.grad.tolist() == [2.0, 2.0]


class _Scale(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        ctx.save_for_backward(x)
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return grad * ctx.factor, None


def test_pytorch_style_function_with_ctx(th):
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = _Scale.apply(x, 3.0)
    assert y.requires_grad and "ScaleBackward" in repr(y.grad_fn)
    (y * y).sum().backward()
    assert x.grad.tolist() == [18.0, 36.0]

    class TorchScale(th.autograd.Function):
        forward = _Scale.forward
        backward = staticmethod(lambda ctx, g: (g * ctx.factor, None))

    tx = th.tensor([1.0, 2.0], requires_grad=True)
    (TorchScale.apply(tx, 3.0) ** 2).sum().backward()
    assert tx.grad.tolist() == x.grad.tolist()


def test_pytorch_2_setup_context_and_non_differentiable_outputs():
    class SortValues(gf.autograd.Function):
        @staticmethod
        def forward(x):
            order = gf.tensor(numpy.argsort(x.array))
            return x[order], order

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output[1])
            ctx.mark_non_differentiable(output[1])

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            (order,) = ctx.saved_tensors
            out = gf.zeros_like(grad_values)
            out[order] = grad_values
            return out

    x = gf.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, order = SortValues.apply(x)
    assert not order.requires_grad and values.tolist() == [1.0, 2.0, 3.0]
    (values * gf.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_pytorch_style_function_errors():
    class TooMany(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 2 gradients, but forward took 1"):
        TooMany.apply(x).sum().backward()

    class NotATensor(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 3.0

    with pytest.raises(TypeError, match="forward returned a float"):
        NotATensor.apply(x)


# ---- accelerator, backends, amp, compile -------------------------------------------------------
def test_accelerator_backends_and_cuda_names_without_a_gpu(monkeypatch):
    monkeypatch.setattr(gf.cuda, "is_available", lambda: False)
    assert gf.accelerator.is_available() is False
    assert gf.accelerator.current_accelerator() is None
    assert gf.backends.cudnn.is_available() is False and gf.backends.mps.is_available() is False
    gf.backends.cudnn.benchmark = True  # accepted, as in PyTorch
    gf.backends.cuda.matmul.allow_tf32 = True
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    assert device.type == "cpu"


def test_accelerator_reports_cuda_when_available(monkeypatch):
    monkeypatch.setattr(gf.cuda, "is_available", lambda: True)
    assert gf.accelerator.current_accelerator().type == "cuda"


def test_grad_scaler_skips_the_step_on_nonfinite_gradients():
    w = gf.nn.Parameter(gf.ones(2))
    opt = gf.optim.SGD([w], lr=1.0)
    scaler = gf.amp.GradScaler()
    with gf.autocast("cpu", dtype=gf.float16):
        loss = (w * gf.tensor([1.0, math.inf])).sum()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    assert w.tolist() == [1.0, 1.0]  # skipped
    opt.zero_grad()
    scaler.scale((w * 2).sum()).backward()
    scaler.step(opt)
    assert w.tolist() == [-1.0, -1.0]
    assert gf.cuda.amp.GradScaler is gf.amp.GradScaler


def test_compile_returns_the_model_and_printoptions_apply():
    model = gf.nn.Linear(2, 2)
    assert gf.compile(model) is model and gf.compile(mode="max-autotune")(model) is model
    try:
        gf.set_printoptions(precision=2)
        assert "0.33" in repr(gf.tensor([1 / 3])) and "0.333" not in repr(gf.tensor([1 / 3]))
    finally:
        gf.set_printoptions(profile="default")
    assert "0.3333" in repr(gf.tensor([1 / 3]))
    assert gf.is_tensor(gf.ones(1)) and not gf.is_tensor([1]) and gf.numel(gf.ones(2, 3)) == 6


# ---- more top-level names ------------------------------------------------------------------
def test_as_tensor_shares_numpy_memory_and_copies_lists():
    a = numpy.arange(3.0)
    t = gf.as_tensor(a)
    a[0] = 7
    assert t.tolist()[0] == 7.0 and t.dtype == gf.float64
    assert gf.as_tensor([1, 2]).dtype == gf.int64
    assert gf.as_tensor(a, dtype=gf.float32).dtype == gf.float32
    x = gf.ones(2)
    assert gf.as_tensor(x) is x


def test_logspace_normal_and_randint_like(th):
    numpy.testing.assert_allclose(gf.logspace(0, 2, 3).numpy(), th.logspace(0, 2, 3).numpy())
    assert gf.logspace(0, 3, 4, base=2).tolist() == [1.0, 2.0, 4.0, 8.0]
    gf.manual_seed(0)
    draws = gf.normal(2.0, 0.5, (20000,)).numpy()
    assert abs(draws.mean() - 2.0) < 0.02 and abs(draws.std() - 0.5) < 0.02
    means = gf.normal(gf.tensor([0.0, 100.0]), 1e-6)
    assert numpy.allclose(means.numpy(), [0.0, 100.0], atol=1e-3)
    with pytest.raises(TypeError, match="size is required"):
        gf.normal(0.0, 1.0)
    r = gf.randint_like(gf.zeros(2, 3), 5)
    assert r.shape == (2, 3) and r.dtype == gf.float32 and float(r.max()) < 5
    assert gf.randint(0, 3, (4,), dtype=gf.float32).dtype == gf.float32


def test_rng_state_round_trip_and_seeds():
    state = gf.get_rng_state()
    a = gf.rand(3)
    gf.set_rng_state(state)
    assert gf.equal(a, gf.rand(3))
    gf.manual_seed(123)
    assert gf.initial_seed() == 123
    assert isinstance(gf.seed(), int)


def test_dtype_info_and_unsupported_dtypes(th):
    assert gf.finfo(gf.float32).eps == th.finfo(th.float32).eps
    for dtype in ("float16", "float32", "float64"):
        ours, theirs = gf.finfo(getattr(gf, dtype)), th.finfo(getattr(th, dtype))
        for name in ("eps", "max", "min", "tiny", "smallest_normal", "resolution", "bits"):
            assert getattr(ours, name) == getattr(theirs, name), (dtype, name)
            assert type(getattr(ours, name)) is type(getattr(theirs, name))  # Python numbers
        assert ours.dtype == theirs.dtype == dtype and repr(ours) == repr(theirs)
    assert gf.finfo().eps == th.finfo().eps  # the default dtype
    assert gf.iinfo(gf.int64).max == th.iinfo(th.int64).max
    assert isinstance(gf.float32, gf.dtype)
    with pytest.raises(TypeError, match="bfloat16 is not supported: NumPy and CuPy have no"):
        gf.ones(2).to(gf.bfloat16)
    with pytest.raises(TypeError, match="complex dtypes are not supported"):
        gf.zeros(2, dtype=gf.complex64)
    assert gf.cuda.is_bf16_supported() is False


def test_testing_assert_close_uses_torchs_tolerances(th):
    gf.testing.assert_close(gf.tensor([1.0]), gf.tensor([1.0 + 1e-7]))
    with pytest.raises(AssertionError, match="not close"):
        gf.testing.assert_close(gf.tensor([1.0]), gf.tensor([1.001]))
    with pytest.raises(AssertionError, match="dtypes differ"):
        gf.testing.assert_close(gf.tensor([1.0]), gf.tensor([1.0], dtype=gf.float64))
    with pytest.raises(AssertionError, match="shapes differ"):
        gf.testing.assert_close(gf.ones(2), gf.ones(3))
    gf.testing.assert_close([gf.ones(1)], [gf.ones(1)])


def test_jit_script_and_trace_return_their_argument():
    model = gf.nn.Linear(2, 2)
    assert gf.jit.script(model) is model and gf.jit.trace(model, gf.ones(1, 2)) is model


def test_arithmetic_methods_take_alpha_and_rounding_mode(th):
    x, t = gf.tensor([7.0, -7.0]), th.tensor([7.0, -7.0])
    assert x.add(1, alpha=2).tolist() == t.add(1, alpha=2).tolist()
    assert x.sub(x, alpha=0.5).tolist() == t.sub(t, alpha=0.5).tolist()
    assert gf.add(x, 3, alpha=2).tolist() == th.add(t, 3, alpha=2).tolist()
    for mode in ("floor", "trunc"):
        assert x.div(2, rounding_mode=mode).tolist() == t.div(2, rounding_mode=mode).tolist()
        y, u = x.clone(), t.clone()
        y.div_(2, rounding_mode=mode)
        u.div_(2, rounding_mode=mode)
        assert y.tolist() == u.tolist()


def test_where_with_one_argument_is_nonzero_as_tuple():
    x = gf.tensor([[0, 1], [2, 0]])
    rows, cols = gf.where(x > 0)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    with pytest.raises(TypeError, match="condition alone, or a condition, input and other"):
        gf.where(x > 0, x)


def test_in_place_shape_changes_keep_the_graph():
    x = gf.zeros(3)
    x.unsqueeze_(0)
    assert x.shape == (1, 3)
    x.squeeze_()
    assert x.shape == (3,)
    w = gf.ones(2, 3, requires_grad=True)
    h = w * gf.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h.t_()
    assert h.shape == (3, 2)
    (h * gf.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])).sum().backward()
    assert w.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 6.0]]
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        gf.ones(2, requires_grad=True).unsqueeze_(0)


def test_elementwise_arithmetic_promotes_floats_as_torch(th):
    cases = [((2,), "float64", (2,), "float32"), ((2,), "float32", (), "float64"),
             ((), "float64", (), "float32"), ((2,), "float16", (2,), "float32")]  # fmt: skip
    for sa, da, sb, db in cases:
        a = gf.ones(sa, dtype=getattr(gf, da), requires_grad=True)
        b = gf.ones(sb, dtype=getattr(gf, db), requires_grad=True)
        ta = th.ones(sa, dtype=getattr(th, da))
        tb = th.ones(sb, dtype=getattr(th, db))
        for op in ("add", "mul", "sub", "div"):
            assert str(getattr(gf, op)(a, b).dtype) == str(getattr(th, op)(ta, tb).dtype)[6:]
        (a * b).sum().backward()
        assert a.grad.dtype == a.dtype and b.grad.dtype == b.dtype  # each its own dtype
    with pytest.raises(RuntimeError, match="matmul: expected floating tensors of one dtype"):
        gf.ones(2, 2) @ gf.ones(2, 2, dtype=gf.float64)


def test_thread_and_precision_switches():
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(1)
        assert gf.get_num_threads() == 1
    finally:
        gf.set_num_threads(max(before, 1))
    with pytest.raises(RuntimeError, match="positive integer"):
        gf.set_num_threads(0)
    gf.set_float32_matmul_precision("high")
    assert gf.get_float32_matmul_precision() == "high"
    gf.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid precision"):
        gf.set_float32_matmul_precision("low")
    gf.use_deterministic_algorithms(True)
    assert gf.are_deterministic_algorithms_enabled()
    gf.use_deterministic_algorithms(False)
    assert not gf.are_deterministic_algorithms_enabled()
    assert gf.concatenate([gf.ones(1), gf.zeros(1)]).tolist() == [1.0, 0.0]
    assert f"{gf.tensor(7)}" == "7" and f"{gf.tensor(0.5)}" == "0.5"


def test_special_functions_match_torch(th):
    import gradflow.special as special

    p = numpy.array([0.05, 0.5, 0.9])
    x = gf.tensor(p, dtype=gf.float64)
    t = th.tensor(p, dtype=th.float64)
    for name in ("ndtr", "ndtri", "expit", "logit", "erf", "erfinv"):
        ours, theirs = getattr(special, name)(x), getattr(th.special, name)(t)
        numpy.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, err_msg=name)
    assert repr(x).endswith("dtype=gradflow.float64)")


def test_module_constants_are_torchs(th):
    for name in ("pi", "e", "inf"):
        assert getattr(gf, name) == getattr(th, name) and type(getattr(gf, name)) is float
    assert math.isnan(gf.nan)


def test_autograd_gradcheck_takes_torchs_call_form(th):
    class Cube(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x**3 * scale

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x**2 * ctx.scale, None

    x = gf.randn(4, dtype=gf.double, requires_grad=True)
    assert gf.autograd.gradcheck(lambda t: Cube.apply(t, 2.0), (x,), eps=1e-6, atol=1e-4)
    assert gf.autograd.gradcheck(gf.sin, x, fast_mode=True)  # one tensor, not a tuple

    class Wrong(Cube):
        @staticmethod
        def backward(ctx, g):
            return g, None

    assert (
        gf.autograd.gradcheck(lambda t: Wrong.apply(t, 1.0), (x,), raise_exception=False) is False
    )
    with pytest.raises(AssertionError):
        gf.autograd.gradcheck(lambda t: Wrong.apply(t, 1.0), (x,))
    with pytest.raises(NotImplementedError, match="forward mode"):
        gf.autograd.gradcheck(gf.sin, (x,), check_forward_ad=True)
    assert gf.autograd.gradgradcheck(gf.sin, (x,))


def test_grad_fn_name_and_next_functions_walk_the_graph_as_torchs(th):
    def graph(lib):
        x = lib.ones(2, requires_grad=True)
        y = lib.nn.functional.relu(x * 2).sum()
        return x, y.grad_fn

    def names(node):  # the node names depth first, as a graph-printing program walks them
        if node is None:
            return []
        name = node.name().rstrip("0123456789").replace("torch::autograd::", "")
        return [name] + [n for child, _ in node.next_functions for n in names(child)]

    (x, node), (_, tnode) = graph(gf), graph(th)
    assert (
        names(node)
        == names(tnode)
        == ["SumBackward", "ReluBackward", "MulBackward", "AccumulateGrad"]
    )
    leaf = node.next_functions[0][0].next_functions[0][0].next_functions[0][0]
    assert leaf.variable is x and repr(leaf) == "<AccumulateGrad>" and leaf.next_functions == ()
    relu = node.next_functions[0][0]
    assert relu.name == "relu" and f"{relu.name}" == "relu"  # the op name messages use, kept
    const = (gf.ones(2, requires_grad=True) * gf.ones(2)).grad_fn.next_functions
    assert const[1] == (None, 0)


def test_utils_checkpoint_gives_the_plain_forward_and_gradients(th):
    from gradflow.utils.checkpoint import checkpoint, checkpoint_sequential

    gf.manual_seed(0)
    block = gf.nn.Sequential(gf.nn.Linear(3, 4), gf.nn.Tanh(), gf.nn.Linear(4, 2))
    x = gf.randn(5, 3, requires_grad=True)
    checkpoint(block, x, use_reentrant=False).sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    checkpoint_sequential(block, 2, x, use_reentrant=False).sum().backward()
    assert gf.equal(x.grad, g1)
    x.grad = None
    block(x).sum().backward()
    assert gf.equal(x.grad, g1)
    assert checkpoint(lambda a, b=1: a + b, x, b=2).shape == (5, 3)
    # PyTorch's own options never reach the function
    assert checkpoint(lambda a: a, x, use_reentrant=False, early_stop=False) is x


def test_tensor_methods_take_torch_keywords():
    t = gf.ones(2, 3, requires_grad=True)
    assert t.float(memory_format=gf.preserve_format).dtype == gf.float32
    assert t.bool(memory_format=gf.preserve_format).dtype == gf.bool
    assert t.double(memory_format=gf.contiguous_format).dtype == gf.float64
    target = gf.zeros(2, 3)
    target.copy_(t.detach() * 2, non_blocking=True)
    assert target.sum().item() == 12.0
    array = t.numpy(force=True)  # detached and on the cpu, as torch's force=True
    assert array.shape == (2, 3) and array.sum() == 6.0
    assert t.swapdims(dim0=0, dim1=1).shape == (3, 2)
    assert t.swapaxes(axis0=0, axis1=1).shape == (3, 2)
