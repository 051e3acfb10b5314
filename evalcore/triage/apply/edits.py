"""Edits to the suite's files that keep every byte they do not change.

A case's `set:` is replaced where it is written (found through the YAML nodes' positions,
or on its JSONL line); a new case is appended as text in the style of the example suite;
a threshold is changed by a ruamel round trip of the scorecard, which keeps comments and
layout, with a short end-of-line comment saying who changed it.

ruamel writes YAML 1.2 but the suite's loader reads YAML 1.1, so what is written is
quoted and checked by the loader's own rules.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from evalcore.suite import Case, EvalSet, SuiteError, case_hash
from evalcore.suite.yaml_lines import parse_yaml, reads_as_text

OUR_COMMENT = re.compile(r"^#?\s*[0-9.]+ -> [0-9.]+ by ")
_QUOTED_SCORERS = {"contains", "not_contains", "regex"}


class CannotEdit(Exception):
    """This edit cannot be made without touching other bytes: it is left to a person."""


@dataclass
class CaseFileEdit:
    """A case file being edited: its text as read, spans to replace, entries to append."""

    path: Path
    raw: bytes | None
    bom: bool
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    # The node tree of `text`, composed once so that node identity holds, and its cases by id.
    _nodes: tuple[Node | None, dict[str, MappingNode]] | None = field(
        default=None, init=False, repr=False
    )

    def result(self) -> str:
        text = self.text
        for start, end, replacement in sorted(self.spans, reverse=True):
            text = text[:start] + replacement + text[end:]
        newline = "\r\n" if "\r\n" in self.text else "\n"
        for entry in self.appended:
            if text and not text.endswith("\n"):
                text += newline
            if text.strip() and not text.endswith(newline * 2):
                text += newline
            text += entry.replace("\n", newline)
        return text

    def append(self, entry: str, *, header: str, where: str) -> None:
        """Add `entry` at the end. An empty file gets `header` first; `[]` is dropped; a
        flow list cannot take entries."""
        if not self.text.strip() and not self.appended:
            self.text = header + self.text.lstrip("\n")
        else:
            self._make_room(where)
        self.appended.append(entry)

    def _make_room(self, where: str) -> None:
        try:
            root = _compose(self.text)
        except YAMLError as exc:  # pragma: no cover - the suite loaded
            raise CannotEdit(f"cannot read {self.path}: {exc}") from None
        if root is None:
            return
        if isinstance(root, SequenceNode):
            if not root.flow_style:
                return
            if not root.value:
                span = (root.start_mark.index, root.end_mark.index, "")
                if span not in self.spans:
                    self.spans.append(span)
                return
        raise CannotEdit(
            f"{where} is not a block list of cases; new cases cannot be appended to it"
        )

    def move_to_set(
        self, case_id: str, target: EvalSet, where: str, *, source: EvalSet = EvalSet.blocking
    ) -> None:
        """Replace `source` in the case's own `set:` with `target`."""
        if self.path.suffix == ".jsonl":
            self.spans.append(_jsonl_set_span(self.text, case_id, source, target, where))
        else:
            self.spans.append(self._yaml_set_span(case_id, source, target, where))

    def _yaml_set_span(
        self, case_id: str, source: EvalSet, target: EvalSet, where: str
    ) -> tuple[int, int, str]:
        root, cases = self._composed()
        mapping = cases.get(case_id)
        if mapping is None:  # pragma: no cover - the suite loaded it from this file
            raise CannotEdit(f"{where}: cannot find case {case_id}")
        node = next(
            (v for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == "set"),
            None,
        )
        if node is None or not isinstance(node, ScalarNode):
            raise CannotEdit(
                f"{where}: the set of {case_id} comes from a YAML merge (<<), not its own "
                "`set:` line; change it by hand"
            )
        start, end = node.start_mark.index, node.end_mark.index
        written = self.text[start:end]
        if written.strip("'\"") != source.value or _shared(root, mapping, node):
            raise CannotEdit(
                f"{where}:{node.start_mark.line + 1}: the `set:` of {case_id} is shared or "
                "written in a form this command does not edit; change it by hand"
            )
        return start, end, written.replace(source.value, target.value)

    def _composed(self) -> tuple[Node | None, dict[str, MappingNode]]:
        if self._nodes is None:
            try:
                root = _compose(self.text)
            except YAMLError as exc:  # pragma: no cover - the suite loaded
                raise CannotEdit(f"cannot read {self.path}: {exc}") from None
            found: dict[str, MappingNode] = {}
            for entry in root.value if isinstance(root, SequenceNode) else []:
                if not isinstance(entry, MappingNode):
                    continue
                for key, value in entry.value:
                    if key.value == "id" and isinstance(value, ScalarNode):
                        found.setdefault(value.value, entry)
            self._nodes = (root, found)
        return self._nodes


