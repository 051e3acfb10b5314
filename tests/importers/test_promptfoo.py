"""`evalcore import promptfoo`: a promptfoo config read into cases, what could not be
converted listed with file:line and why, and bad configs refused with the place named."""

from __future__ import annotations

import csv
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from evalcore.importers.conversion import Conversion, ConvertOptions, ImportRefused
from evalcore.importers.promptfoo import convert_promptfoo
from evalcore.scorers import SCORERS, Score, ScoreContext
from evalcore.suite.models import Case, Expect, Message, ToolSpec
from evalcore.suite.scorecard import Signals
from evalcore.targets.base import Reply

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path("tests/data/promptfoo/promptfooconfig.yaml")
CTX = ScoreContext(signals=Signals())

LOOKUP_TOOL = """
providers:
  - id: openai:gpt-4o-mini
    config:
      temperature: 0
      tools:
        - type: function
          function:
            name: lookup_order
            description: Look up an order.
            parameters:
              type: object
              properties: {order_id: {type: string, pattern: '^LH-[0-9]{6}$'}}
              required: [order_id]
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder the config is named from, as a user runs the command."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return Path(name)


def convert(config: Path) -> Conversion:
    return convert_promptfoo(config, ConvertOptions())


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """The 1-based line where `text` occurs (its n-th occurrence)."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{text!r} not in {path}")


def verdict(expect: dict[str, Any], reply: str) -> bool:
    """Whether evalcore's scorers pass `reply` against `expect` (no judge)."""
    case = Case.model_validate(
        {
            "id": "t",
            "set": "backlog",
            "input": {"messages": [{"role": "user", "content": "q"}]},
            "expect": expect,
        }
    )
    scores = [SCORERS[name](case, Reply(text=reply), CTX) for name in case.expect.scorer_names()]
    return all(isinstance(score, Score) and score.passed for score in scores)


def one_assertion(here: Path, assertion: str) -> tuple[dict[str, Any], Conversion]:
    """Convert a config whose single test has `assertion` (YAML, one list item)."""
    config = write(
        here,
        "promptfooconfig.yaml",
        f"""
prompts: ['{{{{question}}}}']
tests:
  - vars: {{question: Can I return it?}}
    assert:
      - {assertion}
""",
    )
    conversion = convert(config)
    expect = conversion.drafts[0].expect if conversion.drafts else {}
    return expect, conversion


def notes(conversion: Conversion) -> list[tuple[str, str, str, bool]]:
    return [(str(n.origin), n.what, n.reason, n.dropped) for n in conversion.not_converted]


# --- the example config -----------------------------------------------------------------


def test_example_config_gives_one_valid_case_per_prompt_and_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    conversion = convert(EXAMPLE)
    rows = list(csv.reader((ROOT / EXAMPLE.parent / "tests.csv").open(encoding="utf-8")))[1:]
    inline = (ROOT / EXAMPLE).read_text(encoding="utf-8").count("  - description:")

    assert len(conversion.drafts) == 2 * (inline + len(rows))
    for draft in conversion.drafts:
        Expect.model_validate(draft.expect)
        for tool in draft.tools:
            ToolSpec.model_validate(tool)
        for message in draft.messages:
            Message.model_validate(message)
    assert {tuple(m["role"] for m in d.messages) for d in conversion.drafts} == {
        ("user",),
        ("system", "user"),
    }
    assert [ToolSpec.model_validate(t).name for t in conversion.drafts[0].tools] == ["lookup_order"]
    csv_origins = [str(d.origin) for d in conversion.drafts if d.origin.file.endswith(".csv")]
    assert csv_origins[0] == "tests/data/promptfoo/tests.csv:2"
    assert len(set(d.key for d in conversion.drafts)) == len(conversion.drafts)


