"""Image and mask names that differ by a suffix (DeepGlobe, ISPRS Potsdam, Kaggle sets): paired only when the
suffixes are given (--image-suffix / --mask-suffix), and refused with the exact options to add when they are not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aerotune.data.sources import discover
from aerotune.data.stems import suggest_shared

from helpers import write_pair
from safety import assert_refused, prepare_refused, run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

TINY = ["--set", "model.base_filters=4", "--set", "model.depth=2", "--set", "train.batch_size=4"]


def named(folder: Path, stem: str, image: Path, mask: Path, *, seed: int = 0, image_ext: str = ".jpg") -> None:
    """Write one real pair under ``folder`` and move it to ``image`` and ``mask`` (paths relative to ``folder``)."""
    write_pair(folder / ".tmp", stem, 48, 40, seed=seed, image_ext=image_ext)
    for src, dst in ((f"images/{stem}{image_ext}", image), (f"masks/{stem}.png", mask)):
        (folder / dst).parent.mkdir(parents=True, exist_ok=True)
        (folder / ".tmp" / src).rename(folder / dst)
    shutil.rmtree(folder / ".tmp")


def deepglobe(root: Path, n: int = 2) -> Path:
    """DeepGlobe Land Cover: ``123_sat.jpg`` and ``123_mask.png`` in one flat folder."""
    for k in range(n):
        named(root, str(100 + k), Path(f"{100 + k}_sat.jpg"), Path(f"{100 + k}_mask.png"), seed=k)
    return root


def potsdam(root: Path, n: int = 2) -> Path:
    """ISPRS Potsdam: ``top_potsdam_2_10_RGB.tif`` in one folder, ``top_potsdam_2_10_label.tif`` in another."""
    for k in range(n):
        stem = f"top_potsdam_2_1{k}"
        named(
            root,
            stem,
            Path(f"2_Ortho_RGB/{stem}_RGB.tif"),
            Path(f"5_Labels/{stem}_label.png"),
            seed=k,
            image_ext=".tif",
        )
    return root


def kaggle(root: Path, n: int = 2) -> Path:
    """Many Kaggle sets: ``x.png`` in images/, ``x_mask.png`` in masks/."""
    for k in range(n):
        named(root, f"x{k}", Path(f"images/x{k}.png"), Path(f"masks/x{k}_mask.png"), seed=k, image_ext=".png")
    return root


def deepglobe_tiles(root: Path) -> Path:
    """A DeepGlobe-style flat folder per tile."""
    deepglobe(root / "area 1")
    deepglobe(root / "area 2", n=1)
    return root


LAYOUTS = {
    # name: (writer, options that pair it, the stems, the tiles)
    "deepglobe": (deepglobe, ["--image-suffix", "_sat", "--mask-suffix", "_mask"], ["100", "101"], ["", ""]),
    "deepglobe per tile": (
        deepglobe_tiles,
        ["--image-suffix", "_sat", "--mask-suffix", "_mask"],
        ["100", "101", "100"],
        ["area 1", "area 1", "area 2"],
    ),
    "potsdam": (
        potsdam,
        ["--images-dir", "2_Ortho_RGB", "--masks-dir", "5_Labels", "--image-suffix", "_RGB", "--mask-suffix", "_label"],
        ["top_potsdam_2_10", "top_potsdam_2_11"],
        ["", ""],
    ),
    "kaggle": (kaggle, ["--mask-suffix", "_mask"], ["x0", "x1"], ["", ""]),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_suffixed_names_are_paired_by_inspect_and_prepare(tmp_path, layout):
    write, options, stems, tiles = LAYOUTS[layout]
    root = write(tmp_path / "data")
    proc = run_cli("data", "inspect", root, "--patch-size", "16", *options)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert f"{len(stems)} image/mask pairs" in proc.stdout.decode()
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", *options)
    assert proc.returncode == 0, proc.stderr.decode()
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert [s["stem"] for s in manifest["sources"]] == stems  # the stripped stem names the sample
    assert [s["tile"] for s in manifest["sources"]] == tiles
    given = dict(zip(options[::2], options[1::2]))
    assert manifest["settings"]["image_suffix"] == given.get("--image-suffix")
    assert manifest["settings"]["mask_suffix"] == given.get("--mask-suffix")
    assert manifest["count"] == len(stems) * 2 * 3


SUGGESTIONS = {
    "deepglobe": (deepglobe, [], "share one folder (like 100_sat.jpg and 100_mask.png)", "_sat --mask-suffix _mask"),
    "deepglobe per tile": (deepglobe_tiles, [], "share one folder", "--image-suffix _sat --mask-suffix _mask"),
    "deepglobe, one folder named twice": (
        lambda r: deepglobe(r / "train"),
        ["--images-dir", "train", "--masks-dir", "train"],
        "share one folder",
        "--image-suffix _sat --mask-suffix _mask",
    ),
    "potsdam": (
        potsdam,
        ["--images-dir", "2_Ortho_RGB", "--masks-dir", "5_Labels"],
        "in 2_Ortho_RGB/ and 5_Labels/ do not pair by name (like top_potsdam_2_10_RGB.tif and",
        "rerun with --image-suffix _RGB --mask-suffix _label",
    ),
    "potsdam, one suffix wrong": (
        potsdam,
        ["--images-dir", "2_Ortho_RGB", "--masks-dir", "5_Labels", "--image-suffix", "_RGB", "--mask-suffix", "_lbl"],
        "do not pair by name",
        "rerun with --image-suffix _RGB --mask-suffix _label",
    ),
    "kaggle": (kaggle, [], "in images/ and masks/ do not pair by name", "to pair them, rerun with --mask-suffix _mask"),
}


@pytest.mark.parametrize("case", list(SUGGESTIONS))
def test_missing_suffixes_are_refused_with_the_options_to_add(tmp_path, case):
    write, options, where, fix = SUGGESTIONS[case]
    root = tmp_path / "data"
    write(root)
    line = prepare_refused(
        tmp_path,
        root,
        *options,
        needles=(where, fix),
    )
    assert line.endswith(fix), line  # the options end the line, ready to copy
    assert not (tmp_path / "cache").exists()


def test_inspect_lists_the_suggestion_first(tmp_path):
    root = potsdam(tmp_path / "data")
    proc = run_cli("data", "inspect", root, "--images-dir", "2_Ortho_RGB", "--masks-dir", "5_Labels")
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    assert "1 problem(s):" in out and "rerun with --image-suffix _RGB --mask-suffix _label" in out


def test_a_folder_mixing_suffixed_and_plain_names(tmp_path):
    """Without options nothing is guessed (ordinary problems); with them, the plain name is the problem, and
    --skip-bad-pairs leaves it out."""
    root = kaggle(tmp_path / "data")
    named(root, "y", Path("images/y.png"), Path("masks/y.png"), image_ext=".png")
    found = discover(root)
    assert [s.stem for s in found.samples] == ["y"]
    assert not any("rerun with" in str(p) for p in found.problems)
    assert "x0.png: image has no mask; add masks/x0.png" in str(found.problems[0])
    args = ["data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", "--mask-suffix", "_mask"]
    assert_refused(
        tmp_path, *args, needles=("masks/y.png: mask name does not end in _mask (--mask-suffix); rename it or",)
    )
    proc = run_cli(*args, "--skip-bad-pairs")
    assert proc.returncode == 0, proc.stderr.decode()
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert [s["stem"] for s in manifest["sources"]] == ["x0", "x1"]
    assert {e.get("file") for e in manifest["skipped"]} == {"masks/y.png", "images/y.png"}


def test_a_shared_folder_with_a_file_of_neither_kind(tmp_path):
    root = deepglobe(tmp_path / "data")
    shutil.copy(root / "100_mask.png", root / "preview.png")
    opts = ["--image-suffix", "_sat", "--mask-suffix", "_mask"]
    prepare_refused(
        tmp_path,
        root,
        *opts,
        needles=("preview.png: name ends in neither _sat (--image-suffix) nor _mask (--mask-suffix)",),
    )
    (root / "preview.png").unlink()
    (root / "101_mask.png").unlink()
    assert_refused(
        tmp_path,
        "data",
        "prepare",
        root,
        "--out",
        tmp_path / "cache",
        *opts,
        needles=("101_sat.jpg: image has no mask; add data/101_mask.png",),
    )


def test_a_folder_named_twice_whose_names_show_no_suffix(tmp_path):
    root = tmp_path / "data"
    named(root, "a", Path("pics/a.jpg"), Path("pics/b.png"))
    assert_refused(
        tmp_path,
        "data",
        "prepare",
        root,
        "--out",
        tmp_path / "cache",
        "--images-dir",
        "pics",
        "--masks-dir",
        "pics",
        needles=("pics: folder holds both the images and the masks", "--image-suffix and --mask-suffix"),
    )


@pytest.mark.parametrize(
    "options, needle",
    [
        (["--mask-suffix", "_mask.png"], "data.mask_suffix = '_mask.png' is invalid"),
        (["--image-suffix", "_x", "--mask-suffix", "_x"], "are both '_x'"),
        (["--image-suffix", "a/b"], "data.image_suffix = 'a/b' is invalid"),
    ],
)
def test_malformed_suffixes_are_refused(tmp_path, options, needle):
    root = deepglobe(tmp_path / "data")
    for command in (["data", "inspect", root], ["data", "prepare", root, "--out", tmp_path / "cache"]):
        assert_refused(tmp_path, *command, *options, needles=(needle,))


def test_which_suffix_names_the_masks_comes_from_the_names():
    assert suggest_shared([("1_sat", ".tif"), ("1_lbl", ".tif")]) == ("_sat", "_lbl", True)
    assert suggest_shared([("1_a", ".jpg"), ("1_b", ".png")]) == ("_a", "_b", True)  # photos are images
    assert suggest_shared([("1_a", ".png"), ("1_b", ".png")])[2] is False  # the refusal says it may be swapped
    assert suggest_shared([("1-mask", ".png"), ("1", ".png"), ("2-mask", ".png"), ("2", ".png")]) == ("", "-mask", True)
    assert suggest_shared([("a", ".png"), ("b", ".png")]) is None


def test_a_dash_suffix_is_suggested_in_a_form_the_cli_parses(tmp_path):
    root = tmp_path / "data"
    for k in range(2):
        named(root, f"t{k}", Path(f"t{k}.png"), Path(f"t{k}-mask.png"), seed=k, image_ext=".png")
    line = assert_refused(
        tmp_path, "data", "prepare", root, "--out", tmp_path / "cache", needles=("--mask-suffix=-mask",)
    )
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", line.split()[-1])
    assert proc.returncode == 0, proc.stderr.decode()


def test_the_cache_records_the_suffixes_and_a_run_with_others_is_refused(tmp_path):
    """Two suffix pairs that both pair these names, with other stems: the cache and the run record theirs, and
    training on the cache or resuming the run with the other pair is refused before anything is written."""
    root = tmp_path / "data"
    for k in range(2):
        named(root, f"s{k}", Path(f"images/s{k}_gt.jpg"), Path(f"masks/s{k}_gt_mask.png"), seed=k)
    first = ["--image-suffix", "_gt", "--mask-suffix", "_gt_mask"]
    other = ["--mask-suffix", "_mask"]  # pairs s0_gt.jpg with s0_gt_mask.png: stem s0_gt
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", *first)
    assert proc.returncode == 0, proc.stderr.decode()
    settings = json.loads((tmp_path / "cache" / "manifest.json").read_text())["settings"]
    assert (settings["image_suffix"], settings["mask_suffix"]) == ("_gt", "_gt_mask")
    assert_refused(
        tmp_path,
        "train",
        "--data",
        tmp_path / "cache",
        "--out",
        tmp_path / "from-cache",
        *other,
        *TINY,
        needles=("cut with mask_suffix = '_gt_mask'",),
    )
    run = ["train", "--data", root, "--out", tmp_path / "run", "--patch-size", "16", "--epochs", "1", *TINY]
    proc = run_cli(*run, *first, "--set", "train.progress=false")
    assert proc.returncode == 0, proc.stderr.decode()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["data"]["image_suffix"], config["data"]["mask_suffix"]) == ("_gt", "_gt_mask")
    assert_refused(tmp_path, *run, *other, "--set", "train.progress=false", needles=("data.image_suffix",))


def test_skip_bad_pairs_does_not_hide_the_suggestion(tmp_path):
    """Leaving every unpaired file out would leave nothing: the refusal still names the options."""
    root = potsdam(tmp_path / "data")
    args = ["--images-dir", "2_Ortho_RGB", "--masks-dir", "5_Labels", "--skip-bad-pairs"]
    assert_refused(
        tmp_path,
        "data",
        "prepare",
        root,
        "--out",
        tmp_path / "cache",
        *args,
        needles=("no image/mask pairs found", "rerun with --image-suffix _RGB --mask-suffix _label"),
    )
