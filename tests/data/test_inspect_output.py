"""``aerotune data inspect`` prints about a screen by default; --verbose and --json list everything."""

from __future__ import annotations

import json

from helpers import make_tiled
from safety import run_cli


def wrong_palette(tmp_path):
    """12 pairs whose masks use the Dubai colours, and a classes file with other colours: every file is wrong."""
    root = make_tiled(tmp_path / "data", tiles=3, per_tile=4, size=(24, 16))
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"Sea": "#0000FF", "Sand": "#FFFF00"}))
    return root, classes


def test_default_output_is_capped_and_verbose_lists_everything(tmp_path):
    root, classes = wrong_palette(tmp_path)
    short = run_cli("data", "inspect", root, "--classes", classes, "--patch-size", "16")
    assert short.returncode == 1, short.stderr
    text = short.stdout.decode()
    listed = json.loads(run_cli("data", "inspect", root, "--classes", classes, "--json").stdout)
    files = sum(len(c["files"]) for c in listed["colors"])
    assert files > 6 * 3  # more than the default shows
    assert "more file(s); --verbose lists every one" in text and "… and 4 more pair(s)" in text
    assert sum(line.startswith("  /") for line in text.splitlines()) == 6 * 3
    assert len(text.splitlines()) < 50  # about a screen
    full = run_cli("data", "inspect", root, "--classes", classes, "--patch-size", "16", "--verbose")
    assert full.returncode == 1
    lines = full.stdout.decode().splitlines()
    assert "… and" not in full.stdout.decode() and sum(line.startswith("  /") for line in lines) == files


def test_help_says_that_problems_exit_1():
    text = run_cli("data", "inspect", "--help").stdout.decode()
    assert "1 when it finds problems" in " ".join(text.split())
