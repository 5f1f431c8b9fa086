"""gradflow.evolution's estimators: the gradient they write, their sampling, shaping, seeding,
the batched population forward against the loop, the hybrid modes, and their errors."""

import math

import numpy
import pytest

import gradflow
from gradflow import nn, optim
from gradflow.evolution import GuidedES, OpenAIES, batchable, centered_rank

TARGET = numpy.array([1.0, -2.0, 3.0, 0.5, -1.0])


def quadratic(w, target=TARGET):
    t = gradflow.tensor(target, dtype=w.dtype)
    return lambda: ((w - t) ** 2).sum()


def es_gradient(population, seed, antithetic=True, dtype=gradflow.float64):
    w = gradflow.zeros(5, dtype=dtype, requires_grad=True)
    es = OpenAIES([w], sigma=0.01, population_size=population, antithetic=antithetic,
                  fitness_shaping=None, seed=seed)  # fmt: skip
    es.estimate(quadratic(w))
    return w.grad.numpy(force=True)


@pytest.mark.parametrize("antithetic", [True, False])
def test_estimate_of_a_quadratic_converges_to_its_gradient(antithetic):
    true = 2 * (0 - TARGET)  # d/dw sum((w - t)^2) at w = 0
    errors = {}
    for population in (20, 200, 2000):
        runs = [es_gradient(population, seed, antithetic) for seed in range(8)]
        errors[population] = numpy.mean([numpy.linalg.norm(g - true) for g in runs])
        mean = numpy.mean(runs, axis=0)
    # the error falls as 1/sqrt(population): about 3.2x per tenfold
    assert errors[2000] < errors[200] / 2 < errors[20] / 4, errors
    assert errors[2000] < 0.15 * numpy.linalg.norm(true), errors
    numpy.testing.assert_allclose(mean, true, atol=0.1 * numpy.linalg.norm(true))


def test_antithetic_members_mirror_each_other_about_the_parameters():
    w = gradflow.tensor([0.5, -1.0, 2.0], requires_grad=True)
    seen = []
    es = OpenAIES([w], sigma=0.1, population_size=6, seed=0)
    values = es.estimate(lambda: seen.append(w.numpy(force=True).copy()) or float(w.sum()))
    seen = numpy.array(seen)
    centre = numpy.tile(w.numpy(force=True), (3, 1))
    numpy.testing.assert_allclose((seen[0::2] + seen[1::2]) / 2, centre, atol=1e-6)
    assert not numpy.allclose(seen[0], seen[2])  # the pairs draw different noise
    # a linear objective: each pair's values sum to twice the centre's
    numpy.testing.assert_allclose(values.numpy(force=True)[0::2] + values.numpy(force=True)[1::2],
                                  2 * float(w.sum()), rtol=1e-5)  # fmt: skip
    numpy.testing.assert_array_equal(w.numpy(force=True), [0.5, -1.0, 2.0])  # restored exactly


def test_perturbations_have_the_requested_sigma():
    w = gradflow.zeros(4000, dtype=gradflow.float64)
    offsets = []
    es = OpenAIES([w], sigma=0.3, population_size=2, seed=1)
    es.estimate(lambda: offsets.append(w.numpy(force=True).copy()) or 0.0)
    assert abs(numpy.std(offsets[0]) - 0.3) < 0.02
    assert abs(numpy.mean(offsets[0])) < 0.02


def test_centered_rank():
    r = centered_rank([10.0, -3.0, 7.0, 7.0, 100.0])
    numpy.testing.assert_allclose(r, [0.25, -0.5, -0.125, -0.125, 0.5])
    assert r.sum() == pytest.approx(0.0)
    assert centered_rank([math.inf, 0.0, -math.inf]).tolist() == [0.5, 0.0, -0.5]
    assert centered_rank([2.0, 2.0]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="nan"):
        centered_rank([1.0, math.nan])
    with pytest.raises(ValueError, match="no values"):
        centered_rank([])


