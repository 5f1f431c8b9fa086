"""Factories, *_like and seeded random generation."""

import numpy
import pytest

import gradflow as gf


def test_factories(device):
    assert gf.zeros(2, 3, device=device).tolist() == [[0.0] * 3] * 2
    assert gf.ones((2,), device=device).tolist() == [1.0, 1.0]
    assert gf.full((2,), 7, device=device).dtype == gf.int64
    assert gf.full((2,), 7.0, device=device).tolist() == [7.0, 7.0]
    assert gf.arange(4, device=device).tolist() == [0, 1, 2, 3]
    assert gf.arange(0, 1, 0.5, device=device).dtype == gf.float32
    assert gf.linspace(0, 1, 3, device=device).tolist() == [0.0, 0.5, 1.0]
    assert gf.eye(2, device=device).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert gf.empty(2, 2, device=device).shape == (2, 2)
    assert sorted(gf.randperm(5, device=device).tolist()) == [0, 1, 2, 3, 4]


def test_like_factories_keep_shape_dtype_device():
    x = gf.ones(2, 3, dtype=gf.float64)
    for f in (gf.zeros_like, gf.ones_like, gf.empty_like, gf.rand_like, gf.randn_like):
        y = f(x)
        assert y.shape == (2, 3) and y.dtype == gf.float64
    assert gf.full_like(x, 3.0).tolist()[0] == [3.0] * 3


def test_factory_requires_grad():
    assert gf.zeros(2, requires_grad=True).requires_grad


def test_same_seed_gives_same_numbers():
    gf.manual_seed(123)
    a = gf.randn(5).tolist()
    gf.manual_seed(123)
    assert gf.randn(5).tolist() == a
    g = gf.Generator(seed=7)
    b = gf.rand(3, generator=g).tolist()
    assert gf.rand(3, generator=gf.Generator(seed=7)).tolist() == b


def test_randint_and_randperm():
    r = gf.randint(0, 5, (100,))
    assert r.dtype == gf.int64 and r.min().item() >= 0 and r.max().item() < 5
    p = gf.randperm(10)
    assert sorted(p.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="high .* must be greater than low"):
        gf.randint(3, 3, (2,))


def test_random_dtypes():
    assert gf.randn(2).dtype == gf.float32
    assert gf.rand(2, dtype=gf.float64).dtype == gf.float64


def test_negative_size_is_an_error():
    with pytest.raises(ValueError, match="non-negative"):
        gf.zeros(-1)


def test_unsupported_dtype_is_an_error():
    with pytest.raises(TypeError, match="not supported"):
        gf.zeros(2, dtype=numpy.complex64)


def test_default_dtype_can_be_float64():
    gf.set_default_dtype(gf.float64)
    try:
        assert gf.tensor([1.0]).dtype == gf.float64
        assert gf.randn(2).dtype == gf.float64
    finally:
        gf.set_default_dtype(gf.float32)


def test_permutation_without_generator_permutation():
    # CuPy's Generator has no permutation(): the cuda path may use only its random().
    from gradflow.creation import _permutation

    class RandomOnly:
        def __init__(self):
            self.rng = numpy.random.default_rng(0)

        def random(self, size):
            return self.rng.random(size)

    class ArrayModule:  # numpy's functions, but not numpy itself: takes the cuda branch
        argsort = staticmethod(numpy.argsort)

    order = _permutation(RandomOnly(), 50, ArrayModule)
    assert sorted(order.tolist()) == list(range(50))
    assert order.tolist() != list(range(50))
    assert _permutation(RandomOnly(), 0, ArrayModule).shape == (0,)


def test_randperm_refuses_a_negative_or_non_integer_n(device):
    """Issue 14: randperm(-1) gave an empty tensor. PyTorch raises a RuntimeError ('negative
    dimension'); gradflow a ValueError, as for its other negative sizes."""
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="randperm: n must be non-negative, got -1"):
        gf.randperm(-1, device=device)
    with pytest.raises(RuntimeError, match="negative dimension"):
        torch.randperm(-1)
    for n in (2.5, True):
        with pytest.raises(TypeError, match="randperm: n must be an int"):
            gf.randperm(n, device=device)
        with pytest.raises(TypeError, match="must be int"):
            torch.randperm(n)
    assert gf.randperm(0, device=device).shape == (0,)
    assert gf.randperm(0).dtype == gf.int64
    assert sorted(gf.randperm(numpy.int64(4), device=device).tolist()) == [0, 1, 2, 3]


def test_impossible_sizes_name_the_op():
    too_big = (
        r"zeros: a tensor of shape \(2147483648, 2147483648, 4\) and dtype float32 would take "
        r"\d+ bytes, more than any array can hold"
    )
    with pytest.raises(RuntimeError, match=too_big):
        gf.zeros(2**31, 2**31, 4)
    with pytest.raises(RuntimeError, match="empty: a tensor of shape"):
        gf.empty(2**63)
    with pytest.raises(RuntimeError, match="eye: n must be greater or equal to 0, got -1"):
        gf.eye(-1)
    with pytest.raises(RuntimeError, match="eye: m must be greater or equal to 0, got -2"):
        gf.eye(2, -2)
    with pytest.raises(TypeError, match=r"zeros: sizes must be ints, got 2.5 \(float\)"):
        gf.zeros(2.5)


def test_running_out_of_memory_says_how_much_was_asked():
    # 4 PiB: malloc refuses it at once, nothing is touched
    message = (
        r"ones: out of memory allocating a tensor of shape \(1048576, 1048576, 1024\) and dtype "
        r"float32 \(4194304.00 GiB\)"
    )
    with pytest.raises(MemoryError, match=message):
        gf.ones(2**20, 2**20, 2**10)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: gf.rand(3, 2, dtype=gf.float16, device=d),
        lambda d: gf.randn(3, 2, dtype=gf.float16, device=d),
        lambda d: gf.randn_like(gf.ones(3, 2, dtype=gf.float16, device=d)),
        lambda d: gf.rand_like(gf.ones(3, 2, dtype=gf.float16, device=d)),
        lambda d: gf.normal(gf.zeros(3, 2, dtype=gf.float16, device=d), 1.0),
    ],
    ids=["rand", "randn", "randn_like", "rand_like", "normal"],
)
def test_random_factories_draw_float16_as_torch(make, device):
    """NumPy's and CuPy's generators draw only float32/float64; torch.randn(..., dtype=
    torch.float16) works, so gradflow draws in float32 and casts."""
    t = make(device)
    assert t.dtype == gf.float16 and t.shape == (3, 2) and t.device.type == device
    assert numpy.isfinite(numpy.asarray(t.cpu().tolist())).all()


def test_randperm_takes_dtype_and_requires_grad(device):
    t = gf.randperm(5, dtype=gf.float32, device=device, requires_grad=True)
    assert t.dtype == gf.float32 and t.requires_grad
    assert sorted(t.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert gf.randperm(3, generator=gf.Generator().manual_seed(0)).dtype == gf.int64
    with pytest.raises(TypeError, match="unexpected keyword argument 'sorted'"):
        gf.randperm(3, sorted=True)
