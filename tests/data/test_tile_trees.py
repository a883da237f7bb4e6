"""Web-map tile trees (``images/<z>/<x>/<y>.webp`` + ``masks/<z>/<x>/<y>.png``): paired by relative path, named by
it in the cache, predictions and evaluations, all through the CLI as the dataset is cloned."""

from __future__ import annotations

import json

from PIL import Image

from aerotune.commands import main
from aerotune.data.sources import discover

from helpers import TREE_COLORS, write_tile_tree
from safety import assert_refused

TINY = ["--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.progress=false"]


def test_a_tile_tree_pairs_by_relative_path(tmp_path):
    root = write_tile_tree(tmp_path / "buildings")
    found = discover(root)
    assert not found.problems
    assert len(found.samples) == 12 and len({s.stem.rsplit("/", 1)[1] for s in found.samples}) == 4
    first = found.samples[0]
    assert (first.tile, first.stem, first.name) == ("", "18/7000/3000", "18/7000/3000")
    assert first.image == root / "images/18/7000/3000.webp" and first.mask == root / "masks/18/7000/3000.png"


def test_a_lone_file_in_a_tree_names_its_relative_path(tmp_path):
    root = write_tile_tree(tmp_path / "buildings", columns=1, rows=2)
    (root / "masks/18/7000/3001.png").unlink()
    found = discover(root)
    assert [s.stem for s in found.samples] == ["18/7000/3000"]
    assert "add masks/18/7000/3001.png" in str(found.problems[0])


def test_a_tree_without_image_files_names_the_folder_of_folders(tmp_path):
    root = tmp_path / "d"
    for part in ("images", "masks"):
        (root / part / "18" / "7000").mkdir(parents=True)
        (root / part / "18" / "7000" / "3000.txt").write_text("not an image")
    text = str(discover(root).problems[0])
    assert text.startswith(str(root / "images")) and "holds only sub-folders (18/)" in text and "expects" in text
    assert_refused(root, "data", "prepare", root, "--out", root.parent / "c", needles=("holds only sub-folders",))


def test_train_predict_evaluate_a_tile_tree_as_cloned(tmp_path, capsys):
    root = write_tile_tree(tmp_path / "buildings")
    run, pred, ev = tmp_path / "run", tmp_path / "pred", tmp_path / "eval"
    classes = ["--classes", str(root / "classes.toml")]
    args = ["train", "--data", str(root), "--out", str(run), *classes, "--patch-size", "32", "--epochs", "1"]
    assert main([*args, *TINY]) == 0
    manifest = json.loads((run / "cache" / "manifest.json").read_text())
    assert {(s["tile"], s["stem"]) for s in manifest["sources"]} >= {("", "18/7000/3000"), ("", "18/7002/3003")}
    assert main(["predict", str(root / "images"), "--model", str(run), "--out", str(pred), "--overlay"]) == 0
    written = sorted(p.relative_to(pred).as_posix() for p in pred.rglob("*.png"))
    assert written == sorted(f"18/{7000 + x}/{3000 + y}.png" for x in range(3) for y in range(4))
    assert (pred / "18/7001/3002_overlay.jpg").is_file()
    with Image.open(pred / "18/7000/3000.png") as mask:
        assert mask.mode == "P" and mask.size == (64, 64)
        assert mask.getpalette()[:6] == [*TREE_COLORS[0], *TREE_COLORS[1]]  # the masks' own colours
    assert manifest["mask_colors"] == {"background": "#000000", "building": "#E63C28"}
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["colors"] == ["#000000", "#E63C28"] and report["colors_from"] == "mask palette"
    assert "colours of the masks' own PNG palette" in (tmp_path / "report" / "report.md").read_text()
    assert main(["evaluate", str(run), "--data", str(root), "--out", str(ev), "--split", "all"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    assert "18/7002/3003" in metrics["images"] and len(metrics["images"]) == 12
    capsys.readouterr()


def test_predict_refuses_two_trees_that_would_collide(tmp_path):
    a = write_tile_tree(tmp_path / "a", columns=1, rows=1)
    b = write_tile_tree(tmp_path / "b", columns=1, rows=1)
    # the names alone show the clash: refused before any model is looked for
    assert_refused(
        tmp_path,
        "predict",
        a / "images",
        b / "images",
        "--model",
        tmp_path / "no-model",
        "--out",
        tmp_path / "out",
        needles=("18/7000/3000",),
    )


def test_mask_colours_only_where_the_classes_file_gave_none_and_they_tell_classes_apart(tmp_path):
    from aerotune.data.masks import mask_palette_colors
    from aerotune.data.palette import Palette

    root = write_tile_tree(tmp_path / "d", columns=1, rows=1)
    mask = root / "masks/18/7000/3000.png"
    ids = Palette.from_dict({"background": 0, "building": 1})
    assert mask_palette_colors(ids, [mask]) == {"background": "#000000", "building": "#E63C28"}
    given = Palette.from_dict({"background": 0, "building": {"id": 1, "color": "#3C1098"}})
    assert mask_palette_colors(given, [mask]) == {"background": "#000000"}
    assert mask_palette_colors(Palette.dubai(), [mask]) == {}  # colour masks are drawn in their own colours
    with Image.open(mask) as im:
        im.putpalette([v for i in range(256) for v in (i, i, i)])  # a grey ramp says nothing about the classes
        im.save(mask)
    assert mask_palette_colors(ids, [mask]) == {}


def test_the_patch_caption_says_where_its_colours_come_from():
    from dataclasses import fields

    from aerotune.report.records import ReportRecord
    from aerotune.report.render import figure_text

    assert "own colours" in figure_text("masks", "patches")[1]
    assert "PNG palette" in figure_text("mask palette", "patches")[1]
    assert "fixed display colours" in figure_text("fixed", "patches")[1]
    default = next(f.default for f in fields(ReportRecord) if f.name == "colors_from")  # reports written before it
    assert "own colours" in figure_text(default, "patches")[1]
