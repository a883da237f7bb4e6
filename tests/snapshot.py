"""Snapshot a folder tree (relative path -> content hash, symlink target or "dir") to prove nothing changed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: files by sha256, symlinks by target (never followed), folders as "dir"."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            key = os.fsencode(p.relative_to(root)).decode("utf-8", "backslashreplace")
            if p.is_symlink():
                out[key] = "link:" + os.fsencode(os.readlink(p)).decode("utf-8", "backslashreplace")
            elif p.is_dir():
                out[key] = "dir"
            else:
                try:
                    out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError as exc:  # an unreadable file: its metadata stands in for its bytes
                    st = p.stat()
                    out[key] = f"unreadable:{exc.errno}:{st.st_mode}:{st.st_size}:{st.st_mtime_ns}"
    return out
