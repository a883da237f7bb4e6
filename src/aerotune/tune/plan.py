"""The study's plan for the pruner it uses (``--pruner hyperband``, ``sha`` or ``none``): brackets, rungs, and
expected trials and epochs, exactly as Optuna assigns them.

Mirrors ``optuna.pruners.HyperbandPruner`` (Optuna 4/5): ``n_brackets = floor(log_eta(R / r)) + 1``;
bracket ``b`` is a successive-halving pruner with ``min_early_stopping_rate = b``, so its rungs are at
``r * eta**(b + k)`` epochs; a trial's bracket is ``crc32(f"{study_name}_{number}")`` modulo the sum of
the brackets' trial budgets ``ceil(n_brackets * eta**s / (s + 1))`` with ``s = n_brackets - 1 - b``.

Epochs are 1-based steps here (a trial is judged after exactly ``r * eta**k`` epochs), and the last
epoch is never a pruning point: a trial that reaches ``R`` epochs completes.
"""

from __future__ import annotations

import binascii
import math
from dataclasses import dataclass, field

from aerotune.reference import REFERENCE_EPOCHS


@dataclass(frozen=True)
class Bracket:
    index: int
    rungs: list[int]  # epochs after which a trial of this bracket may be stopped
    share: int  # Optuna's trial allocation budget for this bracket
    expected_epochs: float  # per trial, if 1/eta of the trials survive each rung

    @property
    def min_epochs(self) -> int:
        return self.rungs[0] if self.rungs else 0


@dataclass(frozen=True)
class Plan:
    """What a study will do; ``str(plan)`` is the ``--dry-run`` text."""

    study_name: str
    min_resource: int
    max_resource: int
    reduction_factor: int
    brackets: list[Bracket]
    trials: int
    baseline: bool
    max_epochs_total: int | None
    trial_brackets: list[int] = field(default_factory=list)  # bracket of trial 0, 1, ...
    pruner: str = "hyperband"  # hyperband, sha (one bracket, rungs at r * eta**k) or none (no rung)
    default_trial: bool = False  # trial 1 is the default recipe untuned, never pruned

    def never_pruned(self, n: int) -> bool:
        """Trial ``n`` trains every epoch: the baseline (0) and the default recipe (1)."""
        return (self.baseline and n == 0) or (self.baseline and self.default_trial and n == 1)

    @property
    def expected_epochs(self) -> float:
        total = 0.0
        for n, b in enumerate(self.trial_brackets):
            total += self.max_resource if self.never_pruned(n) else self.brackets[b].expected_epochs
        return total

    @property
    def max_epochs(self) -> int:
        return self.max_resource * len(self.trial_brackets)

    @property
    def min_epochs(self) -> int:
        total = 0
        for n, b in enumerate(self.trial_brackets):
            full = self.never_pruned(n) or not self.brackets[b].rungs
            total += self.max_resource if full else self.brackets[b].min_epochs
        return total

    def lines(self, reference_epochs: int = REFERENCE_EPOCHS) -> list[str]:
        eta, r, big_r = self.reduction_factor, self.min_resource, self.max_resource
        if self.pruner == "none":
            out = [
                f"plan without pruning (--pruner none) for study {self.study_name!r}: every trial trains "
                f"R = {big_r} epochs"
            ]
        elif self.pruner == "sha":
            out = [
                f"successive-halving plan (--pruner sha) for study {self.study_name!r}: max resource R = {big_r} "
                f"epochs, min resource r = {r}, reduction factor eta = {eta}: one bracket"
            ]
        else:
            out = [
                f"HyperBand plan for study {self.study_name!r}: max resource R = {big_r} epochs, min resource "
                f"r = {r}, reduction factor eta = {eta}: {len(self.brackets)} bracket(s)"
            ]
        counts = [self.trial_brackets.count(b.index) for b in self.brackets]
        for n, b in enumerate(self.trial_brackets[:2]):
            if self.never_pruned(n):
                counts[b] -= 1
        for b, n in zip(self.brackets, counts):
            rungs = (
                "judged after epoch(s) " + ", ".join(str(x) for x in b.rungs)
                if b.rungs
                else "no rung (every trial trains R epochs)"
            )
            out.append(f"  bracket {b.index}: {rungs}; {n} trial(s); about {b.expected_epochs:.1f} epochs per trial")
        if self.baseline:
            out.append(
                f"  trial 0 is the baseline (the reference's initial parameters and recipe): never pruned, "
                f"{big_r} epochs"
            )
        if self.never_pruned(1):
            out.append(f"  trial 1 is aerotune's default recipe untuned: never pruned, {big_r} epochs")
        out.append(
            f"{self.trials} trial(s): expected {self.expected_epochs:.0f} epochs (at least "
            f"{self.min_epochs}, at most {self.max_epochs} if nothing is pruned)"
        )
        if self.max_epochs_total is not None:
            out.append(
                f"hard cap: {self.max_epochs_total} epochs over all trials (--max-epochs-total); the study "
                "stops when it is reached"
            )
        warning = self.budget_warning()
        if warning:
            out.append(f"warning: {warning}")
        out.append(f"the reference spent {reference_epochs:,} epochs on 72 trials")
        if self.pruner == "none":
            return out
        out.append(
            "(expected epochs assume 1/eta of the trials pass each rung; Optuna promotes asynchronously, "
            "so the first trials of a rung pass more often)"
        )
        return out

    def _round_epochs(self, epochs: int) -> int:
        """Epochs of the smallest round that can prune: eta trials judged at the first rung, one trained on to
        ``epochs`` (no rung, ``--pruner none``: one more trial of ``epochs``)."""
        r, eta = self.min_resource, self.reduction_factor
        return eta * r + (epochs - r) if self.pruner != "none" and epochs > r else epochs

    def budget_warning(self) -> str | None:
        """Why ``--max-epochs-total`` cannot work, and what would: None when it pays for the baseline trial (all
        ``train.epochs``, never pruned) plus one round of the pruner's first bracket."""
        cap, big_r, r, eta = self.max_epochs_total, self.max_resource, self.min_resource, self.reduction_factor
        base = big_r if self.baseline else 0
        need = base + self._round_epochs(big_r)
        if cap is None or cap >= need:
            return None
        fits = [e for e in range(big_r - 1, 0, -1) if (e if self.baseline else 0) + self._round_epochs(e) <= cap]
        fits = [e for e in fits if self.pruner == "none" or e > r]  # below r + 1 epochs no trial is ever judged
        if self.pruner == "none":
            round_text = f"one more trial ({big_r} epochs)"
        else:
            round_text = f"one pruning round ({eta} trials judged after {r} epoch(s), one trained on to {big_r})"
        what = f"the baseline trial ({big_r} epochs: it trains all --epochs and is never pruned) plus " if base else ""
        fixes = [f"raise --max-epochs-total to at least {need}"]
        if fits:
            fixes.append(f"lower --epochs to {fits[0]}")
        if self.baseline and self._round_epochs(big_r) <= cap:
            fixes.append("drop the baseline with --no-baseline")
        return (
            f"--max-epochs-total {cap} cannot pay for {what}{round_text}: {need} epochs, so the study ends "
            f"before it can compare or prune anything; {', or '.join(fixes)}"
        )

    def __str__(self) -> str:
        return "\n".join(self.lines())


