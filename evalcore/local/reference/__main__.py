"""`python -m evalcore.local.reference --port 8765 [knobs]`: serve the reference target."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from evalcore.local.reference.assistant import VERSIONS
from evalcore.local.reference.server import DEFAULT_PORT, Knobs, serve


def build_parser() -> argparse.ArgumentParser:
    """One option per `Knobs` field, so `Knobs.cli_args()` round-trips."""
    parser = argparse.ArgumentParser(
        prog="python -m evalcore.local.reference",
        description="Deterministic OpenAI-compatible support assistant with fault knobs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    defaults = Knobs()
    parser.add_argument(
        "--version",
        "--ref-version",
        dest="version",
        default=defaults.version,
        choices=list(VERSIONS),
        help="assistant version to serve",
    )
    help_texts = {
        "latency_ms": "mean added latency per answer",
        "latency_sd_ms": "spread of the latency (lognormal, never negative)",
        "error_rate": "fraction answered 500/502/503",
        "timeout_rate": "fraction that hang for --hang-s before answering",
        "hang_s": "how long a hanging request waits",
        "burst_429_every": "after every N requests...",
        "burst_429_len": "...the next M requests get 429 with Retry-After",
        "retry_after_s": "Retry-After value of the 429s",
        "nondeterminism": "fraction of answers that vary (other phrasing or missing fact)",
        "seed": "seed of the app's random draws",
        "slip_first": "the first N fact answers drop their fact (one flaky slip, for demos)",
    }
    parser.add_argument(
        "--api-key",
        dest="api_key",
        default=None,
        help="answer 401 to requests without `Authorization: Bearer API_KEY`",
    )
    for name, text in help_texts.items():
        default = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=type(default),
            default=default,
            help=f"{text} (default: {default})",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    host = args.pop("host")
    port = args.pop("port")
    try:
        knobs = Knobs(**args)
    except ValidationError as exc:
        print(f"invalid knobs: {exc}", file=sys.stderr)
        return 3
    print(
        f"evalcore reference target on http://{host}:{port}/v1 (version {knobs.version})",
        file=sys.stderr,
        flush=True,
    )
    serve(host, port, knobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
