"""Frozen, typed configs per stage, composed into one run config.

A run config is validated on load, saved into every run folder and every checkpoint, and can be
rebuilt from that saved copy alone. Keys are addressed as ``section.field`` (``train.batch_size``);
bare field names and the reference's NNI names (``activation_type``) are accepted where unambiguous.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from aerotune.errors import ConfigError, first_line

ACTIVATIONS = ("relu", "tanh", "swish", "none")
NORMS = ("none", "batch", "group")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
PRESETS = ("default", "reference")
#: Largest ``data.jitter``: beyond it, colours stop looking like the same place.
MAX_JITTER = 0.5
#: Largest ``data.color_tolerance`` (``--color-tolerance``): beyond it, snapping would merge rather than repair
#: colours.
MAX_TOLERANCE = 64

#: What a setting is for, declared once on its field (``field(metadata=role(...))``); settings without a role
#: describe the experiment (the model and its training). The hand-kept lists of other modules derive from it.
ROLES = {
    "cache": "it changes the patch cache, which every trial shares",  # cut into the patch cache
    "palette": "it changes the patch cache, which every trial shares",  # the classes (kept beside the cache)
    "split": "every trial uses the same train/validation split",  # which patches train and validate
    "resource": "it is HyperBand's resource (set it with --epochs)",  # how long: the budget, not the experiment
    "runtime": "it says where and how to run, not what to train",  # the machine or the console
}


def role(name: str) -> dict[str, str]:
    """Field metadata declaring a setting's role (one of ``ROLES``)."""
    assert name in ROLES, name
    return {"role": name}


