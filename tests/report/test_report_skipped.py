"""A report names the pairs that --skip-bad-pairs left out of the training data, in its protocol box."""

from __future__ import annotations

import pytest
from PIL import Image

from helpers import write_pair
from safety import run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def test_protocol_box_lists_the_skipped_pairs(tmp_path):
    root = tmp_path / "data"
    for i, stem in enumerate(("a", "b", "c", "d")):
        write_pair(root, stem, 64, 64, seed=i)
    Image.new("RGB", (64, 64)).save(root / "images" / "lonely.jpg")
    (root / "masks" / "d.png").write_bytes(b"not a png")
    train = run_cli(
        "train",
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--patch-size",
        "32",
        "--epochs",
        "1",
        "--skip-bad-pairs",
        "--set",
        "model.depth=3",
        "--set",
        "model.base_filters=4",
    )
    assert train.returncode == 0, train.stderr
    report = run_cli("report", tmp_path / "run", "--out", tmp_path / "report", "--max-patches", "8")
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    line = next(row for row in md.splitlines() if "pairs left out" in row)
    assert "2 left out by --skip-bad-pairs" in line
    assert "images/lonely.jpg: image has no mask" in line and "masks/d.png" in line
    assert "pairs left out" in (tmp_path / "report" / "report.html").read_text()
