"""`evalcore up` and `evalcore reference-target`: the local stand-ins, started from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalcore.cli.common import SuiteOption, fail, load, open_store


def up(
    port: Annotated[int, typer.Option(help="Prefect server port (loopback).")] = 4200,
    reference_port: Annotated[
        int, typer.Option(help="Reference target port; the scorecard points at 8765.")
    ] = 8765,
    reference: Annotated[
        bool, typer.Option(help="Start the bundled reference target as the default target.")
    ] = True,
    ui: Annotated[bool, typer.Option(help="Serve the Prefect UI.")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Deploy prefect.yaml to the evalcore process pool and start N workers, "
            "instead of serving the deployments from one process.",
        ),
    ] = 0,
    suite: SuiteOption = None,
) -> None:
    """Start a Prefect server, the reference target and the served deployments; Ctrl-C stops all.

    With --workers N the deployments of prefect.yaml go to the `evalcore` process work pool
    and N workers (`python -m deployments.worker`) run the gate, the monitor and the
    digest. The server keeps its state on PostgreSQL when
    PREFECT_SERVER_DATABASE_CONNECTION_URL says so, the store when EVALCORE_DATABASE_URL
    does.

    Then, from another shell: [bold]PREFECT_API_URL=http://127.0.0.1:4200/api evalcore
    release announce 2026.11.3 --wait[/]
    """
    import signal
    import time

    from evalcore.cli.console import console
    from evalcore.local.stack import StackError, start_stack
    from evalcore.settings import get_settings

    settings = get_settings()
    loaded = load(suite)  # a broken suite stops here, not inside a triggered run
    open_store()  # so does a database the served flows could not open
    project = Path(__file__).resolve().parents[2]
    try:
        stack = start_stack(
            home=settings.home,
            project=project,
            suite=loaded.root,
            port=port,
            reference_port=reference_port if reference else None,
            ui=ui,
            workers=workers,
            on_step=lambda step: console.print(f"starting {step}", highlight=False),
        )
    except StackError as exc:
        fail(str(exc))

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    console.print(
        f"[green]up[/]: Prefect API {stack.api_url}"
        + (f"  ·  target {stack.target_url}" if stack.target_url else "")
        + f"  ·  logs {stack.logs}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"announce a release: PREFECT_API_URL={stack.api_url} evalcore release announce "
        "RELEASE --wait",
        highlight=False,
        soft_wrap=True,
    )
    code = 0
    try:
        reported: set[str] = set()
        while (dead := stack.failed_child()) is None:
            for worker in stack.workers_gone():
                if worker.name not in reported:
                    reported.add(worker.name)
                    console.print(
                        f"[yellow]{worker.name} stopped[/]; the other workers go on (its flow "
                        f"runs are scheduled again once Prefect marks them crashed); its log: "
                        f"{worker.log_path}",
                        highlight=False,
                        soft_wrap=True,
                    )
            time.sleep(0.5)
        console.print(f"[red]{dead.name} stopped[/]; its log:\n{dead.tail()}", highlight=False)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        stack.stop()
        console.print("stopped")
    raise typer.Exit(code)


def reference_target(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    version: Annotated[
        str,
        typer.Option(
            help="v1 or a regressed version: regressed-refunds, regressed-safety, "
            "regressed-handoff, regressed-tools, regressed-sources, regressed-stale, "
            "regressed-slow."
        ),
    ] = "v1",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency.")] = 0.0,
    latency_sd_ms: Annotated[float, typer.Option(help="Spread of the added latency.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Fraction answered with a 5xx.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(help="Fraction that hang.")] = 0.0,
    burst_429_every: Annotated[int, typer.Option(help="Every N requests start a 429 burst.")] = 0,
    burst_429_len: Annotated[int, typer.Option(help="Length of each 429 burst.")] = 0,
    nondeterminism: Annotated[float, typer.Option(help="Fraction of answers that vary.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for every random draw.")] = 0,
    slip_first: Annotated[
        int, typer.Option(help="The first N fact answers drop their fact (a flaky slip).")
    ] = 0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="Answer 401 to requests without `Authorization: Bearer KEY`."
        ),
    ] = None,
) -> None:
    """Serve the bundled OpenAI-compatible support assistant on loopback.

    Example: [bold]evalcore reference-target --port 8765 --version regressed-refunds[/]
    """
    from evalcore.local.reference import Knobs, serve

    knobs = Knobs(
        version=version,
        latency_ms=latency_ms,
        latency_sd_ms=latency_sd_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        burst_429_every=burst_429_every,
        burst_429_len=burst_429_len,
        nondeterminism=nondeterminism,
        seed=seed,
        slip_first=slip_first,
        api_key=api_key,
    )
    serve(host, port, knobs)
