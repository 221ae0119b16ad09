"""melkit.torch: AudioDataset and StackedDataset under every start method, with 0 and 2
workers, give the same batches; both pickle; tensors are views of melkit's arrays."""
import os
import pickle
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from melkit import PipelineConfig  # noqa: E402
from melkit.torch import AudioDataset, StackedDataset  # noqa: E402

NAMES = ["tones_4096_pcm16", "chirp_4096_f32_short", "stereo_4096_pcm24_long", "bursts_16000_pcm16"]


def batches(dataset, method, workers):
    ctx = None if workers == 0 else method
    loader = DataLoader(dataset, batch_size=2, num_workers=workers, multiprocessing_context=ctx)
    return [(x.clone(), y.clone()) for x, y in loader]


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    from conftest import GOLDEN

    melkit_bin = os.environ.get("MELKIT_BIN")
    if not melkit_bin:
        pytest.skip("MELKIT_BIN (the melkit binary) is not set")
    out = tmp_path_factory.mktemp("stacked")
    inputs = [str(GOLDEN / f"{n}.wav") for n in NAMES]
    subprocess.run([melkit_bin, "run", *inputs, "-o", str(out), "--format", "stacked-h5", "--quiet",
                    "--backend", "cpu"], check=True)
    return out / "melkit-stacked.h5"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_audio_dataset_gives_the_same_batches_with_and_without_workers(golden, method):
    paths = [golden / f"{n}.wav" for n in NAMES]
    dataset = AudioDataset(paths, PipelineConfig(use_gpu=False), labels=[0, 1, 2, 3])
    first = batches(dataset, method, 0)
    again = batches(pickle.loads(pickle.dumps(dataset)), method, 2)
    assert len(first) == len(again) == 2
    for (x, y), (x2, y2) in zip(first, again):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert first[0][0].shape == (2, 40, 2, 64, 17)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_stacked_dataset_gives_the_rows_with_and_without_workers(stacked, method):
    dataset = StackedDataset(stacked, labels=[0, 1, 2, 3])
    assert len(dataset) == 4
    first = batches(dataset, method, 0)
    again = batches(pickle.loads(pickle.dumps(dataset)), method, 2)
    for (x, y), (x2, y2) in zip(first, again):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    import h5py
    with h5py.File(stacked) as f:
        assert np.array_equal(first[0][0][0].numpy(), f["mel"][0])


def test_items_are_views_of_melkits_arrays(golden):
    dataset = AudioDataset([golden / "tones_4096_pcm16.wav"], PipelineConfig(use_gpu=False))
    a = dataset.pipeline().process_audio_file(golden / "tones_4096_pcm16.wav")["mel_matrix_3d"]
    assert torch.from_numpy(a).data_ptr() == a.ctypes.data
    assert torch.equal(dataset[0], torch.from_numpy(a))
