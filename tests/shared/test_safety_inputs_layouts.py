"""Folder names of public datasets, in the flat and the tiled layout, and every way of not finding them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aerotune.config import DataConfig
from aerotune.data.patches import prepare_patches
from aerotune.data.sources import discover

from helpers import PALETTE, write_pair
from safety import assert_refused, prepare_refused, run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

NAME_PAIRS = [
    ("images", "masks"),
    ("image", "mask"),
    ("img", "gt"),
    ("images", "labels"),
    ("rgb", "label"),
    ("images", "annotations"),
    ("imgs", "masks"),
    ("Images", "Masks"),
    ("IMG", "GT"),
]


def pair_in(folder: Path, images: str, masks: str, stem: str, seed: int = 0) -> None:
    write_pair(folder, stem, 48, 40, seed=seed)
    if images != "images":
        (folder / "images").rename(folder / images)
    if masks != "masks":
        (folder / "masks").rename(folder / masks)


@pytest.mark.parametrize("layout", ["flat", "tiled"])
@pytest.mark.parametrize("images, masks", NAME_PAIRS)
def test_common_folder_names_prepare_a_cache(tmp_path, layout, images, masks):
    root = tmp_path / "data"
    folders = [root] if layout == "flat" else [root / "area 1", root / "area 2"]
    for k, folder in enumerate(folders):
        folder.mkdir(parents=True)
        pair_in(folder, images, masks, f"scene_{k}", seed=k)
    found = discover(root)
    assert found.layout == layout and not found.problems
    cache = prepare_patches(root, tmp_path / "cache", DataConfig(patch_size=16), PALETTE)
    assert len(cache.sources) == len(folders) and len(cache) == len(folders) * 2 * 3
    assert {Path(s["mask"]).parent.name for s in cache.sources} == {masks}


def test_explicit_folder_names_reach_inspect_prepare_and_train(tmp_path):
    root = tmp_path / "data"
    for k in range(2):
        pair_in(root / f"t{k}", "photos", "classes_png", f"s{k}", seed=k)
    args = ["--images-dir", "photos", "--masks-dir", "classes_png", "--patch-size", "16"]
    proc = run_cli("data", "inspect", root, *args)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", *args)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "run.toml").write_text(
        '[data]\nimages_dir = "photos"\nmasks_dir = "classes_png"\npatch_size = 16\n'
        "[model]\nbase_filters = 4\ndepth = 2\n[train]\nepochs = 1\nbatch_size = 4\n"
        "progress = false\n"
    )
    proc = run_cli("train", "--data", root, "--out", tmp_path / "run", "--config", tmp_path / "run.toml")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["images_dir"] == "photos" and config["data"]["masks_dir"] == "classes_png"


def _no_folders(root: Path) -> None:
    (root / "pictures").mkdir(parents=True)
    (root / "readme.txt").write_text("hello")


def _ambiguous(root: Path) -> None:
    pair_in(root, "images", "masks", "a")
    (root / "labels").mkdir()


def _images_only(root: Path) -> None:
    pair_in(root, "images", "masks", "a")
    (root / "masks" / "a.png").unlink()
    (root / "masks").rmdir()


def _root_is_file(root: Path) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a folder")


def _root_broken_link(root: Path) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    root.symlink_to(root.parent / "moved-away")


def _tiles_with_other_names(root: Path) -> None:
    for k in range(2):
        (root / f"Tile {k}" / "pics").mkdir(parents=True)
        (root / f"Tile {k}" / "anno").mkdir()


LAYOUT_CASES = {
    "no folders": (
        _no_folders,
        [],
        [
            "no image and mask folders found",
            "looked for images/+masks/",
            "img/+gt/",
            "any letter case",
            "saw pictures/, readme.txt",
            "--images-dir NAME",
        ],
    ),
    "names in tiles": (_tiles_with_other_names, [], ["saw Tile 0/, Tile 1/ (Tile 0/ holds anno/, pics/)"]),
    "two mask folders": (_ambiguous, [], ["images/ + masks/, images/ + labels/", "--images-dir NAME --masks-dir"]),
    "images only": (
        _images_only,
        [],
        ["data/masks: folder missing (looked for masks/, mask/, gt/", "saw images/)", "--masks-dir NAME"],
    ),
    "root is a file": (_root_is_file, [], ["dataset folder is not usable (it is a file, not a folder)"]),
    "root is a broken link": (_root_broken_link, [], ["dataset folder is not usable (broken symlink"]),
    "explicit names not there": (
        lambda r: pair_in(r, "images", "masks", "a"),
        ["--images-dir", "photos", "--masks-dir", "gt"],
        ["looked for photos/+gt/ in it", "saw images/, masks/"],
    ),
    "only the images name given": (
        lambda r: pair_in(r, "images", "masks", "a"),
        ["--images-dir", "photos"],
        ["data/photos: folder missing (looked for photos/, saw images/, masks/)"],
    ),
    "a path, not a name": (
        lambda r: pair_in(r, "images", "masks", "a"),
        ["--images-dir", "../images"],
        ["data.images_dir = '../images' is invalid", "the name of a folder"],
    ),
}


@pytest.mark.parametrize("case", list(LAYOUT_CASES))
def test_folders_not_found_say_what_was_looked_for_and_seen(tmp_path, case):
    change, extra, needles = LAYOUT_CASES[case]
    root = tmp_path / "data"
    change(root)
    prepare_refused(
        tmp_path,
        root,
        *extra,
        needles=tuple(needles),
    )


def test_unlistable_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root lists folders whatever their mode")
    root = tmp_path / "data"
    pair_in(root, "images", "masks", "a")
    (root / "masks").chmod(0)
    try:
        assert_refused(tmp_path, "data", "prepare", root, "--out", tmp_path / "cache", needles=("masks",))
    finally:
        (root / "masks").chmod(0o755)


@pytest.mark.parametrize("where", ["inside", "equal", "images", "a file"])
def test_prepare_out_inside_the_dataset_is_refused(tmp_path, where):
    """--out inside the dataset, on it, on one of its folders or files: refused, the data left as it was."""
    root = tmp_path / "data"
    pair_in(root, "images", "masks", "a")
    outs = {"inside": root / "cache", "equal": root, "images": root / "images", "a file": root / "masks" / "a.png"}
    assert_refused(tmp_path, "data", "prepare", root, "--out", outs[where], "--patch-size", "16", needles=("--out",))


@pytest.mark.parametrize(
    "manifest, needles",
    [
        ("[1, 2]", ["not a readable aerotune patch cache"]),
        ('{"count": "many", "settings": {"patch_size": 16}}', ["not a readable aerotune patch cache"]),
        ('{"count": 4, "settings": {"patch_size": 16}}', ["not a readable aerotune patch cache", "images.u8"]),
        ("{broken", ["not a readable aerotune patch cache", "aerotune data prepare"]),
    ],
)
def test_a_damaged_cache_given_as_data(tmp_path, manifest, needles):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "manifest.json").write_text(manifest)
    assert_refused(
        tmp_path, "train", "--data", cache, "--out", tmp_path / "run", "--patch-size", "16", needles=tuple(needles)
    )


@pytest.mark.parametrize("given, which, other", [("img", "images", "gt/"), ("gt", "masks", "img/")])
def test_the_images_or_masks_folder_given_as_the_dataset_names_its_parent(tmp_path, given, which, other):
    """``--data data/img`` (a usual slip): the refusal names the folder to pass instead."""
    pair_in(tmp_path / "data", "img", "gt", "a")
    prepare_refused(
        tmp_path,
        tmp_path / "data" / given,
        needles=(f"this is the {which} folder of a dataset", other, f"--data {tmp_path / 'data'}"),
    )
