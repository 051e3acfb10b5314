"""`evalcore import promptfoo CONFIG`: a promptfoo config's prompts × tests as cases.

Each prompt × test becomes one case. The prompt's template, filled with the test's vars,
gives the messages: a plain prompt is one user message, a chat-format prompt its own
messages. The test's assertions (with `defaultTest`'s) give the expectation (see
`promptfoo_assertions`). Providers are not imported, because the route under test is the
one in evalcore's scorecard; only the function tools a provider offers become the case's
tools, since what a case offers is part of the case.

promptfoo fills templates with Nunjucks. They come from outside the project, so here they
are filled by Jinja2's sandbox (the same syntax for what prompts use: `{{var}}`, filters,
`{% if %}`), each compiled once; a var the template needs and the test does not give
leaves that prompt × test out, naming the var.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jinja2 import StrictUndefined, Template, meta
from jinja2.exceptions import TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from evalcore.importers.conversion import (
    Conversion,
    ConvertOptions,
    Draft,
    ImportRefused,
    Origin,
    stable_key,
)
from evalcore.importers.promptfoo_assertions import is_code_ref, js_string, map_assertions
from evalcore.importers.promptfoo_tests import (
    Files,
    Listing,
    Place,
    Ref,
    Test,
    iter_tests,
    yaml_document,
)
from evalcore.importers.sources import csv_rows, read_text

FORMAT = "promptfoo"
_ROLES = frozenset({"system", "user", "assistant"})
_PROMPT_SERVICES = ("langfuse://", "portkey://", "helicone://", "http://", "https://")
_CONFIG_KEYS_READ = frozenset(
    {"prompts", "providers", "targets", "tests", "scenarios", "defaultTest", "description"}
)
# Where promptfoo writes and shares its own results: nothing of a case.
_CONFIG_KEYS_QUIET = frozenset(
    {"outputPath", "sharing", "writeLatestResults", "commandLineOptions", "env", "$schema"}
)
_PROVIDERS_NOT_IMPORTED = (
    "the route under test is set in evalcore's scorecard (route, target); providers are not "
    "imported"
)
_FUNCTION_PROMPT = "a prompt function runs code inside promptfoo; evalcore sends fixed messages"
_NO_ASSERTION = "no assertion evalcore can check"
_TEMPLATE_CACHE_LIMIT = 4096


def convert_promptfoo(config: Path, options: ConvertOptions) -> Conversion:
    """Read `config` (a promptfooconfig.yaml) and the files it names into drafts of cases.

    `options` is not consulted: every promptfoo assertion says itself how it checks, and
    promptfoo tests carry no reference answer to match. Raises `ImportRefused` for a file
    that is not a promptfoo config, a `file://` reference to a missing file, or a broken
    tests file, naming the file and line."""
    del options
    shown = str(config)
    document = yaml_document(read_text(config, shown), shown, "not a promptfoo config")
    place = Place(shown, document.lines)
    data = _config_mapping(document.data, place)
    conversion = Conversion(FORMAT)
    listing = Listing(conversion.not_converted)
    files = Files(config, shown)
    templates = Templates()
    prompts = read_prompts(data.get("prompts"), place.at("prompts"), files, templates, listing)
    providers = data.get("providers", data.get("targets"))
    tools = read_tools(
        providers, place.at("providers" if "providers" in data else "targets"), files, listing
    )
    _list_config_keys(data, place, listing)
    for test in iter_tests(data, place, files, listing):
        _convert_test(test, prompts, tools, templates, files, listing, conversion)
    return conversion


def _config_mapping(data: Any, place: Place) -> Mapping[str, Any]:
    origin = place.origin()
    if data is None:
        raise ImportRefused(f"{origin.file}: not a promptfoo config: the file is empty")
    if not isinstance(data, Mapping):
        raise ImportRefused(
            f"{origin}: not a promptfoo config: the top level is a {type(data).__name__}, not "
            "a mapping with prompts and tests"
        )
    if data.get("tests") is None and data.get("scenarios") is None:
        missing = "no tests (nor scenarios)"
        if data.get("prompts") is None:
            missing = "no prompts and no tests (nor scenarios)"
        raise ImportRefused(
            f"{origin}: not a promptfoo config: it has {missing}; a promptfoo config lists "
            "prompts and the tests to fill them with"
        )
    return data


def _list_config_keys(data: Mapping[str, Any], place: Place, listing: Listing) -> None:
    for key, value in data.items():
        if key in _CONFIG_KEYS_READ or key in _CONFIG_KEYS_QUIET or value is None:
            continue
        origin = place.at(key).origin()
        if key == "evaluateOptions":
            repeat = value.get("repeat") if isinstance(value, Mapping) else None
            if isinstance(repeat, int) and repeat > 1:
                listing.part(
                    origin,
                    f"evaluateOptions repeat {repeat}",
                    "evalcore runs a case several times when its samples field says so; set "
                    "it on the cases that need it",
                )
            continue
        listing.part(origin, f"config {key}", "no counterpart in evalcore's cases")


class Templates:
    """promptfoo's templates, filled by Jinja2's sandbox with values written the way
    Nunjucks writes them (`true`, JSON for objects, nothing for null); each compiled once.

    Most prompts are text with `{{ name }}` placeholders and nothing else; those are
    compiled into their pieces and filled by joining them, which gives what Jinja gives
    at a fraction of the cost per test (a 50,000-row CSV fills one per row)."""

    def __init__(self) -> None:
        env = SandboxedEnvironment(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_as_text,
        )
        env.filters["dump"] = _dump
        env.filters["load"] = _load
        self._env = env
        self._compiled: dict[str, Template | _Placeholders | None] = {}

    def compile(self, source: str) -> Template | _Placeholders | None:
        """The compiled template; None for text with no template markup in it."""
        if source in self._compiled:
            return self._compiled[source]
        template: Template | _Placeholders | None = None
        if "{{" in source or "{%" in source or "{#" in source:
            template = _Placeholders.of(source, self._env) or self._env.from_string(source)
        if len(self._compiled) >= _TEMPLATE_CACHE_LIMIT:
            self._compiled.clear()
        self._compiled[source] = template
        return template

    def render(self, source: str, values: Mapping[str, Any]) -> str:
        template = self.compile(source)
        return source if template is None else template.render(values)

    def missing(self, source: str, values: Mapping[str, Any]) -> list[str]:
        """The vars `source` reads that `values` does not give."""
        needed = meta.find_undeclared_variables(self._env.parse(source))
        return sorted(name for name in needed if name not in values)


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Names Jinja reads as constants, not as vars (its keywords are Python's).
_JINJA_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})


class _Placeholders:
    """A template of plain text and `{{ name }}` placeholders only, as its pieces."""

    __slots__ = ("names", "texts")

    def __init__(self, texts: list[str], names: list[str]) -> None:
        self.texts = texts
        self.names = names

    @classmethod
    def of(cls, source: str, env: SandboxedEnvironment) -> _Placeholders | None:
        """The pieces of `source`, or None when it needs Jinja itself."""
        pieces = _PLACEHOLDER.split(source)
        texts, names = pieces[0::2], pieces[1::2]
        if any("{{" in t or "{%" in t or "{#" in t for t in texts):
            return None
        if any(
            name in _JINJA_CONSTANTS or keyword.iskeyword(name) or name in env.globals
            for name in names
        ):
            return None
        # Jinja writes every line break of the template as "\n".
        texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
        return cls(texts, names)

    def render(self, values: Mapping[str, Any]) -> str:
        texts = self.texts
        out = [texts[0]]
        for index, name in enumerate(self.names, start=1):
            try:
                value = values[name]
            except KeyError:
                raise UndefinedError(f"{name!r} is undefined") from None
            out.append(value if isinstance(value, str) else js_string(value))
            out.append(texts[index])
        return "".join(out)


def _as_text(value: Any) -> Any:
    return value if isinstance(value, str) else js_string(value)


def _dump(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _load(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: `turns` are (role, template) pairs, a plain prompt being one user turn.
    `label` names it in listings and in each case's key; `names` are what a test's
    `prompts` filter matches (label and id)."""

    label: str
    origin: Origin
    turns: tuple[tuple[str, str], ...]
    names: tuple[str, ...]

    @property
    def shown(self) -> str:
        """The label on one short line, for listings."""
        text = self.label.strip()
        first = text.splitlines()[0] if text else self.label
        if len(first) > 60:
            return first[:57] + "..."
        return first if first == text else first + " ..."

    def matches(self, wanted: list[str]) -> bool:
        """promptfoo's filter: an exact label or id, a group (`group` matches `group:x`), or
        a prefix ending in `*`."""
        for name in self.names:
            for want in wanted:
                if want.endswith("*") and name.startswith(want[:-1]):
                    return True
                if name == want or name.startswith(want + ":"):
                    return True
        return False


