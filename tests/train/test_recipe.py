"""The training recipes: the default one's augmentation, schedule and settings, and the reference's kept exactly."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from aerotune.config import DataConfig, RunConfig, TrainConfig, load_config
from aerotune.data.dataset import PatchDataset, cast_colours, jitter_colours, normalize
from aerotune.data.patches import prepare_patches
from aerotune.data.synthetic import write_synthetic_dataset
from aerotune.train.fit import fit
from aerotune.train.step import learning_rate

from helpers import PALETTE, make_tiled

TINY = {
    "model.base_filters": 4,
    "model.depth": 3,
    "train.batch_size": 4,
    "train.progress": False,
    "train.precision": "fp32",
    "train.threads": 1,
    "data.patch_size": 32,
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe")
    root = make_tiled(tmp / "d", tiles=2, per_tile=2, size=(64, 64))
    return prepare_patches(root, tmp / "c", DataConfig(patch_size=32), PALETTE)


class CraftedCache:
    """A one-patch cache whose every pixel is unique: the image holds its own coordinates, the mask a code of
    them (with an ignore-label block), so any misalignment between image and mask shows."""

    def __init__(self, side: int = 32) -> None:
        r, c = np.mgrid[:side, :side]
        self.images = np.stack([r, c, (r * 7 + c * 3) % 256], -1).astype(np.uint8)[None]
        mask = ((r // 4) * 8 + c // 4).astype(np.uint8) % 200
        mask[:6, :6] = 255
        self.masks = mask[None]


def test_every_window_and_symmetry_keeps_image_and_mask_aligned():
    crafted = CraftedCache()
    raw = ([0.0, 0.0, 0.0], [1 / 255] * 3)  # mean/std that leave the pixel values as they are
    ds = PatchDataset(crafted, [0], normalization="meanstd", stats=raw, augment=True, window=16, seed=5)
    assert len(ds) == 4  # (32 / 16)**2 windows of the one patch an epoch
    expected = torch.from_numpy(crafted.masks[0].astype(np.int64))
    seen = set()
    for _ in range(50):
        x, y = ds.batch([0, 1, 2, 3])
        assert x.shape == (4, 3, 16, 16) and y.shape == (4, 16, 16)
        for xi, yi in zip(x, y):
            r, c = torch.round(xi[0]).long(), torch.round(xi[1]).long()  # each pixel's source row and column
            assert torch.equal(expected[r, c], yi), "a window's mask does not match its pixels"
            seen.add((int(r[0, 0]), int(c[0, 0]), int(r[0, 1]), int(c[0, 1])))
    assert len(seen) > 20  # windows really move and turn


def test_a_window_is_scaled_by_its_whole_patch_as_prediction_scales_it():
    """min-max scaling happens before the window is cut: a window holds its patch's scaled values, not values
    stretched by its own extremes (prediction scales patch-sized windows of a scene)."""
    crafted = CraftedCache()  # channel 0 is the row (0..31), channel 1 the column
    ds = PatchDataset(crafted, [0], normalization="minmax", window=16, seed=2)
    for _ in range(10):
        x, _y = ds.batch([0, 1, 2, 3])
        for xi in x:
            rows = xi[0] * 31  # the patch's row channel runs 0..31: scaled by 31, not by the window's 15
            assert torch.allclose(rows, torch.round(rows), atol=1e-4)
            assert float(rows[-1, 0] - rows[0, 0]) == pytest.approx(15.0, abs=1e-4)


@pytest.mark.parametrize("window", [16, 0])
def test_a_zoomed_window_keeps_image_and_mask_aligned_and_the_ignore_label(window):
    """Each window is cut larger or smaller than its side and resized: the image bilinear, the mask nearest. The
    image's row and column channels then hold each pixel's source coordinate, which must be its mask's."""
    crafted = CraftedCache()
    raw = ([0.0, 0.0, 0.0], [1 / 255] * 3)
    ds = PatchDataset(crafted, [0], normalization="meanstd", stats=raw, augment=True, zoom=0.5, window=window, seed=4)
    expected = torch.from_numpy(crafted.masks[0].astype(np.int64))
    out = window or 32
    spans, ignored = set(), 0
    for _ in range(40):
        x, y = ds.batch(list(range(len(ds))))
        assert x.shape[1:] == (3, out, out) and y.shape[1:] == (out, out)
        for xi, yi in zip(x, y):
            # A bilinear resize keeps a linear ramp linear, so the channel is the source coordinate; the nearest
            # source pixel is that coordinate rounded (inside the window: its border is clamped by the resize).
            r, c = (torch.floor(xi[k, 1:-1, 1:-1] + 0.5 + 1e-3).long() for k in (0, 1))
            assert torch.equal(expected[r, c], yi[1:-1, 1:-1]), "a zoomed window's mask does not match its pixels"
            spans.add(round(float((xi[0, -1, 0] - xi[0, 0, 0]).abs() + (xi[0, 0, -1] - xi[0, 0, 0]).abs()), 1))
            ignored += int((yi == 255).sum())
    unzoomed = out - 1  # the span of an unzoomed window (one of the two sums is 0: rows run along one axis)
    assert len(spans) > 5 and min(spans) < unzoomed - 2  # windows really zoom in
    if window:  # and out, as far as the patch allows
        assert max(spans) > unzoomed + 2
    else:
        assert max(spans) <= unzoomed + 1e-6
    assert ignored > 0 and set(torch.unique(y).tolist()) <= set(np.unique(crafted.masks).tolist())


