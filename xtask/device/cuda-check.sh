#!/usr/bin/env bash
# The CUDA backend on a real GPU (issue 15's device run), from what xtask/device/build.sh put in
# target/device: conformance on both paths, the no-device and NVRTC tests, every golden case
# through the CLI, the throughput on torchaudio's anchor batches beside the anchor itself, and
# the stages of an end-to-end run of a native corpus (1000 × 10 s at 4096 Hz). Output in $OUT.
set -u
d=target/device
out=${OUT:-/tmp/out}
mkdir -p "$out"
# The CUDA libraries PyTorch's wheels bring (NVRTC, cuFFT), where the system has none.
libs=$(python3 - <<'PY'
import os
try:
    import nvidia
    for root in nvidia.__path__:
        for name in sorted(os.listdir(root)):
            lib = os.path.join(root, name, "lib")
            if os.path.isdir(lib):
                print(lib)
except ImportError:
    pass
PY
)
export LD_LIBRARY_PATH=$d/lib:$(echo $libs | tr ' ' ':'):${LD_LIBRARY_PATH:-}
export MELKIT_REQUIRE_CUDA=1 MELKIT_REQUIRE_NVRTC=1 MELKIT_GOLDEN_DIR=$d/golden MELKIT_BIN=$PWD/$d/melkit
export MELKIT_TUNE_PROFILE=/nonexistent
nvidia-smi -L
$d/melkit info | tee "$out/info.txt"
for t in conformance no_device nvrtc cuda; do
    echo "== $t"; timeout 240 "$d/$t" --test-threads 2 2>&1 | tail -25 | tee "$out/$t.txt"
done
echo "== throughput"; timeout 120 "$d/throughput" --ignored --nocapture 2>&1 | grep -E "seg/s|no device|Error" | tee "$out/throughput.txt"
echo "== torchaudio"; timeout 120 python3 "$d/anchors_gpu.py" --files 256,1024,4096 | tee "$out/anchor.txt"
echo "== end to end"
python3 - <<'PY'
import os, wave
import numpy as np
os.makedirs("/tmp/native", exist_ok=True)
rng = np.random.default_rng(7)
t = np.arange(40960) / 4096
for i in range(1000):
    y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 1365, 3))
    y = 0.5 * (y + 0.05 * rng.standard_normal(len(t)))
    with wave.open(f"/tmp/native/clip_{i:05d}.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(4096)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
PY
for backend in cuda cpu; do
    sync; rm -rf /tmp/mel-$backend
    $d/melkit run /tmp/native -o /tmp/mel-$backend --backend $backend --format npy 2>&1 | tee "$out/e2e-$backend.txt"
done