def test_rank_shaping_makes_the_estimate_blind_to_monotone_rescaling():
    def run(transform, shaping):
        w = gradflow.tensor([0.3, -0.2, 0.1], requires_grad=True)
        es = OpenAIES([w], sigma=0.1, population_size=10, fitness_shaping=shaping, seed=4)
        es.estimate(lambda: transform(float(((w - 1) ** 2).sum())))
        return w.grad.numpy(force=True)

    plain, rescaled = run(lambda v: v, "centered_rank"), run(lambda v: 5 * math.exp(v) + 3,
                                                             "centered_rank")  # fmt: skip
    numpy.testing.assert_array_equal(plain, rescaled)
    assert not numpy.allclose(run(lambda v: v, None), run(lambda v: 5 * math.exp(v) + 3, None))


def test_non_finite_values_rank_worst_or_are_refused_raw():
    w = gradflow.tensor([0.0, 0.0], requires_grad=True)
    calls = iter(range(100))

    def sometimes_nan():
        return math.nan if next(calls) == 0 else float(w.sum())

    es = OpenAIES([w], sigma=0.1, population_size=4, seed=0)
    values = es.estimate(sometimes_nan)
    assert math.isnan(values.numpy(force=True)[0])
    assert numpy.isfinite(w.grad.numpy(force=True)).all()
    raw = OpenAIES([w], sigma=0.1, population_size=4, seed=0, fitness_shaping=None)
    calls = iter(range(100))
    with pytest.raises(ValueError, match="non-finite"):
        raw.estimate(sometimes_nan)


def test_same_seed_same_gradients_and_state_dict_resumes_the_stream():
    assert numpy.array_equal(es_gradient(10, seed=7), es_gradient(10, seed=7))
    assert not numpy.array_equal(es_gradient(10, seed=7), es_gradient(10, seed=8))
    w = gradflow.zeros(5, dtype=gradflow.float64, requires_grad=True)
    es = OpenAIES([w], sigma=0.01, population_size=10, fitness_shaping=None, seed=3)
    es.estimate(quadratic(w))
    state = es.state_dict()
    w.grad = None
    es.estimate(quadratic(w))
    second = w.grad.numpy(force=True).copy()
    other = OpenAIES([w], sigma=0.01, population_size=10, fitness_shaping=None, seed=99)
    other.load_state_dict(state)
    w.grad = None
    other.estimate(quadratic(w))
    numpy.testing.assert_array_equal(w.grad.numpy(force=True), second)
    assert other.generation == 2 and other.population_evaluations == 20


def test_parameters_are_restored_when_the_objective_raises(device):
    model = nn.Linear(4, 3).to(device)
    before = [p.numpy(force=True).copy() for p in model.parameters()]
    es = OpenAIES(model.parameters(), sigma=0.5, population_size=4, seed=0)
    calls = []

    def failing():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulator crashed")
        return 0.0

    with pytest.raises(RuntimeError, match="simulator crashed"):
        es.estimate(failing)
    for p, b in zip(model.parameters(), before, strict=True):
        numpy.testing.assert_array_equal(p.numpy(force=True), b)
        assert p.grad is None


def test_objective_runs_without_building_a_graph():
    w = gradflow.ones(3, requires_grad=True)
    seen = []
    OpenAIES([w], population_size=2, seed=0).estimate(
        lambda: seen.append((w * 2).requires_grad) or 0.0
    )
    assert seen == [False, False]


def test_maximize_is_minimizing_the_negated_objective():
    def run(maximize):
        w = gradflow.tensor([0.3, -0.2, 0.1], requires_grad=True)
        es = OpenAIES([w], sigma=0.1, population_size=8, seed=4, maximize=maximize)
        sign = -1.0 if maximize else 1.0  # a fitness -(w - 1)^2, or the loss (w - 1)^2
        es.estimate(lambda: sign * float(((w - 1) ** 2).sum()))
        return w.grad.numpy(force=True)

    numpy.testing.assert_allclose(run(True), run(False), atol=1e-7)
    # ascending -(w - 1)^2 moves w towards 1: the written gradient points away from it
    assert (run(True) < 0).sum() >= 2


