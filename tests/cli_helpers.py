"""Running the `evalcore` command as a user would, for the CLI tests.

`evalcore()` runs it in this process through typer's `CliRunner`: the entry point, the
arguments, environment and folder, and the output and exit code a user sees, without
starting a second interpreter (about 1.5 s of imports) for every call. Tests whose point
is a separate process (kill -9, signals, two runs at once, `evalcore up`, the memory a
process needs) start one with `evalcore_process()` or `process_env()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from typer.testing import CliRunner

from evalcore.cli.app import main
from evalcore.store.engine import dispose_engines


def evalcore(
    *args: str,
    cwd: Path,
    home: Path,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """`evalcore ARGS` in `cwd`, with its own EVALCORE_HOME and no other EVALCORE_ variable
    than `env` sets, reading `stdin`, run in this process; what it printed and its exit code."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("EVALCORE_")}
    overrides |= {"EVALCORE_HOME": str(home), **(env or {})}
    prefect_settings = any(name.startswith("PREFECT_") for name in env or {})
    if prefect_settings:
        # Set up (settings, logging) from the session's environment, not from this call's.
        import prefect.context  # noqa: F401
    environ, argv, usual_stderr = dict(os.environ), sys.argv, sys.stderr
    dispose_engines()  # a process opens the store afresh
    try:
        with (
            CliRunner().isolation(input=stdin, env=overrides) as (stdout, stderr, _),
            contextlib.chdir(cwd),
            _prefect_settings_from_environment(prefect_settings),
            _logs_to(sys.stderr, instead_of=usual_stderr),
        ):
            # Held here: a library replacing sys.stdout must not get them collected (and closed).
            command_stdout, command_stderr = sys.stdout, sys.stderr
            sys.argv = ["evalcore", *args]
            code = _exit_code_of_main()
            command_stdout.flush()
            command_stderr.flush()
            out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)  # what the command set goes with it, as with a process
        dispose_engines()  # no connection or file handle outlives the command
    return subprocess.CompletedProcess(["evalcore", *args], code, out, err)


def _exit_code_of_main() -> int:
    """What `main()` exits with; an exception escaping it is printed and exits 1, as the
    interpreter would."""
    try:
        main()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def _prefect_settings_from_environment(given: bool) -> Iterator[None]:
    """Prefect reads its settings on import: a call `given` PREFECT_ variables runs with
    settings read from its environment, as a process started with them would."""
    if not given:
        yield
        return
    from prefect.context import SettingsContext
    from prefect.settings import Settings

    current = SettingsContext.get()
    assert current is not None
    with SettingsContext(profile=current.profile, settings=Settings()):
        yield


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]


def _write_to(handler: logging.StreamHandler[Any], stream: IO[str]) -> None:
    if getattr(handler.stream, "closed", False):
        # setStream flushes the old stream first, which a closed one refuses.
        handler.acquire()
        try:
            handler.stream = stream
        finally:
            handler.release()
    else:
        handler.setStream(stream)
    console = getattr(handler, "console", None)  # Prefect's handler prints through rich
    if console is not None:
        console.file = stream


@contextlib.contextmanager
def _logs_to(command_stderr: IO[str], *, instead_of: IO[str]) -> Iterator[None]:
    """Log handlers (Prefect's flow and task logs) write to the command's stderr while it
    runs, as in a process; after it, back to the usual stream, also those set up during
    the call."""
    for handler in _stream_handlers():
        if handler.stream is instead_of or _closed(handler):
            _write_to(handler, command_stderr)
    try:
        yield
    finally:
        for handler in _stream_handlers():
            if handler.stream is command_stderr or _closed(handler):
                _write_to(handler, instead_of)


def _closed(handler: logging.StreamHandler[Any]) -> bool:
    """A handler left writing to the stream of a call that has ended (set up by a library
    during that call, through a path the redirection above did not see)."""
    console = getattr(handler, "console", None)
    streams = [handler.stream, getattr(console, "file", None)]
    return any(getattr(stream, "closed", False) for stream in streams)


def process_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an `evalcore` process: this one's without any EVALCORE_ variable,
    then its own EVALCORE_HOME and `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EVALCORE_")}
    return {**environ, "EVALCORE_HOME": str(home), **(env or {})}


def evalcore_process(
    *args: str, cwd: Path, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m evalcore ARGS` as a process of its own, with `process_env`."""
    return subprocess.run(
        [sys.executable, "-m", "evalcore", *args],
        cwd=cwd,
        env=process_env(home, env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
