"""``--color-tolerance N``: lossy (JPEG) colour masks snapped to the palette, exactly as documented, never guessed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aerotune.config import DataConfig, RunConfig
from aerotune.data.patches import open_cache
from aerotune.data.run_data import cache_for
from aerotune.errors import ConfigError, DatasetError

from helpers import PALETTE, save_mask, write_pair
from safety import assert_refused, prepare_refused, run_cli

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

TINY = ("--set", "model.base_filters=4", "--set", "model.depth=2", "--set", "train.batch_size=4")
BLOCK = 32  # side of the uniform class blocks of the JPEG masks


def jpeg_pair(root: Path, stem: str = "a") -> np.ndarray:
    """Write ``images/<stem>.jpg`` and ``masks/<stem>.jpg``: a 128x96 mask of uniform 32 px class blocks, saved as
    JPEG (quality 90); return the true class ids."""
    small = np.arange(12, dtype=np.uint8).reshape(3, 4) % PALETTE.num_classes
    ids = np.kron(small, np.ones((BLOCK, BLOCK), dtype=np.uint8))
    _image, mask = write_pair(root, stem, ids.shape[1], ids.shape[0], ids=ids)
    with Image.open(mask) as im:
        im.convert("RGB").save(root / "masks" / f"{stem}.jpg", quality=90)
    mask.unlink()
    return ids


def cached_ids(cache_dir: Path, shape: tuple[int, int]) -> np.ndarray:
    """The class-id map of one image put back together from its patches."""
    cache = open_cache(cache_dir)
    out = np.full(shape, 254, dtype=np.uint8)
    p = cache.patch_size
    for k, (_, r, c) in enumerate(cache.manifest["patches"]):
        out[r : r + p, c : c + p] = cache.masks[k]
    return out


def test_jpeg_refusal_suggests_a_measured_tolerance(tmp_path):
    root = tmp_path / "data"
    jpeg_pair(root)
    line = prepare_refused(
        tmp_path, root, needles=("the masks are JPEG files", "save the masks as PNG", "--color-tolerance ")
    )
    n = int(re.search(r"--color-tolerance (\d+)", line).group(1))
    assert 1 <= n <= 64, line
    assert line.index("save the masks as PNG") < line.index("--color-tolerance"), line  # PNG first: it is lossless


def test_jpeg_masks_with_a_tolerance_give_the_true_classes(tmp_path):
    root = tmp_path / "data"
    truth = jpeg_pair(root)
    args = ("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32", "--color-tolerance", "40")
    proc = run_cli(*args, "--unknown-colors", "ignore")
    assert proc.returncode == 0, proc.stderr.decode()
    ids = cached_ids(tmp_path / "cache", truth.shape)
    inner = np.zeros(truth.shape, dtype=bool)  # away from the block edges, where compression blends classes
    for r in range(0, truth.shape[0], BLOCK):
        for c in range(0, truth.shape[1], BLOCK):
            inner[r + 8 : r + BLOCK - 8, c + 8 : c + BLOCK - 8] = True
    assert (ids[inner] == truth[inner]).all()
    labelled = ids != 255
    assert labelled.mean() > 0.9 and ((ids == truth) | ~labelled).mean() > 0.97
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["settings"]["color_tolerance"] == 40

    # inspect assigns colours as the cache does, and says how many pixels it snapped
    inspect = ("data", "inspect", root, "--patch-size", "32", "--color-tolerance", "40")
    found = json.loads(run_cli(*inspect, "--json").stdout)
    unknown = sum(c["pixels"] for c in found["colors"] if c["class"] is None)
    assert unknown == sum(manifest["pixels"]["unknown"].values()) > 0
    exact = {c.lower() for c in PALETTE.hex_colors}
    snapped = sum(c["pixels"] for c in found["colors"] if c["class"] and c["color"].lower() not in exact)
    assert found["color_tolerance"] == 40 and found["snapped_pixels"] == snapped > 0
    text = run_cli(*inspect).stdout.decode()
    assert f"--color-tolerance 40: {snapped:,} px" in text and "(snapped)" in text, text


def test_a_colour_halfway_between_two_palette_colours_stays_unknown(tmp_path):
    """Exactly the documented rule: nearest palette colour, every channel within N, no tie."""
    root = tmp_path / "data"
    write_pair(root, "a", 32, 32)
    (tmp_path / "two.toml").write_text('A = "#000000"\nB = "#500000"\n')
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, 16:] = (80, 0, 0)
    cases = {(40, 0, 0): 255, (39, 0, 0): 0, (41, 0, 0): 1, (0, 40, 0): 0, (0, 41, 0): 255, (80, 0, 40): 1}
    for k, color in enumerate(cases):
        rgb[k, :2] = color
    save_mask(rgb, root / "masks" / "a.png")
    args = ("--classes", tmp_path / "two.toml", "--color-tolerance", "40")
    prepare_refused(tmp_path, root, *args, needles=("#280000 (2 px", "#002900 (2 px", "--unknown-colors ignore"))
    prepare = ("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32")
    proc = run_cli(*prepare, *args, "--unknown-colors", "ignore")
    assert proc.returncode == 0, proc.stderr.decode()
    ids = cached_ids(tmp_path / "cache", (32, 32))
    for k, want in enumerate(cases.values()):
        assert (ids[k, :2] == want).all(), (k, ids[k, :2], want)
    assert (ids[len(cases) :, :16] == 0).all() and (ids[len(cases) :, 16:] == 1).all()


def test_a_tolerance_is_refused_for_masks_of_class_ids(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 32, 32)
    Image.fromarray(np.ones((32, 32), dtype=np.uint8)).save(root / "masks" / "a.png")
    (tmp_path / "ids.toml").write_text("Background = 0\nBuilding = 1\n")
    needles = ("--color-tolerance 8 applies to colour masks", "mask ids", "drop --color-tolerance")
    args = ("--classes", tmp_path / "ids.toml", "--color-tolerance", "8")
    prepare_refused(tmp_path, root, *args, needles=needles)
    assert_refused(tmp_path, "data", "inspect", root, "--patch-size", "16", *args, needles=needles)
    exact = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16", *args[:2])
    assert exact.returncode == 0, exact.stderr.decode()  # without the tolerance the same masks are fine


def test_the_tolerance_is_a_cache_setting(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    manifest = tmp_path / "cache" / "manifest.json"
    prepare = ("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16")
    assert run_cli(*prepare).returncode == 0
    exact = json.loads(manifest.read_text())
    assert exact["settings"]["color_tolerance"] == 0
    assert run_cli(*prepare, "--color-tolerance", "40").returncode == 0  # not reused: cut again
    snapped = json.loads(manifest.read_text())
    assert snapped["settings"]["color_tolerance"] == 40 and snapped["inputs_hash"] != exact["inputs_hash"]
    assert run_cli(*prepare, "--color-tolerance", "40").returncode == 0
    assert json.loads(manifest.read_text())["inputs_hash"] == snapped["inputs_hash"]  # same setting: reused
    train = ("train", "--data", tmp_path / "cache", "--out", tmp_path / "run", *TINY)
    assert_refused(tmp_path, *train, "--color-tolerance", "0", needles=("cut with color_tolerance = 40",))


def test_caches_and_configs_from_before_the_setting_read_as_exact(tmp_path):
    root = tmp_path / "data"
    write_pair(root, "a", 64, 48)
    assert run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16").returncode == 0
    manifest = tmp_path / "cache" / "manifest.json"
    old = json.loads(manifest.read_text())
    del old["settings"]["color_tolerance"]
    manifest.write_text(json.dumps(old))
    assert len(cache_for(tmp_path / "cache", DataConfig(patch_size=16), tmp_path / "unused")) > 0
    with pytest.raises(DatasetError, match="cut with color_tolerance = 0"):
        cache_for(tmp_path / "cache", DataConfig(patch_size=16, color_tolerance=40), tmp_path / "unused")
    assert RunConfig.from_dict({"data": {"patch_size": 16}}).data.color_tolerance == 0
    with pytest.raises(ConfigError, match="data.color_tolerance = 65"):
        RunConfig.from_dict({"data": {"color_tolerance": 65}}).validate()


def test_large_masks_are_encoded_alike():
    """Masks of 4 Mpx and more count their colours through a table instead of sorting: same classes, same counts."""
    rng = np.random.default_rng(3)
    noise = rng.integers(-30, 31, (64, 64, 3))
    small = np.clip(PALETTE.decode(rng.integers(0, 6, (64, 64)).astype(np.uint8)) + noise, 0, 255).astype(np.uint8)
    ids, unknown = PALETTE.encode(small, tolerance=25)
    big_ids, big_unknown = PALETTE.encode(np.tile(small, (33, 33, 1)), tolerance=25)  # 2112 x 2112 > 2**22 px
    assert unknown and (big_ids == np.tile(ids, (33, 33))).all()
    assert big_unknown == {c: n * 33 * 33 for c, n in unknown.items()}


def test_whole_image_scores_read_masks_with_the_runs_tolerance(tmp_path):
    """``evaluate`` scores whole images against masks read the way training read them: the pixels the run's
    tolerance gave a class are scored, not ignored (only those still unknown are)."""
    root = tmp_path / "data"
    for stem in ("a", "b", "c", "d"):
        jpeg_pair(root, stem)
    opts = ("--color-tolerance", "40", "--unknown-colors", "ignore", "--patch-size", "32")
    proc = run_cli("train", "--data", root, "--out", tmp_path / "run", "--epochs", "1", *opts, *TINY)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = run_cli("evaluate", tmp_path / "run", "--data", root, "--out", tmp_path / "eval", "--split", "all")
    assert proc.returncode == 0, proc.stderr.decode()
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    manifest = json.loads((tmp_path / "run" / "cache" / "manifest.json").read_text())
    unknown_at_training = sum(manifest["pixels"]["unknown"].values())
    assert 0 < metrics["tta"]["none"]["unknown_pixels"] == unknown_at_training < 4 * 128 * 96 * 0.05

    proc = run_cli("report", tmp_path / "run", "--out", tmp_path / "report", "--max-patches", "8")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["protocol"]["color_tolerance"].startswith("40 per channel")
    assert "mask colour tolerance" in (tmp_path / "report" / "report.md").read_text()


def test_inspect_of_lossy_masks_stays_readable(tmp_path):
    """Hundreds of blended colours: the text output shows the largest and sums the rest; --json lists them all."""
    from aerotune.commands.data import SHOWN_COLORS, SHOWN_UNKNOWN

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        ids = np.kron(rng.integers(0, PALETTE.num_classes, (12, 12)), np.ones((8, 8), dtype=np.uint8)).astype(np.uint8)
        jpeg = write_pair(root, stem, 96, 96, ids=ids)[1]
        with Image.open(jpeg) as im:
            im.convert("RGB").save(root / "masks" / f"{stem}.jpg", quality=80)
        jpeg.unlink()
    text = run_cli("data", "inspect", root, "--patch-size", "32")
    assert text.returncode == 1
    out = text.stdout.decode()
    whole = json.loads(run_cli("data", "inspect", root, "--patch-size", "32", "--json").stdout)
    assert len(whole["colors"]) > SHOWN_COLORS + SHOWN_UNKNOWN
    assert f"… and {len(whole['colors']) - SHOWN_COLORS:,} more" in out
    assert "more unknown value(s); --json lists every one" in out
    assert len(out.splitlines()) < 2 + 2 + 1 + SHOWN_COLORS + 1 + SHOWN_UNKNOWN * 4 + 1 + 3