@dataclass(frozen=True)
class DataConfig:
    """How images and masks become patches, and how patches are split and fed to the model."""

    patch_size: int = field(default=256, metadata=role("cache"))
    scale: float = field(default=1.0, metadata=role("cache"))
    # reference: crop to a multiple of patch_size; full: keep every labelled pixel
    mode: str = field(default="reference", metadata=role("cache"))
    unknown_colors: str = field(default="error", metadata=role("cache"))  # error | ignore
    # 0: mask colours must be palette colours exactly; N: a colour within N per channel of its nearest palette
    # colour (and not as near to another) takes that class: for lossy (JPEG) masks, colour palettes only
    color_tolerance: int = field(default=0, metadata=role("cache"))
    classes_file: str | None = field(default=None, metadata=role("palette"))  # None: the built-in Dubai palette
    # minmax: each patch (or window) and channel scaled by its own min and max, robust to the colour shifts between
    # places; meanstd: the training patches' statistics
    normalization: str = "minmax"
    augment: bool = True  # the 8 flips and 90-degree rotations of each training window (the reference: off)
    # Photometric jitter of training windows: brightness, contrast and saturation each scaled by a factor drawn
    # from [1 - jitter, 1 + jitter] (0: off, the reference; at most 0.5)
    jitter: float = 0.2
    # Side of the random window cut from a cached patch each time training samples it, as a share of the patch
    # side (1: the whole patch, the reference's fixed grid; rounded down to the U-Net's stride). Each patch is
    # sampled (1 / window)**2 times an epoch, so an epoch sees as many pixels as the grid would; validation and
    # prediction use whole patches.
    window: float = 0.5
    # random (the reference: 80/20, seed 42) | image | tile
    split: str = field(default="random", metadata=role("split"))
    val_fraction: float = field(default=0.2, metadata=role("split"))
    split_seed: int = field(default=42, metadata=role("split"))
    # A test portion tuning never sees (whole images, never cut into training or validation patches):
    # a share of the images drawn with split_seed (stratified by tile), or whole tile folders by name.
    test_fraction: float = field(default=0.0, metadata=role("split"))  # 0: none
    test_tiles: str | None = field(default=None, metadata=role("split"))  # "Tile 7,Tile 8"
    # The validation tiles a dataset already defines (split "tile"); None: drawn with split_seed.
    val_tiles: str | None = field(default=None, metadata=role("split"))  # "Tile 5,Tile 6"
    # None: images/, image/, img/, rgb/, imgs/ (any case); else this folder name
    images_dir: str | None = None
    masks_dir: str | None = None  # None: masks/, mask/, gt/, labels/, label/, annotations/ (any case)
    # Stripped from the file stems before pairing (123_sat.jpg + 123_mask.png: "_sat", "_mask"); with one given,
    # a folder may hold both kinds. None: images and masks have the same stems.
    image_suffix: str | None = field(default=None, metadata=role("cache"))
    mask_suffix: str | None = field(default=None, metadata=role("cache"))
    # error | resize: masks of another size but the same aspect ratio, nearest neighbour
    mask_size: str = field(default="error", metadata=role("cache"))
    # leave out unreadable or mismatched pairs (listed in the manifest) instead of failing
    skip_bad_pairs: bool = field(default=False, metadata=role("cache"))
    bands: str | None = field(default=None, metadata=role("cache"))  # GeoTIFF bands, 1-based: "4,3,2"; None: all

    def window_side(self, stride: int) -> int:
        """The training window's side in pixels: ``window`` of the patch, a multiple of ``stride``, at least one."""
        return max(stride, int(self.patch_size * self.window) // stride * stride)

    @property
    def band_list(self) -> tuple[int, ...] | None:
        return parse_bands(self.bands, where="data.bands (--bands)")

    def validate(self) -> None:
        _check(
            self.patch_size >= 16 and self.patch_size % 16 == 0,
            "data.patch_size",
            self.patch_size,
            "a multiple of 16, at least 16",
        )
        _check(0.01 <= self.scale <= 16, "data.scale", self.scale, "a number between 0.01 and 16")
        _check(self.mode in ("reference", "full"), "data.mode", self.mode, "reference or full")
        _check(
            self.unknown_colors in ("error", "ignore"), "data.unknown_colors", self.unknown_colors, "error or ignore"
        )
        _check(
            0 <= self.color_tolerance <= MAX_TOLERANCE,
            "data.color_tolerance",
            self.color_tolerance,
            f"a whole number from 0 (exact colours) to {MAX_TOLERANCE}",
        )
        _check(
            self.normalization in ("minmax", "meanstd"), "data.normalization", self.normalization, "minmax or meanstd"
        )
        _check(0.0 <= self.jitter <= MAX_JITTER, "data.jitter", self.jitter, f"a number from 0 (off) to {MAX_JITTER}")
        _check(0.1 <= self.window <= 1.0, "data.window", self.window, "a share of the patch side from 0.1 to 1")
        _check(self.split in ("random", "image", "tile"), "data.split", self.split, "random, image or tile")
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "between 0 and 1")
        _check(
            0.0 <= self.test_fraction < 1.0,
            "data.test_fraction",
            self.test_fraction,
            "a share between 0 and 1 (0: no test portion)",
        )
        _check(
            self.test_tiles is None or bool(test_tile_names(self.test_tiles)),
            "data.test_tiles",
            self.test_tiles,
            'tile folder names separated by commas, like "Tile 7,Tile 8"',
        )
        self._check_val_tiles()
        if self.test_fraction and self.test_tiles:
            raise ConfigError(
                f"data.test_fraction = {self.test_fraction} and data.test_tiles = {self.test_tiles!r} contradict "
                "each other; hold out a share of the images or whole tiles, not both"
            )
        _check(self.mask_size in ("error", "resize"), "data.mask_size", self.mask_size, "error or resize")
        self.band_list  # noqa: B018 - raises a ConfigError when malformed
        for key in ("images_dir", "masks_dir"):
            name = getattr(self, key)
            _check(
                name is None or (name.strip() not in ("", ".", "..") and "/" not in name and "\\" not in name),
                f"data.{key}",
                name,
                "the name of a folder inside the dataset (or each tile folder), like images",
            )
        for key in ("image_suffix", "mask_suffix"):
            text = getattr(self, key)
            _check(
                text is None or (text.strip() != "" and not any(c in text for c in "/\\") and not _is_extension(text)),
                f"data.{key}",
                text,
                "the end of the file names before the extension, like _mask (not .png)",
            )
        if self.image_suffix is not None and self.image_suffix == self.mask_suffix:
            raise ConfigError(
                f"data.image_suffix and data.mask_suffix are both {self.image_suffix!r}; give the endings that tell "
                "images from masks, like --image-suffix _sat --mask-suffix _mask"
            )

    def _check_val_tiles(self) -> None:
        """``data.val_tiles``: tile names, for the tile split, none of them a test tile."""
        if self.val_tiles is None:
            return
        _check(
            bool(test_tile_names(self.val_tiles)),
            "data.val_tiles",
            self.val_tiles,
            'tile folder names separated by commas, like "Tile 5,Tile 6"',
        )
        if self.split != "tile":
            raise ConfigError(
                f"data.val_tiles = {self.val_tiles!r} names the validation tiles, but data.split = {self.split!r} "
                "contradicts it; use --split tile (data.split = tile) or drop --val-tiles"
            )
        both = sorted(set(test_tile_names(self.val_tiles)) & set(test_tile_names(self.test_tiles)))
        if both:
            raise ConfigError(
                f"data.val_tiles and data.test_tiles both name {both[0]!r}; a tile either validates or is held out "
                "for the test, so name it in one of them"
            )


