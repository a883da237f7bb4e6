"""The command line: one module per stage parses its options, calls that stage's function, prints the outcome.

``main`` turns every ``AerotuneError`` (and every file-system error) into one line on stderr and exit code 2;
``--debug`` shows the traceback. Ctrl-C (SIGINT) and SIGTERM end a command the same way: the stages' clean-up
runs (no half-written file, a folder this call made and that holds nothing worth keeping is removed), then one
line and exit code 130 (SIGINT) or 143 (SIGTERM). The stages never import this package: it sits above all of them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import NoReturn

from aerotune import __version__, interrupts
from aerotune.commands import data, demo, predict, report, train, tune
from aerotune.errors import AerotuneError, first_line, one_line

#: The stages' command modules, in the order ``aerotune --help`` lists them.
MODULES = (data, train, tune, report, predict, demo)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option and where the help is, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="aerotune",
        description="Tuned U-Net segmentation of aerial imagery: patches, training, HyperBand "
        "tuning, reports and whole-scene prediction.",
    )
    parser.add_argument("--version", action="version", version=f"aerotune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors in the log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in MODULES:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (0 done, 1 problems found, 2 bad input, 3 run did not complete)."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 must still print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aerotune").setLevel(level)
    if not args.debug:  # third-party deprecation warnings are not the user's business (--debug shows them)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    interrupts.install()  # Ctrl-C and SIGTERM (a job scheduler's stop) end the command at its next safe point
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        then = "rerun the same command to resume" if getattr(args, "resumable", False) else "no partial output was left"
        print(f"aerotune: interrupted; {then}", file=sys.stderr)
        return 143 if isinstance(exc, interrupts.Terminated) else 130
    except BrokenPipeError:  # the reader of our output went away (| head): nothing more to say
        sys.stderr.close()
        return 141
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        if args.debug:
            raise
        print(f"aerotune: error: {describe(exc, getattr(args, 'out', None))}", file=sys.stderr)
        return 2 if isinstance(exc, (AerotuneError, OSError, MemoryError)) else 1


def describe(exc: BaseException, out: str | None = None) -> str:
    """One line for any error: ours as written; file-system and memory errors with a fix (naming the file, or
    else the command's output ``out``: a write that failed without a file name); others as a bug."""
    if isinstance(exc, AerotuneError):
        return one_line(exc)
    if isinstance(exc, OSError):
        from pathlib import Path

        from aerotune.files import describe_os_error

        return describe_os_error(exc, Path(out) if out else None, "write the output" if out else "write")
    if isinstance(exc, MemoryError):
        return (
            "out of memory; use a smaller --patch-size (training: also a smaller --set train.batch_size=N; "
            "predict and evaluate: a smaller --batch-size), or a machine with more memory"
        )
    return (
        f"internal error ({type(exc).__name__}: {first_line(exc, 300)}); this is a bug in aerotune: rerun with "
        "--debug and report the traceback"
    )