def test_weight_decay_adds_the_l2_term():
    def run(decay):
        w = gradflow.tensor([0.3, -0.2, 0.1], requires_grad=True)
        es = OpenAIES([w], sigma=0.1, population_size=8, seed=4, weight_decay=decay)
        es.estimate(lambda: float(w.sum() ** 2))
        return w.grad.numpy(force=True)

    numpy.testing.assert_allclose(run(0.5) - run(0.0), 0.5 * numpy.array([0.3, -0.2, 0.1]),
                                  atol=1e-6)  # fmt: skip


def test_es_trains_a_regression_with_an_optimizer():
    gradflow.manual_seed(0)
    x = gradflow.randn(128, 4)
    y = x @ gradflow.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.25
    model = nn.Linear(4, 1)
    es = OpenAIES(model.parameters(), sigma=0.05, population_size=20, seed=0)
    opt = optim.Adam(model.parameters(), lr=0.1)

    def mse(out):
        return ((out - y) ** 2).mean()

    start = float(mse(model(x)))
    for _ in range(150):
        opt.zero_grad()
        es.estimate(mse, model=model, inputs=x)
        opt.step()
    assert float(mse(model(x))) < start / 50


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8), nn.GELU(),
                         nn.Dropout(0.0), nn.Linear(8, 5), nn.LogSoftmax(dim=1))  # fmt: skip


@pytest.mark.parametrize("subset", ["all", "second_layer", "last_bias"])
def test_batched_population_forward_equals_the_loop(device, subset):
    gradflow.manual_seed(1)
    model = mlp().to(device)
    x = gradflow.randn(6, 3, 4, device=device)
    y = gradflow.randint(0, 5, (6,), device=device)
    params = {"all": list(model.parameters()), "second_layer": list(model[3].parameters()),
              "last_bias": [model[6].bias]}[subset]  # fmt: skip
    assert batchable(model, params)

    def loss(out):
        return nn.functional.nll_loss(out, y)

    results = []
    for form in ("batched", "vectorized", "loop"):
        for p in model.parameters():
            p.grad = None
        es = OpenAIES(params, sigma=0.1, population_size=10, seed=2, max_batch=4)
        if form == "batched":
            values = es.estimate(loss, model=model, inputs=x)
        elif form == "vectorized":
            values = es.estimate(lambda out: -out.gather(-1, y.expand(out.shape[0], -1)
                                 .unsqueeze(-1)).mean((1, 2)), model=model, inputs=x,
                                 vectorized=True)  # fmt: skip
        else:
            values = es.estimate(lambda: loss(model(x)))
        grads = [p.grad.numpy(force=True).copy() for p in params]
        results.append((values.numpy(force=True), grads))
        assert all(p.grad is None for p in model.parameters() if all(p is not q for q in params))
    for values, grads in results[1:]:
        numpy.testing.assert_allclose(values, results[0][0], rtol=1e-5, atol=1e-6)
        for g, g0 in zip(grads, results[0][1], strict=True):
            numpy.testing.assert_allclose(g, g0, rtol=1e-4, atol=1e-6)


