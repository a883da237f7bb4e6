"""The worker loop: ask Optuna for trials until the budget is spent, train each, and report what happened.

Several workers (processes here, or on other machines) share one study through its storage; the lock
makes the trial count and the epoch cap exact across them. A failing trial never ends the study: an
out-of-memory error, a divergence or any exception marks that trial failed and the loop goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import socket
import time
import warnings
from multiprocessing.connection import wait
from pathlib import Path

from aerotune import interrupts
from aerotune.config import RunConfig, Value
from aerotune.errors import AerotuneError, first_line
from aerotune.tune.optuna_compat import study_storage, trial_id
from aerotune.tune.optuna_study import EPOCHS_KEY, OpenStudy, make_sampler, open_study, retry_trial
from aerotune.tune.records import StudyRecord, read_study
from aerotune.tune.settings import WorkerBudget
from aerotune.tune.trial import TrialCallback, free_memory, is_oom, resume_from_previous

log = logging.getLogger(__name__)


def run_worker_processes(out: Path, storage_url: str | None, budget: WorkerBudget) -> None:
    """Run ``budget.workers`` worker processes and wait for them.

    Ctrl-C reaches every process of the group; SIGTERM (a job scheduler) may reach only this one. Either way
    this process asks every worker still running to stop (SIGTERM: it fails its trial for a retry on resume
    and exits quietly), waits for them, and raises ``KeyboardInterrupt``. A worker that ended by an
    interrupt (exit code 130 or 143) stops the others too.
    """
    ctx = multiprocessing.get_context("spawn")
    gpus = _gpu_count()
    level = logging.getLogger("aerotune").getEffectiveLevel()
    keep_sigint = signal.getsignal(signal.SIGINT) != signal.SIG_IGN  # ignored in a background job: keep it so
    procs = []
    try:
        for i in range(budget.workers):
            env = {"CUDA_VISIBLE_DEVICES": str(i % gpus)} if gpus > 1 else {}
            p = ctx.Process(
                target=_worker_process,
                args=(str(out), storage_url, budget, i, env, level, keep_sigint),
                name=f"aerotune-worker-{i}",
            )
            with interrupts.ignored_by_children():  # until the worker has set up its own handlers
                p.start()
            procs.append(p)
            log.info("started worker %d (pid %d)", i, p.pid)
        live = list(procs)
        with _signal_wakeup() as woken:
            while live:
                # The handler only records a signal, so the wait goes on after it: the signal's wake-up byte
                # ends it, and the check raises it (the timeout is a fallback).
                if woken in wait([*(p.sentinel for p in live), woken], timeout=1.0):
                    with contextlib.suppress(BlockingIOError):
                        os.read(woken, 512)
                interrupts.check()
                for p in [p for p in live if not p.is_alive()]:
                    live.remove(p)
                    if p.exitcode in INTERRUPTED:
                        raise KeyboardInterrupt
                    if p.exitcode:
                        log.warning(
                            "worker %s ended with exit code %s; its trial, if any, is retried", p.name, p.exitcode
                        )
    except KeyboardInterrupt:
        _stop(procs)
        raise


@contextlib.contextmanager
def _signal_wakeup():
    """A pipe that receives a byte whenever a signal arrives, in whichever thread (``signal.set_wakeup_fd``);
    yields its read end, to wait on beside the workers. Outside the main thread: a pipe nothing writes to."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    old = None
    try:
        with contextlib.suppress(ValueError):  # not the main thread
            old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        yield r
    finally:
        if old is not None:
            signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)


#: Exit codes of a worker that was interrupted (SIGINT, SIGTERM), or killed by SIGTERM before it had set up.
INTERRUPTED = (130, 143, -signal.SIGTERM)


def _stop(procs: list) -> None:
    """Ask every live worker to stop and wait for it; one that does not stop within a minute is killed (its
    trial is then found stale by its heartbeat and retried on resume)."""
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


def _worker_process(
    out: str,
    storage_url: str | None,
    budget: WorkerBudget,
    index: int,
    env: dict[str, str],
    level: int,
    sigint: bool,
) -> None:
    # Started with SIGINT ignored and SIGTERM fatal: logging is set up before either can interrupt it.
    os.environ.update(env)
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s worker {index} %(name)s: %(message)s")
    logging.getLogger("aerotune").setLevel(level)
    try:
        interrupts.install(sigint=sigint)  # the first SIGINT or SIGTERM stops this worker at its next check
        import optuna  # this process's entry point: it configures its own logging, as the CLI does

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        run_worker(Path(out), storage_url, budget, index=index)
    except KeyboardInterrupt as exc:
        raise SystemExit(143 if isinstance(exc, interrupts.Terminated) else 130) from None


# ---------------------------------------------------------------- one worker


