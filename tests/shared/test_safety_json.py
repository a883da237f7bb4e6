"""Every JSON file aerotune writes is strict JSON (no NaN or Infinity), even after a run diverged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_runs import TINY, aerotune, trained_run, tuned_run

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def _no_constants(text: str) -> None:
    raise ValueError(f"not strict JSON: {text}")


def strict(path: Path):
    """Parse like JavaScript's JSON.parse: NaN, Infinity and -Infinity are errors."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)


def all_strict(folder: Path) -> list[str]:
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))
    for name in names:
        strict(folder / name)
    return names


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, synth_root) -> Path:
    """A training run whose loss became non-finite (a dice weight that overflows float32)."""
    run = trained_run(tmp_path_factory, synth_root)
    out = tmp_path_factory.mktemp("diverged") / "run"
    proc = aerotune(
        "train", "--data", run / "cache", "--out", out, "--epochs", "1", *TINY, "--set", "train.dice_weight=1e39"
    )
    assert proc.returncode == 3, proc.stderr[-2000:]  # 3: the run did not complete
    return out


def test_strict_parser_rejects_nan(tmp_path):
    (tmp_path / "x.json").write_text('{"a": NaN}')
    with pytest.raises(ValueError):
        strict(tmp_path / "x.json")


def test_diverged_training_run_writes_strict_json(diverged):
    names = all_strict(diverged)
    assert {"metrics.json", "history.json", "config.json"} <= set(names)
    metrics = strict(diverged / "metrics.json")
    assert metrics["status"] == "diverged" and metrics["best_val_loss"] is None, metrics


def test_training_run_and_cache_write_strict_json(tmp_path_factory, synth_root):
    run = trained_run(tmp_path_factory, synth_root)
    assert {"metrics.json", "history.json", "cache/manifest.json"} <= set(all_strict(run))


def test_tuning_run_with_a_diverged_trial_writes_strict_json(tmp_path_factory, synth_root):
    out = tuned_run(tmp_path_factory, synth_root)
    names = all_strict(out)
    assert {"trials.json", "summary.json", "study.json"} <= set(names)
    statuses = {row.get("status") for row in strict(out / "trials.json")}
    assert "diverged" in statuses, statuses


def test_report_of_a_study_with_a_diverged_baseline_is_strict(tmp_path_factory, synth_root, tmp_path):
    out = tuned_run(tmp_path_factory, synth_root)
    proc = aerotune("report", out, "--out", tmp_path / "report", "--max-patches", "16", "--thresholds", "5")
    if proc.returncode == 2:  # a study without a usable model is refused, in one line
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "report").exists()
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "report.json" in all_strict(tmp_path / "report")


def test_report_of_a_diverged_run_is_strict_or_refused(diverged, tmp_path):
    proc = aerotune("report", diverged, "--out", tmp_path / "report", "--max-patches", "16", "--thresholds", "5")
    if proc.returncode == 2:
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "report").exists()
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "report.json" in all_strict(tmp_path / "report")
