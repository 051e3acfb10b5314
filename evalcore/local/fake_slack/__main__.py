"""`python -m evalcore.local.fake_slack --port 8790 [--config workspace.json]`: serve the fake Slack
Web API (point `WebClient(base_url="http://127.0.0.1:8790/api/")` at it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from evalcore.local.fake_slack.config import FakeSlackConfig
from evalcore.local.fake_slack.server import DEFAULT_PORT, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evalcore.local.fake_slack",
        description="Local fake of the Slack Web API, with a control API under /_fake/.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON file with the workspace (tokens, scopes, channels, users, bot identity); "
        "built-in defaults when omitted",
    )
    return parser


def load_config(path: Path | None) -> FakeSlackConfig:
    """The workspace from a JSON file (`FakeSlackConfig` fields), or the defaults."""
    if path is None:
        return FakeSlackConfig()
    return FakeSlackConfig.model_validate_json(path.read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except OSError as exc:
        print(f"cannot read the config: {exc}", file=sys.stderr)
        return 3
    except ValidationError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 3
    channels = ", ".join(f"#{c.name}={c.id}" for c in config.channels)
    print(
        f"evalcore fake Slack on http://{args.host}:{args.port}/api/ "
        f"(team {config.team_name}; channels {channels})",
        file=sys.stderr,
        flush=True,
    )
    serve(args.host, args.port, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