def read_prompts(
    value: Any, place: Place, files: Files, templates: Templates, listing: Listing
) -> list[Prompt]:
    """The config's prompts; without any, promptfoo sends each test's `prompt` var as is."""
    if value is None:
        return [Prompt("{{prompt}}", place.origin(), (("user", "{{prompt}}"),), ("{{prompt}}",))]
    if isinstance(value, Mapping) and not ({"raw", "id"} & value.keys()):
        # The older form: {file://path: label, ...}
        entries: list[tuple[Any, Place]] = [
            ({"id": key, "label": label}, place.at(key)) for key, label in value.items()
        ]
    elif isinstance(value, list):
        entries = [(item, place.at(index)) for index, item in enumerate(value)]
    else:
        entries = [(value, place)]
    prompts = []
    for item, item_place in entries:
        for prompt in _prompt_entry(item, item_place, files, listing):
            if _compiles(prompt, templates, listing):
                prompts.append(prompt)
    return prompts


def _compiles(prompt: Prompt, templates: Templates, listing: Listing) -> bool:
    try:
        for _, source in prompt.turns:
            templates.compile(source)
    except TemplateError as exc:
        listing.dropped(
            prompt.origin, f"prompt {prompt.shown}", f"its template does not compile: {exc}"
        )
        return False
    return True


