// The fused DFT kernel of dft.wgsl in double-float arithmetic (for dB output).

var<workgroup> frame: array<vec2<f32>, N>;
var<workgroup> spectrum: array<f32, BINS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let f = frame_of(wid);
    if (!f.valid) {
        return;
    }
    for (var i = lid; i < N; i += WG) {
        frame[i] = framed_df(f, i);
    }
    workgroupBarrier();
    for (var k = lid; k < BINS; k += WG) {
        var acc = vec4<f32>(0.0, 0.0, 0.0, 0.0);
        var at = 0u;
        for (var n = 0u; n < N; n++) {
            acc = dc_add(acc, dc_mul(vec4<f32>(frame[n], 0.0, 0.0), twiddles[at]));
            at += k;
            if (at >= N) {
                at -= N;
            }
        }
        spectrum[k] = power_of(df_norm(acc));
    }
    workgroupBarrier();
    write_mels(f, lid);
}

// |X[bin]|^power of the frame, once the transform is done (read by write_mels).
fn power_at(bin: u32) -> f32 {
    return spectrum[bin];
}
