"""More of torch.nn.Module and its containers: ParameterList/ParameterDict, list and dict
editing, hooks with kwargs, full backward hooks, dotted lookups, dtype/device moves,
load_state_dict(assign=True) and the nn.modules class paths; parity with torch where it runs."""

from collections import OrderedDict

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import StateDictError


def keys(module):
    return list(module.state_dict())


# ---- Sequential ------------------------------------------------------------------------------


def test_sequential_editing_renumbers_like_torch():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()
    seq = nn.Sequential(a, b, c)
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and seq[0] is b
    assert seq.insert(0, d) is seq and list(seq) == [d, b, c]
    seq.insert(-1, a)
    assert list(seq) == [d, b, a, c] and list(seq._modules) == ["0", "1", "2", "3"]
    assert seq.pop(1) is b and list(seq) == [d, a, c]
    del seq[-2:]
    assert list(seq) == [d]
    seq.extend(nn.Sequential(b, c)).append(a)
    assert list(seq) == [d, b, c, a] and seq[-1] is a
    seq[-1] = b
    assert seq[3] is b
    assert isinstance(seq[1:3], nn.Sequential) and list(seq[1:3]) == [b, c]


def test_sequential_from_ordered_dict_keeps_names_and_slices_keep_them():
    seq = nn.Sequential(OrderedDict(fc=nn.Linear(2, 3), act=nn.ReLU(), out=nn.Linear(3, 1)))
    assert keys(seq) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert list(seq[1:]._modules) == ["act", "out"]
    assert seq[-1] is seq.out


def test_sequential_add_mul_and_iadd():
    a, b = nn.ReLU(), nn.Tanh()
    seq = nn.Sequential(a)
    both = seq + nn.Sequential(b)
    assert list(both) == [a, b] and list(both._modules) == ["0", "1"]
    assert list(seq * 3) == [a, a, a] and list(2 * seq) == [a, a]
    seq += nn.Sequential(b)
    assert list(seq) == [a, b]
    seq *= 2
    assert list(seq) == [a, b, a, b]


def test_sequential_errors():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    with pytest.raises(IndexError, match="Sequential index 2 is out of range for length 2"):
        seq[2]
    with pytest.raises(IndexError, match="Sequential index -3 is out of range for length 2"):
        del seq[-3]
    with pytest.raises(IndexError, match="Index out of range: 5"):
        seq.insert(5, nn.ReLU())
    with pytest.raises(AssertionError, match="module should be of type"):
        seq.insert(0, "relu")
    with pytest.raises(ValueError, match="supports only objects of Sequential class, but list"):
        seq + [nn.ReLU()]
    with pytest.raises(ValueError, match="supports only objects of Sequential class"):
        seq += [nn.ReLU()]
    with pytest.raises(TypeError, match="unsupported operand type"):
        seq * 1.5
    with pytest.raises(ValueError, match="Non-positive multiplication factor 0"):
        seq * 0


# ---- ModuleList and ModuleDict ---------------------------------------------------------------


def test_module_list_editing():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    layers = nn.ModuleList([a, b, c])
    del layers[0:2]
    assert list(layers) == [c] and list(layers._modules) == ["0"]
    layers.insert(0, a)
    layers.insert(-1, b)
    assert list(layers) == [a, b, c]
    assert layers.pop(-1) is c and len(layers) == 2
    layers[-1] = c
    assert list(layers) == [a, c]
    joined = layers + [b]
    assert isinstance(joined, nn.ModuleList) and list(joined) == [a, c, b]
    layers += nn.ModuleList([b])
    assert list(layers) == [a, c, b] and list(layers._modules) == ["0", "1", "2"]
    layers.extend(layers)  # extending with itself ends
    assert len(layers) == 6


