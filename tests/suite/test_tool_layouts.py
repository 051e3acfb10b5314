"""A case's tools may be written in the flat layout, OpenAI's or Anthropic's: the same tool
is the same case (the same dataset version), and the target sends OpenAI's layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalcore.suite import load_suite
from evalcore.targets.openai_chat import build_chat_body
from tests.suite.test_suite_loading import line_of, problems, write_suite

PARAMETERS = """\
{type: object, properties: {order_id: {type: string, pattern: "^LH-[0-9]{6}$"}}, required: [order_id]}"""
LAYOUTS = {
    "flat": f"""\
      - name: lookup_order
        description: Look up an order.
        parameters: {PARAMETERS}
""",
    "openai": f"""\
      - type: function
        function:
          name: lookup_order
          description: Look up an order.
          parameters: {PARAMETERS}
""",
    "anthropic": f"""\
      - name: lookup_order
        description: Look up an order.
        input_schema: {PARAMETERS}
""",
}


def case_with(tools: str) -> str:
    return (
        "- id: tool-lookup-001\n"
        "  set: blocking\n"
        "  tags: [refunds]\n"
        "  input:\n"
        "    messages:\n"
        '      - {role: user, content: "where is LH-482913?"}\n'
        "    tools:\n" + tools + "  expect:\n"
        "    outcome: tool_call\n"
        "    tool_call: {name: lookup_order}\n"
    )


def test_every_layout_is_the_same_tool_and_the_same_dataset_version(tmp_path: Path) -> None:
    versions, bodies = {}, {}
    for layout, tools in LAYOUTS.items():
        suite = load_suite(write_suite(tmp_path / layout, cases=case_with(tools)))
        (case,) = suite.cases
        assert case.input.tools[0].parameters["required"] == ["order_id"], layout
        versions[layout] = suite.version.hash
        bodies[layout] = build_chat_body(case.input.model_dump(mode="json"), "m", {})["tools"]
    assert len(set(versions.values())) == 1, versions
    assert bodies["openai"] == bodies["flat"] == bodies["anthropic"]
    assert bodies["flat"][0]["type"] == "function"
    assert bodies["flat"][0]["function"]["name"] == "lookup_order"


@pytest.mark.parametrize(
    ("tools", "says"),
    [
        (
            "      - type: function\n        name: lookup_order\n",
            "a tool in OpenAI's layout is {type: function, function: {name, description, "
            "parameters}} (unexpected: name)",
        ),
        (
            "      - {type: function, function: lookup_order}\n",
            "a tool in OpenAI's layout is {type: function, function: {name, description, "
            "parameters}}",
        ),
        (
            "      - {name: lookup_order, parameters: {type: object}, input_schema: {}}\n",
            "a tool has either parameters (OpenAI) or input_schema (Anthropic), not both",
        ),
    ],
)
def test_a_tool_in_no_known_layout_is_named_with_its_line(
    tmp_path: Path, tools: str, says: str
) -> None:
    cases = case_with(tools)
    root = write_suite(tmp_path, cases=cases)
    (issue,) = problems(root)
    tool_line = line_of(cases, "      - ", 2)  # the first "- " is the message
    assert issue == f"{root / 'cases' / 'refunds.yaml'}:{tool_line}: input.tools[0]: {says}"
