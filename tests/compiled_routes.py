"""Shared by the tests of the float32 routes that have a compiled loop and a NumPy fallback
(tests/ops/test_erf_fast.py, test_speed_round5.py): the routes to compare, as pytest parameters
(each a context manager: compiled.disabled() for NumPy's, a no-op for the compiled loops where
numba is there), and float32's smallest subnormal."""

import contextlib

import numpy

from gradflow.backend import compiled

F32 = numpy.float32
TINY = numpy.finfo(F32).smallest_subnormal


def _routes():
    """The routes to compare: the compiled loops (where numba is there) and NumPy's."""
    routes = [("numpy", compiled.disabled)]
    if compiled.loops(numpy.zeros(1, F32), float32_only=True) is not None:
        routes.append(("compiled", contextlib.nullcontext))
    return routes


ROUTES = _routes()
ROUTE_IDS = [name for name, _ in ROUTES]
ROUTE_CONTEXTS = [context for _, context in ROUTES]
