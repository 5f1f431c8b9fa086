"""Find and load NVRTC (libnvrtc), CUDA's runtime compiler, for tests that compile CUDA C++.

``load_nvrtc()`` returns ``(library, detail)``: a loaded ``ctypes.CDLL`` and where it came
from, or ``(None, reason)`` when no usable libnvrtc exists here. No GPU or driver is needed:
NVRTC only compiles. ``cuda_include_dir()`` finds the CUDA headers (``cuda_fp16.h`` and
friends) to pass NVRTC as ``-I``, since NVRTC itself has only its builtin headers.

Where libnvrtc is looked for, first found wins: ``GRADFLOW_NVRTC`` (a path to the library);
NVIDIA's wheels, the ``nvidia`` namespace package (``nvidia-cuda-nvrtc``, in gradflow's dev
extra, puts 13.x at ``nvidia/cu13/lib``; the cu12 wheels use ``nvidia/cuda_nvrtc/lib``);
a CUDA toolkit under ``CUDA_PATH``, ``CUDA_HOME`` or ``/usr/local/cuda``; the system library
path. Linux only (``libnvrtc.so``).

Why loading is more than ``ctypes.CDLL(path)``: libnvrtc ``dlopen``s its companion
``libnvrtc-builtins.so.MAJOR.MINOR`` on the first compile, by bare name. That works where the
pair sit on the linker's search path, but loaded by absolute path from a wheel it depends on
libnvrtc's RPATH, which some wheels lack (13.0.x has none) and which a symlink or copy in
another directory defeats (``$ORIGIN`` is the link's directory). Then every compile fails with
NVRTC_ERROR_BUILTIN_OPERATION_FAILURE (7), "failed to open libnvrtc-builtins.so.13.0". So
this module resolves the real file and loads the builtins library that lies next to it
(RTLD_GLOBAL) first: libnvrtc's later ``dlopen`` then finds it already loaded, by its soname.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

ENV_VAR = "GRADFLOW_NVRTC"

# libnvrtc.so, libnvrtc.so.13, libnvrtc.so.12.4.127; not libnvrtc.alt.so.13, not builtins.
_NVRTC_NAME = re.compile(r"^libnvrtc\.so(\.(\d+)(\.\d+)*)?$")
_BUILTINS_NAME = re.compile(r"^libnvrtc-builtins\.so\.(\d+)\.(\d+)$")


def _nvidia_roots() -> list[Path]:
    """The directories of the ``nvidia`` namespace package that NVIDIA's wheels install into."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def _major(path: Path) -> int:
    """The major version in a libnvrtc file name (``libnvrtc.so.13`` -> 13; unversioned -> -1)."""
    match = _NVRTC_NAME.match(path.name)
    return int(match.group(2)) if match and match.group(2) else -1


def _libraries_in(directory: Path) -> list[Path]:
    """The libnvrtc files in one directory, newest major version first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NVRTC_NAME.match(p.name)]
    return sorted(found, key=lambda p: (_major(p), p.name), reverse=True)


def _candidates() -> list[str]:
    """Where libnvrtc may be, in order of preference: file paths, then a bare library name."""
    found: list[Path] = []
    for root in _nvidia_roots():  # nvidia/cu13/lib, nvidia/cuda_nvrtc/lib, ...
        for lib_dir in sorted(root.glob("*/lib")):
            found.extend(_libraries_in(lib_dir))
    found.sort(key=_major, reverse=True)  # cu13 before cu12 where both wheels are installed
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            found.extend(_libraries_in(Path(os.environ[var]) / "lib64"))
    paths = [str(p) for p in found]
    system = ctypes.util.find_library("nvrtc")  # a name such as "libnvrtc.so.12"
    if system:
        paths.append(system)
    paths.extend(str(p) for p in _libraries_in(Path("/usr/local/cuda/lib64")))
    return paths


def find_nvrtc() -> str | None:
    """The libnvrtc that ``load_nvrtc`` would load: a path, or a name for the system linker."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    candidates = _candidates()
    return candidates[0] if candidates else None