def test_symmetries_are_the_eight_of_the_square_and_keep_the_ignore_label():
    crafted = CraftedCache()
    plain = PatchDataset(crafted, [0], normalization="minmax")
    x0, y0 = plain.batch([0])
    ds = PatchDataset(crafted, [0], normalization="minmax", augment=True, seed=1)
    views = set()
    for _ in range(80):
        x, y = ds.batch([0])
        match = [
            (k, f)
            for k in range(4)
            for f in (False, True)
            if torch.equal(_d4(x0[0], k, f, (1, 2)), x[0]) and torch.equal(_d4(y0[0], k, f, (0, 1)), y[0])
        ]
        assert match, "an augmented patch is not a symmetry of the original with its mask"
        views.add(match[0])
        assert int((y[0] == 255).sum()) == 36  # the ignore label survives, all of it
    assert len(views) == 8


def _d4(t, k, flip, dims):
    t = torch.rot90(t, k, dims)
    return t.flip(dims[1]) if flip else t


def test_jitter_changes_colours_within_its_bounds_and_never_the_mask(cache):
    x = torch.full((64, 3, 8, 8), 100.0)
    x[:, 0] = 150.0
    out = jitter_colours(x.clone(), 0.2, np.random.default_rng(0))
    assert not torch.equal(out, x) and float(out.min()) >= 0 and float(out.max()) <= 255
    gain = out.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    assert float(gain.min()) > 0.8 * 0.8 and float(gain.max()) < 1.2 * 1.2
    plain = PatchDataset(cache, [0, 1, 2], normalization="minmax")
    jittered = PatchDataset(cache, [0, 1, 2], normalization="minmax", jitter=0.3, seed=3)
    assert torch.equal(plain.batch([0, 1, 2])[1], jittered.batch([0, 1, 2])[1])


def test_a_colour_cast_survives_min_max_scaling_and_never_touches_the_mask(cache):
    x = torch.linspace(0, 255, 64).view(1, 1, 8, 8).repeat(16, 3, 1, 1)  # grey ramps: every band alike
    out = cast_colours(x.clone(), 0.3, np.random.default_rng(0))
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    assert torch.equal(out[..., 0, 0], x[..., 0, 0]) and torch.allclose(out[..., -1, -1], x[..., -1, -1])  # ends stay
    scaled = normalize(out.permute(0, 2, 3, 1), "minmax")  # a gain or an offset per band is undone here, not a power
    assert float((scaled[:, 0] - scaled[:, 1]).abs().max()) > 0.05
    power = torch.log(out[:, :, 4, 4] / 255) / torch.log(x[:, :, 4, 4] / 255)
    assert float(power.min()) >= np.exp(-0.3) - 1e-4 and float(power.max()) <= np.exp(0.3) + 1e-4
    plain = PatchDataset(cache, [0, 1, 2], normalization="minmax", seed=3)
    cast = PatchDataset(cache, [0, 1, 2], normalization="minmax", channel_gamma=0.3, seed=3)
    images, masks = cast.batch([0, 1, 2])
    assert torch.equal(plain.batch([0, 1, 2])[1], masks) and not torch.equal(plain.batch([0, 1, 2])[0], images)


