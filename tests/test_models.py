"""APC models: causality, parameter and FLOP counting (against torch.utils.flop_counter), packed
batches against padded ones, and the per-layer context vectors of `APCNet.encode`."""

from collections import Counter

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from apcscale.models.config import ModelConfig
from apcscale.models.counting import batch_training_flops, count_parameters, training_flops_per_frame
from apcscale.models.layout import Layout
from apcscale.models.net import APCNet, copy_last_frame_terms, l1_terms
from apcscale.utils.schema import RecipeError, from_dict

ARCHS = [
    ModelConfig(arch="lstm", width=64, depth=3),
    ModelConfig(arch="gru", width=64, depth=3),
    ModelConfig(arch="transformer", width=64, depth=3, heads=2),
]


@pytest.mark.parametrize("cfg", ARCHS, ids=lambda c: c.arch)
def test_outputs_up_to_t_ignore_later_frames(cfg):
    torch.manual_seed(0)
    net = APCNet(40, cfg).eval()
    x = torch.randn(2, 60, 40)
    t = 37
    y = x.clone()
    y[:, t + 1 :] = torch.randn(2, 60 - t - 1, 40) * 5  # change every frame after t
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :], atol=1e-3)  # and the later outputs do change


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


COUNTED = [
    ModelConfig(arch="lstm", width=96, depth=2),
    ModelConfig(arch="gru", width=96, depth=2),
    ModelConfig(arch="transformer", width=128, depth=2, heads=4),
]


@pytest.mark.parametrize(  # an RNN's count per frame does not depend on the length: the GRU at one length
    "cfg,steps",
    [(c, s) for c in COUNTED for s in ((64,) if c.arch == "gru" else (64, 256))],
    ids=lambda v: v.arch if isinstance(v, ModelConfig) else str(v),
)
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


@pytest.mark.parametrize("arch,gates", [("lstm", 4), ("gru", 3)])
def test_parameter_counts(arch, gates):
    net = APCNet(40, ModelConfig(arch=arch, width=64, depth=2))
    size = count_parameters(net)
    rnn = 2 * gates * (64 * 64 + 64 * 64 + 2 * 64)
    assert size.n_context == rnn
    assert size.n_total == rnn + (40 * 64 + 64) + (64 * 40 + 40)


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
    with pytest.raises(RecipeError, match=r"model\.arch: expected one of 'lstm', 'gru', 'transformer'"):
        from_dict(ModelConfig, {"arch": "rnn"}, "model")
    with pytest.raises(RecipeError, match=r"model\.heads: only transformer models have attention heads"):
        from_dict(ModelConfig, {"arch": "gru", "heads": 2}, "model")


# ----------------------------------------------------------------------------------------------
# packed batches (several utterances per row) against the same utterances padded
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def packed_and_padded(prepared_fsdd):
    """A packed training batch of real FSDD crops, and the same crops as a padded batch."""
    from apcscale.data import APCDataModule

    dm = APCDataModule(prepared_fsdd, "d3", crop_frames=96, batch_frames=960, batching="pack", num_workers=0)
    dm.setup("fit")
    packed = next(iter(dm.iter_epoch()))
    lengths, rows, offsets = (packed[k].tolist() for k in ("lengths", "rows", "offsets"))
    assert len(set(rows)) < len(rows)  # some rows hold several utterances
    feats = torch.zeros(len(lengths), max(lengths), packed["feats"].shape[-1])
    for i, (n, r, o) in enumerate(zip(lengths, rows, offsets)):
        feats[i, :n] = packed["feats"][r, o : o + n]
    return packed, {"feats": feats, "lengths": packed["lengths"]}


def _where(packed):
    return list(zip(*(packed[k].tolist() for k in ("lengths", "rows", "offsets"))))


PACKED_PATHS = [(ARCHS[0], False), (ARCHS[0], True), (ARCHS[1], False), (ARCHS[1], True), (ARCHS[2], None)]


