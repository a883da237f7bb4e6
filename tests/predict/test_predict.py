import numpy as np
import pytest
from PIL import Image

from aerotune.config import DataConfig, RunConfig
from aerotune.data.patches import prepare_patches
from aerotune.errors import DatasetError, RunError
from aerotune.predict.scene import Predictor, predict_files
from aerotune.train.fit import fit

from helpers import PALETTE, aerotune, make_tiled

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    root = make_tiled(tmp / "d", tiles=2, per_tile=2, size=(64, 64))
    cache = prepare_patches(root, tmp / "c", DataConfig(patch_size=32), PALETTE)
    config = RunConfig().with_overrides(
        {"model.base_filters": 4, "model.depth": 3, "train.epochs": 1, "data.patch_size": 32, "train.progress": False}
    )
    fit(config, cache, tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("size", [(100, 70), (20, 45), (32, 32)])
def test_masks_have_the_scene_size_and_palette(run, tmp_path, size):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    img.save(tmp_path / "scene one.jpg")
    written = predict_files(Predictor.load(run), [tmp_path / "scene one.jpg"], tmp_path / "out", overlay=True)
    assert [p.name for p in written] == ["scene one.png", "scene one_overlay.jpg"]
    mask = Image.open(tmp_path / "out" / "scene one.png")
    assert mask.mode == "P" and mask.size == size
    ids, unknown = PALETTE.encode(np.asarray(mask.convert("RGB")))
    assert not unknown


def test_scores_are_probabilities_and_windows_blend(run):
    predictor = Predictor.load(run / "checkpoints" / "best.pt")
    image = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    s = predictor.scores(image)
    assert s.shape == (6, 70, 90)
    assert np.allclose(s.sum(axis=0), 1, atol=1e-4)


def test_bad_inputs(run, tmp_path):
    with pytest.raises(RunError, match="no checkpoint found"):
        Predictor.load(tmp_path)
    with pytest.raises(DatasetError, match="no such image or folder"):
        predict_files(Predictor.load(run), [tmp_path / "missing.jpg"], tmp_path / "out")
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    proc = aerotune("predict", tmp_path / "broken.jpg", "--model", run, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "broken.jpg: cannot read image" in proc.stderr and "Traceback" not in proc.stderr
