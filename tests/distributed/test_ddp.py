"""DistributedDataParallel: under ``mpiexec -n 2`` (2 ranks with batch B each against one model
with batch 2B, no_sync, overlap of buckets with backward, unused parameters, buffers, a failing
rank) and in one process (world size 1, argument errors). Needs mpi4py for all but the errors
raised before any communication: ``pip install -e '.[mpi]'``."""

import pytest
from distributed_launch import passed, run_ranks

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.nn.parallel import DistributedDataParallel

CASES = [
    "mlp",
    "cnn_sync_batchnorm",
    "sync_batchnorm_uneven_batches",
    "lstm",
    "no_sync_accumulation",
    "overlap",
    "unused_parameters",
    "buffers",
    "bucket_view",
    "different_models",
    "hooks_only_after_ddp_forward",
    "rewrap_drops_the_old_hooks",
]


def test_nn_exposes_parallel_and_sync_batchnorm():
    assert nn.parallel.DistributedDataParallel is DistributedDataParallel
    assert nn.SyncBatchNorm.__name__ == "SyncBatchNorm"
    # PyTorch's module paths
    assert nn.modules.batchnorm.SyncBatchNorm is nn.SyncBatchNorm
    assert nn.parallel.distributed.DistributedDataParallel is DistributedDataParallel


def test_wrapping_before_init_process_group_is_an_error():
    if dist.is_initialized():
        pytest.skip("a process group is already initialized")
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))


@pytest.fixture
def world():
    pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")
    dist.init_process_group(backend="mpi")
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("case", CASES)
def test_cases_on_one_rank(world, case):
    import ddp_cases

    ddp_cases.CASES[case](dist.get_rank(), dist.get_world_size())


@pytest.mark.parametrize("case", CASES)
def test_cases_on_two_ranks(case):
    result = run_ranks("ddp_cases.py", case)
    assert passed(result), result.stdout


def test_a_raising_rank_fails_the_job():
    result = run_ranks("ddp_cases.py", "raises_on_rank_1")
    assert result.returncode != 0
    assert "rank 1 failed on purpose" in result.stdout
    assert "Traceback" in result.stdout


def test_argument_errors(world):
    with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
        DistributedDataParallel(nn.ReLU())
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="doesn't have any parameter"):
        DistributedDataParallel(frozen)
    with pytest.raises(ValueError, match="device_ids and output_device"):
        DistributedDataParallel(nn.Linear(2, 2), device_ids=[0])
    with pytest.raises(TypeError, match="Module"):
        DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


def test_buckets_follow_reverse_parameter_order_and_cap(world):
    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 10), nn.Linear(10, 1))
    ddp = DistributedDataParallel(model, bucket_cap_mb=40_000 / 2**20)
    params = list(model.parameters())
    order = [p for b in ddp._buckets for p in b.params]
    assert [id(p) for p in order] == [id(p) for p in reversed(params)]
    # 40 kB cap: the 100x100 weight (40 kB) does not share a bucket with the 10x100 one
    assert len(ddp._buckets) >= 2
    assert all(b.buffer.nbytes <= 40_000 or len(b.params) == 1 for b in ddp._buckets)
    one = DistributedDataParallel(model)  # 25 MB default: one bucket
    assert len(one._buckets) == 1


def test_first_bucket_is_capped_at_one_mebibyte_and_dtypes_split(world):
    # 4 layers of 512x512 float32 (1 MiB each): the first bucket (the last layer) holds one
    # weight, the next ones up to 25 MB
    model = nn.Sequential(*[nn.Linear(512, 512, bias=False) for _ in range(4)])
    ddp = DistributedDataParallel(model)
    assert [len(b.params) for b in ddp._buckets] == [1, 3]
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double(), nn.Linear(2, 2))
    ddp = DistributedDataParallel(mixed)
    assert [str(b.buffer.dtype) for b in ddp._buckets] == ["float32", "float64", "float32"]


def test_state_dict_and_module(world):
    inner = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ddp = DistributedDataParallel(inner)
    assert ddp.module is inner
    keys = list(ddp.state_dict())
    assert keys == ["module." + k for k in inner.state_dict()]
    fresh = DistributedDataParallel(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    fresh.load_state_dict(ddp.state_dict())
    assert gf.equal(fresh.module[0].weight, inner[0].weight)


def test_forward_passes_arguments_through(world):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x, scale=1.0, *, extra=None):
            return self.lin(x) * scale, extra

    ddp = DistributedDataParallel(Two())
    x = gf.ones(1, 2)
    out, extra = ddp(x, 2.0, extra="e")
    assert extra == "e"
    assert gf.allclose(out, ddp.module.lin(x) * 2.0)


def test_second_backward_accumulates_like_plain_training(world):
    """At world size 1 DDP changes nothing: .grad accumulates over backwards as without it."""
    gf.manual_seed(0)
    model = nn.Linear(3, 2)
    plain = nn.Linear(3, 2)
    plain.load_state_dict(model.state_dict())
    ddp = DistributedDataParallel(model)
    x = gf.randn(4, 3)
    for _ in range(2):
        ddp(x).pow(2).sum().backward()
        plain(x).pow(2).sum().backward()
    assert gf.allclose(model.weight.grad, plain.weight.grad)
    assert gf.allclose(model.bias.grad, plain.bias.grad)


def test_a_backward_that_raised_leaves_no_state_behind(world):
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    plain = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    plain.load_state_dict(model.state_dict())
    ddp = DistributedDataParallel(model)
    failing = [True]

    def fail_once(p):
        if failing[0]:
            failing[0] = False
            raise ValueError("hook failed")

    model[1].weight.register_post_accumulate_grad_hook(fail_once)
    x = gf.randn(2, 3)
    with pytest.raises(ValueError, match="hook failed"):
        ddp(x).sum().backward()
    ddp.zero_grad()
    ddp(x).sum().backward()
    plain(x).sum().backward()
    for p, q in zip(model.parameters(), plain.parameters()):
        assert gf.allclose(p.grad, q.grad)


def test_cuda_model_staged_through_host_on_two_ranks():
    """A cuda model on the CuPy stand-in, backend "mpi": buckets and SyncBatchNorm's sums on
    the device, staged through host memory by the collectives."""
    result = run_ranks("ddp_cases.py", "cuda_staged", env={"GRADFLOW_CUDA_STANDIN": "1"})
    assert passed(result), result.stdout
