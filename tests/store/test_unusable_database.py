"""A database evalcore cannot open stops every command with one `error:` line and exit 3.

The line names the database with its password masked, says what went wrong and what to
check; nothing is started first (no Prefect server, no Slack receiver, no target calls)
and no file is written.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from evalcore.cli.app import app
from evalcore.store.engine import dispose_engines, get_engine
from tests.cli_helpers import evalcore, process_env
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"
SECRET = "s3cret-pw-do-not-print"
RUN_ID = "3f2a9c1d0b7e"
# linux/prctl.h and linux/capability.h
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def the_error_line(stderr: str, stdout: str = "") -> str:
    """The single line the command printed, after checking it is all it printed."""
    assert "Traceback" not in stderr + stdout
    assert SECRET not in stderr + stdout
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: cannot open the database "), lines[0]
    return lines[0]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def closed_port_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """EVALCORE_DATABASE_URL pointing at a loopback port nothing listens on."""
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/test"
    monkeypatch.setenv("EVALCORE_DATABASE_URL", url)
    return url


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port already taken, so a server that did start would fail to bind."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def suite_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "evals"))


STORE_COMMANDS: dict[str, list[str]] = {
    "run": ["run", "--suite", "{suite}"],
    "run --resume": ["run", "--resume", RUN_ID],
    "runs list": ["runs", "list"],
    "runs show": ["runs", "show", RUN_ID],
    "baseline accept": [
        *("baseline", "accept", RUN_ID, "--by", "maya.okafor"),
        *("--reason", "new model", "--suite", "{suite}"),
    ],
    "baseline list": ["baseline", "list"],
    "trends": ["trends", "--suite", "{suite}", "--html", "{out}/trends.html"],
    "handover": ["handover", "--suite", "{suite}", "--out", "{out}/handover.md"],
    "decisions list": ["decisions", "list"],
    "decisions record": [
        *("decisions", "record", "ZD-48213", "block"),
        *("--by", "maya.okafor", "--suite", "{suite}"),
    ],
    "decisions apply": ["decisions", "apply", "--suite", "{suite}"],
    "digest": ["digest", "--offline", "--suite", "{suite}"],
    "intake": ["intake", "{out}/failure.json", "--suite", "{suite}"],
    "slack serve": ["slack", "serve", "--port", "{port}", "--suite", "{suite}"],
    "up": ["up", "--port", "{port}", "--no-reference", "--suite", "{suite}"],
}


@pytest.mark.parametrize("command", list(STORE_COMMANDS))
def test_unreachable_postgres_stops_each_command_with_one_line(
    command: str,
    closed_port_url: str,
    held_port: int,
    suite_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    failure = {
        "messages": [{"role": "user", "content": "My parcel arrived torn open."}],
        "observed_output": "Sorry, returns are only possible within 30 days.",
        "what_was_wrong": "A damaged delivery, not a return.",
        "reporter": "maya.okafor",
    }
    (out / "failure.json").write_text(json.dumps(failure), encoding="utf-8")
    suite_before, out_before = snapshot(suite_copy), snapshot(out)
    fields = {"suite": str(suite_copy), "out": str(out), "port": str(held_port)}

    result = invoke(*(arg.format(**fields) for arg in STORE_COMMANDS[command]))

    assert result.exit_code == 3, result.output
    line = the_error_line(result.stderr, result.stdout)
    masked = make_url(closed_port_url).render_as_string(hide_password=True)
    assert line.startswith(f"error: cannot open the database {masked}: Connection refused; ")
    assert "check that PostgreSQL is running" in line
    assert snapshot(suite_copy) == suite_before and snapshot(out) == out_before
    home = Path(os.environ["EVALCORE_HOME"])
    assert not (home / "digests").exists() and not (home / "handover.md").exists()


@pytest.mark.parametrize("where", ["in the URL", "in the query"])
def test_a_missing_postgres_database_is_named_with_how_to_create_it(
    where: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = "evalcore_no_such_database"
    server = make_url(pg_database).set(database=missing)
    if where == "in the URL":
        url = server.set(password=SECRET)
        shown = f"postgresql://{url.username}:***@{url.host}:{url.port}/{missing}"
    else:
        url = server.update_query_dict({"password": SECRET})
        shown = f"postgresql://{url.username}@{url.host}:{url.port}/{missing}"
    monkeypatch.setenv("EVALCORE_DATABASE_URL", url.render_as_string(hide_password=False))

    result = invoke("runs", "list")

    assert result.exit_code == 3, result.output
    assert the_error_line(result.stderr, result.stdout) == (
        f'error: cannot open the database {shown}: database "{missing}" does not exist; '
        f"create it (createdb {missing}) or fix the name in EVALCORE_DATABASE_URL"
    )


@pytest.mark.parametrize(
    "command", [["gate", "--release", "2026.11.3"], ["monitor"]], ids=["gate", "monitor"]
)
def test_gate_and_monitor_start_no_prefect_server_when_the_database_is_down(
    command: list[str], tmp_path: Path
) -> None:
    prefect_home = tmp_path / "prefect"
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/test"
    env = {"EVALCORE_DATABASE_URL": url, "PREFECT_HOME": str(prefect_home)}

    done = evalcore(*command, "--suite", str(EXAMPLE), cwd=ROOT, home=tmp_path / "h", env=env)

    assert done.returncode == 3, done.stdout + done.stderr
    assert "Connection refused" in the_error_line(done.stderr, done.stdout)
    # The temporary Prefect server creates its database on start.
    assert not (prefect_home / "prefect.db").exists()


def _not_a_database(path: Path) -> str:
    path.parent.mkdir()
    path.write_text("notes, not a database\n", encoding="utf-8")
    return "the file is not an SQLite database; check the path in EVALCORE_DATABASE_URL"


def _a_folder(path: Path) -> str:
    path.mkdir(parents=True)
    return "the file cannot be opened or created; check that the path is a file, not a folder"


def _under_a_file(path: Path) -> str:
    path.parent.write_text("a file where the folder should be\n", encoding="utf-8")
    return f"cannot create the folder {path.parent} (File exists); check the path"


@pytest.mark.parametrize("make_bad", [_not_a_database, _a_folder, _under_a_file])
def test_an_unusable_sqlite_path_is_named_and_left_as_it_was(
    make_bad: Callable[[Path], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    path = state / "db" / "evalcore.db"
    expected = make_bad(path)
    paths_before, before = sorted(state.rglob("*")), snapshot(state)
    monkeypatch.setenv("EVALCORE_DATABASE_URL", f"sqlite:///{path}")

    result = invoke("runs", "list")

    assert result.exit_code == 3, result.output
    line = the_error_line(result.stderr, result.stdout)
    assert line.startswith(f"error: cannot open the database sqlite:///{path}: {expected}"), line
    assert sorted(state.rglob("*")) == paths_before and snapshot(state) == before


def _obey_file_modes() -> None:
    """In the child before exec: drop the capability that lets root write through file modes,
    so a root test run meets a read-only file as any user does (a no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


def test_a_read_only_sqlite_file_is_named_with_what_to_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "evalcore.db"
    get_engine(f"sqlite:///{db}")
    dispose_engines()
    db.chmod(0o444)
    home.chmod(0o555)
    listing, before = sorted(home.iterdir()), db.read_bytes()

    try:  # a process of its own, so that it can give up root's way past file modes
        done = subprocess.run(
            [sys.executable, "-m", "evalcore", "runs", "list"],
            cwd=ROOT,
            env=process_env(home),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=_obey_file_modes,
        )
    finally:
        home.chmod(0o755)

    assert done.returncode == 3, done.stdout + done.stderr
    assert the_error_line(done.stderr, done.stdout) == (
        f"error: cannot open the database sqlite:///{db}: the file is read-only; make the "
        "file and its folder writable (SQLite writes its journal beside the file)"
    )
    assert sorted(home.iterdir()) == listing and db.read_bytes() == before


@pytest.mark.parametrize(
    "url", [f"not a url with {SECRET}", f"nosuchbackend://user:{SECRET}@db.internal/evals"]
)
def test_a_database_url_evalcore_cannot_use_is_refused_without_echoing_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALCORE_DATABASE_URL", url)

    result = invoke("runs", "list")

    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    assert result.stderr.strip() == (
        "error: the database URL is not one evalcore can open; check EVALCORE_DATABASE_URL "
        "(e.g. postgresql://user:password@host:5432/name or sqlite:///path/evalcore.db)"
    )
