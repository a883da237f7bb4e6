"""The records of a training run and a patch cache read what older versions wrote, and write it back unchanged."""

import json

import pytest

from aerotune.config import RunConfig
from aerotune.data.manifest import CacheManifest
from aerotune.errors import RunError
from aerotune.model.checkpoint import Checkpoint
from aerotune.train.records import EpochRecord

from helpers import PALETTE

ROW = {"epoch": 3, "train_loss": 0.9, "val_loss": 0.8, "val_mean_iou": 0.4, "seconds": 1.5}


def test_a_history_row_reads_and_writes_the_flat_row():
    row = EpochRecord.from_json(ROW)
    assert row.to_json() == ROW and list(row.to_json()) == list(ROW)  # same keys, same order (history.csv)
    assert row["val_loss"] == 0.8 and row["epoch"] == 3 and row.get("missing") is None and "seconds" in row
    assert dict(row) == ROW
    old = {k: v for k, v in ROW.items() if k != "seconds"}  # a row without its time
    assert EpochRecord.from_json(old).to_json() == old
    with pytest.raises(RunError, match="epoch"):
        EpochRecord.from_json({"val_loss": 1.0})


def test_a_checkpoint_written_before_bands_and_schedules_reads():
    old = {"model": {}, "config": RunConfig().to_dict(), "palette": PALETTE.to_dict(), "epoch": 2, "history": [ROW]}
    ckpt = Checkpoint.from_json(old, where="old.pt")
    assert ckpt.bands.count == 3 and ckpt.schedule_epochs is None and ckpt.split is None and ckpt.epoch == 2
    assert [row.to_json() for row in ckpt.history] == [ROW]
    state = ckpt.to_state({}, None)
    assert "optimizer" not in state and state["config"] == old["config"] and state["palette"] == old["palette"]
    with pytest.raises(RunError, match="checkpoint settings are unreadable"):
        Checkpoint.from_json({**old, "palette": "nope"}, where="bad.pt")


def test_a_cache_manifest_keeps_its_shape():
    manifest = {
        "version": 1,
        "root": "/data",
        "count": 1,
        "settings": {"patch_size": 32},
        "palette": PALETTE.to_dict(),
        "bands": None,
        "ignore_index": 255,
        "sources": [{"image": "images/a.jpg", "mask": "masks/a.png", "tile": "", "stem": "a"}],
        "patches": [[0, 0, 0]],
        "pixels": {"labelled": 1},
        "skipped": [],
        "inputs_hash": "abc",
    }
    record = CacheManifest.from_json(json.loads(json.dumps(manifest)))
    assert json.dumps(record.to_json()) == json.dumps(manifest)  # byte for byte, key order included
    shown = {**manifest, "mask_colors": {"water": "#0000ff"}}
    assert json.dumps(CacheManifest.from_json(shown).to_json()) == json.dumps(shown)
