"""Rank script for the DistributedDataParallel tests:
``mpiexec -n 2 python -m mpi4py ddp_cases.py CASE`` (also run in one process, world size 1).

Each case trains the same model two ways in every rank: wrapped in DistributedDataParallel on
this rank's shard of the batch, and plain on the whole batch (every rank can build the whole
batch: it comes from a fixed seed); the parameters must agree. A case prints "ok <rank>" when
it passes; a failed assertion raises and mpi4py's runner ends the job with a non-zero exit.
"""

from __future__ import annotations

import copy
import gc
import sys

import numpy

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.nn.parallel import DistributedDataParallel as DDP

CASES = {}
BATCH = 4  # per rank


def case(function):
    CASES[function.__name__] = function
    return function


def counting_all_reduce():
    """Replaces dist.all_reduce by a wrapper that records each call: (the record, the original,
    to put back in a finally)."""
    calls = []
    original = dist.all_reduce

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    dist.all_reduce = counting
    return calls, original


def shard(array, rank, size):
    return array[rank * BATCH : (rank + 1) * BATCH]


def assert_params_close(ddp_model, reference, rtol=1e-5, atol=1e-6):
    ours = dict(ddp_model.module.named_parameters())
    for name, p in reference.named_parameters():
        numpy.testing.assert_allclose(
            ours[name].detach().numpy(), p.detach().numpy(), rtol=rtol, atol=atol, err_msg=name
        )


def train_both(make_model, inputs, targets, loss_fn, rank, size, steps=3, lr=0.1, **ddp_kwargs):
    """3 SGD steps: DDP on this rank's shard against one model on the whole batch."""
    gf.manual_seed(100 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = make_model()
    ddp = DDP(model, **ddp_kwargs)
    reference = copy.deepcopy(model)  # rank 0's weights, after the broadcast
    if isinstance(reference, nn.Module):
        reference.load_state_dict(model.state_dict())
    opt = gf.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)
    ref_opt = gf.optim.SGD(reference.parameters(), lr=lr, momentum=0.9)
    for step in range(steps):
        x, y = inputs[step], targets[step]
        opt.zero_grad()
        loss_fn(ddp(gf.tensor(shard(x, rank, size))), gf.tensor(shard(y, rank, size))).backward()
        opt.step()
        ref_opt.zero_grad()
        loss_fn(reference(gf.tensor(x)), gf.tensor(y)).backward()
        ref_opt.step()
    return ddp, reference


def data(shape, size, steps=3, seed=0, classes=None):
    rng = numpy.random.default_rng(seed)
    inputs = [
        rng.standard_normal((BATCH * size, *shape)).astype(numpy.float32) for _ in range(steps)
    ]
    if classes is None:
        targets = [
            rng.standard_normal((BATCH * size, 1)).astype(numpy.float32) for _ in range(steps)
        ]
    else:
        targets = [rng.integers(0, classes, BATCH * size) for _ in range(steps)]
    return inputs, targets


@case
def mlp(rank, size):
    inputs, targets = data((6,), size)

    def make():
        return nn.Sequential(
            nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)
        )

    # bucket_cap_mb small enough for several buckets
    ddp, ref = train_both(make, inputs, targets, nn.functional.mse_loss, rank, size,
                          bucket_cap_mb=0.0005)  # fmt: skip
    assert len(ddp._buckets) > 1
    assert_params_close(ddp, ref)
    assert next(iter(ddp.state_dict())) == "module.0.weight"
    assert ddp.module is ddp._modules["module"]


@case
def cnn_sync_batchnorm(rank, size):
    inputs, targets = data((2, 6, 6), size, classes=3)

    def make():
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 3 * 3, 3),
        )

    gf.manual_seed(100 + rank)
    model = make()
    reference = copy.deepcopy(model)
    ddp = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(model))
    reference.load_state_dict(model.state_dict())  # rank 0's weights and buffers
    assert type(ddp.module[1]) is nn.SyncBatchNorm
    opt = gf.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref_opt = gf.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        x, y = inputs[step], targets[step]
        opt.zero_grad()
        out = ddp(gf.tensor(shard(x, rank, size)))
        nn.functional.cross_entropy(out, gf.tensor(shard(y, rank, size))).backward()
        opt.step()
        ref_opt.zero_grad()
        nn.functional.cross_entropy(reference(gf.tensor(x)), gf.tensor(y)).backward()
        ref_opt.step()
    assert_params_close(ddp, reference, rtol=1e-4, atol=1e-5)
    ours = ddp.module[1]
    for name in ("running_mean", "running_var"):
        theirs = getattr(reference[1], name).numpy()
        numpy.testing.assert_allclose(getattr(ours, name).numpy(), theirs, rtol=1e-4, atol=1e-6)
    assert int(ours.num_batches_tracked.item()) == 3
    # eval mode: the running statistics, no communication
    ddp.eval(), reference.eval()
    x = gf.tensor(inputs[0][:BATCH])
    with gf.no_grad():
        numpy.testing.assert_allclose(ddp(x).numpy(), reference(x).numpy(), rtol=1e-4, atol=1e-5)


