"""On the real Dubai aerial set (../shared/datasets/dubai-aerial); skipped where it is absent."""

import json

import pytest

from aerotune.config import DataConfig
from aerotune.data.inspection import inspect_dataset
from aerotune.data.palette import Palette, load_palette
from aerotune.data.patches import prepare_patches
from aerotune.errors import PaletteError

from helpers import aerotune

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def test_seven_colours_and_the_unknown_black(dubai_root):
    insp = inspect_dataset(dubai_root, Palette.dubai())
    assert len(insp.samples) == 72
    assert len(insp.colors) == 7
    assert list(insp.unknown) == [(0, 0, 0)]
    assert str(dubai_root / "Tile 8" / "masks" / "image_part_003.png") in insp.color_files[(0, 0, 0)]
    land = insp.colors[(0x84, 0x29, 0xF6)] / insp.total_pixels
    assert land == pytest.approx(0.524, abs=0.001)


def test_inspect_command_names_the_black_colour_and_its_files(dubai_root):
    proc = aerotune("data", "inspect", dubai_root)
    assert proc.returncode == 1
    assert "#000000" in proc.stdout and "UNKNOWN" in proc.stdout
    assert "unknown colour #000000 in 9 file(s)" in proc.stdout and "… and 6 more file(s)" in proc.stdout
    assert len(proc.stdout.splitlines()) < 50  # about a screen
    proc = aerotune("data", "inspect", dubai_root, "--verbose")
    assert proc.returncode == 1
    assert "Tile 8/masks/image_part_003.png" in proc.stdout


def test_unknown_colour_is_an_error_by_default(dubai_root, tmp_path):
    with pytest.raises(PaletteError, match=r"#000000 \(552156 px"):
        prepare_patches(dubai_root, tmp_path / "c", DataConfig(), Palette.dubai())
    assert not list(tmp_path.iterdir())


def test_the_datasets_own_classes_json_is_called_wrong(dubai_root, tmp_path):
    with pytest.raises(PaletteError, match="palette looks wrong"):
        prepare_patches(dubai_root, tmp_path / "c", DataConfig(), load_palette(dubai_root / "classes.json"))


def test_reference_mode_gives_1305_patches(dubai_root, tmp_path):
    cache = prepare_patches(dubai_root, tmp_path / "c", DataConfig(unknown_colors="ignore"), Palette.dubai())
    assert len(cache) == 1305
    assert cache.manifest["pixels"]["dropped_share"] == pytest.approx(0.136, abs=0.001)


def test_one_epoch_at_quarter_scale_trains_on_cpu(dubai_root, tmp_path):
    proc = aerotune(
        "train",
        "--data",
        dubai_root,
        "--out",
        tmp_path / "run",
        "--unknown-colors",
        "ignore",
        "--scale",
        "0.25",
        "--patch-size",
        "64",
        "--epochs",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["patches"]["val"] > 0
