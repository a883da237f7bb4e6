import json
import os

import numpy as np
import pytest

from aerotune.config import DataConfig
from aerotune.data.patches import open_cache, patch_starts, prepare_patches
from aerotune.errors import DatasetError, PaletteError

from helpers import PALETTE, make_tiled, random_ids, save_mask, write_pair


def test_patch_starts():
    assert patch_starts(100, 32, "reference") == [0, 32, 64]
    assert patch_starts(100, 32, "full") == [0, 32, 64, 68]
    assert patch_starts(96, 32, "full") == [0, 32, 64]
    assert patch_starts(20, 32, "reference") == []
    assert patch_starts(20, 32, "full") == [0]


def test_reference_and_full_modes(tmp_path):
    root = make_tiled(tmp_path / "d", size=(80, 72))  # 4 images: 2x2 patches of 32 each in reference mode
    ref = prepare_patches(root, tmp_path / "ref", DataConfig(patch_size=32), PALETTE)
    assert len(ref) == 16
    assert ref.images.shape == (16, 32, 32, 3) and ref.masks.shape == (16, 32, 32)
    assert 0 < ref.manifest["pixels"]["dropped_share"] < 1
    full = prepare_patches(root, tmp_path / "full", DataConfig(patch_size=32, mode="full"), PALETTE)
    assert len(full) == 4 * 3 * 3
    assert full.manifest["pixels"]["dropped_share"] == 0
    # the patches hold the mask's own class ids, in place
    from aerotune.data.masks import read_mask_rgb

    first = ref.sources[0]
    ids, _ = PALETTE.encode(read_mask_rgb(root / first["mask"]))
    r, c = ref.manifest["patches"][3][1:]
    assert (ref.masks[3] == ids[r : r + 32, c : c + 32]).all()


def test_cache_is_reused_and_rebuilt_only_on_change(tmp_path):
    root = make_tiled(tmp_path / "d")
    out = tmp_path / "cache"
    prepare_patches(root, out, DataConfig(patch_size=32), PALETTE)
    stamp = os.stat(out / "images.u8").st_mtime_ns
    prepare_patches(root, out, DataConfig(patch_size=32, split="tile"), PALETTE)  # split is not a cache setting
    assert os.stat(out / "images.u8").st_mtime_ns == stamp
    again = prepare_patches(root, out, DataConfig(patch_size=16), PALETTE)
    assert again.patch_size == 16
    write_pair(root / "Tile 1", "image_part_001", 80, 72, seed=99)  # new content, same name
    changed = prepare_patches(root, out, DataConfig(patch_size=16), PALETTE)
    assert changed.manifest["inputs_hash"] != again.manifest["inputs_hash"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_scale_resamples_masks_with_nearest_neighbour(tmp_path):
    root = tmp_path / "d"
    write_pair(root, "a", 128, 128, ids=random_ids(128, 128, seed=5, classes=6))
    cache = prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32, scale=0.5), PALETTE)
    assert len(cache) == 4
    assert set(np.unique(np.asarray(cache.masks))) <= set(range(6))
    assert cache.manifest["sources"][0]["scaled_size"] == [64, 64]


def test_unknown_colours_error_leaves_nothing_and_ignore_maps_them(tmp_path):
    root = tmp_path / "d"
    write_pair(root, "a", 64, 64)
    rgb = PALETTE.decode(random_ids(64, 64))
    rgb[:10, :10] = 0
    save_mask(rgb, root / "masks" / "a.png")
    with pytest.raises(PaletteError, match=r"#000000 \(100 px in .*a.png"):
        prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32), PALETTE)
    assert list(tmp_path.iterdir()) == [root]
    cache = prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32, unknown_colors="ignore"), PALETTE)
    assert (np.asarray(cache.masks[0][:10, :10]) == PALETTE.ignore_index).all()
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["pixels"]["unknown"] == {"#000000": 100}


def test_image_smaller_than_a_patch(tmp_path):
    root = tmp_path / "d"
    write_pair(root, "a", 20, 40)
    with pytest.raises(DatasetError, match="smaller than one 32 patch"):
        prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32), PALETTE)
    cache = prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32, mode="full"), PALETTE)
    assert len(cache) == 2
    assert (np.asarray(cache.masks[0])[:, 20:] == PALETTE.ignore_index).all()  # padding is ignored, not a class


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    root = make_tiled(tmp_path / "d")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not an aerotune cache"):
        prepare_patches(root, tmp_path / "mine", DataConfig(patch_size=32), PALETTE)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_open_cache_of_a_broken_folder(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DatasetError, match="rebuild it"):
        open_cache(tmp_path)


def test_a_failed_cut_closes_the_cache_files(tmp_path, monkeypatch):
    """A pair that fails while the patches are cut leaves no open file behind (the cache files are closed)."""
    import aerotune.data.patches as patches

    root = make_tiled(tmp_path / "d", size=(64, 64))
    opened = []

    def tracked_open(*args, **kwargs):
        fh = open(*args, **kwargs)
        opened.append(fh)
        return fh

    def broken_mask(*args, **kwargs):
        raise DatasetError("the mask cannot be read")

    monkeypatch.setattr(patches, "open", tracked_open, raising=False)
    monkeypatch.setattr(patches, "read_mask", broken_mask)
    with pytest.raises(DatasetError, match="the mask cannot be read"):
        prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32), PALETTE)
    assert sorted(os.path.basename(fh.name) for fh in opened if fh.name.endswith(".u8")) == ["images.u8", "masks.u8"]
    assert all(fh.closed for fh in opened)
    assert not (tmp_path / "c").exists()
