#!/usr/bin/env python3
"""Make the format cases in this folder: audio in every format melkit decodes, and the tensor
librosa computes from what soundfile (libsndfile) or, for AAC, ffmpeg decodes of it.

Each case is NAME.json ({"input", "config", "tolerance", "shape"}, as in ../shared/golden) with
its input file and NAME.npy; `unsupported.json` lists files melkit must refuse, with the error.
The numbers come from `reference()` of ../shared/golden/make_golden.py (librosa), never from
melkit. Needs: numpy, soundfile, soxr, librosa, and PyAV (`pip install av`) for the M4A case.
Run from this folder: python3 make_formats.py
"""
import importlib.util
import json
import os
import sys

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.environ.get("MELKIT_GOLDEN_DIR", os.path.join(HERE, "../../../../../../shared/golden"))
spec = importlib.util.spec_from_file_location("make_golden", os.path.join(GOLDEN, "make_golden.py"))
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
CONFIG = {"sample_length": None}


def signal(sr, seconds, channels, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    cols = []
    for c in range(channels):
        f = 180.0 * (c + 1)
        y = 0.3 * np.sin(2 * np.pi * f * t * (1 + 0.2 * t)) + 0.15 * np.sin(2 * np.pi * 1100 * t + c)
        y += 0.03 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 1.3 * t) > 0)
        cols.append(y)
    return np.stack(cols, axis=1) if channels > 1 else cols[0]


def librosa_case(name, path, y_decoded_sr=None):
    """The tensor of `path` as librosa computes it (its own load, or a signal decoded elsewhere)."""
    if y_decoded_sr is None:
        y = golden.load(path, CONFIG)
    else:
        import librosa
        y, sr = y_decoded_sr
        y = librosa.resample(y, orig_sr=sr, target_sr=4096, res_type="soxr_hq")
    m = golden.reference(y, CONFIG)
    np.save(f"{name}.npy", m.astype(np.float32))
    with open(f"{name}.json", "w") as f:
        json.dump({"input": path, "config": CONFIG, "tolerance": "resampled", "shape": list(m.shape)}, f, indent=1)
    print(name, path, m.shape, os.path.getsize(path), "bytes")


def soundfile_case(name, ext, sr, seconds, channels, fmt, subtype, seed):
    path = f"{name}.{ext}"
    sf.write(path, signal(sr, seconds, channels, seed), sr, format=fmt, subtype=subtype)
    librosa_case(name, path)


def m4a_case(name, sr, seconds, channels, seed):
    """AAC in MP4, encoded and decoded by ffmpeg (through PyAV), with the edit list applied.

    PyAV's muxer leaves the encoder's 1024 priming samples out of the edit list; the list is
    rewritten as ffmpeg's command line and iTunes write it (skip the priming, keep the signal's
    duration). PyAV's decoder drops the priming; the end is cut to the list's duration here.
    """
    import struct

    import av
    path = f"{name}.m4a"
    y = signal(sr, seconds, channels, seed).astype(np.float32)
    planar = y.T if channels > 1 else y[None, :]
    with av.open(path, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo" if channels == 2 else "mono")
        stream.bit_rate = 128000
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp",
                                           layout=stream.layout.name)
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = bytearray(open(path, "rb").read())
    at = data.find(b"elst")
    version, count, duration, media_time, rate = struct.unpack(">IIIiI", data[at + 4:at + 24])
    assert (version, count, media_time) == (0, 1, 0), "unexpected edit list"
    movie_scale = 1000  # PyAV's mvhd timescale
    data[at + 12:at + 20] = struct.pack(">Ii", len(y) * movie_scale // sr, 1024)
    open(path, "wb").write(data)
    chunks = []
    with av.open(path) as inp:
        assert inp.streams.audio[0].container.duration is not None
        for frame in inp.decode(audio=0):
            chunks.append(frame.to_ndarray().astype(np.float64))
    decoded = np.concatenate(chunks, axis=1).mean(axis=0)[:len(y)]
    assert len(decoded) == len(y), (len(decoded), len(y))
    librosa_case(name, path, (decoded, sr))


def main():
    os.chdir(HERE)
    soundfile_case("flac_44100_pcm16_stereo", "flac", 44100, 2.0, 2, "FLAC", "PCM_16", 1)
    soundfile_case("flac_22050_pcm24", "flac", 22050, 1.7, 1, "FLAC", "PCM_24", 2)
    soundfile_case("flac_8000_pcm8_6ch", "flac", 8000, 1.2, 6, "FLAC", "PCM_S8", 3)
    soundfile_case("ogg_vorbis_22050_stereo", "ogg", 22050, 2.0, 2, "OGG", "VORBIS", 4)
    soundfile_case("mp3_44100_mono", "mp3", 44100, 2.0, 1, "MP3", "MPEG_LAYER_III", 5)
    soundfile_case("mp3_48000_stereo", "mp3", 48000, 1.5, 2, "MP3", "MPEG_LAYER_III", 6)
    soundfile_case("aiff_16000_pcm16", "aiff", 16000, 1.0, 1, "AIFF", "PCM_16", 7)
    # Content, not name: a FLAC file named .wav.
    soundfile_case("flac_named_wav", "wav", 11025, 1.0, 1, "FLAC", "PCM_16", 8)
    m4a_case("m4a_aac_44100_stereo", 44100, 2.0, 2, 9)
    # What melkit must refuse, naming the codec.
    sf.write("opus_48000.opus", signal(48000, 0.5, 1, 10), 48000, format="OGG", subtype="OPUS")
    with open("unsupported.json", "w") as f:
        json.dump({"opus_48000.opus": "unsupported encoding: the Opus codec is not supported"}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
