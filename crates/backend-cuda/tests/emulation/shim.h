// Just enough of CUDA for g++ to run melkit's kernels on a CPU, for tests on machines with no
// GPU: each thread of a block is a std::thread, __syncthreads is a barrier, blocks run one after
// another (so one array serves as every block's shared memory).
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

// Runs `kernel` on a grid of `blocks` blocks of `threads` threads.
inline void launch(unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
    blockDim.x = threads;
    gridDim.x = blocks;
    if (threads == 1) {  // a kernel with no barrier: one thread walks the grid
        threadIdx.x = 0;
        for (unsigned b = 0; b < blocks; ++b) {
            blockIdx.x = b;
            kernel();
        }
        return;
    }
    std::barrier<> barrier(threads);
    block_barrier = &barrier;
    blockDim.x = threads;
    gridDim.x = blocks;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
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
}
