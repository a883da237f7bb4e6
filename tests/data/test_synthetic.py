"""The procedural aerial dataset: determinism, layout, exact masks, plausible classes, texture, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aerotune.data import synthetic
from aerotune.data.palette import DUBAI_CLASSES, Palette
from aerotune.data.synthetic import SynthResult, make_scene, write_synthetic_dataset
from aerotune.errors import DatasetError

PALETTE = Palette.dubai()
NAMES = [name for name, _ in DUBAI_CLASSES]


def scene(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    return make_scene(np.random.default_rng(seed), size)


def test_make_scene_returns_image_and_ids():
    image, ids = scene(0)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert ids.shape == (128, 128) and ids.dtype == np.uint8
    assert ids.max() < len(DUBAI_CLASSES)


def test_make_scene_is_deterministic_per_seed():
    (a_img, a_ids), (b_img, b_ids), (c_img, c_ids) = scene(5), scene(5), scene(6)
    assert a_img.tobytes() == b_img.tobytes() and a_ids.tobytes() == b_ids.tobytes()
    assert a_img.tobytes() != c_img.tobytes() and a_ids.tobytes() != c_ids.tobytes()


@pytest.mark.parametrize("size", [32, 33, 47, 100])
def test_small_and_odd_sizes_work(size):
    for seed in range(4):
        image, ids = scene(seed, size)
        assert image.shape == (size, size, 3) and ids.shape == (size, size)


def test_make_scene_rejects_tiny_sizes():
    with pytest.raises(DatasetError, match="at least 32"):
        scene(0, 16)


def test_layout_names_and_result(tmp_path):
    out = tmp_path / "data"
    result = write_synthetic_dataset(out, scenes=6, size=48, seed=1)
    assert isinstance(result, SynthResult)
    assert (result.root, result.scenes, result.tiles, result.size, result.seed) == (out, 6, 2, 48, 1)
    assert sorted(p.name for p in out.iterdir()) == ["Tile 1", "Tile 2"]
    for tile in ("Tile 1", "Tile 2"):
        images = sorted(p.name for p in (out / tile / "images").iterdir())
        masks = sorted(p.name for p in (out / tile / "masks").iterdir())
        assert images == [f"image_part_00{k}.jpg" for k in (1, 2, 3)]
        assert masks == [f"image_part_00{k}.png" for k in (1, 2, 3)]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary folder left behind
    assert list(result.class_fractions) == NAMES
    assert sum(result.class_fractions.values()) == pytest.approx(1.0)


def test_tiles_can_be_chosen_and_every_tile_gets_a_scene(tmp_path):
    result = write_synthetic_dataset(tmp_path / "d", scenes=5, size=32, tiles=5)
    assert result.tiles == 5
    assert all(len(list((tmp_path / "d" / f"Tile {t}" / "masks").iterdir())) == 1 for t in range(1, 6))


def test_masks_are_palette_pngs_with_exact_class_colours(tmp_path):
    out = tmp_path / "data"
    write_synthetic_dataset(out, scenes=2, size=64, seed=7, tiles=1)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(7).spawn(2)]
    for k, rng in enumerate(rngs, start=1):
        expected_image, expected_ids = make_scene(rng, 64)
        with Image.open(out / "Tile 1" / "masks" / f"image_part_{k:03d}.png") as mask:
            assert mask.mode == "P"
            rgb = np.asarray(mask.convert("RGB"))
        ids, unknown = PALETTE.encode(rgb)
        assert not unknown
        assert (ids == expected_ids).all()
        with Image.open(out / "Tile 1" / "images" / f"image_part_{k:03d}.jpg") as im:
            assert im.format == "JPEG" and im.size == (64, 64)
            image = np.asarray(im.convert("RGB"), dtype=np.float32)
        assert np.abs(image - expected_image).mean() < 12  # only JPEG loss (noisy image, chroma subsampling)


def test_same_seed_writes_identical_files(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", scenes=2, size=48, seed=4).root
    b = write_synthetic_dataset(tmp_path / "b", scenes=2, size=48, seed=4).root
    c = write_synthetic_dataset(tmp_path / "c", scenes=2, size=48, seed=5).root
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_class_fractions_are_plausible(tmp_path):
    result = write_synthetic_dataset(tmp_path / "d", scenes=8, size=256, seed=0)
    f = result.class_fractions
    assert 0.40 <= f["Land"] <= 0.62
    assert f["Land"] == max(f.values())
    assert 0.07 <= f["Building"] <= 0.25
    assert 0.06 <= f["Road"] <= 0.20
    assert 0.05 <= f["Vegetation"] <= 0.20
    assert 0.02 <= f["Water"] <= 0.25
    assert 0.002 <= f["Unlabeled"] <= 0.04


def test_images_are_textured_and_classes_look_different():
    image, ids = scene(2, 256)
    img = image.astype(np.float32)
    means = {}
    for cls, name in enumerate(NAMES):
        region = img[ids == cls]
        if len(region) < 200:
            continue
        # Texture and noise: no class is a flat colour.
        assert region.mean(axis=1).std() > 3, name
        means[name] = region.mean(axis=0)
    r, g, b = means["Land"]
    assert r > b + 20  # sand is warm
    assert means["Vegetation"][1] > means["Vegetation"][0] and means["Vegetation"].sum() < means["Land"].sum()
    assert means["Road"].sum() < means["Land"].sum() - 100  # asphalt is darker than sand
    if "Water" in means:
        assert means["Water"][2] > means["Water"][0] + 20  # water is blue


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scenes": 0}, "scenes must be at least 1"),
        ({"size": 31}, "size must be at least 32"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"scenes": 3, "tiles": 0}, "tiles must be at least 1"),
        ({"scenes": 3, "tiles": 4}, "tiles must be between 1 and scenes"),
        ({"scenes": 2.5}, "scenes must be a whole number"),
        ({"size": True}, "size must be a whole number"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        write_synthetic_dataset(tmp_path / "d", **kwargs)
    assert not (tmp_path / "d").exists()


def test_non_empty_output_folder_is_refused(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty; choose an empty or new folder") as err:
        write_synthetic_dataset(out, scenes=1, size=32)
    assert str(out) in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError):
        write_synthetic_dataset(tmp_path / "file", scenes=1, size=32)


def test_empty_output_folder_is_used(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    write_synthetic_dataset(out, scenes=1, size=32)
    assert (out / "Tile 1" / "masks" / "image_part_001.png").is_file()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(rng, size):
        raise RuntimeError("boom")

    monkeypatch.setattr(synthetic, "make_scene", boom)
    with pytest.raises(RuntimeError):
        write_synthetic_dataset(tmp_path / "data", scenes=2, size=32)
    assert list(tmp_path.iterdir()) == []