def _is_extension(text: str) -> bool:
    """True for a suffix that ends in an image file extension (``_mask.png``): suffixes end before it."""
    return text.lower().endswith((".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"))


def test_tile_names(text: str | None) -> list[str]:
    """The tile folder names of ``data.test_tiles`` (comma-separated; blanks around names dropped)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net: the reference network's shape, with batch normalisation instead of its dropout by default."""

    base_filters: int = 16
    depth: int = 5  # levels, the deepest being the bottleneck (16, 32, 64, 128, 256 filters)
    activation: str = "relu"  # relu | tanh | swish | none (NNI's null)
    norm: str = "batch"  # none (the reference) | batch | group: after each 3x3 convolution
    dropout: float = 0.0  # the reference: 0.2 between a level's convolutions
    dropout_bottom: float = 0.0  # the reference: 0.3 at the bottleneck

    def validate(self) -> None:
        _check(1 <= self.base_filters <= 512, "model.base_filters", self.base_filters, "between 1 and 512")
        _check(2 <= self.depth <= 7, "model.depth", self.depth, "between 2 and 7")
        _check(self.activation in ACTIVATIONS, "model.activation", self.activation, ", ".join(ACTIVATIONS))
        _check(self.norm in NORMS, "model.norm", self.norm, ", ".join(NORMS))
        _check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "in [0, 1)")
        _check(0.0 <= self.dropout_bottom < 1.0, "model.dropout_bottom", self.dropout_bottom, "in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Batch 16 and 50 epochs are the reference's initial values (its learning rate: 0.007, Adam)."""

    epochs: int = field(default=50, metadata=role("resource"))
    batch_size: int = 16
    learning_rate: float = 0.002  # the peak rate of the schedule
    optimizer: str = "adamw"  # adam (the reference) | adamw: decoupled weight decay
    weight_decay: float = 0.01  # AdamW's decoupled decay; with adam, the classic L2 penalty (the reference: 0)
    # constant (the reference) | cosine: linear warm-up, then cosine decay to 1 % of the peak at the run's last
    # epoch (its train.epochs when it started), per batch: the first r epochs are the same whatever the length
    schedule: str = "cosine"
    warmup_epochs: float = 1.0  # epochs of linear warm-up (cosine only)
    loss: str = "dice_focal"  # dice_focal (the reference) | cross_entropy
    dice_weight: float = 1.0
    focal_weight: float = 1.0
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    shuffle: bool = True  # the reference did not shuffle; shuffling is the sound default
    seed: int = 42
    device: str = field(default="auto", metadata=role("runtime"))  # auto | cpu | cuda | cuda:N
    # auto: on CUDA bf16 where supported, else fp16; on CPU bf16 where native, else fp32 | fp32 | bf16 | fp16
    precision: str = "auto"
    threads: int = field(default=0, metadata=role("runtime"))  # torch CPU threads; 0 leaves torch's default
    progress: bool = field(default=True, metadata=role("runtime"))
    # Speed switches (docs/benchmarks.md measures each): auto picks what measured faster on that device.
    channels_last: str = field(default="auto", metadata=role("runtime"))  # auto (CUDA only) | on | off
    fused_adam: str = field(default="auto", metadata=role("runtime"))  # auto (where available) | on | off
    compile: str = field(default="off", metadata=role("runtime"))  # off (slower on CPU) | on: torch.compile
    fast_dropout: str = field(default="auto", metadata=role("runtime"))  # auto (on CPU) | on | off (nn.Dropout)

    def validate(self) -> None:
        _check(1 <= self.epochs <= 100_000, "train.epochs", self.epochs, "a positive whole number")
        _check(1 <= self.batch_size <= 4096, "train.batch_size", self.batch_size, "between 1 and 4096")
        _check(0.0 < self.learning_rate < 10.0, "train.learning_rate", self.learning_rate, "between 0 and 10")
        _check(self.optimizer in OPTIMIZERS, "train.optimizer", self.optimizer, ", ".join(OPTIMIZERS))
        _check(0.0 <= self.weight_decay < 1.0, "train.weight_decay", self.weight_decay, "a number in [0, 1)")
        _check(self.schedule in SCHEDULES, "train.schedule", self.schedule, ", ".join(SCHEDULES))
        _check(0.0 <= self.warmup_epochs <= 1000, "train.warmup_epochs", self.warmup_epochs, "a number from 0 to 1000")
        _check(self.loss in ("dice_focal", "cross_entropy"), "train.loss", self.loss, "dice_focal or cross_entropy")
        _check(
            self.dice_weight >= 0 and self.focal_weight >= 0,
            "train.dice_weight/focal_weight",
            (self.dice_weight, self.focal_weight),
            "non-negative numbers",
        )
        _check(self.focal_gamma >= 0, "train.focal_gamma", self.focal_gamma, "a non-negative number")
        _check(0 <= self.focal_alpha <= 1, "train.focal_alpha", self.focal_alpha, "between 0 and 1")
        _check(
            self.precision in ("auto", "fp32", "bf16", "fp16"),
            "train.precision",
            self.precision,
            "auto, fp32, bf16 or fp16",
        )
        _check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            "train.device",
            self.device,
            "auto, cpu, cuda or cuda:N",
        )
        _check(self.threads >= 0, "train.threads", self.threads, "0 (default) or a positive number")
        for key in ("channels_last", "fused_adam", "fast_dropout"):
            _check(getattr(self, key) in ("auto", "on", "off"), f"train.{key}", getattr(self, key), "auto, on or off")
        _check(self.compile in ("off", "on"), "train.compile", self.compile, "off or on")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs besides the data location."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        stride = 2 ** (self.model.depth - 1)
        if self.data.patch_size % stride:
            raise ConfigError(
                f"data.patch_size = {self.data.patch_size} cannot pass through a U-Net of depth "
                f"{self.model.depth} (it halves the patch {self.model.depth - 1} times); use a "
                f"multiple of {stride}, or a smaller model.depth"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "config", preset: str | None = None) -> RunConfig:
        """Build from ``{section: {key: value}}`` over a preset's values (``preset``, else the table's own
        ``preset = "..."`` key, else the default recipe)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table with sections data, model and train")
        base = preset_values(preset or raw.get("preset") or _saved_before_recipes(raw), where=where)
        sections = {}
        for name, klass in SECTIONS.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: section '{name}' must be a table of key = value")
            sections[name] = _build(klass, {**base.get(name, {}), **values}, where=f"{where}: {name}")
        unknown = set(raw) - set(SECTIONS) - {"preset"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown section {sorted(unknown)[0]!r}; the sections are data, model and train "
                "(and a preset key)"
            )
        try:
            return cls(**sections).validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def with_overrides(self, overrides: dict[str, Any], *, where: str = "--set") -> RunConfig:
        """Return a copy with ``{"section.field" or alias: value}`` applied and validated."""
        raw = self.to_dict()
        for key, value in overrides.items():
            section, name = resolve_key(key, where=where)
            raw[section][name] = value
        return RunConfig.from_dict(raw, where=where)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

#: Names used by the reference (NNI) search space and other common spellings.
ALIASES = {
    "activation_type": "model.activation",
    "lr": "train.learning_rate",
    "batch": "train.batch_size",
}


def _saved_before_recipes(raw: dict[str, Any]) -> str:
    """``reference`` for a config saved whole before the recipes existed (in a run folder, a checkpoint or a
    study): its missing settings are the reference's, which was then the only recipe. Hand-written tables
    start from the default recipe."""
    train, model = raw.get("train"), raw.get("model")
    saved_whole = isinstance(train, dict) and "fast_dropout" in train and "optimizer" not in train
    return "reference" if saved_whole and isinstance(model, dict) and "norm" not in model else "default"


def preset_values(name: Any, *, where: str = "--preset") -> dict[str, dict[str, Any]]:
    """The settings a preset changes from the default recipe, as ``{section: {key: value}}``.

    ``default`` is aerotune's recipe (the dataclass defaults); ``reference`` is the reference's recipe exactly
    (``aerotune.reference.REFERENCE_RECIPE``).
    """
    from aerotune.reference import REFERENCE_RECIPE

    if name not in PRESETS:
        raise ConfigError(f"{where}: preset = {name!r} is invalid; use {' or '.join(PRESETS)}")
    out: dict[str, dict[str, Any]] = {}
    for key, value in (REFERENCE_RECIPE if name == "reference" else {}).items():
        section, field_name = key.split(".", 1)
        out.setdefault(section, {})[field_name] = value
    return out


def parse_bands(text: str | None, *, where: str = "--bands") -> tuple[int, ...] | None:
    """``"4,3,2"`` -> ``(4, 3, 2)`` (1-based GeoTIFF bands, in the model's channel order); empty: None (all)."""
    if text is None or not str(text).strip():
        return None
    try:
        bands = tuple(int(b) for b in str(text).split(","))
    except ValueError:
        raise ConfigError(f"{where} {text!r}: expected band numbers separated by commas, e.g. 1,2,3") from None
    if any(b < 1 for b in bands):
        raise ConfigError(f"{where} {text!r}: band numbers start at 1")
    return bands


def keys_with_role(*roles: str) -> tuple[str, ...]:
    """``section.field`` of every setting with one of ``roles``, in declaration order."""
    return tuple(
        f"{section}.{f.name}"
        for section, klass in SECTIONS.items()
        for f in dataclasses.fields(klass)
        if f.metadata.get("role") in roles
    )


def role_of(key: str) -> str | None:
    """The role of a ``section.field`` setting, or None for one that describes the experiment."""
    section, name = key.split(".", 1)
    return next((f.metadata.get("role") for f in dataclasses.fields(SECTIONS[section]) if f.name == name), None)


def resolve_key(key: str, *, where: str = "config") -> tuple[str, str]:
    """Map ``section.field``, a bare unique field name or an alias to ``(section, field)``."""
    key = ALIASES.get(key, key)
    if "." in key:
        section, name = key.split(".", 1)
        if section in SECTIONS and name in _field_names(SECTIONS[section]):
            return section, name
    else:
        owners = [s for s, k in SECTIONS.items() if key in _field_names(k)]
        if len(owners) == 1:
            return owners[0], key
    known = ", ".join(f"{s}.{n}" for s, k in SECTIONS.items() for n in _field_names(k))
    raise ConfigError(f"{where}: unknown setting {key!r}; known settings are {known}")


def field_type(section: str, name: str) -> type:
    return get_type_hints(SECTIONS[section])[name]


def _field_names(klass: type) -> list[str]:
    return [f.name for f in dataclasses.fields(klass)]


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is invalid; use {expected}")


def coerce(value: Any, kind: Any, *, key: str, example: Any = None) -> Any:
    """Convert a value (possibly a string from the command line) to a field's type."""
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind is bool or kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "1", "yes", "on"):
                return True
            if text is not None and text.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(text) if text is not None else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(text) if text is not None else float(value)
        if kind is str:
            if value is None:
                return "none"
            return str(value)
        if kind == (str | None):
            if value is None or (text is not None and text.lower() in ("", "none", "null")):
                return None
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
    fix = f"; write it as {expected}" + (f", like {key} = {json.dumps(example)}" if example is not None else "")
    raise ConfigError(f"{key} = {value!r} is not {expected}{fix}")


def _build(klass: type, values: dict[str, Any], *, where: str) -> Any:
    hints = get_type_hints(klass)
    names = _field_names(klass)
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys are {', '.join(names)}")
        section = klass.__name__.replace("Config", "").lower()
        try:
            kwargs[key] = coerce(value, hints[key], key=f"{section}.{key}", example=getattr(klass(), key))
        except ConfigError as exc:
            raise ConfigError(f"{where.rsplit(': ', 1)[0]}: {exc}") from None
    if klass is ModelConfig and kwargs.get("activation") is None and "activation" in kwargs:
        kwargs["activation"] = "none"
    return klass(**kwargs)


def load_config(path: str | Path | None, overrides: list[str] | None = None, *, preset: str | None = None) -> RunConfig:
    """Read a run config from TOML, JSON or YAML over a preset (``preset``, else the file's own ``preset`` key,
    else the default recipe), then apply ``key=value`` overrides."""
    config = RunConfig.from_dict({}, where="--preset", preset=preset)
    if path is not None:
        config = RunConfig.from_dict(read_table(path), where=str(path), preset=preset)
    parsed: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, for example --set train.epochs=5")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value
    return config.with_overrides(parsed) if parsed else config


def read_table(
    path: str | Path, *, expected: str = "a table of settings at the top level, like [train] epochs = 5"
) -> dict[str, Any]:
    """Read a TOML, JSON or YAML file into a dict (an empty file: an empty dict), with a one-line error on any
    problem (``expected``: what the top level should be, for the message when it is not a table)."""
    from aerotune.reading import load_json, load_yaml, read_text, show, toml_parser

    path = Path(path)
    where = show(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise ConfigError(f"{where}: unknown file type {suffix!r}; use .toml, .json or .yaml")
    text = read_text(path, what="file", fix="give the path of an existing TOML, JSON or YAML file")
    try:
        if suffix == ".toml":
            data = toml_parser().loads(text)
        elif suffix == ".json":
            data = load_json(text, where=where)
        else:
            data = load_yaml(text, where=where)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser error is bad input
        raise ConfigError(f"{where}: cannot parse ({first_line(exc)}); fix the syntax") from None
    if data is None:  # an empty YAML file, as an empty TOML file, holds no settings
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected {expected}")
    return data
