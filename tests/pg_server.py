"""Pytest plugin: a real PostgreSQL server for the session, and a fresh database per test.

The server comes from the distribution's package (Debian: /usr/lib/postgresql/<n>/bin): `initdb`
makes a cluster in a temporary directory, `pg_ctl` starts it on a free loopback port, and it is
stopped and removed when the session ends.  initdb refuses to run as root, so as root the server
runs as the `postgres` user the Debian package creates (or `nobody`), with a data directory that
user owns.  Durability is switched off (fsync, full-page writes): the cluster is thrown away.

Fixtures:
    pg_server      the running server (session): .url(database), .new_database(), .bin(tool)
    pg_url         a new, empty database for one test, as a crmsync store URL
    pg_store_url   a database holding a freshly created store (cloned from a template and, once
                   used, reset and reused: much faster than migrations or a new database per test)

rerun_on_postgresql(globals(), test_module) collects a test module's store tests again, in the
calling module, against a PostgreSQL store (tests/test_pg_suite_*.py).

Without PostgreSQL the tests that use these are skipped with the reason; with CRMSYNC_REQUIRE_ALL=1
(CI) they fail instead.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

SUPERUSER = "crmsync"
TEMPLATE_DB = "crmsync_store_template"
_INSTALL_HINT = ("apt-get install postgresql (the tests run initdb/pg_ctl themselves), "
                 'and pip install "psycopg[binary]"')


def postgres_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: $PG_BINDIR, PATH, or the newest Debian version."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += reversed(debian)
    for d in candidates:
        if d and (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: ourselves, or (as root) postgres/nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists "
                       "(initdb refuses to run as root): useradd --system postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="crmsync-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._counter = itertools.count(1)
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)

    def bin(self, tool: str) -> str:
        return str(self.bindir / tool)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        if self.account is not None:  # drop root for the server's own tools
            kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
            env["HOME"] = str(self.root)
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                                cwd=self.root, **kwargs)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}{log}")
        return result

    def start(self, durable: bool = False) -> "PostgresServer":
        """Start the server; durable=True keeps PostgreSQL's default fsync/commit settings (benchmarks)."""
        self._run(self.bin("initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        settings = ("-c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=128MB "
                    f"-c unix_socket_directories={self.root}")
        if not durable:  # a throwaway cluster: nothing to keep safe from a power cut
            settings += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        for attempt in range(5):  # a port taken between the probe and the start: try another
            self.port = _free_port()
            try:
                self._run(self.bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", "60", "-o", f"-p {self.port} {settings}", "start")
                return self
            except RuntimeError:
                if attempt == 4:
                    raise
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(self.bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}",
                             autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, template: str = "template0") -> str:
        """Create a new database (a copy of template) and return its name."""
        name = f"t{os.getpid()}_{next(self._counter)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name


def _unavailable(reason: str):
    if os.environ.get("CRMSYNC_REQUIRE_ALL"):
        pytest.fail(f"PostgreSQL is required (CRMSYNC_REQUIRE_ALL=1): {reason}; {_INSTALL_HINT}")
    pytest.skip(f"PostgreSQL is not available: {reason}; set CRMSYNC_REQUIRE_ALL=1 to require it")


@pytest.fixture(scope="session")
def pg_server():
    """A running PostgreSQL server for the whole session (skip or fail without one)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed")
    bindir = postgres_bindir()
    if bindir is None:
        _unavailable("initdb/pg_ctl not found (PATH, $PG_BINDIR, /usr/lib/postgresql/*/bin)")
    try:
        server = PostgresServer(bindir).start()
    except Exception as exc:  # a server that cannot start is "not available" with its log
        _unavailable(f"the server did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a new, empty database (left to the cluster's removal: dropping costs seconds)."""
    return pg_server.url(pg_server.new_database())


class StoreTemplate:
    """A database holding a freshly created store, and what it takes to put a used copy back.

    Cloning a database costs a few hundred milliseconds and dropping one several seconds (a
    checkpoint), so used store databases are reset instead: every table emptied, the seed rows
    written back, the counters restarted.  A database whose tables or columns a test changed is
    never reused.
    """

    def __init__(self, server: PostgresServer, name: str):
        import psycopg

        self.server, self.name = server, name
        self.pool: list[str] = []
        with psycopg.connect(self._dsn(name)) as conn:
            self.shape = self._shape(conn)
            tables = [t for t, in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            self.seed = {}
            for t in tables:
                cur = conn.execute(f'SELECT * FROM "{t}"')
                self.seed[t] = ([d.name for d in cur.description], cur.fetchall())
            self.sequences = [q for q, in conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences")]

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.server.port} user={SUPERUSER} dbname={database}"

    @staticmethod
    def _shape(conn) -> list:
        return conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()

    def take(self) -> str:
        return self.pool.pop() if self.pool else self.server.new_database(template=self.name)

    def give_back(self, database: str) -> None:
        """Reset a used database to the template's content and pool it (or drop it from use)."""
        import psycopg

        try:
            with psycopg.connect(self._dsn(database)) as conn:
                conn.execute("SET lock_timeout = '2s'")
                if self._shape(conn) != self.shape:
                    return  # a test changed the schema: never hand this one out again
                conn.execute("SET session_replication_role = replica")  # no FK checks while resetting
                for table, (cols, rows) in self.seed.items():
                    conn.execute(f'DELETE FROM "{table}"')
                    if rows:
                        quoted = ", ".join(f'"{c}"' for c in cols)
                        marks = ", ".join(["%s"] * len(cols))
                        conn.cursor().executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})', rows)
                for seq in self.sequences:
                    conn.execute(f"ALTER SEQUENCE {seq} RESTART")
            self.pool.append(database)
        except psycopg.Error:
            pass  # still in use (a test left a transaction open): leave it to the cluster's removal


