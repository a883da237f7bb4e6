"""Snapshots of a folder tree, to prove that a refused command left every existing file as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (files, folders, symlinks), relative path -> what it holds.

    Files map to a SHA-256 of their bytes, folders to ``dir``, symlinks to their target; unreadable files
    to their size. Paths are kept as bytes-safe text so names that are not valid UTF-8 count too.
    """
    root = Path(root)
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")
            if path.is_symlink():
                found[key] = "link:" + os.fsencode(os.readlink(path)).decode("utf-8", "backslashreplace")
            elif path.is_dir():
                found[key] = "dir"
            else:
                try:
                    found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    found[key] = f"unreadable:{path.lstat().st_size}"
    return found


def assert_unchanged(before: dict[str, str], root: Path) -> None:
    """Fail with the first difference when the tree under ``root`` differs from ``before``."""
    after = snapshot(root)
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not (added or removed or changed), f"added {added[:5]}, removed {removed[:5]}, changed {changed[:5]}"
