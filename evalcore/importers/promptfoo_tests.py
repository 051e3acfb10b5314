"""Reading a promptfoo config's tests: written inline, in YAML, JSON, JSONL or CSV files
named by `file://` (globs too), or grouped in scenarios; `defaultTest` merged into each
(test values win), list-valued vars expanded into one test per combination as promptfoo
does, and `file://` vars read.

Every test keeps the file and line it is written at, and every `file://` path is read
relative to the config's folder, as promptfoo reads it. Tests are yielded one at a time,
so a CSV file of 50,000 rows is never held as a list of tests.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import orjson

from evalcore.importers.conversion import ImportRefused, NotConverted, Origin
from evalcore.importers.promptfoo_assertions import (
    RUNS_CODE,
    Written,
    assertion_from_string,
    is_code_ref,
    js_string,
)
from evalcore.importers.sources import csv_rows, jsonl_records, read_text
from evalcore.suite.errors import SuiteError
from evalcore.suite.yaml_lines import LineMap, YamlDocument, YamlListReader, parse_yaml

TEST_FILE_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".csv", ".tsv")
_BINARY_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".pdf",
        ".mp3",
        ".wav",
        ".ogg",
        ".flac",
        ".m4a",
        ".mp4",
        ".mov",
        ".webm",
        ".avi",
        ".mkv",
        ".xlsx",
        ".xls",
        ".docx",
        ".zip",
    ]
)
# Caches of what repeats across tests (files named, cells parsed) keep at most this many.
_CACHE_LIMIT = 4096
_REMOTE = ("huggingface://", "http://", "https://", "gs://", "s3://", "langfuse://")
# Test options that change what a case holds, read here; any other is listed.
_OPTIONS_READ = frozenset({"prefix", "suffix", "disableVarExpansion", "disableDefaultAsserts"})
_TEST_KEYS_READ = frozenset({"description", "vars", "assert", "options", "metadata", "prompts"})
_OPTION_REASONS = {
    "transform": (
        "changes the reply with code before the assertions check it; the expectations here "
        "check the reply as the route sends it, review them"
    ),
    "postprocess": RUNS_CODE,
    "provider": "evalcore's judge model is set in the scorecard's judge",
    "rubricPrompt": "evalcore's judge prompt is set in the scorecard's judge",
}
_TEST_REASONS = {
    "provider": "the route under test is set in evalcore's scorecard, not per case",
    "providers": (
        "runs only on some of the config's providers; evalcore runs every case against the "
        "scorecard's route"
    ),
    "providerOutput": (
        "grades an output given in the test without calling a model; evalcore always calls "
        "the route"
    ),
    "assertScoringFunction": RUNS_CODE,
}


class Listing:
    """What is not converted, in source order: a part of a test listed once where it is
    written however many cases it touches; a dropped test once per case it would have
    given."""

    def __init__(self, into: list[NotConverted]) -> None:
        self._into = into
        self._seen: set[tuple[Origin, str]] = set()

    def part(self, origin: Origin, what: str, reason: str) -> None:
        key = (origin, what)
        if key not in self._seen:
            self._seen.add(key)
            self._into.append(NotConverted(origin, what, reason))

    def dropped(self, origin: Origin, what: str, reason: str) -> None:
        self._into.append(NotConverted(origin, what, reason, dropped=True))


@dataclass(frozen=True, slots=True)
class Place:
    """Where a value is written: the file as shown, and its line, from the file's line
    map and the value's path in it (YAML, JSON) or given (a CSV or JSONL record)."""

    file: str
    lines: LineMap | None = None
    path: tuple[object, ...] = ()
    line: int | None = None

    def at(self, *steps: object) -> Place:
        if self.lines is None:
            return self
        return Place(self.file, self.lines, (*self.path, *steps))

    def origin(self) -> Origin:
        if self.lines is None:
            return Origin(self.file, self.line)
        return Origin(self.file, self.lines.line_of(self.path))

    def each(self, value: Any) -> Iterator[tuple[Any, Place]]:
        """Each item of a list with its place, or a single value here; nothing for None
        (promptfoo takes one or a list wherever it takes tests, scenarios or providers)."""
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield item, self.at(index)
        elif value is not None:
            yield value, self


