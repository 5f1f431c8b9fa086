"""Fixtures for the kernel tests: the CPU emulation backend, skipped where g++ is missing."""

import numpy as np
import pytest

from gradflow.testing.emulation import EmulationBackend, unavailable_reason

# A grid cap of 4 blocks: 4 * 256 threads cover 1,024 elements per round, so the larger test
# sizes go round the grid-stride loops several times.
GRID_CAP = 4


@pytest.fixture
def emu() -> EmulationBackend:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    return EmulationBackend(max_grid_blocks=GRID_CAP)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)
