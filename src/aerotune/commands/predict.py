"""``aerotune predict``, ``aerotune evaluate`` and ``aerotune export``: parse, call the stage, print the outcome."""

from __future__ import annotations

import argparse

from aerotune.commands.common import LAYOUT_OPTIONS, add_layout_options, progress_bar, whole_number
from aerotune.config import parse_bands
from aerotune.predict.load import load_model


def overlap_fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text}: the overlap is a fraction of the window, in [0, 1)")
    return value


def add_window_options(p: argparse.ArgumentParser) -> None:
    from aerotune.predict.run import DEFAULT_OVERLAP

    p.add_argument(
        "--overlap",
        type=overlap_fraction,
        default=DEFAULT_OVERLAP,
        help=f"overlap of neighbouring windows as a fraction of the window (default {DEFAULT_OVERLAP}; "
        "0.5 costs about 2.3x the time of 0.25)",
    )
    p.add_argument(
        "--blend",
        choices=["smooth", "uniform"],
        default="smooth",
        help="weights of overlapping windows: smooth cross-fade (default) or a uniform average",
    )
    p.add_argument(
        "--tta",
        choices=["none", "flips", "d4"],
        default="none",
        help="test-time augmentation averaged in probability space: flips (4 views) or d4 (8 views)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda (PyTorch models)")
    p.add_argument("--batch-size", type=whole_number(1, 4096), default=16, help="windows per forward pass (default 16)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="segment whole scenes with a trained, tuned or exported model",
        description="Segment whole scenes of any size in bounded memory (sliding windows with a "
        "smooth blend). PNG/JPEG inputs give palette PNG masks; GeoTIFF inputs give "
        "GeoTIFF class maps with the same CRS and transform (needs aerotune[geo]).",
    )
    from aerotune.data.folders import IMAGE_SUFFIXES

    p.add_argument(
        "inputs", nargs="+", help=f"image files or folders of images ({' '.join(IMAGE_SUFFIXES)}; not sub-folders)"
    )
    p.add_argument("--model", required=True, help="tuning run, training run, checkpoint (.pt) or exported .onnx")
    p.add_argument("--out", required=True, help="folder for the masks (never an input folder)")
    p.add_argument("--overlay", action="store_true", help="also write each PNG/JPEG image blended with its mask")
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="GeoTIFF inputs: also write <stem>_probabilities.tif, one uint8 band per class",
    )
    p.add_argument(
        "--bands",
        metavar="LIST",
        help="GeoTIFF bands to read, 1-based, e.g. 1,2,3 (default: those the model was trained on, else all)",
    )
    add_window_options(p)
    p.set_defaults(func=cmd_predict)
    add_export_parser(sub)
    add_evaluate_parser(sub)


def cmd_predict(args: argparse.Namespace) -> int:
    from aerotune.outputs import check_output
    from aerotune.predict.run import predict_files

    bands = parse_bands(args.bands)
    from aerotune.predict.inputs import list_inputs

    check_output(args.out, "predictions", inputs=args.inputs, inside_inputs=True)  # before loading anything
    list_inputs(args.inputs, args.out)  # every input found and no two outputs named alike, before loading
    model = load_model(args.model, device=args.device, batch_size=args.batch_size)
    with progress_bar("segmenting", unit="row") as progress:
        written = predict_files(
            model,
            args.inputs,
            args.out,
            overlay=args.overlay,
            probabilities=args.probabilities,
            bands=bands,
            overlap=args.overlap,
            blend=args.blend,
            tta=args.tta,
            progress=progress,
        )
    masks = [p for p in written if p.suffix in (".png", ".tif") and not p.stem.endswith("_probabilities")]
    print(f"{args.out}: {len(masks)} mask(s) in the classes' colours ({', '.join(model.palette.names)})")
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained or tuned model to ONNX (needs aerotune[onnx])",
        description="Write an ONNX model (dynamic batch and size, softmax outputs) with the classes, "
        "normalisation and window size in its metadata, for `aerotune predict --model "
        "FILE.onnx` or any onnxruntime.",
    )
    p.add_argument("model", help="tuning run, training run or checkpoint (.pt)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    p.add_argument("--out", help="file to write (default: beside the checkpoint, or RUN/model.onnx)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from aerotune.predict.onnx import export_onnx

    out = export_onnx(args.model, args.out)
    print(f"{out}: ONNX model ({out.stat().st_size / 1e6:.1f} MB); run it with aerotune predict --model {out}")
    return 0


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics on whole stitched images (IoU, accuracy, confusion)",
        description="Segment whole images of a dataset as predict does and compare them with their "
        "masks: per-class IoU, mean IoU, pixel accuracy and the confusion matrix, per "
        "image and pooled, without and (with --tta) with test-time augmentation.",
    )
    p.add_argument("model", help="tuning run, training run, checkpoint (.pt) or exported .onnx")
    p.add_argument("--data", required=True, help="dataset folder (images/ + masks/, or tile folders)")
    p.add_argument(
        "--split",
        choices=["test", "tile", "image", "all"],
        help="images to evaluate: the run's test portion, those it held out for validation by tile or by image, "
        "or all (default: its test images when it has them, else its held-out tiles/images when it split by "
        "tile or image, else all)",
    )
    p.add_argument("--out", required=True, help="folder for metrics.json, evaluation.md and evaluation.html")
    p.add_argument(
        "--unknown-colors",
        choices=["error", "ignore"],
        help="mask colours outside the model's classes: error (refused before anything is written) or ignore "
        "them in the metrics (default: the setting the model's run was trained with, else error)",
    )
    add_layout_options(p)  # default: the layout the model's run was trained on
    add_window_options(p)
    p.set_defaults(func=cmd_evaluate)


def _layout(model, args: argparse.Namespace):
    """The data settings that find the pairs: the options given, else those the model's run was trained with
    (recorded in checkpoints and in exported ONNX files; an ONNX file from before that: the usual folder names)."""
    from dataclasses import replace

    from aerotune.config import DataConfig

    config = getattr(model, "config", None)
    base = config.data if config is not None else DataConfig()
    given = {k: getattr(args, k) for k in LAYOUT_OPTIONS if getattr(args, k, None) is not None}
    layout = replace(base, **given)
    layout.validate()
    return layout


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aerotune.outputs import check_output
    from aerotune.predict.evaluate import check_split_source, evaluate_scenes, resolve_split

    check_output(args.out, "evaluation", inputs=[args.data])  # before loading anything or warning
    check_split_source(args.model, args.split)
    model = load_model(args.model, device=args.device, batch_size=args.batch_size)
    layout = _layout(model, args)
    split, run_split = resolve_split(args.model, args.split, args.data)
    with progress_bar("evaluating") as progress:
        result = evaluate_scenes(
            model,
            args.data,
            args.out,
            split=split,
            run_split=run_split,
            layout=layout,
            tta=args.tta,
            overlap=args.overlap,
            model_name=str(args.model),
            unknown_colors=args.unknown_colors or layout.unknown_colors,
            progress=progress,
        )
    for mode, r in result.data["tta"].items():
        p = r["pooled"]
        print(
            f"TTA {mode}: pixel accuracy {p['pixel_accuracy']:.3f} (majority-class rate {p['majority_rate']:.3f}: "
            f"{p['majority_class']} everywhere), mean IoU {p['mean_iou']:.3f} on "
            f"{len(result.data['images'])} whole image(s)"
        )
    print(f"{result.out}: metrics.json, evaluation.md, evaluation.html")
    return 0
