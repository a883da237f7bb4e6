"""Options and helpers shared by the sub-commands: config files, ``--set`` overrides, progress bars."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from aerotune.config import MAX_TOLERANCE

#: The options that say where a dataset's images and masks are and how their names pair (``data.*``).
LAYOUT_OPTIONS = ("images_dir", "masks_dir", "image_suffix", "mask_suffix")


def add_layout_options(p: argparse.ArgumentParser) -> None:
    """``--images-dir``, ``--masks-dir``, ``--image-suffix``, ``--mask-suffix``."""
    p.add_argument("--images-dir", metavar="NAME", help="name of the images folder (default: images, img, rgb...)")
    p.add_argument("--masks-dir", metavar="NAME", help="name of the masks folder (default: masks, gt, labels...)")
    p.add_argument(
        "--image-suffix",
        metavar="TEXT",
        help="end of the image file names, stripped before pairing (a_sat.jpg: _sat); with --mask-suffix, images "
        "and masks may share one folder",
    )
    p.add_argument(
        "--mask-suffix", metavar="TEXT", help="end of the mask file names, stripped before pairing (a_mask.png: _mask)"
    )


def add_data_options(p: argparse.ArgumentParser, *, patches: bool = True) -> None:
    """Options that map onto ``data.*`` settings (shortcuts for ``--set data.KEY=VALUE``)."""
    p.add_argument(
        "--classes",
        dest="classes_file",
        metavar="FILE",
        help="classes file (JSON, TOML or YAML: name -> #RRGGBB, or name -> mask id for masks of class ids); "
        "default: the built-in Dubai palette",
    )
    add_layout_options(p)
    p.add_argument(
        "--mask-size",
        choices=["error", "resize"],
        help="masks of another size than their image: error (default) or resize them (nearest neighbour, "
        "same aspect ratio within 1%%)",
    )
    p.add_argument(
        "--skip-bad-pairs",
        action="store_true",
        default=None,
        help="leave out unreadable or mismatched pairs (listed in the cache manifest) instead of failing",
    )
    p.add_argument(
        "--unknown-colors",
        choices=["error", "ignore"],
        help="unknown mask colours: error (default) or ignore them in loss and metrics",
    )
    p.add_argument(
        "--color-tolerance",
        type=whole_number(0, MAX_TOLERANCE),
        metavar="N",
        help="for lossy (JPEG) colour masks: a colour within N per channel of its nearest palette colour (and not "
        f"as near to another) takes that class; 0 (default): exact colours only; at most {MAX_TOLERANCE}",
    )
    if patches:
        p.add_argument(
            "--patch-size", type=whole_number(16), help="patch side in pixels (default 256, or the cache's own)"
        )
        p.add_argument("--scale", type=positive_number, help="resample images by this factor before cutting patches")
        p.add_argument(
            "--mode",
            choices=["reference", "full"],
            help="reference: crop to a multiple of the patch size; full: keep every labelled pixel",
        )
        p.add_argument(
            "--bands",
            metavar="LIST",
            help="GeoTIFF bands to train on, 1-based, in channel order, e.g. 4,3,2 (default: all); needs aerotune[geo]",
        )


#: ``args`` attributes that are shortcuts for ``data.*`` settings.
DATA_OPTIONS = (
    "classes_file",
    "unknown_colors",
    "color_tolerance",
    "patch_size",
    "scale",
    "mode",
    "images_dir",
    "masks_dir",
    "image_suffix",
    "mask_suffix",
    "mask_size",
    "skip_bad_pairs",
    "test_fraction",
    "test_tiles",
    "val_tiles",
    "split",
    "bands",
)


def data_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The ``data.*`` settings given as options, as ``{"data.KEY": value}``."""
    return {f"data.{k}": getattr(args, k) for k in DATA_OPTIONS if getattr(args, k, None) is not None}


