"""Shared fixtures: `device` runs a test body on cpu always and on cuda when a GPU is present."""

import numpy
import pytest

import gradflow
from gradflow.testing import device_params


@pytest.fixture(params=device_params())
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gradflow.manual_seed(0)
    yield


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)
