"""Tests for the activation, loss and distance modules (gradflow/nn/activation.py, loss.py,
distance.py): PyTorch's constructor signatures, defaults and reprs, forward equal to the
functional form, parameters (PReLU), inplace, and the constructor errors."""

import inspect

import numpy
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.testing import gradcheck

ACTIVATIONS = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "PReLU",
    "RReLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmax2d",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
]
LOSSES = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "MarginRankingLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "PoissonNLLLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
]
DISTANCES = ["CosineSimilarity", "PairwiseDistance"]


def host(x):
    return x.detach().cpu().numpy()


def _params(cls):
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self", "device", "dtype")
    ]


@pytest.mark.parametrize("name", ACTIVATIONS + LOSSES + DISTANCES)
def test_constructor_signature_is_torchs(name):
    torch = pytest.importorskip("torch")
    expected = _params(getattr(torch.nn, name))
    got = _params(getattr(nn, name))
    # argument-less modules inherit Module.__init__(*args, **kwargs) (gradflow's spells it
    # as torch's, for call_super_init)
    assert got == expected


REPRS = [
    ("ReLU()", {}),
    ("ReLU(inplace=True)", {"inplace": True}),
    (
        "Hardtanh(min_val=-2, max_val=2, inplace=True)",
        {"min_val": -2, "max_val": 2, "inplace": True},
    ),
    ("ReLU6()", {}),
    ("ReLU6(inplace=True)", {"inplace": True}),
    ("LeakyReLU(negative_slope=0.1, inplace=True)", {"negative_slope": 0.1, "inplace": True}),
    ("ELU(alpha=1.0, inplace=True)", {"inplace": True}),
    ("SiLU(inplace=True)", {"inplace": True}),
    ("CELU(alpha=1.0)", {}),
    ("SELU(inplace=True)", {"inplace": True}),
    ("PReLU(num_parameters=3)", {"num_parameters": 3}),
    ("GLU(dim=-1)", {}),
    ("Softmin(dim=None)", {}),
    ("Threshold(threshold=0.1, value=20)", {"threshold": 0.1, "value": 20}),
    ("Softshrink(0.5)", {}),
    ("Hardshrink(0.3)", {"lambd": 0.3}),
    ("Hardswish()", {"inplace": True}),
    ("Mish(inplace=True)", {"inplace": True}),
    ("LogSigmoid()", {}),
    ("RReLU(lower=0.125, upper=0.3333333333333333)", {}),
    ("RReLU(lower=0.1, upper=0.2, inplace=True)", {"lower": 0.1, "upper": 0.2, "inplace": True}),
    ("Softmax2d()", {}),
]


@pytest.mark.parametrize("expected,kwargs", REPRS)
def test_repr_is_torchs(expected, kwargs):
    name = expected.split("(")[0]
    assert repr(getattr(nn, name)(**kwargs)) == expected
    torch = pytest.importorskip("torch")
    assert repr(getattr(torch.nn, name)(**kwargs)) == expected


def test_activation_modules_equal_their_functions(device, rng):
    a = rng.standard_normal((2, 4)) * 3
    x = gf.tensor(a, device=device)
    pairs = [
        (nn.ReLU6(), F.relu6(x)),
        (nn.Hardtanh(-0.5, 0.5), F.hardtanh(x, -0.5, 0.5)),
        (nn.Hardswish(), F.hardswish(x)),
        (nn.Hardsigmoid(), F.hardsigmoid(x)),
        (nn.Mish(), F.mish(x)),
        (nn.SELU(), F.selu(x)),
        (nn.CELU(0.5), F.celu(x, 0.5)),
        (nn.GLU(), F.glu(x)),
        (nn.LogSigmoid(), F.logsigmoid(x)),
        (nn.Softsign(), F.softsign(x)),
        (nn.Softmin(1), F.softmin(x, 1)),
        (nn.Threshold(0.1, 2.0), F.threshold(x, 0.1, 2.0)),
        (nn.Tanhshrink(), F.tanhshrink(x)),
        (nn.Softshrink(0.3), F.softshrink(x, 0.3)),
        (nn.Hardshrink(0.3), F.hardshrink(x, 0.3)),
    ]
    for module, expected in pairs:
        numpy.testing.assert_array_equal(host(module(x)), host(expected))


def test_inplace_modules_write_into_the_input(device):
    modules = [
        (nn.ReLU(inplace=True), F.relu),
        (nn.ReLU6(inplace=True), F.relu6),
        (nn.LeakyReLU(0.1, True), lambda x: F.leaky_relu(x, 0.1)),
        (nn.ELU(inplace=True), F.elu),
        (nn.SiLU(inplace=True), F.silu),
        (nn.Hardswish(True), F.hardswish),
        (nn.SELU(True), F.selu),
        (nn.CELU(inplace=True), F.celu),
        (nn.Threshold(0.5, 0.0, True), lambda x: F.threshold(x, 0.5, 0.0)),
    ]
    for module, fn in modules:
        x = gf.tensor([-1.0, 2.0], device=device)
        assert module(x) is x
        numpy.testing.assert_array_equal(host(x), host(fn(gf.tensor([-1.0, 2.0], device=device))))


