"""Load a suite directory (`cases/`, `scorecard.yaml`, `owners.yaml`) all or nothing.

Every file is read and every problem collected before anything is returned: a suite
with one bad case would otherwise gate a release on a silently smaller set. Problems
come back together in one `SuiteError`, each naming file, line and field.
"""

from __future__ import annotations

import codecs
import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import cached_property
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar, cast

import orjson
from pydantic import BaseModel, ValidationError

from evalcore.collector import collector_paused
from evalcore.suite.errors import SuiteError, SuiteIssue
from evalcore.suite.git import git_state
from evalcore.suite.models import FIELD_LIMIT_BYTES, SCORER_KEYS, Case, EvalSet, Severity
from evalcore.suite.owners import Owners
from evalcore.suite.scorecard import Scorecard
from evalcore.suite.version import (
    DatasetVersion,
    dataset_version,
    reader_fingerprint,
    scorecard_version,
)
from evalcore.suite.yaml_lines import (
    LineMap,
    YamlListReader,
    YamlPath,
    format_field,
    parse_yaml,
    validation_issues,
)

CASE_SUFFIXES = (".yaml", ".yml", ".jsonl")
_SETS = ", ".join(s.value for s in EvalSet)
_NO_EXPECTATION = "case has no expectation: add `expect` with at least one of " + ", ".join(
    SCORER_KEYS
)
_BOM = b"\xef\xbb\xbf"
_FIELD_LIMIT = f"the limit for one field of a case is {FIELD_LIMIT_BYTES:,} bytes (1 MiB)"
# UTF-8 takes at most 4 bytes a character: shorter strings cannot be over the limit.
_FIELD_LIMIT_CHARS = FIELD_LIMIT_BYTES // 4
M = TypeVar("M", bound=BaseModel)