def test_example_lists_the_provider_the_code_assertions_and_the_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    config = ROOT / EXAMPLE
    conversion = convert(EXAMPLE)
    listed = notes(conversion)

    provider_line = line_of(config, "- id: openai:gpt-4o-mini")
    assert (
        f"{EXAMPLE}:{provider_line}",
        "provider openai:gpt-4o-mini options temperature, max_tokens",
        "the route under test is set in evalcore's scorecard (route, target); providers are "
        "not imported",
        False,
    ) in listed
    javascript_line = line_of(config, "type: javascript")
    assert (
        f"{EXAMPLE}:{javascript_line}",
        "assertion javascript",
        "runs code inside promptfoo; evalcore checks declared expectations only",
        False,
    ) in listed
    csv_javascript = line_of(ROOT / EXAMPLE.parent / "tests.csv", "javascript:")
    assert any(
        origin == f"tests/data/promptfoo/tests.csv:{csv_javascript}" and "javascript" in what
        for origin, what, _, _ in listed
    )
    budgets = {(str(b.origin), b.kind, b.limit) for b in conversion.budgets}
    assert budgets == {
        (f"{EXAMPLE}:{line_of(config, 'type: cost')}", "cost", 0.002),
        (f"{EXAMPLE}:{line_of(config, 'type: latency')}", "latency", 3000.0),
    }
    assert not any(dropped for *_, dropped in listed)


def test_converting_again_gives_the_same_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    first = [d.key for d in convert(EXAMPLE).drafts]
    assert first == [d.key for d in convert(EXAMPLE).drafts]


# --- prompts and messages ---------------------------------------------------------------


def test_plain_prompt_is_one_user_message_and_chat_prompt_its_messages(here: Path) -> None:
    write(here, "prompts/plain.txt", "Customer ({{ region }}): {{question}}\n")
    write(
        here,
        "prompts/chat.json",
        '[{"role": "system", "content": "You serve {{region}} customers."},'
        ' {"role": "user", "content": "{{question}}"}]',
    )
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: [file://prompts/plain.txt, file://prompts/chat.json]
tests:
  - vars: {question: Where is my parcel?, region: EU}
    assert: [{type: icontains, value: parcel}]
""",
    )
    plain, chat = convert(config).drafts

    assert plain.messages == [{"role": "user", "content": "Customer (EU): Where is my parcel?"}]
    assert chat.messages == [
        {"role": "system", "content": "You serve EU customers."},
        {"role": "user", "content": "Where is my parcel?"},
    ]
    assert plain.key != chat.key
    assert plain.origin == chat.origin
    assert str(plain.origin) == f"promptfooconfig.yaml:{line_of(here / config, '- vars:')}"


def test_text_file_holds_several_prompts_and_objects_carry_labels(here: Path) -> None:
    write(here, "prompts.txt", "First: {{q}}\n---\nSecond: {{q}}\n")
    write(
        here,
        "chat.yaml",
        "- role: system\n  content: Be brief.\n- role: user\n  content: '{{q}}'\n",
    )
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts:
  - file://prompts.txt
  - {raw: 'Third: {{q}}', label: third}
  - id: file://chat.yaml
    label: brief
tests:
  - vars: {q: hello}
    assert: [{type: icontains, value: hi}]
""",
    )
    drafts = convert(config).drafts

    assert [d.messages[-1]["content"] for d in drafts] == [
        "First: hello",
        "Second: hello",
        "Third: hello",
        "hello",
    ]
    assert drafts[3].messages[0] == {"role": "system", "content": "Be brief."}


def test_prompt_glob_and_a_prompt_function_listed(here: Path) -> None:
    write(here, "prompts/a.txt", "A {{q}}")
    write(here, "prompts/b.txt", "B {{q}}")
    write(here, "make_prompt.py", "def create(context):\n    return 'x'\n")
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts:
  - file://prompts/*.txt
  - file://make_prompt.py:create
tests:
  - vars: {q: hi}
    assert: [{type: icontains, value: hi}]
""",
    )
    conversion = convert(config)

    assert [d.messages[0]["content"] for d in conversion.drafts] == ["A hi", "B hi"]
    line = line_of(here / config, "make_prompt.py")
    assert notes(conversion) == [
        (
            f"promptfooconfig.yaml:{line}",
            "prompt file://make_prompt.py:create",
            "a prompt function runs code inside promptfoo; evalcore sends fixed messages",
            True,
        )
    ]


def test_missing_var_leaves_that_prompt_out_naming_the_var(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts:
  - 'Order {{order_id}}: {{question}}'
  - '{{question}}'
tests:
  - vars: {question: Where is it?}
    assert: [{type: icontains, value: order}]
""",
    )
    conversion = convert(config)

    assert [d.messages[0]["content"] for d in conversion.drafts] == ["Where is it?"]
    line = line_of(here / config, "- vars:")
    assert notes(conversion) == [
        (
            f"promptfooconfig.yaml:{line}",
            "test (prompt Order {{order_id}}: {{question}})",
            "the prompt needs var order_id, which the test does not give",
            True,
        )
    ]


