"""Tests for gradflow/backend/heap.py: glibc's top pad set from the environment, or left."""

import ctypes.util
import sys

import pytest

from gradflow.backend.heap import pad_heap

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc's mallopt is Linux's",
)


@glibc
def test_default_and_chosen_sizes():
    assert pad_heap({}) == 64 << 20
    assert pad_heap({"GRADFLOW_HEAP_PAD_MIB": "8"}) == 8 << 20
    assert pad_heap({"GRADFLOW_HEAP_PAD_MIB": "4096"}) == 1 << 30  # capped at 1 GiB
    pad_heap({})  # back to what gradflow's import set


def test_turned_off_or_left_to_glibc_changes_nothing():
    assert pad_heap({"GRADFLOW_HEAP_PAD_MIB": "0"}) == 0
    assert pad_heap({"MALLOC_TOP_PAD_": "1048576", "GRADFLOW_HEAP_PAD_MIB": "8"}) == 0


def test_a_bad_size_says_what_it_expects():
    if not sys.platform.startswith("linux"):
        pytest.skip("read on Linux only")
    with pytest.raises(ValueError, match="whole number of MiB"):
        pad_heap({"GRADFLOW_HEAP_PAD_MIB": "lots"})


def test_the_pad_sets_the_thresholds_glibc_s_dynamic_rule_would_reach(monkeypatch):
    """Setting the top pad turns off glibc's dynamic mmap threshold; pad_heap sets the mmap
    and trim thresholds where that rule takes them (otherwise torch's tensors in the same
    process were mapped and faulted in afresh: its layer_norm step 1.5 -> 3.5 ms)."""
    from gradflow.backend import heap

    calls = []
    monkeypatch.setattr(heap, "_mallopt", lambda: lambda p, v: calls.append((p, v)) or 1)
    monkeypatch.setattr(heap.sys, "platform", "linux")
    assert heap.pad_heap({"GRADFLOW_HEAP_PAD_MIB": "8"}) == 8 << 20
    assert calls == [(heap.M_TOP_PAD, 8 << 20), (heap.M_MMAP_THRESHOLD, 32 << 20),
                     (heap.M_TRIM_THRESHOLD, 64 << 20)]  # fmt: skip
    calls.clear()
    assert heap.pad_heap({"GRADFLOW_HEAP_PAD_MIB": "0"}) == 0 and calls == []
