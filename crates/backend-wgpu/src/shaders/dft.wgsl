// Window → DFT → power → mel → scale in one dispatch, for an N that is not a power of two
// (400, say): O(N²) per frame, the frame and its spectrum in workgroup memory.

var<workgroup> frame: array<f32, N>;
var<workgroup> spectrum: array<f32, BINS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let f = frame_of(wid);
    if (!f.valid) {
        return;
    }
    for (var i = lid; i < N; i += WG) {
        frame[i] = framed(f, i);
    }
    workgroupBarrier();
    for (var k = lid; k < BINS; k += WG) {
        var acc = vec2<f32>(0.0, 0.0);
        var at = 0u;
        for (var n = 0u; n < N; n++) {
            acc += frame[n] * twiddles[at].xy;
            at += k;
            if (at >= N) {
                at -= N;
            }
        }
        spectrum[k] = power_of(acc.x * acc.x + acc.y * acc.y);
    }
    workgroupBarrier();
    write_mels(f, lid);
}

// |X[bin]|^power of the frame, once the transform is done (read by write_mels).
fn power_at(bin: u32) -> f32 {
    return spectrum[bin];
}
