"""ONNX export: softmax outputs match PyTorch, dynamic batch and size, metadata, predict without torch."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aerotune.config import RunConfig
from aerotune.predict.scene import Predictor
from aerotune.train.fit import fit

from helpers import ROOT, aerotune, assert_one_line_error
from snapshot import assert_unchanged, snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

onnx = pytest.importorskip("onnx", reason="needs aerotune[onnx]")
ort = pytest.importorskip("onnxruntime", reason="needs aerotune[onnx]")
pytest.importorskip("onnxscript", reason="needs aerotune[onnx]")

#: Largest difference allowed between onnxruntime's and PyTorch's softmax outputs (both fp32 on CPU).
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tiny_cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx")
    config = RunConfig().with_overrides(
        {
            "model.base_filters": 4,
            "model.depth": 3,
            "train.epochs": 1,
            "data.patch_size": 32,
            "train.progress": False,
            "data.normalization": "meanstd",
            "train.precision": "fp32",  # PyTorch's side in fp32 too, on CPUs with native bf16 as well
        }
    )
    fit(config, tiny_cache, tmp / "run")
    proc = aerotune("export", tmp / "run", "--format", "onnx", "--out", tmp / "model.onnx")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "model.onnx" in proc.stdout
    return tmp / "run", tmp / "model.onnx"


def test_softmax_matches_pytorch_with_dynamic_batch_and_size(exported):
    from aerotune.predict.onnx import OnnxPredictor

    run, path = exported
    torch_model, onnx_model = Predictor.load(run, device="cpu"), OnnxPredictor.load(path)
    rng = np.random.default_rng(0)
    for shape in [(1, 32, 32, 3), (5, 32, 32, 3), (2, 64, 96, 3)]:
        windows = rng.integers(0, 256, shape, dtype=np.uint8)
        a, b = torch_model.scorer()(windows), onnx_model.scorer()(windows)
        assert a.shape == b.shape == (shape[0], 6, shape[1], shape[2])
        assert np.abs(a - b).max() < TOLERANCE


def test_metadata_carries_palette_normalisation_and_window(exported):
    run, path = exported
    meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["aerotune"])
    predictor = Predictor.load(run)
    assert meta["classes"] == predictor.palette.to_dict()
    assert meta["normalization"] == "meanstd" and np.allclose(meta["norm_stats"], predictor.stats)
    assert meta["patch_size"] == 32 and meta["bands"] == 3


def test_predict_with_onnx_runs_without_torch(exported, tmp_path):
    run, path = exported
    image = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    code = (
        "import sys; from aerotune.commands import main; rc = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "predict",
            str(tmp_path / "a.png"),
            "--model",
            str(path),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out" / "a.png") as im:
        onnx_ids = np.asarray(im)
    torch_ids = Predictor.load(run).segment(Image.fromarray(image))
    assert (onnx_ids == torch_ids).mean() > 0.999


def test_onnx_files_that_are_not_ours(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    for name, needle in [("other.onnx", "without aerotune metadata"), ("junk.onnx", "not a readable ONNX model")]:
        proc = aerotune("predict", tmp_path / "a.png", "--model", tmp_path / name, "--out", tmp_path / "out")
        assert_one_line_error(proc, needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "target, needle",
    [
        ("missing/model.onnx", "does not exist; create that folder first"),
        (".", "is a folder; give a file name"),
        ("notes.txt", "is not an aerotune ONNX export"),
    ],
)
def test_export_refuses_a_bad_out_before_any_work(exported, tmp_path, target, needle):
    (tmp_path / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    proc = aerotune("export", exported[0], "--out", tmp_path / target)
    assert_one_line_error(proc, needle)
    assert_unchanged(before, tmp_path)


def test_an_exported_model_evaluates_its_runs_layout_without_options(synth_root, tmp_path):
    """A run trained on a DeepGlobe-like folder (``x_sat.jpg`` beside ``x_mask.png``) is exported; ``evaluate``
    with the ONNX file finds the pairs the way the run did, with no layout options (they travel in the file)."""
    from aerotune.predict.onnx import OnnxPredictor

    from helpers import deepglobe_layout

    flat = deepglobe_layout(synth_root, tmp_path / "flat")
    layout = ("--image-suffix", "_sat", "--mask-suffix", "_mask")
    tiny = ("--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.progress=false")
    run = tmp_path / "run"
    proc = aerotune("train", "--data", flat, "--out", run, "--patch-size", "32", "--epochs", "1", *layout, *tiny)
    assert proc.returncode == 0, proc.stderr
    assert aerotune("export", run, "--format", "onnx", "--out", tmp_path / "m.onnx").returncode == 0
    config = OnnxPredictor.load(tmp_path / "m.onnx").config
    assert config is not None and (config.data.image_suffix, config.data.mask_suffix) == ("_sat", "_mask")

    proc = aerotune("evaluate", tmp_path / "m.onnx", "--data", flat, "--out", tmp_path / "eval", "--split", "all")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(metrics["tta"]["none"]["images"]) == len(list(flat.glob("*_sat*")))


def test_settings_from_another_version_do_not_stop_the_model(exported, tmp_path):
    """Only ``evaluate`` reads the run's settings from the metadata: settings it cannot parse (another aerotune
    version) are ignored with a warning, and the model still segments scenes."""
    from aerotune.predict.onnx import OnnxPredictor

    _run, path = exported
    graph = onnx.load(str(path))
    entry = next(p for p in graph.metadata_props if p.key == "aerotune")
    meta = json.loads(entry.value)
    meta["config"] = {"train": {"a_setting_of_the_future": 1}}
    entry.value = json.dumps(meta)
    onnx.save(graph, str(tmp_path / "other.onnx"))
    predictor = OnnxPredictor.load(tmp_path / "other.onnx")
    assert predictor.config is None and predictor.patch_size == 32
