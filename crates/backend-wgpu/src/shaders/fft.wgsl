// Window → radix-2 FFT in workgroup memory → power → mel → scale, in one dispatch: a frame's
// spectrum never leaves the workgroup. For N a power of two.

var<workgroup> data: array<vec2<f32>, N>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let f = frame_of(wid);
    if (!f.valid) {
        return;
    }
    // Load in bit-reversed order for an in-place decimation-in-time FFT.
    for (var i = lid; i < N; i += WG) {
        data[reverseBits(i) >> (32u - LOG2N)] = vec2<f32>(framed(f, i), 0.0);
    }
    workgroupBarrier();
    for (var s = 0u; s < LOG2N; s++) {
        let half = 1u << s;
        let stride = N >> (s + 1u);
        for (var b = lid; b < N / 2u; b += WG) {
            let k = b % half;
            let i = (b / half) * 2u * half + k;
            let j = i + half;
            let t = cmul(twiddles[k * stride].xy, data[j]);
            let u = data[i];
            data[i] = u + t;
            data[j] = u - t;
        }
        workgroupBarrier();
    }
    for (var k = lid; k < BINS; k += WG) {
        let x = data[k];
        data[k].x = power_of(x.x * x.x + x.y * x.y);
    }
    workgroupBarrier();
    write_mels(f, lid);
}

// |X[bin]|^power of the frame, once the transform is done (read by write_mels).
fn power_at(bin: u32) -> f32 {
    return data[bin].x;
}