@dataclass(frozen=True, slots=True)
class Ref:
    """One file a `file://` reference names: on disk, as origins show it, and as written
    (one match, for a glob)."""

    path: Path
    shown: str
    written: str


class Files:
    """`file://` references, resolved against the config's folder as promptfoo resolves
    them, and shown as the config's path joined with the reference as written."""

    def __init__(self, config: Path, shown: str) -> None:
        self.base = config.parent
        self._shown_base = PurePosixPath(PurePath(shown).parent.as_posix())
        self._refs: dict[tuple[str, tuple[str, ...]], list[Ref]] = {}
        self._values: dict[Path, Any] = {}

    def shown(self, written: str) -> str:
        return str(self._shown_base / written)

    def refs(self, ref: str, at: Origin, *, folder: tuple[str, ...] = ()) -> list[Ref]:
        """The files `ref` names, a glob's matches sorted; a folder gives its files ending
        in one of `folder`'s suffixes. A reference to nothing is refused, naming `at`."""
        key = (ref, folder)
        found = self._refs.get(key)
        if found is None:
            if len(self._refs) >= _CACHE_LIMIT:
                self._refs.clear()
            found = self._refs[key] = self._find(ref, at, folder)
        return found

    def _find(self, ref: str, at: Origin, folder: tuple[str, ...]) -> list[Ref]:
        written = ref.removeprefix("file://")
        if glob.has_magic(written):
            matches = sorted(
                match
                for match in glob.glob(written, root_dir=self.base, recursive=True)
                if (self.base / match).is_file()
            )
            if not matches:
                looked = os.path.abspath(self.base / written)
                raise ImportRefused(f"{at}: file://{written} matches no file (looked for {looked})")
            return [Ref(self.base / match, self.shown(match), match) for match in matches]
        path = self.base / written
        if not path.exists():
            looked = os.path.abspath(path)
            raise ImportRefused(f"{at}: file://{written} not found (looked for {looked})")
        if path.is_dir() and folder:
            names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in folder)
            inside = PurePosixPath(written)
            return [
                Ref(path / name, self.shown(str(inside / name)), str(inside / name))
                for name in names
            ]
        return [Ref(path, self.shown(written), written)]

    def text(self, ref: Ref) -> str:
        return read_text(ref.path, ref.shown)

    def value(self, ref: Ref) -> Any:
        """A var's or an assertion's file: JSON and YAML read as data, anything else as
        text. Read once however many tests name it."""
        found = self._values.get(ref.path, _MISSING)
        if found is _MISSING:
            if len(self._values) >= _CACHE_LIMIT:
                self._values.clear()
            found = self._values[ref.path] = _parsed(ref, self.text(ref))
        return found

    def document(self, ref: Ref) -> YamlDocument:
        """A YAML (or JSON) file with the line of every value."""
        return yaml_document(self.text(ref), ref.shown, "not YAML")

    def load(self, ref: str, at: Origin) -> Any:
        """The content of a `file://` value (one file; a glob's first match)."""
        return self.value(self.refs(ref, at)[0])


_MISSING = object()


def _parsed(ref: Ref, text: str) -> Any:
    suffix = ref.path.suffix.lower()
    if suffix == ".json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ImportRefused(f"{ref.shown}: not JSON: {exc}") from None
    if suffix in (".yaml", ".yml"):
        return yaml_document(text, ref.shown, "not YAML").data
    return text


def yaml_document(text: str, shown: str, problem: str) -> YamlDocument:
    """`text` read as YAML with lines, or refused as `{shown}:{line}: {problem}: why`."""
    try:
        document = parse_yaml(text, Path(shown))
    except SuiteError as exc:
        issue = exc.issues[0]
        raise ImportRefused(_refusal(shown, issue.line, problem, issue.message)) from None
    if document.issues:
        issue = document.issues[0]
        raise ImportRefused(_refusal(shown, issue.line, problem, issue.message))
    return document


