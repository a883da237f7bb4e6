"""The seed verdict in words and as a table: built from ``report.json``'s ``seeds`` section only."""

from __future__ import annotations

from pathlib import Path

from aerotune.report.records import SeedsSection
from aerotune.report.seed_stats import pm, sentence
from aerotune.report.tables import Cell, Column, Table


def basis_text(basis: str, test_images: int) -> str:
    """Which numbers the seed verdict compares, in a sentence."""
    if basis == "test":
        return (
            f"Mean IoU of each retraining on the study's {test_images} held-out test image(s), whole and stitched; "
            "validation loss on the validation patches (its best checkpoint's)."
        )
    return (
        "Validation loss and mean IoU of each retraining's best checkpoint on the validation patches (the study "
        "holds out no test portion; --test-fraction or --test-tiles would give an unbiased basis)."
    )


def verdict_text(seeds: SeedsSection, labels: dict[str, str]) -> str:
    """One sentence per comparison (the tuned model against the reference first)."""
    models = seeds.models
    metric = "test mean IoU" if seeds.basis == "test" else "mean IoU"
    out, judged = [], set()
    for c in seeds.comparisons:
        a, b = c.model, c.than
        name_a, name_b = labels.get(a, a), labels.get(b, b)
        pair = frozenset((models[a].trial, models[b].trial))
        if len(pair) == 1:
            out.append(f"The {name_a} model is the {name_b} trial itself, so there is no difference to judge.")
            continue
        if pair in judged:  # one trial in two roles: its comparison is already said
            continue
        judged.add(pair)
        text = sentence(name_a, name_b, c.mean_iou, metric=metric, spec=".3f", points=True, k=seeds.k)
        out.append(text[0].upper() + text[1:] + ".")
    return " ".join(out) or "No comparison: the seed retrainings gave no numbers."


def cost_text(seeds: SeedsSection | dict) -> str:
    """What the retrainings cost, what this report spent on them, and where they are kept (``seeds`` may be the
    section as in ``report.json``, as the CLI and the demo pass it)."""
    if isinstance(seeds, dict):
        seeds = SeedsSection.from_json(seeds, where="report.json seeds")
    c = seeds.cost
    now = (
        "all reused"
        if not c.epochs_now
        else f"{c.epochs_now} trained by this report" + ("" if c.epochs_now == c.epochs else ", the rest reused")
    )
    return (
        f"Cost: {c.runs} retraining(s) of {seeds.epochs_each} epochs = {c.epochs} epochs and "
        f"{c.seconds:.0f} s of training ({now}; this report spent {c.seconds_now:.0f} s on them), kept in "
        f"{_shown(seeds.folder)}."
    )


def _shown(folder: str) -> str:
    """The retraining folder relative to the working folder when it lies inside it (as the user named it)."""
    try:
        here = Path.cwd()
    except OSError:  # the working folder was removed meanwhile: the path as recorded
        return folder
    path = Path(folder)
    return str(path.relative_to(here)) if path.is_absolute() and path.is_relative_to(here) else folder


def table(seeds: SeedsSection, labels: dict[str, str]) -> Table:
    """model | trial | seeds | validation loss mean ± sd (min–max) | mean IoU mean ± sd (min–max)."""
    iou = "test mean IoU (whole images)" if seeds.basis == "test" else "mean IoU (validation patches)"
    columns = [
        Column("model", "text"),
        Column("trial"),
        Column("seeds"),
        Column("validation loss, mean ± sd (min–max)"),
        Column(f"{iou}, mean ± sd (min–max)"),
    ]
    rows = [
        [
            Cell(labels.get(role, role), "text"),
            Cell(str(m.trial)),
            Cell(", ".join(str(k) for k in m.seeds)),
            Cell(pm(m.val_loss, ".4f")),
            Cell(pm(m.mean_iou, ".3f")),
        ]
        for role, m in seeds.models.items()
    ]
    caption = (
        f"Each model retrained with {seeds.k} other training seed(s) (train.seed), the study's patches, split and "
        f"{seeds.epochs_each} epochs; the trials themselves are left out (the best trial was chosen for its draw). "
        f"{seeds.basis_text} Test: {seeds.test}, a difference beyond the noise when p < {seeds.alpha:g}. "
        + cost_text(seeds)
    )
    return Table("Seed noise", columns, rows, caption)
