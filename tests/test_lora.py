"""The multi-head LoRA against plain references written here."""
import pytest
import torch
from torch import nn

from ChimeraPipe.lora import (
    MultiHeadLoRALinear,
    class_rows,
    count_lora_parameters,
    head_weights,
    inject_multihead_lora,
    load_lora_state_dict,
    lora_state_dict,
    stacked_routing,
)

MODES = ["A", "B", "none", "both"]


def make_layer(share, heads=4, rank=3, d_in=7, d_out=5, seed=0):
    torch.manual_seed(seed)
    layer = MultiHeadLoRALinear(nn.Linear(d_in, d_out), rank=rank, heads=heads, share=share, lora_alpha=6)
    with torch.no_grad():
        layer.lora_B.normal_()  # B starts at zero; give it values so the test sees the LoRA path
    return layer


def reference_delta(layer, w):
    """sum_k w_k B_k A_k with tying spelled out, times scale."""
    n_a, n_b = layer.lora_A.shape[0], layer.lora_B.shape[0]
    total = 0
    for k in range(layer.heads):
        total = total + w[k] * layer.lora_B[k if n_b > 1 else 0] @ layer.lora_A[k if n_a > 1 else 0]
    return layer.scale * total


@pytest.mark.parametrize("share", MODES)
def test_one_hot_equals_plain_single_lora(share):
    layer = make_layer(share)
    x = torch.randn(4, 6, 7)
    n_a, n_b = layer.lora_A.shape[0], layer.lora_B.shape[0]
    eye = torch.eye(4)
    with head_weights(layer, eye), torch.no_grad():
        y = layer(x)
    for k in range(4):
        A, B = layer.lora_A[k if n_a > 1 else 0], layer.lora_B[k if n_b > 1 else 0]
        plain = layer.base(x[k]) + layer.scale * (x[k] @ A.T) @ B.T
        torch.testing.assert_close(y[k], plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("share", MODES)
@pytest.mark.parametrize("cfg_doubled", [False, True])
def test_batched_mixing_equals_per_sample_merged_weights(share, cfg_doubled):
    layer = make_layer(share)
    batch = 5
    w = torch.distributions.Dirichlet(torch.ones(4)).sample((batch,))
    x = torch.randn(2 * batch if cfg_doubled else batch, 9, 7)
    with head_weights(layer, w), torch.no_grad():
        y = layer(x)
        for n in range(x.shape[0]):
            wn = w[n % batch]  # [uncond; cond] halves share the same weights
            merged = layer.base.weight + layer.delta_weight(wn)
            expected = x[n] @ merged.T + layer.base.bias
            torch.testing.assert_close(y[n], expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(layer.delta_weight(wn), reference_delta(layer, wn), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("share", MODES)
def test_low_rank_factors_reproduce_delta(share):
    layer = make_layer(share)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    down, up = layer.low_rank_factors(w)
    torch.testing.assert_close(up @ down, layer.delta_weight(w), atol=1e-5, rtol=1e-5)
    expected_rank = 3 if share != "none" else 12
    assert down.shape[0] == expected_rank


def test_fresh_layer_equals_base():
    layer = MultiHeadLoRALinear(nn.Linear(7, 5), rank=4, heads=3)
    x = torch.randn(3, 7)
    with head_weights(layer, torch.eye(3)):
        torch.testing.assert_close(layer(x), layer.base(x))


def test_gradient_isolation_under_shared_A():
    layer = make_layer("A")
    x = torch.randn(4, 6, 7)
    with head_weights(layer, torch.eye(4)):
        y = layer(x)
    y[2].pow(2).sum().backward()
    grad_b = layer.lora_B.grad
    assert layer.lora_A.grad.abs().sum() > 0
    assert grad_b[2].abs().sum() > 0
    for j in (0, 1, 3):
        assert torch.count_nonzero(grad_b[j]) == 0
    assert layer.base.weight.grad is None


def test_bad_weights_are_rejected():
    layer = make_layer("A")
    with pytest.raises(ValueError, match="multiple"), head_weights(layer, torch.ones(3, 4) / 4):
        layer(torch.randn(4, 7))
    with pytest.raises(ValueError, match="shape"), head_weights(layer, torch.ones(4, 2)):
        layer(torch.randn(4, 7))
    with pytest.raises(ValueError, match="share"):
        MultiHeadLoRALinear(nn.Linear(2, 2), rank=1, heads=2, share="C")


class Block(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.to_q, self.to_k, self.to_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.to_out = nn.ModuleList([nn.Linear(d, d), nn.Dropout(0.0)])
        self.ff = nn.Linear(d, d)


def test_parameter_saving_of_shared_A_on_square_layers():
    targets = ("to_q", "to_k", "to_v", "to_out.0")
    independent = Block()
    inject_multihead_lora(independent, targets, rank=4, heads=4, share="none")
    shared = Block()
    layers = inject_multihead_lora(shared, targets, rank=4, heads=4, share="A")
    assert set(layers) == {"to_q", "to_k", "to_v", "to_out.0"}
    saving = 1 - count_lora_parameters(shared) / count_lora_parameters(independent)
    assert saving == pytest.approx(0.375)
    assert not any(p.requires_grad for n, p in shared.named_parameters() if "lora_" not in n)


def test_state_dict_round_trip_and_mismatch():
    a, b = Block(), Block()
    inject_multihead_lora(a, ("to_q",), rank=2, heads=3)
    inject_multihead_lora(b, ("to_q",), rank=2, heads=3)
    state = lora_state_dict(a)
    load_lora_state_dict(b, state)
    torch.testing.assert_close(lora_state_dict(b), state)
    with pytest.raises(ValueError, match="does not match"):
        load_lora_state_dict(b, {"nope.lora_A": torch.zeros(1)})


def test_several_heads_without_weights_is_an_error_not_a_silent_mean():
    layer = make_layer("A")
    with pytest.raises(RuntimeError, match="head_weights"):
        layer(torch.randn(2, 7))
    chosen = MultiHeadLoRALinear(nn.Linear(7, 5), rank=3, heads=4, share="A", default_weights=[0, 1, 0, 0])
    with torch.no_grad():
        chosen.lora_B.normal_()
        x = torch.randn(2, 7)
        with head_weights(chosen, torch.tensor([[0.0, 1.0, 0.0, 0.0]])):
            explicit = chosen(x)
        torch.testing.assert_close(chosen(x), explicit)  # the caller's default, exactly
    single = MultiHeadLoRALinear(nn.Linear(7, 5), rank=3, heads=1, share="both")
    assert single(torch.randn(2, 7)).shape == (2, 5)  # one head needs no weights
    with pytest.raises(ValueError, match="default_weights needs 4"):
        MultiHeadLoRALinear(nn.Linear(7, 5), rank=3, heads=4, default_weights=[1.0])


@pytest.mark.parametrize("share", MODES)
def test_stacked_classes_route_each_block_to_its_own_class_and_head(share):
    """C classes in one layer: the batch ordered (class, head, repeat) meets, block by block, its own class's A
    and its own head's B, as each class's single layer with one-hot head weights gives."""
    classes, heads, repeat = 3, 4 if share != "both" else 1, 2
    torch.manual_seed(0)
    base = nn.Linear(7, 5)
    stacked = MultiHeadLoRALinear(base, rank=3, heads=heads, share=share, lora_alpha=6, classes=classes)
    with torch.no_grad():
        stacked.lora_A.normal_()
        stacked.lora_B.normal_()
    x = torch.randn(classes * heads * repeat, 6, 7)
    with stacked_routing(stacked), torch.no_grad():
        y = stacked(x)
    for c in range(classes):
        single = MultiHeadLoRALinear(base, rank=3, heads=heads, share=share, lora_alpha=6)
        a_rows, b_rows = class_rows(stacked, c)
        with torch.no_grad():
            single.lora_A.copy_(stacked.lora_A[a_rows])
            single.lora_B.copy_(stacked.lora_B[b_rows])
        block = x[c * heads * repeat:(c + 1) * heads * repeat]
        w = torch.eye(heads).repeat_interleave(repeat, dim=0)
        with head_weights(single, w), torch.no_grad():
            torch.testing.assert_close(y[c * heads * repeat:(c + 1) * heads * repeat], single(block),
                                       atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="stacked_routing"):
        stacked(x)                         # several classes only make sense routed
    with stacked_routing(stacked), pytest.raises(ValueError, match="does not split"):
        stacked(x[:5])


def test_several_classes_start_as_single_class_layers_would():
    torch.manual_seed(3)
    one = MultiHeadLoRALinear(nn.Linear(8, 4), rank=2, heads=4, share="A")
    torch.manual_seed(3)
    three = MultiHeadLoRALinear(nn.Linear(8, 4), rank=2, heads=4, share="A", classes=3)
    assert three.lora_A.shape == (3, 2, 8) and three.lora_B.shape == (12, 4, 2)
    for c in range(3):
        assert torch.equal(three.lora_A[class_rows(three, c)[0]], one.lora_A)
