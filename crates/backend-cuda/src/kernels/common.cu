// Shared by every melkit CUDA kernel: framing (from the host's table: librosa's centring and
// reflect padding), power, scaling and the output layout. The host prepends the configuration
// as #defines: REAL (float, or double for dB output), N (n_fft), LOG2N (0 when N is not a power
// of two), BINS (N/2 + 1), N_SHORT, N_FRAMES, N_MELS, SHORT_HOP, POWER_MODE (0: |X|^2, 1: |X|,
// 2: |X|^POWER), POWER, DB (1 for dB output), DB_FACTOR, DB_FLOOR, DB_OFFSET.

typedef REAL real;

// A complex value laid out as cuFFT's float2/double2.
struct cplx {
    real x;
    real y;
};

// Sample i of frame `frame` (frame = (long · N_SHORT + short) · N_FRAMES + t), unwindowed;
// zero in the padding. `long_starts` are the long segments' starts in `signal`.
__device__ __forceinline__ real sample_of(const float* __restrict__ signal,
                                          const unsigned* __restrict__ long_starts,
                                          const int* __restrict__ frame_index,
                                          unsigned frame, unsigned i) {
    const unsigned t = frame % N_FRAMES;
    const unsigned segment = frame / N_FRAMES;
    const int idx = frame_index[t * N + i];
    if (idx < 0) {
        return (real)0;
    }
    const size_t start = (size_t)long_starts[segment / N_SHORT] +
                         (size_t)(segment % N_SHORT) * SHORT_HOP + (size_t)idx;
    return (real)signal[start];
}

// |X|^power from the squared magnitude.
__device__ __forceinline__ real power_of(real squared) {
#if POWER_MODE == 0
    return squared;
#elif POWER_MODE == 1
    return sqrt(squared);
#else
    return pow(sqrt(squared), (real)POWER);
#endif
}

// The element-wise scaling of a mel value.
__device__ __forceinline__ float scaled(real x) {
#if DB
    return (float)((real)DB_FACTOR * log10(fmax(x, (real)DB_FLOOR)) - (real)DB_OFFSET);
#else
    return (float)x;
#endif
}

// Where mel bin m of frame `frame` goes in the [long, short, mel, frame] output.
__device__ __forceinline__ size_t out_index(unsigned frame, unsigned m) {
    const unsigned t = frame % N_FRAMES;
    const unsigned segment = frame / N_FRAMES;
    return ((size_t)segment * N_MELS + m) * N_FRAMES + t;
}

// The sparse mel projection of one power spectrum (`power[k]`, k < BINS): `mel_spans` holds,
// per mel bin, its first FFT bin, its number of bins and its offset into `mel_weights`.
__device__ __forceinline__ real mel_of(const real* power,
                                       const unsigned* __restrict__ mel_spans,
                                       const real* __restrict__ mel_weights, unsigned m) {
    const unsigned lo = mel_spans[3 * m];
    const unsigned count = mel_spans[3 * m + 1];
    const unsigned at = mel_spans[3 * m + 2];
    real acc = (real)0;
    for (unsigned j = 0; j < count; ++j) {
        acc += mel_weights[at + j] * power[lo + j];
    }
    return acc;
}
