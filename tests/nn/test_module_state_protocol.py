"""Module's state-dict protocol as torch.nn.Module's: _save_to_state_dict/_load_from_state_dict
overrides, state-dict and load hooks, extra state, _metadata, the one "Error(s) in loading"
error; set_submodule, to_empty, _apply, compile, call_super_init; Optimizer's state-dict hooks.
Each behaviour is checked torch-free, and against torch where it is installed."""

from collections import OrderedDict

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.errors import StateDictError


def _torch():
    return pytest.importorskip("torch")


def _values(module):
    return {
        k: np.array(v.detach().cpu().numpy(), copy=True) for k, v in module.state_dict().items()
    }


def _net(lib):
    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)
            self.register_buffer("steps", lib.zeros(()))

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = lib.nn.Linear(2, 1)

    return Net()


def _state(lib, module, fill):
    return {k: lib.full(tuple(v.shape), float(fill)) for k, v in module.state_dict().items()}


# ---- state_dict: the walk, _metadata, hooks -------------------------------------------------


def test_state_dict_is_an_ordered_dict_with_torchs_metadata():
    sd = _net(gf).state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == [
        "block.steps",
        "block.fc.weight",
        "block.fc.bias",
        "head.weight",
        "head.bias",
    ]
    assert sd._metadata == {"": {"version": 1}, "block": {"version": 1}, "block.fc": {"version": 1},
                            "head": {"version": 1}}  # fmt: skip
    torch = _torch()
    theirs = _net(torch).state_dict()
    assert list(sd) == list(theirs) and dict(sd._metadata) == dict(theirs._metadata)


def test_state_dict_prefix_is_prepended_as_given_as_torch():
    for lib in (gf, _torch()) if _has_torch() else (gf,):
        lin = lib.nn.Linear(2, 2)
        assert list(lin.state_dict(prefix="m.")) == ["m.weight", "m.bias"]
        assert list(lin.state_dict(prefix="m")) == ["mweight", "mbias"]
        dest = {}
        assert lin.state_dict(destination=dest, prefix="x.") is dest and not hasattr(
            dest, "_metadata"
        )


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _record_state_dict_hooks(lib):
    calls = []
    net = _net(lib)
    net.block.register_state_dict_pre_hook(lambda m, p, kv: calls.append(("pre", p, kv)))

    def post(module, sd, prefix, local_metadata):
        calls.append(("post", prefix, dict(local_metadata), sorted(sd)))
        sd[prefix + "note"] = 7

    net.block.register_state_dict_post_hook(post)
    sd = net.state_dict(keep_vars=True)
    return calls, list(sd)


def test_state_dict_pre_and_post_hooks():
    calls, keys = _record_state_dict_hooks(gf)
    assert calls[0] == ("pre", "block.", True)
    assert calls[1] == ("post", "block.", {"version": 1},
                        ["block.fc.bias", "block.fc.weight", "block.steps"])  # fmt: skip
    assert keys[:4] == ["block.steps", "block.fc.weight", "block.fc.bias", "block.note"]
    if _has_torch():
        assert (calls, keys) == _record_state_dict_hooks(_torch())


def test_state_dict_post_hook_return_rules():
    net = nn.Linear(2, 2)
    handle = net._register_state_dict_hook(lambda m, sd, p, md: {"replaced": 1})
    assert net.state_dict() == {"replaced": 1}  # the private hook's result replaces it
    handle.remove()
    assert list(net.state_dict()) == ["weight", "bias"]

    def public(module, sd, prefix, md):
        return sd

    net.register_state_dict_post_hook(public)
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        net.state_dict()
    with pytest.raises(RuntimeError, match="Cannot register the same function"):
        net._register_state_dict_hook(public)


def test_save_to_state_dict_override_adds_and_renames():
    class Old(nn.Linear):
        def _save_to_state_dict(self, destination, prefix, keep_vars):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            destination[prefix + "w"] = destination.pop(prefix + "weight")

    sd = nn.Sequential(Old(2, 3)).state_dict()
    assert list(sd) == ["0.bias", "0.w"] and tuple(sd["0.w"].shape) == (3, 2)


# ---- load_state_dict: the walk, hooks, errors -----------------------------------------------


def _renaming_module(lib):
    class Renamed(lib.nn.Linear):
        """Loads checkpoints that called the weight "w" (a real model's rename)."""

        def _load_from_state_dict(self, state_dict, prefix, *args):
            if prefix + "w" in state_dict:
                state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
            super()._load_from_state_dict(state_dict, prefix, *args)

    return lib.nn.Sequential(Renamed(2, 3))


