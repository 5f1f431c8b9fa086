"""Threads: grad mode is per thread, so two threads can train their own models side by side."""

import copy
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F

STEPS = 15
BARRIER_TIMEOUT = 10  # seconds; a broken interleaving fails instead of hanging


@pytest.fixture
def frequent_switches():
    """Switch threads often, so the two loops also interleave inside backward and step."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def _model(seed: int) -> gf.nn.Module:
    gf.manual_seed(seed)
    return gf.nn.Sequential(gf.nn.Linear(6, 16), gf.nn.Tanh(), gf.nn.Linear(16, 3))


def _no_meeting() -> None:
    pass


def _train(
    model: gf.nn.Module, seed: int, toggle_no_grad: bool, meet: Callable[[], Any] = _no_meeting
) -> list:
    """STEPS of SGD on a fixed seeded batch; returns the final parameters.

    With `toggle_no_grad`, each step first runs an evaluation inside no_grad. `meet` is a
    rendezvous with the other thread (a Barrier's wait): the thread that toggles calls it twice
    inside no_grad, the other around its recorded forward, so that forward runs while the
    toggling thread is in no_grad, every step.
    """
    rng = numpy.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((32, 6)).astype(numpy.float32))
    y = gf.tensor(rng.integers(0, 3, 32))
    optimizer = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(STEPS):
        if toggle_no_grad:
            with gf.no_grad():
                meet()
                assert not model(x).requires_grad
                meet()
            assert gf.is_grad_enabled()
            loss = F.cross_entropy(model(x), y)
        else:
            meet()
            loss = F.cross_entropy(model(x), y)
            meet()
        assert loss.requires_grad, "recording was off in a thread that never turned it off"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def _run_in_threads(*jobs, barrier: threading.Barrier | None = None) -> list:
    """Run each job in its own thread; return their results, re-raising the first error
    (which aborts `barrier`, so the other thread fails at once instead of waiting)."""
    results: list = [None] * len(jobs)
    errors: list = []

    def runner(k, job):
        try:
            results[k] = job()
        except BaseException as exc:  # handed to the main thread below
            errors.append(exc)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=runner, args=(k, job)) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads)
    return results


def test_two_threads_train_as_each_would_alone(frequent_switches):
    # Both models (and their single-thread twins) are built on the main thread before any
    # thread starts, so their initial weights do not depend on thread scheduling.
    model_a, model_b = _model(1), _model(2)
    alone_a, alone_b = copy.deepcopy(model_a), copy.deepcopy(model_b)

    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    threaded = _run_in_threads(
        lambda: _train(model_a, seed=10, toggle_no_grad=False, meet=barrier.wait),
        lambda: _train(model_b, seed=20, toggle_no_grad=True, meet=barrier.wait),
        barrier=barrier,
    )
    expected = [
        _train(alone_a, seed=10, toggle_no_grad=False),
        _train(alone_b, seed=20, toggle_no_grad=True),
    ]
    for got, want in zip(threaded, expected):
        for a, b in zip(got, want):
            numpy.testing.assert_array_equal(a, b)
    assert gf.is_grad_enabled()


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    x = gf.ones(3, requires_grad=True)

    def inside_no_grad():
        with gf.no_grad():
            barrier.wait()  # 1: the other thread now runs while this one is in no_grad
            barrier.wait()  # 2: the other thread has recorded its op
            return (x * 2).requires_grad, gf.is_grad_enabled()

    def recording():
        barrier.wait()  # 1
        y = x * 2
        barrier.wait()  # 2
        y.sum().backward()
        return y.requires_grad, gf.is_grad_enabled()

    quiet, loud = _run_in_threads(inside_no_grad, recording, barrier=barrier)
    assert quiet == (False, False)
    assert loud == (True, True)
    numpy.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    assert gf.is_grad_enabled()  # the main thread was never touched
