"""Tests for nn.Module and the containers: registration, iteration order, modes, dtype moves,
state_dict / load_state_dict, repr, hooks, and PyTorch's key names."""

from collections import OrderedDict

import numpy
import pytest

import gradflow as gf
from gradflow import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(gf.ones(4))
        self.register_buffer("running", gf.zeros(4))
        self.register_buffer("scratch", gf.zeros(2), persistent=False)
        self.register_buffer("steps", gf.tensor(numpy.array(0, dtype=numpy.int64)))

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


def names(pairs):
    return [name for name, _ in pairs]


def as_numpy(t):
    return t.detach().cpu().numpy()


def values(module):
    return {k: as_numpy(v).copy() for k, v in module.state_dict().items()}


# ---- registration and iteration ---------------------------------------------------------------


def test_registration_order_and_dotted_names():
    net = Net()
    assert names(net.named_parameters()) == [
        "block.scale",
        "block.fc.weight",
        "block.fc.bias",
        "head.weight",
        "head.bias",
    ]
    assert names(net.named_buffers()) == ["block.running", "block.scratch", "block.steps"]
    assert names(net.named_children()) == ["block", "drop", "head"]
    assert names(net.named_modules()) == ["", "block", "block.fc", "drop", "head"]
    assert list(net.children()) == [net.block, net.drop, net.head]
    assert list(net.parameters())[1] is net.block.fc.weight
    assert names(net.named_parameters(recurse=False)) == []
    assert names(net.block.named_parameters(prefix="b", recurse=False)) == ["b.scale"]
    assert net.get_submodule("block.fc") is net.block.fc


def test_reassigning_keeps_the_place_in_the_order():
    lin = nn.Linear(2, 2)
    lin.weight = nn.Parameter(gf.zeros(2, 2))
    assert names(lin.named_parameters()) == ["weight", "bias"]
    net = Net()
    net.block = Block()
    assert names(net.named_children()) == ["block", "drop", "head"]
    layers = nn.ModuleList([nn.Linear(1, 1), nn.Linear(2, 2), nn.Linear(3, 3)])
    layers[0] = nn.Linear(4, 4)
    assert [m.in_features for m in layers] == [4, 2, 3]
    assert layers[0].in_features == 4 and layers[-1].in_features == 3


def test_assignment_moves_a_name_between_kinds():
    net = Net()
    net.head = nn.Parameter(gf.ones(1))  # a submodule slot becomes a parameter
    assert "head" not in dict(net.named_children())
    assert names(net.named_parameters())[0] == "head"  # own parameters come first
    net.head = None  # None is allowed in a parameter slot and drops it from iteration
    assert net.head is None and "head" not in names(net.named_parameters())
    del net.drop
    assert names(net.named_children()) == ["block"]


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert names(seq.named_parameters()) == ["0.weight", "0.bias"]
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4

    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight  # weight tying across two modules
    tied = nn.Sequential(a, b)
    assert names(tied.named_parameters()) == ["0.weight", "0.bias", "1.bias"]
    # state_dict lists every name a tensor is reachable by, as PyTorch does
    assert list(tied.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_wrong_kinds_in_registered_slots_raise():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign Tensor to parameter 'weight' of Linear"):
        lin.weight = gf.zeros(2, 2)
    with pytest.raises(TypeError, match="wrap it in nn.Parameter"):
        lin.register_parameter("extra", gf.zeros(2))
    net = Net()
    with pytest.raises(TypeError, match=r"cannot assign int to submodule 'head'"):
        net.head = 3
    with pytest.raises(TypeError, match=r"cannot assign list to buffer 'running'"):
        net.block.running = [0.0]
    with pytest.raises(TypeError, match="is not a Module subclass"):
        net.add_module("x", gf.zeros(1))
    with pytest.raises(KeyError, match=r"can't be empty or contain '\.'"):
        net.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match="can't be empty"):
        net.register_buffer("", gf.zeros(1))
    net.plain = 1.0
    with pytest.raises(KeyError, match="attribute 'plain' already exists on Net"):
        net.register_buffer("plain", gf.zeros(1))


def test_module_without_super_init_explains():
    class NoInit(nn.Module):
        def __init__(self):
            self.size = 3

        def forward(self, x):
            return x

    m = NoInit()
    with pytest.raises(RuntimeError, match=r"NoInit.__init__ did not call super\(\).__init__\(\)"):
        m(gf.ones(1))
    for use in (lambda: list(m.parameters()), m.state_dict, m.train, m.zero_grad):
        with pytest.raises(AttributeError, match=r"did not call super\(\).__init__\(\)"):
            use()

    class EarlyAssign(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign submodules before Module.__init__"):
        EarlyAssign()


# ---- modes, gradients, apply ------------------------------------------------------------------


def test_train_and_eval_reach_every_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = gf.ones(5, 3)
    numpy.testing.assert_array_equal(as_numpy(net(x)), as_numpy(net(x)))  # dropout is off
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError, match="expects a bool, got str"):
        net.train("no")