def _compose(text: str) -> Node | None:
    """The document's node tree, each node knowing where it is written in `text`."""
    root: Node | None = YAML(typ="safe", pure=True).compose(text)
    return root


def _shared(root: Node | None, *nodes: Node) -> bool:
    """Whether any of `nodes` is used more than once under `root` (an anchor and an alias,
    or a merge `<<: *anchor`): editing it would change another case too."""
    wanted = {id(node) for node in nodes}
    seen: set[int] = set()
    uses: dict[int, int] = {}
    stack: list[Node] = [root] if root is not None else []
    while stack:
        current = stack.pop()
        if id(current) in wanted:
            uses[id(current)] = uses.get(id(current), 0) + 1
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, MappingNode):
            for key, value in current.value:
                stack.extend((key, value))
    return any(count > 1 for count in uses.values())


def _jsonl_set_span(
    text: str, case_id: str, source: EvalSet, target: EvalSet, where: str
) -> tuple[int, int, str]:
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        try:
            entry = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            entry = None
        if isinstance(entry, dict) and entry.get("id") == case_id:
            hits = list(re.finditer(rf'("set"\s*:\s*)"{source.value}"', line))
            if len(hits) != 1:
                raise CannotEdit(f"{where}:{number}: cannot find the set of {case_id} to change")
            start, end = hits[0].span()
            replacement = f'{hits[0].group(1)}"{target.value}"'
            return offset + start, offset + end, replacement
        offset += len(line)
    raise CannotEdit(f"{where}: cannot find case {case_id}")  # pragma: no cover


# -- the scorecard: a ruamel round trip --------------------------------------------------


def _round_trip() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def dump(doc: Any) -> str:
    out = io.StringIO()
    _round_trip().dump(doc, out)
    return out.getvalue()


def load_for_edit(text: str) -> Any:
    """The round-trip document of `text`; `CannotEdit` when dumping it again would change
    any byte (then an edit would rewrite other lines too)."""
    doc = _round_trip().load(text)
    if dump(doc) != text:
        raise CannotEdit("the file does not survive a YAML round trip unchanged")
    return doc


def set_eol_comment(holder: Any, key: Any, comment: str) -> None:
    """Put `# comment` at the end of `key`'s line, keeping comments on the lines after it.

    A comment already there is kept (ours from an earlier change is replaced).
    """
    token = _eol_token(holder, key)
    rest = ""
    if token is not None:
        first, _, rest = token.value.partition("\n")
        first = first.strip()
        if first and not OUR_COMMENT.match(first.lstrip("# ")):
            comment = f"{first.lstrip('# ')}; {comment}"
    holder.yaml_add_eol_comment(f"# {comment}", key)
    if token is not None:
        new = holder.ca.items[key][2]
        new.value = new.value.rstrip("\n") + "\n" + rest


