"""Signals only recorded, and raised at safe points (``interrupts.check``, the end of the outermost
``interrupts.deferred`` block), with real signals sent to this process: in the CLI's set-up, in a worker's and as a
library; never inside a journal storage call nor while a file lock is held."""

from __future__ import annotations

import os
import signal
import time

import pytest

from aerotune import interrupts


@pytest.fixture
def handlers():
    """Start with Python's own SIGINT handler, as an interactive run has it, and put SIGINT and SIGTERM back as they
    were after the test. A run started as a background job (``make test &`` in a script, ``nohup``) inherits SIGINT
    ignored, and :func:`interrupts.install` rightly leaves an ignored SIGINT alone: without this the tests would
    depend on how their runner was started."""
    saved = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def _send(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # Python runs the handler at its next bytecode: by now it has


@pytest.mark.parametrize("cli", [True, False], ids=["cli-handlers", "library"])
def test_a_signal_inside_nested_blocks_is_raised_when_the_outermost_ends(handlers, cli):
    if cli:
        interrupts.install()
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            with interrupts.deferred():
                _send(signal.SIGINT)
                steps.append("inner went on")
            steps.append("outer went on")
    assert steps == ["inner went on", "outer went on"]
    if not cli:  # the library's own handler is back after the block
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts.deferred():
        steps.append("a later block is quiet")
    assert steps[-1] == "a later block is quiet"


def test_sigterm_in_a_block_raises_terminated_after_it(handlers):
    interrupts.install()
    with pytest.raises(interrupts.Terminated):
        with interrupts.deferred():
            _send(signal.SIGTERM)
    interrupts.install()  # a new command
    with pytest.raises(interrupts.Terminated):  # outside a block, at the next check
        _send(signal.SIGTERM)
        interrupts.check()


def test_a_workers_second_signal_during_its_clean_up_is_ignored(handlers):
    interrupts.install(sigint=True)
    with pytest.raises(KeyboardInterrupt):
        _send(signal.SIGINT)
        interrupts.check()
    with interrupts.deferred():  # the clean-up: SIGTERM from the parent now changes nothing
        _send(signal.SIGTERM)
        interrupts.check()
    _send(signal.SIGINT)
    interrupts.sleep(0.01)


def test_a_journal_storage_call_is_not_broken_off_by_a_signal(handlers, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a journal storage call (here while it appends to the journal, under the journal's
    file lock) lets the call end; it is raised at the next check, and the lock is free again."""
    from optuna.storages.journal import JournalFileBackend
    from optuna.study import StudyDirection

    from aerotune.tune.storage import HeartbeatJournalStorage

    interrupts.install()
    storage = HeartbeatJournalStorage(
        tmp_path / "journal.log", heartbeat_interval=1, grace_period=3, stale_callback=None
    )
    append, done = JournalFileBackend.append_logs, []

    def append_after_a_signal(self, logs):
        _send(signal.SIGINT)
        append(self, logs)
        done.append("the call finished")

    monkeypatch.setattr(JournalFileBackend, "append_logs", append_after_a_signal)
    with pytest.raises(KeyboardInterrupt):
        storage.create_new_study([StudyDirection.MINIMIZE], "s")
        interrupts.check()
    assert done == ["the call finished"]
    monkeypatch.undo()
    assert storage.create_new_study([StudyDirection.MINIMIZE], "t") == 1  # the journal goes on, unlocked


def test_a_signal_while_a_file_lock_is_held_is_raised_once_it_is_dropped(handlers, tmp_path):
    """The study's and the journal's file lock: Ctrl-C while it is held is raised after ``release``, so the lock is
    never left behind by an interrupt (another descriptor can take it at once)."""
    import fcntl

    from aerotune.locks import FileLock

    interrupts.install()
    lock = FileLock(tmp_path / "study.lock")
    done = []
    with pytest.raises(KeyboardInterrupt):
        lock.acquire()
        try:
            lock.acquire()  # re-entrant, as the worker's clean-up takes it again
            _send(signal.SIGINT)
            lock.release()
            done.append("held through the inner release")
        finally:
            lock.release()
        interrupts.check()
    assert done == ["held through the inner release"]
    fd = os.open(tmp_path / "study.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free
    finally:
        os.close(fd)
