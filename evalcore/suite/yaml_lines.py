"""YAML with line numbers, and pydantic errors mapped back to those lines.

`yaml.safe_load` throws positions away, yet a reviewer fixing a case file needs
`file:line: field`. So the file is composed into nodes (which carry marks), converted to
plain Python here, and every path (tuple of keys and indices) remembers its 1-based line.
A case file's top-level list is composed and converted one item at a time
(`YamlListReader`): the nodes of a whole 100,000-case file took about 1.5 GB.
ruamel.yaml keeps lines too, but on that file its pure-Python parser alone takes 86 s
against libyaml's 4.5 s, and its round-trip load peaks at 2.9 GB.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode

from evalcore.suite.errors import SuiteError, SuiteIssue

YamlPath = tuple[object, ...]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_SCALARS = SafeConstructor()
# The plain-scalar rules of the loader (SafeLoader and CSafeLoader share them).
_RESOLVER = yaml.resolver.Resolver()
# Aliases share nodes; expanding them without bound ("billion laughs") would hang validation.
_MAX_EXPANSION = 5_000_000
_TOO_DEEP = "invalid YAML: nested too deeply to read"


class LineMap:
    """The 1-based line of each path in one YAML document."""

    __slots__ = ("_lines",)

    def __init__(self, lines: dict[YamlPath, int]) -> None:
        self._lines = lines

    def line_of(self, path: YamlPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Abort(Exception):
    """Stops conversion once the document cannot be turned into data at all."""


class _Composer:
    """Nodes from the parser's events, built the way `yaml.compose` builds them.

    Unlike `yaml.compose` it can stop after any node, so a list item's nodes are freed
    once the item is converted. It loops instead of recursing (only the converter limits
    depth) and raises libyaml's composer messages, which error texts have always shown.
    """

    def __init__(self, source: str | IO[bytes]) -> None:
        self._parser: Any = _LOADER(source)
        self._anchors: dict[str, Node] = {}
        # Ids of anchored nodes, the only ones an alias can reach twice; `_anchors` keeps
        # them alive until the document ends, so their ids cannot be reused meanwhile.
        self.anchored: set[int] = set()
        # SafeLoader has no path resolvers: a collection's tag is fixed, and so is that of a
        # quoted scalar or of a plain one that no implicit resolver (int, bool, ...) starts with.
        resolvers = self._parser.yaml_implicit_resolvers
        self._resolved_by: frozenset[str] | None = (
            None if None in resolvers else frozenset(resolvers)
        )

    def next_is(self, kind: type[Event]) -> bool:
        return bool(self._parser.check_event(kind))

    def peek(self) -> Event:
        event: Event = self._parser.peek_event()
        return event

    def skip(self) -> Any:
        """The next event, read past."""
        return self._parser.get_event()

    def open_document(self) -> Event | None:
        """Read up to the root node; its first event, or None for an empty stream."""
        self.skip()  # stream start
        if self.next_is(StreamEndEvent):
            return None
        self.skip()  # document start
        return self.peek()

    def close_document(self, root: Node) -> None:
        """Read the document's end and insist that no other document follows."""
        self.skip()  # document end
        if not self.next_is(StreamEndEvent):
            raise ComposerError(
                "expected a single document in the stream",
                root.start_mark,
                "but found another document",
                self.skip().start_mark,
            )

    def open_list(self) -> SequenceNode:
        """The root list, read up to its first item: its items are composed one by one."""
        return typing.cast(SequenceNode, self._collection(self.skip()))

    def compose(self) -> Node:
        """The next node with everything inside it."""
        get_event = self._parser.get_event
        resolve = self._parser.resolve
        resolved_by = self._resolved_by
        # Collections still open, innermost last, each with a key awaiting its value.
        open_nodes: list[list[Any]] = []
        while True:
            event = get_event()
            kind = type(event)
            node: Node
            if kind is ScalarEvent:
                tag = event.tag
                if tag is None or tag == "!":
                    value = event.value
                    if resolved_by is None or (event.implicit[0] and value[:1] in resolved_by):
                        tag = resolve(ScalarNode, value, event.implicit)
                    else:
                        tag = _STR
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
                if event.anchor is not None:
                    self._anchor(event, node)
            elif kind is AliasEvent:
                node = self._alias(event)
            elif kind is SequenceStartEvent or kind is MappingStartEvent:
                open_nodes.append([self._collection(event), None])
                continue
            else:  # the end of the innermost open collection
                node = open_nodes.pop()[0]
                node.end_mark = event.end_mark
            if not open_nodes:
                return node
            parent = open_nodes[-1]
            if type(parent[0]) is SequenceNode:
                parent[0].value.append(node)
            elif parent[1] is None:
                parent[1] = node
            else:
                parent[0].value.append((parent[1], node))
                parent[1] = None

    def _collection(self, event: Any) -> CollectionNode:
        is_list = type(event) is SequenceStartEvent
        tag = event.tag
        if tag is None or tag == "!":
            tag = _SEQ if is_list else _MAP
        node: CollectionNode = (SequenceNode if is_list else MappingNode)(
            tag, [], event.start_mark, None, flow_style=event.flow_style
        )
        if event.anchor is not None:
            self._anchor(event, node)
        return node

    def _anchor(self, event: Any, node: Node) -> None:
        first = self._anchors.get(event.anchor)
        if first is not None:
            raise ComposerError(
                "found duplicate anchor; first occurrence",
                first.start_mark,
                "second occurrence",
                event.start_mark,
            )
        self._anchors[event.anchor] = node
        self.anchored.add(id(node))

    def _alias(self, event: Any) -> Node:
        node = self._anchors.get(event.anchor)
        if node is None:
            raise ComposerError(None, None, "found undefined alias", event.start_mark)
        return node


