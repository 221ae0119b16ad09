"""Streaming: pieces of any size give, concatenated, exactly process_array's tensor (resampling
included); a segment comes out with its last sample."""
import numpy as np
import pytest

import melkit
from melkit import AudioPipeline, PipelineConfig


def signal(n, rate):
    t = np.arange(n) / rate
    rng = np.random.default_rng(3)
    return (0.4 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("rate", [4096, 16000])
@pytest.mark.parametrize("length", ["10.0", "full"])
def test_streamed_pieces_equal_the_whole_signal(rate, length):
    pipeline = AudioPipeline(PipelineConfig(sample_length=length, use_gpu=False))
    x = signal(rate * 6 + 77, rate)
    whole = pipeline.process_array(x, rate)["mel_matrix_3d"]
    for piece in [1, 333, 4096, len(x)]:
        s = pipeline.streamer(rate)
        parts = [s.push(x[i:i + piece]) for i in range(0, len(x), piece)] + [s.finish()]
        got = np.concatenate(parts)
        assert got.shape == whole.shape and np.array_equal(got, whole), piece


def test_a_segment_comes_out_with_its_last_sample():
    pipeline = AudioPipeline(PipelineConfig(sample_length="full", use_gpu=False))
    s = pipeline.streamer(4096)
    x = signal(4096, 4096)
    assert s.push(x[:1023]).shape[0] == 0
    assert s.push(x[1023:1024]).shape == (1, 2, 64, 17)
    with pytest.raises(melkit.MelkitError, match="streaming needs element-wise scaling"):
        AudioPipeline(PipelineConfig(scale="db", top_db=80.0, use_gpu=False)).streamer(4096)