def _refusal(shown: str, line: int | None, problem: str, message: str) -> str:
    where = shown if line is None else f"{shown}:{line}"
    return f"{where}: {problem}: {message.removeprefix('invalid YAML: ')}"


@dataclass(slots=True)
class Partial:
    """A test as written (or `defaultTest`, or a scenario's config entry), before the parts
    are merged and list vars expanded. `var_places` finds the line a var is written on."""

    place: Place
    vars: dict[str, Any]
    asserts: list[Written]
    options: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    prompts: list[str] | None = None
    var_places: tuple[tuple[Mapping[str, Any], Place], ...] = ()


@dataclass(slots=True)
class Test:
    """One test as promptfoo runs it: `vars` as written (one combination; part of the
    case's key), `values` as templates see them (`file://` vars read). A test that cannot
    be run here says why in `dropped`."""

    origin: Origin
    vars: dict[str, Any]
    values: dict[str, Any]
    asserts: list[Written]
    options: dict[str, Any]
    tags: list[str]
    notes: str | None
    prompts: list[str] | None
    dropped: str | None = None


def iter_tests(
    config: Mapping[str, Any], place: Place, files: Files, listing: Listing
) -> Iterator[Test]:
    """Every test of the config, `tests` first, then each scenario's."""
    defaults = read_default_test(config.get("defaultTest"), place.at("defaultTest"), files, listing)
    for partial in written_tests(config.get("tests"), place.at("tests"), files, listing):
        yield from expand(merge(defaults, partial), files)
    yield from scenario_tests(
        config.get("scenarios"), place.at("scenarios"), defaults, files, listing
    )


def read_default_test(value: Any, place: Place, files: Files, listing: Listing) -> Partial | None:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("file://"):
        ref = files.refs(value, place.origin())[0]
        document = files.document(ref)
        value, place = document.data, Place(ref.shown, document.lines)
    return read_partial(value, place, files, listing, role="defaultTest")


def written_tests(value: Any, place: Place, files: Files, listing: Listing) -> Iterator[Partial]:
    """Tests as written under `tests` (or a scenario's `tests`): a list of tests and
    `file://` references, or one reference."""
    for item, item_place in place.each(value):
        if isinstance(item, str):
            yield from _file_tests(item, item_place, files, listing)
        elif (
            isinstance(item, Mapping) and "path" in item and not ({"vars", "assert"} & item.keys())
        ):
            listing.dropped(item_place.origin(), f"tests {item['path']}", _generated(item["path"]))
        else:
            partial = read_partial(item, item_place, files, listing, role="test")
            if partial is not None:
                yield partial


def _generated(ref: Any) -> str:
    return f"tests generated by code ({ref}); {RUNS_CODE}"


def _file_tests(ref: str, place: Place, files: Files, listing: Listing) -> Iterator[Partial]:
    origin = place.origin()
    if ref.startswith(_REMOTE):
        listing.dropped(
            origin,
            f"tests {ref}",
            "evalcore imports local files only; export the dataset as CSV or JSONL",
        )
        return
    if not ref.startswith("file://"):
        listing.dropped(origin, f"tests {ref}", "a test is a mapping or a file:// reference")
        return
    if is_code_ref(ref):
        listing.dropped(origin, f"tests {ref}", _generated(ref))
        return
    for found in files.refs(ref, origin, folder=TEST_FILE_SUFFIXES):
        suffix = found.path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            yield from _csv_tests(found, files, listing)
        elif suffix == ".jsonl":
            for line, record in jsonl_records(files.text(found), found.shown):
                partial = read_partial(record, Place(found.shown, line=line), files, listing)
                if partial is not None:
                    yield partial
        elif suffix in (".yaml", ".yml"):
            yield from _yaml_tests(found, files, listing)
        elif suffix == ".json":
            yield from _json_tests(found, files, listing)
        else:
            listing.dropped(
                Origin(found.shown),
                f"tests {found.shown}",
                "not a tests file evalcore reads (YAML, JSON, JSONL or CSV)",
            )


