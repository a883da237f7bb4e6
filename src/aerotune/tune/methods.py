"""The pruner of a study, built from its description (``study.json``): one place for ``aerotune tune``
and the learning-curve replay (``benchmarks/hpo_replay``), so the replay measures what users run.

``pruner`` names the early-stopping rule over epochs; ``sampler`` and ``sampler_scope`` are read by
``study.make_sampler`` and here (the scope only matters for HyperBand):

* ``hyperband`` (default): Optuna's ``HyperbandPruner(r, R, eta)``; with ``sampler_scope = "study"`` it
  is wrapped in ``StudyWideHyperband`` so TPE learns from every bracket.
* ``sha``: Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive halving, ASHA): one bracket,
  rungs at ``r * eta**k`` epochs, a trial passes a rung when it is in the top ``1/eta`` so far.
* ``none``: nothing is stopped early: every trial trains R epochs (the reference's full-budget search).
"""

from __future__ import annotations

from typing import Any

PRUNERS = ("hyperband", "sha", "none")


def make_pruner(desc: dict[str, Any]):
    """The Optuna pruner for a study description (keys ``pruner``, ``min_resource``, ``max_resource``,
    ``reduction_factor``, ``sampler_scope``)."""
    import optuna

    kind = desc.get("pruner", "hyperband")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=desc["min_resource"],
                                                      reduction_factor=desc["reduction_factor"],
                                                      min_early_stopping_rate=0)
    if kind != "hyperband":
        raise ValueError(f"unknown pruner {kind!r}; use one of {', '.join(PRUNERS)}")
    pruner = optuna.pruners.HyperbandPruner(min_resource=desc["min_resource"], max_resource=desc["max_resource"],
                                            reduction_factor=desc["reduction_factor"])
    if desc.get("sampler_scope", "bracket") == "study":
        from aerotune.tune.study import StudyWideHyperband

        pruner = StudyWideHyperband(pruner)
    return pruner
