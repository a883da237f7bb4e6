"""``train --restart`` over an earlier run: the new patches replace the run's own only once they are checked."""

from __future__ import annotations

from pathlib import Path


def restart_cache(data: str, config, out: Path, *, progress=None):
    """``--restart`` over an earlier run: new patches are cut beside the run's own and checked as training will
    check them (settings, split) before they replace the run's, so a refused restart leaves the earlier run
    whole (its checkpoints still beside the patches they were trained on)."""
    from aerotune.data.dataset import make_split
    from aerotune.data.patches import is_cache, open_cache
    from aerotune.data.run_data import cache_for, check_cache_current
    from aerotune.errors import AerotuneError, DatasetError
    from aerotune.outputs import writing

    current = out / "cache"
    try:
        check_cache_current(data, config.data, current, fix="")
        unchanged = is_cache(data) or is_cache(current)
    except DatasetError:
        unchanged = False
    if unchanged:  # nothing to cut: training checks the patches before it writes anything
        return cache_for(data, config.data, current, progress=progress)
    with writing(current, "cache", inputs=[data], replace=True) as place:
        try:
            make_split(cache_for(data, config.data, place.path, progress=progress), config.data)
            config.validate()
        except AerotuneError as exc:
            if str(place.path) in str(exc):  # name the run's cache, not the temporary folder
                raise type(exc)(str(exc).replace(str(place.path), str(current))) from None
            raise
    return open_cache(current)
