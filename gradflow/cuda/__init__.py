"""``gradflow.cuda``: is a GPU there, how many, wait for it, how much memory is in use."""

from __future__ import annotations

from gradflow.backend import _cupy
from gradflow.backend.device import Device


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _cupy.device_count() > 0


def device_count() -> int:
    """Number of CUDA devices CuPy sees (0 without CuPy or a driver)."""
    return _cupy.device_count()


def synchronize(device: str | Device | int | None = None) -> None:
    """Block until all work queued on the (current or given) CUDA device has finished."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        cp.cuda.get_current_stream().synchronize()


def memory_allocated(device: str | Device | int | None = None) -> int:
    """Bytes held by live arrays in CuPy's memory pool on the device."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        return int(cp.get_default_memory_pool().used_bytes())


def memory_reserved(device: str | Device | int | None = None) -> int:
    """Bytes CuPy's memory pool holds from the driver (used plus cached)."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        return int(cp.get_default_memory_pool().total_bytes())


def empty_cache() -> None:
    """Return the memory pool's cached, unused blocks to the driver."""
    cp = _cupy.require_cupy()
    cp.get_default_memory_pool().free_all_blocks()


def _index(device: str | Device | int | None) -> int:
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    dev = Device(device)
    if dev.type != "cuda":
        raise ValueError(f"expected a cuda device, got {dev}")
    return dev.index


# ---- PyTorch's other torch.cuda names -----------------------------------------------------
def current_device() -> int:
    """The index of the current cuda device (CuPy's current device)."""
    cp = _cupy.require_cupy()
    return int(cp.cuda.Device().id)


def set_device(device: str | Device | int) -> None:
    """Make `device` the current cuda device (where ``"cuda"`` tensors go)."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    cp.cuda.Device(index).use()


def get_device_name(device: str | Device | int | None = None) -> str:
    index = _index(device)
    cp = _cupy.require_cupy(index)
    props = cp.cuda.runtime.getDeviceProperties(index)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def manual_seed(seed: int) -> None:
    """Seed the cuda generators (gradflow.manual_seed seeds every device's generator)."""
    from gradflow.random import manual_seed as seed_all

    seed_all(seed)


manual_seed_all = manual_seed


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: gradflow has no bfloat16 (NumPy and CuPy have no such type)."""
    return False


def max_memory_allocated(device: str | Device | int | None = None) -> int:
    """Peak bytes held by live arrays since the last reset; CuPy's pool keeps no peak, so this
    is the bytes in use now (a lower bound), said here rather than faked."""
    return memory_allocated(device)


def reset_peak_memory_stats(device: str | Device | int | None = None) -> None:
    """Accepted for PyTorch code; see max_memory_allocated."""


from gradflow.cuda import amp as amp  # noqa: E402
from gradflow.legacy_types import _cuda as _typed  # noqa: E402

FloatTensor = _typed["FloatTensor"]
DoubleTensor = _typed["DoubleTensor"]
HalfTensor = _typed["HalfTensor"]
LongTensor = _typed["LongTensor"]
IntTensor = _typed["IntTensor"]
BoolTensor = _typed["BoolTensor"]
ByteTensor = _typed["ByteTensor"]
