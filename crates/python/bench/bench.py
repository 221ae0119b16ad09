#!/usr/bin/env python3
"""melkit's Python benchmarks, side by side in one run (ratios are what to compare):
- per-call overhead: a Python `process_array` call against the time melkit spent inside it;
- two Python threads, a pipeline each, against one thread doing the same calls;
- `AudioDataset` + `DataLoader(num_workers=2)` against a librosa dataset doing the same work
  (warm passes: workers started, librosa's JIT compiled);
- `StackedDataset` with 0 and 2 workers, items/s on a warm second pass;
- the streaming latency, from a long segment's last sample to its tensor.
usage: python bench.py [--files 200] [--melkit-bin PATH]   (needs torch, h5py, librosa)"""
import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
import wave

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import melkit
from melkit.torch import AudioDataset, StackedDataset


def corpus(folder, files):
    rng = np.random.default_rng(7)
    t = np.arange(40960) / 4096
    paths = []
    for i in range(files):
        y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 1365, 3))
        y = 0.5 * (y + 0.05 * rng.standard_normal(len(t)))
        path = os.path.join(folder, f"clip_{i:05d}.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(4096)
            w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
        paths.append(path)
    return paths


class LibrosaDataset(Dataset):
    """The same tensor from librosa: load, segment, one melspectrogram call per file on the
    stacked short segments (librosa's vectorised form)."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import librosa
        y, _ = librosa.load(self.paths[i], sr=4096)
        y = np.pad(y, (0, max(0, 40960 - len(y))))[:40960]
        longs = np.stack([y[k * 1024:(k + 1) * 1024] for k in range(40)])
        shorts = np.stack([longs[:, 0:512], longs[:, 512:1024]], axis=1).reshape(80, 512)
        mel = librosa.feature.melspectrogram(y=shorts, sr=4096, n_fft=256, hop_length=32, n_mels=64,
                                             center=True, pad_mode="constant")
        return torch.from_numpy(mel.reshape(40, 2, 64, 17).astype(np.float32))


def epoch(dataset, workers, batch=8):
    """Items/s of a warm pass (the workers started, imports and JIT compilation done)."""
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, persistent_workers=workers > 0)
    for _ in loader:
        pass
    started = time.perf_counter()
    n = sum(len(x) for x in loader)
    return n / (time.perf_counter() - started)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--melkit-bin", default=os.environ.get("MELKIT_BIN") or shutil.which("melkit"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix="melkit-pybench-")
    os.makedirs(os.path.join(work, "audio"))
    paths = corpus(os.path.join(work, "audio"), a.files)
    config = melkit.PipelineConfig(use_gpu=False, max_workers=1)

    # Per-call overhead: 0.25 s signals (one long segment), many calls.
    pipeline = melkit.AudioPipeline(config)
    x = np.random.default_rng(0).standard_normal(1024).astype(np.float32)
    for _ in range(200):
        pipeline.process_array(x, 4096)
    calls, inside = 3000, 0.0
    started = time.perf_counter()
    for _ in range(calls):
        inside += pipeline.process_array(x, 4096)["processing_stats"]["total_time"]
    wall = (time.perf_counter() - started) / calls
    print(f"per call: {wall * 1e6:.1f} us from Python, {inside / calls * 1e6:.1f} us inside melkit: "
          f"overhead {(wall - inside / calls) * 1e6:.1f} us")

    # Streaming latency: a long segment's last sample pushed → its tensor back (4096 Hz in,
    # no resampling), the default configuration with the signal kept whole.
    full = melkit.AudioPipeline(melkit.PipelineConfig(use_gpu=False, max_workers=1, sample_length="full"))
    streamer = full.streamer(4096)
    hop = np.random.default_rng(2).standard_normal(1024).astype(np.float32)
    latencies = []
    for _ in range(2000):
        started = time.perf_counter()
        got = streamer.push(hop)
        latencies.append(time.perf_counter() - started)
        assert got.shape[0] == 1
    latencies = np.array(latencies[100:]) * 1e3
    print(f"streaming latency: median {np.median(latencies):.3f} ms, 99th percentile "
          f"{np.percentile(latencies, 99):.3f} ms")

    # Two threads against one, a pipeline each, 10 s signals.
    y = np.random.default_rng(1).standard_normal(40960).astype(np.float32)
    pipes = [melkit.AudioPipeline(config) for _ in range(2)]
    n = 200

    def run(p, k):
        for _ in range(k):
            p.process_array(y, 4096)

    started = time.perf_counter()
    run(pipes[0], 2 * n)
    one = time.perf_counter() - started
    threads = [threading.Thread(target=run, args=(p, n)) for p in pipes]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = time.perf_counter() - started
    print(f"threads: one {2 * n / one:.0f} calls/s, two {2 * n / two:.0f} calls/s: {one / two:.2f}x")

    # Datasets with 2 DataLoader workers.
    audio = epoch(AudioDataset(paths, melkit.PipelineConfig(use_gpu=False)), 2)
    try:
        librosa_rate = epoch(LibrosaDataset(paths[: max(20, a.files // 5)]), 2)
        print(f"AudioDataset {audio:.0f} items/s, librosa dataset {librosa_rate:.1f} items/s: "
              f"{audio / librosa_rate:.1f}x")
    except ImportError:
        print(f"AudioDataset {audio:.0f} items/s (librosa not installed)")
    if a.melkit_bin:
        out = os.path.join(work, "stacked")
        subprocess.run([a.melkit_bin, "run", os.path.join(work, "audio"), "-o", out, "--format", "stacked-h5",
                        "--quiet", "--backend", "cpu"], check=True)
        stacked = StackedDataset(os.path.join(out, "melkit-stacked.h5"))
        for batch in (8, 64):
            rates = ", ".join(f"{w} workers {epoch(stacked, w, batch):.0f}" for w in (0, 2))
            print(f"StackedDataset, batches of {batch}, warm: {rates} items/s")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
