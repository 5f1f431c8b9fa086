"""nn.Sequential runs Linear + activation pairs as one LinearActivation node (nn.fusion)."""

import copy

import numpy
import pytest

import gradflow as gf
from gradflow import nn, optim
from gradflow.nn import fusion
from gradflow.ops.fused import LinearActivation
from gradflow.ops.linalg import LinearFunction

FUSED_PAIRS = [
    (nn.ReLU, "relu"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.SiLU, "silu"),
    (lambda: nn.GELU(), "gelu_erf"),
    (lambda: nn.GELU(approximate="tanh"), "gelu_tanh"),
]


def _nodes(y):
    """The graph's Function types, from y back to the leaves."""
    seen, stack = [], [y.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or not hasattr(fn, "_edges"):
            continue
        seen.append(type(fn))
        stack.extend(e[0] for e in fn._edges if e is not None)
    return seen


@pytest.mark.parametrize("make_act,name", FUSED_PAIRS, ids=[p[1] for p in FUSED_PAIRS])
def test_pair_runs_as_one_node_with_the_same_bits(make_act, name, rng):
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), make_act(), nn.Linear(5, 3))
    x = gf.tensor(rng.standard_normal((4, 6)).astype(numpy.float32), requires_grad=True)
    y = model(x)
    assert y.grad_fn.__class__ is LinearFunction
    assert LinearActivation in _nodes(y)
    assert y.grad_fn._edges[0][0].activation == name
    y.sum().backward()
    fused = [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]
    model.zero_grad()
    x.grad = None
    with fusion.disabled():
        y_ref = model(x)
        assert LinearActivation not in _nodes(y_ref)
    y_ref.sum().backward()
    unfused = [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]
    numpy.testing.assert_array_equal(y.detach().numpy(), y_ref.detach().numpy())
    for a, b in zip(fused, unfused):
        numpy.testing.assert_array_equal(a, b)


def test_training_an_mlp_gives_the_same_bits_fused_or_not(rng):
    x = gf.tensor(rng.standard_normal((32, 10)).astype(numpy.float32))
    target = gf.tensor(rng.integers(0, 4, 32))
    gf.manual_seed(1)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(),
                          nn.Linear(16, 4))  # fmt: skip
    twin = copy.deepcopy(model)
    for m, fused in ((model, True), (twin, False)):
        opt = optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            if fused:
                loss = nn.functional.cross_entropy(m(x), target)
            else:
                with fusion.disabled():
                    loss = nn.functional.cross_entropy(m(x), target)
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        numpy.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_hooks_keep_the_pair_apart_and_see_the_unfused_values(rng):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = gf.tensor(rng.standard_normal((2, 4)), dtype=gf.float32)
    seen = []
    handle = model[0].register_forward_hook(lambda m, args, out: seen.append(out))
    y = model(x)
    assert LinearActivation not in _nodes(y)
    assert len(seen) == 1
    numpy.testing.assert_allclose(y.detach().numpy(), numpy.maximum(seen[0].detach().numpy(), 0))
    handle.remove()
    model[1].register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    numpy.testing.assert_array_equal(model(x).detach().numpy(), numpy.zeros((2, 3)))


def test_subclasses_and_replaced_forwards_are_not_fused(rng):
    class Scaled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    class Negated(nn.ReLU):
        def forward(self, x):
            return -super().forward(x)

    x = gf.tensor(rng.standard_normal((2, 4)), dtype=gf.float32)
    for first, second in ((Scaled(4, 3), nn.ReLU()), (nn.Linear(4, 3), Negated())):
        model = nn.Sequential(first, second)
        assert fusion.fused_activation(first, second) is None
        ref = second(first(x))
        numpy.testing.assert_array_equal(model(x).detach().numpy(), ref.detach().numpy())
    plain = nn.Linear(4, 3)
    plain.forward = lambda x: x  # an instance-level override
    assert fusion.fused_activation(plain, nn.ReLU()) is None


def test_only_supported_activations_and_adjacent_pairs_fuse():
    lin = nn.Linear(3, 3)
    assert fusion.fused_activation(lin, nn.LeakyReLU()) is None
    assert fusion.fused_activation(lin, nn.Softplus()) is None
    assert fusion.fused_activation(nn.ReLU(), lin) is None
    assert fusion.fused_activation(lin, nn.GELU(approximate="bogus")) is None
    assert fusion.fused_activation(lin, nn.Tanh()) == "tanh"
    with fusion.disabled():
        assert not fusion.is_enabled()
        assert fusion.fused_activation(lin, nn.Tanh()) is None
    assert fusion.is_enabled()


def test_unfused_errors_still_reach_the_user(rng):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"Linear\(in_features=4\): expected input of shape"):
        model(gf.tensor(rng.standard_normal((2, 5)), dtype=gf.float32))
    bad_gelu = nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="bogus"))
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        bad_gelu(gf.tensor(rng.standard_normal((2, 4)), dtype=gf.float32))


def test_last_module_and_state_dict_are_unchanged(rng):
    model = nn.Sequential(nn.ReLU(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3))
    assert list(model.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    x = gf.tensor(rng.standard_normal((5, 4)), dtype=gf.float32)
    with fusion.disabled():
        ref = model(x).detach().numpy()
    numpy.testing.assert_array_equal(model(x).detach().numpy(), ref)
