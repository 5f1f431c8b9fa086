"""Random fills and sampling (gradflow/ops/random_ops.py): distributions, reproducibility under
manual_seed and generator=, no_grad semantics, and PyTorch's argument errors."""

import numpy
import pytest

import gradflow as gf


def test_fills_have_the_right_distribution(device):
    n = 20000
    x = gf.empty(n, device=device).normal_(2.0, 0.5)
    a = x.cpu().numpy()
    assert abs(a.mean() - 2.0) < 0.02 and abs(a.std() - 0.5) < 0.02
    a = gf.empty(n, device=device).uniform_(-1, 3).cpu().numpy()
    assert a.min() >= -1 and a.max() < 3 and abs(a.mean() - 1.0) < 0.05
    a = gf.empty(n, dtype=gf.float64, device=device).exponential_(4.0).cpu().numpy()
    assert a.min() >= 0 and abs(a.mean() - 0.25) < 0.01
    a = gf.empty(n, device=device).bernoulli_(0.3).cpu().numpy()
    assert set(numpy.unique(a)) <= {0.0, 1.0} and abs(a.mean() - 0.3) < 0.02
    a = gf.empty(n, dtype=gf.int64, device=device).random_(2, 5).cpu().numpy()
    assert set(numpy.unique(a)) == {2, 3, 4}


def test_fills_keep_dtype_and_return_self(device):
    x = gf.zeros(3, dtype=gf.float64, device=device)
    assert x.normal_() is x and x.dtype == gf.float64
    assert x.uniform_() is x
    h = gf.zeros(4, dtype=gf.float16, device=device).normal_()
    assert h.dtype == gf.float16


def test_manual_seed_and_generator_make_fills_reproducible(device):
    gf.manual_seed(7)
    a = gf.empty(5, device=device).normal_().tolist()
    gf.manual_seed(7)
    b = gf.empty(5, device=device).normal_().tolist()
    assert a == b
    g1 = gf.Generator(device).manual_seed(3)
    g2 = gf.Generator(device).manual_seed(3)
    assert (
        gf.empty(4, device=device).uniform_(generator=g1).tolist()
        == gf.empty(4, device=device).uniform_(generator=g2).tolist()
    )
    p = gf.full((2, 6), 0.5, device=device)
    gf.manual_seed(1)
    m1 = gf.multinomial(p, 3).tolist()
    gf.manual_seed(1)
    assert gf.multinomial(p, 3).tolist() == m1


def test_random_with_one_argument_is_the_upper_bound():
    a = gf.zeros(1000, dtype=gf.int64).random_(3).numpy()
    assert set(numpy.unique(a)) == {0, 1, 2}
    f = gf.zeros(1000).random_().numpy()
    assert f.min() >= 0 and f.max() <= 2**24 and (f == numpy.round(f)).all()


def test_fill_of_a_leaf_requiring_grad_needs_no_grad():
    w = gf.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="normal_: a leaf tensor that requires grad"):
        w.normal_()
    with gf.no_grad():
        w.uniform_(-0.1, 0.1)
    assert w.requires_grad and max(abs(v) for v in w.tolist()) <= 0.1


def test_fill_bumps_the_version_and_breaks_saved_values():
    x = gf.ones(3, requires_grad=True)
    y = x * 1.0
    z = y * y  # saves y
    v = y._version
    y.normal_()
    assert y._version > v
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_fill_into_a_graph_tensor_gives_zero_gradient():
    x = gf.ones(3, requires_grad=True)
    y = x * 2.0
    y.uniform_()
    (g,) = gf.grad((y * 1.0).sum(), [x])
    assert g.tolist() == [0.0, 0.0, 0.0]


def test_bernoulli_function(device):
    p = gf.tensor([0.0, 1.0, 0.0, 1.0], device=device)
    assert gf.bernoulli(p).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert gf.bernoulli(p, p=0.0).tolist() == [0.0] * 4
    assert p.bernoulli().dtype == p.dtype
    probs = gf.full((2000,), 0.25, device=device)
    assert abs(gf.bernoulli(probs).cpu().numpy().mean() - 0.25) < 0.04
    x = gf.zeros(4, device=device).bernoulli_(p)
    assert x.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_multinomial_frequencies_and_shapes(device):
    p = gf.tensor([[0.1, 0.0, 0.9], [1.0, 1.0, 2.0]], device=device)
    s = gf.multinomial(p, 4000, replacement=True)
    assert s.shape == (2, 4000) and s.dtype == gf.int64
    counts = numpy.stack([numpy.bincount(r, minlength=3) for r in s.cpu().numpy()]) / 4000
    numpy.testing.assert_allclose(counts, [[0.1, 0.0, 0.9], [0.25, 0.25, 0.5]], atol=0.03)
    one = gf.multinomial(gf.tensor([1.0, 2.0, 3.0, 4.0], device=device), 4)
    assert one.shape == (4,) and sorted(one.tolist()) == [0, 1, 2, 3]


def test_multinomial_without_replacement_favours_heavy_categories():
    p = gf.tensor([1.0, 1.0, 1.0, 100.0])
    firsts = [gf.multinomial(p, 2)[0].item() for _ in range(50)]
    assert firsts.count(3) > 40
    assert len(set(p.multinomial(2).tolist())) == 2  # no category twice


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gf.zeros(2).uniform_(2, 1), r"expects to return a \[from, to\) range"),
        (lambda: gf.zeros(2).normal_(0, -1), "expects std >= 0.0, but found std -1"),
        (lambda: gf.zeros(2).bernoulli_(1.5), r"expects p to be in \[0, 1\], but got p=1.5"),
        (lambda: gf.zeros(2).exponential_(-1), "expects lambda > 0.0, but found lambda=-1"),
        (lambda: gf.zeros(2).random_(5, 2), "expects 'from' to be less than 'to'"),
        (lambda: gf.zeros(2, dtype=gf.int64).normal_(), "normal_: expected a floating-point"),
        (lambda: gf.zeros(2).uniform_(0, 1, 2), "uniform_.. got unexpected arguments"),
        (
            lambda: gf.multinomial(gf.tensor([0.5, -1.0]), 1),
            "probability tensor contains either `inf`, `nan` or element < 0",
        ),
        (
            lambda: gf.multinomial(gf.tensor([0.0, 0.0]), 1),
            r"invalid multinomial distribution \(sum of probabilities <= 0\)",
        ),
        (
            lambda: gf.multinomial(gf.tensor([0.5, 0.5]), 3),
            r"cannot sample n_sample \(3\) > prob_dist.size\(-1\) \(2\) samples without",
        ),
        (lambda: gf.multinomial(gf.ones(2, 2, 2), 1), "prob_dist must be 1 or 2 dim"),
        (lambda: gf.multinomial(gf.ones(2), 0), r"cannot sample 0 \(<= 0\) samples"),
        (lambda: gf.bernoulli(gf.tensor([1, 0])), "bernoulli: expected a floating-point"),
    ],
)
def test_random_errors(call, message):
    with pytest.raises((RuntimeError, TypeError), match=message):
        call()
