import json

import numpy as np
import pytest

from aerotune.data.palette import IGNORE_INDEX, Palette, load_palette, parse_hex
from aerotune.errors import PaletteError


def test_dubai_palette_matches_the_masks_not_classes_json():
    p = Palette.dubai()
    assert p.names == ("Building", "Land", "Road", "Vegetation", "Water", "Unlabeled")
    assert p.hex_colors == ["#3C1098", "#8429F6", "#6EC1E4", "#FEDD3A", "#E2A929", "#9B9B9B"]


def test_encode_maps_known_colours_and_reports_unknown_ones():
    p = Palette.dubai()
    rgb = np.array([[[0x3C, 0x10, 0x98], [0x84, 0x29, 0xF6]], [[0, 0, 0], [0, 0, 0]]], dtype=np.uint8)
    ids, unknown = p.encode(rgb)
    assert ids.tolist() == [[0, 1], [IGNORE_INDEX, IGNORE_INDEX]]
    assert unknown == {(0, 0, 0): 2}


def test_decode_round_trips():
    p = Palette.dubai()
    ids = np.arange(6, dtype=np.uint8).reshape(2, 3)
    back, unknown = p.encode(p.decode(ids))
    assert not unknown and (back == ids).all()


def test_classes_file_formats(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"Water": "#00F", "Land": "#112233"}))
    with pytest.raises(PaletteError, match="#RRGGBB"):
        load_palette(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"Water": "#0000FF", "Land": "#112233"}))
    assert load_palette(tmp_path / "c.json").names == ("Water", "Land")
    (tmp_path / "c.toml").write_text('Water = "#0000FF"\n"Bare land" = "#112233"\n')
    assert load_palette(tmp_path / "c.toml").names == ("Water", "Bare land")
    export = {"classes": [{"title": "Water", "color": "#50E3C2"}, {"title": "Road", "color": "#DE597F"}]}
    (tmp_path / "export.json").write_text(json.dumps(export))
    assert load_palette(tmp_path / "export.json").hex_colors == ["#50E3C2", "#DE597F"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "cannot parse"),
        ("[1, 2]", "mapping of class name"),
        ('{"A": "#000000", "B": "#000000"}', "classes 'A' and 'B' both have colour #000000"),
    ],
)
def test_bad_classes_files(tmp_path, text, match):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(PaletteError, match=match) as info:
        load_palette(f)
    assert "\n" not in str(info.value)


def test_missing_classes_file(tmp_path):
    with pytest.raises(PaletteError, match="not found"):
        load_palette(tmp_path / "nope.json")


def test_parse_hex():
    assert parse_hex("#3C1098") == (0x3C, 0x10, 0x98)
    with pytest.raises(PaletteError):
        parse_hex("#GG0000")


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_classes_files_are_read_like_json_and_toml(tmp_path, suffix):
    f = tmp_path / f"classes{suffix}"
    f.write_text('Water: "#0000FF"\nBare land: "#112233"\n')
    assert load_palette(f).names == ("Water", "Bare land")
    f.write_text("classes:\n  - {title: Water, color: '#50E3C2'}\n  - {title: Road, color: '#DE597F'}\n")
    assert load_palette(f).hex_colors == ["#50E3C2", "#DE597F"]
    f.write_text("Background: 0\nBuilding: 1\n")
    assert load_palette(f).ids == (0, 1)


@pytest.mark.parametrize(
    "text, match",
    [
        ("Water: #0000FF\n", "class 'Water' has no value; in YAML quote colours"),
        ("Water: '#0000FF'\nWater: '#112233'\n", "key 'Water' appears twice"),
        ("Water: [unclosed\n", "cannot parse"),
        ("- a\n- b\n", "mapping of class name"),
        ("A: '#000000'\nB: '#000000'\n", "classes 'A' and 'B' both have colour #000000"),
        ("A: '#00F'\n", "#RRGGBB"),
    ],
)
def test_bad_yaml_classes_files(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PaletteError, match=match) as info:
        load_palette(f)
    assert "\n" not in str(info.value) and "bad.yaml" in str(info.value)
