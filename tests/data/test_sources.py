import numpy as np
from PIL import Image

from aerotune.data.inspection import inspect_dataset
from aerotune.data.masks import read_mask_rgb
from aerotune.data.sources import discover

from helpers import PALETTE, make_tiled, random_ids, save_mask, write_pair


def test_tiled_layout_pairs_by_stem_with_spaces_in_paths(tmp_path):
    root = make_tiled(tmp_path / "my data")
    found = discover(root)
    assert found.layout == "tiled" and not found.problems
    assert [s.name for s in found.samples] == [
        "Tile 1/image_part_001",
        "Tile 1/image_part_002",
        "Tile 2/image_part_001",
        "Tile 2/image_part_002",
    ]


def test_flat_layout_and_extension_case(tmp_path):
    write_pair(tmp_path, "b", 40, 40, image_ext=".JPEG")
    write_pair(tmp_path, "a", 40, 40, image_ext=".png")
    write_pair(tmp_path, "c", 40, 40, image_ext=".tif")
    found = discover(tmp_path)
    assert found.layout == "flat"
    assert [s.stem for s in found.samples] == ["a", "b", "c"]
    assert found.samples[1].image.suffix == ".JPEG"


def test_masks_of_every_png_mode_decode_to_the_same_colours(tmp_path):
    ids = random_ids(48, 40, seed=1)
    rgb = PALETTE.decode(ids)
    for mode in ("RGB", "RGBA", "P"):
        save_mask(rgb, tmp_path / f"{mode}.png", mode)
        assert Image.open(tmp_path / f"{mode}.png").mode == mode
        assert (read_mask_rgb(tmp_path / f"{mode}.png") == rgb).all()
    gray = np.full((8, 8), 155, np.uint8)  # L mode: grey value v means colour (v, v, v), e.g. Unlabeled #9B9B9B
    Image.fromarray(gray, "L").save(tmp_path / "L.png")
    ids_l, unknown = PALETTE.encode(read_mask_rgb(tmp_path / "L.png"))
    assert not unknown and (ids_l == 5).all()


def test_inspect_lists_every_problem(tmp_path):
    root = make_tiled(tmp_path / "d")
    images, masks = root / "Tile 1" / "images", root / "Tile 2" / "masks"
    (images / "lonely.jpg").write_bytes((images / "image_part_001.jpg").read_bytes())
    write_pair(root / "Tile 2", "wrong_size", 64, 64)
    Image.open(masks / "wrong_size.png").resize((60, 64)).save(masks / "wrong_size.png")
    write_pair(root / "Tile 2", "corrupt", 64, 64)
    (root / "Tile 2" / "images" / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    write_pair(root / "Tile 2", "tiny", 20, 20)
    unknown = PALETTE.decode(random_ids(64, 64))
    unknown[:5, :5] = (1, 2, 3)
    write_pair(root / "Tile 2", "odd", 64, 64)
    save_mask(unknown, root / "Tile 2" / "masks" / "odd.png")
    insp = inspect_dataset(root, PALETTE, patch_size=32)
    text = "\n".join(str(p) for p in insp.problems)
    assert "lonely.jpg: image has no mask" in text
    assert "wrong_size.png: mask is 60x64 but its image is 64x64" in text
    assert "corrupt.jpg: cannot read image" in text
    assert "tiny.jpg: image is 20x20 (after scale 1.0), smaller than one 32 patch" in text
    assert "#010203 (25 px in" in text and "odd.png" in text
    assert insp.color_files[(1, 2, 3)] == [str(root / "Tile 2" / "masks" / "odd.png")]


def test_mostly_unknown_colours_say_the_palette_looks_wrong(tmp_path):
    root = tmp_path / "d"
    write_pair(root, "a", 32, 32)
    save_mask(np.full((32, 32, 3), 7, np.uint8), root / "masks" / "a.png")
    insp = inspect_dataset(root, PALETTE, patch_size=16)
    assert "palette looks wrong" in str(insp.problems[-1])
