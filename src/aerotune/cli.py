"""The command line: parse, call one stage function, print the outcome.

Every ``AerotuneError`` becomes one line on stderr and exit code 2 (``--debug`` shows the traceback).
Stages that live in their own package register their sub-commands through ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import shutil
import sys
from pathlib import Path

from aerotune import __version__
from aerotune.errors import AerotuneError

log = logging.getLogger("aerotune")

#: Sub-commands defined next to their stage: module path -> its ``add_parser`` adds them.
STAGE_COMMANDS = ("aerotune.tune.command", "aerotune.report.command", "aerotune.predict.command")


def add_data_options(p: argparse.ArgumentParser, *, patches: bool = True) -> None:
    """Options that map onto ``data.*`` settings (shortcuts for ``--set data.KEY=VALUE``)."""
    p.add_argument("--classes", dest="classes_file", metavar="FILE",
                   help="classes file (JSON or TOML: name -> #RRGGBB); default: the built-in Dubai palette")
    p.add_argument("--unknown-colors", choices=["error", "ignore"],
                   help="unknown mask colours: error (default) or ignore them in loss and metrics")
    if patches:
        p.add_argument("--patch-size", type=int, help="patch side in pixels (default 256)")
        p.add_argument("--scale", type=float, help="resample images by this factor before cutting patches")
        p.add_argument("--mode", choices=["reference", "full"],
                       help="reference: crop to a multiple of the patch size; full: keep every labelled pixel")


def data_overrides(args: argparse.Namespace) -> dict[str, object]:
    keys = ("classes_file", "unknown_colors", "patch_size", "scale", "mode")
    return {f"data.{k}": getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="run config (TOML, JSON or YAML) with data/model/train sections")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.epochs=5 (repeatable)")
    add_data_options(p)
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")


def resolve_config(args: argparse.Namespace):
    from aerotune.config import load_config

    config = load_config(args.config, args.overrides)
    extra = data_overrides(args)
    if getattr(args, "epochs", None) is not None:
        extra["train.epochs"] = args.epochs
    return config.with_overrides(extra) if extra else config


# ---------------------------------------------------------------- data


def cmd_inspect(args: argparse.Namespace) -> int:
    from aerotune.data.palette import load_palette, to_hex
    from aerotune.data.sources import inspect_dataset

    palette = load_palette(args.classes_file)
    insp = inspect_dataset(args.root, palette, patch_size=args.patch_size or 256, scale=args.scale or 1.0)
    if args.json:
        print(json.dumps(_inspection_dict(insp), indent=1))
        return 1 if insp.problems else 0
    print(f"{insp.root}: {insp.layout} layout, {len(insp.samples)} image/mask pairs")
    for s in insp.samples:
        w, h = insp.sizes[s.name]
        print(f"  {s.name:<32} {w}x{h}")
    total = insp.total_pixels
    print("mask colours:")
    names = dict(zip(palette.colors, palette.names))
    for color, n in sorted(insp.colors.items(), key=lambda kv: -kv[1]):
        cls = names.get(color, "UNKNOWN (not in the palette)")
        print(f"  {to_hex(color)}  {n:>12,} px  {n / max(total, 1):7.2%}  {cls}")
    for color in sorted(insp.unknown, key=lambda c: -insp.colors[c]):
        files = insp.color_files[color]
        print(f"unknown colour {to_hex(color)} in {len(files)} file(s):")
        for f in files:
            print(f"  {f}")
    if insp.problems:
        print(f"{len(insp.problems)} problem(s):")
        for p in insp.problems:
            print(f"  - {p}")
        return 1
    print("no problems found")
    return 0


def _inspection_dict(insp) -> dict:
    from aerotune.data.palette import to_hex

    names = dict(zip(insp.palette.colors, insp.palette.names))
    return {
        "root": str(insp.root), "layout": insp.layout,
        "pairs": [{"name": s.name, "image": str(s.image), "mask": str(s.mask), "size": insp.sizes[s.name]}
                  for s in insp.samples],
        "colors": [{"color": to_hex(c), "pixels": n, "class": names.get(c), "files": insp.color_files[c]}
                   for c, n in sorted(insp.colors.items(), key=lambda kv: -kv[1])],
        "problems": [str(p) for p in insp.problems],
    }


@contextlib.contextmanager
def progress_bar(desc: str, unit: str = "image"):
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


def cmd_prepare(args: argparse.Namespace) -> int:
    from aerotune.config import DataConfig
    from aerotune.data.palette import load_palette
    from aerotune.data.patches import prepare_patches

    fields = {k.split(".", 1)[1]: v for k, v in data_overrides(args).items()}
    config = DataConfig(**fields)
    with progress_bar("cutting patches") as progress:
        cache = prepare_patches(args.root, args.out, config, load_palette(config.classes_file), force=args.force,
                                progress=progress)
    px = cache.manifest["pixels"]
    print(f"{cache.root}: {len(cache)} patches of {cache.patch_size}x{cache.patch_size} from "
          f"{len(cache.sources)} images ({config.mode} mode); {px['dropped_share']:.1%} of labelled pixels "
          "outside the patches")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from aerotune.data.synthetic import write_synthetic_dataset

    result = write_synthetic_dataset(args.out, scenes=args.scenes, size=args.size, seed=args.seed, tiles=args.tiles)
    shares = ", ".join(f"{k} {v:.0%}" for k, v in result.class_fractions.items())
    print(f"{result.root}: {result.scenes} synthetic scenes of {result.size}x{result.size} in {result.tiles} "
          f"tile folders ({shares})")
    return 0


# ---------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from aerotune.data.patches import cache_for
    from aerotune.train.fit import fit

    config = resolve_config(args)
    out = Path(args.out)
    created = not out.exists()
    try:
        with progress_bar("cutting patches") as progress:
            cache = cache_for(args.data, config.data, out / "cache", progress=progress)
        result = fit(config, cache, out, resume=not args.restart)
    except AerotuneError:
        if created:  # nothing half-written: a run folder that this command made goes again
            shutil.rmtree(out, ignore_errors=True)
        raise
    print_run_summary(result)
    return 0 if result.status == "completed" else 3


def print_run_summary(result) -> None:
    final = result.history[-1] if result.history else {}
    print(f"{result.run_dir}: {result.status} after {result.epochs} epoch(s)"
          + (f" ({result.reason})" if result.reason else ""))
    if final:
        print(f"  validation loss {final['val_loss']:.4f} (best {result.best_val_loss:.4f} at epoch "
              f"{result.best_epoch}), mean IoU {final['val_mean_iou']:.3f}, pixel accuracy "
              f"{final['val_pixel_accuracy']:.3f} (majority class {final['val_majority_rate']:.3f}), "
              f"precision/recall {final['val_precision_ref']:.3f}/{final['val_recall_ref']:.3f}")


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from aerotune.demo import run_demo

    run_demo(Path(args.out), quick=args.quick)
    return 0


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aerotune", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"aerotune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors in the log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="inspect, prepare or synthesise datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser("inspect", help="list pairs, sizes, mask colours and every problem")
    p.add_argument("root")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_inspect)
    p = dsub.add_parser("prepare", help="cut patches into a memmap cache")
    p.add_argument("root")
    p.add_argument("--out", required=True, help="cache folder")
    add_data_options(p)
    p.add_argument("--force", action="store_true", help="rebuild even when the cache is up to date")
    p.set_defaults(func=cmd_prepare)
    p = dsub.add_parser("synth", help="write a procedural synthetic aerial dataset")
    p.add_argument("out")
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiles", type=int, default=None, help="tile folders (default: one per 4 scenes)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train one U-Net and write a run folder")
    p.add_argument("--data", required=True, help="dataset folder or patch cache")
    p.add_argument("--out", required=True, help="run folder (an existing one is resumed)")
    add_config_options(p)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="the end-to-end demo on a synthetic dataset")
    p.add_argument("--out", default="demo-output", help="folder for everything the demo writes")
    p.add_argument("--quick", action="store_true", help="a smaller, faster demo (used by the tests)")
    p.set_defaults(func=cmd_demo)

    for module in STAGE_COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aerotune").setLevel(level)
    try:
        return int(args.func(args) or 0)
    except AerotuneError as exc:
        if args.debug:
            raise
        print(f"aerotune: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aerotune: interrupted", file=sys.stderr)
        return 130
