"""SyncBatchNorm in one process: the synchronized computation (with the all_reduce replaced by
an identity, or by a stand-in that sums two shards) against BatchNorm, and
convert_sync_batchnorm. The multi-process runs are in test_ddp_mpi.py."""

import numpy
import pytest

import gradflow
from gradflow import nn
from gradflow.nn.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm, sync_batch_norm


def _grads(module, x, upstream):
    out = module(x)
    (out * upstream).sum().backward()
    return (
        out.detach().numpy(),
        x.grad.numpy(),
        module.weight.grad.numpy(),
        module.bias.grad.numpy(),
    )


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    rng = numpy.random.default_rng(0)
    xs = rng.standard_normal((6, 3, 4, 4)).astype(numpy.float32)
    up = gradflow.tensor(rng.standard_normal((6, 3, 4, 4)).astype(numpy.float32))
    bn, sbn = nn.BatchNorm2d(3), nn.SyncBatchNorm(3)
    for a, b in zip(_grads(bn, gradflow.tensor(xs, requires_grad=True), up),
                    _grads(sbn, gradflow.tensor(xs, requires_grad=True), up)):  # fmt: skip
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(bn.running_var.numpy(), sbn.running_var.numpy(), rtol=1e-6)
    sbn.eval(), bn.eval()
    x = gradflow.tensor(xs)
    numpy.testing.assert_allclose(bn(x).detach().numpy(), sbn(x).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 7), (4, 3, 5, 5), (2, 3, 2, 3, 4)])
def test_synchronized_path_with_one_rank_equals_batchnorm(shape):
    """The all_reduce path itself (identity reduce: one rank) against BatchNorm's op."""
    rng = numpy.random.default_rng(1)
    xs = (rng.standard_normal(shape) * 2 + 0.5).astype(numpy.float64)
    up = gradflow.tensor(rng.standard_normal(shape))
    w0 = rng.standard_normal(3)
    b0 = rng.standard_normal(3)

    def run(sync):
        x = gradflow.tensor(xs, requires_grad=True)
        w = gradflow.tensor(w0, requires_grad=True)
        b = gradflow.tensor(b0, requires_grad=True)
        rm, rv = gradflow.zeros(3, dtype=gradflow.float64), gradflow.ones(3, dtype=gradflow.float64)
        if sync:
            out = sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-5, lambda a: a)
        else:
            out = gradflow.nn.functional.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
        (out * up).sum().backward()
        return [a.numpy() for a in (out.detach(), x.grad, w.grad, b.grad, rm, rv)]

    for a, b in zip(run(True), run(False)):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_two_shards_summed_equal_the_whole_batch():
    """Two 'ranks' run in turn against a reduce that adds the other shard's sums: each shard's
    output and input gradient equal the whole batch's, and the local weight gradients add up."""
    rng = numpy.random.default_rng(2)
    xs = rng.standard_normal((8, 2, 3, 3))
    up = rng.standard_normal((8, 2, 3, 3))
    w0, b0 = rng.standard_normal(2), rng.standard_normal(2)

    whole_x = gradflow.tensor(xs, requires_grad=True)
    w, b = gradflow.tensor(w0, requires_grad=True), gradflow.tensor(b0, requires_grad=True)
    out = gradflow.nn.functional.batch_norm(whole_x, None, None, w, b, True, 0.1, 1e-5)
    (out * gradflow.tensor(up)).sum().backward()

    shards = [slice(0, 4), slice(4, 8)]
    wsum_dw, wsum_db = 0, 0
    for r, s in enumerate(shards):
        other = shards[1 - r]
        xo = xs[other]
        forward_other = numpy.concatenate(
            [xo.sum(axis=(0, 2, 3)), (xo * xo).sum(axis=(0, 2, 3)), [xo.size // 2]]
        )
        calls = []

        def reduce(a, forward_other=forward_other, other=other, calls=calls):
            calls.append(a.shape)
            if len(calls) == 1:
                return a + forward_other
            # backward: the other shard's sums of dy and dy * xhat under the global statistics
            mean = (xs.sum(axis=(0, 2, 3)) / (xs.size // 2)).reshape(1, -1, 1, 1)
            var = xs.var(axis=(0, 2, 3)).reshape(1, -1, 1, 1)
            xhat = (xs[other] - mean) / numpy.sqrt(var + 1e-5)
            g = up[other]
            return a + numpy.concatenate([g.sum(axis=(0, 2, 3)), (g * xhat).sum(axis=(0, 2, 3))])

        x = gradflow.tensor(xs[s], requires_grad=True)
        wr, br = gradflow.tensor(w0, requires_grad=True), gradflow.tensor(b0, requires_grad=True)
        o = sync_batch_norm(x, None, None, wr, br, 0.1, 1e-5, reduce)
        (o * gradflow.tensor(up[s])).sum().backward()
        numpy.testing.assert_allclose(o.detach().numpy(), out.detach().numpy()[s], rtol=1e-9)
        numpy.testing.assert_allclose(x.grad.numpy(), whole_x.grad.numpy()[s], rtol=1e-8,
                                      atol=1e-10)  # fmt: skip
        wsum_dw = wsum_dw + wr.grad.numpy()
        wsum_db = wsum_db + br.grad.numpy()
    numpy.testing.assert_allclose(wsum_dw, w.grad.numpy(), rtol=1e-9)
    numpy.testing.assert_allclose(wsum_db, b.grad.numpy(), rtol=1e-9)


def test_one_value_per_channel_is_refused_in_training():
    x = gradflow.randn(1, 3, dtype=gradflow.float64)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        sync_batch_norm(x, None, None, None, None, 0.1, 1e-5, lambda a: a)


def test_input_errors():
    m = nn.SyncBatchNorm(3)
    with pytest.raises(ValueError, match="at least 2D"):
        m(gradflow.randn(3))
    with pytest.raises(ValueError, match="3 channels"):
        m(gradflow.randn(2, 4))


def test_convert_sync_batchnorm_keeps_state_and_recurses():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4 * 4 * 4, momentum=None, affine=False)),
        nn.InstanceNorm2d(2),
    )
    bn = model[1]
    bn.running_mean.array[...] = 3.0
    bn.num_batches_tracked.array[...] = 7
    model.eval()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    converted = convert_sync_batchnorm(model)
    assert converted is model
    assert type(model[1]) is SyncBatchNorm and type(model[2][1]) is SyncBatchNorm
    assert type(model[3]) is nn.InstanceNorm2d  # not a BatchNorm
    assert model[1].weight is bn.weight and model[1].running_mean is bn.running_mean
    assert model[2][1].momentum is None and model[2][1].weight is None
    assert not model[1].training
    after = model.state_dict()
    assert list(after) == list(before)
    for k, v in before.items():
        numpy.testing.assert_array_equal(after[k].numpy(), v)
    # a bare BatchNorm becomes a new module
    single = nn.BatchNorm1d(5)
    out = nn.SyncBatchNorm.convert_sync_batchnorm(single)
    assert type(out) is SyncBatchNorm and out.weight is single.weight
    assert "SyncBatchNorm(5, eps=1e-05" in repr(out)