def n_brackets(min_resource: int, max_resource: int, reduction_factor: int) -> int:
    return math.floor(math.log(max_resource / min_resource, reduction_factor)) + 1


def bracket_shares(n: int, reduction_factor: int) -> list[int]:
    return [math.ceil(n * reduction_factor ** (n - 1 - b) / (n - b)) for b in range(n)]


def bracket_of(study_name: str, number: int, shares: list[int]) -> int:
    """The bracket Optuna's HyperbandPruner gives trial ``number`` of study ``study_name``."""
    n = binascii.crc32(f"{study_name}_{number}".encode()) % sum(shares)
    for b, share in enumerate(shares):
        n -= share
        if n < 0:
            return b
    raise AssertionError("unreachable")


def rungs_of(bracket: int, min_resource: int, max_resource: int, reduction_factor: int) -> list[int]:
    rungs, k = [], 0
    while True:
        step = min_resource * reduction_factor ** (bracket + k)
        if step >= max_resource:
            return rungs
        rungs.append(step)
        k += 1


def expected_epochs(rungs: list[int], max_resource: int, reduction_factor: int) -> float:
    total, alive, last = 0.0, 1.0, 0
    for rung in rungs:
        total += alive * (rung - last)
        alive /= reduction_factor
        last = rung
    return total + alive * (max_resource - last)


