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


class ConvBlock(nn.Sequential):
    """conv 3x3 -> act -> dropout -> conv 3x3 -> act."""

    def __init__(self, cin: int, cout: int, activation: str, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            make_activation(activation),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(cout, cout, 3, padding=1),
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
            self.down.append(ConvBlock(cin, w, config.activation, d))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in range(config.depth - 2, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.merge.append(ConvBlock(2 * widths[level], widths[level], config.activation, drops[level]))
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


def build_model(config: ModelConfig, *, num_classes: int) -> UNet:
    config.validate()
    return UNet(config, num_classes=num_classes)
