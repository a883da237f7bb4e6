"""The Python API (``aerotune.prepare``, ``train``, ...): light to import, refusing bad input as the command line
does, and the example of docs/python-api.md run exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aerotune
from aerotune.errors import ConfigError, OutputError

from helpers import ROOT
from helpers import aerotune as run_cli
from snapshot import assert_unchanged, snapshot

STAGES = ("prepare", "train", "tune", "report", "predict", "evaluate", "export")


def test_importing_aerotune_stays_light():
    code = (
        "import sys, aerotune; from aerotune import prepare, train, tune, report, predict, evaluate, export; "
        "print(','.join(m for m in ('torch', 'optuna', 'matplotlib', 'aerotune.commands') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"import aerotune loads {done.stdout.strip()}"


def test_every_stage_is_callable_and_the_stage_packages_stay_packages():
    import aerotune.train.fit as fit_module
    from aerotune import api

    assert sorted(aerotune.__all__) == sorted(("__version__", *STAGES))
    for name in STAGES:
        assert callable(getattr(aerotune, name)), name
        assert name in api.__all__
    assert aerotune.train.fit is fit_module  # the package is still the package
    from aerotune import train

    assert train is aerotune.train and callable(train)


def test_unknown_options_and_values_argparse_refuses_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        aerotune.train(data=tmp_path, out=tmp_path / "run", bogus=1)
    with pytest.raises(ConfigError, match="argument --epochs: 0 is out of range"):
        aerotune.train(data=tmp_path, out=tmp_path / "run", epochs=0)
    with pytest.raises(ConfigError, match="only data settings"):
        aerotune.prepare(data=tmp_path, out=tmp_path / "cache", overrides={"train.epochs": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_refused_output_folder_is_the_clis_error_and_nothing_changes(tiny_cache, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError) as refused:
        aerotune.train(data=tiny_cache.root, out=mine, epochs=1)
    assert_unchanged(before, tmp_path)
    assert "is not an aerotune training run" in str(refused.value)


@pytest.mark.slow  # the command line in a subprocess
def test_the_api_and_the_command_line_refuse_with_the_same_line(tiny_cache, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(OutputError) as refused:
        aerotune.train(data=tiny_cache.root, out=mine, epochs=1)
    done = run_cli("train", "--data", tiny_cache.root, "--out", mine, "--epochs", "1")
    assert done.returncode == 2
    assert done.stderr.strip() == f"aerotune: error: {refused.value}"


def documented_example() -> str:
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/python-api.md holds one python example"
    return blocks[0]


@pytest.mark.slow  # trains for an epoch
def test_the_documented_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(documented_example(), "docs/python-api.md", "exec"), {"__name__": "example"})
    printed = capsys.readouterr().out
    assert "run: completed after 1 epoch(s)" in printed
    assert "mean IoU" in printed and "refused: data: folder exists and is not an aerotune training run" in printed
    assert len(list(Path("masks").glob("*.png"))) == 2
    assert (Path("evaluation") / "metrics.json").is_file()
    assert sorted(p.name for p in Path("data").iterdir()) == ["Tile 1", "Tile 2"]  # the refused train left it
