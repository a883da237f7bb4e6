"""Whole scenes in bounded memory: strip-by-strip blending, full coverage, seams, streamed PNG masks, safety."""

import numpy as np
import pytest
from PIL import Image

from aerotune.config import RunConfig, load_config
from aerotune.data.sources import read_image
from aerotune.errors import DatasetError
from aerotune.predict.io import PngRowWriter
from aerotune.predict.run import predict_files, scene_accuracy, segment_array
from aerotune.predict.scene import Predictor
from aerotune.predict.tta import with_tta
from aerotune.predict.window import blend_window, stream_scene
from aerotune.train.fit import fit

from helpers import PALETTE, aerotune, assert_one_line_error

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def run(tiny_cache, tmp_path_factory):
    """A small U-Net trained for 3 epochs on 32-px synthetic patches, the reference's recipe (whole patches, no
    augmentation): enough for border effects to show."""
    out = tmp_path_factory.mktemp("scene") / "run"
    config = load_config(None, preset="reference").with_overrides(
        {"model.base_filters": 8, "model.depth": 3, "train.epochs": 3, "data.patch_size": 32, "train.progress": False}
    )
    fit(config, tiny_cache, out)
    return out


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """One synthetic 192-px scene with its mask, from the generator the model was trained on."""
    from aerotune.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("scene") / "data", scenes=1, size=192, seed=5, tiles=1).root


def pixelwise(batch: np.ndarray) -> np.ndarray:
    """A position-free 'model': each pixel's probabilities depend on its own value only."""
    x = batch.astype(np.float32) / 255.0
    logits = np.stack([x[..., 0], x[..., 1], x[..., 2], 1 - x[..., 0]], axis=1) * 4
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("size", [(70, 45), (20, 9), (32, 32), (101, 64), (1, 40)])
@pytest.mark.parametrize("blend", ["smooth", "uniform"])
def test_every_pixel_is_covered_once_normalised(size, blend):
    h, w = size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    reads, rows = [], []

    def read(r0, r1):
        reads.append((r0, r1))
        return image[r0:r1]

    stream_scene(
        read,
        h,
        w,
        pixelwise,
        patch=32,
        num_classes=4,
        overlap=0.25,
        blend=blend,
        emit=lambda r0, p: rows.append((r0, p)),
    )
    assert [r0 for r0, _ in rows] == sorted(r0 for r0, _ in rows)  # top to bottom
    got = np.concatenate([p for _, p in rows], axis=1)
    expected = pixelwise(image[None])[0]
    assert got.shape == (4, h, w)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert all(r1 - r0 <= 32 for r0, r1 in reads)  # one strip of windows at a time, never the scene


def test_blend_window_cross_fades():
    w = blend_window(32, 8)[16]  # the middle row: flat top, cosine ramps over the overlap
    assert w.min() > 0 and w[8:24].min() == 1
    assert np.allclose(w[:8] + w[24:], 1, atol=1e-3)  # two neighbours' weights sum to one across the overlap
    assert (blend_window(32, 8, "uniform") == 1).all()


def test_tta_undoes_each_transform():
    image = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    for mode in ("flips", "d4"):  # a position-free model sees the same pixels under every transform
        np.testing.assert_allclose(with_tta(pixelwise, mode)(image), pixelwise(image), atol=1e-6)

    def left_edge(batch):  # a model that marks the left column only: TTA must map it back per view
        out = np.zeros((batch.shape[0], 2, 16, 16), np.float32)
        out[:, 0, :, 0] = 1
        out[:, 1] = 1 - out[:, 0]
        return out

    d4 = with_tta(left_edge, "d4")(image)[0, 0]
    # each view's left column maps back onto one of the 4 edges, each edge twice out of 8 views
    assert [d4[8, 0], d4[8, 15], d4[0, 8], d4[15, 8], d4[0, 15], d4[8, 8]] == pytest.approx(
        [0.25, 0.25, 0.25, 0.25, 0.5, 0]
    )


