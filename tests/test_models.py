"""APC models: causality, parameter and FLOP counting (against torch.utils.flop_counter)."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from apcscale.models.config import ModelConfig
from apcscale.models.counting import batch_training_flops, count_parameters, training_flops_per_frame
from apcscale.models.net import APCNet, copy_last_frame_terms, l1_terms
from apcscale.utils.schema import RecipeError, from_dict

ARCHS = [
    ModelConfig(arch="lstm", width=64, depth=3),
    ModelConfig(arch="transformer", width=64, depth=3, heads=2),
]


@pytest.mark.parametrize("cfg", ARCHS, ids=lambda c: c.arch)
def test_outputs_up_to_t_ignore_later_frames(cfg):
    torch.manual_seed(0)
    net = APCNet(40, cfg).eval()
    x = torch.randn(2, 60, 40)
    t = 37
    y = x.clone()
    y[:, t + 1:] = torch.randn(2, 60 - t - 1, 40) * 5  # change every frame after t
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-3)  # and the later outputs do change


@pytest.mark.parametrize("cfg", ARCHS, ids=lambda c: c.arch)
def test_any_length_works(cfg):
    net = APCNet(40, cfg).eval()
    with torch.no_grad():
        for steps in (1, 5, 300):
            assert net(torch.randn(1, steps, 40)).shape == (1, steps, 40)


def measured_training_flops(net, x):
    """FLOPs of forward+backward as torch counts them (math attention, no mkldnn RNN: the
    CPU flash-attention and mkldnn LSTM kernels are not in the counter's table)."""
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as fc:
        out = net(x)
        out.sum().backward()
    return fc.get_total_flops()


@pytest.mark.parametrize(
    "cfg",
    [ModelConfig(arch="lstm", width=96, depth=2), ModelConfig(arch="transformer", width=128, depth=2, heads=4)],
    ids=lambda c: c.arch,
)
@pytest.mark.parametrize("steps", [64, 256])
def test_analytic_flops_match_flop_counter(cfg, steps):
    net = APCNet(40, cfg)
    x = torch.randn(4, steps, 40)
    measured = measured_training_flops(net, x)
    analytic = batch_training_flops(net, [steps] * 4)
    assert analytic == pytest.approx(4 * steps * training_flops_per_frame(net, steps))
    assert abs(analytic / measured - 1) < 0.10, (analytic, measured)


def test_flops_are_about_six_n_per_frame_for_lstm():
    net = APCNet(40, ModelConfig(arch="lstm", width=256, depth=4))
    size = count_parameters(net)
    per_frame = training_flops_per_frame(net, 128)
    # C ~ 6 N per frame for the context network (plus the small projection and head)
    assert 6 * size.n_context < per_frame < 6 * size.n_total * 1.05


def test_parameter_counts():
    net = APCNet(40, ModelConfig(arch="lstm", width=64, depth=2))
    size = count_parameters(net)
    lstm = 2 * 4 * (64 * 64 + 64 * 64 + 2 * 64)
    assert size.n_context == lstm
    assert size.n_total == lstm + (40 * 64 + 64) + (64 * 40 + 40)


def test_transformer_attention_term_grows_with_length():
    net = APCNet(40, ModelConfig(arch="transformer", width=128, depth=2))
    assert training_flops_per_frame(net, 1024) > training_flops_per_frame(net, 64)
    # at equal frames, one long sequence costs more than many short ones
    assert batch_training_flops(net, [1024]) > batch_training_flops(net, [64] * 16)


def test_loss_masks_padding_and_copy_baseline():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 1)
    lengths = torch.tensor([10, 6])
    total, count = copy_last_frame_terms(x, lengths, 3)
    assert count.item() == (10 - 3) + (6 - 3)
    assert total.item() == pytest.approx(3.0 * count.item())  # x_{t+3} - x_t = 3 everywhere
    pred = x.clone()  # predicting x_t for x_{t+3}: same as the copy baseline
    t2, c2 = l1_terms(pred, x, lengths, 3)
    assert (t2.item(), c2.item()) == (total.item(), count.item())


def test_model_config_errors_name_the_field():
    with pytest.raises(RecipeError, match=r"model\.heads: width 100 is not divisible by 3 heads"):
        from_dict(ModelConfig, {"arch": "transformer", "width": 100, "heads": 3}, "model")
    with pytest.raises(RecipeError, match=r"model\.arch: expected one of 'lstm', 'transformer'"):
        from_dict(ModelConfig, {"arch": "gru"}, "model")