def test_zero_grad_to_none_and_to_zeros():
    net = Net()
    net(gf.ones(2, 3)).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    net.zero_grad(set_to_none=False)
    for p, g in zip(net.parameters(), grads):
        assert p.grad is g  # cleared in place
        assert not as_numpy(p.grad).any()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_apply_visits_children_before_parent():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Block", "Dropout", "Linear", "Net"]

    def zero_biases(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    net.apply(zero_biases)
    assert not as_numpy(net.block.fc.bias).any() and not as_numpy(net.head.bias).any()


def test_requires_grad_switch():
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


# ---- dtype and device -------------------------------------------------------------------------


def test_to_dtype_keeps_parameter_identity_and_casts_only_floats():
    net = Net()
    optimizer_view = list(net.parameters())  # what an optimizer built now would hold
    net(gf.ones(2, 3)).sum().backward()
    assert net.double() is net
    assert all(a is b for a, b in zip(optimizer_view, net.parameters()))
    assert all(p.dtype == numpy.float64 and p.grad.dtype == numpy.float64 for p in optimizer_view)
    assert net.block.running.dtype == numpy.float64
    assert net.block.scratch.dtype == numpy.float64
    assert net.block.steps.dtype == numpy.int64  # integer buffers keep their dtype

    # an update through the old references reaches the model
    net.eval()
    x = gf.ones(1, 3, dtype=gf.float64)
    before = as_numpy(net(x))
    optimizer_view[-1].array += 1.0  # head.bias
    numpy.testing.assert_allclose(as_numpy(net(x)), before + 1.0)

    net.to(dtype=gf.float32)
    assert all(p.dtype == numpy.float32 for p in net.parameters())
    net.to(gf.zeros(1, dtype=gf.float64))  # a tensor's device and dtype
    assert all(p.dtype == numpy.float64 for p in net.parameters())
    net.to("cpu").float()
    assert net.block.fc.weight is optimizer_view[1] and net.block.fc.weight.dtype == numpy.float32


def test_to_refuses_integer_dtypes_and_unknown_keywords():
    net = Net()
    with pytest.raises(TypeError, match="only casts to floating-point dtypes, got int64"):
        net.to(gf.int64)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['colour'\]"):
        net.to("cpu", colour="red")
    net.to("cpu", non_blocking=True)  # PyTorch's keyword, accepted


def test_to_device_moves_parameters_in_place(device):
    net = Net()
    params = list(net.parameters())
    net.to(device)
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert all(p.device.type == device for p in net.parameters())
    assert net.block.running.device.type == device
    net.cpu()
    assert all(p.device.type == "cpu" for p in params)


# ---- state_dict and load_state_dict -----------------------------------------------------------


def test_state_dict_holds_parameters_and_persistent_buffers():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == [
        "block.scale",
        "block.running",
        "block.steps",
        "block.fc.weight",
        "block.fc.bias",
        "head.weight",
        "head.bias",
    ]
    assert "block.scratch" not in sd  # non-persistent
    assert type(sd["head.weight"]) is gf.Tensor and not sd["head.weight"].requires_grad
    assert numpy.shares_memory(sd["head.weight"].array, net.head.weight.array)
    assert net.state_dict(keep_vars=True)["head.weight"] is net.head.weight
    assert next(iter(net.block.state_dict(prefix="model.block."))) == "model.block.scale"


def test_load_state_dict_round_trip_copies_values():
    source, target = Net(), Net()
    source.block.running.array[...] = 7.0
    source.block.steps.array[...] = 3
    result = target.load_state_dict(source.state_dict())
    assert result == nn.IncompatibleKeys([], [])
    expected = values(source)
    assert values(target).keys() == expected.keys()
    for key, value in values(target).items():
        numpy.testing.assert_array_equal(value, expected[key])
    # copied, not aliased: later changes to the source don't reach the target
    source.head.weight.array[...] = 100.0
    assert not numpy.shares_memory(target.head.weight.array, source.head.weight.array)
    assert (as_numpy(target.head.weight) != 100.0).all()
    # and the parameters are the same objects, still leaves that require grad
    weight = target.head.weight
    target.load_state_dict(source.state_dict())
    assert target.head.weight is weight and weight.requires_grad and weight.is_leaf
    numpy.testing.assert_array_equal(as_numpy(weight), 100.0)


def test_load_state_dict_accepts_arrays_and_casts_to_the_models_dtype():
    net = Net()
    sd = {k: as_numpy(v).astype(numpy.float64) for k, v in Net().state_dict().items()}
    net.load_state_dict(sd)
    assert net.head.weight.dtype == numpy.float32
    numpy.testing.assert_allclose(as_numpy(net.head.weight), sd["head.weight"], rtol=1e-6)


def test_load_state_dict_strict_names_missing_and_unexpected_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"], sd["block.running"]
    sd["head.gain"] = gf.ones(2)
    with pytest.raises(KeyError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    assert "error loading state_dict into Net" in message
    assert "missing keys: block.running, head.bias" in message
    assert "unexpected keys: head.gain" in message
    assert "strict=False" in message

    del sd["head.gain"]
    with pytest.raises(KeyError, match="missing keys: block.running, head.bias") as info:
        net.load_state_dict(sd)
    assert "unexpected" not in str(info.value)


def test_load_state_dict_not_strict_reports_and_loads_the_rest():
    net = Net()
    sd = {k: gf.zeros(*v.shape) for k, v in net.state_dict().items()}
    del sd["head.bias"]
    sd["extra"] = gf.ones(1)
    before = as_numpy(net.head.bias).copy()
    result = net.load_state_dict(sd, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    assert not as_numpy(net.head.weight).any()
    numpy.testing.assert_array_equal(as_numpy(net.head.bias), before)


def test_load_state_dict_shape_mismatch_names_key_and_shapes_and_loads_nothing():
    net = Net()
    sd = {k: gf.zeros(*v.shape) for k, v in net.state_dict().items()}
    sd["head.weight"] = gf.zeros(3, 4)
    before = values(net)
    message = (
        r"size mismatch for 'head.weight': the checkpoint has shape \(3, 4\), "
        r"the model has \(2, 4\)"
    )
    for strict in (True, False):
        with pytest.raises(ValueError, match=message):
            net.load_state_dict(sd, strict=strict)
    for key, value in values(net).items():  # nothing was half-loaded
        numpy.testing.assert_array_equal(value, before[key])


def test_load_state_dict_rejects_non_dicts_and_non_tensors():
    net = Net()
    with pytest.raises(TypeError, match="expects a dict of tensors, got list"):
        net.load_state_dict([])
    sd = net.state_dict()
    sd["head.bias"] = 1.5
    with pytest.raises(TypeError, match=r"state_dict\['head.bias'\] is a float; expected a Tensor"):
        net.load_state_dict(sd)


# ---- printing ---------------------------------------------------------------------------------


def test_repr_matches_pytorchs_layout():
    model = nn.Sequential(
        nn.Linear(4, 3),
        nn.ReLU(),
        nn.Sequential(nn.Linear(3, 2, bias=False), nn.Dropout(0.1)),
        nn.Softmax(dim=1),
    )
    # the text torch prints for the same torch.nn model
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=2, bias=False)\n"
        "    (1): Dropout(p=0.1, inplace=False)\n"
        "  )\n"
        "  (3): Softmax(dim=1)\n"
        ")"
    )
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(Block()) == ("Block(\n  (fc): Linear(in_features=3, out_features=4, bias=True)\n)")


def test_repr_of_each_module_equals_torchs():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.Linear(5, 2), torch.nn.Linear(5, 2)),
        (nn.Identity(), torch.nn.Identity()),
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.ELU(), torch.nn.ELU()),
        (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.Softplus(beta=2.0), torch.nn.Softplus(beta=2.0)),
        (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
        (nn.Dropout(0.25), torch.nn.Dropout(0.25)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
        (nn.MSELoss(), torch.nn.MSELoss()),
        (
            nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh())),
            torch.nn.Sequential(OrderedDict(fc=torch.nn.Linear(2, 2), act=torch.nn.Tanh())),
        ),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