def test_module_list_errors():
    layers = nn.ModuleList([nn.ReLU()])
    with pytest.raises(
        TypeError, match="ModuleList.extend should be called with an iterable, but got int"
    ):
        layers.extend(3)
    with pytest.raises(IndexError, match="ModuleList index 1 is out of range for length 1"):
        layers[1]
    with pytest.raises(TypeError, match="cannot assign int to submodule '0'"):
        layers[0] = 3


def test_module_dict_update_pop_clear():
    a, b = nn.ReLU(), nn.Tanh()
    d = nn.ModuleDict([("x", a), ["y", b]])
    assert list(d) == ["x", "y"] and "x" in d
    assert d.pop("x") is a and list(d.keys()) == ["y"]
    d.update(nn.ModuleDict({"z": a}))
    assert list(d.items()) == [("y", b), ("z", a)]
    d.clear()
    assert len(d) == 0


def test_module_dict_update_errors():
    d = nn.ModuleDict()
    with pytest.raises(TypeError, match="ModuleDict.update should be called with an iterable"):
        d.update(3)
    with pytest.raises(TypeError, match="element #0 should be Iterable; is int"):
        d.update([1])
    with pytest.raises(ValueError, match="element #0 has length 3; 2 is required"):
        d.update([("a", nn.ReLU(), 1)])


# ---- ParameterList and ParameterDict ---------------------------------------------------------


def test_parameter_list_registers_wraps_and_keys():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = nn.ParameterList([nn.Parameter(gf.ones(2)), gf.zeros(3)])

    net = Net()
    ps = net.ps
    assert isinstance(ps[1], nn.Parameter) and ps[1].requires_grad
    assert keys(net) == ["ps.0", "ps.1"]
    assert [n for n, _ in net.named_parameters()] == ["ps.0", "ps.1"]
    ps.append(gf.ones(1))
    ps.extend([gf.ones(4)])
    ps += [gf.ones(5)]
    assert len(ps) == 5 and [tuple(p.shape) for p in ps][-1] == (5,)
    assert isinstance(ps[1:3], nn.ParameterList) and len(ps[1:3]) == 2
    assert ps[-1] is ps[4]
    ps[0] = gf.full((2,), 7.0)
    assert ps[0].tolist() == [7.0, 7.0] and isinstance(ps[0], nn.Parameter)
    assert repr(nn.ParameterList([gf.ones(2, 3)])) == (
        "ParameterList(  (0): Parameter containing: [gradflow.float32 of size 2x3])".replace(
            "(  ", "(\n    "
        ).replace("])", "]\n)")
    )


def test_parameter_list_errors():
    ps = nn.ParameterList([gf.ones(1)])
    with pytest.raises(TypeError, match="ParameterList.extend should be called with an iterable"):
        ps.extend(3)
    with pytest.raises(IndexError, match="ParameterList index 3 is out of range for length 1"):
        ps[3]
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        ps(gf.ones(1))


def test_parameter_dict_behaves_like_a_dict_with_torchs_order():
    pd = nn.ParameterDict({"b": gf.ones(1), "a": nn.Parameter(gf.ones(2))})
    assert list(pd) == ["a", "b"]  # a plain dict is added in sorted key order, as in torch
    pd2 = nn.ParameterDict(OrderedDict(b=gf.ones(1), a=gf.ones(2)))
    assert list(pd2) == ["b", "a"] and keys(pd2) == ["b", "a"]
    assert isinstance(pd["b"], nn.Parameter) and "a" in pd and len(pd) == 2
    pd["c"] = gf.zeros(3)
    assert list(pd.keys()) == ["a", "b", "c"] and keys(pd) == ["a", "b", "c"]
    assert pd.get("zz") is None and pd.get("a") is pd["a"]
    assert pd.setdefault("d", gf.ones(1)) is pd["d"]
    assert pd.pop("d").shape == (1,) and "d" not in pd
    assert pd.popitem()[0] == "c"
    copy = pd.copy()
    assert copy["a"] is pd["a"] and list(copy) == ["a", "b"]
    merged = pd | nn.ParameterDict(OrderedDict(z=gf.ones(1)))
    assert list(merged) == ["a", "b", "z"]
    assert list(pd.fromkeys(["x", "y"], gf.ones(1))) == ["x", "y"]
    del pd["a"]
    assert next(iter(pd.items()))[0] == "b"
    pd.clear()
    assert len(pd) == 0 and keys(pd) == []
    with pytest.raises(KeyError):
        pd["missing"]
    with pytest.raises(RuntimeError, match="ParameterDict should not be called"):
        pd()
    with pytest.raises(ValueError, match="element #0 has length 1; 2 is required"):
        pd.update([("a",)])