def _preload_builtins(real: Path) -> None:
    """Load the libnvrtc-builtins next to ``real`` (a resolved libnvrtc path), if one is there.

    Only builtins of libnvrtc's own major version count; where a directory holds several
    minor versions, the one libnvrtc asks for is loaded after it (see ``_check_builtins``).
    """
    major = _major(real)
    builtins = [
        p
        for p in sorted(real.parent.glob("libnvrtc-builtins.so.*"))
        if (m := _BUILTINS_NAME.match(p.name)) and (major < 0 or int(m.group(1)) == major)
    ]
    if len(builtins) == 1:
        ctypes.CDLL(str(builtins[0]), mode=ctypes.RTLD_GLOBAL)


def _check_builtins(lib: ctypes.CDLL, real: Path) -> None:
    """Make sure the builtins library of exactly this NVRTC's version is loaded, if it is
    next to ``real``. NVRTC opens it on the first compile, so loading it now is in time."""
    major, minor = nvrtc_version(lib)
    exact = real.parent / f"libnvrtc-builtins.so.{major}.{minor}"
    if exact.is_file():
        ctypes.CDLL(str(exact), mode=ctypes.RTLD_GLOBAL)  # a no-op if already loaded


def nvrtc_version(lib: ctypes.CDLL) -> tuple[int, int]:
    """NVRTC's (major, minor) version, from ``nvrtcVersion``."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    rc = lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    if rc != 0:
        raise OSError(f"nvrtcVersion failed with NVRTC error {rc}")
    return major.value, minor.value


@functools.cache
def load_nvrtc() -> tuple[ctypes.CDLL | None, str]:
    """``(libnvrtc, where it came from)``, or ``(None, why not)`` when there is no usable one.

    Loaded once per process; the builtins library is loaded with it (see the module doc).
    """
    if not sys.platform.startswith("linux"):
        return None, f"NVRTC is only looked for on Linux, not {sys.platform}"
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            return None, f"{ENV_VAR}={env} is not a file"
        candidates = [env]
    else:
        candidates = _candidates()
    if not candidates:
        return None, (
            "libnvrtc not found (no nvidia-cuda-nvrtc wheel, CUDA toolkit or system library; "
            f"pip install -e '.[dev]', or set {ENV_VAR} to a libnvrtc.so)"
        )
    errors = []
    for candidate in candidates:
        is_path = os.sep in candidate
        # A file: load its real path, so $ORIGIN and the builtins beside it are the wheel's.
        # A bare name: the system linker finds libnvrtc, and its builtins beside it, itself.
        target = str(Path(candidate).resolve()) if is_path else candidate
        try:
            if is_path:
                _preload_builtins(Path(target))
            lib = ctypes.CDLL(target)
            if is_path:
                _check_builtins(lib, Path(target))
            major, minor = nvrtc_version(lib)
        except (OSError, AttributeError) as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        return lib, f"NVRTC {major}.{minor} from {target}"
    return None, "no libnvrtc could be loaded: " + "; ".join(errors)


def _wheel_dir_rank(path: Path) -> int:
    """Sort key for NVIDIA wheel directories: nvidia/cuNN/... by NN, the older layout last."""
    match = re.fullmatch(r"cu(\d+)", path.parent.name)
    return int(match.group(1)) if match else -1


def cuda_include_dir() -> Path | None:
    """A directory with the CUDA headers (``cuda_fp16.h``), for NVRTC's ``-I``; None if none.

    Prefers the headers of the same wheel directory as the NVRTC that ``find_nvrtc`` picks
    (``nvidia/cu13/include``, from ``nvidia-cuda-runtime``), then any NVIDIA wheel's, then a
    CUDA toolkit's.
    """
    dirs: list[Path] = []
    nvrtc = find_nvrtc()
    if nvrtc and os.sep in nvrtc:
        dirs.append(Path(nvrtc).resolve().parent.parent / "include")
    for root in _nvidia_roots():  # nvidia/cu13/include, then the cu12 wheels' cuda_runtime/...
        dirs.extend(sorted(root.glob("*/include"), key=_wheel_dir_rank, reverse=True))
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]) / "include")
    dirs.append(Path("/usr/local/cuda/include"))
    for directory in dirs:
        if (directory / "cuda_fp16.h").is_file():
            return directory
    return None
