"""Loading a suite: every bad input is reported with file:line and field, all at once."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import textwrap
from pathlib import Path

import orjson
import pytest

from evalcore.suite import (
    EvalSet,
    Outcome,
    Severity,
    Suite,
    SuiteError,
    SuiteIssue,
    load_suite,
)
from evalcore.suite.yaml_lines import parse_yaml

SCORECARD = """\
route: support-assistant
owner: ana
target: {kind: openai_chat, base_url: "http://127.0.0.1:9/v1", model: m}
thresholds:
  blocking: {min_pass_rate: 1.0, owner: ana}
  monitoring: {min_pass_rate: 0.9}
tag_thresholds:
  refunds: {min_pass_rate: 0.95, owner: ana}
budgets:
  latency_p95_ms: 4000
  owner: ana
"""

OWNERS = """\
channel: "#evals"
owners:
  - id: ana
    name: Ana
    slack_id: U0ANA1234
    owns: {release: true, sets: [blocking], thresholds: ["*"]}
"""

CASES = """\
- id: refund-window-eu-001
  set: blocking
  severity: critical
  tags: [refunds, eu]
  source: {kind: production, ref: ZD-48213, captured: 2026-02-11}
  input:
    messages:
      - {role: user, content: "I bought it 10 days ago in Berlin, can I return it?"}
  expect:
    outcome: answer
    contains: ["14 days"]
- id: refund-window-us-002
  set: monitoring
  tags: [refunds]
  owner: ana
  input:
    messages:
      - {role: user, content: "Can I return a gift card?"}
  expect:
    not_contains: ["30 days"]