def test_parameter_containers_match_torch_keys():
    torch = pytest.importorskip("torch")
    ours = nn.ParameterDict({"w": gf.ones(2), "b": gf.ones(1)})
    theirs = torch.nn.ParameterDict({"w": torch.ones(2), "b": torch.ones(1)})
    assert keys(ours) == list(theirs.state_dict())
    ours_l = nn.ParameterList([gf.ones(2), gf.ones(1)])
    theirs_l = torch.nn.ParameterList([torch.ones(2), torch.ones(1)])
    assert keys(ours_l) == list(theirs_l.state_dict())


# ---- forward hooks -----------------------------------------------------------------------------


class Scale(nn.Module):
    def forward(self, x, factor=1.0):
        return x * factor


def test_forward_pre_hook_with_kwargs_and_prepend():
    m = Scale()
    order = []

    def late(module, args, kwargs):
        order.append("late")
        return args, {**kwargs, "factor": kwargs.get("factor", 1.0) * 10}

    def early(module, args):
        order.append("early")
        return (args[0] + 1,)

    m.register_forward_pre_hook(late, with_kwargs=True)
    m.register_forward_pre_hook(early, prepend=True)
    assert m(gf.tensor([1.0]), factor=2.0).tolist() == [40.0]
    assert order == ["early", "late"]


def test_forward_pre_hook_with_kwargs_must_return_a_pair():
    m = Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
    with pytest.raises(
        RuntimeError, match=r"must return None or a tuple of \(new_args, new_kwargs\)"
    ):
        m(gf.tensor([1.0]))


def test_forward_hook_with_kwargs_and_always_call():
    m = Scale()
    seen = []
    m.register_forward_hook(lambda mod, args, kwargs, out: out + kwargs["factor"], with_kwargs=True)
    handle = m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    assert m(gf.tensor([1.0]), factor=3.0).tolist() == [6.0]
    assert seen[-1].tolist() == [6.0]
    with pytest.raises(TypeError):
        m("a", factor=object())  # forward raises: the always_call hook still runs
    assert seen[-1] is None
    handle.remove()
    m(gf.tensor([1.0]), factor=1.0)
    assert len(seen) == 2


# ---- full backward hooks -----------------------------------------------------------------------


def _linear(lib, device=None):
    layer = lib.nn.Linear(3, 2).double()
    with lib.no_grad():
        weight = np.arange(6.0).reshape(2, 3) / 10
        layer.weight.copy_(lib.tensor(weight))
        layer.bias.copy_(lib.tensor([0.1, -0.2]))
    return layer.to(device) if device else layer


def _hooked_run(lib, layer, x):
    log = []

    def pre(module, grad_output):
        log.append(("pre", [g.detach().cpu().numpy().copy() for g in grad_output]))
        return (grad_output[0] * 2,)

    def full(module, grad_input, grad_output):
        log.append(("full", [g.detach().cpu().numpy().copy() for g in grad_input],
                    [g.detach().cpu().numpy().copy() for g in grad_output]))  # fmt: skip
        return (grad_input[0] * 3,)

    layer.register_full_backward_pre_hook(pre)
    layer.register_full_backward_hook(full)
    (layer(x) ** 2).sum().backward()
    return log


