"""The suite's files as an apply reads and writes them: bytes (a UTF-8 BOM kept as found),
one apply at a time per suite, each change written atomically and undone the same way,
and the diff shown before anything is written."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from evalcore.files import write_atomic

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class FileChange:
    """A file's bytes before (None: the file is new) and after."""

    path: Path
    before: bytes | None
    after: bytes

    def diff(self, base: Path | None = None) -> str:
        name = str(self.path)
        if base is not None:
            with contextlib.suppress(ValueError):
                name = str(self.path.relative_to(base))
        old = [] if self.before is None else decode(self.before)[1].splitlines(keepends=True)
        new = decode(self.after)[1].splitlines(keepends=True)
        lines = difflib.unified_diff(
            old, new, "/dev/null" if self.before is None else f"a/{name}", f"b/{name}"
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def suite_lock(root: Path) -> FileLock:
    """One apply at a time per suite folder, whichever process runs it.

    The lock file sits in the temporary folder, named after the suite's real path: inside
    the suite it would be an untracked file, and the dataset version would read as dirty.
    Any account may take it, as any account could lock the folder itself.
    """
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return FileLock(Path(tempfile.gettempdir()) / f"evalcore-apply-{key}.lock", mode=0o666)


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def restore(change: FileChange) -> None:
    """Put the file back as it was before `change` (remove it if it was new)."""
    if change.before is None:
        with contextlib.suppress(FileNotFoundError):
            change.path.unlink()
    else:
        write_atomic(change.path, change.before)


def decode(raw: bytes) -> tuple[bool, str]:
    """(whether the file starts with a BOM, its text without it)."""
    if raw.startswith(BOM):
        return True, raw[len(BOM) :].decode("utf-8")
    return False, raw.decode("utf-8")


def encode(text: str, bom: bool) -> bytes:
    return (BOM if bom else b"") + text.encode("utf-8")
