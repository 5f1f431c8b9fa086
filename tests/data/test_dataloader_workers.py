"""DataLoader with worker processes: order, seeding, worker info, persistence, errors,
timeouts, shutdown (no child process left behind), iterable datasets, spawn, pin_memory."""

import multiprocessing
import os
import random
import time

import numpy
import pytest

import gradflow as gf
from gradflow.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    get_worker_info,
)
from gradflow.random import default_generator


@pytest.fixture(autouse=True)
def _no_children_left():
    yield
    assert multiprocessing.active_children() == []


class Squares(Dataset):
    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": numpy.full(2, i * i, numpy.float32), "i": i}


class RandomDraws(Dataset):
    """Each sample draws from gradflow's, NumPy's and Python's generators."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return gf.rand(2), numpy.random.rand(), random.random(), i


class WhoAmI(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (info.id, info.num_workers, info.seed, os.getpid(), getattr(info.dataset, "tag", -1))


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError(f"no sample {i} here")
        return i


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            time.sleep(0.5)
        return i


class Dies(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 1:
            os._exit(3)
        return i


class Stream(IterableDataset):
    def __init__(self, n, shard):
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if not self.shard or info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def _ids(loader):
    return [batch["i"].tolist() for batch in loader]


# ---- order and values ----------------------------------------------------------------------
@pytest.mark.parametrize("num_workers", [1, 3])
def test_batches_in_sampler_order(num_workers):
    loader = DataLoader(Squares(10), batch_size=3, num_workers=num_workers)
    batches = list(loader)
    assert [b["i"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert batches[1]["x"].tolist() == [[9, 9], [16, 16], [25, 25]]
    assert batches[1]["x"].dtype == gf.float32 and isinstance(batches[1]["x"], gf.Tensor)


def test_shuffled_workers_match_the_main_process():
    def epochs(num_workers):
        gf.manual_seed(7)
        loader = DataLoader(Squares(10), batch_size=4, shuffle=True, num_workers=num_workers)
        return [_ids(loader), _ids(loader)]

    main = epochs(0)
    assert main[0] != main[1]
    assert epochs(2) == main


def test_tensor_dataset_through_workers_with_prefetch():
    x = gf.arange(20, dtype=gf.float32).reshape(10, 2)
    loader = DataLoader(
        TensorDataset(x, gf.arange(10)),
        batch_size=4,
        num_workers=2,
        prefetch_factor=1,
        drop_last=True,
    )
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert next(iter(loader))[0].tolist()[1] == [2.0, 3.0]


def test_collate_fn_runs_in_the_worker():
    loader = DataLoader(
        Squares(4),
        batch_size=2,
        num_workers=2,
        collate_fn=lambda s: (os.getpid(), [d["i"] for d in s]),
    )
    out = list(loader)
    assert [ids for _, ids in out] == [[0, 1], [2, 3]]
    assert all(pid != os.getpid() for pid, _ in out)


def test_no_auto_batching_through_workers():
    loader = DataLoader(Squares(3), batch_size=None, num_workers=2)
    out = list(loader)
    assert [s["i"] for s in out] == [0, 1, 2]
    assert isinstance(out[2]["x"], gf.Tensor) and out[2]["x"].tolist() == [4.0, 4.0]


def test_device_moves_worker_batches(device):
    loader = DataLoader(Squares(4), batch_size=2, num_workers=1, device=device)
    assert all(b["x"].device == device for b in loader)


def test_cuda_dataset_with_workers_is_refused(device):
    x = gf.zeros(4, 2, device=device)
    loader = DataLoader(TensorDataset(x), batch_size=2, num_workers=1)
    if device == "cpu":
        assert len(list(loader)) == 2
        return
    with pytest.raises(RuntimeError, match="worker processes produce CPU arrays only"):
        iter(loader)


# ---- seeding -----------------------------------------------------------------------------
def _draws(num_workers, seed=3):
    gf.manual_seed(seed)
    loader = DataLoader(RandomDraws(), batch_size=5, shuffle=True, num_workers=num_workers)
    return [(x.tolist(), n.tolist(), r.tolist(), i.tolist()) for x, n, r, i in loader]


def test_same_seed_same_batches_whatever_num_workers():
    zero = _draws(0)
    assert _draws(1) == zero and _draws(2) == zero
    assert _draws(0, seed=4) != zero
    x = numpy.array([b[0] for b in zero[:2]]).reshape(-1, 2)
    assert len(numpy.unique(x)) == x.size  # samples do not repeat one another's draws


def test_main_process_generators_are_left_alone():
    numpy.random.seed(1)
    random.seed(1)
    state, py_state = numpy.random.get_state()[1].copy(), random.getstate()
    gf.manual_seed(5)
    default_generator("cpu").rng.integers(0, 2**63 - 1)  # the epoch's one base-seed draw
    after_one_draw = gf.rand(3).tolist()
    gf.manual_seed(5)
    list(DataLoader(RandomDraws(), batch_size=4, num_workers=0))
    assert gf.rand(3).tolist() == after_one_draw
    assert (numpy.random.get_state()[1] == state).all() and random.getstate() == py_state


def test_worker_info_seed_and_init_fn():
    assert get_worker_info() is None

    def init(worker_id):
        get_worker_info().dataset.tag = 100 + worker_id

    loader = DataLoader(
        WhoAmI(), batch_size=2, num_workers=2, worker_init_fn=init, generator=gf.Generator(seed=0)
    )
    rows = [tuple(zip(*(col.tolist() for col in batch))) for batch in loader]
    samples = [s for batch in rows for s in batch]
    ids = {s[0] for s in samples}
    assert ids == {0, 1} and {s[1] for s in samples} == {2}
    seeds = {s[0]: s[2] for s in samples}
    assert seeds[1] == seeds[0] + 1
    assert {s[0]: s[4] for s in samples} == {0: 100, 1: 101}
    assert os.getpid() not in {s[3] for s in samples}
    assert [s[0] for s in samples] == [0, 0, 1, 1, 0, 0, 1, 1]  # round-robin, in order


# ---- persistent workers ------------------------------------------------------------------
def test_persistent_workers_live_across_epochs():
    def pids(loader):
        return {pid for batch in loader for pid in batch[3].tolist()}

    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, persistent_workers=True)
    first, second = pids(loader), pids(loader)
    assert first == second and len(first) == 2
    for _ in loader:
        break  # an unfinished epoch, then a whole one on the same workers
    assert pids(loader) == first
    assert len(multiprocessing.active_children()) == 2
    del loader  # no reference cycle: the workers stop now, not at the next gc
    assert multiprocessing.active_children() == []
    fresh = DataLoader(WhoAmI(), batch_size=2, num_workers=2)
    assert pids(fresh) != pids(fresh)


def test_persistent_shuffled_epochs_match_the_main_process():
    gf.manual_seed(1)
    main = DataLoader(Squares(9), batch_size=2, shuffle=True)
    expected = [_ids(main), _ids(main)]
    gf.manual_seed(1)
    loader = DataLoader(
        Squares(9), batch_size=2, shuffle=True, num_workers=2, persistent_workers=True
    )
    assert [_ids(loader), _ids(loader)] == expected
    loader._iterator.close()


# ---- errors and shutdown -----------------------------------------------------------------
def test_worker_error_is_raised_with_its_traceback_and_workers_stop():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    seen = []
    with pytest.raises(KeyError) as error:
        for batch in loader:
            seen.append(batch.tolist())
    assert seen == [[0, 1], [2, 3]]  # sample 5 is in batch 2, which worker 0 fetched
    message = str(error.value)
    assert "Caught KeyError in DataLoader worker process 0" in message
    assert "no sample 5 here" in message and "__getitem__" in message
    assert multiprocessing.active_children() == []


def test_persistent_loader_starts_new_workers_after_an_error():
    class Mendable(Failing):
        broken = True

        def __getitem__(self, i):
            return super().__getitem__(i) if self.broken else i

    dataset = Mendable()
    loader = DataLoader(dataset, batch_size=2, num_workers=2, persistent_workers=True)
    with pytest.raises(KeyError):
        list(loader)
    assert multiprocessing.active_children() == []
    dataset.broken = False  # the next workers are forked from the mended dataset
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    del loader


def test_getitems_fetches_a_batch_at_once():
    class Batched(Squares):
        def __getitems__(self, indices):
            return [{"x": numpy.zeros(2, numpy.float32), "i": -i} for i in indices]

    for workers in (0, 1):
        loader = DataLoader(Batched(4), batch_size=2, num_workers=workers)
        assert _ids(loader) == [[0, -1], [-2, -3]]


def test_worker_init_fn_error_is_raised():
    def init(worker_id):
        raise ValueError(f"bad init {worker_id}")

    with pytest.raises(ValueError, match=r"(?s)worker process 0.*bad init 0"):
        list(DataLoader(Squares(4), batch_size=2, num_workers=1, worker_init_fn=init))


def test_break_shuts_workers_down():
    for _ in DataLoader(Squares(20), batch_size=2, num_workers=2):
        break
    assert multiprocessing.active_children() == []
    it = iter(DataLoader(Squares(20), batch_size=2, num_workers=2))
    next(it)
    del it
    assert multiprocessing.active_children() == []


def test_keyboard_interrupt_shuts_workers_down(monkeypatch):
    it = iter(DataLoader(Squares(20), batch_size=2, num_workers=2))
    next(it)

    def interrupted():
        raise KeyboardInterrupt

    # Ctrl-C while the next batch is fetched (patched on _next, not _get: a batch that came
    # back early is delivered without waiting, so _get may never be called)
    monkeypatch.setattr(it, "_next", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            next(it)
        assert it.closed and multiprocessing.active_children() == []
    finally:
        it.close()  # workers never outlive the test, whatever failed
    monkeypatch.undo()  # the iterator's own _next: a closed iterator is exhausted
    with pytest.raises(StopIteration):
        next(it)


def test_timeout():
    loader = DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.1)
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.1 seconds"):
        list(loader)


def test_worker_that_exits_is_reported(monkeypatch):
    monkeypatch.setattr(gf.data.worker_pool, "STATUS_INTERVAL", 0.1)
    with pytest.raises(
        RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"
    ):
        list(DataLoader(Dies(), batch_size=1, num_workers=1))


def test_iterator_close_is_idempotent():
    it = iter(DataLoader(Squares(6), batch_size=2, num_workers=2))
    assert len(it) == 3
    it.close()
    it.close()
    assert multiprocessing.active_children() == []


# ---- iterable datasets -------------------------------------------------------------------
def test_iterable_dataset_is_read_whole_by_each_worker_unless_sharded():
    def items(shard, workers, **kw):
        loader = DataLoader(Stream(7, shard), batch_size=2, num_workers=workers, **kw)
        return [b.tolist() for b in loader]

    assert items(False, 0) == [[0, 1], [2, 3], [4, 5], [6]]
    assert items(False, 2) == [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5], [6], [6]]
    assert items(True, 2) == [[0, 2], [1, 3], [4, 6], [5]]
    assert items(True, 2, drop_last=True) == [[0, 2], [1, 3], [4, 6]]


def test_iterable_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import IterableDataset as TorchIterable
    from torch.utils.data import get_worker_info as torch_info

    class TorchStream(TorchIterable):
        def __iter__(self):
            info = torch_info()
            return iter(range(info.id, 9, info.num_workers))

    theirs = [b.tolist() for b in TorchLoader(TorchStream(), batch_size=2, num_workers=2)]
    ours = [b.tolist() for b in DataLoader(Stream(9, True), batch_size=2, num_workers=2)]
    assert ours == theirs
    assert torch.utils.data.get_worker_info() is None


def test_persistent_iterable_restarts_each_epoch():
    loader = DataLoader(Stream(5, True), batch_size=2, num_workers=2, persistent_workers=True)
    assert [b.tolist() for b in loader] == [[0, 2], [1, 3], [4]]
    assert [b.tolist() for b in loader] == [[0, 2], [1, 3], [4]]
    loader._iterator.close()


# ---- start methods -------------------------------------------------------------------------
def test_spawned_workers():
    x = gf.arange(12, dtype=gf.float32).reshape(6, 2)
    loader = DataLoader(
        TensorDataset(x, gf.arange(6)), batch_size=4, num_workers=1, multiprocessing_context="spawn"
    )
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5]]


def test_spawn_needs_picklable_arguments():
    loader = DataLoader(
        Squares(4), num_workers=1, multiprocessing_context="spawn", collate_fn=lambda s: s
    )
    with pytest.raises(RuntimeError, match="can't be sent to 'spawn' worker processes"):
        iter(loader)


def test_default_context_is_fork():
    loader = DataLoader(Squares(4), num_workers=1)
    assert loader.multiprocessing_context is None  # as PyTorch: the default is resolved later
    it = iter(loader)
    assert isinstance(it.workers[0], multiprocessing.context.ForkProcess)
    it.close()
    ctx = multiprocessing.get_context("spawn")
    spawning = DataLoader(Squares(4), num_workers=1, multiprocessing_context=ctx)
    assert spawning.multiprocessing_context is ctx
    named = DataLoader(Squares(4), num_workers=1, multiprocessing_context="forkserver")
    assert named.multiprocessing_context.get_start_method() == "forkserver"


# ---- pin_memory ----------------------------------------------------------------------------
def test_pin_memory_without_cuda_warns_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(gf.data.dataloader, "_cuda_available", lambda: False)
    loader = DataLoader(Squares(4), batch_size=2, pin_memory=True)
    with pytest.warns(UserWarning, match="no accelerator is found"):
        batches = list(loader)
    assert batches[1]["i"].tolist() == [2, 3] and loader.pin_memory


def test_pin_memory_uses_pinned_host_buffers(device, monkeypatch):
    if device == "cpu":
        monkeypatch.setattr(gf.data.dataloader, "_cuda_available", lambda: False)
        loader = DataLoader(Squares(4), batch_size=2, num_workers=1, pin_memory=True)
        with pytest.warns(UserWarning, match="no accelerator is found"):
            assert [b["i"].tolist() for b in loader] == [[0, 1], [2, 3]]
        return
    import cupyx

    made = []

    def empty_pinned(shape, dtype):
        made.append(numpy.empty(shape, dtype))
        return made[-1]

    # The CuPy stand-in has no pinned memory: a fake records where the batches are put.
    monkeypatch.setattr(cupyx, "empty_pinned", empty_pinned, raising=False)
    loader = DataLoader(Squares(4), batch_size=2, num_workers=1, pin_memory=True)
    batches = list(loader)
    assert len(made) == 4  # x and i of two batches
    assert batches[0]["x"].array is made[0] and batches[1]["i"].tolist() == [2, 3]
    assert batches[0]["x"].device == "cpu"
    on_gpu = batches[0]["x"].to("cuda", non_blocking=True)
    assert on_gpu.device.type == "cuda" and on_gpu.tolist() == [[0, 0], [1, 1]]