"""


def write_suite(
    root: Path,
    *,
    cases: str | None = CASES,
    scorecard: str | None = SCORECARD,
    owners: str | None = OWNERS,
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """A valid minimal suite under `root`; pass None to leave a file out, `files` to add."""
    (root / "cases").mkdir(parents=True, exist_ok=True)
    if cases is not None:
        (root / "cases" / "refunds.yaml").write_text(cases)
    if scorecard is not None:
        (root / "scorecard.yaml").write_text(scorecard)
    if owners is not None:
        (root / "owners.yaml").write_text(owners)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def problems(root: Path) -> list[str]:
    """The issues `load_suite` raises, as text; fails if it returned a suite instead."""
    result: Suite | None = None
    with pytest.raises(SuiteError) as info:
        result = load_suite(root)
    assert result is None
    assert info.value.issues, "SuiteError without issues"
    return [str(issue) for issue in info.value.issues]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def one_case(**changes: object) -> dict[str, object]:
    case: dict[str, object] = {
        "id": "c1",
        "set": "blocking",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "expect": {"contains": ["hello"]},
    }
    case.update(changes)
    return case


def jsonl(*entries: object) -> str:
    return "".join(orjson.dumps(entry).decode() + "\n" for entry in entries)


# -- the valid suite -----------------------------------------------------------------


def test_valid_suite_loads_everything(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path))

    assert [c.id for c in suite.cases] == ["refund-window-eu-001", "refund-window-us-002"]
    first = suite.cases[0]
    assert first.set is EvalSet.blocking and first.severity is Severity.critical
    assert first.expect.outcome is Outcome.answer
    assert first.source.captured == dt.date(2026, 2, 11)
    assert first.tags == ["eu", "refunds"]
    assert suite.case_files == {
        "refund-window-eu-001": tmp_path / "cases" / "refunds.yaml",
        "refund-window-us-002": tmp_path / "cases" / "refunds.yaml",
    }
    assert suite.scorecard.route == "support-assistant"
    assert suite.owners.get("ana") is not None
    assert suite.version.case_count == 2
    assert len(suite.version.hash) == 64 and suite.version.short == suite.version.hash[:12]
    assert len(suite.scorecard_version) == 64
    assert suite.get("refund-window-us-002") is suite.cases[1]
    assert suite.get("nope") is None


def test_counts_and_select(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path))

    counts = suite.counts()
    assert counts["set"] == {"blocking": 1, "monitoring": 1, "backlog": 0}
    assert counts["severity"] == {"critical": 1, "high": 0, "medium": 1, "low": 0}
    assert counts["tag"] == {"eu": 1, "refunds": 2}

    assert [c.id for c in suite.select(sets=[EvalSet.blocking])] == ["refund-window-eu-001"]
    assert [c.id for c in suite.select(sets=["monitoring"])] == ["refund-window-us-002"]
    assert len(suite.select(tags=["refunds"])) == 2
    assert [c.id for c in suite.select(tags=["eu", "nothing"])] == ["refund-window-eu-001"]
    assert suite.select(sets=[EvalSet.monitoring], tags=["eu"]) == []
    assert [c.id for c in suite.select(ids={"refund-window-us-002"})] == ["refund-window-us-002"]
    assert len(suite.select()) == 2
    with pytest.raises(ValueError, match="unknown case id"):
        suite.select(ids=["typo"])
    with pytest.raises(ValueError):
        suite.select(sets=["gate"])


def test_cases_found_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = write_suite(
        tmp_path,
        files={
            "cases/b/more.jsonl": jsonl(one_case(id="b-1"), one_case(id="b-2")),
            "cases/a.yml": "- " + orjson.dumps(one_case(id="a-1")).decode() + "\n",
            "cases/.hidden.yaml": "not: [valid",
            "cases/notes.txt": "ignored",
        },
    )
    suite = load_suite(root)
    assert [c.id for c in suite.cases] == [
        "a-1",
        "b-1",
        "b-2",
        "refund-window-eu-001",
        "refund-window-us-002",
    ]
    assert suite.case_files["b-2"] == root / "cases" / "b" / "more.jsonl"


def test_yaml_anchors_merge_keys_and_dates(tmp_path: Path) -> None:
    cases = textwrap.dedent(
        """\
        - &base
          id: base-1
          set: monitoring
          tags: [refunds]
          source: {kind: fixture, captured: 2026-01-05}
          input: {messages: [{role: user, content: hi}]}
          expect: {contains: [hello]}
        - <<: *base
          id: base-2
          severity: low
        """
    )
    suite = load_suite(write_suite(tmp_path, cases=cases))
    second = suite.cases[1]
    assert second.id == "base-2" and second.severity is Severity.low
    assert second.set is EvalSet.monitoring
    assert second.source.captured == dt.date(2026, 1, 5)


def test_blank_jsonl_lines_are_ignored(tmp_path: Path) -> None:
    text = "\n" + jsonl(one_case(id="j-1")) + "\n   \n" + jsonl(one_case(id="j-2"))
    suite = load_suite(write_suite(tmp_path, files={"cases/extra.jsonl": text}))
    assert {"j-1", "j-2"} <= {c.id for c in suite.cases}


# -- one test per bad input ------------------------------------------------------------


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    bad = CASES.replace("tags: [refunds, eu]", "tags: [refunds, eu")
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'cases' / 'refunds.yaml'}:")
    assert "invalid YAML" in issue
    # The parser notices the unclosed flow sequence a little later; the line is real.
    line = int(issue.split(":")[1])
    assert line_of(bad, "tags: [refunds, eu") <= line <= line_of(bad, "source:") + 1


def test_case_file_top_level_must_be_a_list(tmp_path: Path) -> None:
    root = write_suite(tmp_path, cases="id: lonely\nset: blocking\n")
    assert problems(root) == [
        f"{root / 'cases' / 'refunds.yaml'}:1: expected a list of cases, got a mapping"
    ]


def test_empty_case_file_is_reported(tmp_path: Path) -> None:
    root = write_suite(tmp_path, cases="# nothing yet\n")
    [issue] = problems(root)
    assert "refunds.yaml: expected a list of cases, got nothing" in issue


def test_duplicate_id_in_one_file(tmp_path: Path) -> None:
    bad = CASES.replace("refund-window-us-002", "refund-window-eu-001")
    root = write_suite(tmp_path, cases=bad)
    file = root / "cases" / "refunds.yaml"
    first = line_of(bad, "refund-window-eu-001", 1)
    second = line_of(bad, "refund-window-eu-001", 2)
    assert problems(root) == [
        f"{file}:{second}: id: duplicate case id 'refund-window-eu-001': also at {file}:{first}"
    ]


def test_duplicate_id_across_two_files_names_both(tmp_path: Path) -> None:
    other = "- " + orjson.dumps(one_case(id="refund-window-us-002")).decode() + "\n"
    root = write_suite(tmp_path, files={"cases/zz-other.yaml": other})
    first = root / "cases" / "refunds.yaml"
    second = root / "cases" / "zz-other.yaml"
    [issue] = problems(root)
    assert issue == (
        f"{second}:1: id: duplicate case id 'refund-window-us-002': "
        f"also at {first}:{line_of(CASES, 'refund-window-us-002')}"
    )


def test_duplicate_id_between_jsonl_files_names_both_lines(tmp_path: Path) -> None:
    first_text = jsonl(one_case(id="x-1"), one_case(id="dup"))
    second_text = "\n" + jsonl(one_case(id="dup"))
    root = write_suite(tmp_path, files={"cases/a.jsonl": first_text, "cases/b.jsonl": second_text})
    assert problems(root) == [
        f"{root / 'cases' / 'b.jsonl'}:2: id: duplicate case id 'dup': "
        f"also at {root / 'cases' / 'a.jsonl'}:2"
    ]


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ("set: blocking", "set: gate", "set", "unknown set 'gate' (allowed: 'blocking', 'monitoring' or 'backlog')"),
        ("severity: critical", "severity: urgent", "severity", "unknown severity 'urgent' (allowed: 'critical', 'high', 'medium' or 'low')"),
        ("outcome: answer", "outcome: reply", "expect.outcome", "unknown outcome 'reply' (allowed: 'answer', 'refuse', 'needs_human' or 'tool_call')"),
    ],
)  # fmt: skip
def test_unknown_enum_values_list_the_allowed_ones(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    bad = CASES.replace(old, new, 1)
    root = write_suite(tmp_path, cases=bad)
    file = root / "cases" / "refunds.yaml"
    assert problems(root) == [f"{file}:{line_of(bad, new)}: {field}: {expected}"]


@pytest.mark.parametrize(
    "expect_text",
    [
        "",  # no expect key at all
        "  expect:\n",  # expect: null
        "  expect: {}\n",  # an empty mapping
        "  expect: {contains: []}\n",  # only empty scorers
    ],
)
def test_case_with_no_expectation(tmp_path: Path, expect_text: str) -> None:
    cases = (
        textwrap.dedent(
            """\
        - id: vague-1
          set: backlog
          tags: [refunds]
          input: {messages: [{role: user, content: hi}]}
        """
        )
        + expect_text
    )
    root = write_suite(tmp_path, cases=cases)
    [issue] = problems(root)
    line = 5 if expect_text else 1
    assert issue.startswith(f"{root / 'cases' / 'refunds.yaml'}:{line}: expect: ")
    assert "case has no expectation" in issue


def test_invalid_regex(tmp_path: Path) -> None:
    bad = CASES.replace('contains: ["14 days"]', 'contains: ["14 days"]\n    regex: ["("]')
    root = write_suite(tmp_path, cases=bad)
    line = line_of(bad, "regex:")
    assert problems(root) == [
        f"{root / 'cases' / 'refunds.yaml'}:{line}: expect.regex: "
        "invalid regex '(': missing ), unterminated subpattern at position 0"
    ]


def test_invalid_json_schema_in_tool_call(tmp_path: Path) -> None:
    bad = CASES.replace(
        "    outcome: answer\n",
        "    outcome: tool_call\n"
        "    tool_call:\n"
        "      name: create_refund\n"
        "      arguments_schema: {type: objekt}\n",
    )
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    line = line_of(bad, "arguments_schema")
    assert issue.startswith(
        f"{root / 'cases' / 'refunds.yaml'}:{line}: expect.tool_call.arguments_schema: "
        "invalid JSON Schema:"
    )


def test_the_same_invalid_schema_is_reported_in_every_case_and_every_load(
    tmp_path: Path,
) -> None:
    """Schemas are checked once per distinct schema; an invalid one is never remembered
    as checked."""
    bad = CASES.replace(
        '    not_contains: ["30 days"]\n',
        '    not_contains: ["30 days"]\n    json_schema: {type: objekt}\n',
    )
    assert bad.count("json_schema") == 1
    twice = bad + "\n" + bad.split("\n- ", 1)[1].replace("id: ", "id: again-", 1).join(["- ", ""])
    root = write_suite(tmp_path, cases=twice)
    for _ in range(2):
        issues = problems(root)
        assert len(issues) == 2, issues
        assert all("expect.json_schema: invalid JSON Schema" in issue for issue in issues)


def test_invalid_json_schema_in_expect(tmp_path: Path) -> None:
    bad = CASES.replace(
        '    not_contains: ["30 days"]\n',
        '    not_contains: ["30 days"]\n    json_schema: {type: object, required: yes}\n',
    )
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    assert f"refunds.yaml:{line_of(bad, 'json_schema')}: expect.json_schema: " in issue
    assert "invalid JSON Schema" in issue


def test_unknown_scorer_points_at_its_key(tmp_path: Path) -> None:
    bad = CASES.replace('not_contains: ["30 days"]', 'not_contains: ["30 days"]\n    semantic: yes')
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    assert issue.startswith(
        f"{root / 'cases' / 'refunds.yaml'}:{line_of(bad, 'semantic')}: expect.semantic: "
        "unknown scorer 'semantic' (known: outcome, exact, contains"
    )


def test_samples_below_one(tmp_path: Path) -> None:
    bad = CASES.replace("  owner: ana\n", "  owner: ana\n  samples: 0\n")
    root = write_suite(tmp_path, cases=bad)
    assert problems(root) == [
        f"{root / 'cases' / 'refunds.yaml'}:{line_of(bad, 'samples')}: samples: "
        "Input should be greater than or equal to 1 (got 0)"
    ]


def test_unknown_field_points_at_the_key_and_suggests(tmp_path: Path) -> None:
    bad = CASES.replace("  severity: critical", "  sevrity: critical")
    root = write_suite(tmp_path, cases=bad)
    assert problems(root) == [
        f"{root / 'cases' / 'refunds.yaml'}:{line_of(bad, 'sevrity')}: sevrity: "
        "unknown field 'sevrity' (did you mean 'severity'?)"
    ]


def test_nested_field_error_names_the_dotted_path(tmp_path: Path) -> None:
    bad = CASES.replace('{role: user, content: "Can I', '{role: bot, content: "Can I')
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    assert issue.startswith(
        f"{root / 'cases' / 'refunds.yaml'}:{line_of(bad, 'role: bot')}: input.messages[0].role: "
    )


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    bad = CASES.replace("  severity: critical\n", "  severity: critical\n  severity: low\n")
    root = write_suite(tmp_path, cases=bad)
    first = line_of(bad, "severity: critical")
    assert problems(root) == [
        f"{root / 'cases' / 'refunds.yaml'}:{first + 1}: severity: "
        f"duplicate key 'severity' (first at line {first})"
    ]


@pytest.mark.parametrize(
    ("where", "old", "new", "field"),
    [
        ("cases/refunds.yaml", "  owner: ana\n", "  owner: bob\n", "owner"),
        ("scorecard.yaml", "owner: ana\ntarget", "owner: bob\ntarget", "owner"),
        ("scorecard.yaml", "{min_pass_rate: 1.0, owner: ana}", "{min_pass_rate: 1.0, owner: bob}", "thresholds.blocking.owner"),
        ("scorecard.yaml", "{min_pass_rate: 0.95, owner: ana}", "{min_pass_rate: 0.95, owner: bob}", "tag_thresholds.refunds.owner"),
        ("scorecard.yaml", "  owner: ana\n", "  owner: bob\n", "budgets.owner"),
        ("scorecard.yaml", "budgets:\n", "graduation:\n  owner: bob\nbudgets:\n", "graduation.owner"),
    ],
)  # fmt: skip
def test_unknown_owner_is_reported_where_it_is_referenced(
    tmp_path: Path, where: str, old: str, new: str, field: str
) -> None:
    texts = {"cases/refunds.yaml": CASES, "scorecard.yaml": SCORECARD}
    assert old in texts[where]
    bad = texts[where].replace(old, new, 1)
    root = write_suite(tmp_path, files={where: bad})
    assert problems(root) == [
        f"{root / where}:{line_of(bad, 'bob')}: {field}: unknown owner 'bob' (owners.yaml has: ana)"
    ]


def test_threshold_for_a_set_that_does_not_exist(tmp_path: Path) -> None:
    bad = SCORECARD.replace("  monitoring: {min_pass_rate: 0.9}", "  gating: {min_pass_rate: 0.9}")
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:{line_of(bad, 'gating')}: thresholds.gating: "
        "threshold for a set that does not exist: 'gating' (sets: blocking, monitoring, backlog)"
    ]


def test_budget_for_a_set_that_does_not_exist(tmp_path: Path) -> None:
    bad = SCORECARD.replace("budgets:\n", "budgets:\n  sets:\n    gating: {latency_p95_ms: 100}\n")
    assert "    gating: {latency_p95_ms: 100}\n  latency_p95_ms: 4000\n" in bad
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:{line_of(bad, 'gating')}: budgets.sets.gating: "
        "budget for a set that does not exist: 'gating' (sets: blocking, monitoring, backlog)"
    ]


def test_budgets_for_real_sets_load(tmp_path: Path) -> None:
    good = SCORECARD.replace(
        "budgets:\n",
        "budgets:\n  sets:\n    monitoring: {latency_p95_ms: 6000, cost_per_run_usd: 1}\n",
    )
    suite = load_suite(write_suite(tmp_path, scorecard=good))
    monitoring = suite.scorecard.budgets.sets["monitoring"]
    assert monitoring.latency_p95_ms == 6000 and monitoring.cost_per_run_usd == 1
    assert monitoring.latency_p50_ms is None


def test_budgets_sets_count_in_the_scorecard_version_only_when_given(tmp_path: Path) -> None:
    """An empty `budgets.sets` is left out of the hashed dump, so older runs still resume."""
    plain = load_suite(write_suite(tmp_path / "plain"))
    assert plain.scorecard.budgets.sets == {}
    assert "sets" not in plain.scorecard.model_dump(mode="json")["budgets"]
    spelled = SCORECARD.replace("budgets:\n", "budgets:\n  sets: {}\n")
    assert load_suite(write_suite(tmp_path / "spelled", scorecard=spelled)).scorecard_version == (
        plain.scorecard_version
    )
    limited = SCORECARD.replace("budgets:\n", "budgets:\n  sets: {blocking: {latency_p95_ms: 1}}\n")
    assert load_suite(write_suite(tmp_path / "limited", scorecard=limited)).scorecard_version != (
        plain.scorecard_version
    )


def test_tag_threshold_for_a_tag_no_case_carries(tmp_path: Path) -> None:
    bad = SCORECARD + "  shipping: {min_pass_rate: 0.5}\n"
    bad = bad.replace("budgets:\n  latency_p95_ms: 4000\n  owner: ana\n", "")
    bad = bad.replace("tag_thresholds:\n", "budgets: {owner: ana}\ntag_thresholds:\n")
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:{line_of(bad, 'shipping')}: tag_thresholds.shipping: "
        "threshold for tag 'shipping' that no case carries"
    ]


def test_threshold_out_of_range_names_file_and_line(tmp_path: Path) -> None:
    bad = SCORECARD.replace("min_pass_rate: 0.9}", "min_pass_rate: 1.5}")
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:{line_of(bad, '1.5')}: thresholds.monitoring.min_pass_rate: "
        "Input should be less than or equal to 1 (got 1.5)"
    ]


def test_bad_target_kind_points_at_kind(tmp_path: Path) -> None:
    bad = SCORECARD.replace("kind: openai_chat", "kind: grpc")
    root = write_suite(tmp_path, scorecard=bad)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'scorecard.yaml'}:3: target.kind: unknown kind 'grpc'")


def test_missing_target_field_drops_the_union_tag_from_the_field(tmp_path: Path) -> None:
    bad = SCORECARD.replace('base_url: "http://127.0.0.1:9/v1", ', "")
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:3: target.base_url: missing required field 'base_url'"
    ]


def test_missing_scorecard(tmp_path: Path) -> None:
    root = write_suite(tmp_path, scorecard=None)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'scorecard.yaml'}: missing scorecard.yaml")


def test_missing_owners(tmp_path: Path) -> None:
    root = write_suite(tmp_path, owners=None)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'owners.yaml'}: missing owners.yaml")


def test_no_case_files(tmp_path: Path) -> None:
    root = write_suite(tmp_path, cases=None)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'cases'}: cases/ has no case files")


def test_missing_suite_directory(tmp_path: Path) -> None:
    assert problems(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: suite directory not found"]


def test_owner_and_slack_ids_are_unique(tmp_path: Path) -> None:
    owners = OWNERS + "  - {id: ana, name: Ana Two, slack_id: U0ANA1234}\n"
    root = write_suite(tmp_path, owners=owners)
    file = root / "owners.yaml"
    assert problems(root) == [
        f"{file}:7: owners[1].id: duplicate owner id 'ana': also at {file}:3",
        f"{file}:7: owners[1].slack_id: duplicate Slack id 'U0ANA1234': also at {file}:5",
    ]


def test_owner_scopes_name_real_sets(tmp_path: Path) -> None:
    owners = OWNERS.replace("sets: [blocking]", "sets: [blocking, gating]")
    root = write_suite(tmp_path, owners=owners)
    assert problems(root) == [
        f"{root / 'owners.yaml'}:6: owners[0].owns.sets[1]: "
        "unknown set 'gating' (allowed: blocking, monitoring, backlog or '*')"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    root = write_suite(tmp_path, files={"cases/latin.yaml": b"- id: a\n  notes: caf\xe9\n"})
    assert problems(root) == [
        f"{root / 'cases' / 'latin.yaml'}:2: not UTF-8 text: byte 0xe9 cannot be read"
    ]


# -- JSONL ------------------------------------------------------------------------------


def test_jsonl_bad_line_number(tmp_path: Path) -> None:
    text = jsonl(one_case(id="j-1")) + "\n" + '{"id": "j-2", "set": \n' + jsonl(one_case(id="j-3"))
    root = write_suite(tmp_path, files={"cases/more.jsonl": text})
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'cases' / 'more.jsonl'}:3: invalid JSON")


def test_jsonl_line_must_be_an_object(tmp_path: Path) -> None:
    root = write_suite(tmp_path, files={"cases/more.jsonl": jsonl(one_case(id="j-1"), [1, 2])})
    assert problems(root) == [
        f"{root / 'cases' / 'more.jsonl'}:2: expected a case mapping, got a list"
    ]


def test_jsonl_validation_errors_carry_the_line(tmp_path: Path) -> None:
    text = jsonl(
        one_case(id="j-1"),
        one_case(id="j-2", set="gate"),
        one_case(id="j-3", expect={"regex": ["("]}),
        one_case(id="j-4", expect={"contains": ["x"], "fuzzy": 1}),
    )
    root = write_suite(tmp_path, files={"cases/more.jsonl": text})
    file = root / "cases" / "more.jsonl"
    assert problems(root) == [
        f"{file}:2: set: unknown set 'gate' (allowed: 'blocking', 'monitoring' or 'backlog')",
        f"{file}:3: expect.regex: invalid regex '(': "
        "missing ), unterminated subpattern at position 0",
        f"{file}:4: expect.fuzzy: unknown scorer 'fuzzy' (known: outcome, exact, contains, "
        "not_contains, regex, json_schema, tool_call, judge)",
    ]


# -- everything at once -----------------------------------------------------------------


def test_multiple_problems_across_files_are_reported_together(tmp_path: Path) -> None:
    bad_cases = CASES.replace("set: blocking", "set: gate").replace(
        "  owner: ana\n", "  owner: ana\n  samples: 0\n"
    )
    bad_scorecard = SCORECARD.replace(
        "  monitoring: {min_pass_rate: 0.9}", "  gating: {min_pass_rate: 0.9}"
    )
    root = write_suite(
        tmp_path,
        cases=bad_cases,
        scorecard=bad_scorecard,
        files={"cases/more.jsonl": jsonl(one_case(id="refund-window-eu-001")) + "{oops\n"},
    )
    with pytest.raises(SuiteError) as info:
        load_suite(root)
    issues = info.value.issues
    assert all(isinstance(issue, SuiteIssue) for issue in issues)
    assert {(issue.file.name, issue.field) for issue in issues} == {
        ("refunds.yaml", "set"),
        ("refunds.yaml", "samples"),
        ("refunds.yaml", "id"),  # cases/more.jsonl sorts first, so it holds the first copy
        ("more.jsonl", None),
        ("scorecard.yaml", "thresholds.gating"),
    }
    message = str(info.value)
    assert message.startswith("5 problems in the suite:")
    assert str(issues[0]) in message


def test_error_message_summarises_many_problems(tmp_path: Path) -> None:
    text = jsonl(*(one_case(id=f"j-{n}", set="gate") for n in range(8)))
    root = write_suite(tmp_path, files={"cases/more.jsonl": text})
    with pytest.raises(SuiteError) as info:
        load_suite(root)
    assert len(info.value.issues) == 8
    message = str(info.value)
    assert message.startswith("8 problems in the suite:")
    assert message.endswith("... and 3 more")


def test_issue_without_line_or_field_formats_cleanly() -> None:
    assert str(SuiteIssue(Path("evals/cases"), None, None, "no case files")) == (
        "evals/cases: no case files"
    )
    assert str(SuiteIssue(Path("evals/cases/a.yaml"), 3, "expect.regex", "bad")) == (
        "evals/cases/a.yaml:3: expect.regex: bad"
    )


# -- the YAML reader itself ---------------------------------------------------------------


def test_parse_yaml_records_lines_and_types() -> None:
    text = textwrap.dedent(
        """\
        a: 1
        b:
          - x: 2.5
            y: true
          - null
        c: 2026-02-11
        d: "2026-02-11"
        e: ~
        """
    )
    doc = parse_yaml(text, Path("t.yaml"))
    assert doc.data == {
        "a": 1,
        "b": [{"x": 2.5, "y": True}, None],
        "c": dt.date(2026, 2, 11),
        "d": "2026-02-11",
        "e": None,
    }
    assert doc.issues == []
    assert doc.lines.line_of(("a",)) == 1
    assert doc.lines.line_of(("b", 0, "y")) == 4
    assert doc.lines.line_of(("b", 1)) == 5
    assert doc.lines.line_of(("b", 0, "unknown", "deeper")) == 3
    assert doc.lines.line_of(("c",)) == 6


def test_parse_yaml_refuses_recursive_and_exploding_aliases() -> None:
    with pytest.raises(SuiteError, match="recursive alias"):
        parse_yaml("&a [*a]\n", Path("t.yaml"))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for n, prev in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    with pytest.raises(SuiteError, match="aliases expand"):
        parse_yaml(bomb, Path("t.yaml"))


def test_parse_yaml_reports_multiple_documents() -> None:
    with pytest.raises(SuiteError) as info:
        parse_yaml("- a\n---\n- b\n", Path("t.yaml"))
    [issue] = info.value.issues
    assert issue.line == 2 and "invalid YAML" in issue.message


def test_unknown_scorecard_field_suggests_the_nested_name(tmp_path: Path) -> None:
    bad = SCORECARD.replace("  latency_p95_ms: 4000", "  latncy_p95_ms: 4000")
    root = write_suite(tmp_path, scorecard=bad)
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:{line_of(bad, 'latncy')}: budgets.latncy_p95_ms: "
        "unknown field 'latncy_p95_ms' (did you mean 'latency_p95_ms'?)"
    ]


def test_scorecard_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    root = write_suite(tmp_path, scorecard="- route: x\n")
    assert problems(root) == [
        f"{root / 'scorecard.yaml'}:1: expected a mapping at the top level, got a list"
    ]


def test_unsupported_yaml_tag(tmp_path: Path) -> None:
    bad = CASES.replace('contains: ["14 days"]', 'contains: [!secret "14 days"]')
    root = write_suite(tmp_path, cases=bad)
    [issue] = problems(root)
    assert issue.startswith(f"{root / 'cases' / 'refunds.yaml'}:{line_of(bad, '!secret')}: ")
    assert "unsupported YAML tag '!secret'" in issue


def test_suite_error_survives_pickling(tmp_path: Path) -> None:
    import pickle

    root = write_suite(tmp_path, cases=CASES.replace("set: blocking", "set: gate"))
    with pytest.raises(SuiteError) as info:
        load_suite(root)
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.issues == info.value.issues
    assert str(copy) == str(info.value)


def test_judge_expectation_without_a_judge_endpoint_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "evals"
    shutil.copytree(Path(__file__).resolve().parents[2] / "evals", root)
    scorecard = root / "scorecard.yaml"
    text, removed = re.subn(r"\njudge:\n(?:  .*\n)+", "\n", scorecard.read_text())
    assert removed == 1
    scorecard.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(root)
    message = str(info.value)
    assert "scorecard.yaml" in message and "judge" in message
    assert "no judge: section" in message