@pytest.mark.parametrize(
    "cfg,as_sequence",
    PACKED_PATHS,
    ids=lambda v: v.arch if isinstance(v, ModelConfig) else {None: "", False: "rows", True: "PackedSequence"}[v],
)
def test_packed_loss_and_gradients_equal_padded(cfg, as_sequence, packed_and_padded):
    """For the RNNs both ways a packed batch can run: the utterances one per row (the CPU's way) and
    a PackedSequence (the GPU's way, forced here on the CPU)."""
    packed, padded = packed_and_padded
    results = []
    for batch in (packed, padded):
        torch.manual_seed(0)
        net = APCNet(40, cfg)
        if as_sequence is not None:
            net.context.packed_sequence = as_sequence
        total, count = net.loss_terms(batch["feats"], Layout.of(batch))
        (total / count).backward()
        results.append((total.item(), count.item(), [p.grad.clone() for p in net.parameters()]))
    (t1, c1, g1), (t2, c2, g2) = results
    assert c1 == c2 == (padded["lengths"] - 3).clamp_min(0).sum().item() * 40
    assert t1 == pytest.approx(t2, rel=1e-5)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "cfg,as_sequence",
    PACKED_PATHS,
    ids=lambda v: v.arch if isinstance(v, ModelConfig) else {None: "", False: "rows", True: "PackedSequence"}[v],
)
def test_packed_utterances_do_not_see_each_other(cfg, as_sequence, packed_and_padded):
    """Perturbing one utterance of a packed row leaves the outputs of all the others bit-identical
    (no attention, no recurrent state across an utterance boundary), and RoPE positions restart."""
    packed, _ = packed_and_padded
    where = _where(packed)
    row_counts = Counter(r for _, r, _ in where)
    victim = next(i for i, (_, r, o) in enumerate(where) if row_counts[r] > 1 and o == 0)  # others follow it
    torch.manual_seed(0)
    net = APCNet(40, cfg).eval()
    if as_sequence is not None:
        net.context.packed_sequence = as_sequence
    layout = Layout.of(packed)
    assert all(layout.position[r, o : o + n].tolist() == list(range(n)) for n, r, o in where)
    n, r, o = where[victim]
    changed = packed["feats"].clone()
    changed[r, o : o + n] = torch.randn(n, 40) * 3
    with torch.no_grad():
        a, b = net(packed["feats"], layout), net(changed, layout)
    for i, (n_i, r_i, o_i) in enumerate(where):
        same = torch.equal(a[r_i, o_i : o_i + n_i], b[r_i, o_i : o_i + n_i])
        assert same == (i != victim), (i, victim)


# ----------------------------------------------------------------------------------------------
# encode: the context vectors of every layer
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", ARCHS, ids=lambda c: c.arch)
def test_encode_feeds_the_head_and_every_layer_is_causal(cfg, packed_and_padded):
    _, padded = packed_and_padded
    torch.manual_seed(0)
    net = APCNet(40, cfg).eval()
    x = padded["feats"][:4, :40].clone()
    t = 23
    y = x.clone()
    y[:, t + 1 :] = torch.randn(4, 40 - t - 1, 40) * 5  # change every frame after t
    with torch.no_grad():
        assert torch.equal(net.head(net.encode(x)), net(x))  # layer -1: what the head reads
        assert torch.equal(net.encode(x, layer=-1), net.encode(x, layer=cfg.depth))
        for layer in range(cfg.depth + 1):
            a, b = net.encode(x, layer=layer), net.encode(y, layer=layer)
            assert a.shape == (4, 40, cfg.width)
            assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), layer
            assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :], atol=1e-3), layer
        h = net.encode(padded["feats"], padded["lengths"], layer=1)
        steps = torch.arange(h.shape[1])[None, :] < padded["lengths"][:, None]
        assert not h[~steps].any() and h[steps].abs().sum(-1).min() > 0  # zero where no frame is
    with pytest.raises(ValueError, match=rf"layer {cfg.depth + 1} is out of range for a {cfg.depth}-layer"):
        net.encode(x, layer=cfg.depth + 1)
