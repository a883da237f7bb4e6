"""GeoTIFF as training data: any band count, uint16 scaled per band as predict scales it, --bands, bad pairs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aerotune.data.palette import Palette
from aerotune.data.patches import open_cache
from aerotune.model.checkpoint import load_checkpoint
from aerotune.predict.io import SceneRows
from aerotune.predict.run import open_for
from aerotune.predict.scene import Predictor

from helpers import ROOT, aerotune, assert_one_line_error, write_tif

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

rasterio = pytest.importorskip("rasterio", reason="needs aerotune[geo]")

PALETTE = Palette.dubai()
TINY = ("--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.batch_size=4")


def bands16(h: int, w: int, seed: int, count: int = 4) -> np.ndarray:
    """``count`` uint16 bands, each in its own range (as sensor bands are), ``(count, h, w)``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 1000, (count, h, w))
    offsets = np.arange(count)[:, None, None] * 9000 + 500
    return (base * (np.arange(count)[:, None, None] + 1) + offsets).astype(np.uint16)


def colour_mask(h: int, w: int, seed: int) -> np.ndarray:
    """A 3-band uint8 GeoTIFF mask in the Dubai palette's colours, ``(3, h, w)``."""
    ids = np.random.default_rng(seed + 100).integers(0, PALETTE.num_classes, (h, w)).astype(np.uint8)
    return PALETTE.decode(ids).transpose(2, 0, 1)


def geo_dataset(root, *, n: int = 3, size: tuple[int, int] = (64, 64), count: int = 4):
    for part in ("images", "masks"):
        (root / part).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_tif(root / "images" / f"s{i}.tif", bands16(*size, seed=i, count=count))
        write_tif(root / "masks" / f"s{i}.tif", colour_mask(*size, seed=i))
    return root


@pytest.fixture(scope="module")
def geo_root(tmp_path_factory):
    return geo_dataset(tmp_path_factory.mktemp("geo") / "data")


@pytest.fixture(scope="module")
def geo_run(geo_root, tmp_path_factory):
    """A tiny model trained 2 epochs on the 4-band uint16 set, through the CLI."""
    out = tmp_path_factory.mktemp("georun")
    proc = aerotune("data", "prepare", geo_root, "--out", out / "cache", "--patch-size", "32")
    assert proc.returncode == 0, proc.stderr
    proc = aerotune("train", "--data", out / "cache", "--out", out / "run", "--epochs", "2", *TINY)
    assert proc.returncode == 0, proc.stderr
    return out


