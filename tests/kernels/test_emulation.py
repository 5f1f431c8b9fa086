"""The CPU emulation of CUDA itself: barriers, per-block shared memory, indices, the cache."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradflow.testing import emulation

PROBES = r"""
typedef float scalar_t;
#define TILE 16

// C[M, N] = A[M, K] @ B[K, N], the textbook shared-memory tiling.
extern "C" __global__ void tiled_matmul(const float* a, const float* b, float* c,
                                        long long M, long long N, long long K) {
  __shared__ float as[TILE][TILE];
  __shared__ float bs[TILE][TILE];
  const long long row = (long long)blockIdx.y * TILE + threadIdx.y;
  const long long col = (long long)blockIdx.x * TILE + threadIdx.x;
  float acc = 0.0f;
  for (long long k0 = 0; k0 < K; k0 += TILE) {
    const long long ak = k0 + threadIdx.x, bk = k0 + threadIdx.y;
    as[threadIdx.y][threadIdx.x] = (row < M && ak < K) ? a[row * K + ak] : 0.0f;
    bs[threadIdx.y][threadIdx.x] = (bk < K && col < N) ? b[bk * N + col] : 0.0f;
    __syncthreads();
    for (int j = 0; j < TILE; ++j) acc += as[threadIdx.y][j] * bs[j][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) c[row * N + col] = acc;
}

// Every thread stores a block-unique tag, waits, then reads its neighbour's slot: a missing
// barrier or storage shared across blocks shows up as another block's (or a stale) tag.
extern "C" __global__ void neighbour_tags(long long* out, int rounds) {
  __shared__ long long tags[256];
  const unsigned t = threadIdx.x;
  for (int r = 0; r < rounds; ++r) {
    tags[t] = (long long)blockIdx.x * 100000 + r * 1000 + t;
    __syncthreads();
    out[((long long)blockIdx.x * rounds + r) * blockDim.x + t] = tags[(t + 1) % blockDim.x];
    __syncthreads();
  }
}

// Adds 1 to every element through a grid-stride loop: each element must end at exactly 1.
extern "C" __global__ void grid_stride_increment(int* x, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x)
    x[i] += 1;
}