def _eol_token(holder: Any, key: Any) -> Any:
    """ruamel's comment token after `key`'s value: its end-of-line comment, then the
    comment lines that follow it (None when there are none)."""
    entry = holder.ca.items.get(key)
    return entry[2] if entry is not None and len(entry) > 2 else None


def eol_comment(holder: Any, key: Any) -> str:
    """The comment at the end of `key`'s line, without its `#` (empty when there is none)."""
    token = _eol_token(holder, key)
    return "" if token is None else str(token.value).partition("\n")[0].strip().lstrip("# ")


# -- a new case, as written ------------------------------------------------------------


def render_case(body: dict[str, Any]) -> str:
    """One case as a YAML list entry in the style of the example suite's files."""

    def flow_seq(items: list[Any], quote: bool = False) -> CommentedSeq:
        seq = CommentedSeq([_quoted(i) if quote else _scalar(i) for i in items])
        seq.fa.set_flow_style()
        return seq

    def convert(value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            mapping = CommentedMap((_scalar(k), convert(v, depth + 1)) for k, v in value.items())
            flat = all(not isinstance(v, dict | list) for v in value.values())
            if flat and depth >= 2 and len(orjson.dumps(value, default=str)) <= 90:
                mapping.fa.set_flow_style()
            return mapping
        if isinstance(value, list):
            if all(not isinstance(v, dict | list) for v in value):
                return flow_seq(value)
            return CommentedSeq(convert(v, depth + 1) for v in value)
        return _scalar(value)

    case = CommentedMap()
    for key, value in body.items():
        if key == "tags":
            case[key] = flow_seq(value)
        elif key == "source":
            case[key] = CommentedMap((k, _scalar(v)) for k, v in value.items())
            case[key].fa.set_flow_style()
        elif key == "input":
            messages = CommentedSeq()
            for message in value["messages"]:
                converted = CommentedMap(
                    (k, _quoted(v) if k == "content" else _scalar(v)) for k, v in message.items()
                )
                content = message.get("content")
                if isinstance(content, str) and len(content) <= 80 and "\n" not in content:
                    converted.fa.set_flow_style()
                messages.append(converted)
            case[key] = CommentedMap({"messages": messages})
        elif key == "expect":
            # The texts a reply is checked for are quoted, as in the example suite.
            case[key] = CommentedMap(
                (
                    (name, flow_seq(v, quote=True))
                    if isinstance(v, list) and name in _QUOTED_SCORERS
                    else (name, _quoted(v) if name == "exact" else convert(v, 2))
                )
                for name, v in value.items()
            )
        else:
            case[key] = _scalar(value)
    lines = dump(case).splitlines()
    return "".join(("- " if n == 0 else "  ") + line + "\n" for n, line in enumerate(lines))


def _quoted(value: Any) -> Any:
    return DoubleQuotedScalarString(value) if isinstance(value, str) else value


def _scalar(value: Any) -> Any:
    """A string the suite's loader would read as something else is quoted.

    ruamel writes YAML 1.2, where `yes`, `on` or `1_000` are plain strings; the loader
    reads YAML 1.1, which turns them into a bool or a number.
    """
    if (
        isinstance(value, str)
        and not isinstance(value, DoubleQuotedScalarString)
        and not reads_as_text(value)
    ):
        return DoubleQuotedScalarString(value)
    return value


def check_rendered(entry: str, case: Case, file: Path) -> None:
    """The text appended must read back, through the suite's loader, as exactly the case
    that was validated."""
    try:
        document = parse_yaml(entry, file)
        if document.issues:
            raise SuiteError(document.issues)
        again = Case.model_validate(document.data[0])
    except (SuiteError, ValidationError, IndexError, TypeError, KeyError) as exc:
        raise CannotEdit(f"internal error: case {case.id} did not render as YAML: {exc}") from None
    if case_hash(again) != case_hash(case):  # pragma: no cover - a renderer bug
        raise CannotEdit(f"internal error: case {case.id} reads back differently from YAML")
