"""Where a study lives, how its workers take turns, and how dead workers are noticed.

Two storages:

* the default, a file-based Optuna journal (``RUN/journal.log``), safe for several processes on one
  machine (SQLite is not). Its appends are guarded by an ``fcntl`` lock, which the kernel releases when
  a process dies, so a worker killed mid-write cannot leave a stale lock behind.
* ``postgresql://...``: Optuna's RDB storage, for workers on several machines.

Both record a heartbeat for every running trial. Optuna's RDB storage has one built in (kept in the
database, timed by the database server's clock); the journal gets the same interface here, timed by
the machine's clock (a journal on a local disk only serves one machine).

``StudyLock`` serialises the few decisions that must be exact across workers: whether another trial may
start (``--trials``), claiming the next epoch (``--max-epochs-total``), failing stale trials and
enqueueing their retries. It is an ``fcntl`` lock on ``RUN/study.lock`` for the journal (the journal's own
lock is the same kind, :class:`aerotune.locks.FileLock`), and a PostgreSQL session-level advisory lock for
PostgreSQL (released by the server if a worker dies).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from aerotune.errors import MissingExtraError, RunError, first_line
from aerotune.locks import FileLock
from aerotune.tune.optuna_compat import HeartbeatStorage, trial_id

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.log"
HEARTBEAT_KEY = "aerotune:heartbeat"


def redact(url: str) -> str:
    """The storage URL without its password (for files and logs)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


class HeartbeatJournalStorage(JournalStorage, HeartbeatStorage):
    """A journal storage with heartbeats, so a killed worker's trial is failed and retried.

    The heartbeat is a trial system attribute holding the time of the last beat; a running trial whose
    last beat (or start) is older than ``grace_period`` seconds is stale.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        heartbeat_interval: int,
        grace_period: int,
        stale_callback: Callable | None,
    ) -> None:
        super().__init__(JournalFileBackend(str(path), lock_obj=FileLock(str(path) + ".lock")))
        self._hb_interval = heartbeat_interval
        self._hb_grace = grace_period
        self._hb_callback = stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time())

    def stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_KEY)
            if beat is None and t.datetime_start is not None:
                beat = t.datetime_start.timestamp()
            if beat is not None and now - float(beat) > self._hb_grace:
                stale.append(trial_id(t))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._hb_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable | None:
        return self._hb_callback


class StudyLock:
    """An exclusive lock shared by every worker of one study (see the module docstring)."""

    def __init__(self, *, path: Path | None = None, pg_url: str | None = None, name: str = "") -> None:
        self._file, self._pg_url, self._conn = FileLock(path) if path is not None else None, pg_url, None
        self._key = zlib.crc32(f"aerotune:{name}".encode()) - 2**31  # a signed 32-bit advisory lock key
        self._mutex = threading.RLock()  # one connection: one thread at a time

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._file is not None:
            with self._file:
                yield
            return
        with self._mutex:
            cur = self._connection().cursor()
            cur.execute("SELECT pg_advisory_lock(%s)", (self._key,))
            try:
                yield
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                cur.close()

    def _connection(self):
        if self._conn is None or self._conn.closed:
            try:
                import psycopg2
            except ModuleNotFoundError:
                raise MissingExtraError("psycopg2", "postgres") from None
            url = "postgresql://" + self._pg_url.split("://", 1)[1]
            self._conn = psycopg2.connect(url)
            self._conn.autocommit = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL with the driver that is installed (SQLAlchemy 2.1 defaults to psycopg 3)."""
    if not is_postgres(url):
        return url
    scheme, rest = url.split("://", 1)
    if "+" in scheme:
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    raise MissingExtraError("psycopg2", "postgres")


def open_storage(
    url: str | None,
    run_dir: Path,
    *,
    heartbeat: int,
    stale_callback: Callable | None,
    name: str,
) -> tuple[optuna.storages.BaseStorage, StudyLock]:
    """Open the study's storage (journal in ``run_dir`` when ``url`` is None) and its lock."""
    grace = max(3 * heartbeat, heartbeat + 2)
    if url is None or url.startswith("journal:") or "://" not in url:
        path = run_dir / JOURNAL_FILE if url is None else Path(url.removeprefix("journal:"))
        storage = HeartbeatJournalStorage(
            path,
            heartbeat_interval=heartbeat,
            grace_period=grace,
            stale_callback=stale_callback,
        )
        return storage, StudyLock(path=path.with_name("study.lock"), name=name)
    rdb_url = sqlalchemy_url(url)
    # PostgreSQL: workers starting together must not race to create the schema; the advisory lock
    # serialises them. Other databases (SQLite): one machine only; the run folder's file lock does.
    lock = StudyLock(pg_url=url, name=name) if is_postgres(url) else StudyLock(path=run_dir / "study.lock", name=name)
    try:
        with lock.hold(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeat_interval is experimental"
            storage = RDBStorage(
                rdb_url,
                heartbeat_interval=heartbeat,
                grace_period=grace,
                heartbeat_stale_trial_callback=stale_callback,
                engine_kwargs={"pool_pre_ping": True} if is_postgres(url) else None,
            )
    except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server is bad input
        if isinstance(exc, MissingExtraError):
            raise
        raise RunError(
            f"--storage {redact(url)}: cannot open ({first_line(exc)}); check the URL and that the server is reachable"
        ) from None
    return storage, lock


class Heartbeat:
    """Beats for one running trial in a background thread until stopped."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill the trial
                log.debug("heartbeat for trial id %d failed: %s", self._trial_id, exc)
            if self._stop.wait(self._interval):
                return
