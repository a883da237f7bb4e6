"""``aerotune data inspect | prepare | synth``: look at a dataset, cut it into a patch cache, or synthesise one."""

from __future__ import annotations

import argparse
import json

from aerotune.commands.common import add_data_options, data_overrides, progress_bar, whole_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect, prepare or synthesise datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser(
        "inspect",
        help="list pairs, sizes, mask colours and every problem (exit 1 when it finds problems)",
        description="Read every image/mask pair once and list pairs, sizes, mask colours and problems. The text "
        f"output stays about a screen long (the first {SHOWN_PAIRS} pairs, {SHOWN_FILES} files per unknown colour, "
        f"{SHOWN_PROBLEMS} problems); --verbose or --json lists everything. Exit status: 0 when it finds no "
        "problem, 1 when it finds problems (listed), 2 when it cannot inspect at all (one line on stderr).",
    )
    p.add_argument("root")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print every finding as JSON")
    p.add_argument("--verbose", action="store_true", help="list every pair, file and problem in the text output")
    p.set_defaults(func=cmd_inspect)
    p = dsub.add_parser("prepare", help="cut patches into a memmap cache")
    p.add_argument("root")
    p.add_argument("--out", required=True, help="cache folder")
    add_data_options(p)
    p.add_argument("--force", action="store_true", help="rebuild even when the cache is up to date")
    p.set_defaults(func=cmd_prepare)
    p = dsub.add_parser("synth", help="write a procedural synthetic aerial dataset")
    p.add_argument("out")
    p.add_argument("--scenes", type=whole_number(1), default=8)
    p.add_argument("--size", type=whole_number(1), default=512)
    p.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0)
    p.add_argument("--tiles", type=whole_number(1), default=None, help="tile folders (default: one per 4 scenes)")
    p.set_defaults(func=cmd_synth)


#: How much of a long inspection the text output shows (a wrong palette lists every mask under each colour,
#: lossy masks hold thousands of colours): about a screen; --verbose and --json show all.
SHOWN_PAIRS, SHOWN_COLORS, SHOWN_UNKNOWN, SHOWN_FILES, SHOWN_PROBLEMS = 8, 24, 6, 3, 10


def cmd_inspect(args: argparse.Namespace) -> int:
    from aerotune.config import DataConfig, parse_bands
    from aerotune.data.inspection import inspect_dataset
    from aerotune.data.palette import load_palette

    DataConfig(**{k: getattr(args, k) for k in ("images_dir", "masks_dir", "image_suffix", "mask_suffix")}).validate()
    palette = load_palette(args.classes_file)
    insp = inspect_dataset(
        args.root,
        palette,
        patch_size=args.patch_size or 256,
        scale=args.scale or 1.0,
        images_dir=args.images_dir,
        masks_dir=args.masks_dir,
        image_suffix=args.image_suffix,
        mask_suffix=args.mask_suffix,
        mask_size=args.mask_size or "error",
        bands=parse_bands(args.bands),
        color_tolerance=args.color_tolerance or 0,
    )
    if args.json:
        print(json.dumps(_inspection_dict(insp), indent=1))
        return 1 if insp.problems else 0
    for line in _inspection_lines(insp, verbose=args.verbose):
        print(line)
    return 1 if insp.problems else 0


def _capped(items: list, shown: int | None, line, more: str, indent: str = "  ") -> list[str]:
    """``line(item)`` for the first ``shown`` items (all for None), then "… and N more ``more``"."""
    lines = [line(x) for x in items[:shown]]
    if shown is not None and len(items) > shown:
        lines.append(f"{indent}… and {len(items) - shown:,} more {more}")
    return lines