def add_config_options(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--set``, the data options and ``--epochs``: everything that makes a run config."""
    p.add_argument("--config", metavar="FILE", help="run config (TOML, JSON or YAML) with data/model/train sections")
    p.add_argument(
        "--preset",
        choices=("default", "reference"),
        help="the training recipe the settings start from: default (aerotune's: batch norm, AdamW with a cosine "
        "schedule, flips, rotations, random windows, colour jitter) or reference (the Keras reference's, exactly); "
        "also the config key preset",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.epochs=5 (repeatable)",
    )
    add_data_options(p)
    p.add_argument("--epochs", type=whole_number(1), help="shortcut for --set train.epochs=N")
    test = p.add_mutually_exclusive_group()
    test.add_argument(
        "--test-fraction",
        type=share,
        metavar="F",
        help="hold out this share of the whole images (drawn with the split seed, stratified by tile) as a test "
        "portion that training and tuning never see; the report's verdict is computed on it",
    )
    test.add_argument(
        "--test-tiles",
        metavar="NAMES",
        help='hold out these tile folders whole as the test portion, e.g. "Tile 7,Tile 8"',
    )
    p.add_argument(
        "--split",
        choices=["random", "image", "tile"],
        help="how patches are split into training and validation: random patches (default, as the reference), "
        "whole images, or whole tile folders (honest numbers)",
    )
    p.add_argument(
        "--val-tiles",
        metavar="NAMES",
        help='validate on these tile folders, as the dataset defines them, e.g. "Tile 5,Tile 6" (implies '
        "--split tile); default: drawn with the split seed",
    )


def resolve_config(args: argparse.Namespace):
    """The run config from ``--config``, ``--set`` and the shortcut options, validated.

    When ``--data`` is a patch cache, the cache's own cut (patch size, scale, mode, unknown colours and
    palette) is the default, and a setting that contradicts it is an error (see ``cache_defaults``).
    """
    from aerotune.config import load_config

    config = load_config(args.config, args.overrides, preset=getattr(args, "preset", None))
    extra = data_overrides(args)
    if getattr(args, "val_tiles", None) is not None and "split" not in _given_data_keys(args):
        extra["data.split"] = "tile"  # the named validation tiles are a tile split, unless another was asked for
    if getattr(args, "epochs", None) is not None:
        extra["train.epochs"] = args.epochs
    config = config.with_overrides(extra) if extra else config
    data = getattr(args, "data", None)
    if data is not None:
        from aerotune.data.run_data import settings_from_cache

        config = settings_from_cache(data, config, given=_given_data_keys(args))
    return config


def _given_data_keys(args: argparse.Namespace) -> set[str]:
    """The ``data.*`` keys the user set explicitly (options, ``--set`` or the config file)."""
    from aerotune.config import read_table, resolve_key

    keys = {k for k in DATA_OPTIONS if getattr(args, k, None) is not None}
    for item in getattr(args, "overrides", []) or []:
        if "=" in item:
            with contextlib.suppress(Exception):
                section, name = resolve_key(item.split("=", 1)[0].strip())
                if section == "data":
                    keys.add(name)
    if getattr(args, "config", None):
        with contextlib.suppress(Exception):
            keys |= set(read_table(args.config).get("data", {}))
    return keys


@contextlib.contextmanager
def progress_bar(desc: str, unit: str = "image") -> Iterator:
    """A ``progress(done, total)`` callback drawing a bar on a terminal; the bar is closed on any exit,
    so an error message never lands in the middle of it."""
    from tqdm.auto import tqdm

    bars = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None))
        bars[0].n = done
        bars[0].refresh()

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def whole_number(minimum: int = 0, maximum: int | None = None):
    """An argparse type for a whole number in ``[minimum, maximum]``, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{value} is out of range; use a whole number {bound}")
        return value

    parse.__name__ = "whole number"
    return parse


def share(text: str) -> float:
    """An argparse type for a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is out of range; use a share between 0 and 1, like 0.2")
    return value


def positive_number(text: str) -> float:
    """An argparse type for a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text} is out of range; use a number above 0")
    return value