@case
def sync_batchnorm_uneven_batches(rank, size):
    """Ranks with different batch sizes (rank r has r + 2 samples): outputs, input gradients
    and running statistics equal BatchNorm's on the concatenated batch; the weight gradients
    summed over the ranks equal BatchNorm's."""
    rng = numpy.random.default_rng(11)
    counts = [r + 2 for r in range(size)]
    whole = rng.standard_normal((sum(counts), 3, 4)).astype(numpy.float64)
    up = rng.standard_normal(whole.shape)
    start = sum(counts[:rank])
    mine = slice(start, start + counts[rank])
    bn = nn.BatchNorm1d(3, dtype=gf.float64)
    sbn = nn.SyncBatchNorm(3, dtype=gf.float64)
    x_all = gf.tensor(whole, requires_grad=True)
    out_all = bn(x_all)
    (out_all * gf.tensor(up)).sum().backward()
    x = gf.tensor(whole[mine], requires_grad=True)
    out = sbn(x)
    (out * gf.tensor(up[mine])).sum().backward()
    numpy.testing.assert_allclose(out.detach().numpy(), out_all.detach().numpy()[mine], rtol=1e-10)
    numpy.testing.assert_allclose(x.grad.numpy(), x_all.grad.numpy()[mine], rtol=1e-8, atol=1e-12)
    for name in ("running_mean", "running_var"):
        numpy.testing.assert_allclose(getattr(sbn, name).numpy(), getattr(bn, name).numpy())
    for p, q in ((sbn.weight, bn.weight), (sbn.bias, bn.bias)):
        total = gf.tensor(p.grad.numpy())
        dist.all_reduce(total)
        numpy.testing.assert_allclose(total.numpy(), q.grad.numpy(), rtol=1e-10)
    # eval without running statistics: the local batch's, as PyTorch (no communication)
    local = nn.SyncBatchNorm(3, track_running_stats=False, dtype=gf.float64).eval()
    plain = nn.BatchNorm1d(3, track_running_stats=False, dtype=gf.float64).eval()
    with gf.no_grad():
        numpy.testing.assert_allclose(local(x).numpy(), plain(x).numpy(), rtol=1e-12)


@case
def cuda_staged(rank, size):
    """A cuda model (run with the CuPy stand-in; backend "mpi" stages through host memory):
    buckets live on the device, SyncBatchNorm's sums too; equal to one model on batch 2B."""
    inputs, targets = data((5,), size)

    def make():
        layers = [nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 1)]
        return nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(*layers)).to("cuda")

    gf.manual_seed(100 + rank)
    model = make()
    reference = copy.deepcopy(model)
    ddp = DDP(model, bucket_cap_mb=100 / 2**20)
    reference.load_state_dict(model.state_dict())
    assert all(b.buffer is not None and type(b.buffer).__module__ != "numpy" for b in ddp._buckets)
    opt = gf.optim.SGD(ddp.parameters(), lr=0.1)
    ref_opt = gf.optim.SGD(reference.parameters(), lr=0.1)
    for step in range(3):
        x = gf.tensor(inputs[step], device="cuda")
        y = gf.tensor(targets[step], device="cuda")
        opt.zero_grad()
        mine = slice(rank * BATCH, (rank + 1) * BATCH)
        nn.functional.mse_loss(ddp(x[mine]), y[mine]).backward()
        opt.step()
        ref_opt.zero_grad()
        nn.functional.mse_loss(reference(x), y).backward()
        ref_opt.step()
    ours = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        assert ours[name].device.type == "cuda"
        numpy.testing.assert_allclose(ours[name].detach().cpu().numpy(),
                                      p.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)  # fmt: skip


class LSTMModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@case
def lstm(rank, size):
    inputs, targets = data((5, 3), size)
    ddp, ref = train_both(LSTMModel, inputs, targets, nn.functional.mse_loss, rank, size)
    assert_params_close(ddp, ref)


