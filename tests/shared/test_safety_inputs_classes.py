"""Classes files and config files: every fault names the file, the key, the value and the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aerotune.config import read_table
from aerotune.data.palette import DISPLAY_COLORS, Palette, display_colors, load_palette
from aerotune.reading import toml_parser

from helpers import write_pair
from safety import assert_refused, prepare_refused

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

SRC = Path(__file__).resolve().parents[2] / "src"


def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_pair(root, "a", 32, 32)
    return root


MANY = "\n".join(f'c{i} = "#{i:06X}"' for i in range(255))

CLASSES_CASES = {
    # name: (file name, content, words the error line must hold)
    "duplicate JSON key": (
        "c.json",
        '{"Water": "#0000FF", "Land": "#00FF00", "Water": "#FF0000"}',
        ["c.json: key 'Water' appears twice ('#0000FF' and '#FF0000'); keep one"],
    ),
    "duplicate TOML key": ("c.toml", 'Water = "#0000FF"\nWater = "#FF0000"\n', ["c.toml: cannot parse classes file"]),
    "one colour, two classes": (
        "c.json",
        '{"Road": "#6EC1E4", "Sky": "#6ec1e4"}',
        ["c.json: classes 'Road' and 'Sky' both have colour #6EC1E4"],
    ),
    "one id, two classes": (
        "c.toml",
        "Building = 1\nRoof = 1\n",
        ["classes 'Building' and 'Roof' both have mask id 1"],
    ),
    "colours and ids mixed": (
        "c.toml",
        'Building = 1\nRoad = "#6EC1E4"\n',
        ["class 'Road' has a colour but class 'Building' a mask id", "same kind"],
    ),
    "too many classes": ("c.toml", MANY, ["255 classes, but at most 254", "uint8", "255 marks ignored pixels"]),
    "negative id": ("c.toml", "Building = -1\n", ["class 'Building': mask id -1 is outside 0..65535"]),
    "id too large": ("c.json", '{"Building": 70000}', ["mask id 70000 is outside 0..65535"]),
    "bad colour": ("c.json", '{"Water": "#12345"}', ["class 'Water': colour '#12345' is not of the form #RRGGBB"]),
    "true as a class": ("c.toml", "Water = true\n", ["class 'Water' = True: expected a colour"]),
    "fractional id": ("c.toml", "Water = 1.5\n", ["class 'Water' = 1.5: expected a colour"]),
    "empty name": ("c.json", '{"": "#000000"}', ["a class has an empty name"]),
    "table without id": ("c.toml", 'Water = { color = "#0000FF" }\n', ["class 'Water' =", 'expected {"id": N}']),
    "empty JSON file": ("c.json", "", ["c.json: cannot parse classes file", 'name = "#RRGGBB"']),
    "empty TOML file": ("c.toml", "", ["c.toml: expected a mapping of class name"]),
    "export without colour": ("c.json", '{"classes": [{"title": "Water"}]}', ["needs 'title' and 'color' (or 'id')"]),
    "export, one title twice": (
        "c.json",
        '{"classes": [{"title": "W", "color": "#000001"}, {"title": "W", "color": "#000002"}]}',
        ["class 'W' appears twice"],
    ),
}


@pytest.mark.parametrize("case", list(CLASSES_CASES))
def test_bad_classes_file(tmp_path, case):
    name, text, needles = CLASSES_CASES[case]
    root = dataset(tmp_path)
    (tmp_path / name).write_text(text)
    prepare_refused(
        tmp_path,
        root,
        "--classes",
        tmp_path / name,
        needles=tuple(needles),
    )


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


def _dangling(p: Path) -> Path:
    p.symlink_to(p.parent / "gone.json")
    return p


def _undecodable(p: Path) -> bytes:
    return os.fsencode(p.parent) + b"/classes-\xe9.json"


@pytest.mark.parametrize(
    "make, needles",
    [
        (_folder, ["c.json: cannot read classes file: it is a folder"]),
        (_dangling, ["c.json: cannot read classes file: broken symlink"]),
        (_undecodable, ["classes-\\xe9.json: classes file not found"]),
    ],
)
def test_classes_file_that_cannot_be_read(tmp_path, make, needles):
    root = dataset(tmp_path)
    path = make(tmp_path / "c.json")
    assert_refused(tmp_path, "data", "inspect", root, "--classes", path, needles=tuple(needles))


CONFIG_CASES = {
    "word for a number": (
        "c.toml",
        '[train]\nbatch_size = "sixteen"\n',
        [
            "c.toml: train.batch_size = 'sixteen' is not a whole number",
            "write it as a whole number, like train.batch_size = 16",
        ],
    ),
    "word for a flag": (
        "c.yaml",
        "data:\n  augment: maybe\n",
        ["c.yaml: data.augment = 'maybe' is not true or false", "like data.augment = true"],
    ),
    "invalid value": (
        "c.json",
        '{"train": {"learning_rate": -1}}',
        ["c.json: train.learning_rate = -1.0 is invalid; use between 0 and 10"],
    ),
    "duplicate JSON key": ("c.json", '{"train": {"epochs": 1, "epochs": 2}}', ["c.json: key 'epochs' appears twice"]),
    "not a table": ("c.json", "[1, 2]", ["c.json: expected a table of settings"]),
    "unknown file type": ("c.ini", "[train]\n", ["c.ini: unknown file type '.ini'"]),
    "bad mask_size": (
        "c.toml",
        '[data]\nmask_size = "stretch"\n',
        ["c.toml: data.mask_size = 'stretch' is invalid", "error or resize"],
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_file(tmp_path, case):
    name, text, needles = CONFIG_CASES[case]
    root = dataset(tmp_path)
    (tmp_path / name).write_text(text)
    assert_refused(
        tmp_path,
        "train",
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--config",
        tmp_path / name,
        needles=tuple(needles),
    )


def test_config_path_that_is_a_folder(tmp_path):
    root = dataset(tmp_path)
    (tmp_path / "c.toml").mkdir()
    assert_refused(
        tmp_path,
        "train",
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--config",
        tmp_path / "c.toml",
        needles=("c.toml: cannot read file: it is a folder",),
    )


def test_set_value_errors_name_the_option_and_the_fix(tmp_path):
    root = dataset(tmp_path)
    assert_refused(
        tmp_path,
        "train",
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--set",
        "train.epochs=many",
        needles=(
            "--set: train.epochs = 'many' is not a whole number; write it as a whole number, like train.epochs = 50",
        ),
    )


def test_byte_order_marks_are_accepted(tmp_path):
    (tmp_path / "c.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"Water": "#0000FF"}).encode())
    assert load_palette(tmp_path / "c.json").names == ("Water",)
    (tmp_path / "r.json").write_bytes(b"\xef\xbb\xbf" + b'{"train": {"epochs": 3}}')
    assert read_table(tmp_path / "r.json") == {"train": {"epochs": 3}}


@pytest.mark.parametrize(
    "mapping",
    [
        {"Building": "#3C1098", "Road": "#6EC1E4"},
        {"Background": 0, "Building": 1, "Road": 7},
        {"Background": {"id": 0, "color": "#000000"}, "Building": 255, "Road": {"id": 300}},
    ],
)
def test_palettes_round_trip_through_their_dict(mapping):
    p = Palette.from_dict(mapping)
    back = Palette.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and back.hex_colors == p.hex_colors
    assert len(set(p.colors)) == len(p.colors)


def test_index_palettes_get_the_documented_display_colours():
    p = Palette.from_dict({"a": 0, "b": 1, "c": {"id": 2, "color": "#E6194B"}})
    # c takes the first table colour, so a and b get the next free ones
    assert p.hex_colors == ["#3CB44B", "#FFE119", "#E6194B"]
    many = display_colors(254)
    assert len(set(many)) == 254 and [f"#{r:02X}{g:02X}{b:02X}" for r, g, b in many[:20]] == list(DISPLAY_COLORS)


def test_toml_falls_back_to_tomli(monkeypatch):
    pytest.importorskip("tomli")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # what Python 3.10 looks like: no tomllib
    parser = toml_parser()
    assert parser.__name__ == "tomli" and parser.loads('Water = "#0000FF"') == {"Water": "#0000FF"}


def _python310() -> str | None:
    for candidate in ("python3.10", *sorted(Path("/root/.pyenv/versions").glob("3.10*/bin/python"))):
        try:
            out = subprocess.run(
                [str(candidate), "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 10)":
            return str(candidate)
    return None


def test_a_real_python_3_10_reads_toml_through_the_helper(tmp_path):
    """On a real 3.10 interpreter (when one is installed), aerotune.reading picks tomli."""
    tomli = pytest.importorskip("tomli")
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    code = (
        "from aerotune.reading import toml_parser; p = toml_parser(); "
        "assert p.__name__ == 'tomli', p; print(p.loads('Building = 1'))"
    )
    # Only tomli's own pure-Python package travels: nothing else from this (newer) environment.
    shutil.copytree(Path(tomli.__file__).parent, tmp_path / "site" / "tomli")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path / 'site'}"}
    proc = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "{'Building': 1}" in proc.stdout, proc.stderr
