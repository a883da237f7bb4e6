"""The three config sections (data, model, train): frozen dataclasses, each setting's role, each section's checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from aerotune.config.checks import check, is_extension, parse_bands, test_tile_names
from aerotune.errors import ConfigError

ACTIVATIONS = ("relu", "tanh", "swish", "none")
NORMS = ("none", "batch", "group")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
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
    # Colour-cast jitter of training windows: each channel raised to its own power exp(u), u drawn from
    # [-channel_gamma, channel_gamma] (0: off, the reference; at most 0.5). Per-channel gains and offsets cancel
    # under min-max scaling; a per-channel gamma changes the balance between the channels, as a place's colour
    # cast does.
    channel_gamma: float = 0.1
    # Scale jitter of training windows: each window is cut with a side of the window's times s, s log-uniform in
    # [1 / (1 + zoom), 1 + zoom] (never past the patch), and resized to the window's side (images bilinear, masks
    # nearest: the ignore label kept), as places are imaged at different ground resolutions. 0: off (the
    # reference); at most 0.5.
    zoom: float = 0.0
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
        """Raise ``ConfigError`` on the first invalid data setting."""
        self._check_patches()
        self._check_split()
        self._check_files()

    def _check_patches(self) -> None:
        """How patches are cut, scaled and fed: sizes, colours, normalisation, augmentation."""
        check(
            self.patch_size >= 16 and self.patch_size % 16 == 0,
            "data.patch_size",
            self.patch_size,
            "a multiple of 16, at least 16",
        )
        check(0.01 <= self.scale <= 16, "data.scale", self.scale, "a number between 0.01 and 16")
        check(self.mode in ("reference", "full"), "data.mode", self.mode, "reference or full")
        check(self.unknown_colors in ("error", "ignore"), "data.unknown_colors", self.unknown_colors, "error or ignore")
        check(
            0 <= self.color_tolerance <= MAX_TOLERANCE,
            "data.color_tolerance",
            self.color_tolerance,
            f"a whole number from 0 (exact colours) to {MAX_TOLERANCE}",
        )
        check(
            self.normalization in ("minmax", "meanstd"), "data.normalization", self.normalization, "minmax or meanstd"
        )
        check(0.0 <= self.jitter <= MAX_JITTER, "data.jitter", self.jitter, f"a number from 0 (off) to {MAX_JITTER}")
        check(
            0.0 <= self.channel_gamma <= MAX_JITTER,
            "data.channel_gamma",
            self.channel_gamma,
            f"a number from 0 (off) to {MAX_JITTER}",
        )
        check(0.0 <= self.zoom <= MAX_JITTER, "data.zoom", self.zoom, f"a number from 0 (off) to {MAX_JITTER}")
        check(0.1 <= self.window <= 1.0, "data.window", self.window, "a share of the patch side from 0.1 to 1")

    def _check_split(self) -> None:
        """The train/validation split and the test portion."""
        check(self.split in ("random", "image", "tile"), "data.split", self.split, "random, image or tile")
        check(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "between 0 and 1")
        check(
            0.0 <= self.test_fraction < 1.0,
            "data.test_fraction",
            self.test_fraction,
            "a share between 0 and 1 (0: no test portion)",
        )
        check(
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

    def _check_files(self) -> None:
        """How images and masks are found and read: mask sizes, bands, folder names, file name endings."""
        check(self.mask_size in ("error", "resize"), "data.mask_size", self.mask_size, "error or resize")
        self.band_list  # noqa: B018 - raises a ConfigError when malformed
        for key in ("images_dir", "masks_dir"):
            name = getattr(self, key)
            check(
                name is None or (name.strip() not in ("", ".", "..") and "/" not in name and "\\" not in name),
                f"data.{key}",
                name,
                "the name of a folder inside the dataset (or each tile folder), like images",
            )
        for key in ("image_suffix", "mask_suffix"):
            text = getattr(self, key)
            check(
                text is None or (text.strip() != "" and not any(c in text for c in "/\\") and not is_extension(text)),
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
        check(
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
        check(1 <= self.base_filters <= 512, "model.base_filters", self.base_filters, "between 1 and 512")
        check(2 <= self.depth <= 7, "model.depth", self.depth, "between 2 and 7")
        check(self.activation in ACTIVATIONS, "model.activation", self.activation, ", ".join(ACTIVATIONS))
        check(self.norm in NORMS, "model.norm", self.norm, ", ".join(NORMS))
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "in [0, 1)")
        check(0.0 <= self.dropout_bottom < 1.0, "model.dropout_bottom", self.dropout_bottom, "in [0, 1)")


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
        check(1 <= self.epochs <= 100_000, "train.epochs", self.epochs, "a positive whole number")
        check(1 <= self.batch_size <= 4096, "train.batch_size", self.batch_size, "between 1 and 4096")
        check(0.0 < self.learning_rate < 10.0, "train.learning_rate", self.learning_rate, "between 0 and 10")
        check(self.optimizer in OPTIMIZERS, "train.optimizer", self.optimizer, ", ".join(OPTIMIZERS))
        check(0.0 <= self.weight_decay < 1.0, "train.weight_decay", self.weight_decay, "a number in [0, 1)")
        check(self.schedule in SCHEDULES, "train.schedule", self.schedule, ", ".join(SCHEDULES))
        check(0.0 <= self.warmup_epochs <= 1000, "train.warmup_epochs", self.warmup_epochs, "a number from 0 to 1000")
        check(self.loss in ("dice_focal", "cross_entropy"), "train.loss", self.loss, "dice_focal or cross_entropy")
        check(
            self.dice_weight >= 0 and self.focal_weight >= 0,
            "train.dice_weight/focal_weight",
            (self.dice_weight, self.focal_weight),
            "non-negative numbers",
        )
        check(self.focal_gamma >= 0, "train.focal_gamma", self.focal_gamma, "a non-negative number")
        check(0 <= self.focal_alpha <= 1, "train.focal_alpha", self.focal_alpha, "between 0 and 1")
        check(
            self.precision in ("auto", "fp32", "bf16", "fp16"),
            "train.precision",
            self.precision,
            "auto, fp32, bf16 or fp16",
        )
        check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            "train.device",
            self.device,
            "auto, cpu, cuda or cuda:N",
        )
        check(self.threads >= 0, "train.threads", self.threads, "0 (default) or a positive number")
        for key in ("channels_last", "fused_adam", "fast_dropout"):
            check(getattr(self, key) in ("auto", "on", "off"), f"train.{key}", getattr(self, key), "auto, on or off")
        check(self.compile in ("off", "on"), "train.compile", self.compile, "off or on")