def test_templates_are_sandboxed(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ["{{ question.__class__.__mro__ }}"]
tests:
  - vars: {question: hi}
    assert: [{type: icontains, value: hi}]
""",
    )
    conversion = convert(config)

    assert conversion.drafts == []
    ((_, _, reason, dropped),) = notes(conversion)
    assert dropped and "__class__" in reason


def test_without_prompts_each_test_prompt_var_is_sent(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
tests:
  - vars: {prompt: How long do I have to return a rug?}
    assert: [{type: icontains, value: 30 days}]
""",
    )
    (draft,) = convert(config).drafts
    assert draft.messages == [{"role": "user", "content": "How long do I have to return a rug?"}]


# --- assertions -------------------------------------------------------------------------

# Each assertion, a reply promptfoo passes and one it fails: the converted expectation
# must give evalcore's scorers the same verdicts.
MAPPED = [
    (
        "{type: equals, value: I can't help with that request.}",
        "I can't help with that request.\n",
        "I can't help.",
    ),
    ("{type: equals, value: {ok: true}}", '{"ok": true}', '{"ok": false}'),
    ("{type: not-equals, value: 'No.'}", "Yes.", "  No.  "),
    ("{type: contains, value: 14 days}", "within 14 days of delivery", "within 14 Days"),
    ("{type: icontains, value: 14 days}", "Within 14 DAYS", "within 30 days"),
    (
        "{type: contains-all, value: [30 days, delivery]}",
        "30 days of delivery",
        "30 days of purchase",
    ),
    ("{type: icontains-all, value: [30 days, delivery]}", "30 DAYS of Delivery", "30 days"),
    ("{type: contains-any, value: [$75, 75 USD]}", "over 75 USD", "over $70 (75 usd)"),
    ("{type: icontains-any, value: [$75, 75 USD]}", "over 75 usd", "over $70"),
    ("{type: not-contains, value: 30 days}", "14 days\n30 DAYS", "14 days,\nnot 30 days"),
    ("{type: not-icontains, value: 30 days}", "14 days", "14 days, not 30 DAYS"),
    ("{type: not-contains-any, value: [APPROVED, approved]}", "Refused", "ok\nAPPROVED"),
    ("{type: not-icontains-any, value: [approved, granted]}", "Refused", "Granted"),
    ("{type: not-contains-all, value: [CVV, expiry]}", "CVV only", "the expiry\nand CVV"),
    ("{type: not-icontains-all, value: [cvv, expiry]}", "cvv only", "EXPIRY and CVV"),
    ("{type: regex, value: 'LH-\\d{6}'}", "like LH-123456", "like LH-1234"),
    ("{type: not-regex, value: '\\d{3}-\\d{4}'}", "call us", "call\n555-1234"),
    ("{type: starts-with, value: I can't}", "I can't help", "Sorry, I can't help"),
    ("{type: not-starts-with, value: Sure}", "I can't help", "Sure, here it is"),
    ("{type: is-json}", '{"a": 1}', "a: 1"),
    (
        "{type: is-json, value: {type: object, required: [order_id]}}",
        '{"order_id": "LH-1"}',
        '{"id": 1}',
    ),
]


@pytest.mark.parametrize(("assertion", "passing", "failing"), MAPPED)
def test_assertion_is_checked_as_promptfoo_checks_it(
    here: Path, assertion: str, passing: str, failing: str
) -> None:
    expect, conversion = one_assertion(here, assertion)

    assert conversion.not_converted == []
    Expect.model_validate(expect)
    assert verdict(expect, passing)
    assert not verdict(expect, failing)


def test_contains_is_case_sensitive_and_icontains_lenient(here: Path) -> None:
    assert one_assertion(here, "{type: contains, value: 14 days}")[0] == {"regex": ["14 days"]}
    assert one_assertion(here, "{type: icontains, value: 14 days}")[0] == {"contains": ["14 days"]}
    assert one_assertion(here, "{type: not-icontains, value: x}")[0] == {"not_contains": ["x"]}


def test_is_json_reads_its_schema_from_a_file(here: Path) -> None:
    write(here, "schemas/order.json", '{"type": "object", "required": ["order_id"]}')
    expect, conversion = one_assertion(here, "{type: is-json, value: file://schemas/order.json}")

    assert expect == {"json_schema": {"type": "object", "required": ["order_id"]}}
    assert conversion.not_converted == []
    assert verdict(expect, '{"order_id": "LH-482913"}')
    assert not verdict(expect, '{"id": 1}')