def _yaml_tests(ref: Ref, files: Files, listing: Listing) -> Iterator[Partial]:
    # Read one test at a time: a big YAML file costs no more memory than one test.
    try:
        reader = YamlListReader(files.text(ref), Path(ref.shown))
        if reader.not_a_list is not None:
            document = reader.not_a_list
            partial = read_partial(document.data, Place(ref.shown, document.lines), files, listing)
            if partial is not None:
                yield partial
            return
        for entry in reader:
            place = Place(ref.shown, entry.lines, (entry.index,))
            partial = read_partial(entry.data, place, files, listing)
            if partial is not None:
                yield partial
    except SuiteError as exc:
        issue = exc.issues[0]
        raise ImportRefused(_refusal(ref.shown, issue.line, "not YAML", issue.message)) from None
    if reader.issues:
        issue = reader.issues[0]
        raise ImportRefused(_refusal(ref.shown, issue.line, "not YAML", issue.message))


def _json_tests(ref: Ref, files: Files, listing: Listing) -> Iterator[Partial]:
    text = files.text(ref)
    try:
        document = parse_yaml(text, Path(ref.shown))
        data, lines = document.data, document.lines
    except SuiteError:
        # Valid JSON that YAML 1.1 reads differently: read it as JSON, without lines.
        try:
            data, lines = orjson.loads(text), None
        except orjson.JSONDecodeError as exc:
            raise ImportRefused(f"{ref.shown}: not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        path = (index,) if isinstance(data, list) else ()
        place = Place(ref.shown, lines, path) if lines is not None else Place(ref.shown)
        partial = read_partial(item, place, files, listing)
        if partial is not None:
            yield partial


def _csv_tests(ref: Ref, files: Files, listing: Listing) -> Iterator[Partial]:
    """Rows as tests: columns are vars, except promptfoo's `__` columns (`__expected`...)."""
    header, rows = csv_rows(files.text(ref), ref.shown)
    columns = _CsvColumns(header, Origin(ref.shown, 1), listing)
    for line, row in rows:
        yield columns.test(row, Place(ref.shown, line=line), listing)


class _CsvColumns:
    """What each column of a promptfoo CSV means, worked out once from the header."""

    def __init__(self, header: list[str], origin: Origin, listing: Listing) -> None:
        self.vars: list[tuple[int, str]] = []
        self.expected: list[int] = []
        self.config: list[tuple[int, int, str]] = []
        self.metadata: list[tuple[int, str, bool]] = []
        self.special: dict[str, int] = {}
        # The same cell text repeats down a column: read each once (the specs are not changed).
        self._parsed: dict[str, dict[str, Any]] = {}
        for index, name in enumerate(header):
            if name.startswith("__expected"):
                self.expected.append(index)
            elif name in ("__description", "__prefix", "__suffix", "__metric", "__threshold"):
                self.special[name] = index
            elif name in ("__providerOutput", "__provider_output"):
                self.special["__providerOutput"] = index
            elif name.startswith("__metadata:"):
                key = name[len("__metadata:") :]
                self.metadata.append((index, key.removesuffix("[]"), key.endswith("[]")))
            elif name.startswith("__config:"):
                self._config_column(index, name, origin, listing)
            elif name.startswith("__"):
                listing.part(origin, f"column {name}", "not a promptfoo column evalcore reads")
            elif name:
                self.vars.append((index, name))

    def _config_column(self, index: int, name: str, origin: Origin, listing: Listing) -> None:
        target, _, key = name[len("__config:") :].partition(":")
        number = target.removeprefix("__expected")
        if not target.startswith("__expected") or (number and not number.isdigit()) or not key:
            listing.part(origin, f"column {name}", "write it as __config:__expected<N>:threshold")
            return
        self.config.append((index, int(number) - 1 if number else 0, key))

    def _assertion(self, text: str) -> dict[str, Any]:
        spec = self._parsed.get(text)
        if spec is None:
            if len(self._parsed) >= _CACHE_LIMIT:
                self._parsed.clear()
            spec = self._parsed[text] = assertion_from_string(text)
        return spec

    def test(self, row: list[str], place: Place, listing: Listing) -> Partial:
        origin = place.origin()
        width = len(row)

        def cell(index: int) -> str:
            return row[index] if index < width else ""

        values = {name: cell(index) for index, name in self.vars}
        specs = [self._assertion(cell(i)) for i in self.expected if cell(i).strip()]
        for index, target, key in self.config:
            setting = cell(index).strip()
            if setting and 0 <= target < len(specs):
                try:
                    specs[target] = {**specs[target], key: float(setting)}
                except ValueError:
                    listing.part(origin, f"__config {key} {setting}", "not a number")
        options: dict[str, Any] = {}
        for name in ("__prefix", "__suffix"):
            if name in self.special and cell(self.special[name]):
                options[name[2:]] = cell(self.special[name])
        description = cell(self.special["__description"]) if "__description" in self.special else ""
        self._listed(cell, origin, listing)
        tags: list[str] = []
        for index, key, many in self.metadata:
            text = cell(index).strip()
            if text:
                parts = (
                    [p.strip().replace("\\,", ",") for p in _split_escaped(text)]
                    if many
                    else [text]
                )
                tags.extend(f"{key}:{part}" for part in parts if part)
        return Partial(
            place,
            values,
            [Written(spec, origin) for spec in specs],
            options,
            tags,
            description or None,
        )

    def _listed(self, cell: Callable[[int], str], origin: Origin, listing: Listing) -> None:
        """The row's columns that change how promptfoo scores it: listed at the row."""
        metric = cell(self.special["__metric"]).strip() if "__metric" in self.special else ""
        if metric:
            listing.part(
                origin,
                f"metric {metric}",
                "promptfoo reports it as a named score; evalcore reports per case and tag",
            )
        threshold = (
            cell(self.special["__threshold"]).strip() if "__threshold" in self.special else ""
        )
        if threshold:
            listing.part(origin, f"test threshold {threshold}", _threshold_reason(threshold))
        if "__providerOutput" in self.special and cell(self.special["__providerOutput"]).strip():
            listing.part(origin, "providerOutput", _TEST_REASONS["providerOutput"])


def _split_escaped(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if char == "," and not escaped:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        escaped = char == "\\" and not escaped
    parts.append("".join(current))
    return parts


def _threshold_reason(threshold: Any) -> str:
    return (
        f"promptfoo passes the test when its weighted score reaches {threshold}; an evalcore "
        "case passes when every expectation passes"
    )


def read_partial(
    raw: Any, place: Place, files: Files, listing: Listing, *, role: str = "test"
) -> Partial | None:
    """One test (or `defaultTest`, or a scenario's config entry) as written; whatever in it
    has no counterpart is listed at its line."""
    origin = place.origin()
    if not isinstance(raw, Mapping):
        listing.dropped(
            origin, role, "not a promptfoo test: a test is a mapping with vars and assert"
        )
        return None
    values = raw.get("vars")
    if isinstance(values, str) and values.startswith("file://"):
        values = files.load(values, place.at("vars").origin())
    if values is None:
        values = {}
    elif not isinstance(values, Mapping):
        listing.part(origin, f"{role} vars", "vars must be a mapping of names to values")
        values = {}
    asserts = _asserts(raw.get("assert"), place, listing)
    options = raw.get("options")
    if not isinstance(options, Mapping):
        if options is not None:
            listing.part(origin, f"{role} options", "options must be a mapping")
        options = {}
    for key in options:
        if key not in _OPTIONS_READ:
            reason = _OPTION_REASONS.get(
                key, "a promptfoo run setting with no counterpart in an evalcore case"
            )
            listing.part(place.at("options", key).origin(), f"{role} option {key}", reason)
    _list_test_fields(raw, place, role, listing)
    description = raw.get("description")
    prompts = raw.get("prompts")
    return Partial(
        place,
        dict(values),
        asserts,
        dict(options),
        _tags(raw.get("metadata"), place, role, listing),
        description if isinstance(description, str) and description.strip() else None,
        [str(p) for p in prompts] if isinstance(prompts, list) else None,
        ((values, place),),
    )


def _asserts(value: Any, place: Place, listing: Listing) -> list[Written]:
    if value is None:
        return []
    if not isinstance(value, list):
        listing.part(place.at("assert").origin(), "assert", "assert must be a list of assertions")
        return []
    written = []
    for index, spec in enumerate(value):
        origin = place.at("assert", index).origin()
        if isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
            written.append(Written(spec, origin))
        else:
            listing.part(origin, "assertion", "not an assertion: a mapping with a type")
    return written


def _list_test_fields(raw: Mapping[str, Any], place: Place, role: str, listing: Listing) -> None:
    for key, value in raw.items():
        if key in _TEST_KEYS_READ or value is None:
            continue
        origin = place.at(key).origin()
        if key == "threshold":
            listing.part(origin, f"{role} threshold {value}", _threshold_reason(value))
        elif key in _TEST_REASONS:
            shown = f" {value}" if isinstance(value, str) else ""
            listing.part(origin, f"{role} {key}{shown}", _TEST_REASONS[key])
        else:
            listing.part(origin, f"{role} {key}", "not a promptfoo test field evalcore reads")


def _tags(metadata: Any, place: Place, role: str, listing: Listing) -> list[str]:
    """promptfoo's filterable metadata as tags `key:value`, one per value of a list."""
    if not isinstance(metadata, Mapping):
        return []
    tags: list[str] = []
    for key, value in metadata.items():
        items = value if isinstance(value, list) else [value]
        if all(isinstance(item, str | int | float | bool) for item in items):
            tags.extend(f"{key}:{js_string(item)}" for item in items)
        else:
            listing.part(
                place.at("metadata", key).origin(),
                f"{role} metadata {key}",
                "only text, numbers and lists of them become tags",
            )
    return tags


def merge(defaults: Partial | None, *parts: Partial) -> Partial:
    """`defaultTest`, then each part in turn (a scenario's config entry, the test): vars,
    options and metadata merged with later values winning, assertions joined in order."""
    if defaults is None and len(parts) == 1:
        return parts[0]
    chain = [defaults, *parts] if defaults is not None else list(parts)
    last = parts[-1]
    options: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for part in chain:
        options.update(part.options)
        values.update(part.vars)
    asserts: list[Written] = []
    for part in chain:
        if part is defaults and options.get("disableDefaultAsserts"):
            continue
        asserts.extend(part.asserts)
    description = next((p.description for p in reversed(parts) if p.description), None)
    prompts = next((p.prompts for p in reversed(chain) if p.prompts is not None), None)
    return Partial(
        last.place,
        values,
        asserts,
        options,
        list(dict.fromkeys(tag for part in chain for tag in part.tags)),
        description,
        prompts,
        tuple(item for part in chain for item in part.var_places),
    )


def expand(partial: Partial, files: Files) -> Iterator[Test]:
    """One test per combination of list-valued vars (promptfoo expands a list of strings,
    and a `file://` glob into its files), with `file://` vars read."""
    origin = partial.place.origin()
    choices: list[tuple[str, list[Any]]] = []
    expand_lists = not partial.options.get("disableVarExpansion")
    for name, value in partial.vars.items():
        if isinstance(value, str) and value.startswith("file://") and not is_code_ref(value):
            refs = files.refs(value, _var_origin(partial, name))
            if len(refs) > 1:
                choices.append((name, [f"file://{ref.written}" for ref in refs]))
        elif expand_lists and isinstance(value, list) and value and isinstance(value[0], str):
            choices.append((name, value))
    if not choices:
        combinations: Iterator[dict[str, Any]] = iter([partial.vars])
    else:
        names = [name for name, _ in choices]
        combinations = (
            {**partial.vars, **dict(zip(names, picked, strict=True))}
            for picked in itertools.product(*(options for _, options in choices))
        )
    for combination in combinations:
        values, dropped = _read_vars(combination, partial, files)
        yield Test(
            origin,
            combination,
            values,
            partial.asserts,
            partial.options,
            partial.tags,
            partial.description,
            partial.prompts,
            dropped,
        )


def _read_vars(
    combination: dict[str, Any], partial: Partial, files: Files
) -> tuple[dict[str, Any], str | None]:
    """The vars as templates see them: each `file://` var read (text, or data for JSON
    and YAML); the reason when one cannot be (code, or a binary file)."""
    values = combination
    for name, value in combination.items():
        if not (isinstance(value, str) and value.startswith("file://")):
            continue
        if is_code_ref(value):
            return combination, f"var {name} is computed by code ({value}); {RUNS_CODE}"
        ref = files.refs(value, _var_origin(partial, name))[0]
        suffix = ref.path.suffix.lower()
        if suffix in _BINARY_SUFFIXES:
            return combination, (
                f"var {name} is a {suffix} file ({value}); an evalcore case holds text messages"
            )
        if values is combination:
            values = dict(combination)
        values[name] = files.value(ref)
    return values, None


def _var_origin(partial: Partial, name: str) -> Origin:
    for values, place in reversed(partial.var_places):
        if name in values:
            found: Origin = place.at("vars", name).origin()
            return found
    return partial.place.origin()


def scenario_tests(
    value: Any, place: Place, defaults: Partial | None, files: Files, listing: Listing
) -> Iterator[Test]:
    """Each scenario's config entries × its tests, `defaultTest` merged into each."""
    for scenario, scenario_place in _scenarios(value, place, files, listing):
        configs = _scenario_configs(
            scenario.get("config"), scenario_place.at("config"), files, listing
        )
        tests = list(
            written_tests(scenario.get("tests"), scenario_place.at("tests"), files, listing)
        )
        fallback = scenario.get("description")
        for entry in configs:
            for test in tests:
                merged = merge(defaults, entry, test)
                if merged.description is None and isinstance(fallback, str):
                    merged.description = fallback
                yield from expand(merged, files)


def _scenarios(
    value: Any, place: Place, files: Files, listing: Listing
) -> Iterator[tuple[Mapping[str, Any], Place]]:
    for item, item_place in place.each(value):
        if isinstance(item, Mapping):
            yield item, item_place
        elif isinstance(item, str) and item.startswith("file://"):
            for ref in files.refs(item, item_place.origin()):
                document = files.document(ref)
                file_place = Place(ref.shown, document.lines)
                yield from _scenarios(document.data, file_place, files, listing)
        else:
            listing.dropped(
                item_place.origin(), "scenario", "a scenario is a mapping with config and tests"
            )


def _scenario_configs(value: Any, place: Place, files: Files, listing: Listing) -> list[Partial]:
    if value is None:
        value = [{}]
    if not isinstance(value, list):
        listing.dropped(place.origin(), "scenario config", "config must be a list of vars sets")
        return []
    entries: list[Partial] = []
    for index, item in enumerate(value):
        item_place = place.at(index)
        ref = item.get("$values", item.get("$expand")) if isinstance(item, Mapping) else None
        if isinstance(ref, str) and ref.startswith("file://"):
            for found in files.refs(ref, item_place.origin()):
                document = files.document(found)
                loaded = document.data if isinstance(document.data, list) else [document.data]
                for position, raw in enumerate(loaded):
                    path = (position,) if isinstance(document.data, list) else ()
                    entry_place = Place(found.shown, document.lines, path)
                    partial = read_partial(raw, entry_place, files, listing, role="scenario config")
                    if partial is not None:
                        entries.append(partial)
            continue
        partial = read_partial(item, item_place, files, listing, role="scenario config")
        if partial is not None:
            entries.append(partial)
    return entries