def test_what_is_batchable():
    assert batchable(mlp())
    assert not batchable(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    conv_then_head = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    assert not batchable(conv_then_head)
    # a frozen feature extractor before the evolved layers runs once, shared
    assert batchable(conv_then_head, list(conv_then_head[2].parameters()))
    assert not batchable(nn.Linear(3, 2))  # not a Sequential: evaluated member by member
    hooked = mlp()
    hooked[2].register_forward_hook(lambda *a: None)
    assert not batchable(hooked)


def test_frozen_feature_extractor_runs_once_for_the_population():
    gradflow.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    calls = []
    model[0].register_forward_hook(lambda *a: calls.append(1))
    x = gradflow.randn(4, 1, 4, 4)
    head = list(model[3].parameters())
    es = OpenAIES(head, sigma=0.1, population_size=8, seed=0)
    batched = es.estimate(lambda out: out.square().mean(), model=model, inputs=x)
    assert len(calls) == 1
    grads = [p.grad.numpy(force=True).copy() for p in head]
    for p in head:
        p.grad = None
    loop = OpenAIES(head, sigma=0.1, population_size=8, seed=0).estimate(
        lambda: model(x).square().mean()
    )
    numpy.testing.assert_allclose(batched.numpy(force=True), loop.numpy(force=True), rtol=1e-5)
    for p, g in zip(head, grads, strict=True):
        numpy.testing.assert_allclose(p.grad.numpy(force=True), g, rtol=1e-4, atol=1e-7)


def test_hybrid_backprop_for_some_parameters_es_for_the_others():
    gradflow.manual_seed(3)
    first, second = nn.Linear(4, 6), nn.Linear(6, 1)

    def forward(x):  # a hard threshold: no gradient reaches `first` through it
        return second((first(x) > 0).float())

    x = gradflow.randn(16, 4)
    loss = forward(x).square().mean()
    loss.backward()
    assert first.weight.grad is None and second.weight.grad is not None
    bp = second.weight.grad.numpy(force=True).copy()
    es = OpenAIES(first.parameters(), sigma=0.5, population_size=20, seed=0)
    es.estimate(lambda: forward(x).square().mean())
    assert numpy.abs(first.weight.grad.numpy(force=True)).sum() > 0
    numpy.testing.assert_array_equal(second.weight.grad.numpy(force=True), bp)  # untouched


def test_mix_blends_the_backprop_gradient_with_the_estimate():
    w = gradflow.tensor([0.3, -0.2, 0.1], requires_grad=True)

    def objective():
        return ((w - 1) ** 2).sum()

    OpenAIES([w], sigma=0.1, population_size=8, seed=5).estimate(objective)
    es_only = w.grad.numpy(force=True).copy()
    w.grad = None
    objective().backward()
    bp = w.grad.numpy(force=True).copy()
    OpenAIES([w], sigma=0.1, population_size=8, seed=5).estimate(objective, mix=0.25)
    numpy.testing.assert_allclose(w.grad.numpy(force=True), 0.75 * bp + 0.25 * es_only, rtol=1e-6)
    # without mix the estimate accumulates, as backward does
    OpenAIES([w], sigma=0.1, population_size=8, seed=5).estimate(objective)
    numpy.testing.assert_allclose(w.grad.numpy(force=True), 0.75 * bp + 1.25 * es_only, rtol=1e-6)
    w.grad = None
    with pytest.raises(RuntimeError, match="backward"):
        OpenAIES([w], population_size=2).estimate(objective, mix=0.5)


def test_guided_es_with_alpha_one_is_openai_es():
    def run(cls, **kwargs):
        w = gradflow.tensor([0.3, -0.2, 0.1], requires_grad=True)
        es = cls([w], sigma=0.1, population_size=8, seed=4, **kwargs)
        if cls is GuidedES:
            es.add_surrogate([gradflow.tensor([1.0, 0.0, 0.0])])
        es.estimate(lambda: float(((w - 1) ** 2).sum()))
        return w.grad.numpy(force=True)

    numpy.testing.assert_allclose(run(GuidedES, alpha=1.0), run(OpenAIES), rtol=1e-6)


def cosine(a, b):
    return float(a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)))


