// The emulated device's entry points: one per kernel, called by the Rust side with a launch's
// grid and the kernel's arguments. Each returns null, or why the launch is refused.

#include <mutex>

#define EXPORT extern "C" __attribute__((visibility("default")))

cplx shared[1 << 15];  // what the kernels declare `extern __shared__` (hidden: built with
                       // -fvisibility=hidden, so each configuration's library has its own)
static std::mutex launching;  // the shim's grid state is global: one launch at a time

static const char* check(unsigned blocks, unsigned threads, unsigned shared_bytes) {
    if (blocks == 0 || threads == 0 || threads > 1024) {
        return "invalid launch configuration";
    }
    if (shared_bytes > sizeof(shared)) {
        return "too many resources requested for launch (shared memory)";
    }
    return nullptr;
}

EXPORT const char* melkit_fused(unsigned blocks, unsigned threads, unsigned shared_bytes,
                                    const float* signal, const unsigned* starts,
                                    const int* frame_index, const real* window,
                                    const cplx* twiddles, const unsigned* spans,
                                    const real* weights, float* out, unsigned frames) {
    if (const char* e = check(blocks, threads, shared_bytes)) {
        return e;
    }
    std::lock_guard<std::mutex> lock(launching);
    launch_blocks(blocks, threads, [&] {
        fused(signal, starts, frame_index, window, twiddles, spans, weights, out, frames);
    });
    return nullptr;
}

EXPORT const char* melkit_frame_window(unsigned blocks, unsigned threads,
                                           const float* signal, const unsigned* starts,
                                           const int* frame_index, const real* window,
                                           real* framed, unsigned frames) {
    if (const char* e = check(blocks, threads, 0)) {
        return e;
    }
    std::lock_guard<std::mutex> lock(launching);
    launch_serial(blocks, threads,
                  [&] { frame_window(signal, starts, frame_index, window, framed, frames); });
    return nullptr;
}

EXPORT const char* melkit_power_mel(unsigned blocks, unsigned threads, const cplx* spectra,
                                        const unsigned* spans, const real* weights, float* out,
                                        unsigned frames) {
    if (const char* e = check(blocks, threads, 0)) {
        return e;
    }
    std::lock_guard<std::mutex> lock(launching);
    launch_serial(blocks, threads, [&] { power_mel(spectra, spans, weights, out, frames); });
    return nullptr;
}
