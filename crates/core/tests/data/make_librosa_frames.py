#!/usr/bin/env python3
"""Record how librosa.stft frames a short segment, for melkit's framing test.

For every configuration of a grid (segment length, n_fft, hop, center, pad mode) this captures
the exact frames librosa 0.11 builds (including its head/tail slice padding) by feeding it the
samples 1..N with a boxcar window and an FFT stand-in that returns its input. Each frame sample
becomes the index of the sample it came from (-1 for a zero), and the table [frames, n_fft] is
stored as its frame count and a 64-bit FNV-1a digest of the indices (little-endian i64).

Needs: numpy, librosa.  Run from this folder: python3 make_librosa_frames.py > librosa_frames.txt
"""
import itertools
import sys
import warnings

import librosa
import numpy as np


class Identity:
    """An FFT library whose rfft packs its real input two samples per complex bin."""

    @staticmethod
    def rfft(a, n=None, axis=-1):
        a = np.moveaxis(np.asarray(a), axis, -1)
        n_fft = a.shape[-1]
        out = np.zeros(a.shape[:-1] + (n_fft // 2 + 1,), dtype=np.complex128)
        for k in range(0, n_fft, 2):
            out[..., k // 2] = a[..., k] + (1j * a[..., k + 1] if k + 1 < n_fft else 0)
        return np.moveaxis(out, -1, axis)

    def __getattr__(self, name):
        return getattr(np.fft, name)


def frames(points, n_fft, hop, center, pad_mode):
    y = np.arange(1, points + 1, dtype=np.float64)
    s = librosa.stft(y, n_fft=n_fft, hop_length=hop, window="boxcar", center=center,
                     pad_mode=pad_mode, dtype=np.complex128)
    f = np.zeros((s.shape[1], n_fft))
    for k in range(0, n_fft, 2):
        f[:, k] = s[k // 2].real
        if k + 1 < n_fft:
            f[:, k + 1] = s[k // 2].imag
    return f.round().astype(np.int64) - 1


def fnv1a(values):
    h = 0xCBF29CE484222325
    for b in values.astype("<i8").tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def grid():
    # Reflect padding with a centre, where librosa's slicing matters: a wide grid.
    yield from itertools.product(range(2, 21), range(2, 13), range(1, 11), [True], ["reflect"])
    # Zero padding and uncentred frames: a smaller one.
    yield from itertools.product(range(2, 13), range(2, 9), range(1, 7), [True], ["constant"])
    yield from itertools.product(range(2, 13), range(2, 9), range(1, 7), [False], ["constant"])


def main():
    librosa.set_fftlib(Identity())
    print(f"# librosa {librosa.__version__}: points n_fft hop center reflect frames fnv1a64")
    for points, n_fft, hop, center, mode in grid():
        if (not center and n_fft > points) or (center and mode == "reflect" and n_fft // 2 >= points):
            continue  # configurations melkit refuses
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = frames(points, n_fft, hop, center, mode)
        print(points, n_fft, hop, int(center), int(mode == "reflect"), f.shape[0], f"{fnv1a(f.ravel()):016x}")


if __name__ == "__main__":
    sys.exit(main())