def test_guided_es_follows_a_good_surrogate_in_high_dimension():
    n = 500
    target = numpy.random.default_rng(0).normal(size=n)
    true = -2 * target

    def estimate(cls, surrogate=None, **kwargs):
        w = gradflow.zeros(n, dtype=gradflow.float64, requires_grad=True)
        es = cls([w], sigma=0.01, population_size=10, fitness_shaping=None, seed=1, **kwargs)
        if surrogate is not None:
            es.add_surrogate([gradflow.tensor(surrogate)])
        es.estimate(quadratic(w, target))
        return w.grad.numpy(force=True)

    # a surrogate off by a random error half its length: cosine 0.91 with the true gradient
    noise = numpy.random.default_rng(1).normal(size=n) * numpy.linalg.norm(true) / math.sqrt(n)
    noisy = true + 0.5 * noise
    plain = cosine(estimate(OpenAIES), true)
    assert plain < 0.3  # 5 pairs in 500 dimensions see little of the gradient
    assert cosine(estimate(GuidedES, noisy, alpha=0.0), true) == pytest.approx(cosine(noisy, true))
    assert cosine(estimate(GuidedES, noisy, alpha=0.1), true) > max(0.75, 3 * plain)
    # perturbations keep their length: E|u|^2 = n for every alpha
    w = gradflow.zeros(n, dtype=gradflow.float64)
    es = GuidedES([w], sigma=1.0, population_size=400, seed=0, alpha=0.3)
    es.add_surrogate([gradflow.tensor(noisy)])
    lengths = []
    es.estimate(lambda: lengths.append(float(w.numpy(force=True) @ w.numpy(force=True))) or 0.0)
    assert 0.85 * n < numpy.mean(lengths) < 1.15 * n


def test_guided_es_keeps_the_latest_surrogates_and_refuses_bad_ones():
    w = gradflow.zeros(6, requires_grad=True)
    es = GuidedES([w], population_size=2, subspace_dim=2, seed=0)
    with pytest.raises(RuntimeError, match="backward"):
        es.add_surrogate()
    for i in range(3):
        w.grad = gradflow.eye(6)[i]
        es.add_surrogate()
    assert len(es._surrogates) == 2
    basis = es._basis
    numpy.testing.assert_allclose(numpy.abs(basis[:, :].T @ numpy.eye(6)[:, 1:3]).sum(0), 1.0,
                                  atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="nan"):
        es.add_surrogate([gradflow.tensor([math.nan] * 6)])
    with pytest.raises(ValueError, match="shape"):
        es.add_surrogate([gradflow.zeros(5)])
    restored = GuidedES([w], population_size=2, subspace_dim=2, seed=5)
    restored.load_state_dict(es.state_dict())
    numpy.testing.assert_allclose(restored._basis, es._basis)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"population_size": 5}, ValueError, "even"),
        ({"population_size": 1}, ValueError, "population_size"),
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"sigma": "0.1"}, TypeError, "sigma"),
        ({"fitness_shaping": "rank"}, ValueError, "fitness_shaping"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"max_batch": 0}, ValueError, "max_batch"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        OpenAIES([gradflow.zeros(2)], **kwargs)


def test_bad_params_and_calls_are_refused():
    with pytest.raises(TypeError, match="single Tensor"):
        OpenAIES(gradflow.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        OpenAIES([])
    with pytest.raises(TypeError, match="floating"):
        OpenAIES([gradflow.zeros(2, dtype=gradflow.int64)])
    w = gradflow.zeros(2)
    with pytest.raises(ValueError, match="twice"):
        OpenAIES([w, w])
    es = OpenAIES([w], population_size=2)
    with pytest.raises(TypeError, match="callable"):
        es.estimate(3.0)
    with pytest.raises(ValueError, match="together"):
        es.estimate(lambda out: 0.0, model=nn.Linear(2, 1))
    with pytest.raises(ValueError, match="one number"):
        es.estimate(lambda: gradflow.zeros(3))
    with pytest.raises(TypeError, match="number"):
        es.estimate(lambda: "good")
    with pytest.raises(ValueError, match="mix"):
        es.estimate(lambda: 0.0, mix=1.5)
    with pytest.raises(RuntimeError, match="init_process_group"):
        OpenAIES([w], distributed=True)
