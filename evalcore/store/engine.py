"""The database engine: SQLite under `.evalcore/` by default, PostgreSQL when configured.

The schema is brought to the newest Alembic revision the first time an engine is opened,
so a fresh checkout, an old database and a second process started at the same moment
all end up on the same schema without a separate migrate step. A database that cannot be
opened raises `StoreUnavailable`, one line naming it (password masked) and what to check.
"""

from __future__ import annotations

import ast
import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from evalcore.settings import get_settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_MASK = "***"


class StoreUnavailable(Exception):
    """The database cannot be opened; the message is one line a person can act on."""


def database_url(url: str | None = None) -> str:
    return url or get_settings().resolved_database_url()


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (or the configured one), created and migrated once per process."""
    resolved = database_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _open(resolved)
            _engines[resolved] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands: its Alembic revision (None before the first
    migration), the newest one this version of evalcore has, and those still to apply,
    oldest first, as `revision: description`."""

    database: str  # the URL with its password masked
    current: str | None
    head: str | None
    pending: tuple[str, ...]


def schema_state(url: str | None = None) -> SchemaState:
    """The store's schema against this evalcore's migrations, read without migrating."""
    from alembic.script import ScriptDirectory

    resolved = database_url(url)
    engine = _open(resolved, migrated=False)
    try:
        current = current_revision(engine)
    except DBAPIError as exc:
        parsed = make_url(resolved)
        raise _unavailable(parsed, *_diagnose(parsed, exc.orig)) from None
    finally:
        engine.dispose()
    scripts = ScriptDirectory.from_config(_alembic_config())
    head = scripts.get_current_head()
    pending = tuple(
        f"{script.revision}: {script.doc}"
        for script in reversed(list(scripts.iterate_revisions(head, current)))
    )
    shown = make_url(resolved).difference_update_query(["password"])
    return SchemaState(shown.render_as_string(hide_password=True), current, head, pending)


def _open(url: str, *, migrated: bool = True) -> Engine:
    """Create and migrate the engine; any reason it cannot be opened becomes `StoreUnavailable`,
    so commands stop with one line before they start anything, not with a driver traceback."""
    try:
        parsed = make_url(url)
        engine = _create(parsed)
    except (ArgumentError, NoSuchModuleError):
        # The URL itself may hold a password, so it is not repeated here.
        raise StoreUnavailable(
            "the database URL is not one evalcore can open; check EVALCORE_DATABASE_URL "
            "(e.g. postgresql://user:password@host:5432/name or sqlite:///path/evalcore.db)"
        ) from None
    except OSError as exc:  # only the SQLite folder is touched before connecting
        raise _unavailable(
            make_url(url),
            f"cannot create the folder {exc.filename} ({exc.strerror})",
            "check the path in EVALCORE_DATABASE_URL or EVALCORE_HOME",
        ) from None
    if not migrated:
        return engine
    try:
        migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise _unavailable(parsed, *_diagnose(parsed, exc.orig)) from None
    return engine


def _unavailable(url: URL, problem: str, check: str) -> StoreUnavailable:
    """The error naming the database: its password masked, one given in the query left out."""
    shown = url.difference_update_query(["password"]).render_as_string(hide_password=True)
    return StoreUnavailable(f"cannot open the database {shown}: {problem}; {check}")


def _diagnose(url: URL, error: BaseException | None) -> tuple[str, str]:
    """What went wrong, from the driver's error, and what to check for it."""
    detail = str(error)
    for secret in (url.password, url.query.get("password")):
        if isinstance(secret, str) and secret:
            detail = detail.replace(secret, _MASK)
    detail = next(iter(detail.strip().splitlines()), type(error).__name__)
    if isinstance(error, sqlite3.Error):
        return _diagnose_sqlite(error, detail)
    # libpq says where it tried before why: keep only the why.
    reason = detail.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    if "connection refused" in reason.lower():
        return reason, "check that PostgreSQL is running and accepts TCP connections there"
    if reason.startswith("database ") and reason.endswith("does not exist"):
        return reason, (
            f"create it (createdb {url.database}) or fix the name in EVALCORE_DATABASE_URL"
        )
    return reason, "check the host, port, user, password and name in EVALCORE_DATABASE_URL"


def _diagnose_sqlite(error: sqlite3.Error, detail: str) -> tuple[str, str]:
    """SQLite's primary result code tells read-only, unopenable and foreign files apart."""
    code = (error.sqlite_errorcode or 0) & 0xFF
    if code == sqlite3.SQLITE_READONLY:
        return "the file is read-only", (
            "make the file and its folder writable (SQLite writes its journal beside the file)"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return "the file cannot be opened or created", (
            "check that the path is a file, not a folder, in a folder you can write to"
        )
    if code == sqlite3.SQLITE_NOTADB:
        return "the file is not an SQLite database", (
            "check the path in EVALCORE_DATABASE_URL or EVALCORE_HOME, or move that file away"
        )
    return detail, "check the file at that path"


def _create(parsed: URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _tune_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _tune_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers; `BEGIN IMMEDIATE` so writers queue on the busy timeout.

    With the default deferred transactions, two processes that both read then write
    can deadlock on the lock upgrade and one gets "database is locked" at once, whatever
    the timeout. Taking the write lock at BEGIN makes them wait their turn instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Upgrade to head; concurrent callers serialise on a lock, then find nothing to do.

    A store already at head, as on every start but the first, is recognised with one
    query and without importing Alembic (about a tenth of a short command's start-up);
    anything else is Alembic's to check and upgrade.
    """
    if _at_newest_revision(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    if current_revision(engine) == head:
        return
    config = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _at_newest_revision(engine: Engine) -> bool:
    """Whether the store's one Alembic version is the newest revision file's."""
    newest = _newest_revision()
    if newest is None:
        return False
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return list(versions) == [newest]


def _newest_revision() -> str | None:
    """The one revision no other file names as its `down_revision`, read from the version
    files without running them; None when they do not say it plainly (a merge, an id
    computed at import, two heads), and then Alembic decides."""
    parents: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        assigned = _assigned_literals(path)
        revision = assigned.get("revision")
        parent = assigned.get("down_revision", ...)  # absent is not plain either
        if not isinstance(revision, str) or not isinstance(parent, str | None):
            return None
        parents[revision] = parent
    heads = parents.keys() - set(parents.values())
    return heads.pop() if len(heads) == 1 else None


def _assigned_literals(path: Path) -> dict[str, Any]:
    """A Python file's top-level `name = literal` (or `name: type = literal`) values."""
    assigned: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            with contextlib.suppress(ValueError):
                assigned[target.id] = ast.literal_eval(value)
    return assigned