def test_the_schedule_warms_up_then_decays_to_one_percent_at_the_horizon():
    tc = TrainConfig(learning_rate=0.01, warmup_epochs=1.0)
    rates = [learning_rate(tc, e, b, 10, 5) for e in range(1, 6) for b in range(10)]
    assert rates[0] == pytest.approx(0.001) and rates[9] == pytest.approx(0.01)
    assert max(rates) == pytest.approx(0.01) and rates[-1] > 0.01 * 0.01
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # decreasing after the warm-up
    assert learning_rate(tc, 9, 0, 10, 5) == pytest.approx(0.0001)  # past the horizon: the floor
    assert learning_rate(TrainConfig(schedule="constant", learning_rate=0.003), 3, 4, 10, 5) == 0.003


def test_a_run_stopped_at_epoch_r_equals_the_first_r_epochs_of_a_longer_one(cache, tmp_path):
    """HyperBand's promotion continues a trial: its first r epochs must not depend on where it stops. Both
    runs have the same length (the trial's maximum); one is stopped by a callback, as the pruner does."""
    from aerotune.train.fit import Callback

    class StopAfter(Callback):
        def on_epoch_start(self, epoch: int) -> bool:
            return epoch <= 2

    config = RunConfig().with_overrides({**TINY, "train.epochs": 4})
    stopped = fit(config, cache, tmp_path / "stopped", callback=StopAfter())
    full = fit(config, cache, tmp_path / "full")
    assert stopped.epochs == 2 and full.epochs == 4
    for a, b in zip(stopped.history, full.history):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


def test_resume_equals_an_unbroken_run_under_the_default_recipe(cache, tmp_path):
    config = RunConfig().with_overrides({**TINY, "train.epochs": 3})
    unbroken = fit(config, cache, tmp_path / "unbroken")

    from aerotune.train.fit import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, epoch, record):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, cache, tmp_path / "broken", callback=Interrupt())
    resumed = fit(config, cache, tmp_path / "broken")
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in unbroken.history]


def test_preset_reference_reproduces_the_reference_recipe_numbers(tmp_path):
    """Recorded with the code before the recipes existed (commit 36270c7, when the reference was the only
    recipe): 2 epochs on the tests' tiny synthetic set, fp32, 1 thread. Float rounding may differ by CPU kind."""
    write_synthetic_dataset(tmp_path / "data", scenes=8, size=128, seed=3, tiles=2)
    cache = prepare_patches(tmp_path / "data", tmp_path / "cache", DataConfig(patch_size=32), PALETTE)
    config = load_config(None, preset="reference").with_overrides(
        {
            "train.epochs": 2,
            "train.batch_size": 8,
            "train.progress": False,
            "train.threads": 1,
            "train.precision": "fp32",
        }
    )
    history = fit(config, cache, tmp_path / "run").history
    recorded = [(1.0161862006554236, 0.9964293241500854), (0.9952658139742337, 0.9886835813522339)]
    for h, (train_loss, val_loss) in zip(history, recorded):
        assert h["train_loss"] == pytest.approx(train_loss, rel=1e-5)
        assert h["val_loss"] == pytest.approx(val_loss, rel=1e-5)


