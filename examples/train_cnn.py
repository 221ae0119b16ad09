#!/usr/bin/env python3
"""A small CNN trained with PyTorch on melkit features of a synthetic labelled corpus: steady
tones, rising chirps and noise bursts, 2 s each at 4096 Hz. Trained once through
`melkit.torch.AudioDataset` (features computed on the fly by the DataLoader's workers) and once
through `melkit.torch.StackedDataset` (one stacked HDF5 file, from `melkit run --format
stacked-h5` when the CLI is found, else written with h5py in the same layout); prints each
run's held-out accuracy (chance: 33%).

usage: python examples/train_cnn.py [--files 150] [--epochs 6] [--workers 2] [--out DIR]"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time
import wave

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import melkit
from melkit.torch import AudioDataset, StackedDataset

RATE, SECONDS = 4096, 2.0
CLASSES = ["tone", "chirp", "burst"]


def clip(kind, rng):
    t = np.arange(int(RATE * SECONDS)) / RATE
    if kind == "tone":
        y = np.sin(2 * np.pi * rng.uniform(200, 1500) * t)
    elif kind == "chirp":
        f0, f1 = rng.uniform(100, 400), rng.uniform(1200, 1900)
        y = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * SECONDS)))
    else:
        y = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0.3)
    y = 0.4 * y + 0.05 * rng.standard_normal(len(t))
    return (np.clip(y, -1, 1) * 32767).astype("<i2")


def corpus(folder, files):
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(files):
        label = i % len(CLASSES)
        path = os.path.join(folder, f"{i:04d}_{CLASSES[label]}.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
            w.writeframes(clip(CLASSES[label], rng).tobytes())
        paths.append(path)
        labels.append(label)
    return paths, labels


class Net(nn.Module):
    """[long, short, mel, time] → the long and short segments as channels → two conv blocks."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(32, len(CLASSES)))

    def forward(self, x):
        x = torch.log1p(x.flatten(1, 2))
        return self.body(x)


def train(dataset, labels, epochs, workers, name):
    idx = np.random.default_rng(1).permutation(len(dataset))
    cut = int(0.75 * len(idx))
    loader = DataLoader(Subset(dataset, idx[:cut].tolist()), batch_size=16, shuffle=True, num_workers=workers)
    test = DataLoader(Subset(dataset, idx[cut:].tolist()), batch_size=32, num_workers=workers)
    x0, _ = dataset[0]
    torch.manual_seed(0)
    net = Net(x0.shape[0] * x0.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    started = time.perf_counter()
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
    with torch.no_grad():
        right = sum(int((net(x).argmax(1) == y).sum()) for x, y in test)
    accuracy = right / (len(idx) - cut)
    print(f"{name}: held-out accuracy {accuracy:.0%} after {epochs} epochs in {time.perf_counter() - started:.1f} s")
    return accuracy


def stacked_file(paths, out):
    """The corpus as one stacked HDF5 file: melkit's CLI when it is there, else h5py."""
    cli = os.environ.get("MELKIT_BIN") or shutil.which("melkit")
    if cli:
        subprocess.run([cli, "run", *paths, "-o", out, "--format", "stacked-h5", "--quiet",
                        "--sample-length", str(SECONDS), "--backend", "cpu"], check=True)
        return os.path.join(out, "melkit-stacked.h5")
    import h5py
    os.makedirs(out, exist_ok=True)
    pipeline = melkit.AudioPipeline(melkit.PipelineConfig(sample_length=SECONDS, use_gpu=False))
    path = os.path.join(out, "melkit-stacked.h5")
    with h5py.File(path, "w") as f:
        first = pipeline.process_audio_file(paths[0])["mel_matrix_3d"]
        mel = f.create_dataset("mel", (len(paths), *first.shape), dtype="f4")
        for i, p in enumerate(paths):
            mel[i] = pipeline.process_audio_file(p)["mel_matrix_3d"]
        f["source"] = np.array(paths, dtype=object).astype("S")
        f["index"] = np.arange(len(paths), dtype="u8")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    out = a.out or tempfile.mkdtemp(prefix="melkit-cnn-")
    os.makedirs(os.path.join(out, "audio"), exist_ok=True)
    paths, labels = corpus(os.path.join(out, "audio"), a.files)
    config = melkit.PipelineConfig(sample_length=SECONDS, use_gpu=False)
    on_the_fly = train(AudioDataset(paths, config, labels=labels), labels, a.epochs, a.workers, "AudioDataset")
    stacked = stacked_file(paths, os.path.join(out, "stacked"))
    # Rows are labelled by their source file's name (the class is part of it).
    sources = StackedDataset(stacked).sources
    row_labels = [CLASSES.index(os.path.basename(s).split("_")[1].split(".")[0]) for s in sources]
    dataset = StackedDataset(stacked, labels=row_labels)
    from_file = train(dataset, row_labels, a.epochs, a.workers, "StackedDataset")
    return on_the_fly, from_file


if __name__ == "__main__":
    main()
