// The cuFFT path, after the FFT: power, sparse mel projection and scaling of the
// `total_frames × BINS` spectrum. One thread per output value, numbered in the output's own
// order so that writes are coalesced.

extern "C" __global__ void power_mel(const cplx* __restrict__ spectrum,
                                     const unsigned* __restrict__ mel_spans,
                                     const real* __restrict__ mel_weights,
                                     float* __restrict__ out,
                                     unsigned total_frames) {
    const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= (size_t)total_frames * N_MELS) {
        return;
    }
    const unsigned t = (unsigned)(gid % N_FRAMES);
    const unsigned m = (unsigned)((gid / N_FRAMES) % N_MELS);
    const unsigned segment = (unsigned)(gid / ((size_t)N_FRAMES * N_MELS));
    const cplx* row = spectrum + ((size_t)segment * N_FRAMES + t) * BINS;
    const unsigned lo = mel_spans[3 * m];
    const unsigned count = mel_spans[3 * m + 1];
    const unsigned at = mel_spans[3 * m + 2];
    real acc = (real)0;
    for (unsigned j = 0; j < count; ++j) {
        const cplx z = row[lo + j];
        acc += mel_weights[at + j] * power_of(z.x * z.x + z.y * z.y);
    }
    out[gid] = scaled(acc);
}
