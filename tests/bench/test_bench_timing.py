"""gradflow.bench.backward / backward_module on the CPU: sane statistics, grads computed,
peak memory seen, clear errors. No timing assertions (timings are never tested)."""

import numpy
import pytest

import gradflow
from gradflow import bench, nn


def _leaves():
    x = gradflow.tensor(numpy.ones((64, 32), numpy.float32), requires_grad=True)
    w = gradflow.tensor(numpy.ones((32, 16), numpy.float32), requires_grad=True)
    return x, w


def test_backward_of_a_function_returns_stats_and_computes_grads():
    x, w = _leaves()
    result = bench.backward(lambda a, b: (a @ b).relu().sum(), x, w, warmup=1, repeat=4,
                            flops=4 * 64 * 32 * 16, bytes_moved=1000)  # fmt: skip
    assert result.repeat == 4 and len(result.times) == 4
    assert result.median > 0 and result.min <= result.median <= result.max
    assert result.iqr >= 0
    assert result.tflops > 0 and result.gbps > 0
    assert result.peak_memory_bytes > 0  # backward allocates dX and dW
    assert x.grad is not None and w.grad is not None
    numpy.testing.assert_allclose(x.grad.numpy(), numpy.full((64, 32), 16.0))  # not accumulated
    assert "median" in str(result)
    assert result.to_dict()["repeat"] == 4


def test_backward_module_clears_and_sets_parameter_grads():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x = gradflow.tensor(numpy.ones((4, 8), numpy.float32))
    result = bench.backward_module(model, x, warmup=0, repeat=3)
    assert result.repeat == 3 and result.median > 0
    assert result.name == "Sequential"
    assert all(p.grad is not None for p in model.parameters())


def test_non_scalar_output_needs_grad_output():
    x, w = _leaves()
    with pytest.raises(ValueError, match=r"shape \(64, 16\).*grad_output"):
        bench.backward(lambda a, b: a @ b, x, w)
    g = gradflow.tensor(numpy.ones((64, 16), numpy.float32))
    assert bench.backward(lambda a, b: a @ b, x, w, grad_output=g, repeat=2).repeat == 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: bench.backward(42, x), TypeError, "callable"),
        (lambda x: bench.backward(lambda a: a.sum(), x, repeat=0), ValueError, "repeat"),
        (lambda x: bench.backward(lambda a: a.sum(), x, warmup=-1), ValueError, "warmup"),
        (lambda x: bench.backward(lambda a: 3.0, x), TypeError, "Tensor"),
        (lambda x: bench.backward(lambda a: a.detach().sum(), x), ValueError, "requires_grad"),
        (lambda x: bench.backward_module(lambda a: a, x), TypeError, "Module"),
    ],
)
def test_bad_input_is_refused_clearly(call, error, message):
    x, _ = _leaves()
    with pytest.raises(error, match=message):
        call(x)


def _recording_sides(calls):
    from gradflow.bench.timing import Side

    return [Side(lambda: calls.append("gradflow")), Side(lambda: calls.append("torch"))]


@pytest.mark.parametrize(("repeat", "block"), [(6, None), (7, 2), (25, None)])
def test_sides_are_timed_in_alternating_rounds(repeat, block):
    from gradflow.bench.timing import round_size, time_rounds

    calls = []
    records = time_rounds(_recording_sides(calls), repeat, warmup=1, block=block)
    assert calls[:2] == ["gradflow", "torch"]  # the warm-up round
    timed = calls[2:]
    assert timed.count("gradflow") == timed.count("torch") == repeat
    size = block or round_size(repeat)
    runs = [timed[0]]  # the lengths of the runs of one side: a block each, the last shorter
    lengths = [1]
    for name in timed[1:]:
        if name == runs[-1]:
            lengths[-1] += 1
        else:
            runs.append(name)
            lengths.append(1)
    assert runs == ["gradflow", "torch"] * (len(runs) // 2)
    if block is None:
        assert len(runs) >= 2 * min(5, repeat)  # never one block per side
    assert all(n == size for n in lengths[:-2]) and all(n <= size for n in lengths[-2:])
    for walls, cpus in records:  # wall and CPU seconds of every call on the CPU
        assert len(walls) == len(cpus) == repeat and min(walls) >= 0 and min(cpus) >= 0


def test_round_size_makes_at_least_five_rounds():
    from gradflow.bench.timing import round_size

    assert [round_size(n) for n in (1, 2, 9, 10, 24, 25, 50)] == [1, 1, 1, 2, 4, 5, 5]


def test_measure_records_cpu_time_beside_wall_time():
    x, w = _leaves()
    result = bench.measure("matmul", lambda: x @ w, repeat=3, warmup=0)
    assert len(result.cpu_times) == 3 and result.cpu_median >= 0
    d = result.to_dict()
    assert d["cpu_median_s"] == result.cpu_median and d["cpu_times"] == result.cpu_times
    assert "CPU" in str(result)
    gpu_like = bench.BenchResult("x", "cuda:0", [1.0, 2.0])  # no CPU time on a GPU
    assert gpu_like.cpu_median is None and "CPU" not in str(gpu_like)


def test_copy_ceiling_is_measured_at_the_working_set(monkeypatch):
    from gradflow.bench import ceilings

    sizes = []

    def fake_copy_rate(nbytes, device="cpu", repeat=7):
        sizes.append(nbytes)
        return 1e9 * (100 if nbytes < 2**20 else 10)  # a cache is faster than DRAM

    monkeypatch.setattr(ceilings, "copy_rate", fake_copy_rate)
    monkeypatch.setattr(ceilings, "ceilings", lambda device: {"copy_GBps": 5, "gemm_TFLOPs": 1})
    monkeypatch.setattr(ceilings, "copy_bandwidth", lambda device: 5e9)
    monkeypatch.setattr(ceilings, "last_level_cache_bytes", lambda: 2**20)
    ceilings._copy_rate_cached.cache_clear()
    try:
        small = ceilings.case_ceilings("cpu", 3 * 16384 * 4)  # relu backward, n=16K
        big = ceilings.case_ceilings("cpu", 3 * 2**24 * 4)
    finally:
        ceilings._copy_rate_cached.cache_clear()
    assert small["copy_bytes"] == 65536 and sizes == [65536]  # half the working set, 2^k
    assert small["copy_GBps"] == 100 and small["cache_resident"]
    assert big["copy_bytes"] == ceilings.COPY_BYTES["cpu"] and not big["cache_resident"]
    assert big["copy_GBps"] == 5  # the run's large copy
    # a case moving its bytes at 80 GB/s from cache: 80% of its own ceiling, not 8x a DRAM copy
    assert ceilings.fraction_of_ceiling(3 * 16384 * 4 / 80e9, small, 3 * 16384 * 4) == (
        pytest.approx(0.8)
    )
    assert ceilings.case_ceilings("cpu", 0)["copy_bytes"] == 0  # no bytes counted: run's


def test_working_set_copy_size_is_a_power_of_two_no_larger_than_half():
    from gradflow.bench.ceilings import COPY_BYTES, SMALLEST_COPY, working_set_copy_bytes

    assert working_set_copy_bytes(100) == SMALLEST_COPY
    assert working_set_copy_bytes(3 * 2**20) == 2**20
    assert working_set_copy_bytes(2**40) == COPY_BYTES["cpu"]
    assert working_set_copy_bytes(2**40, "cuda") == COPY_BYTES["cuda"]
