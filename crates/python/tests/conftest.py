"""Shared by the Python tests: where the golden cases are."""
import os
from pathlib import Path

import pytest

GOLDEN = Path(os.environ.get("MELKIT_GOLDEN_DIR", Path(__file__).parents[4] / "shared" / "golden"))


@pytest.fixture
def golden():
    return GOLDEN
