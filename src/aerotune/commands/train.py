"""``aerotune train``: train one U-Net into a run folder (an existing run of the same settings is resumed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aerotune.commands.common import add_config_options, progress_bar, resolve_config
from aerotune.train.restart import restart_cache


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one U-Net and write a run folder")
    p.add_argument("--data", required=True, help="dataset folder or patch cache")
    p.add_argument("--out", required=True, help="run folder (an existing one is resumed)")
    add_config_options(p)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.set_defaults(func=cmd_train, resumable=True)


def cmd_train(args: argparse.Namespace) -> int:
    from aerotune.data.run_data import cache_for, check_cache_current, check_data
    from aerotune.memory import check_train_memory
    from aerotune.outputs import check_output, writing

    config = resolve_config(args)
    out = Path(args.out)
    # Everything is checked before anything is written: the output folder, the data, the resumed run;
    # the first two before torch is even imported, so a mistake is reported at once.
    own_cache = Path(args.data).resolve() == (out / "cache").resolve()  # resuming a run from its own cache
    inputs = [] if own_cache else [args.data]
    check_output(out, "train-run", inputs=inputs)
    check_train_memory(config)  # a patch that cannot fit: said before the data is read
    check_data(args.data, config.data)
    from aerotune.train.fit import check_resume, fit

    if not args.restart and check_resume(out, config) is not None:
        check_cache_current(
            args.data,
            config.data,
            out / "cache",
            fix="train with --restart to start over on the new files, or choose a new --out",
        )
    restarting = args.restart and (out / "checkpoints" / "last.pt").is_file()
    with writing(out, "train-run", inputs=inputs, keep=lambda: (out / "checkpoints" / "last.pt").is_file()):
        with progress_bar("cutting patches") as progress:
            if restarting:
                cache = restart_cache(args.data, config, out, progress=progress)
            else:
                cache = cache_for(args.data, config.data, out / "cache", progress=progress)
        result = fit(config, cache, out, resume=not args.restart)
    print_run_summary(result)
    return 0 if result.status == "completed" else 3


def print_run_summary(result) -> None:
    final = result.history[-1] if result.history else {}
    print(
        f"{result.run_dir}: {result.status} after {result.epochs} epoch(s)"
        + (f" ({result.reason})" if result.reason else "")
    )
    if final:
        print(
            f"  validation loss {final['val_loss']:.4f} (best {result.best_val_loss:.4f} at epoch "
            f"{result.best_epoch}), mean IoU {final['val_mean_iou']:.3f}, pixel accuracy "
            f"{final['val_pixel_accuracy']:.3f} (majority class {final['val_majority_rate']:.3f}), "
            f"precision/recall {final['val_precision_ref']:.3f}/{final['val_recall_ref']:.3f}"
        )
