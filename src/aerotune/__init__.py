"""aerotune: tuned U-Net segmentation of aerial imagery.

The Python API is one function per stage, keyword-only, each running what its command runs
(docs/python-api.md)::

    import aerotune

    aerotune.prepare(data="data", out="cache", patch_size=64)
    aerotune.train(data="cache", out="run", overrides={"train.epochs": 1})

``prepare``, ``evaluate`` and ``export`` are the functions of :mod:`aerotune.api`. ``train``, ``tune``, ``report``
and ``predict`` are also the names of the stages' packages (``aerotune.train.fit``, ...), and Python binds a
package's name on its parent once it is imported, so a function of that name here would be replaced by the package
at the first import of ``aerotune.train.*``. Those four packages are therefore made callable instead: calling
``aerotune.train(...)`` calls :func:`aerotune.api.train`, and ``aerotune.train.fit`` is still the module. Importing
``aerotune`` stays light: the stages' packages are empty, and the API is imported on first use.
"""

from __future__ import annotations

import types
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "export", "predict", "prepare", "report", "train", "tune"]

#: Stages whose API function has a name of its own here (imported from aerotune.api on first use).
_FUNCTIONS = ("prepare", "evaluate", "export")


class _CallableStage(types.ModuleType):
    """A stage's package that, called, runs the stage's API function (:mod:`aerotune.api`)."""

    def __call__(self, **kwargs: Any) -> Any:
        return _api(self.__name__.rpartition(".")[2])(**kwargs)


def _api(name: str) -> Any:
    from aerotune import api

    return getattr(api, name)


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return _api(name)
    raise AttributeError(f"module 'aerotune' has no attribute {name!r}")


# Made callable here, when ``aerotune`` is first imported and before anything else can import them: ``from aerotune
# import train`` always finds the callable package.
from aerotune import predict, report, train, tune  # noqa: E402 - after the class they become

for _package in (predict, report, train, tune):
    _package.__class__ = _CallableStage
del _package
