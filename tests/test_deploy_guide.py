"""docs/deploy.md promises that every command in it is run by a test: each command line
of its shell blocks is matched here to the file that runs it, and that file is checked to
run it (a command added to the guide without a test fails this)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "deploy.md"

# The start of a command in the guide -> (the file that runs it, what that file holds).
EXERCISED: dict[str, tuple[str, str]] = {
    "createdb ": ("tests/flows/workers_stack.py", '["createdb",'),
    "export PREFECT_SERVER_DATABASE_CONNECTION_URL=": (
        "tests/flows/workers_stack.py",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL=",
    ),
    "export EVALCORE_DATABASE_URL=": ("tests/flows/workers_stack.py", "EVALCORE_DATABASE_URL="),
    "evalcore store upgrade": ("tests/store/test_store_command.py", '"upgrade"'),
    "evalcore up --workers ": ("tests/flows/workers_stack.py", '"--workers"'),
    "prefect server start ": ("evalcore/local/stack.py", '"prefect", "server", "start"'),
    "export PREFECT_API_URL=": ("evalcore/local/stack.py", 'env["PREFECT_API_URL"] = api_url'),
    "prefect work-pool create evalcore --type process": (
        "evalcore/local/stack.py",
        '"work-pool", "create", WORK_POOL, "--type", "process"',
    ),
    "prefect --no-prompt deploy --all": (
        "evalcore/local/stack.py",
        '"--no-prompt", "deploy", "--all"',
    ),
    "python -m deployments.worker --pool evalcore --limit ": (
        "tests/flows/test_warm_worker.py",
        '"-m", "deployments.worker", "--limit", "1"',
    ),
    "python -m deployments.worker --pool evalcore": (
        "evalcore/local/stack.py",
        '"-m", "deployments.worker", "--pool", WORK_POOL',
    ),
    "export PREFECT_WORKER_QUERY_SECONDS=": (
        "evalcore/local/stack.py",
        'env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")',
    ),
    "evalcore release announce ": ("tests/flows/test_workers.py", '"release", "announce"'),
    "evalcore slack serve --port ": (
        "tests/slack/test_receiver_limits.py",
        '"evalcore", "slack", "serve", "--port"',
    ),
    "evalcore slack serve --socket-mode": ("tests/slack/test_socket_mode.py", '"--socket-mode"'),
    "pg_dump ": ("tests/store/test_backup.py", '["pg_dump", "--format=custom", "--file"'),
    "pg_restore ": ("tests/store/test_backup.py", '["pg_restore", "--no-owner", "--dbname"'),
    "sqlite3 ": ("tests/store/test_backup.py", '".backup evalcore-backup.db"'),
}


def guide_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_every_command_of_the_guide_is_run_by_a_test() -> None:
    commands = guide_commands()
    assert len(commands) >= 15
    for command in commands:
        starts = [start for start in EXERCISED if command.startswith(start)]
        assert starts, f"no test runs {command!r}: add one and list it in EXERCISED"
        path, fragment = EXERCISED[starts[0]]
        assert fragment in (ROOT / path).read_text(), f"{path} no longer runs {command!r}"


def test_the_files_the_guide_names_exist() -> None:
    text = GUIDE.read_text()
    for name in re.findall(
        r"`((?:tests|deployments|evalcore|docs)/[\w/.\-]+\.(?:py|yaml|md))`", text
    ):
        assert (ROOT / name).is_file(), name
