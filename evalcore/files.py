"""Replacing a file so that no reader ever sees half of it.

Reports, trends pages, digests and the suite files an apply edits are read by other
processes (a browser, CI, git, the next apply) while they are rewritten; a crash or a full
disk mid-write must leave the old file or the new one, never a truncated mix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

# Mode a new file is created with before the umask, as `open()` does.
_NEW_FILE_MODE = 0o666
_NAME_ATTEMPTS = 100


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it
    over `path`. An existing file keeps its permission bits; a new one gets the umask's.
    """
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
    fd, temporary = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new hidden file in `path`'s folder (so the rename stays on one file system),
    opened for writing; a unique name, so concurrent writers never share one."""
    for _ in range(_NAME_ATTEMPTS):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(candidate, flags, _NEW_FILE_MODE), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover
