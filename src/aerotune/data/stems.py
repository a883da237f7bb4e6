"""Image and mask names that differ by a suffix (``123_sat.jpg`` + ``123_mask.png``, ``x.png`` + ``x_mask.png``).

With ``--image-suffix`` / ``--mask-suffix`` (``data.image_suffix``, ``data.mask_suffix``) the suffixes are stripped
from the file stems before pairing, and a folder may hold both kinds. Without them nothing is guessed: when the
names themselves show a suffix pair that would pair them (every mask stem ends in ``_mask``, every image stem in
``_sat``, and the stripped stems match), the refusal names the exact options to add (:func:`suggestion`).
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from os.path import commonprefix

from aerotune.reading import show

#: Where a suffix may begin: ``_mask``, ``-label``, ``.gt``, `` mask``.
SEPARATORS = "_-. "
#: Words that say a suffix names masks (or images), to tell which is which in a folder holding both.
MASK_WORDS = {"mask", "masks", "label", "labels", "gt", "annotation", "annotations", "lbl", "seg", "class", "classes"}
IMAGE_WORDS = {"image", "images", "img", "imgs", "rgb", "sat", "photo", "ortho", "irrg", "rgbir", "rgbi"}
#: How a refusal that names the suffix options begins (it is listed before the problems it explains).
HINT = "images and masks"
#: A folder given as both the images and the masks folder, without suffixes, whose names show none.
SHARED = (
    "folder holds both the images and the masks, so their names must say which is which; name the endings with "
    "--image-suffix and --mask-suffix (a_sat.jpg + a_mask.png: --image-suffix _sat --mask-suffix _mask)"
)
#: Most endings tried when a folder holds both kinds (the most frequent ones).
MAX_ENDINGS = 8


def strip(stem: str, suffix: str | None) -> str | None:
    """``stem`` without ``suffix``; None when it does not end in it (or nothing would be left)."""
    if not suffix:
        return stem
    if stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return None


def sort_shared(stem: str, image_suffix: str | None, mask_suffix: str | None) -> tuple[str, str] | None:
    """In a folder holding both kinds: ``(kind, stripped stem)`` with kind "image" or "mask", or None when the
    name ends in neither suffix. The longer suffix wins when both match; with only one suffix given, every other
    name is of the other kind."""
    hits = [
        (len(suffix), kind, cut)
        for kind, suffix in (("image", image_suffix), ("mask", mask_suffix))
        if suffix and (cut := strip(stem, suffix)) is not None
    ]
    if hits:
        return max(hits)[1:]
    if bool(image_suffix) != bool(mask_suffix):
        return ("mask" if image_suffix else "image"), stem
    return None


def options(image_suffix: str | None, mask_suffix: str | None) -> str:
    """The command-line options that set these suffixes (``--mask-suffix=-mask`` when one starts with a dash)."""
    parts = []
    for name, value in (("--image-suffix", image_suffix), ("--mask-suffix", mask_suffix)):
        if value:
            parts.append(f"{name}={shlex.quote(value)}" if value.startswith("-") else f"{name} {shlex.quote(value)}")
    return " ".join(parts)


def _endings(stem: str) -> list[str]:
    """Every ending of ``stem`` that starts at a separator and leaves something before it."""
    return [stem[i:] for i in range(1, len(stem)) if stem[i] in SEPARATORS]


def _shared_endings(stems: list[str]) -> list[str]:
    """The empty ending, and every ending all ``stems`` share that starts at a separator (``_mask``...)."""
    common = commonprefix([s[::-1] for s in stems])[::-1]
    return [""] + [e for e in _endings(" " + common) if all(strip(s, e) for s in stems)]


def count_pairs(images: Iterable[str], masks: Iterable[str], si: str, sm: str) -> int:
    """How many stems pair once ``si`` is stripped from the images' and ``sm`` from the masks'."""
    a = {strip(s, si) for s in images} - {None}
    b = {strip(s, sm) for s in masks} - {None}
    return len(a & b)


def _worth_it(pairs: int, before: int, files: int) -> bool:
    """Stripping must pair more than the names do as they are, and at least half of the files."""
    return pairs > before and 4 * pairs >= files


def suggest_two(images: Iterable[str], masks: Iterable[str]) -> tuple[str, str] | None:
    """The (image suffix, mask suffix; "" for none) that every stem of its folder ends in and whose stripping
    pairs the stems, or None when the names show no such pair."""
    images, masks = sorted(set(images)), sorted(set(masks))
    if not images or not masks:
        return None
    best: tuple[tuple[int, int], str, str] | None = None
    for si in _shared_endings(images):
        for sm in _shared_endings(masks):
            if si or sm:
                key = (count_pairs(images, masks, si, sm), -len(si) - len(sm))
                best = max(best, (key, si, sm)) if best else (key, si, sm)
    if best and _worth_it(best[0][0], len(set(images) & set(masks)), 2 * max(len(images), len(masks))):
        return best[1], best[2]
    return None


def suggest_shared(names: Iterable[tuple[str, str]]) -> tuple[str, str, bool] | None:
    """For one folder holding both kinds, from its files' ``(stem, extension)``: ``(image suffix, mask suffix,
    sure)`` ("" for none), ``sure`` False when the names do not say which suffix is the masks'; None when no
    suffix pair would pair most of the files."""
    names = list(names)
    stems = [s for s, _ in names]
    counts = Counter(e for s in set(stems) for e in _endings(s))
    common = sorted(counts, key=lambda e: (-counts[e], len(e), e))[:MAX_ENDINGS]
    best: tuple[tuple[int, int], str, str] | None = None
    for a in ["", *common]:
        for b in common:
            if a == b or a.endswith(b) or (a and b.endswith(a)):
                continue
            side_a = [s for s in stems if strip(s, b) is None and strip(s, a) is not None]
            side_b = [s for s in stems if strip(s, b) is not None]
            key = (count_pairs(side_a, side_b, a, b), -len(a) - len(b))
            best = max(best, (key, a, b)) if best else (key, a, b)
    if not best or not _worth_it(best[0][0], 0, len(stems)):
        return None
    _, a, b = best
    role = _role(b)
    if role == "image" or (role is None and _role(a) == "mask"):
        return b, a, True
    if role == "mask" or _role(a) == "image":
        return a, b, True
    ext = {e: {x.lower() for s, x in names if (strip(s, b) is None) == (e == a)} for e in (a, b)}
    photos = {".jpg", ".jpeg"}
    if ext[a] <= photos and not ext[b] & photos:
        return a, b, True
    if ext[b] <= photos and not ext[a] & photos:
        return b, a, True
    return a, b, False


def _role(ending: str) -> str | None:
    words = {w for w in "".join(c if c not in SEPARATORS else " " for c in ending.lower()).split()}
    is_mask, is_image = bool(words & MASK_WORDS), bool(words & IMAGE_WORDS)
    return "mask" if is_mask and not is_image else "image" if is_image and not is_mask else None


def advice(image_suffix: str, mask_suffix: str, sure: bool = True) -> str:
    """The end of a refusal: the options that would pair the files."""
    text = f"to pair them, rerun with {options(image_suffix or None, mask_suffix or None)}"
    if not sure:
        which = f"the names ending in {image_suffix}" if image_suffix else "the other names"
        text += f" (or the other way round, if {which} are the masks)"
    return text


def sorter(kind: str, image_suffix: str | None, mask_suffix: str | None, *, shared: bool) -> Callable:
    """How discovery tells a file's kind and stem from its stem: ``(kind, stripped stem)``, or why its name fits
    neither. In a folder of one kind (``kind``) its suffix is stripped; in a ``shared`` folder, see
    :func:`sort_shared`."""
    suffix, flag = (image_suffix, "--image-suffix") if kind == "image" else (mask_suffix, "--mask-suffix")

    def sort(stem: str) -> tuple[str, str] | str:
        if shared:
            found = sort_shared(stem, image_suffix, mask_suffix)
            return found or (
                f"name ends in neither {show(image_suffix)} (--image-suffix) nor {show(mask_suffix)} "
                "(--mask-suffix), so it is neither an image nor a mask; rename it or remove it"
            )
        cut = strip(stem, suffix)
        if cut is None:
            return f"{kind} name does not end in {show(suffix)} ({flag}); rename it or remove it"
        return kind, cut

    return sort


def suggestion(
    images: list[tuple[str, str]], masks: list[tuple[str, str]] | None, pairs: int, given: tuple, where: str = ""
) -> str | None:
    """A refusal naming the suffix options that would pair more files than the ``pairs`` paired now, when the
    names (``(stem, extension)``; ``masks`` None for a folder holding both kinds) show them; else None."""
    wanted = tuple(g or "" for g in given)
    if masks is None:
        found = suggest_shared(images)
        if found is None or found[:2] == wanted:
            return None
        si, sm, sure = found
        kinds: dict[str, dict[str, str]] = {"image": {}, "mask": {}}
        for n, x in images:
            if kind := sort_shared(n, si or None, sm or None):
                kinds[kind[0]].setdefault(kind[1], n + x)
        both = sorted(kinds["image"].keys() & kinds["mask"].keys())
        if len(both) <= pairs:
            return None
        like = f"like {show(kinds['image'][both[0]])} and {show(kinds['mask'][both[0]])}"
        return f"{HINT} share one folder ({like}); their names differ by a suffix: {advice(si, sm, sure)}"
    found = suggest_two([n for n, _ in images], [n for n, _ in masks])
    if found is None or found == wanted or count_pairs([n for n, _ in images], [n for n, _ in masks], *found) <= pairs:
        return None
    si, sm = found
    by_stem = {strip(n, sm): n + x for n, x in masks}
    image, mask = next((n + x, by_stem[strip(n, si)]) for n, x in images if strip(n, si) in by_stem)
    like = f"like {show(image)} and {show(mask)}"
    return f"{HINT}{where} do not pair by name ({like}); their names differ by a suffix: {advice(*found)}"
