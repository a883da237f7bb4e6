"""A ``--max-epochs-total`` that cannot pay for the baseline trial plus one pruning round is warned about, in the
dry run and when the study starts, naming ``--epochs``, ``--max-epochs-total`` and what would work."""

from __future__ import annotations

import logging

import pytest

from aerotune.commands import main
from aerotune.tune.plan import make_plan


def plan(cap, *, epochs=50, baseline=True, pruner="hyperband"):
    return make_plan(
        study_name="s",
        min_resource=1,
        max_resource=epochs,
        reduction_factor=3,
        trials=20,
        baseline=baseline,
        max_epochs_total=cap,
        pruner=pruner,
    )


def test_a_cap_that_only_pays_for_the_baseline_is_named_with_what_would_work():
    text = plan(8).budget_warning()
    assert text.startswith("--max-epochs-total 8 cannot pay for the baseline trial (50 epochs")
    # 50 (baseline) + 3 trials judged after epoch 1 + one of them trained on to 50: 102
    assert "102 epochs" in text and "raise --max-epochs-total to at least 102" in text
    assert "lower --epochs to 3" in text  # 3 + (3 * 1 + 2) = 8
    assert "--no-baseline" not in text  # without the baseline 52 epochs are still more than 8
    assert "--no-baseline" in plan(60).budget_warning()
    assert "warning: --max-epochs-total 8 cannot pay" in str(plan(8))


@pytest.mark.parametrize(
    ("cap", "kw"),
    [(None, {}), (102, {}), (52, {"baseline": False}), (100, {"pruner": "none"}), (8, {"epochs": 3})],
)
def test_a_cap_that_works_is_not_warned_about(cap, kw):
    assert plan(cap, **kw).budget_warning() is None
    assert "warning" not in str(plan(cap, **kw))


def test_without_pruning_the_round_is_one_more_trial():
    text = plan(60, pruner="none").budget_warning()
    assert "one more trial (50 epochs): 100 epochs" in text and "lower --epochs to 30" in text


def test_dry_run_and_study_start_warn(tiny_cache, tmp_path, capsys, caplog):
    common = ["tune", "--data", str(tiny_cache.root), "--patch-size", "32", "--max-epochs-total", "8"]
    assert main([*common, "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    assert "warning: --max-epochs-total 8 cannot pay for the baseline trial (50 epochs" in capsys.readouterr().out
    tiny = ["--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.progress=false"]
    with caplog.at_level(logging.WARNING, logger="aerotune"):
        assert main([*common[:5], "--max-epochs-total", "2", "--epochs", "2", "--out", str(tmp_path / "s"), *tiny]) == 0
    warned = [r.getMessage() for r in caplog.records if "cannot pay" in r.getMessage()]
    assert warned and warned[0].startswith("--max-epochs-total 2 cannot pay for the baseline trial (2 epochs")
    capsys.readouterr()


# ---------------------------------------------------------------- what the sampler does in this study (--dry-run)


def _plan(trials: int, **kw):
    return make_plan(study_name="s", min_resource=1, max_resource=9, reduction_factor=3, trials=trials, **kw)


def test_a_small_study_under_tpe_is_said_to_be_random_search():
    from aerotune.tune.plan import sampler_lines

    (line,) = sampler_lines(_plan(10, baseline=True), sampler="tpe", startup=10)
    assert "this study is random search" in line and "--startup-trials" in line
    # 12 trials in 3 brackets, none of which reaches 10 trials: TPE still chooses the last two, as it counts its
    # start-up trials over the whole study (the old plan counted them per bracket and called this random search)
    plan = _plan(12, baseline=True, default_trial=True)
    assert max(plan.trial_brackets.count(b) for b in range(3)) <= 10
    (line,) = sampler_lines(plan, sampler="tpe", startup=10)
    assert "about 2 of the 10 drawn trial(s) chosen by TPE" in line


def test_tpe_trials_are_counted_over_the_study():
    from aerotune.tune.plan import sampler_lines

    plan = _plan(40, baseline=True)
    (line,) = sampler_lines(plan, sampler="tpe", startup=10)
    assert "about 30 of the 39 drawn trial(s) chosen by TPE" in line
    (line,) = sampler_lines(plan, sampler="random", startup=10)
    assert line.startswith("sampler: random search") and "39 trial(s)" in line


def test_optuna_tpe_counts_its_start_up_trials_over_every_bracket():
    """What sampler_lines assumes, checked against Optuna itself: under aerotune's HyperBand pruner (bracket
    scope) TPE draws at random only its first ``startup`` trials of the whole study, not of each bracket."""
    import types

    import optuna

    from aerotune.tune.optuna_study import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    desc = types.SimpleNamespace(
        seed=0, sampler="tpe", startup_trials=3, pruner="hyperband", sampler_scope="bracket",
        min_resource=1, max_resource=9, reduction_factor=3,
    )  # fmt: skip
    sampler = make_sampler(desc, 0)
    at_random: set[int] = set()
    draw = sampler._random_sampler.sample_independent

    def recorded(study, trial, name, distribution):
        at_random.add(trial.number)
        return draw(study, trial, name, distribution)

    sampler._random_sampler.sample_independent = recorded
    study = optuna.create_study(study_name="s", sampler=sampler, pruner=make_pruner(desc))  # the plan's brackets

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for epoch in range(1, 10):
            trial.report(x + 1 / epoch, epoch)
            if epoch < 9 and trial.should_prune():
                raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=12)
    brackets = _plan(12, baseline=False).trial_brackets
    per_bracket = {n for n in range(12) if brackets[:n].count(brackets[n]) < 3}  # what counting per bracket says
    assert per_bracket > {0, 1, 2}
    assert at_random == {0, 1, 2}


def test_the_dry_run_quotes_the_dubai_replay_at_the_nearest_budget():
    from aerotune.tune.plan import budget_lines

    (line,) = budget_lines(_plan(40, baseline=True, max_epochs_total=144))  # 144 epochs of R = 9: 16 trainings
    assert line.startswith("budget: about 16.0 full trainings of 9 epochs (--max-epochs-total 144)")
    assert "replay at 16 full trainings" in line and "random sampling, the default" in line
    (line,) = budget_lines(_plan(10, baseline=True, max_epochs_total=72))
    assert "replay at 8 full trainings" in line and "nothing measurable over the default recipe" in line
    (line,) = budget_lines(_plan(400, baseline=True))  # no cap: the expected epochs
    assert "(the expected epochs)" in line and "replay at 384 full trainings" in line
