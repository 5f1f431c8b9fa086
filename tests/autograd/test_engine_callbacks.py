"""The engine's end-of-backward callback (queue_callback) and post-accumulate-grad hooks."""

import numpy
import pytest

import gradflow
from gradflow.autograd import queue_callback


def test_queue_callback_runs_after_the_backward_before_it_returns():
    x = gradflow.tensor([1.0, 2.0], requires_grad=True)
    events = []

    def hook(g):
        events.append("hook")
        queue_callback(lambda: events.append(("callback", x.grad is not None)))

    y = x * 3
    y.register_hook(hook)
    y.sum().backward()
    events.append("returned")
    # the callback saw the leaf's gradient already accumulated
    assert events == ["hook", ("callback", True), "returned"]


def test_callbacks_run_in_order_and_may_queue_more():
    x = gradflow.tensor([1.0], requires_grad=True)
    events = []

    def second():
        events.append(2)
        queue_callback(lambda: events.append(3))

    def hook(g):
        queue_callback(lambda: events.append(1))
        queue_callback(second)

    x.register_hook(hook)
    (x * 2).sum().backward()
    assert events == [1, 2, 3]
    # the queue is per backward: nothing runs again on the next one
    events.clear()
    x._hooks.clear()
    (x * 2).sum().backward()
    assert events == []


def test_queue_callback_outside_backward_is_an_error():
    with pytest.raises(RuntimeError, match="no backward is running"):
        queue_callback(lambda: None)
    x = gradflow.tensor([1.0], requires_grad=True)
    x.register_hook(lambda g: queue_callback(3))
    with pytest.raises(TypeError, match="callable"):
        (x * 2).sum().backward()


def test_callbacks_also_run_for_autograd_grad():
    x = gradflow.tensor([1.0, 2.0], requires_grad=True)
    events = []
    y = x * x
    y.register_hook(lambda g: queue_callback(lambda: events.append("cb")))
    (gx,) = gradflow.autograd.grad(y.sum(), [x])
    assert events == ["cb"]
    numpy.testing.assert_allclose(gx.numpy(), [2.0, 4.0])


def test_a_raising_callback_propagates_and_the_next_backward_is_clean():
    x = gradflow.tensor([1.0], requires_grad=True)

    def boom():
        raise ValueError("callback failed")

    handle = x.register_hook(lambda g: queue_callback(boom))
    with pytest.raises(ValueError, match="callback failed"):
        (x * 2).sum().backward()
    handle.remove()
    (x * 2).sum().backward()  # no callback left behind
    with pytest.raises(RuntimeError):
        queue_callback(lambda: None)


def test_post_accumulate_hook_fires_once_after_all_contributions():
    w = gradflow.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    # w reaches the loss through three paths: the hook sees the sum, once
    loss = (w * 2).sum() + (w * w).sum() + w.sum()
    loss.backward()
    assert len(seen) == 1
    numpy.testing.assert_allclose(seen[0], [5.0, 7.0])
    # accumulation across backwards: the hook sees the accumulated .grad
    (w * 2).sum().backward()
    assert len(seen) == 2
    numpy.testing.assert_allclose(seen[1], [7.0, 9.0])


def test_post_accumulate_hook_order_and_removal():
    a = gradflow.tensor([1.0], requires_grad=True)
    b = gradflow.tensor([1.0], requires_grad=True)
    order = []
    ha = a.register_post_accumulate_grad_hook(lambda p: order.append("a"))
    b.register_post_accumulate_grad_hook(lambda p: order.append("b"))
    # b is used near the loss, a deep in the graph: b's gradient is ready first
    h = a * 2
    h = h.exp() * 3
    (h * b).sum().backward()
    assert order == ["b", "a"]
    ha.remove()
    order.clear()
    (a * b).sum().backward()
    assert order == ["b"]


def test_post_accumulate_hook_not_fired_without_a_gradient_or_for_grad():
    a = gradflow.tensor([1.0], requires_grad=True)
    unused = gradflow.tensor([1.0], requires_grad=True)
    fired = []
    a.register_post_accumulate_grad_hook(lambda p: fired.append("a"))
    unused.register_post_accumulate_grad_hook(lambda p: fired.append("unused"))
    (a * 2).sum().backward()
    assert fired == ["a"]
    fired.clear()
    gradflow.autograd.grad((a * 2).sum(), [a])
    assert fired == []
    assert a.grad.item() == 2.0  # grad() wrote no .grad


def test_post_accumulate_hook_on_a_root_leaf_and_errors():
    a = gradflow.tensor(2.0, requires_grad=True)
    fired = []
    a.register_post_accumulate_grad_hook(lambda p: fired.append(p.grad.item()))
    a.backward()
    assert fired == [1.0]
    with pytest.raises(RuntimeError, match="non-leaf"):
        (a * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        gradflow.tensor([1.0]).register_post_accumulate_grad_hook(lambda p: None)


def test_post_accumulate_hook_can_queue_a_callback():
    a = gradflow.tensor([1.0, 1.0], requires_grad=True)
    b = gradflow.tensor([1.0, 1.0], requires_grad=True)
    events = []

    def hook(p):
        events.append("hook")
        if len(events) == 1:
            queue_callback(lambda: events.append(("cb", a.grad is not None, b.grad is not None)))

    a.register_post_accumulate_grad_hook(hook)
    b.register_post_accumulate_grad_hook(hook)
    ((a * 3).exp() * b).sum().backward()
    assert events == ["hook", "hook", ("cb", True, True)]


def test_post_accumulate_hooks_are_dropped_with_their_leaf():
    import gc

    from gradflow.autograd import engine

    before = len(engine._post_accumulate_hooks)
    a = gradflow.tensor([1.0], requires_grad=True)
    a.register_post_accumulate_grad_hook(lambda p: None)
    assert len(engine._post_accumulate_hooks) == before + 1
    del a
    gc.collect()
    assert len(engine._post_accumulate_hooks) == before


def test_callback_queues_are_per_thread():
    import threading

    started, release = threading.Event(), threading.Event()
    events = []

    def slow_hook(g):
        queue_callback(lambda: events.append("thread's callback"))
        started.set()
        release.wait(10)

    def other_thread():
        a = gradflow.tensor([1.0], requires_grad=True)
        a.register_hook(slow_hook)
        (a * 2).sum().backward()

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert started.wait(10)
    # the other thread's backward is running, this thread's is not
    with pytest.raises(RuntimeError, match="no backward is running"):
        queue_callback(lambda: None)
    b = gradflow.tensor([1.0], requires_grad=True)
    b.register_hook(lambda g: queue_callback(lambda: events.append("main's callback")))
    (b * 2).sum().backward()
    assert events == ["main's callback"]
    release.set()
    worker.join(10)
    assert events == ["main's callback", "thread's callback"]


def test_backward_with_inputs_fires_the_post_accumulate_hooks_and_their_callbacks():
    """backward(inputs=[...]) writes .grad after the engine returns; the hooks of those leaves
    still fire, once, after the write, and a callback they queue runs before it returns."""
    w = gradflow.ones(3, requires_grad=True)
    other = gradflow.ones(3, requires_grad=True)
    events = []

    def hook(param):
        events.append(("hook", param.grad.tolist()))
        gradflow.autograd.queue_callback(lambda: events.append(("callback",)))

    w.register_post_accumulate_grad_hook(hook)
    other.register_post_accumulate_grad_hook(lambda p: events.append(("other",)))
    (w * 2 + other).sum().backward(inputs=[w])
    assert events == [("hook", [2.0, 2.0, 2.0]), ("callback",)]
    assert other.grad is None