def test_full_backward_hooks_see_and_replace_gradients_like_torch(device):
    torch = pytest.importorskip("torch")
    x_np = np.linspace(-1, 1, 12).reshape(4, 3)
    ours = _linear(gf, device)
    x = gf.tensor(x_np, device=device, requires_grad=True)
    log = _hooked_run(gf, ours, x)
    theirs = _linear(torch)
    xt = torch.tensor(x_np, requires_grad=True)
    log_t = _hooked_run(torch, theirs, xt)
    assert [entry[0] for entry in log] == [entry[0] for entry in log_t] == ["pre", "full"]
    for (_, *ours_parts), (_, *their_parts) in zip(log, log_t):
        for a, b in zip(ours_parts, their_parts):
            for u, v in zip(a, b):
                np.testing.assert_allclose(u, v, rtol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        ours.weight.grad.cpu().numpy(), theirs.weight.grad.numpy(), rtol=1e-12
    )


def test_full_backward_hook_without_input_gradients_gets_nones():
    layer = _linear(gf)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    layer(gf.ones(2, 3, dtype=gf.float64)).sum().backward()
    ((grad_input, grad_output),) = seen
    assert grad_input == (None,) and grad_output[0].shape == (2, 2)
    assert layer.weight.grad is not None


def test_full_backward_hook_positions_follow_positional_args():
    class Mix(nn.Module):
        def forward(self, a, scale, b):
            return a * scale + b * 2, a - b

    seen = []
    m = Mix()
    handle = m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go)))
    a = gf.ones(2, dtype=gf.float64, requires_grad=True)
    b = gf.ones(2, dtype=gf.float64, requires_grad=True)
    first, second = m(a, 3.0, b)
    (first.sum() + second.sum() * 5).backward()
    ((grad_input, grad_output),) = seen
    assert grad_input[1] is None and len(grad_input) == 3 and len(grad_output) == 2
    assert grad_input[0].tolist() == [8.0, 8.0] and grad_input[2].tolist() == [-3.0, -3.0]
    handle.remove()
    m(a, 3.0, b)[0].sum().backward()
    assert len(seen) == 1


def test_backward_hook_must_return_one_gradient_per_input():
    layer = _linear(gf)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    x = gf.ones(2, 3, dtype=gf.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        layer(x).sum().backward()


def test_backward_hook_checks_the_shape_of_a_replacement():
    layer = _linear(gf)
    layer.register_full_backward_pre_hook(lambda m, go: (gf.ones(5, dtype=gf.float64),))
    x = gf.ones(2, 3, dtype=gf.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"returned grad_output\[0\] of shape \(5,\); expected"):
        layer(x).sum().backward()


def test_backward_hooks_leave_gradients_unchanged_when_they_return_none():
    layer = _linear(gf)
    layer.register_full_backward_hook(lambda m, gi, go: None)
    layer.register_full_backward_pre_hook(lambda m, go: None)
    x_np = np.linspace(0, 1, 6).reshape(2, 3)
    x = gf.tensor(x_np, requires_grad=True)
    plain = _linear(gf)
    y = gf.tensor(x_np, requires_grad=True)
    (layer(x) ** 2).sum().backward()
    (plain(y) ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())
    np.testing.assert_array_equal(layer.weight.grad.numpy(), plain.weight.grad.numpy())


def test_no_backward_hook_work_without_grad_mode():
    layer = _linear(gf)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(1))
    with gf.no_grad():
        out = layer(gf.ones(1, 3, dtype=gf.float64, requires_grad=True))
    assert out.grad_fn is None and not seen


# ---- lookups, iteration, modes ------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("steps", gf.zeros(1))
        self.plain = 3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(2, 1)
        self.tied = self.head  # shared: counted once unless remove_duplicate=False


