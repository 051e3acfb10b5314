"""What the warm worker renders once instead of per flow run, held to what Prefect does:
the API clients' TLS context (still verifying, still honouring Prefect's TLS settings)
and the flow run's base environment (the same variables Prefect's own configuration
gives, following a change of settings)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.settings import (
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_LOGGING_LEVEL,
    temporary_settings,
)
from prefect.workers.process import ProcessJobConfiguration
from sqlalchemy.pool import QueuePool

import evalcore.store.engine as engine_module
from deployments import worker

API = "http://127.0.0.1:9/api"


@pytest.fixture
def shared_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """`share_api_tls_context` for this test only (the clients' own `__init__` after)."""
    for client in (PrefectClient, SyncPrefectClient):
        monkeypatch.setattr(client, "__init__", client.__init__)
    worker.share_api_tls_context()


def _context(client: PrefectClient | SyncPrefectClient) -> ssl.SSLContext:
    context = client._client._transport._pool._ssl_context  # type: ignore[union-attr]
    assert isinstance(context, ssl.SSLContext)
    return context


@pytest.mark.usefixtures("shared_tls")
def test_prefect_api_clients_share_one_context_that_still_verifies() -> None:
    first, second, sync = PrefectClient(API), PrefectClient(API), SyncPrefectClient(API)
    assert _context(first) is _context(second) is _context(sync)
    assert _context(first).verify_mode == ssl.CERT_REQUIRED
    assert _context(first).check_hostname


@pytest.mark.usefixtures("shared_tls")
def test_prefect_s_tls_settings_still_decide_how_a_client_verifies(tmp_path: Path) -> None:
    verifying = _context(PrefectClient(API))
    with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        insecure = _context(PrefectClient(API))
    assert insecure is not verifying
    assert (insecure.verify_mode, insecure.check_hostname) == (ssl.CERT_NONE, False)
    assert _context(PrefectClient(API)).verify_mode == ssl.CERT_REQUIRED  # unchanged

    bundle = tmp_path / "empty-bundle.pem"
    bundle.write_text("")  # no certificate at all: Prefect's client would refuse it too
    with (
        temporary_settings({PREFECT_API_SSL_CERT_FILE: str(bundle)}),
        pytest.raises(ssl.SSLError),
    ):
        PrefectClient(API)


@pytest.mark.usefixtures("shared_tls")
def test_a_client_given_its_own_verify_keeps_it() -> None:
    own = ssl.create_default_context()
    client = PrefectClient(API, httpx_settings={"verify": own})
    assert _context(client) is own


def test_a_flow_run_s_base_environment_is_prefect_s_and_follows_the_settings() -> None:
    base = worker.WarmJobConfiguration._base_environment()
    assert base == ProcessJobConfiguration._base_environment()
    with temporary_settings({PREFECT_LOGGING_LEVEL: "DEBUG"}):
        changed = worker.WarmJobConfiguration._base_environment()
        assert changed == ProcessJobConfiguration._base_environment()
    assert changed["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    assert worker.WarmJobConfiguration._base_environment() == base
    # Each caller gets its own copy: what one adds is not in the next.
    base["PROBE"] = "1"
    assert "PROBE" not in worker.settings_environment()


@pytest.mark.usefixtures("shared_tls")
def test_the_fork_server_builds_the_context_its_flow_runs_use() -> None:
    worker._api_tls_context.cache_clear()
    worker.warm_up_fork_server()
    built = worker._api_tls_context.cache_info()
    assert built.currsize == 1
    # A flow run forked after it, with the same settings, builds none of its own.
    assert _context(PrefectClient(API)).verify_mode == ssl.CERT_REQUIRED
    assert worker._api_tls_context.cache_info().hits == built.hits + 1


def test_a_server_version_the_worker_checked_is_not_checked_again_by_its_flow_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect._internal import version_checking

    monkeypatch.setattr(version_checking, "_API_VERSION_CHECK_CACHE", set())
    key = (f"{API}/", "3.9.1")
    assert worker.checked_api_versions() == []
    version_checking._cache_api_version_check(key)  # as the worker's own client does
    handed = worker.checked_api_versions()
    assert handed == [key]

    monkeypatch.setattr(version_checking, "_API_VERSION_CHECK_CACHE", set())  # the child
    worker.take_api_versions_as_checked(handed)
    assert version_checking._is_api_version_check_cached(key)
    assert not version_checking._is_api_version_check_cached((f"{API}/", "4.0.0"))


def test_logging_is_set_up_again_only_when_the_flow_run_s_settings_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect.context
    import prefect.logging.configuration
    from prefect.settings import get_current_settings

    set_up: list[bool] = []

    def setup_logging() -> dict[str, object]:
        set_up.append(True)
        return {}

    monkeypatch.setattr(prefect.logging.configuration, "setup_logging", setup_logging)
    monkeypatch.setattr(prefect.context, "refresh_global_settings_context", lambda: None)
    forked, variables = get_current_settings(), worker._logging_variables()

    assert worker.refresh_settings(forked, variables) is False
    assert set_up == []
    with temporary_settings({PREFECT_LOGGING_LEVEL: "DEBUG"}):  # a job's variables
        assert worker.refresh_settings(forked, variables) is True
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "ERROR")
    assert worker.refresh_settings(forked, variables) is True
    assert set_up == [True, True]


def test_the_fork_server_opens_the_store_its_flow_runs_use_and_keeps_no_connection(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalcore.store.engine import dispose_engines, get_engine

    dispose_engines()
    worker.open_store()  # EVALCORE_DATABASE_URL unset: nothing is made
    assert not engine_module._engines
    monkeypatch.setenv("EVALCORE_DATABASE_URL", db_url)
    worker.open_store()
    (opened,) = engine_module._engines.values()
    assert get_engine() is opened  # what a flow run forked after gets: no second check
    pool = opened.pool
    assert isinstance(pool, QueuePool)
    assert (pool.checkedin(), pool.checkedout()) == (0, 0)


def test_a_store_the_fork_server_cannot_open_is_left_to_the_flow_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalcore.store.engine import dispose_engines

    dispose_engines()
    monkeypatch.setenv("EVALCORE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    worker.open_store()  # no exception in the fork server
    assert not engine_module._engines


@pytest.mark.usefixtures("shared_tls")
def test_a_tls_setting_the_fork_server_cannot_use_is_left_to_the_flow_runs(
    tmp_path: Path,
) -> None:
    """The fork server's preloads stop only an ImportError: its warm-up must not raise."""
    worker._api_tls_context.cache_clear()
    with temporary_settings({PREFECT_API_SSL_CERT_FILE: str(tmp_path / "no-such.pem")}):
        worker.warm_up_fork_server()
        assert worker._api_tls_context.cache_info().currsize == 0
        with pytest.raises(OSError):  # the flow run's own client still says why
            PrefectClient(API)
