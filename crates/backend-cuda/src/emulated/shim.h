// Just enough of CUDA for g++ to run melkit's kernels on a CPU, for the emulated device: a
// kernel with barriers runs each block with a few std::threads (at most 4; melkit's kernels
// stride by blockDim, so any count gives the same numbers) and __syncthreads is a barrier; a
// kernel without barriers runs every thread of every block in turn on one thread. Blocks run
// one after another, so one array serves as every block's shared memory.
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 0, y = 0, z = 0;
};
static thread_local dim3 threadIdx;
static thread_local dim3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static std::barrier<>* block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__

inline void __syncthreads() { block_barrier->arrive_and_wait(); }

inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) {
        r = (r << 1) | ((x >> i) & 1u);
    }
    return r;
}

using std::fmax;
using std::log10;
using std::pow;
using std::sqrt;

// Runs a kernel without barriers: every (block, thread) of the grid in turn.
inline void launch_serial(unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
    blockDim.x = threads;
    gridDim.x = blocks;
    for (unsigned b = 0; b < blocks; ++b) {
        blockIdx.x = b;
        for (unsigned t = 0; t < threads; ++t) {
            threadIdx.x = t;
            kernel();
        }
    }
}

// Runs a kernel with barriers: each block with min(threads, 4) std::threads.
inline void launch_blocks(unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
    const unsigned n = std::min(threads, 4u);
    blockDim.x = n;
    gridDim.x = blocks;
    std::barrier<> barrier(n);
    block_barrier = &barrier;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < n; ++t) {
        pool.emplace_back([&, t] {
            threadIdx.x = t;
            for (unsigned b = 0; b < blocks; ++b) {
                blockIdx.x = b;
                kernel();
                barrier.arrive_and_wait();  // the block is done before shared memory is reused
            }
        });
    }
    for (auto& th : pool) {
        th.join();
    }
    block_barrier = nullptr;
}