def test_llm_rubric_becomes_the_judge_with_its_threshold(here: Path) -> None:
    expect, _ = one_assertion(here, "{type: llm-rubric, value: Says '14 days', threshold: 0.8}")
    assert expect == {"judge": {"rubric": "Says '14 days'", "min_score": 0.8}}


def test_rubric_from_default_test_and_test_are_judged_together(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}']
defaultTest:
  assert: [{type: llm-rubric, value: Is polite}]
tests:
  - vars: {q: hi}
    assert: [{type: llm-rubric, value: "Mentions '14 days'", threshold: 0.6}]
""",
    )
    (draft,) = convert(config).drafts
    assert draft.expect == {
        "judge": {
            "rubric": "Every one of these must hold:\n- Is polite\n- Mentions '14 days'",
            "min_score": 0.6,
        }
    }


def test_tool_call_assertion_with_one_tool_expects_that_call(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        LOOKUP_TOOL
        + """
prompts: ['{{q}}']
tests:
  - vars: {q: where is LH-482913?}
    assert: [{type: is-valid-openai-tools-call}]
""",
    )
    (draft,) = convert(config).drafts

    assert draft.expect == {
        "outcome": "tool_call",
        "tool_call": {
            "name": "lookup_order",
            "arguments_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "pattern": "^LH-[0-9]{6}$"}},
                "required": ["order_id"],
            },
        },
    }
    assert [ToolSpec.model_validate(t).name for t in draft.tools] == ["lookup_order"]
    Expect.model_validate(draft.expect)


def test_tool_call_assertion_with_several_tools_is_listed(here: Path) -> None:
    two_tools = (
        LOOKUP_TOOL
        + """
        - type: function
          function: {name: create_refund, parameters: {type: object}}
"""
    )
    config = write(
        here,
        "promptfooconfig.yaml",
        two_tools
        + """
prompts: ['{{q}}']
tests:
  - vars: {q: refund LH-482913}
    assert: [{type: is-valid-openai-tools-call}, {type: icontains, value: refund}]
""",
    )
    conversion = convert(config)

    assert conversion.drafts[0].expect == {"contains": ["refund"]}
    line = line_of(here / config, "is-valid-openai-tools-call")
    assert (
        f"promptfooconfig.yaml:{line}",
        "assertion is-valid-openai-tools-call",
        "the provider offers 2 tools; evalcore's tool_call check names the one tool the reply "
        "must call",
        False,
    ) in notes(conversion)


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("{type: javascript, value: output.length < 10}", "runs code inside promptfoo"),
        ("{type: python, value: file://check.py}", "runs code inside promptfoo"),
        ("{type: webhook, value: 'https://example.test/grade'}", "runs code inside promptfoo"),
        ("{type: similar, value: Hello, threshold: 0.8}", "similarity score"),
        ("{type: factuality, value: Paris is the capital}", "graded by a model"),
        ("{type: model-graded-closedqa, value: Is it right?}", "graded by a model"),
        ("{type: regex, value: '(?<year>\\d{4})'}", "does not compile as a Python regex"),
        ("{type: assert-set, threshold: 0.5, assert: [{type: icontains, value: a}]}", "share"),
        ("{type: nonsense-check, value: x}", "not an assertion type"),
    ],
)
def test_assertion_without_counterpart_is_listed_with_why(
    here: Path, assertion: str, reason: str
) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        f"""
prompts: ['{{{{q}}}}']
tests:
  - vars: {{q: hi}}
    assert:
      - {{type: icontains, value: hi}}
      - {assertion}
""",
    )
    conversion = convert(config)

    assert conversion.drafts[0].expect == {"contains": ["hi"]}
    ((origin, what, why, dropped),) = notes(conversion)
    assert origin == f"promptfooconfig.yaml:{line_of(here / config, '- {type:', 2)}"
    assert what.startswith("assertion ") and reason in why and not dropped


def test_test_with_nothing_checkable_is_left_out(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}', 'Be brief. {{q}}']
tests:
  - vars: {q: hi}
    assert: [{type: javascript, value: output.length < 10}]
""",
    )
    conversion = convert(config)

    assert conversion.drafts == []
    line = line_of(here / config, "- vars:")
    assert notes(conversion)[1:] == [
        (
            f"promptfooconfig.yaml:{line}",
            "test (prompt {{q}})",
            "no assertion evalcore can check",
            True,
        ),
        (
            f"promptfooconfig.yaml:{line}",
            "test (prompt Be brief. {{q}})",
            "no assertion evalcore can check",
            True,
        ),
    ]