def _inspection_lines(insp, *, verbose: bool) -> list[str]:
    """The text report: pairs, colours, unknown colours with their files, problems (capped unless ``verbose``)."""
    from aerotune.data.palette import key_text
    from aerotune.reading import show

    cap = (lambda n: None) if verbose else (lambda n: n)
    palette, total, snapped = insp.palette, insp.total_pixels, insp.snapped
    out = [f"{show(insp.root)}: {insp.layout} layout, {len(insp.samples)} image/mask pairs"]
    out += _capped(
        insp.samples, cap(SHOWN_PAIRS), lambda s: f"  {s.name:<32} {insp.sizes[s.name][0]}x{insp.sizes[s.name][1]}",
        "pair(s); --verbose lists every one",
    )  # fmt: skip
    out.append("mask ids:" if palette.by_id else "mask colours:")
    ranked = sorted(insp.colors.items(), key=lambda kv: -kv[1])
    for color, n in ranked[:SHOWN_COLORS]:
        k = insp.classes[color]
        cls = "UNKNOWN (not in the palette)" if k < 0 else palette.names[k] + (" (snapped)" if color in snapped else "")
        out.append(f"  {key_text(color):>8}  {n:>12,} px  {n / max(total, 1):7.2%}  {cls}")
    rest = ranked[SHOWN_COLORS:]
    if rest:  # lossy masks hold thousands of colours: the tail is summed (--json lists every one)
        px = sum(n for _c, n in rest)
        unknown = sum(n for c, n in rest if insp.classes[c] < 0)
        out.append(f"  … and {len(rest):,} more, {px:,} px ({px / max(total, 1):.2%}), {unknown:,} px of them unknown")
    if insp.tolerance:
        px = sum(snapped.values())
        out.append(
            f"--color-tolerance {insp.tolerance}: {px:,} px ({px / max(total, 1):.2%}) in {len(snapped)} colour(s) "
            "snapped to their nearest palette colour"
        )
    unknown = sorted(insp.unknown, key=lambda c: -insp.colors[c])
    for color in unknown[: cap(SHOWN_UNKNOWN)]:
        files = insp.color_files[color]
        out.append(f"unknown {'id' if palette.by_id else 'colour'} {key_text(color)} in {len(files)} file(s):")
        out += _capped(files, cap(SHOWN_FILES), lambda f: f"  {f}", "file(s); --verbose lists every one")
    if not verbose and len(unknown) > SHOWN_UNKNOWN:
        out.append(
            f"… and {len(unknown) - SHOWN_UNKNOWN:,} more unknown value(s); --json lists every one with its files"
        )
    if not insp.problems:
        return [*out, "no problems found"]
    out.append(f"{len(insp.problems)} problem(s):")
    return out + _capped(
        insp.problems, cap(SHOWN_PROBLEMS), lambda p: f"  - {p}", "problem(s); --verbose lists every one"
    )


def _inspection_dict(insp) -> dict:
    from aerotune.data.palette import to_hex
    from aerotune.reading import show

    names, snapped = insp.palette.names, insp.snapped
    return {
        "root": show(insp.root),
        "color_tolerance": insp.tolerance,
        "snapped_pixels": sum(snapped.values()),
        "layout": insp.layout,
        "pairs": [
            {"name": s.name, "image": show(s.image), "mask": show(s.mask), "size": insp.sizes[s.name]}
            for s in insp.samples
        ],
        "colors": [  # a colour palette lists colours ("color"), an index palette mask ids ("id")
            {
                **({"id": c} if isinstance(c, int) else {"color": to_hex(c)}),
                "pixels": n,
                "class": names[insp.classes[c]] if insp.classes[c] >= 0 else None,
                "snapped": c in snapped,
                "files": insp.color_files[c],
            }
            for c, n in sorted(insp.colors.items(), key=lambda kv: -kv[1])
        ],
        "problems": [str(p) for p in insp.problems],
    }


def cmd_prepare(args: argparse.Namespace) -> int:
    from aerotune.config import DataConfig
    from aerotune.data.palette import load_palette
    from aerotune.data.patches import prepare_patches

    fields = {k.split(".", 1)[1]: v for k, v in data_overrides(args).items()}
    config = DataConfig(**fields)
    with progress_bar("cutting patches") as progress:
        cache = prepare_patches(
            args.root, args.out, config, load_palette(config.classes_file), force=args.force, progress=progress
        )
    px = cache.manifest["pixels"]
    bands = cache.bands
    picked = f" (GeoTIFF bands {','.join(map(str, bands.select))})" if bands.select else ""
    scaled = ", uint16 values scaled per band by the training set's range" if bands.lo else ""
    skipped = cache.manifest.get("skipped", [])
    print(
        f"{cache.root}: {len(cache)} patches of {cache.patch_size}x{cache.patch_size} from "
        f"{len(cache.sources)} images ({config.mode} mode, {bands.count} bands{picked}{scaled}); "
        f"{px['dropped_share']:.1%} of labelled pixels "
        "outside the patches"
        + (
            f'; {len(skipped)} pair(s) or file(s) skipped, listed under "skipped" in {cache.root / "manifest.json"}'
            if skipped
            else ""
        )
    )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from aerotune.data.synthetic import write_synthetic_dataset

    result = write_synthetic_dataset(args.out, scenes=args.scenes, size=args.size, seed=args.seed, tiles=args.tiles)
    shares = ", ".join(f"{k} {v:.0%}" for k, v in result.class_fractions.items())
    print(
        f"{result.root}: {result.scenes} synthetic scenes of {result.size}x{result.size} in {result.tiles} "
        f"tile folders ({shares})"
    )
    return 0
