"""Pins the CuPy 14.2 behaviours that the stand-in (gradflow/testing/standin) imitates.

The stand-in lets gradflow's cuda path run on machines without a GPU, and its worth lies in
refusing what CuPy refuses: a weakened stand-in lets code pass here that would then fail on a
GPU. Each test names the CuPy v14.2.0 source the behaviour comes from (commit
dc1552a32f5489bdf6a5a721dfd952a92d47d934 of https://github.com/cupy/cupy). The tests get the
module with ``standin.module()``, which does not install it as ``cupy``, so they run in the
normal CPU test run and leave gradflow's cuda tests off.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from gradflow.testing import standin
from gradflow.testing.emulation import unavailable_reason
from gradflow.testing.standin import Counts, counting, names

CUPY_COMMIT = "dc1552a32f5489bdf6a5a721dfd952a92d47d934"


@pytest.fixture(scope="module")
def cp():
    return standin.module()


@pytest.fixture(scope="module")
def cupyx():
    return standin.module("cupyx")


# --- the module, and how it is obtained ---------------------------------------------------


def test_module_builds_without_installing_cupy():
    """module() alone gives a working stand-in: nothing in it imports ``cupy``, and
    gradflow's cuda path stays off (a fresh interpreter, so no other test's import counts)."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from gradflow.testing import standin
        cp = standin.module()
        x = cp.arange(4.0)
        assert cp.get_array_module(x) is cp
        assert type(np.exp(x)) is cp.ndarray
        assert type(np.concatenate([x, x])) is cp.ndarray
        assert standin.module("cupyx").scatter_add is not None
        assert "cupy" not in sys.modules and "cupyx" not in sys.modules
        import gradflow
        assert not gradflow.cuda.is_available()
        assert "cupy" not in sys.modules
        """
    )
    env = {k: v for k, v in os.environ.items() if k != standin.ENV}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr


def test_module_does_not_touch_sys_modules(cp):
    before = {k: sys.modules.get(k) for k in ("cupy", "cupyx", "cupy.cuda")}
    assert standin.module() is cp
    assert standin.is_standin(cp) and standin.is_standin(standin.module("cupyx"))
    assert {k: sys.modules.get(k) for k in before} == before


# --- names (names.py, cupy_14_2_names.json) -----------------------------------------------


def test_names_file_records_its_source():
    data = json.loads(names.NAMES_FILE.read_text())
    assert data["source"] == "https://github.com/cupy/cupy"
    assert data["tag"] == "v14.2.0"
    assert data["commit"] == CUPY_COMMIT
    lists = names.load()
    assert set(lists) >= {"cupy", "cupy.ndarray", "cupy.random.Generator", "cupyx"}
    # cupy/__init__.py binds lib by importing from it, random/__init__.py and cuda/__init__.py
    # answer Generator and cublas from a module __getattr__: CuPy has all three
    assert "lib" in lists["cupy"]
    assert "Generator" in lists["cupy.random"]
    assert "cublas" in lists["cupy.cuda"]


@pytest.mark.parametrize("name", ["ma", "busday_count", "matrix", "einsum_path"])
def test_numpy_name_cupy_lacks_raises(cp, name):
    """NumPy has these, CuPy 14.2's cupy/__init__.py does not: code using them fails on a
    GPU, so it must fail here too."""
    assert hasattr(np, name)
    assert name not in names.load()["cupy"]
    with pytest.raises(AttributeError, match="CuPy 14.2 has no such name"):
        getattr(cp, name)


@pytest.mark.parametrize(
    ("module", "name"), [("cupy", "fft"), ("cupy", "lib"), ("cupy.cuda", "cublas")]
)
def test_cupy_name_the_standin_lacks_says_so(module, name):
    assert name in names.load()[module]
    with pytest.raises(AttributeError, match=rf"does not implement {module}\.{name} \(CuPy"):
        getattr(standin.module(module), name)


def test_standin_exposes_only_cupy_names(cp):
    """Every public name of the stand-in's modules, ndarray and Generator is in CuPy's lists."""
    lists = names.load()
    for module in ("cupy", "cupy.cuda", "cupy.random", "cupy.linalg", "cupyx"):
        public = {n for n in vars(standin.module(module)) if not n.startswith("_")}
        assert public <= lists[module], (module, sorted(public - lists[module]))
    methods = {n for n in dir(cp.ndarray) if not n.startswith("_")}
    assert methods <= lists["cupy.ndarray"], sorted(methods - lists["cupy.ndarray"])
    generator = {n for n in dir(cp.random.Generator) if not n.startswith("_")}
    assert generator <= lists["cupy.random.Generator"]


def test_top_level_names_of_a_synthetic_source():
    source = textwrap.dedent(
        """
        import os
        import numpy as _np
        import pkg.deep.module
        from pkg import cuda
        from pkg.lib._shape import apply  # binds pkg.lib as well
        from pkg._core import ndarray as array
        from .relative import thing
        from other.package import outside
        CONSTANT: int = 1
        a = b = 2
        (c, d) = 3, 4
        _private = 5

        def function():
            inner = 6

        class Klass:
            attribute = 7

        if os.name:
            branch = 8
        else:
            other_branch = 9

        try:
            from pkg import optional
        except ImportError:
            optional = None
        finally:
            cleanup = 10

        def __getattr__(key):
            if key == "lazy":
                return 1
            elif key in ("lazier", "laziest"):
                return 2
            raise AttributeError(key)
        """
    )
    assert names.top_level_names(source, "pkg") == sorted(
        [
            "os", "pkg", "deep", "cuda", "apply", "lib", "array", "thing", "relative",
            "outside", "CONSTANT", "a", "b", "c", "d", "function", "Klass", "branch",
            "other_branch", "optional", "cleanup", "lazy", "lazier", "laziest",
        ]
    )  # fmt: skip
    # without the package name, submodules bound as a side effect are not known
    assert "lib" not in names.top_level_names(source)


def test_class_members_and_readonly_attributes_of_a_synthetic_source():
    pyx = textwrap.dedent(
        """
        cdef class _ndarray_base:
            cpdef fill(self, value):
                pass
            def __getitem__(self, slices):
                pass
            def _private(self):
                pass
            property shape:
                pass

        class ndarray(_ndarray_base):
            def get(self, stream=None):
                pass

        cdef helper():
            def not_a_member(self):
                pass
        """
    )
    assert names.class_members(pyx, "ndarray", "_ndarray_base") == [
        "__getitem__",
        "fill",
        "get",
        "shape",
    ]
    pxd = "cdef class _ndarray_base:\n    cdef:\n        readonly Py_ssize_t size\n"
    pxd += "        public object base\n        readonly object _private\n"
    assert names.readonly_attributes(pxd) == ["size", "base"]


# --- ndarray (cupy/_core/core.pyx, _routines_indexing.pyx) ------------------------------


def test_ndarray_is_not_a_numpy_array(cp):
    x = cp.arange(3.0)
    assert type(x) is cp.ndarray
    assert not isinstance(x, np.ndarray)
    assert not issubclass(cp.ndarray, np.ndarray)


def test_implicit_conversion_to_numpy_raises(cp):
    """core.pyx, ``ndarray.__array__``."""
    x = cp.arange(3.0)
    message = re.escape("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")
    with pytest.raises(TypeError, match=message):
        np.asarray(x)
    with pytest.raises(TypeError, match=message):
        np.array([x])


def test_float_of_two_elements_raises(cp):
    """core.pyx: ``__float__`` is ``float(self.get())``, which NumPy refuses for size 2."""
    with pytest.raises(TypeError):
        float(cp.arange(2.0))
    with counting() as c:
        assert float(cp.array(1.5)) == 1.5
    assert c.counts.syncs == 1


def test_mixing_numpy_arrays_raises(cp):
    """core.pyx ``__add__`` goes through NumPy's ufunc to ``__array_ufunc__``, whose CuPy
    ufunc refuses a NumPy array (_kernel.pyx ``_preprocess_arg`` -> _scalar.pyx
    ``CScalar``: "Unsupported type")."""
    x = cp.arange(3.0)
    host = np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        x + host
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        host + x
    with pytest.raises(TypeError, match="Unsupported type"):
        _ = x == host
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add(x, host)
    # scalars, NumPy's included, are fine
    assert (x + np.float64(1)).get().tolist() == [1.0, 2.0, 3.0]
    assert (2 * x).get().tolist() == [0.0, 2.0, 4.0]


def test_comparisons_follow_richcmp(cp):
    """core.pyx ``__richcmp__``: a 0-d NumPy array compares as its scalar; ``==``/``!=``
    against None give all-False/all-True arrays."""
    x = cp.arange(3.0)
    assert (x == np.array(1.0)).get().tolist() == [False, True, False]
    assert (x < np.array(2.0)).get().tolist() == [True, True, False]
    eq, ne = x == None, x != None  # noqa: E711
    assert type(eq) is cp.ndarray and eq.get().tolist() == [False] * 3
    assert ne.get().tolist() == [True] * 3


def test_defers_to_types_that_opt_out_of_numpy_ufuncs(cp):
    """core.pyx ``_should_use_rop``: ``__array_ufunc__ = None`` (gradflow's Tensor) gets its
    reflected operator called."""

    class OptsOut:
        __array_ufunc__ = None

        def __radd__(self, other):
            return "reflected"

    assert cp.arange(3.0) + OptsOut() == "reflected"


def test_numpy_ufunc_dispatches(cp):
    """core.pyx ``__array_ufunc__``: NumPy's ufunc runs CuPy's of the same name."""
    x = cp.arange(3.0)
    for result in (np.exp(x), np.add(x, 1), np.add.reduce(x), np.maximum(x, x)):
        assert type(result) is cp.ndarray
    assert np.add.reduce(x).shape == ()


def test_numpy_function_dispatches(cp):
    """core.pyx ``__array_function__``: NumPy's function runs CuPy's of the same name."""
    x = cp.arange(3.0)
    joined = np.concatenate([x, x])
    assert type(joined) is cp.ndarray and joined.shape == (6,)
    assert type(np.linalg.norm(x)) is cp.ndarray
    # host-side routines CuPy writes itself read the array's dtype and shape
    assert np.ndim(x) == 1 and np.shape(x) == (3,) and np.size(x) == 3
    assert np.result_type(x, np.float32) == np.float64
    assert not np.iscomplexobj(x)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: np.block([x, x]),
        lambda x: np.einsum_path("i,i", x, x),
        lambda x: np.insert(x, 1, 0.0),
    ],
    ids=["block", "einsum_path", "insert"],
)
def test_numpy_function_cupy_lacks_raises(cp, call):
    """core.pyx ``__array_function__`` returns NotImplemented for a name CuPy lacks, so NumPy
    raises TypeError."""
    with pytest.raises(TypeError, match="no implementation found"):
        call(cp.arange(3.0))


def test_reductions_return_0d_arrays(cp):
    x = cp.arange(6.0).reshape(2, 3)
    for result in (x.sum(), cp.sum(x), x.max(), x.mean(), cp.count_nonzero(x), x[0, 1]):
        assert type(result) is cp.ndarray and result.shape == ()


def test_get_copies_and_counts_one_sync_and_one_d2h(cp):
    """core.pyx ``get``: a device-to-host copy, then a stream synchronize."""
    x = cp.arange(3.0)
    with counting() as c:
        host = x.get()
    assert c.counts == Counts(syncs=1, d2h=1)
    assert type(host) is np.ndarray
    host[0] = 42.0
    assert x.get()[0] == 0.0
    with counting() as c:
        x.get(blocking=False)
    assert c.counts == Counts(d2h=1)


def test_get_checks_out_and_skips_empty_arrays(cp):
    """core.pyx ``get``: ``out`` must match in dtype and shape; an empty array copies nothing
    (no sync). ``set`` likewise checks dtype and shape."""
    x = cp.arange(3, dtype=np.float32)
    with pytest.raises(TypeError, match="float64 array cannot be obtained from float32"):
        x.get(out=np.zeros(3))
    with pytest.raises(ValueError, match="Shape mismatch"):
        x.get(out=np.zeros((2, 3), np.float32))
    out = np.zeros(3, np.float32)
    assert x.get(out=out) is out and out.tolist() == [0.0, 1.0, 2.0]
    with counting() as c:
        assert cp.empty(0).get().shape == (0,)
    assert c.counts == Counts()
    with pytest.raises(TypeError, match="float64 array cannot be set to float32"):
        x.set(np.zeros(3))
    with pytest.raises(ValueError, match="Shape mismatch"):
        x.set(np.zeros(2, np.float32))


def test_data_pointer_and_device(cp):
    x = cp.arange(8, dtype=np.float32)
    assert x[3:].data.ptr == x.data.ptr + 3 * x.itemsize
    assert x[::2].data.ptr == x.data.ptr
    assert x.device.id == 0
    assert x.data.device_id == 0


def test_fill_refuses_non_scalars(cp):
    """core.pyx ``fill``."""
    x = cp.zeros(3)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x.fill(np.ones(3))
    with pytest.raises(ValueError, match="non-scalar cupy.ndarray cannot be used for fill"):
        x.fill(cp.ones(3))
    x.fill(np.float32(2))
    x.fill(cp.array(3.0))
    assert x.get().tolist() == [3.0] * 3


def test_setitem_from_host_arrays(cp):
    """_routines_indexing.pyx ``_scatter_op``: a basic index with a non-CuPy value calls
    ``fill`` ("Refuse assignment from CPU arrays, see gh-2079"); an advanced index copies the
    value to the device (``core.array``)."""
    x = cp.zeros(4, dtype=np.float32)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[...] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="non-scalar"):
        x[1:3] = [1.0, 2.0]
    index = cp.array([0, 2])
    with counting() as c:
        x[index] = np.array([5.0, 6.0], np.float32)
    assert c.counts.h2d == 1 and c.counts.syncs == 0
    assert x.get().tolist() == [5.0, 0.0, 6.0, 0.0]


def test_boolean_masks_sync(cp):
    """_routines_indexing.pyx ``_prepare_mask_indexing_single``: the number of True is read
    on the host (``int(mask_scanned[-1])``), for getitem and setitem alike."""
    x = cp.arange(4.0)
    mask = x > 1
    with counting() as c:
        picked = x[mask]
    assert c.counts.syncs == 1
    assert picked.get().tolist() == [2.0, 3.0]
    with counting() as c:
        x[mask] = 0.0
    assert c.counts.syncs == 1
    assert x.get().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_integer_indices_wrap_around(cp):
    """core.pyx ``__getitem__``/``__setitem__`` notes: out-of-bounds integer array indices
    wrap around (the docstrings' own examples)."""
    a = cp.arange(3)
    assert a[[1, 3]].get().tolist() == [1, 0]
    assert a[cp.array([-4, 5])].get().tolist() == [2, 2]
    assert cp.take(a, cp.array([4])).get().tolist() == [1]
    x = cp.arange(3)
    x[[1, 3]] = 10
    assert x.get().tolist() == [10, 10, 2]


def test_empty_holds_garbage(cp):
    """CuPy's ``empty`` returns pool memory as it is; the stand-in fills it with NaN so that
    reading it before writing shows."""
    assert np.isnan(cp.empty(4).get()).all()
    assert np.isnan(cp.empty_like(cp.zeros((2, 2))).get()).all()


def test_broadcast_to_views_are_writable_and_share_memory(cp):
    """CuPy arrays have no read-only flag: a ``broadcast_to`` view can be written (writes
    through it race on a GPU; NumPy's read-only view would hide the bug)."""
    x = cp.arange(3.0)
    view = cp.broadcast_to(x, (2, 3))
    assert view.base is x
    assert cp.shares_memory(view, x) and cp.may_share_memory(view, x)
    view[1, 0] = 7.0
    assert x.get().tolist() == [7.0, 1.0, 2.0]
    assert not cp.shares_memory(x, x.copy())


def test_bool_of_one_element_syncs(cp):
    """core.pyx ``__nonzero__`` (``__bool__``): ``bool(self.get())``."""
    with counting() as c:
        assert bool(cp.ones(1))
    assert c.counts.syncs == 1
    with pytest.raises(ValueError, match="more than one element is ambiguous"):
        bool(cp.ones(2))
    with pytest.warns(DeprecationWarning, match="empty array is ambiguous"):
        assert not bool(cp.ones(0))


def test_allow_synchronize_false_refuses_syncs(cp, cupyx):
    """cupy/_core/syncdetect.py: ``allow_synchronize`` warns (deprecated) and makes a sync
    raise DeviceSynchronized, in this thread only."""
    x = cp.arange(3.0)
    seen = []
    warns = pytest.warns(UserWarning, match="allow_synchronize will be removed")
    with warns, cupyx.allow_synchronize(False):
        y = x + 1  # no sync: fine
        for sync in (x.get, lambda: bool(x[0]), lambda: x[x > 0], x[1].item):
            with pytest.raises(cupyx.DeviceSynchronized):
                sync()
        other = threading.Thread(target=lambda: seen.append(x.get()))
        other.start()
        other.join()
    assert len(seen) == 1
    assert issubclass(cupyx.DeviceSynchronized, RuntimeError)
    assert y.get().tolist() == [1.0, 2.0, 3.0]


def test_get_array_module(cp):
    assert cp.get_array_module(cp.arange(2), np.ones(2)) is cp
    assert cp.get_array_module(np.ones(2)) is np


# --- kernels (cupy/_core/raw.pyx, cupy/cuda/function.pyx, _scalar.pyx) ---------------------

KERNEL_SOURCE = r"""
extern "C" __global__ void scale(const float* x, float* y, int n, float a) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x ? a * x[i] : a;
}
"""


@pytest.fixture(scope="module")
def kernel(cp):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    module = cp.RawModule(code=KERNEL_SOURCE, options=("-std=c++17",))
    return module.get_function("scale")


@pytest.fixture
def xy(cp):
    return cp.arange(5, dtype=np.float32), cp.zeros(5, dtype=np.float32)


def test_kernel_launch_with_numpy_scalars(cp, kernel, xy):
    x, y = xy
    with counting() as c:
        kernel((1,), (32,), (x, y, np.int32(5), np.float32(2.0)))
    assert c.counts == Counts(raw_launches=1)
    assert y.get().tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    kernel((1,), (32,), (x, y, np.array([5], np.int32), np.array(3.0, np.float32)))
    assert y.get().tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_kernel_python_int_is_long_long(kernel, xy):
    """_scalar.pyx ``numpy_dtype_from_pyscalar``: a Python int is int64 (long long)."""
    x, y = xy
    with pytest.raises(TypeError, match="long long"):
        kernel((1,), (32,), (x, y, 5, np.float32(2.0)))
    with pytest.raises(TypeError, match="uint64"):  # from 2**63 up, unsigned long long
        kernel((1,), (32,), (x, y, 2**63, np.float32(2.0)))


def test_kernel_python_float_is_double(kernel, xy):
    x, y = xy
    with pytest.raises(TypeError, match="double"):
        kernel((1,), (32,), (x, y, np.int32(5), 2.0))


def test_kernel_pointer_of_the_wrong_dtype_raises(cp, kernel, xy):
    _, y = xy
    with pytest.raises(TypeError, match="float64 array"):
        kernel((1,), (32,), (cp.arange(5.0), y, np.int32(5), np.float32(2.0)))


def test_kernel_none_is_a_null_pointer(kernel, xy):
    """function.pyx ``_pointer``: None is ``CIntptr(0)``."""
    _, y = xy
    kernel((1,), (32,), (None, y, np.int32(5), np.float32(7.0)))
    assert y.get().tolist() == [7.0] * 5


def test_kernel_memory_pointer_is_a_pointer(kernel, xy):
    """function.pyx ``_pointer``: a MemoryPointer (``x.data``) passes its address."""
    x, y = xy
    kernel((1,), (32,), (x.data, y.data, np.int32(5), np.float32(1.0)))
    assert y.get().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_kernel_numpy_array_larger_than_one_raises(kernel, xy):
    """function.pyx ``_pointer``: only NumPy arrays of size one pass by value."""
    _, y = xy
    with pytest.raises(TypeError, match="Only numpy.ndarrays of size one can be passed"):
        kernel((1,), (32,), (np.ones(5, np.float32), y, np.int32(5), np.float32(1.0)))


def test_kernel_launch_shape_checks(cp, kernel, xy):
    """function.pyx ``Function.__call__(self, tuple grid, tuple block, ...)``; the driver
    refuses a block of more than 1024 threads (CUDA_ERROR_INVALID_VALUE)."""
    x, y = xy
    args = (x, y, np.int32(5), np.float32(1.0))
    with pytest.raises(TypeError, match=r"'grid' has incorrect type \(expected tuple, got list"):
        kernel([1], (32,), args)
    with pytest.raises(TypeError, match="'block' has incorrect type"):
        kernel((1,), 32, args)
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_INVALID_VALUE"):
        kernel((1,), (2048,), args)
    with pytest.raises(TypeError, match="takes 4 arguments, got 3"):
        kernel((1,), (32,), args[:3])


def test_get_function_counts_and_checks_the_name(cp, kernel):
    module = kernel.module
    with counting() as c:
        again = module.get_function("scale")
    assert c.counts == Counts(get_function=1)
    assert again is not kernel  # a new kernel object each call, as raw.pyx makes one
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_NOT_FOUND"):
        module.get_function("no_such_kernel")


def test_raw_module_arguments(cp):
    """raw.pyx ``RawModule.__init__``: keyword-only, exactly one of code and path, options a
    tuple."""
    with pytest.raises(TypeError, match="Exactly one of `code` and `path`"):
        cp.RawModule()
    with pytest.raises(TypeError, match="expected tuple, got list"):
        cp.RawModule(code=KERNEL_SOURCE, options=["-std=c++17"])
    with pytest.raises(TypeError):
        cp.RawModule(KERNEL_SOURCE)


# --- counting() ---------------------------------------------------------------------------


def test_counting_gives_per_block_deltas(cp):
    x = cp.arange(4.0).reshape(2, 2)
    with counting() as outer:
        y = x + 1
        with counting() as inner:
            z = x @ y
            float(z.sum())
        assert inner.counts == Counts(kernels=1, cublas=1, syncs=1, d2h=1)
        assert outer.counts.kernels == 2  # inside the block: what has happened so far
        x.reshape(4)  # a view: nothing launched
    assert outer.counts == Counts(kernels=2, cublas=1, syncs=1, d2h=1)
    x + 1  # after the block: its counts are frozen
    assert outer.counts == Counts(kernels=2, cublas=1, syncs=1, d2h=1)


def test_counts_launches_and_subtraction():
    counts = Counts(kernels=2, raw_launches=3, cublas=4, syncs=5, h2d=6, d2h=7, get_function=8)
    assert counts.launches() == 9
    assert counts - Counts(kernels=1, syncs=5) == Counts(
        kernels=1, raw_launches=3, cublas=4, h2d=6, d2h=7, get_function=8
    )


# --- random (cupy/random/_generator_api.pyx, _generator.py) -----------------------------


def test_default_rng_is_not_numpys_stream(cp):
    """CuPy's default_rng draws from XORWOW: a cuda run does not repeat a cpu run's numbers."""
    ours = cp.random.default_rng(0).random(8).get()
    assert not np.allclose(ours, np.random.default_rng(0).random(8))
    np.testing.assert_array_equal(ours, cp.random.default_rng(0).random(8).get())
    assert type(cp.random.default_rng(0)) is cp.random.Generator


@pytest.mark.parametrize("method", ["normal", "permutation", "choice", "shuffle"])
def test_generator_lacks_what_cupys_lacks(cp, method):
    assert method not in names.load()["cupy.random.Generator"]
    with pytest.raises(AttributeError):
        getattr(cp.random.default_rng(0), method)


# --- cuda (cupy/cuda/device.pyx, memory.pyx) --------------------------------------------


def test_one_device(cp):
    cuda = cp.cuda
    assert cuda.runtime.getDeviceCount() == 1
    with cuda.Device(0) as device:
        assert device.id == 0 and cuda.runtime.getDevice() == 0
    assert cuda.Device(0).use() == cuda.Device(0)
    with pytest.raises(cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        cuda.Device(1).use()
    with pytest.raises(cuda.runtime.CUDARuntimeError), cuda.Device(1):
        pass
    assert cuda.runtime.getDevice() == 0


def test_memory_pool_tracks_live_arrays(cp):
    """CuPy frees an array's memory when its last reference goes (memory.pyx): with the
    garbage collector off, nothing the stand-in does may hold arrays in reference cycles."""
    pool = cp.get_default_memory_pool()
    gc.collect()
    gc.disable()
    try:
        before = pool.used_bytes()
        a = cp.zeros(1 << 20, dtype=np.uint8)
        view = a[10:]
        assert pool.used_bytes() - before == 1 << 20  # a view allocates nothing
        del a
        assert pool.used_bytes() - before == 1 << 20  # the view keeps the buffer alive
        del view
        assert pool.used_bytes() == before
        a = cp.zeros(1 << 20, dtype=np.uint8)
        results = [a + 1, a.sum(), a[cp.array([1])], np.exp(a[:4]), a.reshape(2, -1)]
        assert pool.used_bytes() > before + (2 << 20)
        del a, results
        assert pool.used_bytes() == before
    finally:
        gc.enable()


def test_memory_hooks_see_each_allocation_and_free(cp):
    """cupy/cuda/memory_hook.pyx: inside `with hook:` the pool calls malloc_postprocess and
    free_postprocess with mem_size (gradflow bench's peak-memory hook reads it)."""

    class Hook(cp.cuda.memory_hook.MemoryHook):
        def __init__(self):
            self.events = []

        def malloc_postprocess(self, **kw):
            self.events.append(("malloc", kw["mem_size"]))

        def free_postprocess(self, **kw):
            self.events.append(("free", kw["mem_size"]))

    hook = Hook()
    with hook:
        x = cp.zeros(100, dtype=np.float32)
        del x
        gc.collect()
    assert hook.events == [("malloc", 400), ("free", 400)]
    cp.zeros(10)  # outside the block: not seen
    assert len(hook.events) == 2


def test_bincount_syncs_twice(cp):
    """cupy/_statistics/histogram.py: the sign check and the output length are host reads."""
    x = cp.asarray(np.array([0, 1, 1, 3]))
    with counting() as c:
        out = cp.bincount(x)
    assert c.counts.syncs == 2 and out.get().tolist() == [1, 2, 0, 1]


def test_a_batched_matmul_counts_its_copies_and_pointer_tables(cp):
    """cupy/_core/_routines_linalg.pyx: a non-contiguous operand is copied, a batched matmul
    builds pointer tables; a 2-D GEMM reads a transposed view in place."""
    a = cp.ones((4, 3), dtype=np.float32)
    with counting() as two_d:
        cp.matmul(a, a.T)
    assert (two_d.counts.cublas, two_d.counts.kernels) == (1, 0)
    b = cp.ones((2, 4, 3), dtype=np.float32)
    with counting() as batched:
        cp.matmul(b[:, :, :2], a[:2])  # a strided slice: one copy, plus three tables
    assert (batched.counts.cublas, batched.counts.kernels) == (1, 4)
