"""The devices a test body runs on: cpu always, cuda when CuPy sees a GPU (marked `gpu`)."""

from __future__ import annotations

from typing import Any

from gradflow import cuda


def available_devices() -> list[str]:
    """["cpu"] plus "cuda" when a GPU is usable."""
    return ["cpu", "cuda"] if cuda.is_available() else ["cpu"]


def device_params() -> list[Any]:
    """pytest params for a `device` fixture: cuda is always listed, marked gpu and skipped
    without a GPU, so a run on a GPU machine and one without show the same test ids."""
    import pytest

    gpu = pytest.mark.gpu
    skip = pytest.mark.skipif(not cuda.is_available(), reason="no CUDA GPU visible to CuPy")
    return ["cpu", pytest.param("cuda", marks=[gpu, skip])]
