"""One of our own servers in a subprocess on a loopback port, as a context manager.

The bundled reference target and the fake Slack both run this way. Startup waits until
`/health` answers with this very child's pid (polling every 20 ms), so a stale server on
a reused port is never mistaken for ours, and fails with the child's own output after
`startup_timeout_s`. A port picked here can be taken before the child binds it, so an
"address already in use" start is retried on another port. Exit terminates the child,
then kills it if it does not stop.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import orjson

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _EarlyExit(Exception):
    """The child died before it answered; maybe its port was taken."""


class LoopbackServer:
    """Subclasses name themselves and give the child's `python -m` arguments."""

    name = "server"

    def __init__(
        self, *, port: int | None = None, host: str = "127.0.0.1", startup_timeout_s: float = 15.0
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ----------------------------------------------------------------- for subclasses

    def module_args(self, port: int) -> list[str]:
        """`python -m` arguments that serve on `port` (the module and its options)."""
        raise NotImplementedError

    def before_launch(self) -> None:
        """Prepare what the child needs (a config file); called before each launch."""

    def after_start(self) -> None:
        """Set up what talking to the child needs (a client); called once it answers."""

    def after_stop(self) -> None:
        """Release what before_launch/after_start made."""

    # ----------------------------------------------------------------- the lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"the {self.name} is not running")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. `http://127.0.0.1:8765`."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Launch the subprocess and wait until it answers; idempotent."""
        if self._process is not None:
            return self
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port(self.host)
            try:
                self._launch(port)
                self.after_start()
                return self
            except _EarlyExit as exc:
                self.stop()
                in_use = "address already in use" in str(exc).lower()
                if attempt == attempts or not in_use:
                    raise RuntimeError(str(exc)) from None
            except BaseException:
                self.stop()  # never leave a child behind, even on Ctrl-C
                raise
        raise RuntimeError(f"the {self.name} did not start")

    def _launch(self, port: int) -> None:
        self.before_launch()
        # Kept open for the child's lifetime and closed in stop(), so no `with` block.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", *self.module_args(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._port = port
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                raise _EarlyExit(
                    f"{self.name} exited with code {code} before answering on port "
                    f"{port}:\n{self._output()}"
                )
            if self._healthy(port, self._process.pid):
                return
            if time.monotonic() > deadline:
                output = self._output()
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not answer GET /health on {self.host}:{port} within "
                    f"{self.startup_timeout_s:g} s; its output:\n{output}"
                )
            time.sleep(0.02)

    def _healthy(self, port: int, pid: int) -> bool:
        connection = http.client.HTTPConnection(self.host, port, timeout=1.0)
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            if response.status != 200:
                return False
            data = orjson.loads(response.read())
            return isinstance(data, dict) and data.get("pid") == pid
        except (OSError, http.client.HTTPException, orjson.JSONDecodeError):
            return False
        finally:
            connection.close()

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        self.after_stop()
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