def test_assert_set_without_threshold_is_its_assertions(here: Path) -> None:
    expect, conversion = one_assertion(
        here,
        "{type: assert-set, assert: [{type: icontains, value: a}, {type: regex, value: b}]}",
    )
    assert expect == {"contains": ["a"], "regex": ["b"]}
    assert conversion.not_converted == []


def test_same_kind_merged_and_a_second_exact_listed(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}']
defaultTest:
  assert: [{type: icontains, value: sorry}, {type: equals, value: A}]
tests:
  - vars: {q: hi}
    assert:
      - {type: icontains-all, value: [refund, days]}
      - {type: equals, value: B}
""",
    )
    conversion = convert(config)

    assert conversion.drafts[0].expect == {"exact": "A", "contains": ["sorry", "refund", "days"]}
    line = line_of(here / config, "{type: equals, value: B}")
    ((origin, what, why, dropped),) = notes(conversion)
    assert (origin, what, dropped) == (f"promptfooconfig.yaml:{line}", "assertion equals", False)
    assert "'A'" in why


def test_cost_and_latency_are_budgets_not_expectations(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}', 'Hi. {{q}}']
tests:
  - vars: {q: hi}
    assert:
      - {type: icontains, value: hi}
      - {type: cost, threshold: 0.002}
      - {type: latency, threshold: 1500}
""",
    )
    conversion = convert(config)

    assert [d.expect for d in conversion.drafts] == [{"contains": ["hi"]}] * 2
    cost = f"promptfooconfig.yaml:{line_of(here / config, 'type: cost')}"
    latency = f"promptfooconfig.yaml:{line_of(here / config, 'type: latency')}"
    assert [(str(b.origin), b.kind, b.limit) for b in conversion.budgets] == [
        (cost, "cost", 0.002),
        (latency, "latency", 1500.0),
    ] * 2
    assert conversion.not_converted == []


def test_scoring_settings_are_listed_but_the_checks_kept(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}']
tests:
  - vars: {q: hi}
    threshold: 0.7
    options:
      transform: output.trim()
      provider: openai:gpt-4o
    assert:
      - {type: icontains, value: hi, weight: 3, metric: greeting}
""",
    )
    conversion = convert(config)
    listed = {what: (origin, dropped) for origin, what, _, dropped in notes(conversion)}
    config_text = here / config

    assert conversion.drafts[0].expect == {"contains": ["hi"]}
    assert listed == {
        "test threshold 0.7": (f"promptfooconfig.yaml:{line_of(config_text, 'threshold')}", False),
        "test option transform": (
            f"promptfooconfig.yaml:{line_of(config_text, 'transform')}",
            False,
        ),
        "test option provider": (
            f"promptfooconfig.yaml:{line_of(config_text, 'provider:')}",
            False,
        ),
        "assertion icontains weight 3": (
            f"promptfooconfig.yaml:{line_of(config_text, 'weight')}",
            False,
        ),
        "assertion icontains metric greeting": (
            f"promptfooconfig.yaml:{line_of(config_text, 'weight')}",
            False,
        ),
    }


def test_assertion_values_are_templates_too(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}']
tests:
  - vars: {q: hi, expected: 14 days}
    assert: [{type: icontains, value: '{{expected}}'}]
""",
    )
    assert convert(config).drafts[0].expect == {"contains": ["14 days"]}


# --- vars, defaultTest, scenarios -------------------------------------------------------


def test_list_vars_expand_into_one_case_per_combination(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{product}} to {{city}}']
tests:
  - vars: {city: [Berlin, Paris], product: [lamp, rug], note: one}
    assert: [{type: icontains, value: days}]
  - vars: {city: [Berlin, Paris]}
    options: {disableVarExpansion: true}
    assert: [{type: icontains, value: days}]
