"""Errors that reach users as one line: what was found, where, and what to do."""

from __future__ import annotations


class AerotuneError(Exception):
    """Base class for every error caused by bad input or settings.

    The CLI prints ``str(error)`` as a single line and exits with ``exit_code``.
    """

    exit_code = 2


class ConfigError(AerotuneError):
    """A config file, key or value is wrong."""


class DatasetError(AerotuneError):
    """The dataset folder, an image or a mask is unusable."""


class PaletteError(AerotuneError):
    """Mask colours and classes do not match."""


class SearchSpaceError(AerotuneError):
    """The tuning search space is malformed."""


class RunError(AerotuneError):
    """A run folder is missing, incomplete or incompatible."""


class MissingExtraError(AerotuneError):
    """An optional dependency is needed for this command."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this command needs the optional package '{module}': install it with: pip install \"aerotune[{extra}]\""
        )


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (its type name when empty), at most ``limit`` characters."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


def one_line(exc: BaseException, limit: int = 2000) -> str:
    """The first line of an exception's message within ``limit`` characters: a longer one loses its middle
    (the lists of colours or files), never its end, where our messages say what to do."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(line) <= limit:
        return line
    tail = limit // 3
    return f"{line[: limit - tail - 3]} … {line[-tail:]}"


class OutputError(DatasetError, RunError):
    """An output path cannot be used: it is not ours, overlaps an input, or the file system refused a write.

    It is also a ``DatasetError`` and a ``RunError`` because the stages raised those for the same refusals
    before the output rule was shared; code that catches them keeps working.
    """
