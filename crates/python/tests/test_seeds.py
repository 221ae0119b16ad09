"""The seeds' Python examples (basic usage, advanced configuration, batch processing,
performance monitoring) run as written against melkit, only their import line naming it."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GOLDEN

SEEDS = Path(__file__).parents[4] / "shared" / "seeds"


def examples():
    text = "".join(p.read_text() for p in sorted(SEEDS.glob("*.txt")))
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    # The last block shows melkit beside the seeds' own older module, which is not melkit's.
    return [b for b in blocks if ("PipelineConfig" in b or "process_audio_file" in b)
            and "cnn_mel_processor" not in b]


def test_there_are_the_examples():
    # Two configurations (basic, advanced), basic usage, batch processing, monitoring.
    assert len(examples()) == 5


@pytest.mark.parametrize("i", range(5))
def test_a_seed_example_runs_as_written(tmp_path, i):
    code = examples()[i].replace("from pipeline import", "from melkit import")
    # The examples share a context: a pipeline defined before, and audio.wav in the folder.
    prelude = "from melkit import AudioPipeline, PipelineConfig\npipeline = AudioPipeline(PipelineConfig())\n"
    if "PipelineConfig(" in code and "pipeline =" not in code:
        code += "\nAudioPipeline(config).process_audio_file('audio.wav')\n"
    shutil.copy(GOLDEN / "tones_4096_pcm16.wav", tmp_path / "audio.wav")
    shutil.copy(GOLDEN / "chirp_4096_f32_short.wav", tmp_path / "second.wav")
    run = subprocess.run([sys.executable, "-c", prelude + code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"{code}\n{run.stderr}"
    if "save_results" in code:
        assert sorted(p.name for p in tmp_path.glob("output_*")) == ["output_audio.npz", "output_second.npz"]
    if "3D Matrix shape" in code:
        assert "3D Matrix shape: (40, 2, 64, 17)" in run.stdout
    if "Throughput" in code:
        assert re.search(r"Throughput: \d+\.\d segments/second", run.stdout), run.stdout