def test_load_from_state_dict_override_renames_a_key():
    net = _renaming_module(gf)
    old = {"0.w": gf.ones(3, 2) * 2, "0.bias": gf.ones(3)}
    result = net.load_state_dict(old)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), 2.0)
    assert "0.w" in old  # the caller's dict is not edited (load works on a copy)
    if _has_torch():
        torch = _torch()
        theirs = _renaming_module(torch)
        assert repr(theirs.load_state_dict({"0.w": torch.ones(3, 2), "0.bias": torch.ones(3)})) == (
            repr(result)
        )


def _weight_norm_style(lib, with_module):
    calls = []

    def convert(*args):
        module = args[0] if with_module else None
        state_dict, prefix, local_metadata, strict, missing, unexpected, errors = args[-7:]
        calls.append((module is not None, prefix, dict(local_metadata), strict))
        g = state_dict.pop(prefix + "weight_g", None)
        v = state_dict.pop(prefix + "weight_v", None)
        if g is not None:
            state_dict[prefix + "weight"] = g * v

    net = lib.nn.Sequential(lib.nn.Linear(2, 2))
    if with_module:
        net[0].register_load_state_dict_pre_hook(convert)
    else:
        net[0]._register_load_state_dict_pre_hook(convert)
    sd = {"0.weight_g": lib.full((2, 1), 3.0), "0.weight_v": lib.ones(2, 2), "0.bias": lib.ones(2)}
    net.load_state_dict(sd)
    return calls, net[0].weight.detach().cpu().numpy()


@pytest.mark.parametrize("with_module", [True, False])
def test_load_pre_hook_converts_keys(with_module):
    calls, weight = _weight_norm_style(gf, with_module)
    assert calls == [(with_module, "0.", {}, True)]  # a plain dict has no _metadata
    np.testing.assert_array_equal(weight, 3.0)
    if _has_torch():
        their_calls, their_weight = _weight_norm_style(_torch(), with_module)
        assert their_calls == calls and their_weight.tolist() == weight.tolist()


def test_load_sees_the_saved_metadata_and_assign_flag():
    seen = []

    class Versioned(nn.Linear):
        _version = 3

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, *rest):
            seen.append(dict(local_metadata))
            super()._load_from_state_dict(state_dict, prefix, local_metadata, *rest)

    net = nn.Sequential(Versioned(2, 2))
    sd = net.state_dict()
    assert sd._metadata["0"] == {"version": 3}
    net.load_state_dict(sd)
    net.load_state_dict(dict(sd))  # a plain dict: no metadata
    net.load_state_dict(sd, assign=True)
    assert seen == [{"version": 3}, {}, {"version": 3, "assign_to_params_buffers": True}]
    assert sd._metadata["0"] == {"version": 3}  # not edited by the assign flag


def _clearing_post_hook(lib):
    net = _net(lib)
    seen = []

    def hook(module, incompatible):
        seen.append((list(incompatible.missing_keys), list(incompatible.unexpected_keys)))
        incompatible.missing_keys.clear()

    net.register_load_state_dict_post_hook(hook)
    sd = _state(lib, net, 4)
    del sd["head.bias"]
    result = net.load_state_dict(sd)  # strict, but the hook forgave the missing key
    return seen, result.missing_keys, result.unexpected_keys, net.head.weight.detach().numpy()


def test_load_post_hook_clears_missing_keys():
    seen, missing, unexpected, weight = _clearing_post_hook(gf)
    assert seen == [(["head.bias"], [])] and missing == [] and unexpected == []
    np.testing.assert_array_equal(weight, 4.0)
    if _has_torch():
        theirs = _clearing_post_hook(_torch())
        assert theirs[:3] == (seen, missing, unexpected)


def test_load_post_hook_must_return_none_and_strict_errors_after_hooks():
    net = nn.Linear(2, 2)
    handle = net.register_load_state_dict_post_hook(lambda m, keys: keys)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        net.load_state_dict(net.state_dict())
    handle.remove()
    net.register_load_state_dict_post_hook(lambda m, keys: None)
    sd = {"weight": gf.full((2, 2), 5.0)}
    with pytest.raises(RuntimeError, match="missing keys: bias"):
        net.load_state_dict(sd)
    # with a post-hook the matching keys were loaded before the strict error, as torch
    np.testing.assert_array_equal(net.weight.detach().numpy(), 5.0)


def test_strict_errors_without_post_hooks_load_nothing():
    net = _net(gf)
    before = _values(net)
    sd = _state(gf, net, 9)
    sd["block.fc.weight"] = gf.ones(5, 5)  # wrong shape in a child
    sd["extra"] = gf.ones(1)
    for strict in (True, False):
        with pytest.raises(StateDictError) as caught:
            net.load_state_dict(sd, strict=strict)
        assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, ValueError)
        message = str(caught.value)
        assert message.startswith("Error(s) in loading state_dict for Net:\n\t")
        assert "size mismatch for 'block.fc.weight'" in message
        assert ("unexpected keys: extra" in message) == strict
    for key, value in _values(net).items():
        np.testing.assert_array_equal(value, before[key])


