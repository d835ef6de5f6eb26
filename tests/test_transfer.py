"""Specification of hpo.transfer: muP/CompleteP scaling rules, role inference, transfer, coordinate check."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from examples.transfer_gpt.model import GPT, GPTConfig
from hpo.transfer import (
    CoordRecord,
    Multipliers,
    Parameterization,
    Shape,
    attention_scale,
    coord_check,
    coord_slopes,
    infer_roles,
    multipliers,
    muon_update_scale,
    output_multiplier,
    param_groups,
    reinit_,
    residual_multiplier,
    scaling,
    split_groups,
    transfer_hparams,
)

VOCAB = 64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # On a shared, busy CPU, intra-op threads waiting at barriers make these small models 5-10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gpt(width: int = 64, depth: int = 2, parameterization: str = "mup", **kw) -> GPT:
    cfg = GPTConfig(
        vocab_size=VOCAB,
        n_embd=width,
        n_layer=depth,
        head_dim=16,
        block_size=32,
        parameterization=parameterization,
        base_width=32,
        base_depth=2,
        **kw,
    )
    return GPT(cfg)


def mlp(width: int, d_in: int = 8, d_out: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out)
    )


# ------------------------------------------------------------------------------------------ scaling rules


def test_mup_hidden_lr_scales_inverse_with_width():
    for m_w in (0.5, 2.0, 8.0):
        assert scaling("hidden", "mup", Multipliers(m_w, 1.0)).lr == pytest.approx(1 / m_w)


def test_completep_matches_table_1_at_width_4_depth_2():
    # Dey et al. 2025, Table 1 with m_w = 4, m_d = 2, alpha = 1.
    m = multipliers(Shape(256, 4), Shape(1024, 8))
    hidden = scaling("hidden", "completep", m)
    assert (hidden.init_std, hidden.lr, hidden.weight_decay, hidden.eps) == pytest.approx(
        (0.5, 1 / 4, 4, 1 / 8)
    )
    emb = scaling("embedding", "completep", m)
    assert (emb.init_std, emb.lr, emb.weight_decay) == (1, 1, 1)
    head = scaling("unembedding", "completep", m)
    assert (head.lr, head.forward) == pytest.approx((1, 1 / 4))
    ln = scaling("hidden_vector", "completep", m)
    assert (ln.lr, ln.weight_decay) == pytest.approx((1, 0))  # m_d^(alpha - 1) = 1 for alpha = 1
    assert residual_multiplier("completep", m) == pytest.approx(1 / 2)
    assert output_multiplier("completep", m) == pytest.approx(1 / 4)


def test_depth_mup_lr_falls_as_inverse_sqrt_depth_inside_blocks_only():
    m = Multipliers(width=2.0, depth=4.0)
    assert scaling("hidden", "depth_mup", m).lr == pytest.approx(1 / 2 * 4**-0.5)
    assert scaling("hidden_vector", "depth_mup", m).lr == pytest.approx(4**-0.5)
    assert scaling("hidden", "depth_mup", m).eps == pytest.approx(1 / 2 * 4**-0.5)
    assert scaling("vector", "depth_mup", m).lr == 1.0
    assert scaling("embedding", "depth_mup", m).lr == 1.0
    assert residual_multiplier("depth_mup", m) == pytest.approx(0.5)


def test_mup_has_no_depth_rule():
    shallow, deep = Multipliers(4.0, 1.0), Multipliers(4.0, 16.0)
    for role in ("embedding", "hidden", "hidden_vector", "vector", "unembedding"):
        assert scaling(role, "mup", shallow) == scaling(role, "mup", deep)
    assert residual_multiplier("mup", deep) == 1.0


def test_sp_keeps_base_values_at_every_shape():
    for role in ("embedding", "hidden", "unembedding"):
        s = scaling(role, "sp", Multipliers(8.0, 4.0))
        assert (s.init_std, s.lr, s.weight_decay, s.eps, s.forward) == (1, 1, 1, 1, 1)
    assert attention_scale(16, "sp") == pytest.approx(1 / 4)


def test_mup_attention_scale_is_sp_at_the_base_head_dim_and_falls_as_inverse_head_dim():
    # sqrt(d_0) / d_head: equal to SP's 1/sqrt(d_head) at d_head = d_0, then 1/d_head (TP V), not 1/sqrt(d_head)
    assert attention_scale(16, "mup") == attention_scale(16, "sp") == pytest.approx(1 / 4)
    assert attention_scale(16, "mup", base_head_dim=16) == pytest.approx(1 / 4)
    assert attention_scale(64, "mup", base_head_dim=16) == pytest.approx(1 / 16)
    assert attention_scale(256, "completep", base_head_dim=16) / attention_scale(
        64, "completep", base_head_dim=16
    ) == pytest.approx(1 / 4)
    assert attention_scale(256, "sp") / attention_scale(64, "sp") == pytest.approx(1 / 2)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", "muon"])
@pytest.mark.parametrize("parameterization", ["mup", "completep"])
def test_lr_times_weight_decay_is_width_invariant(optimizer, parameterization):
    # PyTorch decays by lr * weight_decay per step; the rules keep that product fixed as width grows.
    for role in ("embedding", "hidden", "unembedding"):
        small = scaling(role, parameterization, Multipliers(1.0, 1.0), optimizer)
        large = scaling(role, parameterization, Multipliers(8.0, 1.0), optimizer)
        assert large.lr * large.weight_decay == pytest.approx(small.lr * small.weight_decay)


def test_vectors_are_never_weight_decayed():
    for p in ("sp", "mup", "completep"):
        for role in ("vector", "hidden_vector"):
            assert scaling(role, p, Multipliers(4.0, 2.0)).weight_decay == 0.0


def test_sgd_rules_follow_tensor_programs_v_table_3():
    m = Multipliers(4.0, 1.0)
    assert scaling("hidden", "mup", m, "sgd").lr == 1.0  # hidden: eta
    assert scaling("embedding", "mup", m, "sgd").lr == 4.0  # input weights: eta * fan_out
    assert scaling("vector", "mup", m, "sgd").lr == 4.0  # biases: eta * fan_out
    assert scaling("unembedding", "mup", m, "sgd").lr == 4.0  # head under the 1/m_w multiplier
    assert scaling("hidden", "mup", m, "sgd").eps is None
    # depth-muP (alpha = 1/2) needs no depth lr correction for SGD; CompleteP's alpha = 1 gives
    # m_d^(2alpha-1).
    assert scaling("hidden", "depth_mup", Multipliers(1.0, 4.0), "sgd").lr == pytest.approx(1.0)
    assert scaling("hidden", "completep", Multipliers(1.0, 4.0), "sgd").lr == pytest.approx(4.0)


# ------------------------------------------------------------------------------------------------- Muon


def test_muon_hidden_lr_is_width_invariant_with_original_adjust_and_inverse_sqrt_with_rms_matching():
    m = Multipliers(4.0, 1.0)
    assert scaling("hidden", "mup", m, "muon", "original").lr == 1.0
    assert scaling("hidden", "mup", m, "muon", "match_rms_adamw").lr == pytest.approx(1 / 2)
    assert scaling("hidden", "mup", m, "muon", "match_rms_adamw").weight_decay == pytest.approx(2)
    assert (
        scaling("hidden", "completep", Multipliers(4.0, 2.0), "muon", "original").lr == 1.0
    )  # m_d^(alpha-1)
    # Muon updates only hidden matrices; the rest keep the AdamW rules.
    emb = scaling("embedding", "mup", m, "muon")
    assert emb.optimizer == "adamw" and emb.eps == pytest.approx(1 / 4)


def test_muon_update_scale_is_torch_muons():
    assert muon_update_scale(1024, 256, "original") == pytest.approx(2.0)
    assert muon_update_scale(256, 1024, "original") == pytest.approx(1.0)
    assert muon_update_scale(256, 1024, "match_rms_adamw") == pytest.approx(0.2 * 32)


@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_muon_update_keeps_spectral_condition_across_widths(adjust):
    # Yang, Simon, Bernstein 2023: ||dW||_2 should be Theta(sqrt(fan_out / fan_in)) whatever the width.
    norms = []
    for width in (64, 256):
        torch.manual_seed(0)
        net = mlp(width)
        groups = split_groups(
            param_groups(
                net, "mup", Shape(64), Shape(width), lr=0.02, optimizer="muon", muon_adjust_lr=adjust
            )
        )
        muon = torch.optim.Muon(groups["muon"], momentum=0.0)
        before = net[2].weight.detach().clone()
        net(torch.randn(32, 8)).pow(2).mean().backward()
        muon.step()
        norms.append(torch.linalg.matrix_norm(net[2].weight.detach() - before, ord=2).item())
    assert norms[1] == pytest.approx(norms[0], rel=0.1)


def test_muon_groups_hold_only_hidden_matrices():
    model = gpt(64)
    groups = param_groups(model, "mup", Shape(32), Shape(64), lr=1e-3, optimizer="muon")
    for g in groups:
        if g["optimizer"] == "muon":
            assert g["role"] == "hidden" and all(p.ndim == 2 for p in g["params"])
            assert g["adjust_lr_fn"] == "match_rms_adamw" and "eps" not in g
    assert {g["optimizer"] for g in groups} == {"muon", "adamw"}


# ---------------------------------------------------------------------------------------------- roles


def test_gpt_roles_are_inferred_from_module_structure():
    roles = infer_roles(gpt(64))
    assert roles["wte.weight"] == roles["wpe.weight"] == "embedding"
    assert roles["blocks.0.attn.c_attn.weight"] == roles["blocks.1.mlp.c_proj.weight"] == "hidden"
    assert roles["blocks.0.ln_1.weight"] == roles["blocks.0.ln_1.bias"] == "hidden_vector"
    assert roles["ln_f.weight"] == "vector"
    assert roles["lm_head.weight"] == "unembedding"


def test_mlp_input_layer_is_the_embedding_and_last_linear_the_head():
    roles = infer_roles(mlp(64))
    assert [roles[f"{i}.weight"] for i in (0, 2, 4)] == ["embedding", "hidden", "unembedding"]
    assert roles["0.bias"] == roles["4.bias"] == "vector"


def test_head_is_found_by_vocab_size_or_by_name():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, 32)
            self.lm_head = nn.Linear(32, VOCAB)
            self.value_head = nn.Linear(32, 1)  # registered last, but not the output over the vocabulary

    assert infer_roles(Net(), vocab_size=VOCAB)["lm_head.weight"] == "unembedding"
    assert infer_roles(Net(), vocab_size=VOCAB)["value_head.weight"] == "hidden"
    assert infer_roles(Net(), head="value_head")["value_head.weight"] == "unembedding"


def test_roles_see_through_torch_compile():
    model = gpt(64)
    plain = infer_roles(model)
    assert infer_roles(torch.compile(model)) == plain
    model.blocks[0] = torch.compile(model.blocks[0])  # a compiled submodule adds "_orig_mod." mid-name
    assert infer_roles(model) == plain
    groups = param_groups(torch.compile(model), "mup", Shape(32), Shape(64), lr=1e-3)
    assert sorted(n for g in groups for n in g["param_names"]) == sorted(plain)


def test_override_sets_a_role_by_name_pattern():
    roles = infer_roles(gpt(64), overrides={"wpe.*": "vector", "*.attn.c_proj.weight": "unembedding"})
    assert roles["wpe.weight"] == "vector"
    assert roles["blocks.1.attn.c_proj.weight"] == "unembedding"
    assert roles["wte.weight"] == "embedding"


def test_param_groups_give_each_parameter_once_with_its_roles_values():
    model = gpt(128, depth=4, parameterization="completep")  # m_w = 4, m_d = 2 against (32, 2)
    groups = param_groups(
        model, "completep", Shape(32, 2), Shape(128, 4), lr=1e-2, weight_decay=0.1, eps=1e-8
    )
    opt = torch.optim.AdamW(groups)
    params = [p for g in opt.param_groups for p in g["params"]]
    assert len(params) == len(set(params)) == len(list(model.parameters()))
    by_role = {g["role"]: g for g in opt.param_groups}
    assert by_role["hidden"]["lr"] == pytest.approx(1e-2 / 4)
    assert by_role["hidden"]["weight_decay"] == pytest.approx(0.4)
    assert by_role["hidden"]["eps"] == pytest.approx(1e-8 / 8)
    assert by_role["embedding"]["lr"] == pytest.approx(1e-2)
    assert by_role["hidden_vector"]["weight_decay"] == 0.0


def test_reinit_hidden_std_shrinks_as_inverse_sqrt_width():
    model = reinit_(mlp(1024), "mup", Shape(64), Shape(1024), init_std=0.08, hidden_init="scaled")
    assert model[2].weight.std().item() == pytest.approx(0.08 / 4, rel=0.02)
    assert model[0].weight.std().item() == pytest.approx(0.08, rel=0.05)
    assert model[2].bias.abs().max().item() == 0.0
    zero = reinit_(mlp(64), "mup", Shape(64), Shape(64), zero_unembedding=True)
    assert zero[4].weight.abs().max().item() == 0.0


def test_fan_in_init_is_the_base_fan_in_std_over_sqrt_m_w_and_equal_to_sp():
    # hidden std 1/sqrt(fan_in): at the base shape (width 32) that is 1/sqrt(32) for c_fc and 1/sqrt(128) for
    # the MLP's c_proj (fan-in 4n); at width 512 (m_w = 16) both are 4 times smaller, sigma_0 / sqrt(m_w).
    base, wide = gpt(32), gpt(512)
    for name, fan_in_0 in (("blocks.0.mlp.c_fc.weight", 32), ("blocks.0.mlp.c_proj.weight", 128)):
        std_0 = dict(base.named_parameters())[name].std().item()
        std_w = dict(wide.named_parameters())[name].std().item()
        assert std_0 == pytest.approx(fan_in_0**-0.5, rel=0.05)
        assert std_w == pytest.approx(std_0 / 4, rel=0.05)
    sp = gpt(512, parameterization="sp")
    assert sp.blocks[0].attn.c_attn.weight.std().item() == pytest.approx(512**-0.5, rel=0.05)
    # embeddings and the head keep init_std at every width
    assert wide.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert wide.lm_head.weight.std().item() == pytest.approx(0.02, rel=0.05)
    with pytest.raises(ValueError, match="hidden_init must be 'fan_in' or 'scaled'"):
        reinit_(mlp(64), "mup", Shape(64), Shape(64), hidden_init="kaiming")


def test_gpt_at_the_base_shape_is_the_same_model_in_every_parameterization():
    torch.manual_seed(0)
    idx = torch.randint(VOCAB, (2, 16))
    losses = []
    for p in ("sp", "mup", "completep"):
        torch.manual_seed(1)
        losses.append(gpt(32, parameterization=p)(idx, idx)[1].item())
    assert losses[0] == losses[1] == losses[2]


def test_gpt_carries_the_forward_multipliers():
    model = gpt(128, depth=8, parameterization="completep")  # m_w = 4, m_d = 4
    assert model.blocks[0].residual == pytest.approx(1 / 4)
    assert model.output_mult == pytest.approx(1 / 4)
    assert model.blocks[0].attn.scale == pytest.approx(1 / 4)  # head dim 16 at every width: SP's scale
    sp = gpt(128, depth=8, parameterization="sp")
    assert (sp.blocks[0].residual, sp.output_mult, sp.blocks[0].attn.scale) == (1.0, 1.0, 0.25)


# -------------------------------------------------------------------------------------------- transfer


def test_transfer_gives_table_1_values_and_keeps_the_rest():
    t = transfer_hparams(
        {"lr": 8e-3, "weight_decay": 0.1, "eps": 1e-8, "init_std": 0.02, "beta2": 0.95, "warmup": 0.1},
        base={"width": 256, "depth": 4},
        target={"width": 1024, "depth": 8},
        parameterization="completep",
    )
    assert (t.mult.width, t.mult.depth) == (4.0, 2.0)
    hidden = t.groups["hidden"]
    assert hidden["lr"] == pytest.approx(2e-3)
    assert hidden["eps"] == pytest.approx(1.25e-9)
    assert hidden["weight_decay"] == pytest.approx(0.4)
    assert hidden["init_std"] == pytest.approx(0.01)
    assert t.groups["embedding"]["lr"] == pytest.approx(8e-3)
    assert t.forward == {"residual_multiplier": 0.5, "output_multiplier": 0.25}
    assert t.unchanged == {"beta2": 0.95, "warmup": 0.1}
    text = t.describe()
    assert "m_w = 4, m_d = 2" in text and "Table 1" in text and "beta2" in text


def test_transfer_to_the_base_shape_changes_nothing():
    t = transfer_hparams({"lr": 3e-3, "weight_decay": 0.1}, Shape(128, 2), Shape(128, 2), "completep")
    assert {g["lr"] for g in t.groups.values()} == {3e-3}


# ------------------------------------------------------------------------------------------- bad input


def test_unknown_parameterization_names_the_choices():
    with pytest.raises(ValueError, match=r"parameterization 'mu_q' is unknown.*completep"):
        transfer_hparams({"lr": 1e-3}, Shape(64), Shape(128), "mu_q")
    assert Parameterization.parse("µP") is Parameterization.MUP


@pytest.mark.parametrize("width", [0, -32, 1.5])
def test_non_positive_width_is_rejected_with_the_fix(width):
    with pytest.raises(ValueError, match=r"width must be a positive integer.*Shape\(width=256"):
        Shape(width=width)
    with pytest.raises(ValueError, match=r"target.*width"):
        transfer_hparams({"lr": 1e-3}, {"width": 64}, {"width": width}, "mup")


def test_other_bad_inputs_say_what_to_do():
    with pytest.raises(ValueError, match=r"optimizer 'adam' is unknown.*adamw"):
        param_groups(mlp(64), "mup", Shape(64), Shape(64), lr=1e-3, optimizer="adam")
    with pytest.raises(ValueError, match="role 'hiden' is unknown"):
        infer_roles(mlp(64), overrides={"2.weight": "hiden"})
    with pytest.raises(ValueError, match=r"override pattern 'blocks.\*' matches no parameter"):
        infer_roles(mlp(64), overrides={"blocks.*": "hidden"})
    with pytest.raises(ValueError, match="lr must be a non-negative"):
        param_groups(mlp(64), "mup", Shape(64), Shape(64), lr=float("nan"))
    with pytest.raises(ValueError, match="best_config has no 'lr'"):
        transfer_hparams({"learning_rate": 1e-3}, Shape(64), Shape(128), "mup")
    with pytest.raises(ValueError, match="base must have the keys 'width'"):
        transfer_hparams({"lr": 1e-3}, {"n_embd": 64}, Shape(128), "mup")


# -------------------------------------------------------------------------------------- coordinate check

WIDTHS = (32, 64, 128, 256, 512)


def gpt_coords(parameterization: str, lr: float = 5e-3) -> list[CoordRecord]:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randint(VOCAB, (4, 16), generator=gen), torch.randint(VOCAB, (4, 16), generator=gen)
    return coord_check(
        lambda w: gpt(w, parameterization=parameterization),
        WIDTHS,
        steps=5,
        make_optimizer=lambda model, w: torch.optim.AdamW(model.param_groups(lr=lr)),
        loss_fn=lambda model, batch: model(*batch)[1],
        batch=(x, y),
        seeds=(0, 1, 2),
    )


@pytest.fixture(scope="module")
def mup_coords() -> list[CoordRecord]:
    return gpt_coords("mup")


@pytest.fixture(scope="module")
def sp_coords() -> list[CoordRecord]:
    return gpt_coords("sp")


def test_mup_activations_stay_flat_from_width_32_to_512(mup_coords):
    slopes = coord_slopes(mup_coords)  # last of 5 steps
    assert len(slopes) > 20  # every module of the GPT, not a few
    worst = max(slopes, key=slopes.get)
    assert slopes[worst] <= 0.1, f"{worst}: slope {slopes[worst]:.3f}"
    assert max(coord_slopes(mup_coords, step=0).values()) <= 0.1


def test_sp_activations_grow_with_width_and_with_training(sp_coords, mup_coords):
    sp_last, sp_init = coord_slopes(sp_coords), coord_slopes(sp_coords, step=0)
    assert max(sp_last.values()) > 0.5  # 5 times muP's bound
    # Both draw hidden matrices with std 1/sqrt(fan_in) (TP V Table 3), so at init only SP's head (no m_w^-1)
    # grows with width; after 5 steps at a fixed lr, SP's updates (entry size lr, summed over n inputs) make
    # every residual branch's output grow with width too, while muP's (lr / m_w) do not.
    assert max(sp_init.values()) == pytest.approx(sp_init["lm_head"]) and sp_init["lm_head"] > 0.4
    mup_last = coord_slopes(mup_coords)
    branches = [k for k in sp_last if k.endswith("c_proj")]
    assert len(branches) == 4
    for k in branches:
        assert abs(sp_init[k]) < 0.1 and sp_last[k] > 0.3 and abs(mup_last[k]) <= 0.1, k


def test_coord_slopes_recover_a_known_power_law():
    recs = [CoordRecord(w, s, 3, "fc", (1 + 0.01 * s) * w**0.5) for w in (32, 64, 128) for s in (0, 1)]
    recs += [CoordRecord(w, 0, 0, "fc", 0.0) for w in (32, 64)]
    assert coord_slopes(recs)["fc"] == pytest.approx(0.5)
    assert math.isnan(coord_slopes(recs, step=0)["fc"])