def _prompt_entry(item: Any, place: Place, files: Files, listing: Listing) -> Iterator[Prompt]:
    origin = place.origin()
    label: str | None = None
    ident: str | None = None
    if isinstance(item, str):
        source = item
    elif isinstance(item, Mapping) and isinstance(item.get("raw", item.get("id")), str):
        source = item.get("raw", item.get("id"))
        ident = item["id"] if isinstance(item.get("id"), str) else None
        label = str(item["label"]) if item.get("label") is not None else None
        if item.get("config"):
            listing.part(
                origin,
                f"prompt {label or source} config",
                "settings sent to the provider with this prompt are not imported: the route "
                "under test is the scorecard's",
            )
    else:
        listing.dropped(
            origin, "prompt", "a prompt is a text, a file:// reference or {raw|id, label}"
        )
        return
    if source.startswith("exec:") or is_code_ref(source):
        listing.dropped(origin, f"prompt {label or source}", _FUNCTION_PROMPT)
        return
    if source.startswith(_PROMPT_SERVICES):
        listing.dropped(
            origin,
            f"prompt {label or source}",
            "kept in a prompt service; evalcore imports local files only (export it to a file)",
        )
        return
    if not source.startswith("file://"):
        turns = _turns_from_text(source)
        yield Prompt(label or source, origin, turns, _names(label, ident, source))
        return
    refs = files.refs(source, origin)
    for ref in refs:
        base = label or (ref.written if len(refs) > 1 else source.removeprefix("file://"))
        if len(refs) > 1 and label:
            base = f"{label}: {ref.written}"
        named = _names(label, ident, source, ref.written)
        yield from _file_prompts(ref, base, named, origin, files, listing)


def _names(*names: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in names if name))


def _file_prompts(
    ref: Ref,
    base: str,
    names: tuple[str, ...],
    origin: Origin,
    files: Files,
    listing: Listing,
) -> Iterator[Prompt]:
    suffix = ref.path.suffix.lower()
    file_origin = Origin(ref.shown, 1)
    if suffix in (".json", ".yaml", ".yml"):
        turns = _chat_file(ref, files)
        if isinstance(turns, str):
            listing.dropped(origin, f"prompt {base}", turns)
        else:
            yield Prompt(base, file_origin, turns, (*names, base))
        return
    if suffix == ".csv":
        yield from _csv_prompts(ref, base, names, files, listing)
        return
    chunks = [chunk.strip() for chunk in _split_prompts(files.text(ref))]
    chunks = [chunk for chunk in chunks if chunk]
    for number, chunk in enumerate(chunks, start=1):
        label = base if len(chunks) == 1 else f"{base}#{number}"
        yield Prompt(label, file_origin, _turns_from_text(chunk), (*names, label))


def _chat_file(ref: Ref, files: Files) -> tuple[tuple[str, str], ...] | str:
    """A JSON or YAML prompt file as turns (a chat-format list, or one text), or why not."""
    text = files.text(ref)
    if ref.path.suffix.lower() == ".json":
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return (
                "a JSON prompt is read as a chat-format list of {role, content}; this file is "
                f"not JSON before its template is filled in ({exc})"
            )
    else:
        data = yaml_document(text, ref.shown, "not YAML").data
    return (("user", data),) if isinstance(data, str) else _chat_turns(data)


