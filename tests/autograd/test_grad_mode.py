"""Grad mode: context managers, decorators, thread-locality."""

import threading

import gradflow as gf


def test_no_grad_and_enable_grad_nest():
    x = gf.ones(2, requires_grad=True)
    assert gf.is_grad_enabled()
    with gf.no_grad():
        assert not gf.is_grad_enabled()
        with gf.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert gf.is_grad_enabled()


def test_no_grad_as_decorator_restores_mode():
    @gf.no_grad()
    def f(x):
        return x * 2

    x = gf.ones(2, requires_grad=True)
    assert not f(x).requires_grad
    assert gf.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context():
    gf.set_grad_enabled(False)
    try:
        assert not gf.is_grad_enabled()
    finally:
        gf.set_grad_enabled(True)
    with gf.set_grad_enabled(False):
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["enabled"] = gf.is_grad_enabled()

    with gf.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen["enabled"] is True