""",
    )
    drafts = convert(config).drafts
    assert [d.messages[0]["content"] for d in drafts] == [
        "lamp to Berlin",
        "rug to Berlin",
        "lamp to Paris",
        "rug to Paris",
    ]
    assert len({d.key for d in drafts}) == 4
    assert {str(d.origin) for d in drafts} == {
        f"promptfooconfig.yaml:{line_of(here / config, '- vars:')}"
    }


def test_default_test_merged_into_every_test_test_values_win(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{greeting}} {{question}}']
defaultTest:
  vars: {greeting: Hello, question: default}
  assert: [{type: not-icontains, value: as an AI}]
tests:
  - vars: {question: Where is my order?}
    assert: [{type: icontains, value: order}]
  - vars: {greeting: Hi, question: Refund?}
    options: {disableDefaultAsserts: true}
    assert: [{type: icontains, value: refund}]
""",
    )
    first, second = convert(config).drafts

    assert first.messages[0]["content"] == "Hello Where is my order?"
    assert first.expect == {"contains": ["order"], "not_contains": ["as an AI"]}
    assert second.messages[0]["content"] == "Hi Refund?"
    assert second.expect == {"contains": ["refund"]}


def test_scenarios_run_each_config_entry_with_each_test(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['[{{region}}] {{question}}']
scenarios:
  - description: Return windows by region
    config:
      - vars: {region: EU, window: 14 days}
      - vars: {region: US, window: 30 days}
    tests:
      - vars: {question: Can I return a lamp?}
        assert: [{type: icontains, value: '{{window}}'}]
      - description: Rug
        vars: {question: Can I return a rug?}
        assert: [{type: icontains, value: '{{window}}'}]
""",
    )
    drafts = convert(config).drafts

    assert [(d.messages[0]["content"], d.expect["contains"], d.notes) for d in drafts] == [
        ("[EU] Can I return a lamp?", ["14 days"], "Return windows by region"),
        ("[EU] Can I return a rug?", ["14 days"], "Rug"),
        ("[US] Can I return a lamp?", ["30 days"], "Return windows by region"),
        ("[US] Can I return a rug?", ["30 days"], "Rug"),
    ]
    lamp = line_of(here / config, "- vars: {question: Can I return a lamp?}")
    assert str(drafts[0].origin) == f"promptfooconfig.yaml:{lamp}"


def test_file_vars_are_read_and_metadata_become_tags(here: Path) -> None:
    write(here, "docs/policy.txt", "EU customers have 14 days.")
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{policy}} {{question}}']
tests:
  - description: Policy quoted
    vars: {policy: file://docs/policy.txt, question: How long?}
    metadata: {category: refunds, regions: [eu, uk]}
    assert: [{type: icontains, value: 14 days}]
""",
    )
    (draft,) = convert(config).drafts

    assert draft.messages[0]["content"] == "EU customers have 14 days. How long?"
    assert draft.tags == ["category:refunds", "regions:eu", "regions:uk"]
    assert draft.notes == "Policy quoted"


# --- tests files ------------------------------------------------------------------------


def test_csv_tests_read_their_special_columns(here: Path) -> None:
    write(
        here,
        "tests.csv",
        "question,__expected1,__expected2,__description,__prefix,__metric,__metadata:topic,"
        "__config:__expected2:threshold\n"
        'Can I return it?,icontains: 14 days,"grade: Says ""14 days""",EU window,[EU] ,accuracy,refunds,0.9\n'
        "Is it free?,$75,,,,,,\n",
    )
    config = write(
        here, "promptfooconfig.yaml", "prompts: ['{{question}}']\ntests: file://tests.csv\n"
    )
    conversion = convert(config)
    first, second = conversion.drafts

    assert first.messages == [{"role": "user", "content": "[EU] Can I return it?"}]
    assert first.expect == {
        "contains": ["14 days"],
        "judge": {"rubric": 'Says "14 days"', "min_score": 0.9},
    }
    assert (str(first.origin), first.notes, first.tags) == (
        "tests.csv:2",
        "EU window",
        ["topic:refunds"],
    )
    assert second.expect == {"exact": "$75"}
    assert str(second.origin) == "tests.csv:3"
    assert notes(conversion) == [
        (
            "tests.csv:2",
            "metric accuracy",
            "promptfoo reports it as a named score; evalcore reports per case and tag",
            False,
        )
    ]


