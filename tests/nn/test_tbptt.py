"""nn.tbptt.truncated_bptt: the same gradients as detaching by hand, memory bounded by k."""

import numpy as np
import pytest

import gradflow as gf
from gradflow.nn.rnn import GRU, LSTM
from gradflow.nn.tbptt import detach_state, truncated_bptt
from gradflow.nn.utils.clip_grad import clip_grad_norm_
from gradflow.ops.losses import mse_loss
from gradflow.optim import SGD


class RecordingSGD:
    """A minimal optimizer that keeps a copy of every gradient it steps with."""

    def __init__(self, params, lr=0.1):
        self.params, self.lr, self.grads = list(params), lr, []

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads.append([p.grad.numpy().copy() for p in self.params])
        with gf.no_grad():
            for p in self.params:
                p.array -= self.lr * p.grad.array


def _saved_bytes(output):
    seen, stack, total = set(), [output.grad_fn], 0
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        total += sum(a.nbytes for a in fn.saved_arrays if a is not None)
        stack.extend(e[0] for e in fn._edges if e is not None and e[1] >= 0)
    return total


def _pair(cls=LSTM, **kwargs):
    """Two models with the same weights."""
    a, b = cls(3, 4, **kwargs).double(), cls(3, 4, **kwargs).double()
    b.load_state_dict(a.state_dict())
    return a, b


def _data(steps, batch=2, seed=0, batch_first=False):
    rng = np.random.default_rng(seed)
    shape = (batch, steps) if batch_first else (steps, batch)
    return gf.tensor(rng.standard_normal((*shape, 3))), gf.tensor(rng.standard_normal((*shape, 4)))


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_same_gradients_as_detaching_by_hand(cls):
    ours, by_hand = _pair(cls, num_layers=2)
    inputs, targets = _data(23)
    opt_a, opt_b = RecordingSGD(ours.parameters()), RecordingSGD(by_hand.parameters())
    mean, final = truncated_bptt(ours, inputs, targets, mse_loss, opt_a, k=5)

    hidden, losses = None, []
    for start in range(0, 23, 5):
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden) if cls is LSTM else hidden.detach()
        opt_b.zero_grad()
        output, hidden = by_hand(inputs[start : start + 5], hidden)
        loss = mse_loss(output, targets[start : start + 5])
        loss.backward()
        opt_b.step()
        losses.append(loss.item() * min(5, 23 - start))

    assert len(opt_a.grads) == len(opt_b.grads) == 5
    for grads_a, grads_b in zip(opt_a.grads, opt_b.grads):
        for ga, gb in zip(grads_a, grads_b):
            np.testing.assert_array_equal(ga, gb)
    assert mean == pytest.approx(sum(losses) / 23, rel=1e-12)
    finals = final if cls is LSTM else (final,)
    hands = hidden if cls is LSTM else (hidden,)
    for f, h in zip(finals, hands):
        assert f.grad_fn is None and not f.requires_grad
        np.testing.assert_array_equal(f.numpy(), h.detach().numpy())


def test_clipping_and_a_real_optimizer_match_the_manual_loop():
    ours, by_hand = _pair(GRU, batch_first=True)
    inputs, targets = _data(12, batch_first=True)
    opt_a = SGD(ours.parameters(), lr=0.5)
    opt_b = SGD(by_hand.parameters(), lr=0.5)
    truncated_bptt(ours, inputs, targets, mse_loss, opt_a, k=4, clip=0.01)
    hidden = None
    for start in range(0, 12, 4):
        hidden = detach_state(hidden)
        opt_b.zero_grad()
        output, hidden = by_hand(inputs[:, start : start + 4], hidden)  # batch_first: time dim 1
        mse_loss(output, targets[:, start : start + 4]).backward()
        clip_grad_norm_(by_hand.parameters(), 0.01)
        opt_b.step()
    for (name, a), b in zip(ours.named_parameters(), by_hand.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=name)


def test_saved_memory_does_not_grow_with_total_length():
    peaks = {}
    for steps in (40, 160):
        model = LSTM(3, 4, num_layers=2).double()
        peak = []

        def loss_fn(output, target, peak=peak):
            peak.append(_saved_bytes(output))
            return mse_loss(output, target)

        inputs, targets = _data(steps)
        truncated_bptt(model, inputs, targets, loss_fn, RecordingSGD(model.parameters()), k=10)
        peaks[steps] = max(peak)
    assert peaks[40] == peaks[160] > 0


def test_starting_state_is_used_and_errors():
    model = GRU(3, 4).double()
    inputs, targets = _data(6)
    h0 = gf.zeros(1, 2, 4, dtype=gf.float64, requires_grad=True)  # detached before use
    mean, final = truncated_bptt(
        model, inputs, targets, mse_loss, RecordingSGD(model.parameters()), k=4, hidden=h0
    )
    assert np.isfinite(mean) and tuple(final.shape) == (1, 2, 4) and h0.grad is None
    with pytest.raises(ValueError, match=r"k must be a positive int \(steps per chunk\), got 0"):
        truncated_bptt(model, inputs, targets, mse_loss, RecordingSGD([]), k=0)
    with pytest.raises(ValueError, match=r"inputs of shape \(6, 2, 3\) and targets of shape "
                       r"\(5, 2, 4\) differ in length along the time dim 0"):  # fmt: skip
        truncated_bptt(model, inputs, targets[:5], mse_loss, RecordingSGD([]), k=2)
    with pytest.raises(TypeError, match=r"detach_state: expected a Tensor"):
        detach_state(3)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize(("k", "every"), [(24, 5), (24, 24), (10, 3), (10, 1)])
def test_checkpointed_segments_give_the_same_gradients(cls, k, every):
    ours, plain = _pair(cls, num_layers=2)
    inputs, targets = _data(24, seed=3)
    opt_a, opt_b = RecordingSGD(ours.parameters()), RecordingSGD(plain.parameters())
    mean_a, final_a = truncated_bptt(ours, inputs, targets, mse_loss, opt_a, k=k,
                                     checkpoint_every=every)  # fmt: skip
    mean_b, final_b = truncated_bptt(plain, inputs, targets, mse_loss, opt_b, k=k)
    assert mean_a == pytest.approx(mean_b, rel=1e-12)
    assert len(opt_a.grads) == len(opt_b.grads)
    for grads_a, grads_b in zip(opt_a.grads, opt_b.grads, strict=True):
        for ga, gb in zip(grads_a, grads_b, strict=True):
            np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12)
    finals_a = final_a if cls is LSTM else (final_a,)
    finals_b = final_b if cls is LSTM else (final_b,)
    for fa, fb in zip(finals_a, finals_b, strict=True):
        np.testing.assert_allclose(fa.numpy(), fb.numpy(), rtol=1e-12)


def test_checkpointed_full_bptt_keeps_memory_of_about_sqrt_t_steps():
    import tracemalloc

    def peak(steps, every):
        model = LSTM(3, 32).double()
        inputs, targets = _data(steps, batch=4)
        targets = targets[..., :1].expand(steps, 4, 32).contiguous()
        tracemalloc.start()
        truncated_bptt(model, inputs, targets, mse_loss, RecordingSGD(model.parameters()),
                       k=steps, checkpoint_every=every)  # fmt: skip
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    full = {t: peak(t, None) for t in (100, 400)}
    bounded = {t: peak(t, int(t**0.5)) for t in (100, 400)}
    assert full[400] > 3 * full[100]  # linear in T
    assert bounded[400] < full[400] / 4
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int"):
        truncated_bptt(LSTM(3, 4), *_data(4), mse_loss, RecordingSGD([]), k=2, checkpoint_every=0)