def test_error_lists_every_error_as_torch():
    torch = _torch()
    for lib in (gf, torch):
        net = _net(lib)
        sd = _state(lib, net, 1)
        sd["head.weight"] = lib.ones(4, 4)
        sd["block.fc.bias"] = lib.ones(7)
        del sd["head.bias"]
        with pytest.raises(RuntimeError) as caught:
            net.load_state_dict(sd)
        lines = str(caught.value).split("\n\t")
        assert lines[0] == "Error(s) in loading state_dict for Net:"
        assert len(lines) == 4  # the key errors, then one line per size mismatch, in walk order
        assert "head.bias" in lines[1] and "block.fc.bias" in lines[2] and "head.weight" in lines[3]


def test_non_tensor_values_raise_type_and_runtime_errors():
    net = nn.Linear(2, 2)
    sd = net.state_dict()
    sd["bias"] = 1.5
    with pytest.raises(TypeError, match=r"state_dict\['bias'\] is a float") as caught:
        net.load_state_dict(sd)
    assert isinstance(caught.value, RuntimeError)
    with pytest.raises(TypeError, match="expects a dict of tensors, got list"):
        net.load_state_dict([])


def test_mapping_and_one_element_into_0d_as_torch():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(gf.zeros(()))

    from types import MappingProxyType

    m = Scale()
    m.load_state_dict(MappingProxyType({"s": gf.tensor([2.5])}))
    assert m.s.shape == () and m.s.item() == 2.5


def test_extra_state_round_trip_and_keys():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)
            self.count = 0

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]

    src = nn.Sequential(Counter())
    src[0].count = 5
    sd = src.state_dict()
    assert list(sd) == ["0._extra_state", "0.fc.weight", "0.fc.bias"]
    dst = nn.Sequential(Counter())
    dst.load_state_dict(sd)
    assert dst[0].count == 5
    del sd["0._extra_state"]
    with pytest.raises(RuntimeError, match="missing keys: 0._extra_state"):
        dst.load_state_dict(sd)
    plain = nn.Sequential(nn.Linear(1, 1))
    sd = plain.state_dict()
    sd["0._extra_state"] = 1
    assert plain.load_state_dict(sd, strict=False).unexpected_keys == ["0._extra_state"]
    with pytest.raises(RuntimeError, match="should never be called"):
        plain.get_extra_state()
    with pytest.raises(RuntimeError, match="should never be called"):
        plain.set_extra_state(None)


def test_extra_state_against_torch():
    torch = _torch()

    def build(lib):
        class Tagged(lib.nn.Linear):
            def get_extra_state(self):
                return "v2"

            def set_extra_state(self, state):
                self.tag = state

        return lib.nn.Sequential(Tagged(2, 2))

    ours, theirs = build(gf), build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    sd = {k: (v if isinstance(v, str) else gf.tensor(v.detach().numpy()))
          for k, v in theirs.state_dict().items()}  # fmt: skip
    ours.load_state_dict(sd)
    assert ours[0].tag == "v2"
    np.testing.assert_array_equal(
        ours[0].weight.detach().numpy(), theirs[0].weight.detach().numpy()
    )


def test_assign_keeps_a_given_parameter_and_sets_requires_grad():
    net = nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    given = nn.Parameter(gf.ones(2))
    sd = {"weight": gf.ones(2, 2), "bias": given}
    net.load_state_dict(sd, assign=True)
    assert net.bias is given and not given.requires_grad
    assert isinstance(net.weight, nn.Parameter) and net.weight.requires_grad


def test_load_into_a_module_on_the_device(device):
    net = nn.Sequential(nn.Linear(2, 2)).to(device)
    net[0].register_load_state_dict_pre_hook(
        lambda m, sd, prefix, *rest: sd.update({prefix + "bias": gf.full((2,), 3.0)})
    )
    net.load_state_dict({"0.weight": np.ones((2, 2), np.float64)}, strict=False)
    assert net[0].weight.device.type == device and net[0].weight.dtype == gf.float32
    np.testing.assert_array_equal(net[0].bias.detach().cpu().numpy(), 3.0)


# ---- the rest of Module's API ----------------------------------------------------------------


