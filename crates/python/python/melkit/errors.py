"""melkit's exceptions: every one a MelkitError; a bad configuration also a ValueError."""
from __future__ import annotations

import os
from typing import Optional


class MelkitError(Exception):
    """Any error melkit raises (a missing input is a FileNotFoundError instead)."""


class ConfigError(MelkitError, ValueError):
    """A configuration that cannot be used; `key` names the key at fault."""

    def __init__(self, message: str, key: Optional[str] = None) -> None:
        super().__init__(message)
        self.key = key


class AudioError(MelkitError):
    """An input that cannot be read or computed; `path` names it, `reason` says why."""

    def __init__(self, path: "os.PathLike[str] | str", reason: str) -> None:
        super().__init__(reason)
        self.path = os.fspath(path)
        self.reason = reason


class BackendUnavailableError(MelkitError):
    """The backend asked for cannot start on this machine."""
