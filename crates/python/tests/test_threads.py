"""Threads and processes: the GIL is released while melkit works; a forked child (a DataLoader
worker) computes after its parent ran parallel work."""
import multiprocessing as mp
import threading

import numpy as np

from melkit import AudioPipeline, PipelineConfig


def test_the_gil_is_released_during_a_long_call():
    pipeline = AudioPipeline(PipelineConfig(sample_length="full", use_gpu=False))
    x = np.random.default_rng(0).standard_normal(4096 * 1200).astype(np.float32)
    done = threading.Event()
    ticks = []

    def count():
        while not done.is_set():
            ticks.append(1)

    counter = threading.Thread(target=count)
    counter.start()
    before = len(ticks)
    pipeline.process_array(x, 4096)
    during = len(ticks) - before
    done.set()
    counter.join()
    # Holding the GIL for the whole call would let the counter run only at switch points.
    assert during > 1000, during


def _child(path, queue):
    pipeline = _child.pipeline
    queue.put(pipeline.process_audio_file(path)["mel_matrix_3d"].sum())


def test_a_forked_child_computes_after_its_parent(tmp_path, golden):
    pipeline = AudioPipeline(PipelineConfig(use_gpu=False, max_workers=2))
    paths = [golden / "tones_4096_pcm16.wav", golden / "chirp_4096_f32_short.wav"] * 4
    pipeline.process_files(paths[:2], tmp_path, format="npy")  # the pool's threads ran
    want = pipeline.process_audio_file(paths[0])["mel_matrix_3d"].sum()
    _child.pipeline = pipeline
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(paths[0], queue))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == want
