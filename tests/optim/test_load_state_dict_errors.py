"""Optimizer.load_state_dict checks what it is given, naming the parameter index and the key
(issue 14 §4: a bad ``step`` was NumPy's "invalid literal for int()"): types (TypeError), shapes
and values (ValueError), and nothing is loaded when anything is wrong."""

import numpy as np
import pytest

import gradflow as gf
from gradflow.optim import SGD, Adam, RMSprop


def _stepped(cls=Adam, **kwargs):
    params = [
        gf.tensor(np.ones((3, 4)), requires_grad=True),
        gf.tensor(np.ones(4), requires_grad=True),
    ]
    opt = cls(params, **kwargs)
    for p in params:
        p.grad = gf.ones(*p.shape, dtype=gf.float64)
    opt.step()
    return params, opt


def _edit(path, value):
    """A function that sets (or, with value DELETE, removes) d[path[0]][path[1]]... in place."""

    def apply(d):
        for key in path[:-1]:
            d = d[key]
        if value is DELETE:
            del d[path[-1]]
        else:
            d[path[-1]] = value

    return apply


DELETE = object()
CASES = {
    "step-string": (
        _edit(["state", 0, "step"], "abc"),
        TypeError,
        "Adam.load_state_dict: state 'step' of parameter 0 is 'abc' (str); expected a "
        "non-negative int, the count of steps taken",
    ),
    "step-negative": (
        _edit(["state", 1, "step"], -3),
        ValueError,
        "Adam.load_state_dict: state 'step' of parameter 1 is -3; expected a non-negative "
        "whole number, the count of steps taken",
    ),
    "step-fraction": (
        _edit(["state", 0, "step"], 2.5),
        ValueError,
        "Adam.load_state_dict: state 'step' of parameter 0 is 2.5; expected a non-negative "
        "whole number, the count of steps taken",
    ),
    "step-nan": (
        _edit(["state", 0, "step"], float("nan")),
        ValueError,
        "Adam.load_state_dict: state 'step' of parameter 0 is nan; expected a non-negative "
        "whole number, the count of steps taken",
    ),
    "step-bool": (
        _edit(["state", 0, "step"], True),
        TypeError,
        "Adam.load_state_dict: state 'step' of parameter 0 is True (bool); expected a "
        "non-negative int, the count of steps taken",
    ),
    "step-several-numbers": (
        _edit(["state", 0, "step"], gf.tensor([1.0, 2.0])),
        ValueError,
        "Adam.load_state_dict: state 'step' of parameter 0 has shape (2,); expected a single "
        "number, the count of steps taken",
    ),
    "exp_avg-a-number": (
        _edit(["state", 0, "exp_avg"], 0.5),
        TypeError,
        "Adam.load_state_dict: state 'exp_avg' of parameter 0 is a float; expected a gradflow "
        "Tensor of the parameter's shape (3, 4)",
    ),
    "exp_avg_sq-a-list": (
        _edit(["state", 1, "exp_avg_sq"], [0.0] * 4),
        TypeError,
        "Adam.load_state_dict: state 'exp_avg_sq' of parameter 1 is a list; expected a gradflow "
        "Tensor of the parameter's shape (4,)",
    ),
    "exp_avg-bool-dtype": (
        _edit(["state", 1, "exp_avg"], gf.tensor(np.zeros(4, bool))),
        TypeError,
        "Adam.load_state_dict: state 'exp_avg' of parameter 1 has dtype bool; expected a "
        "floating-point tensor (it is cast to the parameter's dtype, float64)",
    ),
    "exp_avg-wrong-shape": (
        _edit(["state", 1, "exp_avg"], gf.zeros(5, dtype=gf.float64)),
        ValueError,
        "Adam.load_state_dict: state 'exp_avg' of parameter 1 has shape (5,) but the parameter "
        "has shape (4,); the state dict belongs to another model",
    ),
    "state-entry-not-a-dict": (
        _edit(["state", 1], [1, 2]),
        TypeError,
        "Adam.load_state_dict: the state of parameter 1 must be a dict of its state (tensors "
        "such as 'exp_avg', and 'step'), got list",
    ),
    "state-not-a-dict": (
        _edit(["state"], [{}]),
        TypeError,
        "Adam.load_state_dict: the state dict's 'state' must be a dict from parameter index to "
        "that parameter's state, got list",
    ),
    "state-of-an-unknown-index": (
        _edit(["state", "0"], {}),
        ValueError,
        "Adam.load_state_dict: the state dict has state for parameter index '0', which no "
        "parameter group lists",
    ),
    "param_groups-not-a-list": (
        _edit(["param_groups"], {"lr": 0.1}),
        TypeError,
        "Adam.load_state_dict: the state dict's 'param_groups' must be a list of dicts (one per "
        "parameter group), got dict",
    ),
    "group-without-params": (
        _edit(["param_groups", 0, "params"], DELETE),
        ValueError,
        "Adam.load_state_dict: parameter group 0 of the state dict has no 'params' (the list of "
        "its parameter indices)",
    ),
    "params-not-ints": (
        _edit(["param_groups", 0, "params"], ["a", "b"]),
        TypeError,
        "Adam.load_state_dict: parameter group 0 of the state dict needs 'params', a list of "
        "parameter indices (ints), got list",
    ),
    "params-repeated": (
        _edit(["param_groups", 0, "params"], [0, 0]),
        ValueError,
        "Adam.load_state_dict: parameter index 0 is listed more than once in the state dict's "
        "parameter groups; each index names one parameter",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_state_dicts_are_refused_by_index_and_key(case):
    edit, error, message = CASES[case]
    params, opt = _stepped()
    saved = opt.state_dict()
    edit(saved)
    fresh = Adam(params, lr=0.5)
    with pytest.raises(error) as info:
        fresh.load_state_dict(saved)
    assert str(info.value) == message
    assert not fresh.state and fresh.param_groups[0]["lr"] == 0.5  # nothing was loaded


def test_a_state_dict_that_is_not_a_dict():
    params, _ = _stepped()
    with pytest.raises(TypeError, match=r"^Adam.load_state_dict: expected the dict returned by "
                                        r"state_dict\(\), .* got list$"):  # fmt: skip
        Adam(params).load_state_dict([{}, []])


@pytest.mark.parametrize(
    "step",
    [3, np.int64(3), 3.0, np.float32(3.0), gf.tensor(3.0), gf.tensor([3.0]), np.array(3)],
    ids=["int", "np.int64", "float", "np.float32", "tensor", "1-element tensor", "0-d array"],
)
def test_step_counts_in_every_form_pytorch_or_numpy_saves_them(step):
    params, opt = _stepped()
    saved = opt.state_dict()
    saved["state"][0]["step"] = step
    other = Adam(params)
    other.load_state_dict(saved)
    assert other.state[params[0]]["step"] == 3 and type(other.state[params[0]]["step"]) is int


def test_a_torch_step_tensor_loads_and_a_torch_state_tensor_is_named():
    torch = pytest.importorskip("torch")
    params, opt = _stepped()
    saved = opt.state_dict()
    saved["state"][0]["step"] = torch.tensor(7.0)  # how torch.optim.Adam saves it
    other = Adam(params)
    other.load_state_dict(saved)
    assert other.state[params[0]]["step"] == 7
    saved["state"][0]["exp_avg"] = torch.zeros(3, 4)
    with pytest.raises(TypeError, match=r"state 'exp_avg' of parameter 0 is a torch\.Tensor; "
                                        r".*gradflow\.tensor\(t\.numpy\(\)\)"):  # fmt: skip
        Adam(params).load_state_dict(saved)


def test_sgd_without_momentum_may_save_a_none_buffer_as_pytorch_does():
    params, opt = _stepped(SGD, lr=0.1, momentum=0.9)
    saved = opt.state_dict()
    saved["state"][0]["momentum_buffer"] = None
    other = SGD(params, lr=0.1, momentum=0.9)
    other.load_state_dict(saved)
    params[0].grad = gf.ones(3, 4, dtype=gf.float64)
    other.step()  # a None buffer starts afresh, as on the first step
    assert other.state[params[0]]["momentum_buffer"] is not None


def test_rmsprop_state_is_checked_the_same_way():
    params, opt = _stepped(RMSprop)
    saved = opt.state_dict()
    saved["state"][1]["square_avg"] = 1.0
    message = r"^RMSprop.load_state_dict: state 'square_avg' of parameter 1 is a float; expected"
    with pytest.raises(TypeError, match=message):
        RMSprop(params).load_state_dict(saved)
