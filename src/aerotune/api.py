"""aerotune as a Python library: one function per stage, each running exactly what its command runs.

Each function turns its keyword arguments into the command's options and runs the command's own code: the same
parser (the same checks of every value), the same checks before anything is written, the same output rule and
lock, the same clean-up on an error or Ctrl-C. Bad input raises the ``AerotuneError`` whose message the command
line would print; nothing else is written. What the command prints is logged (logger ``aerotune.api``, INFO) and
returned in :attr:`Outcome.summary`; a library prints nothing.

Every option of a command is a keyword of its function, spelt as in ``aerotune COMMAND --help`` with ``_`` for
``-`` (``patch_size=32`` is ``--patch-size 32``; ``True`` gives a flag such as ``force``); ``overrides`` is
``--set``, a mapping such as ``{"train.epochs": 1}``. Unlike the command line, the API installs no lasting signal
handlers: while a stage writes, Ctrl-C is recorded and raised at its next safe point, and reaches the caller as
``KeyboardInterrupt`` after the stage has cleaned up.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aerotune.errors import ConfigError

__all__ = ["Outcome", "evaluate", "export", "predict", "prepare", "report", "train", "tune"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a stage wrote and what its command would have printed.

    Attributes:
        out: The folder (or, for :func:`export`, the file) the stage wrote.
        exit_code: The command's exit code: 0 done, 3 a training run that did not complete (diverged or stopped).
        summary: The lines the command prints on success.
    """

    out: Path
    exit_code: int
    summary: str

    @property
    def completed(self) -> bool:
        """Whether the stage finished its work (``exit_code`` 0)."""
        return self.exit_code == 0


def prepare(*, data: PathLike, out: PathLike, force: bool = False, **options: Any) -> Outcome:
    """Cut a dataset folder into a patch cache (``aerotune data prepare DATA --out OUT``).

    Args:
        data: Dataset folder (``images/`` + ``masks/``, or tile folders of them).
        out: Cache folder to write (an up-to-date cache there is kept).
        force: Rebuild even when the cache is up to date.
        **options: Any other option of ``aerotune data prepare``, e.g. ``patch_size=256``, ``classes_file=...``,
            ``mode="full"``; or ``overrides={"data.patch_size": 256}`` (``data.*`` settings only).

    Returns:
        The cache folder and the command's summary.

    Raises:
        AerotuneError: Bad input or settings (a ``DatasetError``, ``ConfigError``, ...); nothing was written.
    """
    overrides = options.pop("overrides", None) or {}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        if section not in ("", "data"):
            raise ConfigError(f"prepare: {key!r} is not a data.* setting; only data settings make a patch cache")
        options.setdefault(name, value)
    return _run(("data", "prepare"), [data], {"out": out, "force": force, **options}, out)


def train(
    *,
    data: PathLike,
    out: PathLike,
    config: PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    restart: bool = False,
    **options: Any,
) -> Outcome:
    """Train one U-Net into a run folder (``aerotune train --data DATA --out OUT``); an existing run of the same
    settings is resumed.

    Args:
        data: Dataset folder or patch cache.
        out: Run folder.
        config: Run config file (TOML, JSON or YAML) with data/model/train sections.
        overrides: Settings to change, as ``--set`` does: ``{"train.epochs": 1, "model.base_filters": 8}``.
        restart: Ignore an existing checkpoint in ``out``.
        **options: Any other option of ``aerotune train``, e.g. ``epochs=5``, ``patch_size=64``,
            ``test_fraction=0.2``.

    Returns:
        The run folder and the command's summary; ``exit_code`` 3 when the run did not complete.

    Raises:
        AerotuneError: Bad input or settings; nothing was written.
    """
    given = {"data": data, "out": out, "config": config, "overrides": overrides, "restart": restart}
    return _run(("train",), [], {**given, **options}, out)


def tune(
    *,
    data: PathLike,
    out: PathLike,
    config: PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    space: PathLike | None = None,
    **options: Any,
) -> Outcome:
    """Run or resume a HyperBand study (``aerotune tune --data DATA --out OUT``).

    Args:
        data: Dataset folder or patch cache.
        out: Run folder of the study (an existing one is resumed).
        config: Run config file for every trial.
        overrides: Settings to change, as ``--set`` does.
        space: Search space file (NNI JSON, or native TOML/YAML/JSON); default: the reference's.
        **options: Any other option of ``aerotune tune``, e.g. ``trials=12``, ``epochs=9``, ``workers=2``,
            ``baseline={"learning_rate": 0.01}``, ``no_baseline=True``, ``dry_run=True``.

    Returns:
        The study's run folder and the command's summary (with ``dry_run``: the plan).

    Raises:
        AerotuneError: Bad input or settings; nothing was written.
    """
    given = {"data": data, "out": out, "config": config, "overrides": overrides, "space": space}
    return _run(("tune",), [], {**given, **options}, out)