def test_smooth_blend_hides_seams_better_than_uniform(run, scene):
    predictor = Predictor.load(run)
    image = np.asarray(read_image(next(scene.glob("*/images/*"))))
    disagreement = {}
    for blend in ("smooth", "uniform"):
        for d in (8, 11):  # a shift by a quarter and a third of the 32-px window
            a = predictor.scores(image, overlap=0.5, blend=blend)
            b = predictor.scores(image[d:, d:], overlap=0.5, blend=blend)
            diff = np.abs(a[:, d + 32 : -32, d + 32 : -32] - b[:, 32:-32, 32:-32]).mean()
            disagreement[blend] = disagreement.get(blend, 0) + diff
    assert disagreement["smooth"] < 0.7 * disagreement["uniform"], disagreement


def test_png_rows_writer_streams_a_valid_palette_png(tmp_path):
    ids = np.random.default_rng(0).integers(0, 6, (300, 123), dtype=np.uint8)
    w = PngRowWriter(tmp_path / "m.png", 123, 300, palette=PALETTE)
    for r in range(0, 300, 7):
        w.write(ids[r : r + 7])
    done = w.close()  # complete, under a temporary name: the caller renames it once every scene is done
    assert not (tmp_path / "m.png").exists() and done.name.startswith(".m.png.tmp")
    done.replace(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "P" and im.size == (123, 300)
        np.testing.assert_array_equal(np.asarray(im), ids)
        assert im.getpalette()[:18] == [v for c in PALETTE.colors for v in c]
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_scaled_model_masks_keep_the_scene_size(run, tmp_path):
    predictor = Predictor.load(run)
    predictor.config = RunConfig.from_dict(
        {**predictor.config.to_dict(), "data": {**predictor.config.to_dict()["data"], "scale": 0.5}}
    )
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (77, 130, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    ids = segment_array(predictor, tmp_path / "a.png")
    assert ids.shape == (77, 130)
    np.testing.assert_array_equal(ids, predictor.segment(read_image(tmp_path / "a.png")))


def test_scene_accuracy_for_the_demo(run, scene):
    image = next(scene.glob("*/images/*"))
    acc = scene_accuracy(Predictor.load(run), image, next(scene.glob("*/masks/*")))
    assert 0.3 < acc <= 1  # trained 3 epochs on the same generator: far better than chance (1/6)


def test_out_may_not_be_an_input_folder_nothing_written(run, tmp_path):
    folder = tmp_path / "scenes"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "a.png")
    before = sorted(folder.iterdir())
    with pytest.raises(DatasetError, match="overwrite"):
        predict_files(Predictor.load(run), [folder], folder)
    assert sorted(folder.iterdir()) == before
    proc = aerotune("predict", folder / "a.png", "--model", run, "--out", folder)
    assert_one_line_error(proc, "overwrite")
    assert sorted(folder.iterdir()) == before


def test_a_bad_input_creates_no_out_folder(run, tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="broken.png: cannot read image"):
        predict_files(Predictor.load(run), [tmp_path / "good.png", tmp_path / "broken.png"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_predict_with_options(run, tmp_path):
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    proc = aerotune(
        "predict",
        tmp_path / "a.jpg",
        "--model",
        run,
        "--out",
        tmp_path / "out",
        "--tta",
        "flips",
        "--overlap",
        "0.5",
        "--blend",
        "uniform",
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.size == (70, 50) and im.mode == "P"


def test_a_scene_beyond_pillows_limit_points_to_geotiff(run, tmp_path, monkeypatch):
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(tmp_path / "huge.png")
    monkeypatch.setenv("AEROTUNE_MAX_IMAGE_PIXELS", "1000")  # stands in for a 200-megapixel PNG
    with pytest.raises(DatasetError, match="more than the limit.*tiled GeoTIFF.*aerotune\\[geo\\]"):
        predict_files(Predictor.load(run), [tmp_path / "huge.png"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