def run_worker(
    out: Path, storage_url: str | None, budget: WorkerBudget, *, index: int = 0, opened: OpenStudy | None = None
) -> int:
    """Run trials of the study in ``out`` until the budget is used; return how many this worker ran."""
    from aerotune.data.dataset import Split
    from aerotune.data.patches import open_cache

    desc = read_study(out)
    study = opened or open_study(desc, out, storage_url, heartbeat=int(desc.heartbeat))
    worker = _Worker(
        out,
        desc,
        study,
        budget,
        open_cache(desc.cache),
        Split.from_dict(json.loads((out / "split.json").read_text())),
        index,
    )
    try:
        return worker.loop()
    finally:
        if opened is None:
            study.close()


class _Worker:
    def __init__(
        self, out: Path, desc: StudyRecord, opened: OpenStudy, budget: WorkerBudget, cache, split, index: int
    ) -> None:
        from aerotune.tune.space_parse import parse_space

        self.out, self.desc, self.budget, self.cache, self.split = out, desc, budget, cache, split
        self.study, self.lock, self.storage = opened.study, opened.lock, opened.storage
        self.space = parse_space(desc.space, where="study.json")
        self.base = RunConfig.from_dict(desc.base_config, where="study.json")
        cores = os.cpu_count() or 1
        runtime: dict[str, Value] = {}
        if budget.workers > 1:
            runtime["train.progress"] = False
            if self.base.train.threads == 0:
                runtime["train.threads"] = max(1, cores // budget.workers)
        self.runtime = runtime
        self.heartbeat = int(desc.heartbeat)
        self.index = index
        self.maximize = desc.maximize

    # -- scheduling

    def loop(self) -> int:
        deadline = None if self.budget.timeout is None else time.monotonic() + self.budget.timeout
        ran = 0
        while True:
            interrupts.check()
            trial, why = self._next_trial(deadline)
            if trial is None and why:
                log.info("worker %d: no more trials (%s)", self.index, why)
                return ran
            if trial is None:  # others are still running; wait for them to finish or go stale
                interrupts.sleep(min(self.heartbeat, 2))
                continue
            self._run(trial)
            ran += 1

    def _next_trial(self, deadline: float | None):
        import optuna
        from optuna.trial import TrialState

        with self.lock.hold(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental-feature and heartbeat-with-ask notes
            optuna.storages.fail_stale_trials(self.study)
            if deadline is not None and time.monotonic() > deadline:
                return None, "timeout"
            cap = self.budget.max_epochs_total
            if cap is not None and self.study.user_attrs.get(EPOCHS_KEY, 0) >= cap:
                return None, f"epoch budget of {cap} spent"
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            counted = sum(1 for t in trials if "failed_trial" not in t.system_attrs)
            if waiting or counted < self.budget.trials:
                self.study.sampler = make_sampler(self.desc, len(trials))
                return self.study.ask(), ""
            if any(t.state == TrialState.RUNNING for t in trials):
                return None, ""
            return None, f"{self.budget.trials} trials done"

    def claim_epoch(self) -> int | None:
        """Count one more epoch against the cap; None when the cap is reached."""
        with self.lock.hold():
            spent = int(self.study.user_attrs.get(EPOCHS_KEY, 0))
            cap = self.budget.max_epochs_total
            if cap is not None and spent >= cap:
                return None
            self.study.set_user_attr(EPOCHS_KEY, spent + 1)
            return spent + 1

    # -- one trial

    def _run(self, trial) -> None:
        """Train one trial under a heartbeat and tell the study how it ended."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        from aerotune.tune.storage import Heartbeat

        number = trial.number
        baseline = bool(trial.user_attrs.get("baseline"))
        default = bool(trial.user_attrs.get("default_recipe"))
        run_dir = self.out / "trials" / f"{number:04d}"
        cb = TrialCallback(self, trial, exempt=baseline or default)  # both train every epoch: the report's columns
        state, value = TrialState.FAIL, None
        t0 = time.time()
        try:
            with Heartbeat(self.storage, trial_id(trial), self.heartbeat):
                overrides = self._set_up(trial, run_dir, baseline=baseline, default=default)
                result, status, reason = self._train(trial, overrides, run_dir, cb)
        except KeyboardInterrupt:  # anywhere in the trial, from its first parameter to its last epoch
            self._interrupted(trial, cb, t0)
            raise
        except UpdateFinishedTrialError:
            log.warning("trial %d was failed by another worker (stale heartbeat); dropping it", number)
            return
        if result is not None:
            state, status, reason, value = self._outcome(result, cb)
        self._tell(trial, state, status, reason, value, cb, t0)
        log.info(
            "trial %d: %s after %d epoch(s)%s%s",
            number,
            status,
            cb.epochs_done,
            "" if value is None else f", {self.desc.metric} {value:.4f}",
            f" ({reason})" if reason else "",
        )

    def _set_up(self, trial, run_dir: Path, *, baseline: bool, default: bool) -> dict[str, Value]:
        """Draw (or fix) the trial's values, record them on the trial and return the config overrides it trains."""
        from aerotune.tune.space import config_values

        values = self.space.suggest(trial)
        fixed = (self.desc.baseline_values if baseline else self.desc.default_values if default else None) or {}
        values = config_values(self.space, {**values, **{k: v for k, v in fixed.items() if k in values}})
        # settings the trial fixes outside the space (trial 0's recipe): trained with, not searched
        recipe = config_values(self.space, {k: v for k, v in fixed.items() if k not in values})
        trial.set_user_attr("params", values)
        if recipe:
            trial.set_user_attr("recipe", recipe)
        trial.set_user_attr("run_dir", str(run_dir.relative_to(self.out)))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        resume_from_previous(self.study, self.out, trial, run_dir)
        log.info(
            "trial %d%s: %s",
            trial.number,
            " (baseline)" if baseline else " (default recipe)" if default else "",
            ", ".join(f"{k}={v}" for k, v in values.items()),
        )
        return {**recipe, **values, **self.runtime}

    def _train(self, trial, overrides: dict[str, Value], run_dir: Path, cb: TrialCallback):
        """``(result, status, reason)`` of training the trial; result None when it failed (never ends the study)."""
        from optuna.exceptions import UpdateFinishedTrialError

        from aerotune.train.fit import fit

        try:
            config = self.base.with_overrides(overrides, where=f"trial {trial.number}")
            return fit(config, self.cache, run_dir, split=self.split, callback=cb), "failed", ""
        except (KeyboardInterrupt, UpdateFinishedTrialError):
            raise
        except Exception as exc:  # noqa: BLE001 - a failing trial never ends the study
            if is_oom(exc):
                reason = first_line(exc)
                free_memory()
                return None, "out of memory", reason
            if isinstance(exc, AerotuneError):
                return None, "error", first_line(exc)
            log.exception("trial %d failed", trial.number)
            return None, "error", f"{type(exc).__name__}: {first_line(exc)}"

    def _interrupted(self, trial, cb: TrialCallback, t0: float) -> None:
        """Ctrl-C or SIGTERM stopped this trial: fail it and enqueue its retry, under the study lock (a worker
        choosing its next trial at the same moment sees both or neither); a second signal changes nothing."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            with self.lock.hold():
                self._tell(
                    trial, TrialState.FAIL, "interrupted", "stopped by the user; retried on resume", None, cb, t0
                )
                with contextlib.suppress(UpdateFinishedTrialError, KeyError):
                    frozen = study_storage(self.study).get_trial(trial_id(trial))
                    if frozen.state == TrialState.FAIL and frozen.user_attrs.get("status") == "interrupted":
                        retry_trial(self.study, frozen)
        except Exception as exc:  # noqa: BLE001 - the interrupt goes on; the trial is then found stale and retried
            log.warning(
                "trial %d: could not record the interrupt (%s); the next run finds it stale and retries it",
                trial.number,
                first_line(exc),
            )

    def _outcome(self, result, cb: TrialCallback):
        from optuna.trial import TrialState

        if cb.failure:
            return TrialState.FAIL, cb.failure[0], cb.failure[1], None
        if result.status == "diverged":
            return TrialState.FAIL, "diverged", result.reason, None
        if cb.pruned:
            return TrialState.PRUNED, "pruned", f"pruned after epoch {cb.epochs_done}", None
        if cb.out_of_budget:
            return TrialState.PRUNED, "budget", "the study's epoch budget (--max-epochs-total) was spent", None
        if result.status != "completed":
            return TrialState.FAIL, result.status, result.reason, None
        metric = self.desc.metric
        vals = [r[metric] for r in result.history if metric in r and math.isfinite(r[metric])]
        if not vals:
            return TrialState.FAIL, "error", f"no finite {metric} in the training history", None
        return TrialState.COMPLETE, "complete", "", (max(vals) if self.maximize else min(vals))

    def _tell(self, trial, state, status: str, reason: str, value: float | None, cb: TrialCallback, t0: float) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            trial.set_user_attr("status", status)
            trial.set_user_attr("reason", reason)
            trial.set_user_attr("epochs", cb.epochs_done)
            trial.set_user_attr("epoch_ticks", cb.ticks)
            trial.set_user_attr("seconds", round(time.time() - t0, 3))
            self.study.tell(trial, value if state.name == "COMPLETE" else None, state=state)
        except UpdateFinishedTrialError:
            log.warning("trial %d was already finished by another worker", trial.number)
