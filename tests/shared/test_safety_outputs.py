"""The output rule, for every command that writes: refused outputs leave every file as it was, in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from safety_runs import TINY, aerotune, assert_refused, copy_tree, read_only, refused, trained_run, tuned_run, unchanged
from snapshot import snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

COMMANDS = ["train", "tune", "prepare", "report", "predict", "synth", "demo"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, synth_root) -> dict[str, Path]:
    run = trained_run(tmp_path_factory, synth_root)
    scene = next(synth_root.glob("Tile 1/images/*.jpg"))
    return {
        "data": synth_root,
        "run": run,
        "cache": run / "cache",
        "scene": scene,
        "tune": tuned_run(tmp_path_factory, synth_root),
    }


def command(name: str, out: Path, s: dict[str, Path]) -> list:
    """The command line of ``name`` writing to ``out``, reading the shared runs."""
    return {
        "train": ["train", "--data", s["cache"], "--out", out, "--epochs", "1", *TINY],
        "tune": ["tune", "--data", s["cache"], "--out", out, "--trials", "2", "--epochs", "1", *TINY],
        "prepare": ["data", "prepare", s["data"], "--out", out, "--patch-size", "32"],
        "report": ["report", s["run"], "--out", out],
        "predict": ["predict", s["scene"], "--model", s["run"], "--out", out],
        "synth": ["data", "synth", out, "--scenes", "1", "--size", "64"],
        "demo": ["demo", "--out", out, "--quick"],
    }[name]


def inputs(s: dict[str, Path]) -> list[Path]:
    return [s["data"], s["run"], s["tune"]]


@pytest.mark.parametrize("name", COMMANDS)
def test_out_is_an_existing_file(tmp_path, shared, name):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    refused([tmp_path, *inputs(shared)], *command(name, out, shared), needles=("notes.txt",))


@pytest.mark.parametrize("name", COMMANDS)
def test_out_is_a_foreign_folder(tmp_path, shared, name):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "history.csv").write_text("epoch,loss\n1,0.5\n")
    refused([tmp_path, *inputs(shared)], *command(name, out, shared), needles=("mine",))


OTHER_KIND = {  # a folder of another aerotune kind given as --out
    "train": "cache",
    "tune": "run",
    "prepare": "run",
    "report": "cache",
    "predict": "run",
    "synth": "run",
    "demo": "tune",
}


@pytest.mark.parametrize("name", COMMANDS)
def test_out_is_another_kind_of_aerotune_output(tmp_path, shared, name):
    other = copy_tree(shared[OTHER_KIND[name]], tmp_path / "other")
    refused([tmp_path, *inputs(shared)], *command(name, other, shared), needles=("other",))


@pytest.mark.parametrize("name", COMMANDS)
def test_missing_parent(tmp_path, shared, name):
    out = tmp_path / "no such folder" / "out"
    refused([tmp_path, *inputs(shared)], *command(name, out, shared), needles=("no such folder",))


@pytest.mark.parametrize("name", COMMANDS)
def test_read_only_parent(tmp_path, shared, name):
    parent = tmp_path / "locked"
    with read_only(parent) as ok:
        if not ok:
            pytest.skip("this machine allows neither read-only permissions for this user nor bind mounts")
        refused([tmp_path, *inputs(shared)], *command(name, parent / "out", shared), needles=("locked",))


@pytest.mark.parametrize("name", ["train", "prepare", "report", "predict", "synth", "demo"])
def test_disk_full_leaves_nothing(tmp_path, shared, name):
    """Writes fail half-way (``ulimit -f``: EFBIG, as a full disk): one line, and no output folder is left."""
    args = command(name, tmp_path / "my-out", shared)
    if name == "train":  # from the dataset folder, so the patch cache is written too
        args = [
            "train",
            "--data",
            shared["data"],
            "--out",
            tmp_path / "my-out",
            "--patch-size",
            "32",
            "--epochs",
            "1",
            *TINY,
        ]
    refused([tmp_path, *inputs(shared)], "--quiet", *args, fsize=300, needles=("my-out",))  # --quiet: no progress log


def test_disk_full_on_resume_keeps_the_run(tmp_path, shared):
    """A resumed run whose next checkpoint cannot be written keeps every file of the epochs before."""
    run = copy_tree(shared["run"], tmp_path / "run")
    refused(
        [tmp_path, *inputs(shared)],
        "--quiet",
        "train",
        "--data",
        shared["data"],
        "--out",
        run,
        "--patch-size",
        "32",
        "--epochs",
        "2",
        *TINY,
        fsize=20_000,
        needles=("last.pt", "ulimit -f"),
    )


def test_predict_into_its_input_folder_keeps_the_scene(tmp_path, shared):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "scene.png").write_bytes(shared["scene"].read_bytes())
    refused(
        [tmp_path, *inputs(shared)], "predict", scenes, "--model", shared["run"], "--out", scenes, needles=("scenes",)
    )
    refused(
        [tmp_path, *inputs(shared)],
        "predict",
        scenes / "scene.png",
        "--model",
        shared["run"],
        "--out",
        scenes,
        needles=("scenes",),
    )


def test_predict_through_a_symlink_to_its_input(tmp_path, shared):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "scene.png").write_bytes(shared["scene"].read_bytes())
    (tmp_path / "link").symlink_to(scenes)
    refused([tmp_path, *inputs(shared)], "predict", scenes, "--model", shared["run"], "--out", tmp_path / "link")


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_train_out_overlapping_its_data(tmp_path, shared, where):
    data = copy_tree(shared["data"], tmp_path / "data")
    out = {"same": data, "inside": data / "run", "contains": tmp_path}[where]
    refused([tmp_path, *inputs(shared)], "train", "--data", data, "--out", out, "--patch-size", "32", *TINY)


def test_tune_out_is_its_cache(tmp_path, shared):
    refused([tmp_path, *inputs(shared)], *command("tune", shared["cache"], shared))


def test_train_out_is_the_runs_own_cache(tmp_path, shared):
    run = copy_tree(shared["run"], tmp_path / "run")
    refused(
        [tmp_path, *inputs(shared)],
        "train",
        "--data",
        shared["data"],
        "--out",
        run / "cache",
        "--patch-size",
        "32",
        *TINY,
    )


def test_report_out_is_the_run(tmp_path, shared):
    refused([tmp_path, *inputs(shared)], "report", shared["run"], "--out", shared["run"])


def test_broken_symlink_out(tmp_path, shared):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    refused([tmp_path, *inputs(shared)], *command("prepare", tmp_path / "out", shared), needles=("out",))


def test_refused_prepare_keeps_an_up_to_date_cache(tmp_path, shared):
    """A cache given the settings of another cut is rebuilt only after the new cut succeeded (here: it fails)."""
    cache = copy_tree(shared["cache"], tmp_path / "cache")
    with unchanged(tmp_path):
        proc = aerotune("data", "prepare", shared["data"], "--out", cache, "--patch-size", "64", fsize=300)
        assert_refused(proc)


def test_empty_out_folder_is_used_and_kept_on_failure(tmp_path, shared):
    """An empty folder the user made is a valid --out; a failure empties it again but leaves the folder."""
    out = tmp_path / "empty"
    out.mkdir()
    before = snapshot(tmp_path)
    assert_refused(aerotune(*command("prepare", out, shared), fsize=300))
    assert snapshot(tmp_path) == before
    proc = aerotune(*command("prepare", out, shared))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["settings"]["patch_size"] == 32
    assert os.listdir(out)


@pytest.mark.parametrize("name", ["train", "report", "prepare"])
def test_out_inside_a_cache_is_refused(tmp_path, shared, name):
    """A cache is replaced whole when cut again: an output inside it would be lost with it."""
    cache = copy_tree(shared["cache"], tmp_path / "cache")
    refused([tmp_path, *inputs(shared)], *command(name, cache / "inside", shared), needles=("replaced whole",))
