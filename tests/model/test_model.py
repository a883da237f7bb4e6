import pytest
import torch

from aerotune.config import ModelConfig, load_config
from aerotune.model.losses import cross_entropy_loss, dice_focal_loss
from aerotune.model.unet import build_model

REFERENCE_MODEL = load_config(None, preset="reference").model


def test_reference_unet_has_the_keras_models_parameter_count():
    model = build_model(REFERENCE_MODEL, num_classes=6)
    # The reference Keras model (16..256 filters, 6 classes) has 1,941,190 parameters.
    assert sum(p.numel() for p in model.parameters()) == 1_941_190
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths[:10] == [16, 16, 32, 32, 64, 64, 128, 128, 256, 256]


@pytest.mark.parametrize("activation", ["relu", "tanh", "swish", "none"])
@pytest.mark.parametrize("depth, width", [(3, 4), (4, 8)])
def test_shapes_for_every_activation_width_and_depth(activation, depth, width):
    model = build_model(ModelConfig(activation=activation, depth=depth, base_filters=width), num_classes=5)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 5, 32, 32)


def test_he_normal_init_scale():
    model = build_model(REFERENCE_MODEL, num_classes=6)
    conv = model.down[2][0]  # 32 -> 64 filters, fan-in 32*9
    std = float(conv.weight.detach().std())
    assert abs(std - (2 / (32 * 9)) ** 0.5) / std < 0.1
    assert float(conv.weight.detach().abs().max()) <= 2 * (2 / (32 * 9)) ** 0.5 / 0.8796 + 1e-6


def test_losses_skip_the_ignore_label_and_reward_the_truth():
    target = torch.randint(0, 6, (2, 16, 16))
    perfect = torch.nn.functional.one_hot(target, 6).permute(0, 3, 1, 2).float() * 20
    wrong = torch.roll(perfect, 1, dims=1)
    good, bad = dice_focal_loss(perfect, target, ignore_index=255), dice_focal_loss(wrong, target, ignore_index=255)
    # dice with equal weights 1/C, averaged (segmentation_models' convention): range [1 - 1/C, 1]
    assert abs(float(good) - (1 - 1 / 6)) < 1e-3 and float(bad) > 1.0
    ignored = target.clone()
    ignored[:, :8] = 255
    garbage = perfect.clone()
    garbage[:, :, :8] = torch.randn(2, 6, 8, 16) * 50  # predictions under ignored pixels do not matter
    a = dice_focal_loss(perfect, ignored, ignore_index=255)
    b = dice_focal_loss(garbage, ignored, ignore_index=255)
    assert torch.allclose(a, b)
    assert torch.allclose(
        cross_entropy_loss(perfect, ignored, ignore_index=255), cross_entropy_loss(garbage, ignored, ignore_index=255)
    )
    assert float(cross_entropy_loss(perfect, torch.full_like(target, 255), ignore_index=255)) == 0.0


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_dropout_keeps_the_rate_the_expectation_and_its_gradient(channels_last):
    from aerotune.model.unet import Dropout

    x = torch.rand(4, 8, 64, 64) + 0.5
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    drop = Dropout(0.2)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.8) < 0.01  # 131,072 draws
    assert torch.allclose(y[kept], x[kept] * 1.25)
    assert abs(float(y.mean() / x.mean()) - 1.0) < 0.02
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * 1.25)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # reproducible from the seed
    drop.eval()
    assert torch.equal(drop(x), x)
    drop.train()
    drop.fast = False  # nn.Dropout's own path
    assert abs(float((drop(x) != 0).float().mean()) - 0.8) < 0.01


@pytest.mark.parametrize("norm, layer", [("batch", torch.nn.BatchNorm2d), ("group", torch.nn.GroupNorm)])
def test_normalisation_layers_follow_every_convolution(norm, layer):
    model = build_model(ModelConfig(norm=norm, depth=3, base_filters=8), num_classes=4)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len([m for m in model.modules() if isinstance(m, layer)]) == len(convs)
    assert all(c.bias is None for c in convs)  # the normalisation's shift replaces the bias
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4, 32, 32)
