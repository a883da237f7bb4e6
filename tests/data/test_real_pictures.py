"""Pictures as people have them: camera orientation (EXIF) and 16-bit greyscale outside GeoTIFF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from aerotune.config import DataConfig
from aerotune.data.masks import image_size, read_mask
from aerotune.data.patches import prepare_patches
from aerotune.data.rasters import Bands, open_scene, read_scaled

from helpers import PALETTE
from safety import run_cli

#: The stored pixels of an image with EXIF orientation N, displayed, are the stored ones put through this.
ORIENTATIONS = range(1, 9)


def save_oriented(displayed: np.ndarray, path: Path, orientation: int) -> None:
    """Save ``displayed`` so that a viewer applying EXIF ``orientation`` shows exactly ``displayed``."""
    inverse = {1: None, 2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
               6: "ROTATE_90", 7: "TRANSVERSE", 8: "ROTATE_270"}  # fmt: skip
    im = Image.fromarray(displayed)
    if inverse[orientation]:
        im = im.transpose(getattr(Image.Transpose, inverse[orientation]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    kwargs = {"quality": 100, "subsampling": 0} if path.suffix == ".jpg" else {}
    im.save(path, exif=exif, **kwargs)
    with Image.open(path) as check:  # the helper is right: Pillow's own exif_transpose shows ``displayed``
        assert ImageOps.exif_transpose(check).size == (displayed.shape[1], displayed.shape[0])


def halves(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A displayed picture whose top half is dark and bottom half bright, and its mask (class 1 on top, 2 below)."""
    img = np.full((h, w, 3), 220, np.uint8)
    img[: h // 2] = 30
    ids = np.full((h, w), 2, np.uint8)
    ids[: h // 2] = 1
    return img, PALETTE.decode(ids)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_images_and_masks_are_read_as_displayed(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    displayed = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    save_oriented(displayed, tmp_path / "a.png", orientation)
    save_oriented(PALETTE.decode(rng.integers(0, 6, (24, 40)).astype(np.uint8)), tmp_path / "m.png", orientation)
    assert image_size(tmp_path / "a.png") == (40, 24) == image_size(tmp_path / "m.png", what="mask")
    scene = open_scene(tmp_path / "a.png")
    assert (scene.width, scene.height) == (40, 24)
    np.testing.assert_array_equal(read_scaled(scene, 1.0), displayed)
    with Image.open(tmp_path / "m.png") as im:
        np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), np.asarray(ImageOps.exif_transpose(im)))


@pytest.mark.parametrize("size", [(32, 32), (48, 32)], ids=["square", "not square"])
def test_prepare_cuts_labels_that_match_their_pixels_as_displayed(tmp_path, size):
    """Annotation tools draw the mask over the picture as displayed; the stored pixels are turned."""
    w, h = size
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img, mask = halves(h, w)
    save_oriented(img, root / "images" / "a.jpg", 6)
    Image.fromarray(mask).save(root / "masks" / "a.png")
    cache = prepare_patches(root, tmp_path / "cache", DataConfig(patch_size=16), PALETTE)
    pixels = np.asarray(cache.images).astype(int).mean(axis=-1)
    ids = np.asarray(cache.masks)
    assert (pixels[ids == 1] < 80).all() and (pixels[ids == 2] > 170).all()


def test_predict_writes_its_mask_as_the_image_is_displayed(tmp_path):
    from aerotune.predict.run import predict_files

    class Flat:  # every window is class 1: only the size and orientation of the output matter here
        palette, patch_size, scale, num_bands, batch_size, trained = PALETTE, 16, 1.0, 3, 4, Bands()

        def scorer(self):
            def score(batch):
                out = np.zeros((batch.shape[0], PALETTE.num_classes, *batch.shape[1:3]), np.float32)
                out[:, 1] = 1
                return out

            return score

    img, _ = halves(20, 36)
    save_oriented(img, tmp_path / "a.jpg", 8)
    predict_files(Flat(), [tmp_path / "a.jpg"], tmp_path / "out")
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.size == (36, 20)


def grey16(h: int, w: int, seed: int = 0) -> np.ndarray:
    """12-bit sensor values in 16-bit pixels, as many cameras save them."""
    return np.random.default_rng(seed).integers(200, 4000, (h, w)).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path, suffix, monkeypatch):
    from aerotune.data import rasters

    monkeypatch.setattr(rasters, "has_rasterio", lambda: False)  # a TIFF read by Pillow, as without aerotune[geo]
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    values = grey16(64, 64)
    Image.fromarray(values).save(root / "images" / f"a{suffix}")
    Image.fromarray(halves(64, 64)[1]).save(root / "masks" / "a.png")
    cache = prepare_patches(root, tmp_path / "cache", DataConfig(patch_size=32), PALETTE)
    patches = np.asarray(cache.images)
    assert (patches == 255).mean() < 0.05 and 100 < patches.mean() < 155
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    scaling = manifest["bands"]["scaling"]
    assert scaling["dtype"] == "uint16" and len(scaling["lo"]) == 3 and 200 <= scaling["lo"][0] < 300
    # predict reads the scene with the recorded ranges: the pixels the model saw in training
    scene = open_scene(root / "images" / f"a{suffix}", trained=cache.bands)
    whole = read_scaled(scene, 1.0)
    np.testing.assert_array_equal(whole[:32, :32], patches[0])


def test_16_bit_png_and_16_bit_tiff_give_the_same_patches(tmp_path, monkeypatch):
    from aerotune.data import rasters

    monkeypatch.setattr(rasters, "has_rasterio", lambda: False)
    caches = []
    for suffix in (".png", ".tif"):
        root = tmp_path / suffix[1:]
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        Image.fromarray(grey16(48, 48, seed=5)).save(root / "images" / f"a{suffix}")
        Image.fromarray(halves(48, 48)[1]).save(root / "masks" / "a.png")
        caches.append(prepare_patches(root, tmp_path / f"cache{suffix}", DataConfig(patch_size=16), PALETTE))
    np.testing.assert_array_equal(np.asarray(caches[0].images), np.asarray(caches[1].images))
    assert caches[0].bands == caches[1].bands


def test_prepare_of_a_16_bit_png_through_the_cli(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(grey16(40, 40)).save(root / "images" / "a.png")
    Image.fromarray(halves(40, 40)[1]).save(root / "masks" / "a.png")
    proc = run_cli("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "16")
    assert proc.returncode == 0, proc.stderr
    patches = np.fromfile(tmp_path / "cache" / "images.u8", np.uint8)
    assert (patches == 255).mean() < 0.05