def _split_prompts(text: str) -> list[str]:
    """A text file holds several prompts separated by a line of `---`."""
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == "---":
            chunks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    chunks.append("\n".join(current))
    return chunks


def _csv_prompts(
    ref: Ref, base: str, names: tuple[str, ...], files: Files, listing: Listing
) -> Iterator[Prompt]:
    header, rows = csv_rows(files.text(ref), ref.shown)
    if "prompt" not in header:
        listing.dropped(Origin(ref.shown, 1), f"prompt {base}", "a prompts CSV has a prompt column")
        return
    column = header.index("prompt")
    label_column = header.index("label") if "label" in header else None
    for line, row in rows:
        text = row[column] if column < len(row) else ""
        if not text.strip():
            continue
        label = row[label_column] if label_column is not None and label_column < len(row) else ""
        label = label.strip() or f"{base}#{line}"
        yield Prompt(label, Origin(ref.shown, line), _turns_from_text(text), (*names, label))


def _turns_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """Text that is a JSON chat-format list is those messages; other text, one user turn."""
    if text.lstrip().startswith("["):
        try:
            turns = _chat_turns(orjson.loads(text))
        except orjson.JSONDecodeError:
            turns = None
        if isinstance(turns, tuple):
            return turns
    return (("user", text),)


def _chat_turns(data: Any) -> tuple[tuple[str, str], ...] | str:
    """A chat-format list as (role, template) turns, or why it is not one."""
    if not isinstance(data, list) or not data:
        return "not a chat-format list of {role, content}"
    turns = []
    for message in data:
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            role = message.get("role") if isinstance(message, Mapping) else message
            return (
                f"a message has role {role!r}; evalcore cases hold system, user and assistant turns"
            )
        content = message.get("content")
        if isinstance(content, list):
            texts = [part.get("text") for part in content if isinstance(part, Mapping)]
            if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                return "a message holds images or other non-text parts; evalcore cases hold text"
            content = "\n".join(t for t in texts if isinstance(t, str))
        if not isinstance(content, str):
            return "a message's content is not text"
        turns.append((str(message["role"]), content))
    return tuple(turns)


def read_tools(value: Any, place: Place, files: Files, listing: Listing) -> list[dict[str, Any]]:
    """Each provider listed once as not imported, naming its settings; the function tools
    of the first provider that offers some, as every case's tools."""
    tools: list[dict[str, Any]] | None = None
    for ident, spec, spec_place in _providers(value, place, files):
        origin = spec_place.origin()
        found = spec.get("config")
        config: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        settings = [k for k in config if k not in ("tools", "functions")]
        settings += [k for k in spec if k not in ("id", "label", "config")]
        what = f"provider {ident}" + (
            f" options {', '.join(map(str, settings))}" if settings else ""
        )
        listing.part(origin, what, _PROVIDERS_NOT_IMPORTED)
        offered = _function_tools(ident, config, spec_place.at("config"), files, listing)
        if not offered:
            continue
        if tools is None:
            tools = offered
        elif offered != tools:
            listing.part(
                origin,
                f"provider {ident} tools",
                "a case offers one list of tools; the first provider's tools were taken",
            )
    return tools or []


def _providers(
    value: Any, place: Place, files: Files
) -> Iterator[tuple[str, Mapping[str, Any], Place]]:
    """(id, options, place) of each provider, in the forms promptfoo accepts."""
    if value is None:
        return
    if (
        isinstance(value, str)
        and value.startswith("file://")
        and value.endswith((".yaml", ".yml", ".json"))
    ):
        for ref in files.refs(value, place.origin()):
            document = files.document(ref)
            yield from _providers(document.data, Place(ref.shown, document.lines), files)
        return
    if isinstance(value, Mapping) and "id" not in value:
        # The older form: {provider-id: options, ...}
        for key, options in value.items():
            yield str(key), options if isinstance(options, Mapping) else {}, place.at(key)
        return
    for item, item_place in place.each(value):
        if isinstance(item, str):
            if item.startswith("file://") and item.endswith((".yaml", ".yml", ".json")):
                yield from _providers(item, item_place, files)
            else:
                yield item, {}, item_place
        elif isinstance(item, Mapping) and "id" in item:
            yield str(item["id"]), item, item_place
        elif isinstance(item, Mapping) and len(item) == 1:
            ((key, options),) = item.items()
            yield str(key), options if isinstance(options, Mapping) else {}, item_place.at(key)
        else:
            yield str(item), {}, item_place