@case
def no_sync_accumulation(rank, size):
    """Two micro-batches, the first under no_sync: equals plain accumulation of both."""
    inputs, targets = data((6,), size, steps=2, seed=3)
    gf.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1))
    ddp = DDP(model)
    reference = copy.deepcopy(model)
    calls, original = counting_all_reduce()
    try:
        loss = nn.functional.mse_loss
        with ddp.no_sync():
            loss(ddp(gf.tensor(shard(inputs[0], rank, size))),
                 gf.tensor(shard(targets[0], rank, size))).backward()  # fmt: skip
        assert calls == []  # nothing communicated inside no_sync
        if size > 1:
            local = model[0].weight.grad.numpy().copy()
            others = gf.tensor(local)
            original(others, op=dist.ReduceOp.MAX)
            assert not numpy.allclose(others.numpy(), local)  # still each rank's own gradient
            calls.clear()
        loss(ddp(gf.tensor(shard(inputs[1], rank, size))),
             gf.tensor(shard(targets[1], rank, size))).backward()  # fmt: skip
        assert len(calls) == len(ddp._buckets)
    finally:
        dist.all_reduce = original
    for x, y in zip(inputs, targets):
        nn.functional.mse_loss(reference(gf.tensor(x)), gf.tensor(y)).backward()
    ours = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        numpy.testing.assert_allclose(ours[name].grad.numpy(), p.grad.numpy(), rtol=1e-5,
                                      atol=1e-6, err_msg=name)  # fmt: skip


@case
def overlap(rank, size):
    """A bucket's all_reduce starts while backward is still running: before the first layer's
    gradient is accumulated and before backward() returns."""
    gf.manual_seed(1)
    layers = [nn.Linear(8, 8) for _ in range(4)]
    model = nn.Sequential(*layers)
    ddp = DDP(model, bucket_cap_mb=300 / 2**20)  # ~one Linear (288 bytes) per bucket
    assert len(ddp._buckets) >= 4
    events = []
    original = dist.all_reduce

    def recording(*args, **kwargs):
        events.append("all_reduce started")
        return original(*args, **kwargs)

    layers[0].weight.register_post_accumulate_grad_hook(
        lambda p: events.append("first layer's gradient")
    )
    dist.all_reduce = recording
    try:
        x = gf.randn(BATCH, 8)
        ddp(x).sum().backward()
        events.append("backward returned")
    finally:
        dist.all_reduce = original
    first_layer = events.index("first layer's gradient")
    assert events[0] == "all_reduce started", events
    assert events.count("all_reduce started") == len(ddp._buckets)
    assert events.index("all_reduce started") < first_layer < events.index("backward returned")
    # the gradients came back averaged: equal on every rank
    g = layers[0].weight.grad.numpy().copy()
    top = gf.tensor(g)
    original(top, op=dist.ReduceOp.MAX)
    numpy.testing.assert_array_equal(top.numpy(), g)


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.rank0_only = nn.Linear(4, 4)
        self.never = nn.Linear(4, 4)

    def forward(self, x, use_branch):
        h = self.shared(x)
        if use_branch:
            h = self.rank0_only(h)
        return h


@case
def unused_parameters(rank, size):
    gf.manual_seed(2)
    model = Branches()
    reference = copy.deepcopy(model)
    ddp = DDP(model, find_unused_parameters=True)
    rng = numpy.random.default_rng(5)
    xs = rng.standard_normal((size, BATCH, 4)).astype(numpy.float32)
    ddp(gf.tensor(xs[rank]), rank == 0).sum().backward()
    # reference: the average of every rank's loss
    total = sum(reference(gf.tensor(xs[r]), r == 0).sum() for r in range(size)) / size
    total.backward()
    assert model.never.weight.grad is None  # no rank used it
    for name in ("shared.weight", "shared.bias", "rank0_only.weight", "rank0_only.bias"):
        numpy.testing.assert_allclose(model.get_parameter(name).grad.numpy(),
                                      reference.get_parameter(name).grad.numpy(), rtol=1e-5,
                                      atol=1e-6, err_msg=name)  # fmt: skip
    # the graph traversal after forward marks `never` (the first bucket: reverse order) ready
    # at once, so buckets start while backward runs, before the first layer's gradient is in
    gf.manual_seed(2)
    model = Branches()
    ddp = DDP(model, find_unused_parameters=True, bucket_cap_mb=80 / 2**20)
    assert ddp._buckets[0].params == [model.never.bias, model.never.weight]
    events = []
    original = dist.all_reduce

    def recording(*args, **kwargs):
        events.append("all_reduce")
        return original(*args, **kwargs)

    model.shared.weight.register_post_accumulate_grad_hook(lambda p: events.append("shared"))
    dist.all_reduce = recording
    try:
        ddp(gf.tensor(xs[rank]), True).sum().backward()
    finally:
        dist.all_reduce = original
    assert events.index("all_reduce") < events.index("shared"), events
    assert model.never.weight.grad is None
    # without find_unused_parameters: an error naming the parameters, on every rank
    strict = DDP(Branches())
    try:
        strict(gf.tensor(xs[rank]), True).sum().backward()
    except RuntimeError as error:
        assert "never.weight" in str(error) and "find_unused_parameters=True" in str(error)
    else:
        raise AssertionError("an unused parameter without find_unused_parameters did not raise")


