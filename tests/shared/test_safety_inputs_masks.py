"""Masks at another resolution, bad pairs left out on request, and masks of class ids (L, P, 1-bit, 16-bit)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aerotune.config import DataConfig
from aerotune.data.palette import Palette
from aerotune.data.patches import open_cache, prepare_patches
from aerotune.errors import DatasetError

from helpers import PALETTE, random_ids, save_mask, write_pair
from safety import assert_refused, prepare_refused, run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def small_mask(root: Path, stem: str, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Overwrite ``masks/<stem>.png`` with a mask of ``size`` (w, h); return its class ids."""
    ids = random_ids(size[1], size[0], seed=seed)
    save_mask(PALETTE.decode(ids), root / "masks" / f"{stem}.png")
    return ids


def test_a_mask_of_another_size_suggests_resize(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    small_mask(root, "a", (32, 24))
    prepare_refused(
        tmp_path,
        root,
        needles=("masks/a.png: mask is 32x24 but its image is 64x48", "--mask-size resize", "--skip-bad-pairs"),
    )


def test_resize_refuses_another_aspect_ratio(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    small_mask(root, "a", (32, 32))
    prepare_refused(
        tmp_path,
        root,
        "--mask-size",
        "resize",
        needles=("mask is 32x32 but its image is 64x48", "differ by 25.0%", "cannot be resized"),
    )


def test_resize_resamples_the_mask_by_nearest_neighbour(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    ids = small_mask(root, "a", (32, 24), seed=4)
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", "--mask-size", "resize")
    assert proc.returncode == 0, proc.stderr
    cache = open_cache(tmp_path / "cache")
    assert cache.manifest["settings"]["mask_size"] == "resize"
    full = np.kron(ids, np.ones((2, 2), np.uint8))  # nearest neighbour, x2
    for k, (_, r, c) in enumerate(cache.manifest["patches"]):
        assert (cache.masks[k] == full[r : r + 16, c : c + 16]).all()


def test_skip_bad_pairs_keeps_the_good_ones_and_lists_the_rest(tmp_path):
    root = tmp_path / "data"
    for stem in ("good1", "good2", "sized", "broken"):
        write_pair(root, stem, 64, 48, seed=len(stem))
    small_mask(root, "sized", (30, 30))
    (root / "masks" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.new("RGB", (64, 48)).save(root / "images" / "lonely.jpg")
    args = ("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16")
    assert_refused(tmp_path, *args, needles=("lonely.jpg: image has no mask",))  # the default stays: error
    proc = run_cli(*args, "--skip-bad-pairs")
    assert proc.returncode == 0, proc.stderr
    assert b"3 pair(s) or file(s) skipped" in proc.stdout
    err = proc.stderr.decode()
    assert "skipped images/broken.jpg + masks/broken.png" in err and "skipped images/lonely.jpg" in err
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert [s["stem"] for s in manifest["sources"]] == ["good1", "good2"]
    assert manifest["settings"]["skip_bad_pairs"] is True
    reasons = {e.get("mask") or e.get("file"): e["reason"] for e in manifest["skipped"]}
    assert set(reasons) == {"images/lonely.jpg", "masks/broken.png", "masks/sized.png"}
    assert "image has no mask" in reasons["images/lonely.jpg"]
    assert "cannot read mask" in reasons["masks/broken.png"]
    assert "mask is 30x30 but its image is 64x48" in reasons["masks/sized.png"]


def test_skip_bad_pairs_with_nothing_left_is_an_error(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    (root / "masks" / "a.png").write_bytes(b"")
    prepare_refused(
        tmp_path,
        root,
        "--skip-bad-pairs",
        needles=("no usable image/mask pairs found", "1 pair(s) skipped", "the file is empty"),
    )


# ------------------------------------------------------------------ masks of class ids

#: Classes file order differs from the ids on purpose: class index != mask value.
ID_CLASSES = {"Road": 2, "Background": 0, "Building": 1}
INDEX = Palette.from_dict(ID_CLASSES)


def write_id_pair(root: Path, stem: str, mode: str, values: np.ndarray, suffix: str = ".png") -> None:
    write_pair(root, stem, values.shape[1], values.shape[0])
    (root / "masks" / f"{stem}.png").unlink()
    if mode == "I;16":
        im = Image.fromarray(values.astype(np.uint16))
    elif mode == "1":
        im = Image.fromarray(values.astype(bool))
    elif mode == "P":
        im = Image.fromarray(values.astype(np.uint8), "L").convert("P")
        im.putpalette([v for i in range(256) for v in ((i * 40) % 256, (i * 90) % 256, (i * 150) % 256)])
    else:
        im = Image.fromarray(values.astype(np.uint8), "L")
    im.save(root / "masks" / f"{stem}{suffix}")
    assert Image.open(root / "masks" / f"{stem}{suffix}").mode in (mode, "I", "I;16")


@pytest.mark.parametrize(
    "mode, suffix", [("L", ".png"), ("P", ".png"), ("I;16", ".png"), ("I;16", ".tif"), ("1", ".png")]
)
def test_masks_of_class_ids(tmp_path, mode, suffix):
    root = tmp_path / "data"
    values = random_ids(32, 48, seed=2, classes=2 if mode == "1" else 3)
    write_id_pair(root, "a", mode, values, suffix)
    (tmp_path / "ids.toml").write_text("".join(f"{k} = {v}\n" for k, v in ID_CLASSES.items()))
    proc = run_cli(
        "data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", "--classes", tmp_path / "ids.toml"
    )
    assert proc.returncode == 0, proc.stderr
    cache = open_cache(tmp_path / "cache")
    if mode == "P":  # a palette mask carries the dataset's own display colours: they replace the fixed ones
        assert cache.palette.colors == tuple(((i * 40) % 256, (i * 90) % 256, (i * 150) % 256) for i in INDEX.ids)
        assert dataclasses.replace(cache.palette, colors=INDEX.colors) == INDEX and cache.palette.by_id
    else:
        assert cache.palette == INDEX and cache.palette.by_id
    position = {v: k for k, v in enumerate(INDEX.ids)}
    expected = np.vectorize(position.get)(values).astype(np.uint8)
    for k, (_, r, c) in enumerate(cache.manifest["patches"]):
        assert (cache.masks[k] == expected[r : r + 16, c : c + 16]).all()


def test_unknown_ids_are_handled_like_unknown_colours(tmp_path):
    root = tmp_path / "data"
    values = random_ids(32, 32, seed=1, classes=3)
    values[:2, :3] = 9
    write_id_pair(root, "a", "L", values)
    (tmp_path / "ids.json").write_text(json.dumps(ID_CLASSES))
    args = (
        "data",
        "prepare",
        root,
        "--out",
        tmp_path / "cache",
        "--patch-size",
        "16",
        "--classes",
        tmp_path / "ids.json",
    )
    assert_refused(
        tmp_path, *args, needles=("unknown mask ids", "id 9 (6 px in", "masks/a.png", "--unknown-colors ignore")
    )
    assert run_cli(*args, "--unknown-colors", "ignore").returncode == 0
    cache = open_cache(tmp_path / "cache")
    assert (cache.masks[0][:2, :3] == 255).all() and cache.manifest["pixels"]["unknown"] == {"id 9": 6}


def test_colour_masks_with_an_id_classes_file_are_refused(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 32, 32)
    (tmp_path / "ids.toml").write_text("Background = 0\nBuilding = 1\n")
    prepare_refused(
        tmp_path,
        root,
        "--classes",
        tmp_path / "ids.toml",
        needles=("masks/a.png: mask is a colour (RGB) image but the classes file maps names to ids",),
    )


def test_greyscale_id_masks_with_the_default_palette_get_a_hint(tmp_path):
    root = tmp_path / "data"
    write_id_pair(root, "a", "L", random_ids(32, 32, classes=3))
    prepare_refused(
        tmp_path,
        root,
        needles=("palette looks wrong", "look like class ids", "Building = 1"),
    )


def test_inspect_shows_ids(tmp_path):
    root = tmp_path / "data"
    write_id_pair(root, "a", "P", random_ids(32, 32, classes=3))
    (tmp_path / "ids.toml").write_text("".join(f"{k} = {v}\n" for k, v in ID_CLASSES.items()))
    proc = run_cli("data", "inspect", root, "--patch-size", "16", "--classes", tmp_path / "ids.toml")
    out = proc.stdout.decode()
    assert proc.returncode == 0 and "mask ids:" in out and "id 2" in out and "Road" in out, out
    found = json.loads(
        run_cli("data", "inspect", root, "--patch-size", "16", "--classes", tmp_path / "ids.toml", "--json").stdout
    )
    assert {c["id"]: c["class"] for c in found["colors"]} == {0: "Background", 1: "Building", 2: "Road"}


def test_id_masks_train_end_to_end_and_the_palette_round_trips(tmp_path):
    import torch

    root = tmp_path / "data"
    for k in range(4):
        write_id_pair(root, f"s{k}", "I;16", random_ids(64, 64, seed=k, classes=3))
    (tmp_path / "ids.toml").write_text("".join(f"{k} = {v}\n" for k, v in ID_CLASSES.items()))
    assert (
        run_cli(
            "data",
            "prepare",
            root,
            "--out",
            tmp_path / "cache",
            "--patch-size",
            "32",
            "--classes",
            tmp_path / "ids.toml",
        ).returncode
        == 0
    )
    proc = run_cli(
        "train",
        "--data",
        tmp_path / "cache",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--patch-size",
        "32",
        "--classes",
        tmp_path / "ids.toml",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "train.batch_size=4",
    )
    assert proc.returncode == 0, proc.stderr
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert Palette.from_dict(ckpt["palette"]) == INDEX
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"


def test_library_skip_records_decode_failures_found_late(tmp_path):
    """A pair whose header reads but whose pixels do not is skipped while cutting, and recorded."""
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    write_pair(root, "b", 64, 48, image_ext=".jpg")
    data = (root / "images" / "b.jpg").read_bytes()
    (root / "images" / "b.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match="b.jpg: cannot read image"):
        prepare_patches(root, tmp_path / "c1", DataConfig(patch_size=16), PALETTE)
    cache = prepare_patches(root, tmp_path / "c2", DataConfig(patch_size=16, skip_bad_pairs=True), PALETTE)
    assert [s["stem"] for s in cache.sources] == ["a"] and len(cache) == 12
    assert {p[0] for p in cache.manifest["patches"]} == {0}
    assert cache.manifest["skipped"][0]["image"] == "images/b.jpg"


def test_jpeg_masks_are_refused_with_the_cause(tmp_path):
    """Masks saved as JPEG (a usual slip): compression blends the palette's colours. The refusal says so and asks
    for PNG masks, or (no lossless source) an explicit --color-tolerance; no palette or ignore class alone is offered
    as the fix (see test_color_tolerance.py)."""
    root = tmp_path / "data"
    _image, mask = write_pair(root, "a", 64, 48)
    with Image.open(mask) as im:
        im.convert("RGB").save(root / "masks" / "a.jpg", quality=90)
    mask.unlink()
    needles = ("the masks are JPEG files", "masks/a.jpg", "save the masks as PNG", "or, with no lossless source, pass")
    line = prepare_refused(tmp_path, root, needles=needles)
    assert "--color-tolerance " in line and "--classes" not in line
    assert "--unknown-colors" not in line.split("--color-tolerance", 1)[0]  # ignoring is never the first fix