def test_preset_reference_is_the_old_defaults_and_the_config_key_is_the_option(tmp_path):
    ref = load_config(None, preset="reference")
    assert (ref.model.norm, ref.model.dropout, ref.model.dropout_bottom) == ("none", 0.2, 0.3)
    assert (ref.train.optimizer, ref.train.weight_decay, ref.train.schedule, ref.train.learning_rate) == (
        "adam",
        0.0,
        "constant",
        0.007,
    )
    assert (ref.data.augment, ref.data.jitter, ref.data.window, ref.data.normalization) == (False, 0.0, 1.0, "minmax")
    path = tmp_path / "c.toml"
    path.write_text('preset = "reference"\n[train]\nepochs = 3\n')
    assert load_config(path) == ref.with_overrides({"train.epochs": 3})
    # a config saved whole before the recipes existed reads as the reference's (its missing keys were its values)
    old = ref.to_dict()
    for section, key in (("model", "norm"), ("train", "optimizer"), ("train", "weight_decay"), ("data", "jitter")):
        old[section].pop(key)
    assert RunConfig.from_dict(json.loads(json.dumps(old))) == ref


def test_a_config_saved_before_a_setting_existed_reads_the_value_it_trained_with():
    """A run folder, checkpoint or study saved before ``data.channel_gamma`` existed trained without the colour
    cast: resumed, it must go on so (the default recipe's 0.1 would change its next epochs). A hand-written table
    starts from the default recipe."""
    saved = RunConfig().to_dict()
    saved["data"].pop("channel_gamma")
    assert RunConfig.from_dict(json.loads(json.dumps(saved))).data.channel_gamma == 0.0
    assert RunConfig.from_dict(json.loads(json.dumps(RunConfig().to_dict()))).data.channel_gamma == 0.1
    assert RunConfig.from_dict({"data": {"jitter": 0.3}}).data.channel_gamma == 0.1
    assert load_config(None, preset="reference").data.channel_gamma == 0.0


@pytest.mark.parametrize(
    "setting, value, allowed",
    [
        ("preset", "keras", "'default', 'reference'"),
        ("data.jitter", "0.9", "from 0 (off) to 0.5"),
        ("data.channel_gamma", "-0.1", "from 0 (off) to 0.5"),
        ("data.zoom", "0.8", "from 0 (off) to 0.5"),
        ("data.window", "0", "a share of the patch side from 0.1 to 1"),
        ("train.schedule", "step", "constant, cosine"),
        ("train.weight_decay", "-1", "a number in [0, 1)"),
        ("train.optimizer", "sgd", "adam, adamw"),
        ("train.warmup_epochs", "-2", "a number from 0 to 1000"),
        ("model.norm", "layer", "none, batch, group"),
    ],
)
def test_every_new_setting_refuses_a_bad_value_in_one_line_before_writing(tmp_path, setting, value, allowed):
    out = tmp_path / "run"
    args = ["--preset", value] if setting == "preset" else ["--set", f"{setting}={value}"]
    done = subprocess.run(
        [sys.executable, "-m", "aerotune", "train", "--data", str(tmp_path / "missing"), "--out", str(out), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and value in lines[0] and allowed in lines[0], lines
    assert not out.exists()


def test_weight_decay_is_decoupled_with_adamw_and_l2_with_adam_and_spares_biases():
    from aerotune.model.unet import build_model
    from aerotune.train.step import Speed, make_optimizer

    model = build_model(RunConfig().model.__class__(depth=3, base_filters=4), num_classes=3)
    speed = Speed(channels_last=False, fused_adam=False, compile=False, fast_dropout=True)
    for optimizer, kind in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)):
        opt = make_optimizer(model, TrainConfig(optimizer=optimizer, weight_decay=0.05), speed)
        assert type(opt) is kind
        decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
        assert all(decays[id(p)] == (0.05 if p.dim() > 1 else 0.0) for p in model.parameters())
    reference = make_optimizer(model, TrainConfig(optimizer="adam", weight_decay=0.0), speed)
    assert type(reference) is torch.optim.Adam and len(reference.param_groups) == 1  # the reference's, exactly


def test_windows_make_an_epoch_see_as_many_pixels_as_the_grid(cache):
    config = RunConfig().with_overrides(TINY)
    side = config.data.window_side(2 ** (config.model.depth - 1))
    ds = PatchDataset(cache, list(range(len(cache))), window=side)
    assert side == 16 and len(ds) == 4 * len(cache)
    x, y = ds.batch(list(range(8)))
    assert x.shape[-2:] == (16, 16) and y.shape[-2:] == (16, 16)
    assert math.isclose(len(ds) * side * side, len(cache) * 32 * 32)
