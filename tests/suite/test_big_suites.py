"""Big suites: a YAML case file is read one case at a time, and no case field over 1 MiB."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from bench.rss import measure_child
from bench.suites import write_suite
from evalcore.suite import SuiteError, load_suite
from evalcore.suite.models import FIELD_LIMIT_BYTES
from tests.cli_helpers import evalcore, process_env

ROOT = Path(__file__).resolve().parents[2]
STUB_TARGET = "{kind: python, callable: 'bench.callables:answer', model: stub}"
TOO_LONG = "bytes of text is too long: the limit for one field of a case is 1,048,576 bytes (1 MiB)"


def small_suite(root: Path, case_file: str, text: str) -> Path:
    """A valid two-case suite (answered in-process) plus `cases/<case_file>` holding `text`."""
    write_suite(root, cases=2, target_yaml=STUB_TARGET, case_format="yaml")
    (root / "cases" / case_file).write_text(text, encoding="utf-8")
    return root


def yaml_case(case_id: str, content: str) -> str:
    """One case of a YAML case file whose user message is `content` (on the entry's line 6)."""
    return textwrap.dedent(
        f"""\
        - id: {case_id}
          set: monitoring
          input:
            messages:
              - role: user
                content: "{content}"
          expect: {{contains: ["14 days"]}}
        """
    )


def case_text(case_format: str, case_id: str, content: str) -> str:
    """One case as a YAML entry (`yaml_case`) or a JSONL line."""
    if case_format == "yaml":
        return yaml_case(case_id, content)
    entry = {
        "id": case_id,
        "set": "monitoring",
        "input": {"messages": [{"role": "user", "content": content}]},
        "expect": {"contains": ["14 days"]},
    }
    return orjson.dumps(entry).decode() + "\n"


def problems(root: Path) -> list[str]:
    with pytest.raises(SuiteError) as info:
        load_suite(root)
    return [str(issue) for issue in info.value.issues]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_yaml_suite_needs_no_more_memory_than_the_same_cases_in_jsonl(
    tmp_path: Path, command: str
) -> None:
    cases = 10_000
    peaks: dict[str, float] = {}
    for case_format in ("jsonl", "yaml"):
        suite = write_suite(
            tmp_path / case_format, cases=cases, target_yaml=STUB_TARGET, case_format=case_format
        )
        env = process_env(tmp_path / f"home-{case_format}", {"CI": "1", "PYTHONPATH": str(ROOT)})
        child = measure_child(  # a process of its own: its peak memory is the measure
            [sys.executable, "-m", "evalcore", command, "--suite", str(suite), "--json"], env
        )
        assert child.exit_code == 0, child.output
        peaks[case_format] = child.peak_mb
    # Composed whole, the YAML file's nodes and lines cost about 20 KB a case (+200 MB here);
    # read a case at a time, YAML needs what JSONL needs, give or take a few MB.
    assert peaks["yaml"] < peaks["jsonl"] + 50, peaks


def test_validate_refuses_a_yaml_field_over_1_mib_naming_file_line_and_field(
    tmp_path: Path,
) -> None:
    huge = "x" * (2 * FIELD_LIMIT_BYTES)
    text = yaml_case("huge-1", huge) + yaml_case("fine-1", "Can I return my lamp?")
    root = small_suite(tmp_path / "suite", "huge.yaml", text)

    done = evalcore("validate", "--suite", str(root), "--json", cwd=ROOT, home=tmp_path / "home")

    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["issues"] == [
        f"{root / 'cases' / 'huge.yaml'}:6: input.messages[0].content: 2,097,152 {TOO_LONG}"
    ]
    assert (root / "cases" / "huge.yaml").read_text(encoding="utf-8") == text


def test_run_refuses_a_suite_with_an_oversized_field_and_stores_no_run(tmp_path: Path) -> None:
    text = yaml_case("huge-1", "y" * (FIELD_LIMIT_BYTES + 1))
    root = small_suite(tmp_path / "suite", "huge.yaml", text)
    home = tmp_path / "home"

    done = evalcore("run", "--suite", str(root), cwd=ROOT, home=home)

    assert done.returncode == 3, done.stdout
    assert f"huge.yaml:6: input.messages[0].content: 1,048,577 {TOO_LONG}" in done.stderr
    assert len(done.stderr) < 2_000
    with sqlite3.connect(home / "evalcore.db") as db:
        assert db.execute("SELECT count(*) FROM run").fetchone() == (0,)


@pytest.mark.parametrize(("case_format", "over_line"), [("yaml", 13), ("jsonl", 2)])
def test_the_limit_counts_utf8_bytes_and_a_field_at_the_limit_loads(
    tmp_path: Path, case_format: str, over_line: int
) -> None:
    at_limit = case_text(case_format, "at-limit", "a" * FIELD_LIMIT_BYTES)
    # 524,289 characters, two bytes each in UTF-8: over the limit in bytes, not in characters.
    over = case_text(case_format, "over", "é" * (FIELD_LIMIT_BYTES // 2 + 1))
    name = f"big.{case_format}"
    root = small_suite(tmp_path, name, at_limit + over)

    assert problems(root) == [
        f"{root / 'cases' / name}:{over_line}: input.messages[0].content: 1,048,578 {TOO_LONG}"
    ]
    (root / "cases" / name).write_text(at_limit, encoding="utf-8")
    loaded = load_suite(root).get("at-limit")
    assert loaded is not None and loaded.input.messages[0].content == "a" * FIELD_LIMIT_BYTES


def test_an_oversized_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    key = "k" * (FIELD_LIMIT_BYTES + 1)
    entry = {
        "id": "long-key",
        "set": "monitoring",
        "input": {"messages": [{"role": "user", "content": "hi"}], key: 1},
        "expect": {"contains": ["14 days"]},
    }
    root = small_suite(tmp_path, "keys.jsonl", orjson.dumps(entry).decode() + "\n")

    [issue] = problems(root)

    assert issue == (
        f"{root / 'cases' / 'keys.jsonl'}:1: input: a key of 1,048,577 bytes is too long: "
        "the limit for one field of a case is 1,048,576 bytes (1 MiB)"
    )


def test_a_yaml_error_late_in_a_file_voids_the_cases_read_before_it(tmp_path: Path) -> None:
    """Read a case at a time, a file still counts whole or not at all: its earlier cases
    raise no problems of their own and claim no ids that a later file repeats."""
    broken = (
        yaml_case("dup-1", "first")
        + yaml_case("bad-set", "second").replace("set: monitoring", "set: nonsense")
        + "- [unclosed\n"
    )
    root = small_suite(tmp_path, "a.yaml", broken)
    (root / "cases" / "z.yaml").write_text(yaml_case("dup-1", "again"))

    [issue] = problems(root)

    assert issue.startswith(f"{root / 'cases' / 'a.yaml'}:")
    assert "invalid YAML" in issue
