"""A worker killed with SIGKILL in mid-trial: the rerun finds the trial stale (heartbeat), fails it and
retries it from its last checkpoint; no completed trial is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aerotune.tune.study import load_run_study

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def tune_command(cache: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aerotune",
        "tune",
        "--data",
        str(cache),
        "--out",
        str(out),
        "--patch-size",
        "32",
        "--epochs",
        "9",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "train.threads=1",
        "--set",
        "train.progress=false",
        "--trials",
        "4",
        "--heartbeat",
        "1",
        "--sampler",
        "random",
        "--seed",
        "3",
    ]


def running_with_epochs(out: Path) -> tuple[int, int] | None:
    """(trial number, epochs reported) of a RUNNING trial that has reported at least one epoch."""
    if not (out / "study.json").is_file():
        return None
    opened, _ = load_run_study(out)
    try:
        for t in opened.study.get_trials(deepcopy=False):
            if t.state.name == "RUNNING" and t.intermediate_values and max(t.intermediate_values) < 8:
                return t.number, max(t.intermediate_values)
    finally:
        opened.close()
    return None


def test_sigkilled_worker_is_detected_and_its_trial_retried(tiny_cache, tmp_path):
    out = tmp_path / "run"
    cmd = tune_command(tiny_cache.root, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    victim = None
    deadline = time.monotonic() + 240
    try:
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            victim = running_with_epochs(out)
        assert victim is not None, f"no trial was caught mid-training: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    number, epochs_before = victim
    before = {t.number: t for t in _trials(out) if t.state.name in ("COMPLETE", "PRUNED")}

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    rows = json.loads((out / "trials.json").read_text())
    by_number = {r["number"]: r for r in rows}
    stale = by_number[number]
    assert stale["state"] == "FAIL" and stale["status"] == "stale heartbeat"
    retries = [r for r in rows if r["retry_of"] == number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry["state"] in ("COMPLETE", "PRUNED") and retry["params"] == stale["params"]
    assert retry["resumed_from"] == number  # continued from the killed trial's last checkpoint
    history = json.loads((out / retry["run_dir"] / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, retry["epochs"] + 1))
    assert retry["epochs"] >= epochs_before
    # The requested trials are all there (retries replace, not add), and nothing finished was lost.
    originals = [r for r in rows if r["retry_of"] is None]
    assert len(originals) == 4
    assert all(r["state"] in ("COMPLETE", "PRUNED", "FAIL") for r in rows)
    for n, t in before.items():
        assert by_number[n]["state"] == t.state.name and by_number[n]["values"] == [
            t.intermediate_values[k] for k in sorted(t.intermediate_values)
        ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["stale"] == 1 and summary["counts"]["running"] == 0


def _trials(out: Path):
    opened, _ = load_run_study(out)
    try:
        return opened.study.get_trials()
    finally:
        opened.close()
