import math

import numpy as np
import pytest
import torch

from aerotune.config import DataConfig
from aerotune.data.dataset import PatchDataset, channel_stats, make_split, normalize
from aerotune.data.patches import prepare_patches
from aerotune.errors import DatasetError

from helpers import PALETTE, make_tiled


@pytest.fixture()
def cache(tmp_path):
    root = make_tiled(tmp_path / "d", tiles=3, per_tile=2, size=(64, 64))
    return prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32), PALETTE)  # 24 patches


def test_random_split_is_the_reference_protocol(cache):
    s = make_split(cache, DataConfig())
    assert len(s.val) == math.ceil(0.2 * len(cache)) and len(s.train) + len(s.val) == len(cache)
    assert not set(s.train) & set(s.val)
    # scikit-learn's train_test_split(test_size=0.2, random_state=42) takes the front of this permutation
    perm = np.random.RandomState(42).permutation(len(cache))
    assert s.val == sorted(perm[: len(s.val)].tolist())
    assert make_split(cache, DataConfig()) == s


@pytest.mark.parametrize("method", ["image", "tile"])
def test_group_splits_hold_out_whole_groups(cache, method):
    s = make_split(cache, DataConfig(split=method))
    src = cache.patch_source
    key = (lambda i: cache.sources[src[i]]["tile"]) if method == "tile" else (lambda i: int(src[i]))
    assert not {key(i) for i in s.train} & {key(i) for i in s.val}
    assert s.val and s.train and s.val_groups


def test_tile_split_needs_two_tiles(tmp_path):
    root = make_tiled(tmp_path / "d", tiles=1, per_tile=2, size=(64, 64))
    c = prepare_patches(root, tmp_path / "c", DataConfig(patch_size=32), PALETTE)
    with pytest.raises(DatasetError, match="needs at least 2 tiles"):
        make_split(c, DataConfig(split="tile"))


def test_minmax_normalisation_per_patch_and_channel():
    x = torch.randint(10, 200, (2, 8, 8, 3), dtype=torch.uint8)
    y = normalize(x, "minmax")
    assert y.shape == (2, 3, 8, 8)
    assert torch.allclose(y.amin(dim=(2, 3)), torch.zeros(2, 3))
    assert torch.allclose(y.amax(dim=(2, 3)), torch.ones(2, 3))


def test_meanstd_and_batches(cache):
    stats = channel_stats(cache, list(range(len(cache))))
    ds = PatchDataset(cache, list(range(len(cache))), normalization="meanstd", stats=stats)
    x, y = ds.batch(list(range(len(cache))))
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    one_x, one_y = ds[5]
    assert torch.equal(one_x, x[5]) and torch.equal(one_y, y[5])
    items = ds.__getitems__([7, 2])
    assert torch.equal(items[0][1], y[7]) and torch.equal(items[1][1], y[2])


def test_augmentation_moves_image_and_mask_together(cache):
    plain = PatchDataset(cache, [0, 1, 2, 3])
    aug = PatchDataset(cache, [0, 1, 2, 3], augment=True, seed=1)
    x0, y0 = plain.batch([0, 1, 2, 3])
    x1, y1 = aug.batch([0, 1, 2, 3])
    for a, b, ma, mb in zip(x0, x1, y0, y1):
        found = False
        for k in range(4):
            for flip in (False, True):
                xa, ya = torch.rot90(a, k, (1, 2)), torch.rot90(ma, k, (0, 1))
                if flip:
                    xa, ya = xa.flip(2), ya.flip(1)
                found |= bool(torch.equal(xa, b) and torch.equal(ya, mb))
        assert found