def test_inplace_relu_in_a_sequential_trains_like_torch(rng):
    torch = pytest.importorskip("torch")
    w1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((1, 3))
    x = rng.standard_normal((5, 4))
    model = nn.Sequential(
        nn.Linear(4, 3, bias=False), nn.ReLU(inplace=True), nn.Linear(3, 1, bias=False)
    )
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(4, 3, bias=False),
        torch.nn.ReLU(inplace=True),
        torch.nn.Linear(3, 1, bias=False),
    )
    for m, lib in ((model, gf), (tmodel, torch)):
        with lib.no_grad():
            m[0].weight.copy_(lib.tensor(w1, dtype=lib.float32))
            m[2].weight.copy_(lib.tensor(w2, dtype=lib.float32))
    model(gf.tensor(x, dtype=gf.float32)).sum().backward()
    tmodel(torch.tensor(x, dtype=torch.float32)).sum().backward()
    numpy.testing.assert_allclose(
        host(model[0].weight.grad), tmodel[0].weight.grad.numpy(), rtol=1e-5
    )


def test_prelu_module_has_torchs_weight(device, rng):
    m = nn.PReLU(3, init=0.1, device=device)
    assert [name for name, _ in m.named_parameters()] == ["weight"]
    assert tuple(m.weight.shape) == (3,) and m.weight.dtype == gf.float32
    numpy.testing.assert_allclose(host(m.weight), [0.1] * 3, rtol=1e-7)
    x = gf.tensor(rng.standard_normal((2, 3, 4)) + 0.05, device=device)
    m(x).sum().backward()
    expected = numpy.minimum(host(x), 0).sum(axis=(0, 2))
    numpy.testing.assert_allclose(host(m.weight.grad), expected, rtol=1e-6)
    m64 = nn.PReLU(dtype=gf.float64, device=device)
    assert gradcheck(
        m64, [gf.tensor(rng.standard_normal((2, 3)) + 0.05, device=device, requires_grad=True)]
    )
    with gf.no_grad():
        m.weight.fill_(1.0)
    m.reset_parameters()
    numpy.testing.assert_allclose(host(m.weight), [0.1] * 3, rtol=1e-7)


def test_loss_modules_equal_their_functions(device, rng):
    x = gf.tensor(rng.standard_normal((4, 3)), device=device)
    y = gf.tensor(rng.standard_normal((4, 3)), device=device)
    s = gf.tensor(numpy.where(rng.random(4) < 0.5, -1.0, 1.0), device=device)
    cls = gf.tensor(rng.integers(0, 3, 4), device=device)
    pairs = [
        (nn.SmoothL1Loss(beta=0.5)(x, y), F.smooth_l1_loss(x, y, beta=0.5)),
        (nn.HuberLoss(delta=2.0)(x, y), F.huber_loss(x, y, delta=2.0)),
        (
            nn.KLDivLoss(reduction="batchmean")(x, y.exp()),
            F.kl_div(x, y.exp(), reduction="batchmean"),
        ),
        (
            nn.KLDivLoss(reduction="sum", log_target=True)(x, y),
            F.kl_div(x, y, reduction="sum", log_target=True),
        ),
        (nn.PoissonNLLLoss()(x, y.exp()), F.poisson_nll_loss(x, y.exp())),
        (nn.GaussianNLLLoss()(x, y, y.exp()), F.gaussian_nll_loss(x, y, y.exp())),
        (
            nn.MarginRankingLoss(0.5)(x[:, 0], y[:, 0], s),
            F.margin_ranking_loss(x[:, 0], y[:, 0], s, 0.5),
        ),
        (nn.HingeEmbeddingLoss()(x[:, 0], s), F.hinge_embedding_loss(x[:, 0], s)),
        (nn.CosineEmbeddingLoss(0.1)(x, y, s), F.cosine_embedding_loss(x, y, s, 0.1)),
        (
            nn.TripletMarginLoss(swap=True)(x, y, y * 2),
            F.triplet_margin_loss(x, y, y * 2, swap=True),
        ),
        (nn.SoftMarginLoss()(x[:, 0], s), F.soft_margin_loss(x[:, 0], s)),
        (
            nn.MultiLabelSoftMarginLoss()(x, (y > 0).double()),
            F.multilabel_soft_margin_loss(x, (y > 0).double()),
        ),
        (nn.MultiMarginLoss(p=2)(x, cls), F.multi_margin_loss(x, cls, p=2)),
        (nn.CosineSimilarity()(x, y), F.cosine_similarity(x, y)),
        (
            nn.PairwiseDistance(p=1.0, keepdim=True)(x, y),
            F.pairwise_distance(x, y, 1.0, keepdim=True),
        ),
    ]
    for got, expected in pairs:
        numpy.testing.assert_array_equal(host(got), host(expected))
    lp = gf.tensor(rng.standard_normal((6, 2, 4)), device=device).log_softmax(2)
    tg = gf.tensor([[1, 2], [3, 3]], device=device)
    numpy.testing.assert_array_equal(
        host(nn.CTCLoss(reduction="sum")(lp, tg, [6, 5], [2, 2])),
        host(F.ctc_loss(lp, tg, [6, 5], [2, 2], reduction="sum")),
    )


