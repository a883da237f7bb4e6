"""Hostile or odd image and mask files: each is refused with one line naming the file, and nothing changes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aerotune.data.masks import read_mask
from aerotune.data.sources import read_image
from aerotune.errors import DatasetError

from helpers import write_pair
from safety import assert_refused, run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def set_png_size(path: Path, width: int, height: int) -> None:
    """Rewrite a PNG header to claim another size (with a valid CRC): a decompression bomb's calling card."""
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_pair(root, "a", 64, 64, seed=1)
    write_pair(root, "b", 64, 64, seed=2, image_ext=".png")
    return root


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _mask_array(mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.full((64, 64), 300, np.uint16))
    if mode == "I":
        return Image.fromarray(np.full((64, 64), 70000, np.int32))
    if mode == "F":
        return Image.fromarray(np.full((64, 64), 0.5, np.float32))
    return Image.new(mode, (64, 64))


def _replace_mask(root: Path, mode: str, suffix: str) -> None:
    (root / "masks" / "b.png").unlink()
    _mask_array(mode).save(root / "masks" / f"b{suffix}")


CASES = {
    # name: (change the dataset, words the error line must hold)
    "bomb image": (
        lambda r: set_png_size(r / "images" / "b.png", 30000, 30000),
        ["b.png", "claims 30000x30000 = 900,000,000 pixels", "AEROTUNE_MAX_IMAGE_PIXELS="],
    ),
    "bomb mask": (
        lambda r: set_png_size(r / "masks" / "b.png", 20000, 10000),
        ["masks/b.png", "mask claims 20000x10000", "AEROTUNE_MAX_IMAGE_PIXELS="],
    ),
    "truncated image": (lambda r: _truncate(r / "images" / "a.jpg"), ["images/a.jpg", "cannot read image"]),
    "truncated mask": (lambda r: _truncate(r / "masks" / "b.png"), ["masks/b.png", "cannot read mask"]),
    "garbage image": (
        lambda r: (r / "images" / "a.jpg").write_bytes(b"GIF89a not really"),
        ["images/a.jpg", "not an image file"],
    ),
    "empty image": (lambda r: (r / "images" / "a.jpg").write_bytes(b""), ["images/a.jpg", "empty (0 bytes)"]),
    "empty mask": (lambda r: (r / "masks" / "b.png").write_bytes(b""), ["masks/b.png", "mask: the file is empty"]),
    "folder named like a mask": (
        lambda r: ((r / "masks" / "b.png").unlink(), (r / "masks" / "b.png").mkdir()),
        ["masks/b.png", "it is a folder, not a file"],
    ),
    "folder named like an image": (lambda r: (r / "images" / "c.jpg").mkdir(), ["images/c.jpg", "is a folder"]),
    "broken symlink image": (
        lambda r: ((r / "images" / "a.jpg").unlink(), (r / "images" / "a.jpg").symlink_to("/nowhere/a.jpg")),
        ["images/a.jpg", "broken symlink (-> /nowhere/a.jpg"],
    ),
    "looping symlink mask": (
        lambda r: ((r / "masks" / "b.png").unlink(), (r / "masks" / "b.png").symlink_to("b.png")),
        ["masks/b.png", "symlink loop"],
    ),
    "16-bit mask": (lambda r: _replace_mask(r, "I;16", ".png"), ["masks/b.png", "16-bit", "Building = 1"]),
    "32-bit mask": (lambda r: _replace_mask(r, "I", ".tif"), ["masks/b.tif", "16-bit image (mode I)"]),
    "float mask": (lambda r: _replace_mask(r, "F", ".tif"), ["masks/b.tif", "values, not integer class ids"]),
    "CMYK mask": (lambda r: _replace_mask(r, "CMYK", ".tif"), ["masks/b.tif", "mask is a CMYK image"]),
    "1-bit mask, colour palette": (lambda r: _replace_mask(r, "1", ".png"), ["#000000", "masks/b.png"]),
    "two images, one stem": (
        lambda r: Image.new("RGB", (64, 64)).save(r / "images" / "a.png"),
        ["images/a.png", "two files share the name a", "a.jpg"],
    ),
    "non-UTF-8 name without mask": (
        lambda r: Image.new("RGB", (64, 64)).save(os.fsencode(r / "images") + b"/caf\xe9.jpg"),
        ["images/caf\\xe9.jpg", "image has no mask", "masks/caf\\xe9.png"],
    ),
    "non-UTF-8 corrupt pair": (
        lambda r: (
            Image.new("RGB", (64, 64)).save(os.fsencode(r / "images") + b"/\xff.jpg"),
            Path(os.fsdecode(os.fsencode(r / "masks") + b"/\xff.png")).write_bytes(b"\x89PNG"),
        ),
        ["masks/\\xff.png", "cannot read mask"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_refused_by_prepare(tmp_path, case):
    change, needles = CASES[case]
    root = dataset(tmp_path)
    change(root)
    line = assert_refused(
        tmp_path, "data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32", needles=tuple(needles)
    )
    if "symlink" in case or "folder named" in case:  # the link or folder is the problem, not a missing partner
        assert "has no" not in line and "more problems" not in line, line


@pytest.mark.parametrize("case", ["bomb image", "looping symlink mask", "non-UTF-8 corrupt pair", "16-bit mask"])
def test_inspect_lists_the_problem_without_crashing(tmp_path, case):
    change, needles = CASES[case]
    root = dataset(tmp_path)
    change(root)
    proc = run_cli("data", "inspect", root, "--patch-size", "32")
    out = proc.stdout.decode("utf-8", "backslashreplace")
    assert proc.returncode == 1 and not proc.stderr, proc.stderr
    assert all(n in out for n in needles), out
    proc = run_cli("data", "inspect", root, "--patch-size", "32", "--json")
    assert proc.returncode == 1 and b"problems" in proc.stdout and not proc.stderr


def test_the_pixel_limit_can_be_raised_and_must_be_a_number(tmp_path):
    root = dataset(tmp_path)
    set_png_size(root / "images" / "b.png", 30000, 30000)
    set_png_size(root / "masks" / "b.png", 30000, 30000)
    args = ("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32")
    # Raised: the header passes the guard; the (fake) pixel data then fails to decode, as it should.
    line = assert_refused(
        tmp_path, *args, env={"AEROTUNE_MAX_IMAGE_PIXELS": "1000000000"}, needles=("images/b.png", "cannot read image")
    )
    assert "decompression" not in line
    assert_refused(
        tmp_path,
        *args,
        env={"AEROTUNE_MAX_IMAGE_PIXELS": "lots"},
        needles=("AEROTUNE_MAX_IMAGE_PIXELS='lots' is not a positive whole number",),
    )
    # Lowered: an ordinary image over the limit is refused.
    assert_refused(
        tmp_path,
        *args,
        env={"AEROTUNE_MAX_IMAGE_PIXELS": "1000"},
        needles=("claims 64x64 = 4,096 pixels, more than the limit of 1,000",),
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode, so chmod 000 proves nothing")
@pytest.mark.parametrize("which", ["images/a.jpg", "masks/b.png"])
def test_unreadable_file(tmp_path, which):
    root = dataset(tmp_path)
    (root / which).chmod(0)
    try:
        assert_refused(
            tmp_path,
            "data",
            "prepare",
            root,
            "--out",
            tmp_path / "cache",
            "--patch-size",
            "32",
            needles=(which, "permission denied"),
        )
    finally:
        (root / which).chmod(0o644)


def test_a_file_that_vanished_after_discovery(tmp_path):
    """Readers name the file and say what happened when it is gone by the time it is read."""
    for reader in (read_image, read_mask):
        with pytest.raises(DatasetError, match=r"gone\.png: cannot read .*file not found"):
            reader(tmp_path / "gone.png")


def test_a_bad_mask_mode_names_the_mode_for_an_index_palette(tmp_path):
    from aerotune.data.palette import Palette

    Image.new("CMYK", (4, 4)).save(tmp_path / "m.tif")
    with pytest.raises(DatasetError, match="mask is a CMYK image; masks of class ids must be"):
        read_mask(tmp_path / "m.tif", Palette.from_dict({"a": 0, "b": 1}))


def test_names_that_are_not_utf8_work_and_stay_printable(tmp_path):
    root = dataset(tmp_path)
    for part, ext in (("images", ".jpg"), ("masks", ".png")):
        os.rename(root / part / f"a{ext}", os.fsencode(root / part) + b"/caf\xe9" + ext.encode())
    proc = run_cli("data", "inspect", root, "--patch-size", "32")
    assert proc.returncode == 0 and b"caf\\xe9" in proc.stdout, proc.stderr
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "cache" / "manifest.json").read_text(encoding="utf-8")
    assert "images/caf\\\\xe9.jpg" in text  # the JSON escape of a backslash, then xe9
