"""examples/train_cnn.py in a reduced form: it trains through both datasets and beats chance
(33%) clearly on held-out files."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
EXAMPLE = Path(__file__).parents[3] / "examples" / "train_cnn.py"


def test_the_cnn_example_learns(tmp_path):
    run = subprocess.run([sys.executable, str(EXAMPLE), "--files", "90", "--epochs", "10", "--workers", "0",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=os.environ)
    assert run.returncode == 0, run.stderr
    accuracies = {m[0]: int(m[1]) for m in re.findall(r"(\w+Dataset): held-out accuracy (\d+)%", run.stdout)}
    assert set(accuracies) == {"AudioDataset", "StackedDataset"}, run.stdout
    assert all(a >= 60 for a in accuracies.values()), run.stdout
