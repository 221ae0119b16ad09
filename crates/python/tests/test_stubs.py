"""The type stubs match the compiled module (mypy.stubtest), and the package type-checks."""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")
HERE = Path(__file__).parents[1]


def test_the_stubs_match_the_module(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy.stubtest", "melkit._melkit", "--allowlist",
                          str(HERE / "stubtest-allowlist.txt")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_package_type_checks(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), str(HERE / "python" / "melkit")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
