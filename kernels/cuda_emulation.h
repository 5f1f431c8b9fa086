// cuda_emulation.h: compiles the CUDA kernel sources in kernels/*.cu as plain C++ for the CPU.
//
// Use: g++ -O2 -fopenmp -shared -fPIC -std=c++17 -include kernels/cuda_emulation.h -x c++ k.cu
// (gradflow/testing/emulation.py does this and appends one GF_EMU_EXPORT(name) line per kernel).
//
// How it works
// - __global__/__device__/__host__ vanish; __forceinline__ becomes inline.
// - A launch runs the grid's blocks one after another. Each block runs as one OpenMP parallel
//   region of exactly blockDim.x*y*z threads; thread t gets threadIdx = (t % bx, t / bx % by,
//   t / (bx*by)). threadIdx/blockIdx/blockDim/gridDim are thread_local, set in each thread.
//   A kernel that never waits (no __syncthreads or __shared__ in it or what it calls; the
//   Python side finds these and sets cfg[6]) runs each block's threads as a loop instead.
// - __syncthreads() is `#pragma omp barrier` (an orphaned barrier binds to the block's region).
// - __shared__ is `static`: one object per kernel, shared by every OpenMP thread. Since blocks
//   run one at a time and launches are serialized by a mutex, that object is exactly the
//   running block's shared memory. Fixed-size shared arrays only (no `extern __shared__`).
// - float4 and double2 are 16-byte aligned structs with CUDA's members (.x .y .z .w / .x .y),
//   enough for common.cuh's vector loads; make_float4() and the other vector types are not
//   defined.
// - atomicAdd is an OpenMP atomic; warp intrinsics (__shfl_*) are not emulated: kernels
//   reduce through shared memory instead.
// - GF_EMU_EXPORT(name) defines `extern "C" int gf_launch_<name>(const unsigned* cfg,
//   void** args)`: cfg = {grid.x, grid.y, grid.z, block.x, block.y, block.z, serial} and args[i]
//   points at the value of kernel argument i, as in cuLaunchKernel's kernelParams. It returns
//   0, or 1 when OpenMP could not give a block all of its threads.
// Rules for emulated kernels: no early `return` before a __syncthreads (a missing thread
// deadlocks the barrier, as it is undefined behaviour on a GPU), no dynamic shared memory.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstddef>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>

// The CUDA math API overloads exp/log/tanh/... for float in device code; bring <cmath>'s
// float overloads into the global namespace so `exp(x)` picks the same precision here.
using std::abs;
using std::ceil;
using std::erf;
using std::exp;
using std::expm1;
using std::floor;
using std::fmax;
using std::fmin;
using std::isinf;
using std::isnan;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 {
  unsigned x, y, z;
};

// CUDA's vector_types.h gives these the same members and 16-byte alignment.
struct alignas(16) float4 {
  float x, y, z, w;
};

struct alignas(16) double2 {
  double x, y;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace gf_emu {
inline thread_local uint3 thread_idx{0, 0, 0};
inline thread_local uint3 block_idx{0, 0, 0};
inline thread_local dim3 block_dim;
inline thread_local dim3 grid_dim;

inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

// Runs `body` once per emulated CUDA thread of the grid; returns 0 on success. With `serial`
// (a kernel that never waits for another thread: no __syncthreads, no __shared__, as
// gradflow/testing/emulation.py finds), each block's threads run one after another on the
// calling thread: the same results, without a team of blockDim OS threads per block.
template <class Body>
int launch(dim3 grid, dim3 block, bool serial, Body&& body) {
  std::lock_guard<std::mutex> lock(launch_mutex());
  const int nthreads = static_cast<int>(block.x * block.y * block.z);
  int short_team = 0;
  omp_set_dynamic(0);  // a block must get all of its threads, or the barriers deadlock
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        if (serial) {
          block_idx = {bx, by, bz};
          block_dim = block;
          grid_dim = grid;
          for (unsigned t = 0; t < static_cast<unsigned>(nthreads); ++t) {
            thread_idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
            body();
          }
          continue;
        }
#pragma omp parallel num_threads(nthreads)
        {
          if (omp_get_num_threads() != nthreads) {
#pragma omp atomic write
            short_team = 1;
          } else {
            const unsigned t = static_cast<unsigned>(omp_get_thread_num());
            thread_idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
            block_idx = {bx, by, bz};
            block_dim = block;
            grid_dim = grid;
            body();
          }
        }
        if (short_team) return 1;
      }
  return 0;
}

// Calls kernel(args...) with each argument read from args[i] (cuLaunchKernel's convention).
template <class... Params, std::size_t... I>
void call_unpacked(void (*kernel)(Params...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Params>>*>(args[I])...);
}

template <class... Params>
int launch_kernel(void (*kernel)(Params...), const unsigned* cfg, void** args) {
  return launch(dim3(cfg[0], cfg[1], cfg[2]), dim3(cfg[3], cfg[4], cfg[5]), cfg[6] != 0, [&] {
    call_unpacked(kernel, args, std::index_sequence_for<Params...>{});
  });
}
}  // namespace gf_emu

#define threadIdx (gf_emu::thread_idx)
#define blockIdx (gf_emu::block_idx)
#define blockDim (gf_emu::block_dim)
#define gridDim (gf_emu::grid_dim)

inline void __syncthreads() {
#pragma omp barrier
}

template <class T>
inline T atomicAdd(T* address, T value) {
  T old;
#pragma omp atomic capture
  {
    old = *address;
    *address += value;
  }
  return old;
}

#define GF_EMU_EXPORT(name)                                                   \
  extern "C" int gf_launch_##name(const unsigned* cfg, void** args) {         \
    return gf_emu::launch_kernel(&name, cfg, args);                           \
  }