def test_four_band_uint16_set_trains_and_predicts_a_georeferenced_map(geo_root, geo_run, tmp_path):
    cache = open_cache(geo_run / "cache")
    assert cache.images.shape[1:] == (32, 32, 4) and len(cache) == 12
    bands = cache.manifest["bands"]
    assert bands["count"] == 4 and bands["select"] is None
    # the training set's 0.5 and 99.5 percentiles per band, pooled over every image (each small enough to read whole)
    pooled = np.concatenate([rasterio.open(p).read().reshape(4, -1) for p in sorted(geo_root.glob("images/*"))], 1)
    for k in range(4):
        lo, hi = np.percentile(pooled[k], [0.5, 99.5], method="inverted_cdf")
        assert (bands["scaling"]["lo"][k], bands["scaling"]["hi"][k]) == (lo, hi)
    ckpt = load_checkpoint(geo_run / "run" / "checkpoints" / "best.pt")
    assert ckpt["bands"] == bands
    predictor = Predictor.load(geo_run / "run")
    assert predictor.num_bands == 4
    assert next(p for p in predictor.model.parameters() if p.dim() == 4).shape[1] == 4  # the first convolution
    assert json.loads((geo_run / "run" / "metrics.json").read_text())["epochs"] == 2

    # predict reads a training image exactly as the cache holds it: same bands, same scaling
    scene = open_for(predictor, geo_root / "images" / "s0.tif")
    rows = SceneRows(scene).read(0, 64)
    for k, (src, r, c) in enumerate(cache.manifest["patches"]):
        if src == 0:
            np.testing.assert_array_equal(cache.images[k], rows[r : r + 32, c : c + 32])

    write_tif(tmp_path / "scene.tif", bands16(70, 90, seed=9))
    proc = aerotune("predict", tmp_path / "scene.tif", "--model", geo_run / "run", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    with rasterio.open(tmp_path / "out" / "scene.tif") as out, rasterio.open(tmp_path / "scene.tif") as src:
        assert (out.width, out.height, out.count, out.dtypes[0]) == (90, 70, 1, "uint8")
        assert out.crs == src.crs and out.transform == src.transform
        assert out.read(1).max() < PALETTE.num_classes
    write_tif(tmp_path / "rgb.tif", bands16(40, 40, seed=3, count=3))
    proc = aerotune("predict", tmp_path / "rgb.tif", "--model", geo_run / "run", "--out", tmp_path / "out3")
    assert_one_line_error(proc, "rgb.tif: 3 band(s) selected but the model takes 4")
    assert not (tmp_path / "out3").exists()
    Image.new("RGB", (40, 40)).save(tmp_path / "photo.png")
    proc = aerotune("predict", tmp_path / "photo.png", "--model", geo_run / "run", "--out", tmp_path / "out3")
    assert_one_line_error(proc, "photo.png: an RGB image (3 bands) but the model takes 4")


def test_report_of_a_four_band_run(geo_run, tmp_path):
    proc = aerotune("report", geo_run / "run", "--out", tmp_path / "report", "--max-patches", "4")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report" / "report.html").is_file()


def test_bands_pick_and_order_the_channels_and_predict_uses_them_by_default(geo_root, tmp_path):
    proc = aerotune(
        "train", "--data", geo_root, "--bands", "4,2,1", "--patch-size", "32", "--out", tmp_path / "run",
        "--epochs", "1", *TINY,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    cache = open_cache(json.loads((tmp_path / "run" / "data.json").read_text())["cache"])
    assert config["data"]["bands"] == "4,2,1" and cache.images.shape[-1] == 3
    assert cache.manifest["bands"]["select"] == [4, 2, 1]
    # channel 0 is band 4: its range is band 4's (the bands have disjoint ranges)
    assert cache.manifest["bands"]["scaling"]["lo"][0] > 27000 > cache.manifest["bands"]["scaling"]["hi"][2]
    scene = geo_root / "images" / "s1.tif"
    by_default = aerotune("predict", scene, "--model", tmp_path / "run", "--out", tmp_path / "a")
    assert by_default.returncode == 0, by_default.stderr
    chosen = aerotune("predict", scene, "--model", tmp_path / "run", "--out", tmp_path / "b", "--bands", "4,2,1")
    assert chosen.returncode == 0, chosen.stderr
    with rasterio.open(tmp_path / "a" / "s1.tif") as a, rasterio.open(tmp_path / "b" / "s1.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    write_tif(tmp_path / "rgb.tif", bands16(40, 40, seed=3, count=3))
    proc = aerotune("predict", tmp_path / "rgb.tif", "--model", tmp_path / "run", "--out", tmp_path / "d")
    assert_one_line_error(proc, "rgb.tif: has 3 band(s), no band 4; pass --bands")


def test_single_band_geotiff_masks_of_class_ids(tmp_path):
    root = tmp_path / "data"
    geo_dataset(root, n=1, count=2)
    ids = np.random.default_rng(5).choice([0, 3, 7], (64, 64)).astype(np.uint16)
    write_tif(root / "masks" / "s0.tif", ids[None])
    (tmp_path / "ids.toml").write_text("Land = 0\nRoad = 3\nWater = 7\n")
    proc = aerotune(
        "data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32", "--classes", tmp_path / "ids.toml"
    )
    assert proc.returncode == 0, proc.stderr
    cache = open_cache(tmp_path / "cache")
    assert cache.images.shape[-1] == 2
    expected = np.searchsorted([0, 3, 7], ids)
    for k, (_, r, c) in enumerate(cache.manifest["patches"]):
        np.testing.assert_array_equal(cache.masks[k], expected[r : r + 32, c : c + 32])


def _break(root, case: str) -> None:
    if case == "sizes differ":
        write_tif(root / "masks" / "s1.tif", colour_mask(64, 48, seed=1))
    elif case == "float mask":
        write_tif(root / "masks" / "s1.tif", np.zeros((1, 64, 64), np.float32))
    elif case == "band counts differ":
        write_tif(root / "images" / "s1.tif", bands16(64, 64, seed=1, count=3))
    elif case == "float image":
        write_tif(root / "images" / "s1.tif", np.zeros((4, 64, 64), np.float32))


CASES = {
    "sizes differ": ((), ["masks/s1.tif", "mask is 48x64 but its image is 64x64"]),
    "float mask": ((), ["masks/s1.tif", "mask holds float32 values"]),
    "unknown band": (("--bands", "1,5"), ["images/s0.tif", "has 4 band(s), no band 5"]),
    "band counts differ": ((), ["images/s1.tif", "3 band(s) but", "s0.tif has 4"]),
    "float image": ((), ["images/s1.tif", "GeoTIFF of float32 values"]),
    "bad --bands": (("--bands", "1,x"), ["data.bands (--bands) '1,x'", "separated by commas"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_geotiff_pairs_are_one_line_before_anything_is_written(tmp_path, case):
    root = geo_dataset(tmp_path / "data", n=2)
    _break(root, case)
    options, needles = CASES[case]
    proc = aerotune("data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", "32", *options)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "cache").exists()
    if case == "unknown band":  # inspect checks the bands too
        proc = aerotune("data", "inspect", root, "--patch-size", "32", *options)
        assert proc.returncode == 1 and "s0.tif: has 4 band(s), no band 5" in proc.stdout, proc.stdout


@pytest.mark.parametrize("options", [(), ("--bands", "1,2,3")])
def test_without_rasterio_one_line_names_the_extra(tmp_path, options):
    root = geo_dataset(tmp_path / "data", n=2)
    code = (
        "import sys; sys.modules['rasterio'] = None; from aerotune.commands import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["data", "prepare", str(root), "--out", str(tmp_path / "cache"), "--patch-size", "32", *options]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert_one_line_error(proc, 'pip install "aerotune[geo]"')
    assert not (tmp_path / "cache").exists()


def test_onnx_export_carries_the_bands_and_their_scaling(geo_run, tmp_path):
    pytest.importorskip("onnxruntime", reason="needs aerotune[onnx]")
    from aerotune.predict.load import load_model
    from aerotune.predict.onnx import export_onnx

    onnx_model = load_model(export_onnx(geo_run / "run", tmp_path / "m.onnx"))
    assert onnx_model.trained == Predictor.load(geo_run / "run").trained and onnx_model.num_bands == 4
    write_tif(tmp_path / "scene.tif", bands16(40, 50, seed=4))
    proc = aerotune("predict", tmp_path / "scene.tif", "--model", tmp_path / "m.onnx", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr


def test_a_damaged_bands_entry_in_a_checkpoint_is_one_line(geo_run, tmp_path):
    from aerotune.errors import RunError

    ckpt = load_checkpoint(geo_run / "run" / "checkpoints" / "best.pt")
    ckpt["bands"] = {"count": 4, "select": [1, 2]}
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(RunError, match="bad.pt: the checkpoint's 'bands' entry is unreadable"):
        Predictor.load(tmp_path / "bad.pt")