def test_get_submodule_parameter_and_buffer():
    net = Net()
    assert net.get_submodule("") is net and net.get_submodule("block.fc") is net.block.fc
    assert net.get_parameter("block.fc.weight") is net.block.fc.weight
    assert net.get_buffer("block.steps") is net.block.steps
    with pytest.raises(AttributeError, match="Block has no attribute `nope`"):
        net.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="`plain` is not an nn.Parameter"):
        net.get_parameter("block.plain")
    with pytest.raises(AttributeError, match="Linear has no attribute `gain`"):
        net.get_parameter("head.gain")
    with pytest.raises(AttributeError, match="`fc` is not a buffer"):
        net.get_buffer("block.fc")


def test_named_parameters_prefix_recurse_and_duplicates():
    net = Net()
    assert [n for n, _ in net.named_parameters(prefix="model")][:2] == [
        "model.block.fc.weight", "model.block.fc.bias",
    ]  # fmt: skip
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    names = [n for n, _ in net.named_parameters(remove_duplicate=False)]
    assert "tied.weight" in names and len(names) == 6
    assert len(list(net.parameters())) == 4
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert len(list(net.modules())) == 4


def test_modes_and_flags_return_self():
    net = Net()
    assert net.train() is net and net.eval() is net and not net.block.fc.training
    assert net.requires_grad_(False) is net and not net.head.weight.requires_grad
    assert net.share_memory() is net
    assert net.apply(lambda m: None) is net


