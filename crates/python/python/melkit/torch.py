"""PyTorch datasets over melkit: `AudioDataset` computes each item's tensor on the fly,
`StackedDataset` reads rows of a stacked HDF5 file (`melkit run --format stacked-h5`, `melkit
merge`). Both are picklable and safe under `fork`, `forkserver` and `spawn`: what holds threads
or open files (the pipeline, the HDF5 file) is made lazily in each process, never pickled."""
from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from . import AudioPipeline, PipelineConfig

_Path = Union[str, "os.PathLike[str]"]


class AudioDataset(Dataset):
    """Map-style: item i is the tensor `[long, short, mel, time]` of `paths[i]` (and
    `labels[i]` when labels are given), computed when asked for. Each process (each DataLoader
    worker) builds its own pipeline with `threads` worker threads (1 by default: the
    DataLoader's workers are the parallelism); `backend` as `AudioPipeline` takes it."""

    def __init__(self, paths: Sequence[_Path], config: Optional[PipelineConfig] = None,
                 labels: Optional[Sequence[Any]] = None, threads: int = 1,
                 backend: Optional[str] = None) -> None:
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"{len(labels)} labels for {len(paths)} paths")
        keys = (config or PipelineConfig()).to_dict()
        keys["max_workers"] = threads
        self.config = PipelineConfig.from_dict(keys)
        self.paths = [os.fspath(p) for p in paths]
        self.labels = list(labels) if labels is not None else None
        self.backend = backend
        self._pipeline: Optional[AudioPipeline] = None
        self._pid: Optional[int] = None

    def __len__(self) -> int:
        return len(self.paths)

    def pipeline(self) -> AudioPipeline:
        """This process's pipeline (built on first use)."""
        if self._pipeline is None or self._pid != os.getpid():
            self._pipeline = AudioPipeline(self.config, backend=self.backend)
            self._pid = os.getpid()
        return self._pipeline

    def __getitem__(self, i: int) -> Union[torch.Tensor, Tuple[torch.Tensor, Any]]:
        mel = torch.from_numpy(self.pipeline().process_audio_file(self.paths[i])["mel_matrix_3d"])
        return mel if self.labels is None else (mel, self.labels[i])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pipeline"], state["_pid"] = None, None
        return state


class StackedDataset(Dataset):
    """Map-style over a stacked HDF5 file: item i is row i of `mel` `[long, short, mel, time]`
    as a tensor (and `labels[i]` when labels are given). The file is opened lazily in each
    process (h5py, `pip install melkit[h5]`)."""

    def __init__(self, path: _Path, labels: Optional[Sequence[Any]] = None) -> None:
        import h5py  # type: ignore[import-untyped]

        self.path = os.fspath(path)
        with h5py.File(self.path, "r") as f:
            self._len = int(f["mel"].shape[0])
            self.sources = [s.decode() if isinstance(s, bytes) else str(s) for s in f["source"][...]]
        if labels is not None and len(labels) != self._len:
            raise ValueError(f"{len(labels)} labels for {self._len} rows")
        self.labels = list(labels) if labels is not None else None
        self._file: Any = None
        self._pid: Optional[int] = None

    def __len__(self) -> int:
        return self._len

    def _mel(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            import h5py  # type: ignore[import-untyped]

            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["mel"]

    def __getitem__(self, i: int) -> Union[torch.Tensor, Tuple[torch.Tensor, Any]]:
        if not -self._len <= i < self._len:
            raise IndexError(f"row {i} of {self._len}")
        row = np.ascontiguousarray(self._mel()[i % self._len], dtype=np.float32)
        mel = torch.from_numpy(row)
        return mel if self.labels is None else (mel, self.labels[i])

    def __getitems__(self, indices: List[int]) -> List[Union[torch.Tensor, Tuple[torch.Tensor, Any]]]:
        """A DataLoader's batch in one read where its rows are consecutive (each item a view of
        the block read), else row by row."""
        rows = [i % self._len if -self._len <= i < self._len else i for i in indices]
        if len(rows) > 1 and rows == list(range(rows[0], rows[0] + len(rows))):
            block = np.ascontiguousarray(self._mel()[rows[0]:rows[-1] + 1], dtype=np.float32)
            mels = list(torch.from_numpy(block).unbind(0))
            if self.labels is None:
                return list(mels)
            return [(m, self.labels[i]) for m, i in zip(mels, rows)]
        return [self[i] for i in indices]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state