@pytest.mark.parametrize(
    ("cell", "expect"),
    [
        ("contains: Paris", {"regex": ["Paris"]}),
        ("icontains:paris", {"contains": ["paris"]}),
        ("regex: \\d+ days", {"regex": ["\\d+ days"]}),
        ("starts-with: Yes", {"regex": ["\\AYes"]}),
        ("contains-any: a,b", {"regex": ["(?:a|b)"]}),
        ("contains-all: a, b", {"regex": ["a", "b"]}),
        ("is-json", {"json_schema": {}}),
        ("llm-rubric: Is polite", {"judge": {"rubric": "Is polite"}}),
        ("grade: Is polite", {"judge": {"rubric": "Is polite"}}),
        ("not-contains: 30 days", {"regex": ["(?s)\\A(?!.*?30 days)"]}),
        ("Paris: the capital", {"exact": "Paris: the capital"}),
    ],
)
def test_csv_expected_syntax(here: Path, cell: str, expect: dict[str, Any]) -> None:
    write(here, "tests.csv", f'q,__expected\nhi,"{cell}"\n')
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests: file://tests.csv\n")
    (draft,) = convert(config).drafts
    assert draft.expect == expect


def test_csv_code_assertions_are_listed_at_their_row(here: Path) -> None:
    write(
        here,
        "tests.csv",
        "q,__expected1,__expected2\nhi,icontains: hi,javascript: output.length < 9\nyo,python: len(output) < 9,\n",
    )
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests: file://tests.csv\n")
    conversion = convert(config)

    assert len(conversion.drafts) == 1
    assert [(o, w, d) for o, w, _, d in notes(conversion)] == [
        ("tests.csv:2", "assertion javascript", False),
        ("tests.csv:3", "assertion python", False),
        ("tests.csv:3", "test (prompt {{q}})", True),
    ]


