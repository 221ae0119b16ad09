"""melkit's Python API against librosa's golden tensors (../shared/golden): the seeds' calls,
zero-copy arrays, errors, pickling and save_results round trips."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import melkit
from melkit import AudioPipeline, PipelineConfig

from conftest import GOLDEN
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def case(name):
    meta = json.loads((GOLDEN / f"{name}.json").read_text())
    keys = {k: v for k, v in meta["config"].items()}
    if "sample_length" in keys and keys["sample_length"] is None:
        keys["sample_length"] = "full"
    return keys, np.load(GOLDEN / f"{name}.npy"), meta["tolerance"]


def check(got, want, tolerance, name):
    assert got.shape == want.shape, name
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"], name
    scale = float(np.max(np.abs(want)))
    err = np.abs(got.astype(np.float64) - want)
    if tolerance == "exact":
        rel = float(np.max(err)) / scale
        assert rel <= 1e-5, f"{name}: max rel {rel}"  # NaN fails: the comparison is False
    else:
        rel = float(np.linalg.norm(err) / np.linalg.norm(want))
        assert rel <= 1e-3, f"{name}: rel L2 {rel}"


@pytest.mark.parametrize("name", CASES)
def test_golden_through_process_audio_file(name):
    keys, want, tolerance = case(name)
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False, **keys))
    results = pipeline.process_audio_file(GOLDEN / f"{name}.wav")
    assert results["audio_id"] == name
    check(results["mel_matrix_3d"], want, tolerance, name)
    stats = results["processing_stats"]
    assert stats["total_time"] > 0 and stats["throughput"] > 0
    assert set(stats["stages"]) == {"decode", "resample", "segment", "compute", "scale", "write"}


def read_wav(path):
    """A WAV file's samples, mixed to mono (the channels' mean), and its rate: PCM 16/24 bit
    and float32, as the golden cases are."""
    import struct
    data = Path(path).read_bytes()
    at, fmt, pcm = 12, None, None
    while at < len(data):
        kind, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        body = data[at + 8:at + 8 + size]
        if kind == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif kind == b"data":
            pcm = body
        at += 8 + size + (size & 1)
    code, channels, rate, _, _, bits = fmt
    if code == 3:
        x = np.frombuffer(pcm, dtype="<f4").astype(np.float32)
    elif bits == 16:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    else:
        b = np.frombuffer(pcm, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    return x.reshape(-1, channels).mean(axis=1, dtype=np.float32), rate


@pytest.mark.parametrize("name", CASES)
def test_golden_through_process_array(name):
    keys, want, tolerance = case(name)
    samples, rate = read_wav(GOLDEN / f"{name}.wav")
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False, **keys))
    check(pipeline.process_array(samples, rate)["mel_matrix_3d"], want, tolerance, name)


def test_process_array_takes_float32_only():
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False))
    samples = np.zeros(4096, dtype=np.float64)
    with pytest.raises(TypeError, match="samples must be a 1-D numpy array of float32, not float64 with 1 dimensions"):
        pipeline.process_array(samples, 4096)
    with pytest.raises(TypeError, match="not float32 with 2 dimensions"):
        pipeline.process_array(np.zeros((2, 8), dtype=np.float32), 4096)


def test_the_array_owns_melkits_buffer_without_a_copy():
    results = AudioPipeline(PipelineConfig(use_gpu=False)).process_audio_file(GOLDEN / "tiny_4096_pcm16_full.wav")
    a = results["mel_matrix_3d"]
    # numpy holds melkit's own Vec (the numpy crate's container), not a copy of it.
    assert not a.flags["OWNDATA"] and type(a.base).__name__ == "PySliceContainer"
    torch = pytest.importorskip("torch")
    assert torch.from_numpy(a).data_ptr() == a.ctypes.data


def test_errors_name_the_key_or_the_file(tmp_path):
    with pytest.raises(melkit.ConfigError) as e:
        PipelineConfig(n_mels=0)
    assert isinstance(e.value, ValueError) and e.value.key == "n_mels"
    with pytest.raises(melkit.ConfigError, match="unknown configuration key `n_mel`"):
        PipelineConfig(n_mel=64)
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False))
    with pytest.raises(FileNotFoundError):
        pipeline.process_audio_file(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(melkit.AudioError) as e:
        pipeline.process_audio_file(bad)
    assert e.value.path == str(bad) and str(bad) in str(e.value)


def test_configs_pickle_and_round_trip_through_dicts():
    config = PipelineConfig(n_mels=40, fmax=1800.0, sample_length="full", use_gpu=False)
    again = pickle.loads(pickle.dumps(config))
    assert again == config and again.n_mels == 40 and again.use_gpu is False
    assert PipelineConfig.from_dict(config.to_dict()) == config
    assert PipelineConfig().output_shape() == (40, 2, 64, 17)


@pytest.mark.parametrize("fmt", ["npz", "npy", "h5"])
def test_save_results_round_trips(tmp_path, fmt):
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False))
    results = pipeline.process_audio_file(GOLDEN / "tones_4096_pcm16.wav")
    path = pipeline.save_results(results, tmp_path / f"output_{results['audio_id']}", format=fmt)
    want = results["mel_matrix_3d"]
    if fmt == "npy":
        got = np.load(path)
    elif fmt == "npz":
        with np.load(path) as z:
            got = z["mel"]
    else:
        h5py = pytest.importorskip("h5py")
        with h5py.File(path) as f:
            got = f["mel"][...]
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_process_files_runs_the_batch_pipeline(tmp_path):
    seen = []
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False))
    inputs = [GOLDEN / "tones_4096_pcm16.wav", GOLDEN / "tiny_4096_pcm16_full.wav"]
    report = pipeline.process_files(inputs, tmp_path, format="npy", progress=lambda d, t: seen.append((d, t)))
    assert report["files_ok"] == 2 and seen[-1] == (2, 2)
    single = pipeline.process_audio_file(inputs[0])["mel_matrix_3d"]
    assert np.array_equal(np.load(tmp_path / "tones_4096_pcm16.npy"), single)


def test_backends_by_name_and_by_use_gpu():
    try:
        AudioPipeline(PipelineConfig(), backend="cuda")
    except melkit.BackendUnavailableError as e:
        assert "backend cuda is unavailable: " in str(e)
    with pytest.raises(ValueError, match="backend `tpu` is unknown: must be one of auto, cpu"):
        AudioPipeline(PipelineConfig(), backend="tpu")
    assert AudioPipeline(PipelineConfig(use_gpu=False)).backend_name == "cpu"
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = AudioPipeline(PipelineConfig(use_gpu=True))
    warned = [str(w.message) for w in caught]
    if pipeline.backend_name == "cpu":
        assert warned == ["use_gpu=True but no GPU backend can start here: computing on the CPU"]
    else:
        assert warned == []


def test_the_module_links_no_libhdf5():
    import shutil
    import subprocess
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("no ldd")
    linked = subprocess.run([ldd, melkit._melkit.__file__], capture_output=True, text=True).stdout
    assert "hdf5" not in linked and "libpython" not in linked, linked
