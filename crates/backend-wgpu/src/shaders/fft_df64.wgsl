// The fused FFT kernel of fft.wgsl in double-float arithmetic (for dB output).

var<workgroup> data: array<vec4<f32>, N>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let f = frame_of(wid);
    if (!f.valid) {
        return;
    }
    for (var i = lid; i < N; i += WG) {
        data[reverseBits(i) >> (32u - LOG2N)] = vec4<f32>(framed_df(f, i), 0.0, 0.0);
    }
    workgroupBarrier();
    for (var s = 0u; s < LOG2N; s++) {
        let half = 1u << s;
        let stride = N >> (s + 1u);
        for (var b = lid; b < N / 2u; b += WG) {
            let k = b % half;
            let i = (b / half) * 2u * half + k;
            let j = i + half;
            let t = dc_mul(data[j], twiddles[k * stride]);
            let u = data[i];
            data[i] = dc_add(u, t);
            data[j] = dc_sub(u, t);
        }
        workgroupBarrier();
    }
    for (var k = lid; k < BINS; k += WG) {
        data[k].x = power_of(df_norm(data[k]));
    }
    workgroupBarrier();
    write_mels(f, lid);
}

// |X[bin]|^power of the frame, once the transform is done (read by write_mels).
fn power_at(bin: u32) -> f32 {
    return data[bin].x;
}