@dataclass
class Suite:
    """A fully validated suite: every case, the scorecard, the owners and their versions."""

    root: Path
    # Kept out of repr: a 100k-case suite must not flood a log line or a debugger.
    cases: list[Case] = dataclass_field(repr=False)
    scorecard: Scorecard = dataclass_field(repr=False)
    owners: Owners = dataclass_field(repr=False)
    version: DatasetVersion
    scorecard_version: str
    case_files: dict[str, Path] = dataclass_field(repr=False)
    # blake2b of the code that read the suite (`reader_fingerprint`) and of every byte it
    # parsed, file by file with their paths under `root`: two loads with the same digest
    # read the same cases, so one may take the other's dataset hash (`KnownDataset`).
    files_digest: str = ""
    # True when `cases` holds only those a shard asked for (`load_suite(only=...)`): the
    # files are the ones a run was opened from, validated whole when it was.
    partial: bool = False

    @cached_property
    def _by_id(self) -> dict[str, Case]:
        return {case.id: case for case in self.cases}

    def get(self, case_id: str) -> Case | None:
        """The case with this id, if the suite has it."""
        return self._by_id.get(case_id)

    def select(
        self,
        sets: Collection[EvalSet | str] | None = None,
        tags: Collection[str] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[Case]:
        """Cases in suite order that pass every filter given.

        `sets`: the case's set is one of them; `tags`: the case carries at least one of
        them; `ids`: the case is one of them. An unknown set or id raises `ValueError`,
        because a typo in a gate's selection must not quietly gate on nothing.
        """
        wanted_sets = None if sets is None else {EvalSet(s) for s in sets}
        wanted_tags = None if tags is None else set(tags)
        wanted_ids = None if ids is None else set(ids)
        if wanted_ids is not None:
            unknown = sorted(wanted_ids - self._by_id.keys())
            if unknown:
                raise ValueError(f"unknown case id(s): {', '.join(unknown)}")
        return [
            case
            for case in self.cases
            if (wanted_sets is None or case.set in wanted_sets)
            and (wanted_tags is None or not wanted_tags.isdisjoint(case.tags))
            and (wanted_ids is None or case.id in wanted_ids)
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Case counts per `set`, `severity` and `tag` (every set and severity listed, even at 0).

        Plain dicts, so reports and `--json` output can print them as they are.
        """
        by_set = dict.fromkeys((s.value for s in EvalSet), 0)
        by_severity = dict.fromkeys((s.value for s in Severity), 0)
        by_tag: Counter[str] = Counter()
        for case in self.cases:
            by_set[case.set.value] += 1
            by_severity[case.severity.value] += 1
            by_tag.update(case.tags)
        return {"set": by_set, "severity": by_severity, "tag": dict(sorted(by_tag.items()))}


class KnownDataset(NamedTuple):
    """A dataset hash already taken of files with this `Suite.files_digest`."""

    files_digest: str
    dataset_hash: str


# Whether a shard wants a case: its id and its number of samples, as written.
CaseFilter = Callable[[str, int], bool]


def load_suite(
    root: Path | str, *, known: KnownDataset | None = None, only: CaseFilter | None = None
) -> Suite:
    """Load and validate the suite at `root` (e.g. `evals/`).

    Raises `SuiteError` listing every problem in every file; never returns a partial suite
    unless asked to with `only`. With `known` whose digest is the one of the files read
    here, the dataset hash is taken from it rather than hashing every case again (a shard
    of a run whose gate loaded the same files); with any other digest it is computed as
    always.

    `only` (with `known`): a shard's cases. A case it does not want is not validated or
    kept, only taken part in the checks across cases (ids, owners, tags), and the suite is
    `partial`; it wants every case whose id or samples are not plainly written, so that
    what it is given is the case as validated. Files with another digest than `known`'s
    are not the ones the run was opened from: they are read again whole, every case
    validated and kept, and problems reported as always.
    """
    # Validation allocates millions of long-lived objects; the cyclic collector would
    # rescan them over and over (3x the load time at 100k cases) while finding nothing.
    with collector_paused():
        return _SuiteLoader(Path(root), only=only if known is not None else None).load(known)


@dataclass
class _Mapping:
    """A top-level YAML mapping as written, with its lines, for cross-file checks."""

    file: Path
    data: dict[Any, Any]
    lines: LineMap

    def line(self, *path: object) -> int | None:
        return self.lines.line_of(path)


class _SuiteLoader:
    def __init__(self, root: Path, only: CaseFilter | None = None) -> None:
        self.root = root
        self.only = only
        self.issues: list[SuiteIssue] = []
        self.cases: list[Case] = []
        self.case_files: dict[str, Path] = {}
        self._first_lines: dict[str, int | None] = {}
        self._duplicates: list[tuple[str, Path, int | None]] = []
        self.tags: set[str] = set()
        # False once a case file or line could not be read at all: its tags are unknown.
        self.all_entries_read = True
        self.owner_ids: set[str] | None = None
        self._shared_sets: dict[frozenset[str], set[str]] = {}
        self._digest = hashlib.blake2b(reader_fingerprint(), digest_size=32)

    def _digest_file(self, file: Path) -> None:
        """Start `file`'s part of the digest: its path under the root."""
        self._digest.update(b"\0file\0" + file.relative_to(self.root).as_posix().encode() + b"\0")

    def issue(self, file: Path, line: int | None, field: str | None, message: str) -> None:
        self.issues.append(SuiteIssue(file, line, field, message))

    def load(self, known: KnownDataset | None = None) -> Suite:
        if not self.root.is_dir():
            raise SuiteError([SuiteIssue(self.root, None, None, "suite directory not found")])
        owners, owners_doc = self._load_mapping(
            self.root / "owners.yaml", Owners, "people, their Slack ids and what they own"
        )
        if owners_doc is not None:
            self._check_owners(owners_doc)
        scorecard, scorecard_doc = self._load_mapping(
            self.root / "scorecard.yaml", Scorecard, "route, target, thresholds and budgets"
        )
        self._load_cases()
        self._report_duplicates()
        if scorecard_doc is not None:
            self._check_scorecard(scorecard_doc)
        if scorecard is not None and scorecard.judge is None:
            self._check_judge_configured()
        files_digest = self._digest.hexdigest()
        # The dataset hash of these very files, when the caller has it already.
        known_hash = known.dataset_hash if known and known.files_digest == files_digest else None
        if self.only is not None and known_hash is None:
            # Not the files the run was opened from: what was skipped is unchecked.
            return _SuiteLoader(self.root).load(known)
        if self.issues or scorecard is None or owners is None:
            self.issues.sort(key=SuiteIssue.sort_key)
            raise SuiteError(self.issues)
        commit, dirty = git_state(self.root)
        version = DatasetVersion(
            hash=known_hash or dataset_version(self.cases),
            git_commit=commit,
            git_dirty=dirty,
            # Every case's id is claimed, kept or not (a suite without problems).
            case_count=len(self.case_files),
        )
        return Suite(
            root=self.root,
            cases=self.cases,
            scorecard=scorecard,
            owners=owners,
            version=version,
            scorecard_version=scorecard_version(scorecard),
            case_files=self.case_files,
            files_digest=files_digest,
            partial=self.only is not None,
        )

    # -- scorecard.yaml, owners.yaml -------------------------------------------------

    def _load_mapping(
        self, file: Path, model: type[M], holds: str
    ) -> tuple[M | None, _Mapping | None]:
        """The validated model (None if invalid) and the raw mapping for cross-file checks."""
        if not file.is_file():
            self.issue(file, None, None, f"missing {file.name}: every suite needs one ({holds})")
            return None, None
        text = self._read_text(file)
        if text is None:
            return None, None
        try:
            doc = parse_yaml(text, file)
        except SuiteError as exc:
            self.issues.extend(exc.issues)
            return None, None
        self.issues.extend(doc.issues)
        if not isinstance(doc.data, dict):
            got = "nothing (empty file)" if doc.data is None else _kind(doc.data)
            self.issue(
                file, doc.lines.line_of(()), None, f"expected a mapping at the top level, got {got}"
            )
            return None, None
        raw = _Mapping(file, doc.data, doc.lines)
        try:
            loaded = model.model_validate(doc.data)
        except ValidationError as exc:
            self.issues.extend(
                validation_issues(exc, file=file, data=doc.data, model=model, lines=doc.lines)
            )
            return None, raw
        return loaded, raw

    def _check_owners(self, doc: _Mapping) -> None:
        """Owner and Slack ids are unique (a decision maps to one person); scopes name sets."""
        entries = doc.data.get("owners")
        if not isinstance(entries, list):
            self.owner_ids = set() if entries is None else None
            return
        self.owner_ids = set()
        first: dict[tuple[str, str], int] = {}
        allowed_sets = {s.value for s in EvalSet}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            for key, what in (("id", "owner id"), ("slack_id", "Slack id")):
                value = entry.get(key)
                if not isinstance(value, str):
                    continue
                if key == "id":
                    self.owner_ids.add(value)
                seen = first.setdefault((key, value), index)
                if seen != index:
                    self.issue(
                        doc.file,
                        doc.line("owners", index, key),
                        f"owners[{index}].{key}",
                        f"duplicate {what} {value!r}: also at "
                        + _where(doc.file, doc.line("owners", seen, key)),
                    )
            owns = entry.get("owns")
            for scope in ("sets", "thresholds"):
                names = owns.get(scope) if isinstance(owns, dict) else None
                for position, name in enumerate(names if isinstance(names, list) else []):
                    if isinstance(name, str) and name != "*" and name not in allowed_sets:
                        self.issue(
                            doc.file,
                            doc.line("owners", index, "owns", scope, position),
                            f"owners[{index}].owns.{scope}[{position}]",
                            f"unknown set {name!r} (allowed: {_SETS} or '*')",
                        )

    def _check_scorecard(self, doc: _Mapping) -> None:
        """Cross-file checks: threshold and budget keys name real sets or tags; owners exist."""
        self._check_owner(doc.data.get("owner"), doc.file, doc.line("owner"), "owner")
        allowed_sets = {s.value for s in EvalSet}
        for section in ("thresholds", "tag_thresholds"):
            rules = doc.data.get(section)
            if not isinstance(rules, dict):
                continue
            for name, rule in rules.items():
                if section == "thresholds" and name not in allowed_sets:
                    self.issue(
                        doc.file,
                        doc.line(section, name),
                        f"{section}.{name}",
                        f"threshold for a set that does not exist: {name!r} (sets: {_SETS})",
                    )
                if section == "tag_thresholds" and self.all_entries_read and name not in self.tags:
                    self.issue(
                        doc.file,
                        doc.line(section, name),
                        f"{section}.{name}",
                        f"threshold for tag {name!r} that no case carries",
                    )
                if isinstance(rule, dict):
                    self._check_owner(
                        rule.get("owner"),
                        doc.file,
                        doc.line(section, name, "owner"),
                        f"{section}.{name}.owner",
                    )
        graduation = doc.data.get("graduation")
        if isinstance(graduation, dict):
            self._check_owner(
                graduation.get("owner"),
                doc.file,
                doc.line("graduation", "owner"),
                "graduation.owner",
            )
        budgets = doc.data.get("budgets")
        if isinstance(budgets, dict):
            self._check_owner(
                budgets.get("owner"), doc.file, doc.line("budgets", "owner"), "budgets.owner"
            )
            per_set = budgets.get("sets")
            for name in per_set if isinstance(per_set, dict) else ():
                if name not in allowed_sets:
                    self.issue(
                        doc.file,
                        doc.line("budgets", "sets", name),
                        f"budgets.sets.{name}",
                        f"budget for a set that does not exist: {name!r} (sets: {_SETS})",
                    )

    def _check_judge_configured(self) -> None:
        """A `judge` expectation cannot be scored without a `judge:` endpoint."""
        judged = [case.id for case in self.cases if case.expect.judge is not None]
        if judged:
            first = judged[0]
            self.issue(
                self.root / "scorecard.yaml",
                None,
                "judge",
                f"{len(judged)} case(s) expect an LLM judge (first: {first!r} in "
                f"{self.case_files[first]}) but scorecard.yaml has no judge: section",
            )

    def _check_owner(self, owner: object, file: Path, line: int | None, field: str) -> None:
        """`owner` must be an id in owners.yaml (skipped when owners.yaml itself is unreadable)."""
        if not isinstance(owner, str) or self.owner_ids is None or owner in self.owner_ids:
            return
        known = ", ".join(sorted(self.owner_ids)) or "none"
        self.issue(file, line, field, f"unknown owner {owner!r} (owners.yaml has: {known})")

    # -- cases/ ---------------------------------------------------------------------

    def _load_cases(self) -> None:
        cases_dir = self.root / "cases"
        files = list(_case_files(cases_dir))
        if not files:
            where = "no cases/ directory" if not cases_dir.is_dir() else "cases/ has no case files"
            suffixes = ", ".join(f"*{s}" for s in CASE_SUFFIXES)
            self.issue(cases_dir, None, None, f"{where}: add {suffixes} files")
            self.all_entries_read = False
            return
        for file in files:
            if file.suffix == ".jsonl":
                self._load_jsonl(file)
            else:
                self._load_yaml_cases(file)

    def _load_yaml_cases(self, file: Path) -> None:
        """Read a YAML case file one entry at a time, so memory follows a case, not the file.

        A YAML error part way through voids what the file's earlier entries added: a file
        that cannot be read counts for nothing, as when it was parsed whole.
        """
        if not self._is_utf8(file):
            self.all_entries_read = False
            return
        before = _Checkpoint.of(self)
        try:
            with file.open("rb") as handle:
                self._digest_file(file)
                reading = cast(IO[bytes], _Digesting(handle, self._digest))
                reader = YamlListReader(reading, file)
                doc = reader.not_a_list
                if doc is not None:
                    self.issues.extend(_inside_entry(issue) for issue in doc.issues)
                    got = "nothing (empty file; write [] for no cases)"
                    if doc.data is not None:
                        got = _kind(doc.data)
                    self.issue(
                        file, doc.lines.line_of(()), None, f"expected a list of cases, got {got}"
                    )
                    self.all_entries_read = False
                    return
                for entry in reader:
                    path = (entry.index,)
                    line = entry.lines.line_of(path)
                    self._add_case(entry.data, file, line, entry.lines, path, entry.longest_text)
        except OSError as exc:
            before.restore(self)
            self.issue(file, None, None, f"cannot read: {exc.strerror or exc}")
            self.all_entries_read = False
            return
        except SuiteError as exc:
            before.restore(self)
            self.issues.extend(exc.issues)
            self.all_entries_read = False
            return
        # Parse problems name the path from the file's top; show it from inside the entry.
        self.issues.extend(_inside_entry(issue) for issue in reader.issues)

    def _load_jsonl(self, file: Path) -> None:
        try:
            handle = file.open("rb")
        except OSError as exc:
            self.issue(file, None, None, f"cannot read: {exc.strerror or exc}")
            self.all_entries_read = False
            return
        with handle:
            self._digest_file(file)
            digest = self._digest.update
            for number, raw in enumerate(handle, start=1):
                digest(raw)
                if number == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                if not raw.strip():
                    continue
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    self.issue(file, number, None, f"invalid JSON at column {exc.colno}: {exc.msg}")
                    self.all_entries_read = False
                    continue
                # No string in a line is longer than the line itself.
                self._add_case(entry, file, number, None, (), len(raw))

    def _add_case(
        self,
        entry: Any,
        file: Path,
        line: int | None,
        lines: LineMap | None,
        base: YamlPath,
        longest_text: int,
    ) -> None:
        """Validate one entry; record it, or its problems (and its id, to catch duplicates).

        `longest_text` bounds the length of every string in the entry, so the entry is
        searched for values over the field limit only when one could be.
        """

        def line_of(*path: object) -> int | None:
            return line if lines is None else lines.line_of((*base, *path))

        if not isinstance(entry, dict):
            self.issue(file, line, None, f"expected a case mapping, got {_kind(entry)}")
            return
        if not self._wanted(entry):
            self._take_part_as_written(entry, file, line_of, lines is not None)
            return
        if longest_text > _FIELD_LIMIT_CHARS:
            too_long = [
                SuiteIssue(file, line_of(*at), format_field(path) or None, message)
                for path, at, message in _too_long(entry)
            ]
            if too_long:
                # Not validated further: error texts would quote the oversized value.
                self.issues.extend(too_long)
                self._take_part_as_written(entry, file, line_of, lines is not None)
                return
        try:
            case = Case.model_validate(entry)
        except ValidationError as exc:
            found = validation_issues(
                exc, file=file, data=entry, model=Case, lines=lines, base=base, line=line
            )
            self.issues.extend(_name_missing_expectation(issue) for issue in found)
            self._take_part_as_written(entry, file, line_of, lines is not None)
            return
        self._accept(case, file, line, None if lines is None else line_of)

    def _wanted(self, entry: dict[Any, Any]) -> bool:
        """Whether the case is validated and kept: always, unless `only` says no to its id
        and samples as written (plain: a string and an int; anything else is wanted, and
        left to the validator)."""
        if self.only is None:
            return True
        case_id, samples = entry.get("id"), entry.get("samples", 1)
        if type(case_id) is not str or type(samples) is not int:
            return True
        return self.only(case_id, samples)

    def _take_part_as_written(
        self,
        entry: dict[Any, Any],
        file: Path,
        line_of: Callable[..., int | None],
        exact_line: bool,
    ) -> None:
        """An invalid entry still takes part in the duplicate, owner and tag checks."""
        raw_id = entry.get("id")
        if isinstance(raw_id, str):
            self._claim_id(raw_id, file, line_of("id"), exact_line)
        self._check_owner(entry.get("owner"), file, line_of("owner"), "owner")
        raw_tags = entry.get("tags")
        if isinstance(raw_tags, list):
            self.tags.update(tag for tag in raw_tags if isinstance(tag, str))

    def _accept(
        self,
        case: Case,
        file: Path,
        line: int | None,
        line_of: Callable[..., int | None] | None,
    ) -> None:
        """Record a valid case unless its id was seen before; check its owner, note its tags.

        `line_of` finds a field's line in YAML; JSONL passes None and every field is `line`.
        """
        if case.owner is not None:
            owner_line = line if line_of is None else line_of("owner")
            self._check_owner(case.owner, file, owner_line, "owner")
        self.tags.update(case.tags)
        id_line = line if line_of is None else line_of("id")
        if self._claim_id(case.id, file, id_line, line_of is not None):
            self._compact(case)
            self.cases.append(case)

    def _claim_id(self, case_id: str, file: Path, line: int | None, exact_line: bool) -> bool:
        """Record the file an id first appears in; a second appearance is an issue.

        Lines of first appearances are kept only for YAML (`exact_line`); for JSONL they
        are looked up again only when a duplicate turns up, so 100k ids cost no ints.
        """
        if case_id in self.case_files:
            self._duplicates.append((case_id, file, line))
            return False
        self.case_files[case_id] = file
        if exact_line:
            self._first_lines[case_id] = line
        return True

    def _report_duplicates(self) -> None:
        """One issue per repeated id, naming where it appeared first (file:line)."""
        jsonl_lines: dict[Path, dict[str, int]] = {}
        wanted: dict[Path, set[str]] = {}
        for case_id, _, _ in self._duplicates:
            first_file = self.case_files[case_id]
            if case_id not in self._first_lines:
                wanted.setdefault(first_file, set()).add(case_id)
        for first_file, ids in wanted.items():
            jsonl_lines[first_file] = _jsonl_id_lines(first_file, ids)
        for case_id, file, line in self._duplicates:
            first_file = self.case_files[case_id]
            first_line = self._first_lines.get(case_id) or jsonl_lines.get(first_file, {}).get(
                case_id
            )
            self.issue(
                file,
                line,
                "id",
                f"duplicate case id {case_id!r}: also at {_where(first_file, first_line)}",
            )

    def _compact(self, case: Case) -> None:
        """Share identical `__pydantic_fields_set__` sets between cases.

        Pydantic keeps one set per model instance; for a 100k-case suite those sets are
        ~40% of the memory (160 MB). They are never changed in place on frozen models
        (`model_copy` gives the copy its own set), so equal ones can be one object.
        """
        expect = case.expect
        models: list[BaseModel] = [case, case.source, case.input, expect]
        models.extend(case.input.messages)
        models.extend(case.input.context)
        models.extend(case.input.tools)
        if expect.tool_call is not None:
            models.append(expect.tool_call)
        if expect.judge is not None:
            models.append(expect.judge)
        shared_sets = self._shared_sets
        for model in models:
            fields = model.__pydantic_fields_set__
            shared = shared_sets.setdefault(frozenset(fields), fields)
            if shared is not fields:
                object.__setattr__(model, "__pydantic_fields_set__", shared)

    def _read_text(self, file: Path) -> str | None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            self.issue(file, None, None, f"cannot read: {exc.strerror or exc}")
            return None
        self._digest_file(file)
        self._digest.update(data)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            self.issue(
                file, line, None, f"not UTF-8 text: byte {data[exc.start]:#04x} cannot be read"
            )
            return None

    def _is_utf8(self, file: Path) -> bool:
        """Check a file is UTF-8 text, a chunk at a time (the YAML parser reads it again)."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        lines_before = 0
        try:
            with file.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    decoder.decode(chunk)
                    lines_before += chunk.count(b"\n")
                decoder.decode(b"", final=True)
        except OSError as exc:
            self.issue(file, None, None, f"cannot read: {exc.strerror or exc}")
            return False
        except UnicodeDecodeError as exc:
            # `exc.object` is the chunk plus any bytes of a character cut off before it.
            line = lines_before + exc.object.count(b"\n", 0, exc.start) + 1
            self.issue(
                file,
                line,
                None,
                f"not UTF-8 text: byte {exc.object[exc.start]:#04x} cannot be read",
            )
            return False
        return True


@dataclass(frozen=True)
class _Checkpoint:
    """How much a loader had gathered before a file, to forget what the file added."""

    issues: int
    cases: int
    case_files: int
    first_lines: int
    duplicates: int

    @classmethod
    def of(cls, loader: _SuiteLoader) -> _Checkpoint:
        return cls(
            len(loader.issues),
            len(loader.cases),
            len(loader.case_files),
            len(loader._first_lines),
            len(loader._duplicates),
        )

    def restore(self, loader: _SuiteLoader) -> None:
        del loader.issues[self.issues :]
        del loader.cases[self.cases :]
        del loader._duplicates[self.duplicates :]
        # Ids are added in order, so the file's own are the newest entries.
        for _ in range(len(loader.case_files) - self.case_files):
            loader.case_files.popitem()
        for _ in range(len(loader._first_lines) - self.first_lines):
            loader._first_lines.popitem()


class _Digesting:
    """A binary file read through, each chunk added to a digest on the way: the digest is
    of the bytes the YAML parser saw, however the file changes around it."""

    def __init__(self, handle: IO[bytes], digest: Any) -> None:
        self._handle = handle
        self._digest = digest
        self.name = handle.name  # what the parser names in its error marks

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._digest.update(chunk)
        return chunk


def _case_files(cases_dir: Path) -> Iterator[Path]:
    """Case files under `cases_dir`, recursively, in sorted path order; dot-files skipped."""
    if not cases_dir.is_dir():
        return iter(())
    found = [
        path
        for path in cases_dir.rglob("*")
        if path.suffix in CASE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(cases_dir).parts)
    ]
    return iter(sorted(found, key=lambda p: p.relative_to(cases_dir).as_posix()))


def _too_long(entry: dict[Any, Any]) -> Iterator[tuple[YamlPath, YamlPath, str]]:
    """(field, path of its line, message) for each string or key over the field limit."""
    todo: list[tuple[YamlPath, Any]] = [((), entry)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                size = _size_over_limit(key)
                if size is not None:
                    yield path, (*path, key), f"a key of {size:,} bytes is too long: {_FIELD_LIMIT}"
                todo.append(((*path, key), item))
        elif isinstance(value, list):
            todo.extend(((*path, index), item) for index, item in enumerate(value))
        else:
            size = _size_over_limit(value)
            if size is not None:
                yield path, path, f"{size:,} bytes of text is too long: {_FIELD_LIMIT}"


def _size_over_limit(value: object) -> int | None:
    """The size in bytes of a string (UTF-8) or bytes value over the field limit, else None."""
    if isinstance(value, str) and len(value) > _FIELD_LIMIT_CHARS:
        size = len(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        size = len(value)
    else:
        return None
    return size if size > FIELD_LIMIT_BYTES else None


def _name_missing_expectation(issue: SuiteIssue) -> SuiteIssue:
    """A missing or null `expect` says "no expectation", like an empty one does."""
    if issue.field == "expect" and issue.message.startswith(
        ("missing required field", "expected a mapping, got nothing")
    ):
        return replace(issue, message=_NO_EXPECTATION)
    return issue


def _jsonl_id_lines(file: Path, ids: set[str]) -> dict[str, int]:
    """The line where each of `ids` first appears in a JSONL file (re-read on error only)."""
    found: dict[str, int] = {}
    try:
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    entry = orjson.loads(raw.removeprefix(_BOM) if number == 1 else raw)
                except orjson.JSONDecodeError:
                    continue
                case_id = entry.get("id") if isinstance(entry, dict) else None
                if isinstance(case_id, str) and case_id in ids and case_id not in found:
                    found[case_id] = number
    except OSError:
        pass
    return found


def _inside_entry(issue: SuiteIssue) -> SuiteIssue:
    """`[3].expect.regex` → `expect.regex`: the line already says which entry."""
    field = issue.field
    if field and field.startswith("["):
        _, _, rest = field.partition("]")
        return replace(issue, field=rest.lstrip(".") or None)
    return issue


def _where(file: Path, line: int | None) -> str:
    return str(file) if line is None else f"{file}:{line}"


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
