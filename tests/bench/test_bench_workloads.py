"""gradflow.bench's shared workloads, comparison figures and alternating timer on the CPU: the
torch twin of each workload computes what gradflow's side does on the same data, compare()
records the figures benchmarks/ relies on, and the CUDA-event clock brackets each call. No
timing is asserted."""

import contextlib
import types

import numpy
import pytest

from gradflow.bench import array_workloads, timing, workloads
from gradflow.bench.figures import compare
from gradflow.bench.timing import Side


def _values(out):
    """A step's result (a tensor of either library, an array, or a tuple of them) as a list
    of NumPy arrays."""
    if isinstance(out, tuple):
        return [v for o in out for v in _values(o)]
    if hasattr(out, "detach"):
        out = out.detach()
    return [numpy.asarray(out.cpu().numpy() if hasattr(out, "cpu") else out)]


def _assert_same(ours, theirs, **tolerance):
    ours, theirs = _values(ours), _values(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a, b, **tolerance)


@pytest.mark.parametrize(
    "work",
    [workloads.chain(3), workloads.mlp(4), workloads.conv((2, 3, 6, 4, 3, 2, 1)),
     workloads.rnn("lstm", 3, 2, 8, 4), workloads.rnn("gru", 3, 2, 8, 4),
     workloads.train("mlp", 4), workloads.train("lstm", 4)],  # (cnn's dropout draws differ)
    ids=lambda w: w.shape,
)  # fmt: skip
def test_torch_twin_computes_what_gradflow_does(work):
    pytest.importorskip("torch")
    sides = work.sides("cpu")
    _assert_same(sides["gradflow"].fn(), sides["torch"].fn(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "work",
    [*(array_workloads.activation_backward(name, 64) for name in array_workloads.ACTIVATIONS),
     array_workloads.mul_backward(64), array_workloads.bias_relu_backward(8, 5),
     array_workloads.softmax_xent(8, 5), array_workloads.relu_matmul_backward(4, 6, 5)],
)  # fmt: skip
def test_array_workload_unfused_matches_torch(work):
    pytest.importorskip("torch")
    sides = work.sides()
    assert list(sides) == ["numpy", "torch"] and work.bytes_moved > 0
    _assert_same(sides["numpy"].fn(), sides["torch"].fn(), rtol=1e-4, atol=1e-6)


def test_compare_records_times_rates_ratios_and_ceilings():
    x = numpy.ones(1000, numpy.float32)
    sides = {"ours": Side(lambda: x * 2), "other": Side(lambda: x + 1), "torch": None}
    info = compare(sides, repeat=2, unit="ms", bytes_moved=8000, flops=1000, gemm=(4, 4, 4),
                   copy_bytes=4000)  # fmt: skip
    assert info["device"] == "cpu" and info["torch"] == "not installed"
    assert info["bytes_moved"] == 8000 and info["flops"] == 1000
    for key in ("ours_ms", "ours_GBps", "ours_GFLOPs", "other_ms", "ratio_to_other",
                "ceiling_copy_GBps", "ceiling_gemm_GFLOPs", "fraction_of_ceiling",
                "gemm_GFLOPs", "fraction_of_gemm", "copy_GBps", "fraction_of_copy_bw"):  # fmt: skip
        assert info[key] > 0, key
    assert info["peak_memory_bytes"] >= 4000  # one x * 2
    assert "ratio_to_ours" not in info
    assert info["ours_cpu_ms"] >= 0 and info["other_cpu_ms"] >= 0 and "ratio_to_other_cpu" in info
    lean = compare({"ours": Side(lambda: x * 2)}, repeat=1, per=10, ceiling=False)
    assert set(lean) == {"device", "ours_us", "ours_cpu_us"}


def test_time_interleaved_alternates_call_by_call_after_one_warm_up():
    calls = []
    sides = [
        Side(lambda: calls.append("a")),
        Side(lambda: calls.append("b"), before=lambda: calls.append("-")),
    ]
    records = timing.time_interleaved(sides, repeat=3)
    assert "".join(calls) == "a-b" * 4  # one warm-up call each, then a, b, a, b, ...
    for walls, cpus, faults in records:
        assert len(walls) == len(cpus) == len(faults) == 3 and min(faults) >= 0


def test_event_clock_brackets_each_call_on_a_gpu(monkeypatch):
    """The cuda branch of time_calls, with a stand-in for CuPy: synchronize, then two events
    recorded around each call and their elapsed time, inside the device's context."""
    log = []

    class Event:
        def record(self):
            log.append("record")

        def synchronize(self):
            log.append("sync-event")

    @contextlib.contextmanager
    def device(index):
        log.append(f"device {index}")
        yield

    stream = types.SimpleNamespace(synchronize=lambda: log.append("sync-stream"))
    cuda = types.SimpleNamespace(
        Device=device,
        Event=Event,
        get_current_stream=lambda: stream,
        get_elapsed_time=lambda start, stop: 2.0,  # milliseconds
    )
    monkeypatch.setattr(timing, "_cupy_for", lambda dev: types.SimpleNamespace(cuda=cuda))
    times = timing.time_calls(lambda: log.append("call"), "cuda:1", warmup=1, repeat=2)
    assert times == [0.002, 0.002]
    assert log == ["call", "device 1", "sync-stream"] + ["record", "call", "record",
                                                         "sync-event"] * 2  # fmt: skip