# ---- hooks ------------------------------------------------------------------------------------


def test_forward_hooks_run_in_order_and_can_replace_args_and_output():
    lin = nn.Linear(2, 2)
    calls = []

    def pre(module, args):
        calls.append("pre")
        return args[0] * 0.0  # a non-tuple return becomes the single argument

    def post_first(module, args, out):
        calls.append("post1")
        assert module is lin and not as_numpy(args[0]).any()

    def post_second(module, args, out):
        calls.append("post2")
        return out + 1.0

    handles = [
        lin.register_forward_pre_hook(pre),
        lin.register_forward_hook(post_first),
        lin.register_forward_hook(post_second),
    ]
    out = lin(gf.ones(1, 2))
    assert calls == ["pre", "post1", "post2"]
    numpy.testing.assert_allclose(as_numpy(out), as_numpy(lin.bias)[None] + 1.0, rtol=1e-6)

    for handle in handles:
        handle.remove()
    calls.clear()
    x = gf.ones(1, 2)
    numpy.testing.assert_allclose(
        as_numpy(lin(x)), as_numpy(x) @ as_numpy(lin.weight).T + as_numpy(lin.bias), rtol=1e-6
    )
    assert calls == []
    with lin.register_forward_hook(lambda m, a, o: o * 0.0):
        assert not as_numpy(lin(x)).any()
    assert as_numpy(lin(x)).any()


