"""Kernel routing (gradflow.backend.routing): one context-local owner of the kernel route."""

import threading

import numpy
import pytest

from gradflow.backend import routing
from gradflow.kernels._common import resolve_backend
from gradflow.kernels.loader import default_backend


class _Backend:
    name = "test"


def test_numpy_arrays_take_the_numpy_path_by_default():
    assert routing.kernel_backend() is None
    assert not routing.uses_kernels(numpy.ones(3))


def test_kernels_through_routes_numpy_arrays_and_restores_on_exit():
    backend = _Backend()
    with routing.kernels_through(backend) as routed:
        assert routed is backend
        assert routing.kernel_backend() is backend
        assert routing.uses_kernels(numpy.ones(3))
        assert resolve_backend(None) is backend  # launchers given no backend use the route
    assert routing.kernel_backend() is None
    assert not routing.uses_kernels(numpy.ones(3))


def test_routes_nest_and_an_error_inside_restores_the_outer_route():
    outer, inner = _Backend(), _Backend()
    with routing.kernels_through(outer):
        with pytest.raises(ZeroDivisionError), routing.kernels_through(inner):
            assert routing.kernel_backend() is inner
            1 / 0  # noqa: B018
        assert routing.kernel_backend() is outer


def test_route_is_local_to_its_thread():
    seen = []
    entered, release = threading.Event(), threading.Event()

    def other_thread():
        entered.wait()
        seen.append(routing.kernel_backend())
        release.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with routing.kernels_through(_Backend()):
        entered.set()
        release.wait(10)
    worker.join(10)
    assert seen == [None]


def test_an_explicit_backend_wins_over_the_route_and_none_is_refused():
    explicit = _Backend()
    with routing.kernels_through(_Backend()):
        assert resolve_backend(explicit) is explicit
    with (
        pytest.raises(TypeError, match="expected a launcher backend"),
        routing.kernels_through(None),
    ):
        pass


def test_without_a_route_launchers_default_to_cupy():
    assert resolve_backend(None) is default_backend()
