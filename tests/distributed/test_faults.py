"""Faults across ranks: mismatched calls raise naming the op and both shapes; a rank that
raises, or one that never comes, ends the job with a non-zero exit instead of a hang."""

import pytest
from distributed_launch import passed, run_ranks

pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")


def test_mismatched_calls_raise_on_every_rank():
    result = run_ranks("rank_cases.py", "mismatched_calls")
    assert passed(result), result.stdout


def test_a_raising_rank_ends_the_job():
    result = run_ranks("rank_cases.py", "one_rank_fails")
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stdout
    assert "ok 0" not in result.stdout


def test_a_wait_past_the_timeout_raises_naming_the_op():
    result = run_ranks("rank_cases.py", "one_rank_is_late")
    assert result.returncode != 0
    assert "all_reduce timed out after 1 s" in result.stdout