def make_plan(
    *,
    study_name: str,
    min_resource: int,
    max_resource: int,
    reduction_factor: int,
    trials: int,
    baseline: bool,
    max_epochs_total: int | None = None,
    pruner: str = "hyperband",
    default_trial: bool = False,
) -> Plan:
    """The plan of the pruner the study uses: HyperBand's brackets, successive halving's one bracket (rungs at
    ``r * eta**k``, as ``SuccessiveHalvingPruner(min_early_stopping_rate=0)``), or none (every trial R epochs)."""
    if pruner in ("sha", "none"):
        rungs = rungs_of(0, min_resource, max_resource, reduction_factor) if pruner == "sha" else []
        brackets = [Bracket(0, rungs, 1, expected_epochs(rungs, max_resource, reduction_factor))]
        assigned = [0] * trials
    else:
        n = n_brackets(min_resource, max_resource, reduction_factor)
        shares = bracket_shares(n, reduction_factor)
        brackets = []
        for b in range(n):
            rungs = rungs_of(b, min_resource, max_resource, reduction_factor)
            brackets.append(Bracket(b, rungs, shares[b], expected_epochs(rungs, max_resource, reduction_factor)))
        assigned = [bracket_of(study_name, i, shares) for i in range(trials)]
    return Plan(
        study_name,
        min_resource,
        max_resource,
        reduction_factor,
        brackets,
        trials,
        baseline,
        max_epochs_total,
        assigned,
        pruner,
        default_trial,
    )


def sampler_lines(plan: Plan, *, sampler: str, startup: int) -> list[str]:
    """What the sampler will do in this study, and why (``--dry-run``): which trials TPE chooses and which are
    its random start-up trials. Optuna's TPE counts its ``startup`` finished trials over the whole study, every
    HyperBand bracket included, whatever ``--sampler-scope`` says (it reads every trial; a test checks this
    against Optuna); trials 0 and 1, when fixed, are never drawn."""
    fixed = sum(plan.never_pruned(n) for n in range(min(2, plan.trials)))
    drawn = plan.trials - fixed
    if sampler == "random":
        return [f"sampler: random search (--sampler random): {drawn} trial(s) drawn at random from the space"]
    modelled = sum(1 for n in range(startup, plan.trials) if not plan.never_pruned(n))
    head = f"sampler: TPE, learning from every trial after {startup} start-up trial(s) (--startup-trials)"
    if modelled:
        return [f"{head}: about {modelled} of the {drawn} drawn trial(s) chosen by TPE, the rest at random"]
    return [
        f"{head}: the study has no more than {startup} trials, so all {drawn} drawn trial(s) are random start-up "
        f"trials (this study is random search); more trials (--trials) or fewer start-up trials "
        f"(--startup-trials) let TPE learn"
    ]


#: What the learning-curve replay on Dubai measured for each study budget, in full trainings of R epochs
#: (``benchmarks/hpo_replay/evidence.py``, docs/tuning.md): ``budget_lines`` quotes the row nearest a study's budget.
REPLAY_EVIDENCE: tuple[tuple[int, str], ...] = (
    (
        8,
        "with the default recipe untuned as a trial (0.0049 above the best configuration's validation loss), every "
        "method ended 0.0041-0.0043 above it, less than the seed noise (0.0025) better: at this budget tuning buys "
        "nothing measurable over the default recipe",
    ),
    (
        16,
        "HyperBand + random sampling kept a model 0.0036 [0.0029, 0.0043] above the best configuration (within the "
        "seed noise in 44 % of the studies), HyperBand + TPE 0.0057 [0.0047, 0.0067] (31 %), random search with "
        "full epochs 0.0046 (30 %): random sampling, the default",
    ),
    (
        384,
        "random search with full epochs found the best configuration by half the budget, HyperBand + TPE stopped "
        "0.0053 above it (a 65-configuration table is sparse for TPE)",
    ),
)


def budget_lines(plan: Plan) -> list[str]:
    """The study's budget in full trainings of R epochs, and what the Dubai replay measured at the nearest budget
    (``--dry-run``): whether tuning can pay at this budget, and which method did best there."""
    big_r, cap = plan.max_resource, plan.max_epochs_total
    epochs = plan.expected_epochs if cap is None else min(cap, plan.expected_epochs)
    full = epochs / big_r
    where = f"--max-epochs-total {cap}" if cap is not None and cap <= plan.expected_epochs else "the expected epochs"
    near, text = min(REPLAY_EVIDENCE, key=lambda row: abs(math.log(row[0] / max(full, 0.5))))
    return [
        f"budget: about {full:.1f} full trainings of {big_r} epochs ({where}); on the Dubai learning-curve replay at "
        f"{near} full trainings (docs/tuning.md): {text}"
    ]
