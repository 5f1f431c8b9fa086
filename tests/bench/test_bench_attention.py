"""The attention suite of `gradflow bench` (issue 16) in smoke mode: its cases and FLOP counts,
the torch twin computing what gradflow does (output and dQ, dK, dV), the CLI's row with FLOP/s,
peak memory and the torch ratio, and torch's peak memory. No timing is asserted."""

import numpy
import pytest

from gradflow import cli
from gradflow.bench import report, suites, workloads
from gradflow.bench.frameworks import torch_peak_memory
from gradflow.bench.timing import peak_memory

ATTENTION = ["bench", "--suite", "attention", "--sizes", "small", "--device", "cpu", "--repeat",
             "1", "--no-progress"]  # fmt: skip


def _arrays(values):
    return [numpy.asarray(v.detach().cpu().numpy() if hasattr(v, "cpu") else v.detach().numpy())
            for v in values]  # fmt: skip


def test_suite_covers_the_issue_shapes_with_and_without_causal():
    assert suites.SUITES["attention"] is suites.attention
    medium = suites.attention("medium")
    assert [c.shape for c in medium] == [f"B=8 H=8 T={t} D=64" for t in (128, 128, 512, 512)]
    assert [c.name for c in medium[:2]] == ["sdpa fwd+bwd", "sdpa causal fwd+bwd"]
    large = suites.attention("large")
    assert [c.shape for c in large[:4]] == [c.shape for c in medium]
    assert {c.shape for c in large[4:]} == {"B=8 H=8 T=1024 D=64"}
    for case in [*suites.attention("small"), *medium, *large]:
        assert case.suite == "attention" and case.torch and case.flops == case.size > 0


def test_flops_count_the_six_gemms_and_the_whole_causal_matrix():
    b, h, t, d = 8, 8, 128, 64
    forward = 2 * (2 * b * h * t * t * d)  # Q K^T and P V
    backward = 4 * (2 * b * h * t * t * d)  # dV, dP, dQ, dK
    assert workloads.attention_flops(b, h, t, d) == forward + backward
    assert workloads.attention(b, h, t, d, causal=True).flops == forward + backward
    assert workloads.attention_flops(1, 1, 4, 2, keys=6) == 12 * 4 * 6 * 2
    assert workloads.attention(b, h, t, d).gemm == (t, d, t)


@pytest.mark.parametrize("causal", [False, True])
def test_step_returns_output_and_grads_without_accumulating(causal):
    work = workloads.attention(2, 3, 5, 4, causal)
    step = work.setup("gradflow", "cpu")
    out, dq, dk, dv = step()
    assert tuple(out.shape) == tuple(dq.shape) == tuple(dk.shape) == tuple(dv.shape)
    assert tuple(out.shape) == (2, 3, 5, 4)
    again = step()  # the grads were cleared after the first call: nothing accumulates
    for first, second in zip(_arrays([dq, dk, dv]), _arrays(again[1:])):
        numpy.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("causal", [False, True])
def test_torch_twin_computes_what_gradflow_does(causal):
    pytest.importorskip("torch")
    sides = workloads.attention(2, 3, 7, 4, causal).sides("cpu")
    ours, theirs = _arrays(sides["gradflow"].fn()), _arrays(sides["torch"].fn())
    assert len(ours) == len(theirs) == 4  # out, dQ, dK, dV
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cli_prints_flops_peak_memory_and_no_ratio_without_compare(capsys):
    assert cli.main(ATTENTION) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("attention")]
    assert len(rows) == len(suites.attention("small")) == 2
    for line in rows:
        assert "TFLOP/s" in line and "KiB" in line and line.rstrip().endswith("-")


def test_cli_fills_the_torch_ratio_when_compared(capsys):
    pytest.importorskip("torch")
    assert cli.main([*ATTENTION, "--compare", "torch"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("attention")]
    assert len(rows) == 2 and all(line.rstrip().endswith("x") for line in rows)


def test_peak_memory_of_either_side_covers_output_and_grads():
    pytest.importorskip("torch")
    b, h, t, d = 2, 2, 32, 8
    sides = workloads.attention(b, h, t, d).sides("cpu")
    for side in sides.values():
        side.fn()  # warm
    results = 4 * b * h * t * d * 4  # out, dQ, dK, dV in float32
    ours = peak_memory(sides["gradflow"].fn)
    theirs = torch_peak_memory(sides["torch"].fn)
    assert ours >= results + b * h * t * t * 4  # gradflow keeps P (B, H, T, T)
    assert results <= theirs < 100 * results


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (2048, "2.00 KiB"), (3 * 2**20, "3.00 MiB"),
                    (2**31, "2.00 GiB")],
)  # fmt: skip
def test_format_bytes(n, text):
    assert report.format_bytes(n) == text