def _function_tools(
    ident: str, config: Mapping[str, Any], place: Place, files: Files, listing: Listing
) -> list[dict[str, Any]]:
    offered: list[dict[str, Any]] = []
    for key in ("tools", "functions"):
        value = config.get(key)
        key_place = place.at(key)
        if isinstance(value, str) and value.startswith("file://"):
            value = files.load(value, key_place.origin())
        if value is None:
            continue
        if not isinstance(value, list):
            listing.part(key_place.origin(), f"provider {ident} {key}", f"{key} must be a list")
            continue
        for index, tool in enumerate(value):
            if _is_function_tool(tool):
                offered.append(dict(tool))
            else:
                kind = tool.get("type", "?") if isinstance(tool, Mapping) else type(tool).__name__
                listing.part(
                    key_place.at(index).origin(),
                    f"provider {ident} tool {kind}",
                    "not a function tool; an evalcore case offers function tools only",
                )
    return offered


def _is_function_tool(tool: Any) -> bool:
    if not isinstance(tool, Mapping):
        return False
    if tool.get("type") == "function":
        return isinstance(tool.get("function"), Mapping)
    return isinstance(tool.get("name"), str) and "type" not in tool


def _convert_test(
    test: Test,
    prompts: list[Prompt],
    tools: list[dict[str, Any]],
    templates: Templates,
    files: Files,
    listing: Listing,
    conversion: Conversion,
) -> None:
    chosen = prompts if test.prompts is None else [p for p in prompts if p.matches(test.prompts)]
    if test.prompts is not None and not chosen:
        wanted = ", ".join(test.prompts)
        listing.dropped(test.origin, f"test for prompts {wanted}", "names no prompt of the config")
        return
    if test.dropped is not None:
        for prompt in chosen:
            listing.dropped(test.origin, _what(prompt), test.dropped)
        return
    mapped = map_assertions(
        test.asserts, test.values, tools=tools, render=templates.render, load=files.load
    )
    for origin, what, reason in mapped.skipped:
        listing.part(origin, what, reason)
    specs = [written.spec for written in test.asserts]
    framing = {k: test.options[k] for k in ("prefix", "suffix") if test.options.get(k)}
    for prompt in chosen:
        conversion.budgets.extend(mapped.budgets)
        messages = _messages(prompt, test, templates, framing)
        if isinstance(messages, str):
            listing.dropped(test.origin, _what(prompt), messages)
            continue
        if not mapped.expect:
            listing.dropped(test.origin, _what(prompt), _NO_ASSERTION)
            continue
        parts: list[Any] = [FORMAT, prompt.label, test.vars, specs]
        if framing:
            parts.append(framing)
        conversion.drafts.append(
            Draft(
                origin=test.origin,
                key=stable_key(*parts),
                messages=messages,
                expect=mapped.expect,
                tools=tools,
                tags=test.tags,
                notes=test.notes,
            )
        )


def _what(prompt: Prompt) -> str:
    return f"test (prompt {prompt.shown})"


def _messages(
    prompt: Prompt, test: Test, templates: Templates, framing: Mapping[str, str]
) -> list[dict[str, Any]] | str:
    """The prompt filled with the test's vars (`prefix`/`suffix` around the last user turn),
    or why it cannot be."""
    framed = _last_user(prompt.turns) if framing else -1
    messages = []
    source = ""
    try:
        for index, (role, source) in enumerate(prompt.turns):
            content = templates.render(source, test.values)
            if index == framed:
                before = templates.render(framing.get("prefix", ""), test.values)
                content = (
                    before + content + templates.render(framing.get("suffix", ""), test.values)
                )
            messages.append({"role": role, "content": content})
    except UndefinedError as exc:
        missing = templates.missing(source, test.values)
        if missing:
            names = ", ".join(missing)
            noun = "var" if len(missing) == 1 else "vars"
            return f"the prompt needs {noun} {names}, which the test does not give"
        return f"the prompt's template fails to fill in: {exc}"
    except (TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
        return f"the prompt's template fails to fill in: {exc}"
    return messages


def _last_user(turns: tuple[tuple[str, str], ...]) -> int:
    for index in range(len(turns) - 1, -1, -1):
        if turns[index][0] == "user":
            return index
    return len(turns) - 1
