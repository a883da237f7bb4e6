"""``aerotune predict``: segment whole scenes with a trained or tuned model."""

from __future__ import annotations

import argparse

from aerotune.commands.common import progress_bar, whole_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment whole scenes with a trained or tuned model")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    p.add_argument("--model", required=True, help="tuning run, training run or checkpoint (.pt)")
    p.add_argument("--out", required=True, help="folder for the masks")
    p.add_argument("--overlay", action="store_true", help="also write each image blended with its mask")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=whole_number(1, 4096), default=16)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from aerotune.files import check_output

    check_output(args.out, "predictions", inputs=args.inputs, inside_inputs=True)  # before loading anything
    from aerotune.predict.scene import Predictor, predict_files

    predictor = Predictor.load(args.model, device=args.device, batch_size=args.batch_size)
    with progress_bar("segmenting scenes") as progress:
        written = predict_files(predictor, args.inputs, args.out, overlay=args.overlay, progress=progress)
    masks = [p for p in written if p.suffix == ".png"]
    print(f"{args.out}: {len(masks)} mask(s) in the classes' colours ({', '.join(predictor.palette.names)})")
    return 0
