// Double-float arithmetic: a value is the unevaluated sum hi + lo of two f32 (about 48 bits of
// mantissa), with Dekker's error-free transforms. Every intermediate whose rounding matters
// goes through `opaque`, an identity the compiler cannot see through: without it, a driver's
// compiler may cancel (a + b) - a to b, or fuse a product into the next subtraction, and either
// loses the error terms (on lavapipe they were lost until this was done). Used when the output
// is in dB, where bins far below a frame's peak must be right.

// x, unchanged: its bits xor a zero the compiler cannot know (the padding word of the first
// mel span, in a storage buffer).
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ mel_spans[0].w);
}

fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    let v = opaque(s - a);
    let w = opaque(s - v);
    return vec2<f32>(s, (a - w) + (b - v));
}

fn quick_two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    let v = opaque(s - a);
    return vec2<f32>(s, b - v);
}

fn split(a: f32) -> vec2<f32> {
    let c = opaque(4097.0 * a);
    let d = opaque(c - a);
    let hi = opaque(c - d);
    return vec2<f32>(hi, a - hi);
}

fn two_prod(a: f32, b: f32) -> vec2<f32> {
    let q = opaque(a * b);
    let x = split(a);
    let y = split(b);
    let e = ((x.x * y.x - q) + x.x * y.y + x.y * y.x) + x.y * y.y;
    return vec2<f32>(q, e);
}

fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = two_sum(a.x, b.x);
    let t = two_sum(a.y, b.y);
    let u = quick_two_sum(s.x, s.y + t.x);
    return quick_two_sum(u.x, u.y + t.y);
}

fn df_neg(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(-a.x, -a.y);
}

fn df_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let p = two_prod(a.x, b.x);
    return quick_two_sum(p.x, p.y + (a.x * b.y + a.y * b.x));
}

// A complex double-float (re hi, re lo, im hi, im lo) times a twiddle (re hi, im hi, re lo, im lo).
fn dc_mul(x: vec4<f32>, w: vec4<f32>) -> vec4<f32> {
    let wr = vec2<f32>(w.x, w.z);
    let wi = vec2<f32>(w.y, w.w);
    let xr = x.xy;
    let xi = x.zw;
    let re = df_add(df_mul(wr, xr), df_neg(df_mul(wi, xi)));
    let im = df_add(df_mul(wr, xi), df_mul(wi, xr));
    return vec4<f32>(re, im);
}

fn dc_add(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(df_add(a.xy, b.xy), df_add(a.zw, b.zw));
}

fn dc_sub(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(df_add(a.xy, df_neg(b.xy)), df_add(a.zw, df_neg(b.zw)));
}

// Sample i of the frame times the window, exactly enough: x·(w hi + w lo).
fn framed_df(f: Frame, i: u32) -> vec2<f32> {
    let x = sample(f, i);
    let w = window[i];
    let p = two_prod(x, w.x);
    return quick_two_sum(p.x, p.y + x * w.y);
}

// |X|² of a complex double-float, rounded to f32 at the end.
fn df_norm(x: vec4<f32>) -> f32 {
    let s = df_add(df_mul(x.xy, x.xy), df_mul(x.zw, x.zw));
    return s.x + s.y;
}
