#!/usr/bin/env bash
# Builds what xtask/device/cuda-check.sh runs on a GPU machine (no Rust, no libhdf5 there) into
# target/device: the release test binaries of the CUDA backend and of the CLI's CUDA tests, the
# melkit binary, libhdf5 (the CLI tests link it), the golden cases and the GPU anchor script.
# Then: run(command="bash xtask/device/cuda-check.sh", carry=["target/device"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/device
rm -rf "$out" && mkdir -p "$out/lib"
build() { cargo test --release --no-run --message-format=json "$@" 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]:
        print(m["target"]["name"], m["executable"])'; }
{ build -p melkit-backend-cuda; build -p melkit-cli --test cuda; } | while read -r name exe; do
    cp "$exe" "$out/$name"
done
cargo build --release -p melkit-cli
cp target/release/melkit "$out/melkit"
strip "$out"/* 2>/dev/null || true
cp -L /usr/lib/x86_64-linux-gnu/libhdf5_serial.so.* /usr/lib/x86_64-linux-gnu/libsz.so.* \
    /usr/lib/x86_64-linux-gnu/libaec.so.* "$out/lib/" 2>/dev/null || true
ldd "$out/cuda" | awk '/not found/ {print "missing: " $1}'
cp -r ../shared/golden "$out/golden"
cp ../shared/bench/anchors_gpu.py "$out/"
du -sh "$out"
