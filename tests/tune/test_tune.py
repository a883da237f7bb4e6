"""The tuning stage end to end on a tiny synthetic cache: HyperBand over epochs, budgets, failures,
workers, resume, exports, reproducibility, the dry-run plan and the dashboard."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from aerotune.commands import main
from aerotune.config import RunConfig, load_config
from aerotune.tune.plan import bracket_of, bracket_shares, make_plan, n_brackets
from aerotune.tune.space_parse import parse_space
from aerotune.tune.study import TuneSettings, run_tune

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

SPACE = {
    "batch_size": {"_type": "choice", "_value": [8, 16, 32]},
    "learning_rate": {"_type": "loguniform", "_value": [0.001, 0.05]},
    "activation_type": {"_type": "choice", "_value": ["relu", "tanh", None]},
}


def tiny_config(epochs: int = 9) -> RunConfig:
    """Under the reference's recipe, so trial 0 (the baseline) is the only fixed trial; the default recipe's trial 1
    is tested in tests/tune/test_recipe_study.py."""
    return load_config(None, preset="reference").with_overrides(
        {
            "data.patch_size": 32,
            "model.base_filters": 4,
            "model.depth": 3,
            "train.epochs": epochs,
            "train.threads": 1,
            "train.progress": False,
        }
    )


def settings(cache, out, **kw) -> TuneSettings:
    kw.setdefault("space", parse_space(SPACE))
    kw.setdefault("config", tiny_config(kw.pop("epochs", 9)))
    kw.setdefault("heartbeat", 2)
    kw.setdefault("sampler", "tpe")  # these tests study the machinery under TPE, the default until 2026-12-08
    return TuneSettings(data=cache.root, out=out, **kw)


def rows(out: Path) -> list[dict]:
    return json.loads((out / "trials.json").read_text())


def test_hyperband_study_exports_everything(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=7, study_name="t"))
    for name in (
        "study.json",
        "trials.csv",
        "trials.json",
        "best_params.json",
        "best_checkpoint.pt",
        "summary.json",
        "split.json",
        "journal.log",
    ):
        assert (out / name).is_file(), name
    desc = json.loads((out / "study.json").read_text())
    assert desc["cache"] == str(tiny_cache.root.resolve()) and desc["reference_epochs"] == 3455
    assert (desc["min_resource"], desc["max_resource"], desc["reduction_factor"]) == (1, 9, 3)
    assert desc["baseline_trial"] == 0 and desc["sampler"] == "tpe" and desc["direction"] == "minimize"
    assert set(desc["space"]) == {"train.batch_size", "train.learning_rate", "model.activation"}

    trials = rows(out)
    assert [t["number"] for t in trials] == list(range(7))
    base = trials[0]
    assert base["baseline"] and base["state"] == "COMPLETE" and base["epochs"] == 9
    assert base["params"] == {"train.batch_size": 16, "train.learning_rate": 0.007, "model.activation": "relu"}
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    assert any(t["state"] == "PRUNED" for t in trials)
    split = json.loads((out / "split.json").read_text())
    for t in trials:
        run_dir = out / t["run_dir"]
        history = json.loads((run_dir / "history.json").read_text())
        # One continuous training run per trial: survivors of a rung trained on, nothing from scratch.
        assert [h["epoch"] for h in history] == list(range(1, t["epochs"] + 1))
        assert [h["val_loss"] for h in history] == pytest.approx(t["values"])
        assert json.loads((run_dir / "split.json").read_text())["val"] == split["val"]  # one split for all
        assert t["duration_s"] > 0 and t["bracket"] in (0, 1, 2)
        if t["state"] == "PRUNED":
            assert t["epochs"] < 9 and t["status"] == "pruned"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_spent"] == sum(t["epochs"] for t in trials) == result.epochs_spent
    assert summary["reference_epochs"] == 3455 and summary["baseline_trial"] == 0
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] == 7
    best = min((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
    assert summary["best_trial"] == best["number"] == result.best_trial
    assert json.loads((out / "best_params.json").read_text()) == best["params"]
    assert summary["baseline_value"] == base["value"] == result.baseline_value
    with open(out / "trials.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 7 and "param:train.learning_rate" in table[0] and json.loads(table[0]["values"])

    # Running again with more trials continues the same study; finished trials stay as they were.
    run_tune(settings(tiny_cache, out, trials=9, study_name="t"))
    again = rows(out)
    assert [t["number"] for t in again] == list(range(9))
    assert again[:7] == trials
    # A different space in the same folder is refused before anything runs.
    other = parse_space({**SPACE, "dropout": {"_type": "uniform", "_value": [0.0, 0.3]}})
    with pytest.raises(Exception, match="different space"):
        run_tune(settings(tiny_cache, out, trials=9, study_name="t", space=other))


def test_epoch_cap_is_hard_with_two_workers(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=8, workers=2, max_epochs_total=14, study_name="w"))
    trials = rows(out)
    assert result.epochs_spent == 14
    assert sum(t["epochs"] for t in trials) == 14  # no epoch trained past the cap, none lost
    numbers = [t["number"] for t in trials]
    assert numbers == sorted(set(numbers))
    assert all((out / t["run_dir"]).is_dir() for t in trials)
    assert any(t["status"] == "budget" for t in trials)
    assert len({t["worker"] for t in trials}) == 2  # both processes ran trials


def test_workers_run_exactly_the_requested_trials(tiny_cache, tmp_path):
    out = tmp_path / "run"
    run_tune(settings(tiny_cache, out, trials=6, workers=2, epochs=3, study_name="w2"))
    trials = rows(out)
    assert [t["number"] for t in trials] == list(range(6))
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    assert all((out / t["run_dir"] / "checkpoints" / "last.pt").is_file() for t in trials)


def test_failures_are_recorded_and_never_promoted(tiny_cache, tmp_path, monkeypatch):
    import aerotune.train.fit as fit_module

    real_fit = fit_module.fit

    def flaky_fit(config, cache, out, **kw):
        if config.model.activation == "tanh":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if config.model.activation == "none":
            cb = kw["callback"]
            cb.on_epoch_start(1)
            return fit_module.RunResult(
                Path(out), "diverged", 0, None, float("inf"), reason="training loss became non-finite in epoch 1"
            )
        return real_fit(config, cache, out, **kw)

    monkeypatch.setattr(fit_module, "fit", flaky_fit)
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=8, epochs=3, sampler="random", study_name="f"))
    trials = rows(out)
    assert len(trials) == 8  # the study went on
    oom = [t for t in trials if t["params"]["model.activation"] == "tanh"]
    nan = [t for t in trials if t["params"]["model.activation"] == "none"]
    assert oom and nan
    for t in oom:
        assert (t["state"], t["status"]) == ("FAIL", "out of memory") and "out of memory" in t["reason"]
    for t in nan:
        assert (t["state"], t["status"]) == ("FAIL", "diverged") and "non-finite" in t["reason"]
    assert result.counts["out_of_memory"] == len(oom) and result.counts["diverged"] == len(nan)
    assert result.best_params["model.activation"] == "relu"
    assert all(t["value"] is None for t in oom + nan)


def test_metric_and_direction(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=3, epochs=2, metric="val_mean_iou", study_name="m"))
    desc = json.loads((out / "study.json").read_text())
    assert desc["direction"] == "maximize" and desc["metric"] == "val_mean_iou"
    complete = [t for t in rows(out) if t["state"] == "COMPLETE"]
    assert result.best_value == max(t["value"] for t in complete)
    assert all(t["value"] == max(t["values"]) for t in complete)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_same_seed_and_name_same_configurations(tiny_cache, tmp_path, sampler):
    def params(out):
        run_tune(
            settings(tiny_cache, out, trials=5, epochs=2, sampler=sampler, seed=7, study_name="same", startup_trials=2)
        )
        return [t["params"] for t in rows(out)]

    first, second = params(tmp_path / "a"), params(tmp_path / "b")
    assert first == second
    assert len({json.dumps(p, sort_keys=True) for p in first}) == 5


def test_plan_matches_optunas_hyperband():
    name, r, big_r, eta = "plan-check", 1, 27, 3
    plan = make_plan(
        study_name=name, min_resource=r, max_resource=big_r, reduction_factor=eta, trials=60, baseline=True
    )
    assert len(plan.brackets) == 4
    assert [b.rungs for b in plan.brackets] == [[1, 3, 9], [3, 9], [9], []]
    pruner = optuna.pruners.HyperbandPruner(min_resource=r, max_resource=big_r, reduction_factor=eta)
    study = optuna.create_study(study_name=name, pruner=pruner)
    first_check = {}
    for number in range(60):
        trial = study.ask()
        for step in range(1, big_r):  # like the tuner: no pruning check at the last epoch
            trial.report(1.0 + number, step)  # later trials are worse: every one is pruned at its first rung
            if trial.should_prune():
                first_check[number] = step
                break
        study.tell(
            trial,
            state=optuna.trial.TrialState.PRUNED if number in first_check else None,
            values=None if number in first_check else 1.0 + number,
        )
    shares = bracket_shares(n_brackets(r, big_r, eta), eta)
    for number, t in enumerate(study.get_trials()):
        b = plan.trial_brackets[number]
        assert pruner._get_bracket_id(study, t) == b == bracket_of(name, number, shares)
        if number in first_check:
            assert first_check[number] == plan.brackets[b].rungs[0]
        else:  # Optuna promotes the best so far while a rung has fewer than eta trials: here the first
            assert not plan.brackets[b].rungs or plan.trial_brackets.index(b) == number
    text = str(plan)
    assert "4 bracket(s)" in text and "3,455" in text and "judged after epoch(s) 1, 3, 9" in text


def cli(*args: str) -> int:
    return main(list(args))


def test_cli_dry_run_and_bad_input(tiny_cache, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["tune", "--data", str(tiny_cache.root), "--out", str(out), "--patch-size", "32", "--epochs", "9"]
    assert cli(*common, "--dry-run", "--trials", "20", "--max-epochs-total", "60") == 0
    text = capsys.readouterr().out
    assert "3 bracket(s)" in text and "20 trial(s)" in text and "hard cap: 60 epochs" in text
    assert not out.exists()
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"activaton_type": {"_type": "choice", "_value": ["relu"]}}))
    assert cli(*common, "--space", str(space), "--trials", "2") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aerotune: error:") and "activaton_type" in err and "\n" not in err
    assert not out.exists()  # checked before the run folder is made
    assert cli(*common, "--min-resource", "20") == 2
    assert "--min-resource" in capsys.readouterr().err
    assert cli(*common, "--metric", "val_los") == 2
    assert "--metric" in capsys.readouterr().err
    assert cli(*common, "--baseline", "activation_type=gelu") == 2
    assert "baseline" in capsys.readouterr().err
    assert not out.exists()


def test_cli_tune_and_dashboard(tiny_cache, tmp_path, capsys):
    out = tmp_path / "run"
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {type: float, low: 0.001, high: 0.05, log: true}\n")
    assert (
        cli(
            "tune",
            "--data",
            str(tiny_cache.root),
            "--out",
            str(out),
            "--patch-size",
            "32",
            "--epochs",
            "3",
            "--set",
            "model.base_filters=4",
            "--set",
            "model.depth=3",
            "--set",
            "train.threads=1",
            "--space",
            str(space),
            "--trials",
            "3",
            "--baseline",
            "learning_rate=0.01",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "3 trial(s)" in text and "epochs spent" in text and "3,455" in text and "best val_loss" in text
    assert rows(out)[0]["params"]["train.learning_rate"] == 0.01

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aerotune", "dashboard", str(out), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert body is not None, proc.stdout.read().decode() if proc.poll() is not None else "no answer"
        assert out.name in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_timeout_and_unreachable_storage(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=5, timeout=1e-6, study_name="to"))
    assert result.counts["complete"] == 0 and result.counts["waiting"] == 1  # no trial starts after the timeout
    out2 = tmp_path / "nowhere"
    with pytest.raises(Exception, match="cannot open") as err:
        run_tune(settings(tiny_cache, out2, trials=1, storage="postgresql://me:secret@127.0.0.1:1/db"))
    assert "secret" not in str(err.value)
    assert not out2.exists()  # the run folder this call made is removed again


def _quadratic_study(pruner, seen: dict) -> optuna.Study:
    """A fast study (no training): TPE records how many trials it is shown for each trial it samples."""

    class Spy(optuna.samplers.TPESampler):
        def sample_relative(self, study, trial, search_space):
            seen[trial.number] = len(study.get_trials(deepcopy=False))
            return super().sample_relative(study, trial, search_space)

    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        for step in range(1, 10):
            trial.report((x - 1) ** 2 + 1 / step, step)
            if step < 9 and trial.should_prune():
                raise optuna.TrialPruned()
        return (x - 1) ** 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=pruner, sampler=Spy(seed=0, n_startup_trials=2), study_name="scope")
    study.optimize(objective, n_trials=24)
    return study


def test_sampler_scope_study_shows_tpe_every_bracket():
    from aerotune.tune.study import StudyWideHyperband

    def hyperband():
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)

    narrow, wide = {}, {}
    _quadratic_study(hyperband(), narrow)
    study = _quadratic_study(StudyWideHyperband(hyperband()), wide)
    # Optuna's own behaviour: the sampler sees only the trial's bracket (3 brackets here)
    assert narrow[23] < 23
    # wrapped: every earlier trial (and the one being sampled)
    assert all(n == number + 1 for number, n in wide.items())
    # pruning still happens, by the same brackets and rungs
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    assert {t.last_step for t in pruned} <= {1, 3}


def test_sampler_scope_is_saved_and_checked(tiny_cache, tmp_path):
    out = tmp_path / "run"
    run_tune(settings(tiny_cache, out, trials=2, epochs=2, study_name="s", sampler_scope="study"))
    assert json.loads((out / "study.json").read_text())["sampler_scope"] == "study"
    with pytest.raises(Exception, match="different sampler_scope"):  # resuming with the other scope is refused
        run_tune(settings(tiny_cache, out, trials=3, epochs=2, study_name="s", sampler_scope="bracket"))
    with pytest.raises(Exception, match="--sampler-scope"):
        settings(tiny_cache, tmp_path / "bad", sampler_scope="everything").validate()


def test_dashboard_on_a_port_in_use_is_one_line(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = run_tune(settings(tiny_cache, out, trials=1))
    assert result.counts["complete"] == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "aerotune", "dashboard", str(out), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"aerotune: error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port"
    )


def test_a_new_study_samples_at_random_and_an_earlier_one_keeps_its_sampler(tiny_cache, tmp_path):
    """Random sampling is the default since the Dubai replay (docs/tuning.md); a study made with TPE, the earlier
    default, resumes with TPE when --sampler is not given, instead of being refused as a different study."""
    new = tmp_path / "new"
    run_tune(settings(tiny_cache, new, trials=1, epochs=1, sampler=None, baseline=None))
    assert json.loads((new / "study.json").read_text())["sampler"] == "random"
    old = tmp_path / "old"
    run_tune(settings(tiny_cache, old, trials=1, epochs=1, baseline=None))  # made with TPE
    result = run_tune(settings(tiny_cache, old, trials=2, epochs=1, sampler=None, baseline=None))
    assert json.loads((old / "study.json").read_text())["sampler"] == "tpe"
    assert len(rows(old)) == 2 and result.counts["complete"] == 2
