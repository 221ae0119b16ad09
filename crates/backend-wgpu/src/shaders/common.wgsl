// Framing + window, power, sparse mel projection and element-wise scaling, shared by the FFT
// and DFT entry points. The host prepends the constants N (n_fft), LOG2N, BINS (N/2 + 1) and
// WG (threads per workgroup). One workgroup computes one frame of one short segment.

struct Params {
    total_frames: u32,
    n_short: u32,
    n_frames: u32,
    n_mels: u32,
    short_hop: u32,
    groups_x: u32,
    // 0: |X|^2, 1: |X|, 2: |X|^power
    power_mode: u32,
    // 1: dB (factor * log10(max(x, floor)) - offset)
    db: u32,
    power: f32,
    factor: f32,
    floor: f32,
    offset: f32,
    // 1.0, unknown to the compiler: multiplying by it keeps the double-float error terms from
    // being simplified away (Mesa, for one, rewrites a - (a - b) as b in ordinary float code).
    one: f32,
    pad0: f32,
    pad1: f32,
    pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Every long segment of the batch, end to end.
@group(0) @binding(1) var<storage, read> signal: array<f32>;
// Where each long segment starts in `signal`.
@group(0) @binding(2) var<storage, read> long_starts: array<u32>;
// For frame t and sample i: the index in the short segment, or -1 for zero padding
// (librosa's centring and reflect padding, decided once on the host).
@group(0) @binding(3) var<storage, read> frame_index: array<i32>;
// The window, zero-padded to N, as f32 pairs (hi, lo) whose sum is the f64 window.
@group(0) @binding(4) var<storage, read> window: array<vec2<f32>>;
// exp(-2πik/N) for k in 0..N computed in f64, as (re hi, im hi, re lo, im lo).
@group(0) @binding(5) var<storage, read> twiddles: array<vec4<f32>>;
// Per mel bin: first FFT bin, number of bins, offset into mel_weights.
@group(0) @binding(6) var<storage, read> mel_spans: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> mel_weights: array<f32>;
// [long, short, mel, frame]
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

// Which frame a workgroup computes: (long, short, frame), or none past the end.
struct Frame {
    long: u32,
    short: u32,
    t: u32,
    valid: bool,
}

fn frame_of(wid: vec3<u32>) -> Frame {
    let id = wid.y * p.groups_x + wid.x;
    let t = id % p.n_frames;
    let rest = id / p.n_frames;
    return Frame(rest / p.n_short, rest % p.n_short, t, id < p.total_frames);
}

// Sample i of the frame, windowed (framing + window).
fn framed(f: Frame, i: u32) -> f32 {
    let idx = frame_index[f.t * N + i];
    if (idx < 0) {
        return 0.0;
    }
    let base = long_starts[f.long] + f.short * p.short_hop;
    return signal[base + u32(idx)] * window[i].x;
}

// The raw sample i of the frame (0 in the padding), for the double-float kernels.
fn sample(f: Frame, i: u32) -> f32 {
    let idx = frame_index[f.t * N + i];
    if (idx < 0) {
        return 0.0;
    }
    return signal[long_starts[f.long] + f.short * p.short_hop + u32(idx)];
}

// |X|^power from the squared magnitude.
fn power_of(sq: f32) -> f32 {
    if (p.power_mode == 0u) {
        return sq;
    }
    if (p.power_mode == 1u) {
        return sqrt(sq);
    }
    return pow(sqrt(sq), p.power);
}

fn scaled(x: f32) -> f32 {
    if (p.db == 0u) {
        return x;
    }
    return p.factor * log2(max(x, p.floor)) * 0.30102999566398120 - p.offset;
}

fn out_index(f: Frame, m: u32) -> u32 {
    return ((f.long * p.n_short + f.short) * p.n_mels + m) * p.n_frames + f.t;
}

// The sparse mel projection of the frame's power spectrum (`power_at`, defined by each kernel),
// scaled and written to the output; thread `lid` of the workgroup takes every WG-th mel bin.
fn write_mels(f: Frame, lid: u32) {
    for (var m = lid; m < p.n_mels; m += WG) {
        let span = mel_spans[m];
        var acc = 0.0;
        for (var j = 0u; j < span.y; j++) {
            acc += mel_weights[span.z + j] * power_at(span.x + j);
        }
        out[out_index(f, m)] = scaled(acc);
    }
}