def test_loss_module_attributes_are_torchs():
    torch = pytest.importorskip("torch")
    for name in LOSSES + DISTANCES:
        ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
        expected = {k: v for k, v in vars(theirs).items() if not k.startswith("_")}
        expected.pop("training")
        for key, value in expected.items():
            got = getattr(ours, key)
            if value is None or isinstance(value, (bool, int, float, str)):
                assert got == value, (name, key)


def test_legacy_size_average_and_reduce_in_loss_modules():
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum" and repr(loss) == "MSELoss(reduction='sum')"
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        assert nn.CrossEntropyLoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning, match="please use reduction='mean' instead"):
        assert nn.MarginRankingLoss(0.0, True).reduction == "mean"


def test_module_constructor_errors():
    with pytest.raises(ValueError, match="Hardtanh: min_val cannot be greater than max_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater"):
        nn.TripletMarginLoss(margin=0.0)
    with pytest.raises(ValueError, match="MultiMarginLoss: only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="MultiMarginLoss: weight must be a 1-D tensor"):
        nn.MultiMarginLoss(weight=gf.ones(2, 2))
    with pytest.raises(ValueError, match="mse_loss: argument 'reduction' is 'avg'"):
        nn.MSELoss(reduction="avg")(gf.ones(2), gf.ones(2))  # at the call, as in PyTorch
    with pytest.warns(FutureWarning, match="`min_value` is deprecated and rename to `min_val`"):
        assert nn.Hardtanh(min_value=-2.0).min_val == -2.0


def test_softmax_modules_default_to_torchs_implicit_dim():
    x = gf.tensor([[1.0, 2.0], [3.0, 5.0]])
    for module, fn in ((nn.Softmax(), F.softmax), (nn.LogSoftmax(), F.log_softmax)):
        assert module.dim is None
        with pytest.warns(UserWarning, match="Implicit dimension choice for .*softmax"):
            numpy.testing.assert_array_equal(host(module(x)), host(fn(x, 1)))


def test_rrelu_module_uses_training_mode(rng):
    m = nn.RReLU(0.1, 0.3)
    x = gf.tensor(-numpy.abs(rng.standard_normal(50)) - 0.1)
    assert len(set(numpy.round(host(m(x)) / host(x), 12))) > 1
    m.eval()
    numpy.testing.assert_allclose(host(m(x)) / host(x), 0.2, rtol=1e-12)


def test_softmax2d_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((2, 3, 2, 2))
    expected = torch.nn.Softmax2d()(torch.tensor(a)).numpy()
    numpy.testing.assert_allclose(host(nn.Softmax2d()(gf.tensor(a))), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="Softmax2d: expected input of 3 or 4 dims"):
        nn.Softmax2d()(gf.tensor(a[0, 0]))


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss_matches_torch(swap, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal((4, 3)) for _ in range(3)]
    ours = [gf.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    for distance, tdistance in (
        (None, None),
        (
            lambda a, b: 1 - F.cosine_similarity(a, b),
            lambda a, b: 1 - torch.cosine_similarity(a, b),
        ),
    ):
        loss = nn.TripletMarginWithDistanceLoss(distance_function=distance, margin=1.5, swap=swap)
        tloss = torch.nn.TripletMarginWithDistanceLoss(
            distance_function=tdistance, margin=1.5, swap=swap
        )
        out, expected = loss(*ours), tloss(*theirs)
        numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=1e-10)
        out.backward()
        expected.backward()
        for a, b in zip(ours, theirs):
            numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-8, atol=1e-12)
            a.grad, b.grad = None, None
    assert repr(nn.TripletMarginWithDistanceLoss()) == repr(
        torch.nn.TripletMarginWithDistanceLoss()
    )
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin"):
        nn.TripletMarginWithDistanceLoss(margin=-1.0)