def report(*, run: PathLike, out: PathLike, baseline: PathLike | None = None, **options: Any) -> Outcome:
    """Evaluate the tuned model and a baseline and write the report (``aerotune report RUN --out OUT``).

    Args:
        run: Tuning run folder, or training run folder.
        out: Report folder (an earlier report there is replaced).
        baseline: Training run to compare with (default: the study's baseline trial).
        **options: Any other option of ``aerotune report``: ``seed``, ``max_train_patches``, ``thresholds``,
            ``device``.

    Returns:
        The report folder (``report.html``, ``report.md``, ``report.json``) and the command's summary.

    Raises:
        AerotuneError: Bad input or settings; nothing was written.
    """
    return _run(("report",), [run], {"out": out, "baseline": baseline, **options}, out)


def predict(*, inputs: PathLike | Iterable[PathLike], model: PathLike, out: PathLike, **options: Any) -> Outcome:
    """Segment whole scenes (``aerotune predict INPUTS --model MODEL --out OUT``).

    Args:
        inputs: Image files or folders of images (one path or several).
        model: Tuning run, training run, checkpoint (``.pt``) or exported ``.onnx``.
        out: Folder for the masks (never an input folder).
        **options: Any other option of ``aerotune predict``, e.g. ``overlay=True``, ``tta="flips"``,
            ``overlap=0.5``, ``device="cpu"``.

    Returns:
        The masks' folder and the command's summary.

    Raises:
        AerotuneError: Bad input or settings; nothing was written.
    """
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    return _run(("predict",), paths, {"model": model, "out": out, **options}, out)


def evaluate(*, model: PathLike, data: PathLike, out: PathLike, **options: Any) -> Outcome:
    """Metrics on whole stitched images (``aerotune evaluate MODEL --data DATA --out OUT``).

    Args:
        model: Tuning run, training run, checkpoint (``.pt``) or exported ``.onnx``.
        data: Dataset folder (``images/`` + ``masks/``, or tile folders).
        out: Folder for ``metrics.json``, ``evaluation.md`` and ``evaluation.html``.
        **options: Any other option of ``aerotune evaluate``, e.g. ``split="all"``, ``tta="flips"``.

    Returns:
        The evaluation folder and the command's summary.

    Raises:
        AerotuneError: Bad input or settings; nothing was written.
    """
    return _run(("evaluate",), [model], {"data": data, "out": out, **options}, out)


def export(*, model: PathLike, out: PathLike | None = None) -> Outcome:
    """Export a trained or tuned model to ONNX (``aerotune export MODEL``; needs ``aerotune[onnx]``).

    Args:
        model: Tuning run, training run or checkpoint (``.pt``).
        out: File to write (default: beside the checkpoint, or ``RUN/model.onnx``).

    Returns:
        The ONNX file and the command's summary.

    Raises:
        AerotuneError: Bad input, or the onnx extra is missing; nothing was written.
    """
    outcome = _run(("export",), [model], {"out": out}, out or model)
    written = Path(outcome.summary.split(": ONNX model", 1)[0]) if ": ONNX model" in outcome.summary else None
    return Outcome(out=written or outcome.out, exit_code=outcome.exit_code, summary=outcome.summary)


# ---------------------------------------------------------------- the command line, run from Python


def _run(command: tuple[str, ...], positionals: list[PathLike], options: Mapping[str, Any], out: PathLike) -> Outcome:
    """Parse ``command`` with ``options`` as the command line would and run the command's function."""
    from aerotune.commands import build_parser

    parser = build_parser()
    argv = [*command, *_options(_subparser(parser, command), options, command)]
    if positionals:  # after "--", so a path that starts with "-" stays a path
        argv += ["--", *map(os.fspath, positionals)]
    refused = io.StringIO()
    try:
        with contextlib.redirect_stderr(refused):
            args = parser.parse_args(argv)
    except SystemExit:  # argparse refused a value: the same message, as the error the CLI would print
        line = (refused.getvalue().strip().splitlines() or ["bad arguments"])[-1]
        message = line.split(": error: ", 1)[-1]
        raise ConfigError(message.rsplit(" (see ", 1)[0] if message.endswith("--help)") else message) from None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = int(args.func(args) or 0)
    summary = printed.getvalue().rstrip()
    for line in summary.splitlines():
        log.info("%s", line)
    return Outcome(out=Path(out), exit_code=code, summary=summary)


def _subparser(parser: argparse.ArgumentParser, command: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _options(parser: argparse.ArgumentParser, options: Mapping[str, Any], command: tuple[str, ...]) -> list[str]:
    """``{"patch_size": 32, "force": True, "overrides": {...}}`` -> ``["--patch-size=32", "--force", ...]``."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    argv: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        action = actions.get(name)
        if action is None:
            known = ", ".join(sorted(actions))
            raise ConfigError(f"{' '.join(command)}: unknown option {name!r}; its options are {known}")
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # a switch
            argv.append(flag)
        elif isinstance(action, argparse._AppendAction):  # --set and --baseline: KEY=VALUE, repeatable
            items = value.items() if isinstance(value, Mapping) else (str(v).split("=", 1) for v in value)
            argv += [f"{flag}={key}={_text(v)}" for key, v in items]
        else:
            argv.append(f"{flag}={_text(value)}")
    return argv


def _text(value: Any) -> str:
    """A value as the command line writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return json.dumps(value)  # true/false, null, numbers
