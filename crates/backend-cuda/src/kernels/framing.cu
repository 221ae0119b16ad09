// The cuFFT path, before the FFT: every frame of the batch, windowed, `total_frames × N` reals
// laid out for a batched R2C (D2Z) transform. One thread per sample.

extern "C" __global__ void frame_window(const float* __restrict__ signal,
                                        const unsigned* __restrict__ long_starts,
                                        const int* __restrict__ frame_index,
                                        const real* __restrict__ window,
                                        real* __restrict__ frames,
                                        unsigned total_frames) {
    const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (size_t)total_frames * N) {
        return;
    }
    const unsigned frame = (unsigned)(gid / N);
    const unsigned i = (unsigned)(gid % N);
    frames[gid] = sample_of(signal, long_starts, frame_index, frame, i) * window[i];
}
