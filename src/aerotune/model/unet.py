"""The reference U-Net, in PyTorch, with width, depth and activation as options.

Reference (Keras): per level two 3x3 convs with dropout between them (0.2; 0.3 at the bottleneck),
he-normal init, 2x2 max-pool; decoder: 2x2 stride-2 transposed conv (no activation), concatenation
with the skip, two 3x3 convs with dropout between; a 1x1 conv to the classes. The softmax is left to
the loss and metrics (they take logits), which is numerically safer than a softmax layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aerotune.config import ModelConfig


def make_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    if name == "swish":
        return nn.SiLU(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


class _MaskedScale(torch.autograd.Function):
    """``x * mask / (1 - p)`` with the bool mask saved for the backward pass (one byte per element)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return torch.where(mask, x, 0).mul_(scale)  # one new tensor, scaled in place

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad, 0).mul_(ctx.scale), None, None


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A bool mask shaped (and strided) like ``x``, True with probability ``1 - p`` (to within 2**-16).

    Each 64-bit random word gives four 16-bit draws, so it costs a quarter of the random numbers that
    ``torch.bernoulli`` draws one by one; on CPU that RNG is what makes ``nn.Dropout`` slow (measured in
    docs/benchmarks.md). Uses torch's default generator, so ``torch.manual_seed`` makes it reproducible.
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    keep = words.view(torch.int16)[:n] >= -32768 + round(p * 65536)
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = x.shape
        return keep.view(b, h, w, c).permute(0, 3, 1, 2)
    return keep.view(x.shape)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training path draws its mask with :func:`keep_mask` (``fast``, the default).

    Same expectation and drop rate as ``nn.Dropout``; other random draws, so runs differ in their noise.
    On other devices, or with ``fast = False`` (``train.dropout = torch``), it is ``nn.Dropout`` itself.
    """

    fast: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.fast and x.device.type == "cpu" and self.p > 0):
            return super().forward(x)
        return _MaskedScale.apply(x, keep_mask(x, self.p), 1.0 / (1.0 - self.p))


def make_norm(name: str, channels: int) -> list[nn.Module]:
    """The normalisation layer after a convolution (none: no layer, so the reference's layout is unchanged)."""
    if name == "batch":
        return [nn.BatchNorm2d(channels)]
    if name == "group":
        return [nn.GroupNorm(math.gcd(8, channels), channels)]  # 8 groups where the width allows
    return []


class ConvBlock(nn.Sequential):
    """conv 3x3 -> [norm] -> act -> dropout -> conv 3x3 -> [norm] -> act."""

    def __init__(self, cin: int, cout: int, activation: str, dropout: float, norm: str = "none") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"),
            *make_norm(norm, cout),
            make_activation(activation),
            Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=norm == "none"),
            *make_norm(norm, cout),
            make_activation(activation),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` levels of ``base_filters * 2**level`` filters."""

    def __init__(self, config: ModelConfig, *, in_channels: int = 3, num_classes: int = 6) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_filters * 2**i for i in range(config.depth)]
        drops = [config.dropout] * (config.depth - 1) + [config.dropout_bottom]
        self.down = nn.ModuleList()
        cin = in_channels
        for w, d in zip(widths, drops):
            self.down.append(ConvBlock(cin, w, config.activation, d, config.norm))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in range(config.depth - 2, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.merge.append(ConvBlock(2 * widths[level], widths[level], config.activation, drops[level], config.norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.reset_parameters()

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2 ** (self.config.depth - 1)

    def reset_parameters(self) -> None:
        # Keras' he_normal: truncated normal (2 std) with std sqrt(2 / fan_in); zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = nn.init._calculate_correct_fan(m.weight, "fan_in")
                if isinstance(m, nn.ConvTranspose2d):
                    # Keras counts a transposed conv's fan-in over its output channels.
                    fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
                std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # truncation keeps the std at target
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge in zip(self.up, self.merge):
            x = up(x)
            x = merge(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


def build_model(config: ModelConfig, *, num_classes: int, in_channels: int = 3) -> UNet:
    """The configured U-Net for ``in_channels`` input bands (the patch cache's, recorded in checkpoints)."""
    config.validate()
    return UNet(config, in_channels=in_channels, num_classes=num_classes)
