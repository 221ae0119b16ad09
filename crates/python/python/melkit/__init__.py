"""melkit: segmented mel-spectrogram tensors `[long_segment, short_segment, mel_bin, time_frame]`
with librosa's numbers, computed in Rust on the CPU or a GPU.

    from melkit import AudioPipeline, PipelineConfig
    pipeline = AudioPipeline(PipelineConfig(sample_rate=4096, n_mels=64))
    results = pipeline.process_audio_file("audio.wav")
    results["mel_matrix_3d"]  # float32, owned by numpy without a copy
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import numpy as np

from . import _melkit
from .errors import AudioError, BackendUnavailableError, ConfigError, MelkitError

__version__: str = _melkit.__version__
PipelineConfig = _melkit.PipelineConfig

__all__ = [
    "AudioPipeline",
    "PipelineConfig",
    "MelkitError",
    "ConfigError",
    "AudioError",
    "BackendUnavailableError",
    "__version__",
]


class AudioPipeline(_melkit.AudioPipeline):
    """The seeds' pipeline: `process_audio_file`, `process_array`, `process_files` and
    `save_results`."""

    def save_results(self, results: Dict[str, Any], prefix: "os.PathLike[str] | str",
                     format: str = "npz") -> str:
        """Writes `results['mel_matrix_3d']` to `prefix` + `.npz`, `.npy` or `.h5` (HDF5 through
        h5py, `pip install melkit[h5]`) with melkit's metadata; returns the path written."""
        tensor = np.ascontiguousarray(results["mel_matrix_3d"], dtype=np.float32)
        if tensor.ndim != 4:
            raise ValueError(f"mel_matrix_3d must have 4 dimensions, not {tensor.ndim}")
        config = json.dumps({k: v for k, v in self.config.to_dict().items() if k != "use_gpu"})
        rate = int(self.config.sample_rate)
        source = str(results.get("audio_id", ""))
        path = os.fspath(prefix) + "." + format
        if format in ("npy", "npz"):
            _melkit.write_tensor(path, tensor, format, source, config, rate)
        elif format == "h5":
            try:
                import h5py  # type: ignore[import-untyped]
            except ImportError as e:
                raise MelkitError("format h5 needs h5py: pip install melkit[h5]") from e
            with h5py.File(path, "w") as f:
                f.create_dataset("mel", data=tensor)
                f.attrs["layout"] = "long_segment,short_segment,mel_bin,time_frame"
                f.attrs["config"] = config
                f.attrs["source"] = source
                f.attrs["sample_rate"] = rate
                f.attrs["melkit_version"] = __version__
        else:
            raise ValueError(f"format `{format}` is not one of npz, npy, h5")
        return path