class _Converter:
    def __init__(self, file: Path, anchored: set[int]) -> None:
        self.file = file
        self.lines: dict[YamlPath, int] = {}
        self.issues: list[SuiteIssue] = []
        # Longest scalar text converted since last reset: bounds the size of any value.
        self.longest_text = 0
        self._anchored = anchored
        self._done: dict[int, tuple[Any, int]] = {}
        self._active: set[int] = set()
        self._expanded = 0

    def issue(self, node: Node, message: str, field: YamlPath | None = None) -> None:
        self.issues.append(
            SuiteIssue(
                self.file,
                node.start_mark.line + 1,
                format_field(field) if field else None,
                message,
            )
        )

    def document(self, root: Node | None) -> YamlDocument:
        """The whole document as data; its root is on line `lines[()]`."""
        if root is None:
            return YamlDocument(None, LineMap({}), [])
        self.lines[()] = root.start_mark.line + 1
        data = self.convert(root, ())
        return YamlDocument(data, LineMap(self.lines), self.issues)

    def item(self, node: Node, index: int) -> YamlEntry:
        """One item of the root list, with lines of its own paths only."""
        self.lines = {(index,): node.start_mark.line + 1}
        self.longest_text = 0
        data = self.convert(node, (index,))
        return YamlEntry(index, data, LineMap(self.lines), self.longest_text)

    def convert(self, node: Node, path: YamlPath) -> Any:
        if type(node) is ScalarNode:
            # Scalars are the bulk of a file: no memo, and plain strings need no constructor.
            self._expanded += 1
            if len(node.value) > self.longest_text:
                self.longest_text = len(node.value)
            if node.tag == _STR:
                return node.value
            return self._scalar(node, path)
        key = id(node)
        if key not in self._anchored:
            return self._collection(node, path)
        done = self._done.get(key)
        if done is not None:
            self.count(node, done[1])
            return done[0]
        if key in self._active:
            self.issue(node, "recursive alias: a node may not contain itself", path)
            raise _Abort
        self._active.add(key)
        before = self._expanded
        try:
            value = self._collection(node, path)
        finally:
            self._active.discard(key)
        self._done[key] = (value, self._expanded - before)
        return value

    def _collection(self, node: Node, path: YamlPath) -> Any:
        if isinstance(node, SequenceNode):
            value: Any = self._sequence(node, path)
        elif isinstance(node, MappingNode):
            value = self._mapping(node, path)
        else:  # pragma: no cover - the composer makes only the three kinds
            raise _Abort
        self.count(node, 1)
        return value

    def count(self, node: Node, size: int) -> None:
        """Add `size` values to the document's total; abort past the expansion limit."""
        self._expanded += size
        if self._expanded > _MAX_EXPANSION:
            self.issue(node, f"aliases expand to more than {_MAX_EXPANSION:,} values")
            raise _Abort

    def _scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        tag = node.tag
        if tag in (_STR, _VALUE):
            return node.value
        construct = SafeConstructor.yaml_constructors.get(tag)
        if construct is None or tag in (_MAP, _SEQ) or tag is None:
            self.issue(node, f"unsupported YAML tag {tag!r}", path)
            return node.value
        try:
            return construct(_SCALARS, node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.issue(node, f"cannot read {node.value!r} as {tag}: {exc}", path)
            return node.value

    def _sequence(self, node: SequenceNode, path: YamlPath) -> list[Any]:
        if node.tag != _SEQ:
            self.issue(node, f"unsupported YAML tag {node.tag!r}", path)
        items: list[Any] = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            self.lines.setdefault(child_path, child.start_mark.line + 1)
            items.append(self.convert(child, child_path))
        return items

    def _mapping(self, node: MappingNode, path: YamlPath) -> dict[Any, Any]:
        if node.tag != _MAP:
            self.issue(node, f"unsupported YAML tag {node.tag!r}", path)
        result: dict[Any, Any] = {}
        key_lines: dict[Any, int] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append((key_node, value_node))
                continue
            key = self.convert(key_node, (*path, "<key>"))
            line = key_node.start_mark.line + 1
            try:
                first = key_lines.get(key)
            except TypeError:
                self.issue(key_node, "a mapping key must be a plain value", path)
                continue
            if first is not None:
                self.issue(key_node, f"duplicate key {key!r} (first at line {first})", (*path, key))
                continue
            key_lines[key] = line
            child_path = (*path, key)
            self.lines.setdefault(child_path, line)
            result[key] = self.convert(value_node, child_path)
        for key_node, value_node in merges:
            self._merge(result, key_node, value_node, path)
        return result

    def _merge(self, result: dict[Any, Any], key_node: Node, source: Node, path: YamlPath) -> None:
        """Apply `<<: *anchor`: keys written in the mapping itself win, then earlier sources."""
        sources = source.value if isinstance(source, SequenceNode) else [source]
        line = key_node.start_mark.line + 1
        for item in sources:
            if not isinstance(item, MappingNode):
                self.issue(key_node, "merge key '<<' needs a mapping or a list of mappings", path)
                continue
            merged = self.convert(item, (*path, "<<"))
            for key, value in merged.items():
                if key not in result:
                    result[key] = value
                    self.lines.setdefault((*path, key), line)


@dataclass(frozen=True)
class YamlDocument:
    """Plain data, the line of each path, and problems that still left usable data.

    Duplicate keys and unsupported tags are reported here rather than raised, so the
    rest of the file is still validated and every problem surfaces in one pass.
    """

    data: Any
    lines: LineMap
    issues: list[SuiteIssue]


@dataclass(frozen=True)
class YamlEntry:
    """One item of a file's top-level list.

    `lines` has the item's own paths, which start with `index`. `longest_text` is the
    length of the longest scalar as written, which bounds every string in the item.
    """

    index: int
    data: Any
    lines: LineMap
    longest_text: int


def parse_yaml(text: str, file: Path) -> YamlDocument:
    """Parse one YAML document into plain data plus the line of every path.

    Raises `SuiteError` (with the parser's line) when no data can be had at all.
    """
    composer = _Composer(text)
    converter = _Converter(file, composer.anchored)
    with _reading(file, converter):
        return _whole_document(composer, converter, composer.open_document())


class YamlListReader:
    """A file whose top level should be a list, read one item at a time.

    Only the current item's nodes and lines are held, so memory follows the largest
    case, not the file. `not_a_list` holds the whole document instead when its top level
    is something else. Iterating yields the items, then fills `issues` (problems that
    still left usable data); a `SuiteError` raised on the way, just as `parse_yaml`
    raises it, voids the items already yielded.
    """

    def __init__(self, source: str | IO[bytes], file: Path) -> None:
        self._file = file
        self._composer = _Composer(source)
        self._converter = _Converter(file, self._composer.anchored)
        self.issues: list[SuiteIssue] = []
        self.not_a_list: YamlDocument | None = None
        self._root: SequenceNode | None = None
        self._whole: YamlDocument | None = None
        with _reading(file, self._converter):
            first = self._composer.open_document()
            if type(first) is SequenceStartEvent and first.anchor is None:
                self._root = self._composer.open_list()
                if self._root.tag != _SEQ:
                    self._converter.issue(self._root, f"unsupported YAML tag {self._root.tag!r}")
                return
            # Anything else, an anchored list included (an item may alias it), is read whole.
            doc = _whole_document(self._composer, self._converter, first)
            if isinstance(doc.data, list):
                self._whole = doc
            else:
                self.not_a_list = doc

    def __iter__(self) -> Iterator[YamlEntry]:
        with _reading(self._file, self._converter):
            if self._whole is not None:
                longest = self._converter.longest_text
                for index, data in enumerate(self._whole.data):
                    yield YamlEntry(index, data, self._whole.lines, longest)
            elif self._root is not None:
                yield from self._items(self._root)
            self.issues = self._converter.issues

    def _items(self, root: SequenceNode) -> Iterator[YamlEntry]:
        composer, converter = self._composer, self._converter
        index = 0
        while not composer.next_is(SequenceEndEvent):
            node = composer.compose()
            try:
                entry = converter.item(node, index)
            except (_Abort, RecursionError):
                # As when the file was composed whole first: a YAML error further on wins.
                while not composer.next_is(SequenceEndEvent):
                    composer.compose()
                composer.skip()
                composer.close_document(root)
                raise
            yield entry
            index += 1
        composer.skip()
        composer.close_document(root)
        converter.count(root, 1)


def _whole_document(
    composer: _Composer, converter: _Converter, first: Event | None
) -> YamlDocument:
    root = None if first is None else composer.compose()
    if root is not None:
        composer.close_document(root)
    return converter.document(root)


@contextmanager
def _reading(file: Path, converter: _Converter) -> Iterator[None]:
    """Whatever stops the reading becomes one `SuiteError`, with a line where known."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        raise SuiteError([_parser_issue(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise SuiteError([SuiteIssue(file, None, None, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SuiteError([SuiteIssue(file, None, None, _TOO_DEEP)]) from None
    except _Abort:
        raise SuiteError(converter.issues) from None


def _parser_issue(exc: yaml.MarkedYAMLError, file: Path) -> SuiteIssue:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "cannot parse"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return SuiteIssue(file, None if mark is None else mark.line + 1, None, message)


def reads_as_text(value: str) -> bool:
    """Whether `value`, written unquoted, is read back as this same string.

    The loader reads YAML 1.1, where `yes`, `on` or `1_000` are a bool or a number; a
    writer of YAML 1.2 (ruamel) leaves them unquoted unless told.
    """
    tag = _RESOLVER.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _STR)


def format_field(path: YamlPath) -> str:
    """`('expect', 'tool_call', 'name')` → `expect.tool_call.name`; indices as `[i]`."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_issues(
    exc: ValidationError,
    *,
    file: Path,
    data: Any,
    model: type[BaseModel],
    lines: LineMap | None = None,
    base: YamlPath = (),
    line: int | None = None,
) -> list[SuiteIssue]:
    """Turn pydantic errors for `data` (found at `base` in the file) into located issues.

    With `lines` each error gets the line of the deepest path that exists in the file
    (the key's own line for unknown keys); without, every issue gets `line` (JSONL).
    """
    issues: list[SuiteIssue] = []
    for error in exc.errors():
        for path, field, message in _describe(error, data, model):
            at = line if lines is None else lines.line_of((*base, *path))
            issues.append(SuiteIssue(file, at, format_field(field) or None, message))
    return issues


