"""GeoTIFF in and out: same CRS, transform and size; probabilities; band selection; uint16 scaling; no georef."""

import logging
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aerotune.config import RunConfig
from aerotune.errors import DatasetError
from aerotune.predict.io import SceneRows, open_scene
from aerotune.predict.run import predict_files
from aerotune.predict.scene import Predictor
from aerotune.train.fit import fit

from helpers import ROOT, aerotune, assert_one_line_error, write_tif

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

rasterio = pytest.importorskip("rasterio", reason="needs aerotune[geo]")


@pytest.fixture(scope="module")
def run(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("geo") / "run"
    config = RunConfig().with_overrides(
        {"model.base_filters": 4, "model.depth": 3, "train.epochs": 1, "data.patch_size": 32, "train.progress": False}
    )
    fit(config, tiny_cache, out)
    return out


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_geotiff_class_map_keeps_crs_transform_and_size(run, tmp_path):
    image = rgb(300, 270)
    write_tif(tmp_path / "scene.tif", image.transpose(2, 0, 1))
    Image.fromarray(image).save(tmp_path / "same.png")
    out = tmp_path / "out"
    written = predict_files(Predictor.load(run), [tmp_path / "scene.tif"], out, probabilities=True)
    assert [p.name for p in written] == ["scene.tif", "scene_probabilities.tif"]
    with rasterio.open(out / "scene.tif") as mask, rasterio.open(tmp_path / "scene.tif") as src:
        assert (mask.width, mask.height, mask.count, mask.dtypes[0]) == (270, 300, 1, "uint8")
        assert mask.crs == src.crs and mask.transform == src.transform
        assert mask.profile["tiled"] and mask.compression.value == "DEFLATE"
        assert mask.colormap(1)[1][:3] == Predictor.load(run).palette.colors[1]
        ids = mask.read(1)
    with rasterio.open(out / "scene_probabilities.tif") as probs:
        assert probs.count == 6 and probs.crs == src.crs
        p = probs.read().astype(int)
    assert np.abs(p.sum(axis=0) - 255).max() <= 6  # each class rounded to 1/255
    # the class map's class is the most probable one at every pixel, up to each probability's rounding to 1/255
    # (a one-epoch model is unsure: two classes often round to the same value, so argmax alone would be a coin toss)
    chosen = np.take_along_axis(p, ids[None].astype(int), axis=0)[0]
    assert (chosen >= p.max(axis=0) - 1).all()
    assert (p.argmax(axis=0) == ids)[p.max(axis=0) - np.sort(p, axis=0)[-2] > 1].all()
    png = predict_files(Predictor.load(run), [tmp_path / "same.png"], tmp_path / "png")[0]
    np.testing.assert_array_equal(np.asarray(Image.open(png)), ids)  # same pixels, same classes


def test_band_selection_and_uint16_scaling(run, tmp_path):
    image = rgb(64, 80, seed=2)
    nir = np.full((1, 64, 80), 7, np.uint8)
    write_tif(tmp_path / "four.tif", np.concatenate([image.transpose(2, 0, 1), nir]))
    with pytest.raises(DatasetError, match="4 band\\(s\\) selected but the model takes 3; pick them with --bands"):
        open_scene(tmp_path / "four.tif")
    rows = SceneRows(open_scene(tmp_path / "four.tif", bands=(3, 2, 1)))
    np.testing.assert_array_equal(rows.read(0, 64), image[..., ::-1])
    rows.close()
    ramp = np.linspace(1000, 41000, 64 * 80).reshape(64, 80).astype(np.uint16)
    write_tif(tmp_path / "deep.tif", np.stack([ramp, ramp, 40000 - ramp // 2]))
    rows = SceneRows(open_scene(tmp_path / "deep.tif"))
    got = rows.read(0, 64).astype(int)
    rows.close()
    assert got[0, 0, 0] <= 2 and got[-1, -1, 0] >= 253 and got[-1, -1, 2] <= 2  # each band by its own range
    assert (np.diff(got[..., 0].ravel()) >= 0).all()  # order kept
    proc = aerotune("predict", tmp_path / "four.tif", "--model", run, "--out", tmp_path / "out")
    assert_one_line_error(proc, "four.tif: 4 band(s) selected")
    assert not (tmp_path / "out").exists()
    proc = aerotune("predict", tmp_path / "four.tif", "--bands", "1,2,3", "--model", run, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "four.tif").is_file()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the test's own writes and reads
def test_geotiff_without_georeference_still_works(run, tmp_path, caplog):
    write_tif(tmp_path / "plain.tif", rgb(40, 50).transpose(2, 0, 1), crs=None)
    with caplog.at_level(logging.WARNING, logger="aerotune"):
        predict_files(Predictor.load(run), [tmp_path / "plain.tif"], tmp_path / "out")
    assert "plain.tif: no georeference" in caplog.text
    with rasterio.open(tmp_path / "out" / "plain.tif") as mask:
        assert mask.crs is None and (mask.width, mask.height) == (50, 40)


def test_without_rasterio_one_line_names_the_extra(run, tmp_path):
    write_tif(tmp_path / "scene.tif", rgb(40, 50).transpose(2, 0, 1))
    code = (
        "import sys; sys.modules['rasterio'] = None; from aerotune.commands import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "predict",
            str(tmp_path / "scene.tif"),
            "--bands",
            "1,2,3",
            "--model",
            str(run),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert_one_line_error(proc, 'pip install "aerotune[geo]"')
