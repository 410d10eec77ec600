"""Writing the run directory's files so that a crash or a reader never sees half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write`` with a temporary path beside ``path``, then renames it into place.

    The temporary file is in the same folder, so the rename stays on one file system and is atomic.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON, atomically."""
    write_atomic(path, lambda temporary: temporary.write_text(json.dumps(value) + "\n", encoding="utf-8"))


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def append_line(path: Path, value: Any) -> None:
    """Appends one JSON line. A single ``write`` of a short line: readers see whole lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(value) + "\n")
