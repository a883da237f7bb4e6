"""The report stage: evaluate tuned and baseline models and write HTML, Markdown and JSON.

``make_report`` and ``ReportResult`` are imported lazily, so importing this package (as the CLI does to
register its sub-command) loads neither torch nor matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportResult", "make_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from aerotune.report import make

        return getattr(make, name)
    raise AttributeError(f"module 'aerotune.report' has no attribute {name!r}")
