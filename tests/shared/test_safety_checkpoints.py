"""Bad checkpoints: refused in one line (exit 2), no code run, and no output folder left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from safety_runs import copy_tree, refused, trained_run

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


class _RunsCode:
    """Unpickling this object would create a folder: proof that a checkpoint could run code."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (os.makedirs, (str(self.flag),))


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_root) -> Path:
    return trained_run(tmp_path_factory, synth_root)


def _edited(run: Path, path: Path, change) -> Path:
    ckpt = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    return path


def _fewer_classes(ckpt: dict) -> None:
    ckpt["palette"].popitem()  # name -> colour: one class less than the weights were trained for


def _deeper(ckpt: dict) -> None:
    ckpt["config"]["model"]["depth"] = 2


BAD = {
    "text": lambda run, p: p.write_text("this is not a model\n") and p,
    "empty": lambda run, p: p.write_bytes(b"") or p,
    "truncated": lambda run, p: p.write_bytes((run / "checkpoints" / "best.pt").read_bytes()[:5000]) and p,
    "no-keys": lambda run, p: torch.save({"weights": torch.zeros(3)}, p) or p,
    "not-a-dict": lambda run, p: torch.save([torch.zeros(3)], p) or p,
    "other-classes": lambda run, p: _edited(run, p, _fewer_classes),
    "other-architecture": lambda run, p: _edited(run, p, _deeper),
    "bad-config": lambda run, p: _edited(run, p, lambda c: c["config"]["model"].update(depth="deep")),
    "model-not-dict": lambda run, p: _edited(run, p, lambda c: c.update(model=[1, 2])),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_predict_refuses_a_bad_checkpoint(tmp_path, run, kind):
    model = BAD[kind](run, tmp_path / "model.pt")
    refused(
        [tmp_path, run],
        "predict",
        _scene(tmp_path),
        "--model",
        model,
        "--out",
        tmp_path / "masks",
        needles=("model.pt",),
    )
    assert not (tmp_path / "masks").exists()


def _scene(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), (90, 120, 60)).save(path)
    return path


def test_a_pickle_that_would_run_code_stays_refused(tmp_path, run):
    flag = tmp_path / "code-ran"
    torch.save({"model": _RunsCode(flag), "config": {}, "palette": {}}, tmp_path / "model.pt")
    refused(
        [tmp_path, run],
        "predict",
        _scene(tmp_path),
        "--model",
        tmp_path / "model.pt",
        "--out",
        tmp_path / "masks",
        needles=("model.pt", "could run code"),
    )
    assert not flag.exists()
    assert not (tmp_path / "masks").exists()


@pytest.mark.parametrize(
    "kind, needle", [("truncated", "last.pt"), ("text", "last.pt"), ("other-architecture", "model.depth")]
)
def test_resume_with_a_corrupt_last_checkpoint(tmp_path, run, kind, needle):
    mine = copy_tree(run, tmp_path / "run")
    last = mine / "checkpoints" / "last.pt"
    BAD[kind](run, last)
    refused(
        [tmp_path, run],
        "train",
        "--data",
        mine / "cache",
        "--out",
        mine,
        "--epochs",
        "2",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "train.batch_size=16",
        needles=(needle,),
    )


def test_report_refuses_a_run_with_a_corrupt_best_checkpoint(tmp_path, run):
    mine = copy_tree(run, tmp_path / "run")
    BAD["truncated"](run, mine / "checkpoints" / "best.pt")
    refused([tmp_path, run], "--quiet", "report", mine, "--out", tmp_path / "report", needles=("best.pt",))
    assert not (tmp_path / "report").exists()