def test_missing_forward_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="Empty has no forward"):
        type("Empty", (nn.Module,), {})()(gf.ones(1))


# ---- containers -------------------------------------------------------------------------------


def test_sequential_indexing_slicing_and_names():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and seq[-1] is seq[2] and list(seq) == [seq[0], seq[1], seq[2]]
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and names(head.named_children()) == ["1", "2"]
    assert head[0] is seq[1]
    with pytest.raises(IndexError, match="Sequential index 3 is out of range for length 3"):
        seq[3]
    seq.append(nn.Sigmoid())
    assert names(seq.named_children()) == ["0", "1", "2", "3"]
    x = gf.randn(4, 2)
    expected = gf.nn.functional.sigmoid(seq[2](seq[0](x).relu()))
    numpy.testing.assert_allclose(as_numpy(seq(x)), as_numpy(expected), rtol=1e-6)
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_and_dict_register_their_items():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 3)).extend([nn.Linear(3, 4)])
    layers.insert(1, nn.Tanh())
    assert [type(m).__name__ for m in layers] == ["Linear", "Tanh", "Linear", "Linear"]
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight",
                                         "3.bias"]  # fmt: skip
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 3
    with pytest.raises(IndexError, match="ModuleList index -5 is out of range for length 4"):
        layers[-5]

    heads = nn.ModuleDict({"a": nn.Linear(2, 2)})
    heads["b"] = nn.Linear(2, 1)
    assert list(heads) == ["a", "b"] and "b" in heads and len(heads) == 2
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    del heads["a"]
    assert list(heads.keys()) == ["b"] and names(heads.named_parameters())[0] == "b.weight"


# ---- PyTorch's keys ---------------------------------------------------------------------------


def _twin_models(torch_nn):
    """The same architecture built from gradflow.nn or torch.nn."""
    shared = torch_nn.Linear(4, 4)

    class Model(torch_nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch_nn.Sequential(torch_nn.Linear(3, 4), torch_nn.ReLU(), shared)
            self.blocks = torch_nn.ModuleList([shared, torch_nn.Linear(4, 4, bias=False)])
            self.heads = torch_nn.ModuleDict(
                {"cls": torch_nn.Sequential(OrderedDict(fc=torch_nn.Linear(4, 2)))}
            )
            self.register_buffer("count", None)
            self.register_buffer("mask", torch_nn.Linear(1, 1).weight.detach() * 0)
            self.register_buffer("cache", torch_nn.Linear(1, 1).weight.detach(), persistent=False)
            self.gain = torch_nn.Parameter(torch_nn.Linear(1, 1).weight.detach())

        def forward(self, x):
            for block in self.blocks:
                x = block(self.stem(x)) if block is shared else block(x)
            return self.heads["cls"](x) * self.gain[0, 0]

    return Model()


def test_state_dict_and_parameter_names_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _twin_models(nn), _twin_models(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert names(ours.named_buffers()) == names(theirs.named_buffers())
    assert names(ours.named_modules()) == names(theirs.named_modules())

    # a torch checkpoint loads by name and gives the same outputs
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = numpy.random.default_rng(0).standard_normal((5, 3)).astype(numpy.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    numpy.testing.assert_allclose(as_numpy(ours(gf.tensor(x))), expected, rtol=1e-5, atol=1e-6)


# ---- Parameter --------------------------------------------------------------------------------


def test_parameter_shares_its_tensors_array_and_requires_grad():
    t = gf.randn(2, 3)
    p = nn.Parameter(t)
    assert isinstance(p, gf.Tensor) and p.requires_grad and p.is_leaf
    assert p.array is t.array  # no copy, as torch.nn.Parameter
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    assert repr(nn.Parameter(gf.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    )
    out = p * 2.0
    assert type(out) is gf.Tensor  # ops on a Parameter give plain Tensors
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        nn.Parameter(gf.tensor([1, 2]))
