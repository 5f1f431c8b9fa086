"""Seeded random generators, one per device: the same seed gives the same numbers on cpu."""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.backend import Device, get_array_module


class Generator:
    """A seeded random stream for one device (NumPy's PCG64 on cpu, CuPy's on cuda)."""

    def __init__(self, device: str | Device = "cpu", seed: int | None = None):
        self.device = Device(device)
        self._seed = seed
        self._rng: Any = None
        self.manual_seed(seed if seed is not None else numpy.random.SeedSequence().entropy)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from `seed`."""
        if not isinstance(seed, int | numpy.integer):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self._seed = int(seed)
        if self.device.type == "cpu":
            self._rng = numpy.random.default_rng(self._seed)
        else:
            cp = get_array_module(self.device)
            with cp.cuda.Device(self.device.index):
                self._rng = cp.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        if self.device.type != "cpu":
            raise NotImplementedError("get_state is available for cpu generators only")
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        if self.device.type != "cpu":
            raise NotImplementedError("set_state is available for cpu generators only")
        self._rng.bit_generator.state = state

    @property
    def rng(self) -> Any:
        """The underlying numpy/cupy Generator."""
        return self._rng


_defaults: dict[Device, Generator] = {}
_global_seed: int | None = None


def default_generator(device: str | Device = "cpu") -> Generator:
    """The process-wide generator of `device` (created on first use)."""
    dev = Device(device)
    gen = _defaults.get(dev)
    if gen is None:
        gen = _defaults[dev] = Generator(dev, _global_seed)
    return gen


def manual_seed(seed: int) -> Generator:
    """Seed the cpu generator and every cuda generator (now and as they are created)."""
    global _global_seed
    if not isinstance(seed, int | numpy.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _global_seed = int(seed)
    for gen in _defaults.values():
        gen.manual_seed(_global_seed)
    return default_generator("cpu").manual_seed(_global_seed)


def seed_for(generator: Generator | None, device: Device) -> Any:
    """The numpy/cupy Generator to draw from: `generator` (checked) or the device default."""
    if generator is None:
        return default_generator(device).rng
    if generator.device != device:
        raise RuntimeError(
            f"generator is on {generator.device} but the tensor is created on {device}; "
            "use a Generator of the same device"
        )
    return generator.rng


def seed() -> int:
    """Seed every generator from the operating system's entropy; returns the seed."""
    new = int(numpy.random.SeedSequence().entropy % 2**63)
    manual_seed(new)
    return new


def initial_seed() -> int:
    """The seed of the cpu generator."""
    return default_generator("cpu").initial_seed()


def get_rng_state() -> dict:
    """The cpu generator's state (pass it to set_rng_state to replay the same draws)."""
    return default_generator("cpu").get_state()


def set_rng_state(new_state: dict) -> None:
    """Restore the cpu generator to a state from get_rng_state."""
    default_generator("cpu").set_state(new_state)