@case
def buffers(rank, size):
    """broadcast_buffers: rank 0's buffers reach every rank before each training forward."""
    gf.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ddp = DDP(model)
    ddp.eval()
    model[1].running_mean.array[...] = float(rank + 1)
    with gf.no_grad():
        ddp(gf.randn(BATCH, 3))  # no graph recorded: no broadcast
    numpy.testing.assert_array_equal(model[1].running_mean.numpy(), [rank + 1.0] * 3)
    ddp(gf.randn(BATCH, 3))  # eval keeps running stats: we see exactly rank 0's
    numpy.testing.assert_array_equal(model[1].running_mean.numpy(), [1.0, 1.0, 1.0])
    keep = DDP(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), broadcast_buffers=False)
    keep.module[1].running_mean.array[...] = float(rank + 1)
    keep.eval()
    keep(gf.randn(BATCH, 3))
    numpy.testing.assert_array_equal(keep.module[1].running_mean.numpy(), [rank + 1.0] * 3)


@case
def bucket_view(rank, size):
    inputs, targets = data((6,), size)

    def make():
        return nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1))

    ddp, ref = train_both(make, inputs, targets, nn.functional.mse_loss, rank, size,
                          gradient_as_bucket_view=True)  # fmt: skip
    assert_params_close(ddp, ref)
    p = ddp.module[0].weight
    assert p.grad.array.base is not None  # a view of its bucket's buffer


@case
def different_models(rank, size):
    """Ranks wrapping different models: an error on every rank, before any gradient moves."""
    for model in (nn.Linear(3, 2 + rank), nn.Linear(3 + rank, 2) if size > 1 else None):
        if model is None:
            continue
        try:
            DDP(model)
        except RuntimeError as error:
            assert "DDP expects same model across all ranks" in str(error), error
        else:
            assert size == 1, "different models across ranks did not raise"
    # same sizes, other shapes: (2, 3) against (3, 2)
    try:
        DDP(nn.Linear(3, 2, bias=False) if rank == 0 else nn.Linear(2, 3, bias=False))
    except RuntimeError as error:
        assert "other shapes" in str(error)
    else:
        assert size == 1


@case
def hooks_only_after_ddp_forward(rank, size):
    """As PyTorch's reducer: a backward through ``.module`` alone, a retained graph's second
    backward and a forward under no_sync stay local; a forward outside no_sync syncs even when
    its backward runs inside it. (Each rank's gradient is 2 (rank + 1); their mean size + 1.)"""
    gf.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    ddp = DDP(model)
    x = gf.full((2, 3), float(rank + 1))
    local, mean = 2.0 * (rank + 1), float(size + 1)

    def grad():
        value = model.weight.grad.numpy()
        model.weight.grad = None
        return value

    if rank == 0:  # on one rank only: a collective here would wait for ever
        model(x).sum().backward()
        assert numpy.allclose(grad(), local)
    y = ddp(x).sum()
    y.backward(retain_graph=True)
    assert numpy.allclose(model.weight.grad.numpy(), mean)
    y.backward()  # the second backward of the graph: local, accumulated
    assert numpy.allclose(grad(), mean + local)
    y = ddp(x).sum()
    with ddp.no_sync():
        y.backward()
    assert numpy.allclose(grad(), mean)
    with ddp.no_sync():
        y = ddp(x).sum()
    y.backward()
    assert numpy.allclose(grad(), local)


@case
def rewrap_drops_the_old_hooks(rank, size):
    """A dropped wrapper's hooks go with it: wrapping the model again (here with its first
    layer frozen) communicates once per bucket of the new wrapper, and raises nothing."""
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    x = gf.full((2, 3), float(rank + 1))
    ddp = DDP(model)
    ddp(x).sum().backward()
    del ddp
    gc.collect()
    for p in model[0].parameters():
        p.requires_grad_(False)
    model.zero_grad(set_to_none=True)
    calls, original = counting_all_reduce()
    try:
        again = DDP(model)
        calls.clear()
        again(x).sum().backward()
        assert len(calls) == len(again._buckets)
        assert model[0].weight.grad is None and model[1].weight.grad is not None
    finally:
        dist.all_reduce = original


@case
def raises_on_rank_1(rank, size):
    gf.manual_seed(0)
    ddp = DDP(nn.Linear(3, 1))
    if rank == size - 1:
        raise ValueError(f"rank {rank} failed on purpose")
    ddp(gf.randn(2, 3)).sum().backward()  # the other rank would wait here for ever


def main(names):
    dist.init_process_group(backend="mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    for name in names:
        CASES[name](rank, size)
    sys.stdout.write(f"\nok {rank}\n")  # one write: the ranks' lines may interleave
    sys.stdout.flush()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