@pytest.fixture(scope="session")
def _pg_store_template(pg_server):
    """A database holding a freshly created store, to clone (and reset) per test."""
    from crmsync import clock
    from crmsync.store import Store

    pg_server.admin(f'CREATE DATABASE "{TEMPLATE_DB}" TEMPLATE template0')
    before = clock._fixed  # a test's fixed clock may already be set: put it back afterwards
    clock.set_now("2024-05-21 10:00:00")  # the seed rows carry the tests' clock
    try:
        Store(pg_server.url(TEMPLATE_DB), create=True).close()
    finally:
        clock.set_now(before)
    return StoreTemplate(pg_server, TEMPLATE_DB)


@pytest.fixture
def pg_store_url(pg_server, _pg_store_template):
    """The URL of a database holding an empty, migrated store (fresh for each test)."""
    name = _pg_store_template.take()
    yield pg_server.url(name)
    _pg_store_template.give_back(name)


# ---- re-running a SQLite test suite on PostgreSQL ----------------------------------------------------

STORE_FIXTURES = {"store", "team_store", "store_path"}


def _is_fixture(obj) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(obj, "_pytestfixturefunction")


def _params(obj) -> set[str]:
    import inspect

    fn = getattr(obj, "_fixture_function", None) or getattr(obj, "__wrapped__", obj)
    return set(inspect.signature(fn).parameters)


def rerun_on_postgresql(namespace: dict, module, sqlite_only: dict[str, str] | None = None,
                        locations: tuple[str, ...] = ()) -> None:
    """Put into namespace (a test module's globals) every test of module that uses the store, and
    the fixtures they need, plus `store_path`/`store` fixtures that point at a PostgreSQL store.

    `store_path` becomes a PostgreSQL URL (what a user passes to --store or CRMSYNC_STORE) and
    `store` (hence `team_store`) opens it, so the same tests run unchanged on PostgreSQL.
    sqlite_only names the tests that reach into an SQLite file themselves, with the reason;
    locations names the suite's own fixtures that make a store and return its location (they
    become the PostgreSQL URL too).
    """
    items = vars(module)
    uses_store = set(STORE_FIXTURES) | set(locations)
    for _ in range(3):  # fixtures built on fixtures built on the store
        uses_store |= {n for n, o in items.items() if _is_fixture(o) and _params(o) & uses_store}
    for name, obj in items.items():
        if _is_fixture(obj) and name not in STORE_FIXTURES and name not in locations:
            namespace[name] = obj  # the suite's own fixtures (sample files, teams and the like)
        elif (name.startswith("test_") and callable(obj) and name not in (sqlite_only or {})
              and _params(obj) & uses_store):
            namespace[name] = obj

    # Made here, not at module level: this module is a plugin, and its fixtures would be global.
    @pytest.fixture(name="store_path")
    def pg_store_path(pg_store_url):
        return pg_store_url

    @pytest.fixture(name="store")
    def pg_store(store_path):
        from crmsync.store import Store

        s = Store(store_path)
        yield s
        s.close()

    namespace["store_path"], namespace["store"] = pg_store_path, pg_store
    for name in locations:
        namespace[name] = pytest.fixture(name=name)(lambda pg_store_url: pg_store_url)
