"""Content hashes of the dataset and the scorecard, recorded with every run.

The hash is taken over the validated models, not the file bytes: reordering files,
entries or keys, reformatting YAML, or spelling out a default leaves it unchanged, while
any change to what a case means (a field value) gives a new version.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import orjson
import pydantic
import pydantic_core
import yaml

from evalcore.suite.models import Case
from evalcore.suite.scorecard import Scorecard

_SHORT = 12


def case_hash(case: Case) -> str:
    """sha256 of the case's canonical JSON (all fields, defaults included, keys sorted)."""
    canonical = orjson.dumps(case.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def dataset_version(cases: Iterable[Case]) -> str:
    """sha256 over the (id, case hash) pairs sorted by id: independent of file layout."""
    digest = hashlib.sha256()
    # Hash case by case in id order rather than building all pairs: 100k cases stay flat.
    for case in sorted(cases, key=attrgetter("id")):
        digest.update(case.id.encode())
        digest.update(b"\0")
        digest.update(case_hash(case).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@functools.cache
def reader_fingerprint() -> bytes:
    """What decides how a suite's files become cases: this package's code and the versions
    of the libraries that parse and validate them. Part of `Suite.files_digest`, so two
    processes agree on a digest only if they would read the same files the same way."""
    digest = hashlib.blake2b(digest_size=32)
    for library in (pydantic.VERSION, pydantic_core.__version__, yaml.__version__):
        digest.update(f"{library}\0".encode())
    digest.update(f"{orjson.__version__}\0".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.digest()


def scorecard_version(scorecard: Scorecard) -> str:
    """sha256 of the scorecard's canonical JSON, so a run records the bar it was judged by."""
    canonical = orjson.dumps(scorecard.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class DatasetVersion:
    """The dataset a run used: content hash plus the git commit it was read from, if any.

    `git_dirty` is true when files under the suite differ from that commit, so the hash is
    the only faithful record of what ran.
    """

    hash: str
    git_commit: str | None
    git_dirty: bool
    case_count: int

    @property
    def short(self) -> str:
        """The first 12 hex digits, enough to tell versions apart in reports and Slack."""
        return self.hash[:_SHORT]