def _describe(
    error: ErrorDetails, data: Any, model: type[BaseModel]
) -> list[tuple[YamlPath, YamlPath, str]]:
    """(path in the data, field to show, message) for one pydantic error."""
    loc = error["loc"]
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    path, field, node = _resolve(loc, data)
    leaf = next((str(p) for p in reversed(field) if isinstance(p, str)), "value")
    value = error.get("input")

    if kind == "unknown_scorer":
        keys = ctx.get("unknown") or [ctx.get("scorer")]
        known = ctx.get("known", "")
        return [
            ((*path, key), (*field, key), f"unknown scorer '{key}' (known: {known})")
            for key in keys
        ]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        message = f"unknown field '{leaf}'"
        if allowed:
            close = difflib.get_close_matches(leaf, allowed, n=1, cutoff=0.75)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            else:
                message += f" (allowed: {', '.join(allowed)})"
        return [(path, field, message)]
    if kind == "enum":
        return [(path, field, f"unknown {leaf} {value!r} (allowed: {ctx.get('expected')})")]
    if kind == "literal_error":
        return [(path, field, f"invalid {leaf} {value!r} (allowed: {ctx.get('expected')})")]
    if kind == "missing":
        return [(path, field, f"missing required field '{leaf}'")]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        disc = str(ctx.get("discriminator", "kind")).strip("'\"")
        if isinstance(node, dict) and disc in node:
            path, field = (*path, disc), (*field, disc)
        if kind == "union_tag_not_found":
            return [(path, field, f"missing '{disc}' that says which kind this is")]
        allowed_tags = ctx.get("expected_tags")
        return [(path, field, f"unknown {disc} {ctx.get('tag')!r} (allowed: {allowed_tags})")]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return [(path, field, f"expected a mapping, got {_type_name(value)}")]
    if kind == "list_type":
        return [(path, field, f"expected a list, got {_type_name(value)}")]
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return [(path, field, str(ctx["error"]))]
    message = error["msg"]
    if isinstance(value, str | int | float | bool) or value is None:
        shown = repr(value)
        if len(shown) <= 60:
            message += f" (got {shown})"
    return [(path, field, message)]