def test_set_submodule_as_torch():
    net = _net(gf)
    new = nn.Linear(3, 2)
    net.set_submodule("block.fc", new, strict=True)
    assert net.block.fc is new
    net.set_submodule("block.extra", nn.ReLU())  # created (strict=False)
    assert "block.extra" in dict(net.named_modules())
    with pytest.raises(AttributeError, match="Block has no attribute `other`"):
        net.set_submodule("block.other", nn.ReLU(), strict=True)
    with pytest.raises(ValueError, match="Cannot set the submodule without a target name"):
        net.set_submodule("", nn.ReLU())
    with pytest.raises(ValueError, match="is not an nn.Module"):
        net.set_submodule("head", 3)
    with pytest.raises(AttributeError, match="`steps` is not an nn.Module"):
        net.set_submodule("block.steps", nn.ReLU())
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        net.set_submodule("nope.fc", nn.ReLU())
    if _has_torch():
        theirs = _net(_torch())
        with pytest.raises(AttributeError, match="`steps` is not an nn.Module"):
            theirs.set_submodule("block.steps", _torch().nn.ReLU())


def test_to_empty_keeps_objects_shapes_and_dtypes(device):
    net = _net(gf).double()
    params = list(net.parameters())
    assert net.to_empty(device=device) is net
    assert [p is q for p, q in zip(net.parameters(), params)] == [True] * len(params)
    assert net.block.fc.weight.shape == (2, 3) and net.block.fc.weight.dtype == gf.float64
    assert net.block.steps.device.type == device
    lazy = nn.LazyLinear(3)
    lazy.to_empty(device=None)
    assert lazy.has_uninitialized_params()


def test_apply_override_converts_held_tensors_and_to_uses_it(device):
    class Cached(nn.Linear):
        def __init__(self):
            super().__init__(2, 2)
            self.cache = gf.ones(3)

        def _apply(self, fn, recurse=True):
            super()._apply(fn, recurse)
            self.cache = fn(self.cache)
            return self

    net = nn.Sequential(Cached())
    net.double()
    assert net[0].cache.dtype == gf.float64 and net[0].weight.dtype == gf.float64
    net.to(device)
    assert net[0].cache.device.type == device
    seen = []
    net._apply(lambda t: seen.append(tuple(t.shape)) or t, recurse=False)
    assert seen == []  # the Sequential holds no tensors itself


def test_small_names():
    net = nn.Linear(2, 2)
    assert net.compile() is None and net.compile(mode="max-autotune") is None
    assert net._get_name() == "Linear"
    assert nn.Module.dump_patches is False and nn.Module.call_super_init is False
    assert nn.Module._version == 1 and nn.Module.T_destination.__name__ == "T_destination"
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        nn.Module(x=1)
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        nn.Module(1)


def test_call_super_init_passes_arguments_to_a_mixin():
    class Mixin:
        def __init__(self, tag):
            self.tag = tag

    class Tagged(nn.Module, Mixin):
        call_super_init = True

    assert Tagged("t").tag == "t"


# ---- Optimizer's state-dict hooks --------------------------------------------------------------


def _optimizer_hooks(lib):
    calls = []
    w = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([w], lr=0.1, momentum=0.9)
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre-first"), prepend=True)

    def post(o, sd):
        calls.append(("post", sorted(sd)))
        return {**sd, "note": 1}

    opt.register_state_dict_post_hook(post)
    sd = opt.state_dict()

    def load_pre(o, sd):
        calls.append(("load_pre", sd.pop("note")))
        sd["param_groups"][0]["lr"] = 0.5

    opt.register_load_state_dict_pre_hook(load_pre)
    opt.register_load_state_dict_post_hook(lambda o: calls.append(("load_post", o.defaults["lr"])))
    opt.load_state_dict(sd)
    return calls, sorted(sd), opt.param_groups[0]["lr"]


def test_optimizer_state_dict_hooks():
    calls, keys, lr = _optimizer_hooks(gf)
    assert calls == ["pre-first", "pre", ("post", ["param_groups", "state"]), ("load_pre", 1),
                     ("load_post", 0.1)]  # fmt: skip
    assert keys == ["note", "param_groups", "state"]  # load works on a shallow copy
    assert lr == 0.5
    if _has_torch():
        assert _optimizer_hooks(_torch()) == (calls, keys, lr)


def test_optimizer_hook_handles_remove_and_replacing_dicts():
    opt = gf.optim.SGD([nn.Parameter(gf.ones(2))], lr=0.1)
    handle = opt.register_state_dict_post_hook(lambda o, sd: {"replaced": True})
    assert opt.state_dict() == {"replaced": True}
    handle.remove()
    sd = opt.state_dict()
    handle = opt.register_load_state_dict_pre_hook(lambda o, s: 5)
    with pytest.raises(TypeError, match="pre-hook returned int"):
        opt.load_state_dict(sd)
    handle.remove()
    opt.load_state_dict(sd)
    with pytest.raises(TypeError, match="must be callable"):
        opt.register_load_state_dict_post_hook(3)
    assert gf.optim.Optimizer.OptimizerPreHook is not None
    assert gf.optim.Optimizer.OptimizerPostHook is not None