def test_tests_from_yaml_jsonl_and_a_glob_keep_their_lines(here: Path) -> None:
    write(
        here,
        "cases/more.yaml",
        """
# returns
- vars: {q: one}
  assert: [{type: icontains, value: a}]

- description: two
  vars: {q: two}
  assert: [{type: icontains, value: b}]
""",
    )
    write(
        here,
        "cases/lines.jsonl",
        '{"vars": {"q": "three"}, "assert": [{"type": "icontains", "value": "c"}]}\n\n'
        '{"vars": {"q": "four"}, "assert": [{"type": "icontains", "value": "d"}]}\n',
    )
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests: [file://cases/*]\n")
    drafts = convert(config).drafts

    assert [(d.messages[0]["content"], str(d.origin)) for d in drafts] == [
        ("three", "cases/lines.jsonl:1"),
        ("four", "cases/lines.jsonl:3"),
        ("one", "cases/more.yaml:2"),
        ("two", "cases/more.yaml:5"),
    ]


def test_remote_and_generated_tests_are_listed(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{q}}']
tests:
  - huggingface://datasets/cais/mmlu
  - file://generate_tests.py:create_tests
  - vars: {q: hi}
    assert: [{type: icontains, value: hi}]
""",
    )
    conversion = convert(config)

    assert len(conversion.drafts) == 1
    listed = notes(conversion)
    assert [(o, d) for o, _, _, d in listed] == [
        (f"promptfooconfig.yaml:{line_of(here / config, 'huggingface')}", True),
        (f"promptfooconfig.yaml:{line_of(here / config, 'generate_tests')}", True),
    ]
    assert "local files only" in listed[0][2] and "code" in listed[1][2]


# --- providers --------------------------------------------------------------------------


def test_each_provider_listed_once_and_its_tools_offered(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        LOOKUP_TOOL
        + """
  - anthropic:messages:claude-sonnet-4-5
prompts: ['{{q}}', 'Hi {{q}}']
tests:
  - vars: {q: a}
    assert: [{type: icontains, value: a}]
  - vars: {q: b}
    assert: [{type: icontains, value: b}]
""",
    )
    conversion = convert(config)

    assert [what for _, what, _, _ in notes(conversion)] == [
        "provider openai:gpt-4o-mini options temperature",
        "provider anthropic:messages:claude-sonnet-4-5",
    ]
    assert all(len(d.tools) == 1 for d in conversion.drafts)
    assert len(conversion.drafts) == 4


# --- bad input --------------------------------------------------------------------------


def test_config_that_is_not_yaml_is_refused_with_its_line(here: Path) -> None:
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests:\n\t- vars: {}\n")
    with pytest.raises(ImportRefused) as refused:
        convert(config)
    message = str(refused.value)
    assert message.startswith("promptfooconfig.yaml:3: not a promptfoo config: ")
    assert "cannot start any token" in message

    twice = write(here, "twice.yaml", "prompts: [a]\nprompts: [b]\ntests: []\n")
    with pytest.raises(ImportRefused) as refused:
        convert(twice)
    assert str(refused.value) == (
        "twice.yaml:2: not a promptfoo config: duplicate key 'prompts' (first at line 1)"
    )


def test_yaml_that_is_not_a_config_says_what_is_missing(here: Path) -> None:
    listed = write(here, "cases.yaml", "- id: refund-001\n  input: {}\n")
    with pytest.raises(ImportRefused) as refused:
        convert(listed)
    assert str(refused.value) == (
        "cases.yaml:1: not a promptfoo config: the top level is a list, not a mapping with "
        "prompts and tests"
    )
    no_tests = write(
        here, "promptfooconfig.yaml", "prompts: ['{{q}}']\nproviders: [openai:gpt-4o]\n"
    )
    with pytest.raises(ImportRefused, match="it has no tests \\(nor scenarios\\)"):
        convert(no_tests)
    neither = write(here, "other.yaml", "name: something else\n")
    with pytest.raises(ImportRefused, match="it has no prompts and no tests"):
        convert(neither)


def test_missing_file_reference_names_the_referencing_line_and_the_path(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        "prompts:\n  - file://prompts/support.txt\ntests: file://tests.csv\n",
    )
    with pytest.raises(ImportRefused) as refused:
        convert(config)
    looked = os.path.abspath(here / "prompts/support.txt")
    assert str(refused.value) == (
        f"promptfooconfig.yaml:2: file://prompts/support.txt not found (looked for {looked})"
    )


def test_missing_var_file_names_the_var_line(here: Path) -> None:
    config = write(
        here,
        "promptfooconfig.yaml",
        """
prompts: ['{{doc}}']
tests:
  - vars:
      doc: file://docs/missing.md
    assert: [{type: icontains, value: a}]
""",
    )
    with pytest.raises(ImportRefused) as refused:
        convert(config)
    line = line_of(here / config, "doc: file://")
    looked = os.path.abspath(here / "docs/missing.md")
    assert str(refused.value) == (
        f"promptfooconfig.yaml:{line}: file://docs/missing.md not found (looked for {looked})"
    )


def test_broken_jsonl_line_in_a_tests_file_is_refused_with_file_and_line(here: Path) -> None:
    write(here, "tests.jsonl", '{"vars": {"q": "a"}, "assert": []}\n{"vars": oops}\n')
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests: file://tests.jsonl\n")
    with pytest.raises(ImportRefused, match=r"^tests\.jsonl:2: not JSON: "):
        convert(config)


def test_broken_yaml_tests_file_is_refused_with_file_and_line(here: Path) -> None:
    write(here, "tests.yaml", "- vars: {q: a}\n  assert: [\n")
    config = write(here, "promptfooconfig.yaml", "prompts: ['{{q}}']\ntests: file://tests.yaml\n")
    with pytest.raises(ImportRefused, match=r"^tests\.yaml:\d+: not YAML: "):
        convert(config)


# --- scale ------------------------------------------------------------------------------


def _big_csv(folder: Path, rows: int) -> Path:
    with (folder / "tests.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["question", "region", "__expected", "__expected2", "__description"])
        for number in range(rows):
            writer.writerow(
                [
                    f"Order {number}: can I return the lamp I bought {number % 30} days ago?",
                    ("EU", "US", "UK")[number % 3],
                    "icontains: 14 days",
                    f"not-contains: {number % 30} months",
                    f"row {number}",
                ]
            )
    return write(
        folder,
        "promptfooconfig.yaml",
        "prompts: ['Customer ({{region}}): {{question}}']\ntests: file://tests.csv\n",
    )


@pytest.mark.slow
def test_fifty_thousand_csv_rows_convert_without_holding_the_tests(here: Path) -> None:
    """Memory only: the time is `make bench --only import`'s to report."""
    rows = 50_000
    config = _big_csv(here, rows)
    tracemalloc.start()
    try:
        conversion = convert(config)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Beyond the drafts it returns, converting holds the file's text and little per row.
    assert len(conversion.drafts) == rows
    assert (peak - held) / rows < 800
    assert conversion.not_converted == []