def _resolve(loc: tuple[int | str, ...], data: Any) -> tuple[YamlPath, YamlPath, Any]:
    """Follow `loc` through the data; steps absent from the data (union tags) are skipped.

    Returns the deepest path present in the data, the field to show (present steps plus a
    final absent one, e.g. a missing key), and the data node at that path.
    """
    node = data
    path: list[object] = []
    field: list[object] = []
    last = len(loc) - 1
    for index, step in enumerate(loc):
        if _has_child(node, step):
            node = node[step]
            path.append(step)
            field.append(step)
        elif index == last and step != "[key]":
            field.append(step)
    return tuple(path), tuple(field), node


def _has_child(node: Any, step: int | str) -> bool:
    if isinstance(node, dict):
        try:
            return step in node
        except TypeError:
            return False
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"[:80]
    return f"{type(value).__name__} {value!r}"[:80]


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model found at `loc`, for "did you mean" hints on unknown keys."""
    options: list[Any] = [model]
    for step in loc:
        options = _step(options, step)
        if not options:
            return []
    names: set[str] = set()
    for option in options:
        if isinstance(option, type) and issubclass(option, BaseModel):
            names.update(option.model_fields)
    return sorted(names)


def _step(options: list[Any], step: int | str) -> list[Any]:
    flat = [t for option in options for t in _flatten(option)]
    models = [t for t in flat if isinstance(t, type) and issubclass(t, BaseModel)]
    if isinstance(step, str):
        with_field = [m for m in models if step in m.model_fields]
        if with_field:
            return [m.model_fields[step].annotation for m in with_field]
        tagged = [m for m in models if _has_literal(m, step)]
        if tagged:
            return list(tagged)
    for option in flat:
        origin = typing.get_origin(option)
        args = typing.get_args(option)
        if origin is list and isinstance(step, int) and args:
            return [args[0]]
        if origin is dict and isinstance(step, str) and len(args) == 2:
            return [args[1]]
    return []


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]


def _has_literal(model: type[BaseModel], value: str) -> bool:
    for info in model.model_fields.values():
        if typing.get_origin(info.annotation) is typing.Literal and value in typing.get_args(
            info.annotation
        ):
            return True
    return False
