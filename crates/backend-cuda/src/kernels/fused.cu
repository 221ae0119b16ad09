// The fast path: one block computes two frames at once, from the signal to the scaled mel
// values, in shared memory: framing + window → one complex FFT of N points holding the two real
// frames (the first as the real part, the second as the imaginary part) → the two spectra
// separated → power → sparse mel → scaling. The signal is read once and the mel written once.
// A radix-2 FFT when N is a power of two (LOG2N > 0), a direct DFT otherwise.
// Shared memory: N complex values, then 2 · BINS powers (and N more complex values for the
// DFT), sized by the host.

__device__ __forceinline__ cplx cmul(cplx a, cplx b) {
    cplx r;
    r.x = a.x * b.x - a.y * b.y;
    r.y = a.x * b.y + a.y * b.x;
    return r;
}

extern "C" __global__ void fused(const float* __restrict__ signal,
                                 const unsigned* __restrict__ long_starts,
                                 const int* __restrict__ frame_index,
                                 const real* __restrict__ window,
                                 const cplx* __restrict__ twiddles,
                                 const unsigned* __restrict__ mel_spans,
                                 const real* __restrict__ mel_weights,
                                 float* __restrict__ out,
                                 unsigned total_frames) {
    extern __shared__ cplx shared[];
    cplx* z = shared;
#if LOG2N > 0
    real* power = (real*)(shared + N);
#else
    cplx* spectrum = shared + N;
    real* power = (real*)(shared + 2 * N);
#endif
    const unsigned pair = blockIdx.x;
    const unsigned fa = 2 * pair;
    const unsigned fb = fa + 1;
    if (fa >= total_frames) {
        return;  // the whole block, before any barrier
    }
    const bool has_b = fb < total_frames;

    for (unsigned i = threadIdx.x; i < N; i += blockDim.x) {
        const real w = window[i];
        cplx v;
        v.x = sample_of(signal, long_starts, frame_index, fa, i) * w;
        v.y = has_b ? sample_of(signal, long_starts, frame_index, fb, i) * w : (real)0;
#if LOG2N > 0
        z[__brev(i) >> (32 - LOG2N)] = v;
#else
        z[i] = v;
#endif
    }
    __syncthreads();

#if LOG2N > 0
    // Iterative radix-2 decimation in time, in place, input in bit-reversed order.
    for (unsigned s = 1; s <= LOG2N; ++s) {
        const unsigned half = 1u << (s - 1);
        for (unsigned j = threadIdx.x; j < N / 2; j += blockDim.x) {
            const unsigned k = j & (half - 1);
            const unsigned i0 = ((j >> (s - 1)) << s) + k;
            const unsigned i1 = i0 + half;
            const cplx v = cmul(z[i1], twiddles[k << (LOG2N - s)]);
            const cplx u = z[i0];
            z[i0].x = u.x + v.x;
            z[i0].y = u.y + v.y;
            z[i1].x = u.x - v.x;
            z[i1].y = u.y - v.y;
        }
        __syncthreads();
    }
    const cplx* Z = z;
#else
    // Direct DFT: Z[k] = Σ z[n] · exp(-2πi·nk/N), the twiddle index reduced mod N exactly.
    for (unsigned k = threadIdx.x; k < N; k += blockDim.x) {
        cplx acc;
        acc.x = (real)0;
        acc.y = (real)0;
        unsigned idx = 0;
        for (unsigned n = 0; n < N; ++n) {
            const cplx v = cmul(z[n], twiddles[idx]);
            acc.x += v.x;
            acc.y += v.y;
            idx += k;
            if (idx >= N) {
                idx -= N;
            }
        }
        spectrum[k] = acc;
    }
    __syncthreads();
    const cplx* Z = spectrum;
#endif

    // Separate the two real frames' spectra: A[k] = (Z[k] + conj Z[N-k]) / 2 and
    // B[k] = (Z[k] - conj Z[N-k]) / 2i.
    for (unsigned k = threadIdx.x; k < BINS; k += blockDim.x) {
        const cplx p = Z[k];
        const cplx q = Z[(N - k) % N];
        const real ar = (p.x + q.x) * (real)0.5;
        const real ai = (p.y - q.y) * (real)0.5;
        const real br = (p.y + q.y) * (real)0.5;
        const real bi = (q.x - p.x) * (real)0.5;
        power[k] = power_of(ar * ar + ai * ai);
        power[BINS + k] = power_of(br * br + bi * bi);
    }
    __syncthreads();

    for (unsigned j = threadIdx.x; j < 2 * N_MELS; j += blockDim.x) {
        const unsigned which = j / N_MELS;
        const unsigned m = j % N_MELS;
        if (which == 1 && !has_b) {
            continue;
        }
        const real mel = mel_of(power + which * BINS, mel_spans, mel_weights, m);
        out[out_index(which == 0 ? fa : fb, m)] = scaled(mel);
    }
}