// Records every thread's 3-D coordinates.
extern "C" __global__ void coordinates(int* out) {
  const long long block = ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x
                          + blockIdx.x;
  const long long thread = ((long long)threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x
                           + threadIdx.x;
  int* o = out + (block * blockDim.x * blockDim.y * blockDim.z + thread) * 6;
  o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
  o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
}

extern "C" __global__ void count_threads(unsigned long long* counter, double scale) {
  atomicAdd(counter, (unsigned long long)scale);
}
"""


@pytest.fixture(scope="module")
def probes():
    reason = emulation.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return emulation.compile_emulation(PROBES, ("-std=c++17",))


@pytest.mark.parametrize("shape", [(1, 1, 1), (16, 16, 16), (37, 29, 45)])
def test_tiled_shared_memory_matmul_matches_numpy(probes, shape):
    m, n, k = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, dtype=np.float32)
    grid = (-(-n // 16), -(-m // 16), 1)
    probes.launch(
        "tiled_matmul", grid, (16, 16, 1), (a, b, c, np.int64(m), np.int64(n), np.int64(k))
    )
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


def test_shared_memory_is_per_block_and_barriers_hold(probes):
    blocks, threads, rounds = 5, 256, 3
    out = np.zeros(blocks * rounds * threads, dtype=np.int64)
    probes.launch("neighbour_tags", (blocks, 1, 1), (threads, 1, 1), (out, np.int32(rounds)))
    b, r, t = np.meshgrid(np.arange(blocks), np.arange(rounds), np.arange(threads), indexing="ij")
    expected = b * 100000 + r * 1000 + (t + 1) % threads
    np.testing.assert_array_equal(out, expected.ravel())


@pytest.mark.parametrize("n", [1, 255, 10_000])
def test_grid_stride_loop_covers_n_beyond_grid_times_block(probes, n):
    x = np.zeros(n, dtype=np.int32)
    probes.launch("grid_stride_increment", (3, 1, 1), (64, 1, 1), (x, np.int64(n)))
    np.testing.assert_array_equal(x, np.ones(n, dtype=np.int32))


def test_thread_and_block_indices_in_three_dimensions(probes):
    grid, block = (2, 3, 2), (4, 2, 3)
    total = np.prod(grid) * np.prod(block)
    out = np.full(total * 6, -1, dtype=np.int32)
    probes.launch("coordinates", grid, block, (out,))
    got = out.reshape(grid[2], grid[1], grid[0], block[2], block[1], block[0], 6)
    bz, by, bx, tz, ty, tx = np.indices(got.shape[:-1])
    np.testing.assert_array_equal(got, np.stack([tx, ty, tz, bx, by, bz], axis=-1))


def test_atomic_add_counts_every_thread(probes):
    counter = np.zeros(1, dtype=np.uint64)
    probes.launch("count_threads", (3, 1, 1), (100, 1, 1), (counter, np.float64(2.0)))
    assert counter[0] == 600


def test_launch_checks_argument_types(probes):
    x = np.zeros(4, dtype=np.int32)
    with pytest.raises(
        TypeError,
        match=r"grid_stride_increment argument 1 \(long long\): "
        r"expected a numpy.int64 scalar, got 4",
    ):
        probes.launch("grid_stride_increment", (1, 1, 1), (32, 1, 1), (x, 4))
    with pytest.raises(TypeError, match=r"argument 0 \(int \*\): expected a int32 array or None"):
        probes.launch(
            "grid_stride_increment", (1, 1, 1), (32, 1, 1), (x.astype(np.int64), np.int64(4))
        )
    with pytest.raises(TypeError, match=r"grid_stride_increment takes 2 arguments, got 1"):
        probes.launch("grid_stride_increment", (1, 1, 1), (32, 1, 1), (x,))
    with pytest.raises(ValueError, match=r"no kernel 'missing'; this module has \["):
        probes.launch("missing", (1, 1, 1), (32, 1, 1), ())


def test_compiled_library_is_cached_on_disk_and_in_memory(probes, tmp_path, monkeypatch):
    assert emulation.compile_emulation(PROBES, ("-std=c++17",)) is probes
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path))
    source = 'extern "C" __global__ void nothing(int* x) {}'
    module = emulation.compile_emulation(source, ("-std=c++17",))
    assert module.signatures == {"nothing": ["int *"]}
    built = sorted(p.suffix for p in (tmp_path / "emulation").iterdir())
    assert built == [".json", ".so"]  # and no temporary files left behind


def test_concurrent_builds_of_one_key_both_succeed(tmp_path):
    if emulation.unavailable_reason():
        pytest.skip(emulation.unavailable_reason())
    script = textwrap.dedent(
        """
        import numpy as np, sys
        from gradflow.testing import emulation
        src = 'extern "C" __global__ void fill(int* x) { x[threadIdx.x] = 7; } // ' + sys.argv[1]
        m = emulation.compile_emulation(src, ("-std=c++17",))
        x = np.zeros(8, dtype=np.int32)
        m.launch("fill", (1, 1, 1), (8, 1, 1), (x,))
        assert (x == 7).all()
        """
    )
    env = {**os.environ, "GRADFLOW_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env) for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(list((tmp_path / "emulation").glob("*.so"))) == 1


def test_unavailable_reason_names_the_compiler(monkeypatch):
    monkeypatch.setattr(emulation, "COMPILER", "no-such-compiler-gf")
    assert "no-such-compiler-gf" in emulation.unavailable_reason()
    with pytest.raises(RuntimeError, match="no-such-compiler-gf"):
        emulation.compile_emulation("", ())


def test_kernels_that_never_wait_are_found_through_their_calls():
    barrier_free_kernels = emulation.barrier_free_kernels
    source = """
    __device__ float reduce(float v) { __shared__ float buf[32]; buf[0] = v; __syncthreads();
                                       return buf[0]; }
    __device__ float twice(float v) { return reduce(v) * 2; }
    __device__ float square(float v) { return v * v; }
    extern "C" __global__ void waits(float* x) { x[threadIdx.x] = twice(x[0]); }
    extern "C" __global__ void free_running(float* x) { x[threadIdx.x] = square(x[0]); }
    extern "C" __global__ void own_barrier(float* x) { if (x) { __syncthreads(); } }
    """
    kernels = ["waits", "free_running", "own_barrier"]
    assert barrier_free_kernels(source, kernels) == {"free_running"}
    # a barrier outside any function body found (e.g. in a struct): nothing runs serially
    odd = source + "struct S { void f() { __syncthreads(); } };"
    assert barrier_free_kernels(odd, kernels) == set()


@pytest.mark.parametrize("family", ["fused", "matmul"])
def test_the_kernels_with_barriers_keep_their_thread_teams(family):
    """bias_act_bwd, softmax_xent_fwd (block reductions) and act_matmul_bwd (shared tiles)
    wait for their block; the rest of fused runs as a loop."""
    if emulation.unavailable_reason():
        pytest.skip(emulation.unavailable_reason())
    module = emulation.emulated_module(family, np.float32)
    teams = set(module.signatures) - module.serial
    expected = {"fused": {"bias_act_bwd", "softmax_xent_fwd"}, "matmul": {"act_matmul_bwd"}}
    assert teams == expected[family]
