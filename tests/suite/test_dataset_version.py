"""The dataset version: blind to layout and formatting, sensitive to every field; git state."""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from evalcore.suite import (
    Case,
    DatasetVersion,
    KnownDataset,
    SuiteError,
    case_hash,
    dataset_version,
    load_suite,
)
from evalcore.suite.git import git_state
from evalcore.suite.version import scorecard_version

SCORECARD: dict[str, Any] = {
    "route": "support-assistant",
    "owner": "ana",
    "target": {"kind": "openai_chat", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
    "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "judge"},
    "thresholds": {"blocking": {"min_pass_rate": 1.0}, "monitoring": {"min_pass_rate": 0.9}},
}
OWNERS: dict[str, Any] = {
    "owners": [{"id": "ana", "name": "Ana", "slack_id": "U0ANA1234"}],
}

RICH: dict[str, Any] = {
    "id": "refund-window-eu-001",
    "set": "blocking",
    "severity": "critical",
    "tags": ["eu", "refunds"],
    "source": {
        "kind": "production",
        "ref": "ZD-48213",
        "captured": dt.date(2026, 2, 11),
        "reporter": "support",
    },
    "owner": "ana",
    "input": {
        "messages": [
            {"role": "system", "content": "You are the support assistant."},
            {"role": "user", "content": "I bought it 10 days ago in Berlin, can I return it?"},
        ],
        "context": [
            {
                "id": "kb-112",
                "text": "EU customers may withdraw within 14 days.",
                "as_of": dt.date(2026, 1, 1),
            }
        ],
        "tools": [
            {
                "name": "create_refund",
                "description": "Start a refund.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            }
        ],
    },
    "expect": {
        "outcome": "tool_call",
        "exact": "ok",
        "contains": ["14 days"],
        "not_contains": ["30 days"],
        "regex": [r"\b14\s+days\b"],
        "json_schema": {"type": "object", "required": ["answer"]},
        "tool_call": {
            "name": "create_refund",
            "arguments_schema": {"type": "object", "required": ["order_id"]},
        },
        "judge": {"rubric": "Cites the 14-day window.", "min_score": 0.7},
    },
    "samples": 3,
    "notes": "From the February incident.",
}

PLAIN: dict[str, Any] = {
    "id": "gift-card-002",
    "set": "monitoring",
    "input": {"messages": [{"role": "user", "content": "Can I return a gift card?"}]},
    "expect": {"contains": ["no"]},
}

# Values that a leaf may take instead, where any other string would not be valid.
ALTERNATIVES = {
    "set": "monitoring",
    "severity": "low",
    "kind": "fixture",
    "outcome": "answer",
    "role": "assistant",
    "type": "array",
}


def write_suite(root: Path, files: dict[str, str]) -> Path:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "scorecard.yaml").write_text(yaml.safe_dump(SCORECARD))
    (root / "owners.yaml").write_text(yaml.safe_dump(OWNERS))
    for name, text in files.items():
        (root / "cases" / name).write_text(text)
    return root


def version_of(root: Path) -> str:
    return load_suite(root).version.hash


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_keys(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaf_paths(child, (*path, index))
    else:
        yield path


def changed(value: Any, key: object) -> Any:
    """A different value of the same kind that still validates."""
    if isinstance(key, str) and key in ALTERNATIVES and value != ALTERNATIVES[key]:
        return ALTERNATIVES[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    if isinstance(value, str):
        return value + "x"
    raise AssertionError(f"no change for {value!r}")


def with_leaf(case: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    result = copy.deepcopy(case)
    node: Any = result
    for step in path[:-1]:
        node = node[step]
    last = path[-1]
    key = last if isinstance(last, str) else path[-2]
    node[last] = changed(node[last], key)
    return result


# -- invariance ----------------------------------------------------------------------------


def test_reordering_files_entries_and_keys_keeps_the_version(tmp_path: Path) -> None:
    baseline = version_of(write_suite(tmp_path / "a", {"all.yaml": yaml.safe_dump([RICH, PLAIN])}))

    split = write_suite(
        tmp_path / "b",
        {"z.yaml": yaml.safe_dump([RICH]), "a.yaml": yaml.safe_dump([PLAIN])},
    )
    swapped = write_suite(tmp_path / "c", {"all.yaml": yaml.safe_dump([PLAIN, RICH])})
    keys = write_suite(
        tmp_path / "d",
        {"all.yaml": yaml.safe_dump([reversed_keys(RICH), reversed_keys(PLAIN)], sort_keys=False)},
    )
    as_jsonl = write_suite(
        tmp_path / "e",
        {"all.jsonl": "".join(orjson.dumps(c).decode() + "\n" for c in (PLAIN, RICH))},
    )
    mixed = write_suite(
        tmp_path / "f",
        {"x.jsonl": orjson.dumps(RICH).decode() + "\n", "y.yml": yaml.safe_dump([PLAIN])},
    )
    for root in (split, swapped, keys, as_jsonl, mixed):
        assert version_of(root) == baseline, root.name


def test_yaml_flow_and_block_style_give_the_same_version(tmp_path: Path) -> None:
    block = yaml.safe_dump([RICH, PLAIN], default_flow_style=False, width=60)
    flow = yaml.safe_dump([RICH, PLAIN], default_flow_style=True, width=400)
    commented = "# refunds, reviewed weekly\n\n" + block.replace("\n", "   # note\n", 1)
    assert block != flow
    versions = {
        version_of(write_suite(tmp_path / name, {"cases.yaml": text}))
        for name, text in (("block", block), ("flow", flow), ("commented", commented))
    }
    assert len(versions) == 1


def test_explicit_defaults_equal_omitted_ones(tmp_path: Path) -> None:
    explicit = copy.deepcopy(PLAIN)
    explicit.update(
        severity="medium",
        tags=[],
        source={"kind": "handwritten", "ref": None, "captured": None, "reporter": None},
        owner=None,
        samples=1,
        notes=None,
    )
    explicit["input"] = {**PLAIN["input"], "context": [], "tools": []}
    explicit["expect"] = {
        "outcome": None,
        "exact": None,
        "contains": "no",  # a single string means a one-item list
        "not_contains": [],
        "regex": [],
        "json_schema": None,
        "tool_call": None,
        "judge": None,
    }
    tool_default = copy.deepcopy(RICH)
    tool_default["input"]["tools"] = [{"name": "create_refund", "parameters": {"type": "object"}}]
    tool_omitted = copy.deepcopy(RICH)
    tool_omitted["input"]["tools"] = [{"name": "create_refund", "description": ""}]
    judge_default = copy.deepcopy(RICH)
    del judge_default["expect"]["judge"]["min_score"]
    tags_shuffled = copy.deepcopy(RICH)
    tags_shuffled["tags"] = ["refunds", "eu", "refunds"]

    assert case_hash(Case.model_validate(explicit)) == case_hash(Case.model_validate(PLAIN))
    assert case_hash(Case.model_validate(tool_default)) == case_hash(
        Case.model_validate(tool_omitted)
    )
    assert case_hash(Case.model_validate(judge_default)) == case_hash(Case.model_validate(RICH))
    assert case_hash(Case.model_validate(tags_shuffled)) == case_hash(Case.model_validate(RICH))

    omitted = write_suite(tmp_path / "omitted", {"c.yaml": yaml.safe_dump([PLAIN])})
    spelled = write_suite(tmp_path / "spelled", {"c.yaml": yaml.safe_dump([explicit])})
    assert version_of(omitted) == version_of(spelled)


def test_dataset_version_ignores_case_order() -> None:
    rich, plain = Case.model_validate(RICH), Case.model_validate(PLAIN)
    assert dataset_version([rich, plain]) == dataset_version([plain, rich])
    assert dataset_version([]) != dataset_version([plain])


# -- sensitivity ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(leaf_paths(RICH)), ids=lambda p: ".".join(map(str, p)))
def test_changing_any_single_field_changes_the_version(path: tuple[Any, ...]) -> None:
    original = Case.model_validate(RICH)
    edited = Case.model_validate(with_leaf(RICH, path))
    plain = Case.model_validate(PLAIN)
    assert case_hash(edited) != case_hash(original)
    assert dataset_version([edited, plain]) != dataset_version([original, plain])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("tags",), ["eu", "refunds", "warranty"]),
        (("expect", "contains"), ["14 days", "Berlin"]),
        (("input", "messages"), [{"role": "user", "content": "hi"}]),
        (("input", "context"), []),
        (("expect", "judge"), None),
        (("owner",), None),
        (("notes",), None),
    ],
)
def test_adding_or_removing_values_changes_the_version(path: tuple[str, ...], value: Any) -> None:
    edited_data = copy.deepcopy(RICH)
    node: Any = edited_data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert case_hash(Case.model_validate(edited_data)) != case_hash(Case.model_validate(RICH))


def test_a_changed_file_gives_a_new_suite_version(tmp_path: Path) -> None:
    root = write_suite(tmp_path, {"c.yaml": yaml.safe_dump([RICH, PLAIN])})
    before = version_of(root)
    (root / "cases" / "c.yaml").write_text(yaml.safe_dump([RICH, {**PLAIN, "samples": 2}]))
    assert version_of(root) != before


# -- the files digest: a dataset hash taken over is one of the same bytes ------------------


def test_the_files_digest_is_of_every_byte_read_and_where_it_was(tmp_path: Path) -> None:
    """Same files at another place: same digest. A byte more anywhere (even one the dataset
    version ignores), a file renamed, the scorecard or the owners changed: another."""
    files = {
        "c.yaml": yaml.safe_dump([RICH]),
        "p.jsonl": orjson.dumps(PLAIN).decode() + "\n",
    }
    digest = load_suite(write_suite(tmp_path / "a", files)).files_digest
    assert len(digest) == 64
    assert load_suite(write_suite(tmp_path / "elsewhere", files)).files_digest == digest
    variants: dict[str, Path] = {
        "yaml comment": write_suite(tmp_path / "b", {**files, "c.yaml": "# x\n" + files["c.yaml"]}),
        "jsonl blank line": write_suite(
            tmp_path / "c", {**files, "p.jsonl": files["p.jsonl"] + "\n"}
        ),
        "renamed": write_suite(
            tmp_path / "d", {"c.yaml": files["c.yaml"], "q.jsonl": files["p.jsonl"]}
        ),
    }
    variants["scorecard"] = write_suite(tmp_path / "e", files)
    (variants["scorecard"] / "scorecard.yaml").write_text(yaml.safe_dump(SCORECARD) + "# x\n")
    variants["owners"] = write_suite(tmp_path / "f", files)
    (variants["owners"] / "owners.yaml").write_text(yaml.safe_dump(OWNERS) + "# x\n")
    for name, root in variants.items():
        suite = load_suite(root)
        assert suite.files_digest != digest, name
        if name in ("yaml comment", "jsonl blank line", "renamed"):
            assert suite.version.hash == version_of(tmp_path / "a"), name  # the cases are not


def test_a_known_dataset_hash_stands_only_for_the_same_files(tmp_path: Path) -> None:
    """Given the hash of files with the same digest, the loader takes it instead of hashing
    every case again; given any other digest, it hashes the cases it read."""
    root = write_suite(tmp_path / "s", {"c.yaml": yaml.safe_dump([RICH, PLAIN])})
    suite = load_suite(root)
    stand_in = "f" * 64  # not these cases' hash: shows which way the loader went
    taken = load_suite(root, known=KnownDataset(suite.files_digest, stand_in))
    assert (taken.version.hash, taken.files_digest) == (stand_in, suite.files_digest)
    (root / "cases" / "c.yaml").write_text(yaml.safe_dump([RICH, {**PLAIN, "samples": 2}]))
    changed = load_suite(root, known=KnownDataset(suite.files_digest, suite.version.hash))
    assert changed.version.hash == version_of(root) != suite.version.hash


def _jsonl_cases(count: int) -> list[dict[str, Any]]:
    return [{**PLAIN, "id": f"case-{i:03d}"} for i in range(count)]


def _lines(cases: list[dict[str, Any]]) -> str:
    return "".join(orjson.dumps(case).decode() + "\n" for case in cases)


def test_a_shard_keeps_only_its_cases_of_the_files_its_run_was_opened_from(
    tmp_path: Path,
) -> None:
    cases = _jsonl_cases(40)
    cases[7] = {**cases[7], "samples": 3}
    root = write_suite(tmp_path / "s", {"c.jsonl": _lines(cases), "r.yaml": yaml.safe_dump([RICH])})
    whole = load_suite(root)
    known = KnownDataset(whole.files_digest, whole.version.hash)
    wanted = {c["id"] for c in cases[::3]} | {RICH["id"]}

    own = load_suite(root, known=known, only=lambda case_id, samples: case_id in wanted)
    assert own.partial and not whole.partial
    assert [c.id for c in own.cases] == [c.id for c in whole.cases if c.id in wanted]
    assert own.get(RICH["id"]) == whole.get(RICH["id"])  # validated as in a whole load
    # The suite's version is the whole dataset's; every id is still known (and unique).
    assert own.version == whole.version and own.case_files == whole.case_files
    asked: list[tuple[str, int]] = []

    def ask(case_id: str, samples: int) -> bool:
        asked.append((case_id, samples))
        return False

    load_suite(root, known=known, only=ask)
    assert ("case-007", 3) in asked and ("case-008", 1) in asked
    # Without a known dataset there is nothing to trust: the suite is read whole.
    assert not load_suite(root, only=lambda *_: False).partial


def test_a_case_not_plainly_written_is_kept_for_the_validator_to_read(tmp_path: Path) -> None:
    cases = _jsonl_cases(3)
    cases[1] = {**cases[1], "samples": 2.0}  # an int to the validator, not as written
    root = write_suite(tmp_path / "s", {"c.jsonl": _lines(cases)})
    whole = load_suite(root)
    known = KnownDataset(whole.files_digest, whole.version.hash)
    own = load_suite(root, known=known, only=lambda *_: False)
    assert [(c.id, c.samples) for c in own.cases] == [("case-001", 2)]


def test_files_changed_since_the_run_was_opened_are_read_whole_and_checked(
    tmp_path: Path,
) -> None:
    """A shard reading other files than its gate did validates every case: a case it does
    not want that became invalid is still reported, and nothing is left out."""
    cases = _jsonl_cases(6)
    root = write_suite(tmp_path / "s", {"c.jsonl": _lines(cases)})
    whole = load_suite(root)
    known = KnownDataset(whole.files_digest, whole.version.hash)
    broken = [*cases[:5], {**cases[5], "severity": "catastrophic"}]
    (root / "cases" / "c.jsonl").write_text(_lines(broken))
    with pytest.raises(SuiteError) as raised:
        load_suite(root, known=known, only=lambda case_id, _: case_id == "case-000")
    assert "severity" in str(raised.value) and ":6" in str(raised.value)
    (root / "cases" / "c.jsonl").write_text(_lines([*cases, {**PLAIN, "id": "case-new"}]))
    again = load_suite(root, known=known, only=lambda case_id, _: case_id == "case-000")
    assert not again.partial and len(again.cases) == 7
    assert again.version.hash != whole.version.hash  # hashed, not taken


def test_the_files_digest_changes_with_the_code_that_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another version of the loader or its parsers reads the same bytes under another
    digest, so a worker running other code hashes the cases itself."""
    import pydantic

    from evalcore.suite import version

    root = write_suite(tmp_path / "s", {"c.yaml": yaml.safe_dump([RICH])})
    digest = load_suite(root).files_digest
    version.reader_fingerprint.cache_clear()
    monkeypatch.setattr(pydantic, "VERSION", pydantic.VERSION + ".other")
    try:
        assert load_suite(root).files_digest != digest
    finally:
        version.reader_fingerprint.cache_clear()


def test_hashes_are_sha256_hex() -> None:
    digest = case_hash(Case.model_validate(RICH))
    assert len(digest) == 64 and int(digest, 16) >= 0
    version = DatasetVersion(hash=digest, git_commit=None, git_dirty=False, case_count=1)
    assert version.short == digest[:12]


def test_scorecard_version_ignores_layout_but_not_values(tmp_path: Path) -> None:
    root = write_suite(tmp_path / "a", {"c.yaml": yaml.safe_dump([PLAIN])})
    baseline = load_suite(root).scorecard_version

    (root / "scorecard.yaml").write_text(
        yaml.safe_dump(reversed_keys(SCORECARD), sort_keys=False, default_flow_style=True)
    )
    assert load_suite(root).scorecard_version == baseline

    spelled = copy.deepcopy(SCORECARD)
    spelled["run"] = {"concurrency": 16, "retries": 3}  # the defaults, written out
    (root / "scorecard.yaml").write_text(yaml.safe_dump(spelled))
    assert load_suite(root).scorecard_version == baseline

    stricter = copy.deepcopy(SCORECARD)
    stricter["thresholds"]["monitoring"]["min_pass_rate"] = 0.95
    (root / "scorecard.yaml").write_text(yaml.safe_dump(stricter))
    suite = load_suite(root)
    assert suite.scorecard_version != baseline
    assert suite.scorecard_version == scorecard_version(suite.scorecard)


# -- git -----------------------------------------------------------------------------------


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git that ignores the machine's config and never looks above the test folder."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.usefixtures("git_env")
def test_git_state_in_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    suite = write_suite(repo / "evals", {"c.yaml": yaml.safe_dump([PLAIN])})
    (repo / "README.md").write_text("readme\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")

    assert git_state(suite) == (head, False)
    assert git_state(suite / "cases" / "c.yaml") == (head, False)
    loaded = load_suite(suite)
    assert (loaded.version.git_commit, loaded.version.git_dirty) == (head, False)

    (repo / "README.md").write_text("changed outside the suite\n")
    assert git_state(suite) == (head, False)

    (suite / "cases" / "c.yaml").write_text(yaml.safe_dump([{**PLAIN, "samples": 2}]))
    assert git_state(suite) == (head, True)

    git(repo, "commit", "-q", "-am", "second")
    second = git(repo, "rev-parse", "HEAD")
    assert second != head
    assert git_state(suite) == (second, False)

    (suite / "cases" / "new.yaml").write_text(yaml.safe_dump([{**PLAIN, "id": "new-1"}]))
    assert git_state(suite) == (second, True)  # untracked case files count as changes


@pytest.mark.usefixtures("git_env")
def test_git_state_in_a_repository_without_commits(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "repo", {"c.yaml": yaml.safe_dump([PLAIN])})
    git(tmp_path / "repo", "init", "-q")
    assert git_state(suite) == (None, True)


@pytest.mark.usefixtures("git_env")
def test_git_state_outside_a_repository(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "plain", {"c.yaml": yaml.safe_dump([PLAIN])})
    assert git_state(suite) == (None, False)
    assert git_state(tmp_path / "does-not-exist") == (None, False)
    loaded = load_suite(suite)
    assert (loaded.version.git_commit, loaded.version.git_dirty) == (None, False)


def test_git_state_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert git_state(tmp_path) == (None, False)