def test_zero_grad_to_none_or_zero():
    net = Net()
    net.head(gf.ones(1, 2)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert net.head.weight.grad.tolist() == [[0.0, 0.0]]
    net.zero_grad()
    assert net.head.weight.grad is None


def test_setting_a_registered_parameter_to_none():
    net = Net()
    net.head.bias = None
    assert "head.bias" not in keys(net) and net.head.bias is None


# ---- dtype and device --------------------------------------------------------------------------


def test_bfloat16_is_refused_with_what_to_use():
    with pytest.raises(TypeError, match=r"no bfloat16; use half\(\) for float16 or float\(\)"):
        Net().bfloat16()


def test_half_float_double_and_type():
    net = Net()
    assert net.half().head.weight.dtype == np.float16
    assert net.double().head.weight.dtype == np.float64
    assert net.float().head.weight.dtype == np.float32
    net.type(gf.float64)
    assert net.head.weight.dtype == np.float64 and net.block.steps.dtype == np.float64


def test_to_accepts_non_blocking(device):
    net = Net()
    weight = net.head.weight
    assert net.to(device, gf.float64, non_blocking=True) is net
    assert net.head.weight is weight and weight.dtype == np.float64
    assert weight.device.type == device
    net.to(device=device, dtype=gf.float32, non_blocking=False, memory_format=None)
    assert weight.dtype == np.float32


# ---- state -------------------------------------------------------------------------------------


def test_state_dict_prefix_and_keep_vars():
    net = Net()
    sd = net.state_dict(prefix="m.", keep_vars=True)
    assert list(sd)[:3] == ["m.block.steps", "m.block.fc.weight", "m.block.fc.bias"]  # torch's
    assert sd["m.head.weight"] is net.head.weight


def test_load_state_dict_assign_takes_the_tensors():
    net = Net()
    net.head.weight.requires_grad_(False)
    sd = {k: v.detach().clone() + 1 for k, v in net.state_dict().items()}
    result = net.load_state_dict(sd, assign=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert isinstance(net.head.weight, nn.Parameter) and not net.head.weight.requires_grad
    assert net.head.bias.requires_grad
    assert net.block.steps is sd["block.steps"]
    sd["block.fc.bias"].array[...] = 5  # the parameter shares the given tensor's storage
    assert net.block.fc.bias.tolist() == [5.0, 5.0]


# ---- nn.modules paths --------------------------------------------------------------------------


def test_nn_modules_paths_are_nns_classes():
    from gradflow.nn.modules.container import Sequential
    from gradflow.nn.modules.conv import Conv2d
    from gradflow.nn.modules.linear import Linear
    from gradflow.nn.modules.module import Module

    assert Conv2d is nn.Conv2d and Linear is nn.Linear and Module is nn.Module
    assert Sequential is nn.Sequential
    layer = nn.Conv2d(1, 1, 3)
    assert isinstance(layer, nn.modules.conv.Conv2d) and isinstance(layer, nn.modules.Module)
    assert nn.modules.loss.MSELoss is nn.MSELoss and nn.modules.rnn.LSTM is nn.LSTM
    assert nn.modules.batchnorm.BatchNorm2d is nn.BatchNorm2d
    assert nn.modules.sparse.Embedding is nn.Embedding
    assert nn.modules.activation.ReLU is nn.ReLU and nn.modules.Linear is nn.Linear
    assert "Conv2d" in dir(nn.modules.conv)


def test_nn_modules_unknown_name_is_an_attribute_error():
    with pytest.raises(
        AttributeError, match="'gradflow.nn.modules.conv' has no attribute 'Conv9d'"
    ):
        _ = nn.modules.conv.Conv9d
    with pytest.raises(ImportError):
        from gradflow.nn.modules.conv import Conv9d  # noqa: F401


def test_nn_modules_utils_tuples():
    from gradflow.nn.modules.utils import _ntuple, _pair, _quadruple, _single, _triple

    assert _pair(3) == (3, 3) and _pair((1, 2)) == (1, 2) and _single(1) == (1,)
    assert _triple(0) == (0, 0, 0) and _quadruple(1) == (1, 1, 1, 1) and _ntuple(5)(2) == (2,) * 5


def test_load_state_dict_errors_are_runtime_errors_as_in_torch():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    with pytest.raises(RuntimeError, match="missing keys: head.bias") as caught:
        net.load_state_dict(sd)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, StateDictError)
    # torch's header, not quoted as KeyError's str would
    assert str(caught.value).startswith("Error(s) in loading state_dict for Net:")
    sd["head.bias"] = gf.zeros(3)
    with pytest.raises(RuntimeError, match="size mismatch for 'head.bias'") as caught:
        net.load_state_dict(sd)
    assert isinstance(caught.value, ValueError)


def test_backward_hook_on_a_layer_inside_sequential_runs():
    # Sequential fuses Linear + ReLU into one node; a hooked Linear is not fused.
    seq = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    seen = []
    seq[0].register_full_backward_hook(lambda m, gi, go: seen.append(go[0].shape))
    seq(gf.ones(4, 3, requires_grad=True)).sum().backward()
    assert seen == [(4, 2)]


def test_backward_hook_on_a_module_returning_a_packed_sequence():
    from gradflow.nn.utils.rnn import PackedSequence, pack_sequence

    class Pack(nn.Module):
        def forward(self, a, b):
            return pack_sequence([a, b], enforce_sorted=False)

    seen = []
    m = Pack()
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].shape))
    a = gf.ones(2, 3, requires_grad=True)
    out = m(a, gf.ones(3, 3, requires_grad=True))
    assert isinstance(out, PackedSequence) and out.batch_sizes.tolist() == [2, 2, 1]
    out.data.sum().backward()
    assert seen == [(5, 3)] and a.grad.tolist() == [[1.0] * 3] * 2


def test_module_list_repr_groups_runs_of_equal_layers_as_torch():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)])
    assert repr(layers) == (
        "ModuleList(\n"
        "  (0-1): 2 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  (2): ReLU()\n"
        "  (3): Linear(in_features=2, out_features=2, bias=True)\n"
        ")"
    )
    assert repr(nn.ModuleList()) == "ModuleList()"
    torch = pytest.importorskip("torch")
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    ours = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, 16), 3, enable_nested_tensor=False
    )
    assert repr(ours) == repr(theirs)
