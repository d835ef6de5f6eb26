"""muP and CompleteP: parameterize a model, tune it small, transfer the optimum large.

Notation
--------
- ``n``, ``L``: width (``d_model``) and depth (number of residual blocks) of a model; ``Shape(width=n,
  depth=L)``.
- ``n_0``, ``L_0``: the *base* shape, where the hyperparameters were tuned. Every parameterization coincides
  with SP there (init, learning rates, multipliers and attention scale), so a base-shape sweep is an ordinary
  sweep.
- ``m_w = n / n_0``, ``m_d = L / L_0``: width and depth multipliers (``Multipliers``).
- ``alpha``: depth exponent. Residual branches are ``x + m_d^-alpha * F(LN(x))``; depth-muP has ``alpha =
  1/2`` (Yang, Yu, Zhu, Hayou 2023, "Tensor Programs VI"; Bordelon et al. 2023), CompleteP ``alpha = 1`` (Dey
  et al. 2025, "Don't be lazy: CompleteP enables compute-efficient deep transformers"). muP scales width only:
  no depth rule at all (it is *not* the ``alpha = 0`` member of the formulas below, which would divide the lr
  by ``m_d``).
- ``sigma``, ``eta``, ``lambda``, ``eps``: base init std, learning rate, weight decay and Adam epsilon, the
  values tuned at the base shape.
- ``A x B``: a 2-D weight of ``fan_out x fan_in`` (``torch.nn.Linear.weight`` is stored ``(out, in)``).
- role: what a parameter is in the muP tables, one of ``ROLES``:

  - ``embedding``: input weights: ``nn.Embedding``, or the first ``nn.Linear`` of a model without one;
  - ``hidden``: weight matrices (``ndim >= 2``) other than the input and output layers;
  - ``hidden_vector``: biases and norm gains inside residual blocks (they carry the depth rule);
  - ``vector``: biases and norm gains outside residual blocks (final norm, head bias);
  - ``unembedding``: the output head (readout) weight.

AdamW rules (factors multiplying the base value)
------------------------------------------------
With ``a = alpha`` and ``d = m_d`` for depth-muP/CompleteP, ``a = 0, d = 1`` for muP; SP multiplies nothing.

=============  ========  ==============  ============  ===========  =====================
role           init std  lr              weight decay  eps          forward multiplier
=============  ========  ==============  ============  ===========  =====================
embedding      1         1               1             m_w^-1       1
hidden         m_w^-1/2  m_w^-1 d^(a-1)  m_w           m_w^-1 d^-a  residual branch d^-a
hidden_vector  (0 / 1)   d^(a-1)         0             m_w^-1 d^-a
vector         (0 / 1)   1               0             m_w^-1
unembedding    1         1               1             m_w^-1       m_w^-1 (on its input)
=============  ========  ==============  ============  ===========  =====================

plus attention logits ``q.k sqrt(d_0) / d_head`` instead of ``q.k / sqrt(d_head)`` (Tensor Programs V, its
Transformer section; ``d_0`` the base's head dim). ``sigma`` for hidden matrices is the base's fan-in std
``1/sqrt(fan_in_0)`` by default, so their init is ``N(0, 1/fan_in)`` at every width (``reinit_``).
``scaling`` states the source next to each rule; SGD and Muon have their own tables there.

Weight decay: PyTorch's AdamW, SGD and Muon all decay ``p <- p - lr * lambda * p``, so the decay per step is
the product ``lr * lambda``. Every rule here divides ``lambda`` by the width factor of ``lr``, keeping that
product width-invariant (microsoft/mup ``MuAdam``/``MuSGD``; CompleteP Table 1 hidden ``lambda * m_w``). Depth
does not touch ``lambda`` (CompleteP Table 1).

No state lives on tensors: FSDP, ``torch.compile`` and ``torch.save`` drop tensor attributes. Roles are a
plain ``dict`` keyed by parameter name, inferred from module types and structure and overridable by name
pattern.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
from torch import nn

__all__ = [
    "MUON_ADJUST_LR",
    "OPTIMIZERS",
    "ROLES",
    "CoordRecord",
    "Multipliers",
    "Parameterization",
    "Scaling",
    "Shape",
    "Transfer",
    "attention_scale",
    "canonical_name",
    "coord_check",
    "coord_slopes",
    "infer_roles",
    "multipliers",
    "muon_update_scale",
    "output_multiplier",
    "param_groups",
    "reinit_",
    "residual_multiplier",
    "scaling",
    "split_groups",
    "transfer_hparams",
]

ROLES: tuple[str, ...] = ("embedding", "hidden", "hidden_vector", "vector", "unembedding")
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd", "muon")
MUON_ADJUST_LR: tuple[str, ...] = ("original", "match_rms_adamw")

_IN_BLOCK_ROLES = frozenset({"hidden", "hidden_vector"})
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()  # torch >= 2.4
)
# Segments that wrappers insert into parameter names; the roles dict is keyed by the unwrapped name.
_WRAPPER_SEGMENTS = re.compile(r"(^|\.)(_orig_mod|_fsdp_wrapped_module|_checkpoint_wrapped_module)(?=\.|$)")


# --------------------------------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Shape:
    """A model's width (``d_model``) and depth (number of residual blocks).

    Example:
        >>> Shape(width=256, depth=4)
        Shape(width=256, depth=4)
    """

    width: int
    depth: int = 1

    def __post_init__(self) -> None:
        for name in ("width", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Shape.{name} must be a positive integer, got {value!r}; "
                    "pass e.g. Shape(width=256, depth=4)"
                )

    @classmethod
    def parse(cls, value: Shape | Mapping[str, int], what: str = "shape") -> Shape:
        """A ``Shape`` from a ``Shape`` or a mapping ``{'width': n, 'depth': L}`` (depth defaults to 1)."""
        if isinstance(value, Shape):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"width", "depth"}
            if unknown or "width" not in value:
                raise ValueError(
                    f"{what} must have the keys 'width' and optionally 'depth', got {sorted(value)}; "
                    f"pass e.g. {what}={{'width': 256, 'depth': 4}}"
                )
            try:
                return cls(width=value["width"], depth=value.get("depth", 1))
            except ValueError as err:
                raise ValueError(f"{what}: {err}") from None
        raise ValueError(
            f"{what} must be a Shape or a dict with 'width' and 'depth', got {type(value).__name__}"
        )


class Parameterization(str, Enum):
    """How init, learning rates and forward multipliers change with width and depth.

    - ``sp``: standard parameterization; the base values at every shape (GPT-2/nanoGPT practice).
    - ``mup``: maximal update parameterization in width (Yang et al. 2021, Tensor Programs V); no depth rule.
    - ``depth_mup``: muP plus residual branches scaled by ``m_d^-1/2`` (Tensor Programs VI), ``alpha = 1/2``.
    - ``completep``: muP plus residual branches scaled by ``m_d^-1`` (Dey et al. 2025), ``alpha = 1``.

    Example:
        >>> Parameterization.parse("CompleteP").alpha
        1.0
    """

    SP = "sp"
    MUP = "mup"
    DEPTH_MUP = "depth_mup"
    COMPLETEP = "completep"

    @property
    def alpha(self) -> float | None:
        """Depth exponent ``alpha``, or ``None`` where the parameterization has no depth rule."""
        return {"depth_mup": 0.5, "completep": 1.0}.get(self.value)

    @property
    def scales_width(self) -> bool:
        return self is not Parameterization.SP

    @classmethod
    def parse(cls, value: str | Parameterization) -> Parameterization:
        if isinstance(value, Parameterization):
            return value
        key = str(value).strip().lower().replace("-", "_").replace("µ", "mu").replace("μ", "mu")
        key = {"standard": "sp", "mu_p": "mup", "depthmup": "depth_mup", "complete_p": "completep"}.get(
            key, key
        )
        try:
            return cls(key)
        except ValueError:
            raise ValueError(
                f"parameterization {value!r} is unknown; use one of {[p.value for p in cls]}"
            ) from None


@dataclass(frozen=True)
class Multipliers:
    """Width and depth multipliers ``m_w = n / n_0``, ``m_d = L / L_0`` of a target shape against a base."""

    width: float
    depth: float

    def __post_init__(self) -> None:
        for name in ("width", "depth"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Multipliers.{name} must be a positive finite number, got {value!r}")


def multipliers(base: Shape | Mapping[str, int], target: Shape | Mapping[str, int]) -> Multipliers:
    """``m_w = n / n_0`` and ``m_d = L / L_0``.

    Example:
        >>> multipliers(Shape(256, 4), Shape(1024, 8))
        Multipliers(width=4.0, depth=2.0)
    """
    b, t = Shape.parse(base, "base"), Shape.parse(target, "target")
    return Multipliers(width=t.width / b.width, depth=t.depth / b.depth)


def _as_multipliers(
    base: Shape | Mapping[str, int] | None, target: Shape | Mapping[str, int] | None, mult: Multipliers | None
) -> Multipliers:
    if mult is not None:
        return mult
    if base is None or target is None:
        raise ValueError("pass both base and target shapes (or mult=Multipliers(width, depth))")
    return multipliers(base, target)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is unknown; use one of {list(ROLES)}")
    return role


def _check_optimizer(optimizer: str) -> str:
    key = str(optimizer).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} is unknown; use one of {list(OPTIMIZERS)}")
    return key


def _check_adjust(adjust_lr_fn: str) -> str:
    if adjust_lr_fn not in MUON_ADJUST_LR:
        raise ValueError(f"muon_adjust_lr {adjust_lr_fn!r} is unknown; use one of {list(MUON_ADJUST_LR)}")
    return adjust_lr_fn


# ---------------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Scaling:
    """Factors that multiply a role's base hyperparameters at the target shape.

    ``eps`` is ``None`` where the optimizer has no Adam epsilon (SGD, Muon); ``weight_decay`` is 0 for
    vectors, which are never decayed. ``optimizer`` is the optimizer that updates the role (Muon hands
    everything but hidden matrices to AdamW); ``source`` cites the rule.
    """

    init_std: float
    lr: float
    weight_decay: float
    eps: float | None
    forward: float
    optimizer: str
    source: str


def scaling(
    role: str,
    parameterization: str | Parameterization,
    mult: Multipliers,
    optimizer: str = "adamw",
    muon_adjust_lr: str = "match_rms_adamw",
) -> Scaling:
    """The scaling rule of one role: the single table every other function reads.

    Depth enters only through residual branches, so only ``hidden`` and ``hidden_vector`` (the parameters
    inside blocks) have depth factors. ``d = m_d`` and ``a = alpha`` for depth-muP/CompleteP; muP and SP have
    none.

    AdamW (CompleteP Table 1, Dey et al. 2025; width part = Tensor Programs V Table 3, Adam column):

    - hidden: init ``sigma m_w^-1/2``; lr ``eta m_w^-1 d^(a-1)``; wd ``lambda m_w``; eps ``eps m_w^-1 d^-a``.
    - embedding: init ``sigma``; lr ``eta``; wd ``lambda``.
    - unembedding: forward multiplier ``m_w^-1`` on the head's input (the "output multiplier" form of TP V's
      equivalent formulations, as in microsoft/mup ``MuReadout`` and nanoGPT-mup, so the head's own weights
      keep init ``sigma`` and lr ``eta``).
    - vectors: lr ``eta d^(a-1)`` inside blocks, ``eta`` outside (nanoGPT-mup ``completep`` branch keeps the
      final norm at ``eta``); no weight decay.

    Where implementations disagree we chose, deliberately:

    - Hidden weight decay ``lambda m_w`` (CompleteP Table 1, microsoft/mup ``MuAdamW``), not the constant
      ``lambda`` of the muP-only nanoGPT-mup branch: PyTorch AdamW decays by ``lr * lambda`` per step and the
      hidden lr falls as ``m_w^-1``, so a constant ``lambda`` would weaken decay ``m_w``-fold at the target
      width.
    - Epsilon scaled, for muP too (the muP-only nanoGPT-mup branch leaves it): Table 1's hidden rule ``eps
      m_w^-1 d^-a`` is the scale of the hidden gradients. With the output multiplier ``m_w^-1`` *every*
      gradient shrinks as ``m_w^-1`` (backprop starts from ``m_w^-1 W_out^T dL/dlogits``), and those inside
      blocks also as ``d^-a`` (the branch multiplier), so we scale every group's epsilon by its gradient
      scale. A fixed epsilon would grow relative to ``sqrt(v)`` with width and quietly turn Adam into SGD
      (Everett et al. 2024, "Scaling exponents across parameterizations and optimizers", section on epsilon).
      The CompleteP reference code applies one global ``eps m_w^-1 d^-a``, equal to ours inside blocks and
      smaller outside.

    SGD (Tensor Programs V Table 3, SGD column, in the output-multiplier form; microsoft/mup ``MuSGD``):
    vector-like parameters (one dimension grows with width: input weights, biases, gains, and the head under
    its ``m_w^-1`` multiplier) take lr ``eta m_w``, hidden matrices ``eta``. Depth: inside blocks lr
    ``d^(2a-1)``, from the desideratum behind Table 1 (each block moves the residual stream by
    ``Theta(1/L)``): a block's gradient carries ``d^-a`` and its output another ``d^-a``, so an SGD step moves
    it by ``eta d^-2a``; for ``a = 1/2`` this is TP VI's Depth-muP SGD rule (lr independent of depth).

    Muon (``torch.optim.Muon``, hidden 2-D matrices only; every other role takes the AdamW rules): the
    orthogonalized update ``O`` has spectral norm 1, and feature learning needs ``||dW||_* =
    Theta(sqrt(A/B))`` (Yang, Simon, Bernstein 2023, "A spectral condition for feature learning", Condition
    1). See ``muon_update_scale``: with ``adjust_lr_fn='original'`` torch scales ``O`` by ``sqrt(max(1,
    A/B))``, which already meets the condition, so the lr is width-invariant; with ``'match_rms_adamw'``
    (Moonshot, Liu et al. 2025) it scales by ``0.2 sqrt(max(A, B))``, growing as ``sqrt(n)``, so the lr must
    fall as ``m_w^-1/2``. (Not AdamW's ``m_w^-1``: that option matches AdamW's update *RMS* at one shape, but
    a sign-like AdamW update of a low-rank gradient has spectral norm ``~ lr n``, an orthogonalized one ``lr
    scale``.) Depth: ``d^(a-1)``, as for AdamW (normalized updates).

    Args:
        role: one of ``ROLES``.
        parameterization: ``'sp' | 'mup' | 'depth_mup' | 'completep'``.
        mult: the target's ``Multipliers`` against the base.
        optimizer: ``'adamw' | 'sgd' | 'muon'``.
        muon_adjust_lr: torch Muon's ``adjust_lr_fn``, ``'original' | 'match_rms_adamw'``.

    Example:
        >>> s = scaling("hidden", "completep", Multipliers(width=4, depth=2))
        >>> s.lr, s.weight_decay, s.eps
        (0.25, 4.0, 0.125)
    """
    role = _check_role(role)
    p = Parameterization.parse(parameterization)
    opt = _check_optimizer(optimizer)
    adjust = _check_adjust(muon_adjust_lr)
    if opt == "muon" and role != "hidden":
        opt = "adamw"
    no_decay = role in ("vector", "hidden_vector")
    if not p.scales_width:
        return Scaling(
            init_std=1.0,
            lr=1.0,
            weight_decay=0.0 if no_decay else 1.0,
            eps=1.0 if opt == "adamw" else None,
            forward=1.0,
            optimizer=opt,
            source="SP: base values at every shape (GPT-2 / nanoGPT practice)",
        )

    w = float(mult.width)
    a = p.alpha if p.alpha is not None else 0.0
    d = float(mult.depth) if (p.alpha is not None and role in _IN_BLOCK_ROLES) else 1.0

    if opt == "sgd":
        depth_lr = d ** (2 * a - 1)
        if role == "hidden":
            width_lr, source = 1.0, "TP V Table 3 SGD hidden: lr eta; init var 1/fan_in"
        else:
            width_lr, source = (
                w,
                "TP V Table 3 SGD vector-like (input, biases, output w/ multiplier): lr eta*fan_out",
            )
        if d != 1.0:
            source += "; depth lr m_d^(2alpha-1) (TP VI Depth-muP for alpha=1/2)"
        eps = None
    elif opt == "muon":
        depth_lr = d ** (a - 1)
        # ||lr * scale * O||_2 = lr * scale must stay Theta(sqrt(A/B)), and A/B is width-invariant for hidden
        # matrices: only the scale's growth with n has to be undone.
        width_lr = 1.0 if adjust == "original" else w**-0.5
        source = (
            f"spectral condition (Yang, Simon, Bernstein 2023) with torch Muon adjust_lr_fn={adjust!r}: "
            + (
                "update sqrt(max(1,A/B)) already Theta(sqrt(A/B)), lr width-invariant"
                if adjust == "original"
                else "update 0.2*sqrt(max(A,B)) grows as sqrt(n), lr eta/sqrt(m_w)"
            )
        )
        if d != 1.0:
            source += "; depth lr m_d^(alpha-1) (CompleteP Table 1)"
        eps = None
    else:
        depth_lr = d ** (a - 1)
        width_lr = 1.0 / w if role == "hidden" else 1.0
        # Gradient scale of the group: m_w^-1 everywhere under the output multiplier, and d^-a inside blocks.
        eps = 1.0 / w * d ** (-a)
        source = {
            "hidden": "init sigma/sqrt(m_w), lr eta/m_w (TP V Table 3 Adam; CompleteP Table 1); "
            "wd lambda*m_w (CompleteP Table 1, microsoft/mup MuAdamW)",
            "embedding": "init sigma, lr eta, wd lambda (TP V Table 3 input weights; CompleteP Table 1)",
            "unembedding": "forward 1/m_w on its input, init sigma, lr eta, wd lambda "
            "(TP V output-multiplier form; CompleteP Table 1)",
            "hidden_vector": "lr eta, no wd (TP V Table 3 biases; CompleteP Table 1 LN/bias)",
            "vector": "lr eta, no wd (TP V Table 3 biases; CompleteP Table 1 LN/bias)",
        }[role]
        depth_rule = p.alpha is not None and role in _IN_BLOCK_ROLES
        if depth_rule:
            source += f"; depth: lr *m_d^(alpha-1) (CompleteP Table 1, alpha={p.alpha:g})"
        source += "; eps/m_w*m_d^-alpha" if depth_rule else "; eps/m_w"
        source += " (CompleteP Table 1)" if role == "hidden" else " (the group's gradient scale)"

    lr = width_lr * depth_lr
    return Scaling(
        init_std=w**-0.5 if role == "hidden" else 1.0,
        lr=lr,
        weight_decay=0.0 if no_decay else 1.0 / width_lr,
        eps=eps,
        forward=1.0 / w if role == "unembedding" else 1.0,
        optimizer=opt,
        source=source,
    )


def residual_multiplier(parameterization: str | Parameterization, mult: Multipliers) -> float:
    """Residual branch multiplier ``m_d^-alpha`` in ``x + m_d^-alpha F(LN(x))`` (Dey et al. 2025).

    1 for SP and muP, which have no depth rule.

    Example:
        >>> residual_multiplier("completep", Multipliers(width=1, depth=4))
        0.25
    """
    p = Parameterization.parse(parameterization)
    return 1.0 if p.alpha is None else float(mult.depth) ** (-p.alpha)


def output_multiplier(parameterization: str | Parameterization, mult: Multipliers) -> float:
    """Multiplier ``m_w^-1`` on the head's input (TP V output-multiplier form; as in nanoGPT-mup).

    Applying it to the head's *input* rather than to the logits keeps the head's own output, which is what the
    coordinate check records, equal to the logits.

    Example:
        >>> output_multiplier("mup", Multipliers(width=4, depth=1))
        0.25
    """
    p = Parameterization.parse(parameterization)
    return 1.0 / float(mult.width) if p.scales_width else 1.0


def attention_scale(
    head_dim: int, parameterization: str | Parameterization, base_head_dim: int | None = None
) -> float:
    """Attention logit scale: ``sqrt(d_0) / d_head`` under muP and its depth variants, ``1/sqrt(d_head)`` under SP.

    TP V (Transformer section, and microsoft/mup's ``MuSharedReadout`` examples that use ``8 / d_head`` for a
    base head dim of 64): after training ``q`` and ``k`` become correlated, so ``q.k`` grows as ``d_head``
    rather than ``sqrt(d_head)`` and muP divides by ``d_head``. The constant ``sqrt(d_0)`` (``d_0 =
    base_head_dim``, the head dim of the base shape) is TP V's tunable attention multiplier set so that muP
    *is* SP at the base shape: otherwise a muP sweep at the base shape would tune a different model than an SP
    sweep, with logits ``sqrt(d_head)`` times smaller (4 times at ``d_head = 16``), which trains measurably
    worse in ``benchmarks/mup_lr_transfer.py``. With a fixed head dimension (heads grow with width, the usual
    GPT setup, ``base_head_dim=None``) the two scales coincide at every width.

    Example:
        >>> attention_scale(16, "mup"), attention_scale(64, "mup", base_head_dim=16), attention_scale(64, "sp")
        (0.25, 0.0625, 0.125)
    """
    for name, value in (("head_dim", head_dim), ("base_head_dim", base_head_dim)):
        if value is None and name == "base_head_dim":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    p = Parameterization.parse(parameterization)
    if not p.scales_width:
        return 1.0 / math.sqrt(head_dim)
    d0 = head_dim if base_head_dim is None else base_head_dim
    return math.sqrt(d0) / head_dim


def muon_update_scale(fan_out: int, fan_in: int, adjust_lr_fn: str = "original") -> float:
    """The factor ``torch.optim.Muon`` puts on the orthogonalized update ``O`` of an ``A x B`` matrix.

    - ``'original'`` (K. Jordan's Muon): ``sqrt(max(1, A/B))``.
    - ``'match_rms_adamw'`` (Liu et al. 2025, "Muon is scalable for LLM training"): ``0.2 sqrt(max(A, B))``,
      which gives the update the entry RMS 0.2 of a typical AdamW update, since ``RMS(O) =
      1/sqrt(max(A, B))``.

    ``O`` has spectral norm 1, so the update ``lr * scale * O`` has spectral norm ``lr * scale``; the spectral
    condition for feature learning (Yang, Simon, Bernstein 2023) asks for ``Theta(sqrt(A/B))``. ``scaling``
    picks the lr that meets it for each option.

    Example:
        >>> muon_update_scale(1024, 256), muon_update_scale(256, 256, "match_rms_adamw")
        (2.0, 3.2)
    """
    adjust = _check_adjust(adjust_lr_fn)
    if fan_out <= 0 or fan_in <= 0:
        raise ValueError(f"fan_out and fan_in must be positive, got {fan_out}, {fan_in}")
    if adjust == "original":
        return math.sqrt(max(1.0, fan_out / fan_in))
    return 0.2 * math.sqrt(max(fan_out, fan_in))


# ----------------------------------------------------------------------------------------------- roles


def canonical_name(name: str) -> str:
    """A parameter or module name without wrapper segments.

    Removes ``_orig_mod`` (``torch.compile``), ``_fsdp_wrapped_module`` (FSDP) and
    ``_checkpoint_wrapped_module`` (activation checkpointing), wherever they occur.

    Example:
        >>> canonical_name("_orig_mod.blocks.0._orig_mod.attn.weight")
        'blocks.0.attn.weight'
    """
    return _WRAPPER_SEGMENTS.sub("", name).lstrip(".")


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel and DataParallel prefix every name with "module."; look through them.
    while isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
        model = model.module
    return model


def _named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(canonical_name(n), p) for n, p in _unwrap(model).named_parameters()]


def infer_roles(
    model: nn.Module,
    *,
    vocab_size: int | None = None,
    head: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each parameter's role, keyed by its (unwrapped) name, from module types and structure.

    Rules, first match wins:

    1. ``overrides``: ``{glob pattern on the name: role}``, first matching pattern in order (``fnmatch``,
       e.g. ``'*.lm_head.weight'``).
    2. The head: the ``nn.Linear`` named ``head``, else the last ``nn.Linear`` (registration order) outside
       the block stack whose ``out_features == vocab_size``, else, without ``vocab_size``, the last
       ``nn.Linear`` outside it. Its weight is ``unembedding`` (its bias a ``vector``).
    3. ``nn.Embedding`` weights are ``embedding``; in a model without one, the first ``nn.Linear`` (the input
       layer of an MLP) is.
    4. Other parameters with ``ndim >= 2`` are ``hidden``; the rest (biases, norm gains) are ``hidden_vector``
       inside the block stack and ``vector`` outside it.

    The block stack is whatever sits under an ``nn.ModuleList``: the repeated residual blocks whose number is
    the depth. Tied parameters appear once, under the name ``named_parameters()`` gives first.

    Args:
        model: the model; ``torch.compile`` and (D)DP wrappers are looked through.
        vocab_size: identifies the head by its output size.
        head: the head module's name, e.g. ``'lm_head'``, when the rules above would miss it.
        overrides: name pattern to role; each pattern must match some parameter.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
        >>> infer_roles(net)["0.weight"], infer_roles(net)["2.weight"], infer_roles(net)["4.weight"]
        ('embedding', 'hidden', 'unembedding')
    """
    params = _named_parameters(model)
    modules = {canonical_name(n): m for n, m in _unwrap(model).named_modules()}
    block_prefixes = tuple(f"{n}." for n, m in modules.items() if isinstance(m, nn.ModuleList) and n)

    def in_block(name: str) -> bool:
        return any(name.startswith(prefix) for prefix in block_prefixes)

    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    if head is not None:
        head = canonical_name(head)
        if not isinstance(modules.get(head), nn.Linear):
            raise ValueError(
                f"head={head!r} is not an nn.Linear of the model; Linear modules are {linears[-5:]} (last 5)"
            )
    else:
        outside = [n for n in linears if not in_block(f"{n}.")]
        if vocab_size is not None:
            outside = [n for n in outside if modules[n].out_features == vocab_size]
            if not outside:
                raise ValueError(
                    f"no nn.Linear outside the blocks has out_features == vocab_size={vocab_size}; "
                    "name the head with head='...' or set its role with overrides"
                )
        head = outside[-1] if outside else None
    has_embedding = any(isinstance(m, nn.Embedding) for m in modules.values())
    input_layer = None if has_embedding else next((n for n in linears if n != head), None)

    roles: dict[str, str] = {}
    for name, p in params:
        module_name, _, _ = name.rpartition(".")
        module = modules.get(module_name)
        if head is not None and module_name == head:
            roles[name] = "unembedding" if p.ndim >= 2 else "vector"
        elif isinstance(module, nn.Embedding) or (module_name == input_layer and p.ndim >= 2):
            roles[name] = "embedding"
        elif p.ndim >= 2:
            roles[name] = "hidden"
        else:
            roles[name] = "hidden_vector" if in_block(name) else "vector"

    for pattern, role in (overrides or {}).items():
        _check_role(role)
        matched = [n for n in roles if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise ValueError(
                f"override pattern {pattern!r} matches no parameter; names look like {list(roles)[:4]}"
            )
    if overrides:
        for name in roles:
            for pattern, role in overrides.items():
                if fnmatch.fnmatchcase(name, pattern):
                    roles[name] = role
                    break
    return roles


def _resolve_roles(
    model: nn.Module, roles: Mapping[str, str] | None, overrides: Mapping[str, str] | None
) -> dict[str, str]:
    if roles is None:
        return infer_roles(model, overrides=overrides)
    roles = dict(roles)
    for role in roles.values():
        _check_role(role)
    missing = [n for n, _ in _named_parameters(model) if n not in roles]
    if missing:
        raise ValueError(f"roles has no entry for {missing[:4]}; build it with infer_roles(model, ...)")
    return roles


# ------------------------------------------------------------------------------------ groups and init


def param_groups(
    model: nn.Module,
    parameterization: str | Parameterization,
    base: Shape | Mapping[str, int] | None = None,
    target: Shape | Mapping[str, int] | None = None,
    *,
    lr: float,
    weight_decay: float = 0.0,
    eps: float = 1e-8,
    optimizer: str = "adamw",
    mult: Multipliers | None = None,
    roles: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    muon_lr: float | None = None,
    muon_adjust_lr: str = "match_rms_adamw",
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with each role's lr, weight decay and epsilon at the target shape.

    ``lr``, ``weight_decay`` and ``eps`` are the base values (tuned at ``base``); each group gets them times
    its ``scaling`` factors. Parameters with ``requires_grad=False`` are left out. Each group also carries
    ``role``, ``optimizer`` (which torch optimizer it is for) and ``param_names`` (torch's own key, saved in
    state dicts).

    With ``optimizer='muon'``, hidden 2-D matrices get Muon groups (lr ``muon_lr``, default ``lr``, and
    ``adjust_lr_fn=muon_adjust_lr``) and the rest AdamW groups; ``split_groups`` separates them.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        ...                     nn.Linear(256, 3))
        >>> groups = param_groups(net, "mup", Shape(64), Shape(256), lr=1e-2, weight_decay=0.1)
        >>> opt = torch.optim.AdamW(groups)
        >>> [(g["role"], g["lr"]) for g in opt.param_groups][:2]
        [('embedding', 0.01), ('hidden', 0.0025)]
    """
    m = _as_multipliers(base, target, mult)
    p = Parameterization.parse(parameterization)
    opt = _check_optimizer(optimizer)
    _check_adjust(muon_adjust_lr)
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("eps", eps)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    roles = _resolve_roles(model, roles, overrides)
    base_muon_lr = lr if muon_lr is None else muon_lr

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for name, param in _named_parameters(model):
        if not param.requires_grad:
            continue
        role = roles[name]
        # torch.optim.Muon orthogonalizes 2-D updates only; other hidden tensors (convolutions) stay with
        # AdamW.
        group_opt = opt if not (opt == "muon" and (role != "hidden" or param.ndim != 2)) else "adamw"
        key = (role, group_opt)
        if key not in groups:
            s = scaling(role, p, m, group_opt, muon_adjust_lr)
            group: dict[str, Any] = {
                "params": [],
                "param_names": [],
                "role": role,
                "optimizer": group_opt,
                "lr": (base_muon_lr if group_opt == "muon" else lr) * s.lr,
                "weight_decay": weight_decay * s.weight_decay,
            }
            if s.eps is not None:
                group["eps"] = eps * s.eps
            if group_opt == "muon":
                group["adjust_lr_fn"] = muon_adjust_lr
            groups[key] = group
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    order = {r: i for i, r in enumerate(ROLES)}
    return sorted(groups.values(), key=lambda g: (order[g["role"]], g["optimizer"]))


def split_groups(groups: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Groups from ``param_groups`` by the optimizer they are for, e.g. ``{'muon': [...], 'adamw': [...]}``.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
        >>> parts = split_groups(param_groups(net, "mup", Shape(64), Shape(64), lr=1e-3, optimizer="muon"))
        >>> muon, adamw = torch.optim.Muon(parts["muon"]), torch.optim.AdamW(parts["adamw"])
        >>> sorted(parts)
        ['adamw', 'muon']
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        out.setdefault(g["optimizer"], []).append(dict(g))
    return out


def _is_norm(module: nn.Module | None) -> bool:
    return isinstance(module, _NORMS) or (module is not None and "norm" in type(module).__name__.lower())


@torch.no_grad()
def reinit_(
    model: nn.Module,
    parameterization: str | Parameterization,
    base: Shape | Mapping[str, int] | None = None,
    target: Shape | Mapping[str, int] | None = None,
    *,
    init_std: float = 0.02,
    hidden_init: str = "fan_in",
    hidden_gain: float = 1.0,
    mult: Multipliers | None = None,
    roles: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    zero_unembedding: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Re-initialize ``model`` in place for the target shape; returns it.

    - ``embedding`` and ``unembedding`` weights: ``N(0, init_std^2)`` at every width (TP V Table 3 input
      weights; the head's ``m_w^-1`` lives in the forward multiplier). ``zero_unembedding=True`` zeroes the
      head instead (TP V allows it; on the character-LM GPT it trains worse, ``benchmarks/mup_ablation.py``).
    - ``hidden`` weights, ``hidden_init='fan_in'`` (default): ``N(0, hidden_gain^2 / fan_in)``, fan-in taken
      at the target shape. Under muP this *is* the rule ``sigma m_w^-1/2`` with ``sigma = hidden_gain /
      sqrt(fan_in_0)``, the base's own fan-in std (microsoft/mup: the base model keeps PyTorch's fan-in init
      and ``set_base_shapes`` rescales it); under SP it is TP V Table 3's SP init (variance ``1/fan_in``), so
      the two coincide at every width, as in that table, and differ only in learning rates and multipliers.
      ``hidden_init='scaled'``: ``N(0, (init_std m_w^-1/2)^2)`` under muP and ``init_std`` under SP (GPT-2's
      0.02 at every width, the nanoGPT-mup form). Why the default: with ``init_std = 0.02`` at base width 32
      (9 times below the fan-in std) wider muP models gained little and lost to SP at its own best lr; with
      the fan-in std the muP optimum stayed at 2^-7..2^-6 from width 32 to 512 and the width-512 loss fell
      from 1.75 to 1.58-1.60 (SP's best 1.54-1.55), at the price of a worse base-width model (2.04-2.10 vs
      1.94); see ``benchmarks/results/mup_ablation.md``.
    - biases are zeroed and norm gains set to one; other vectors are left as they are.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
        ...                     nn.Linear(1024, 3))
        >>> _ = reinit_(net, "mup", Shape(64), Shape(1024))
        >>> round(net[2].weight.std().item(), 3)  # 1 / sqrt(1024) = (1 / sqrt(64)) / sqrt(16)
        0.031
        >>> _ = reinit_(net, "mup", Shape(64), Shape(1024), init_std=0.02, hidden_init="scaled")
        >>> round(net[2].weight.std().item(), 3)  # 0.02 / sqrt(16)
        0.005
    """
    m = _as_multipliers(base, target, mult)
    p = Parameterization.parse(parameterization)
    for name, value in (("init_std", init_std), ("hidden_gain", hidden_gain)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if hidden_init not in ("fan_in", "scaled"):
        raise ValueError(f"hidden_init must be 'fan_in' or 'scaled', got {hidden_init!r}")
    roles = _resolve_roles(model, roles, overrides)
    modules = {canonical_name(n): mod for n, mod in _unwrap(model).named_modules()}
    for name, param in _named_parameters(model):
        role = roles[name]
        module_name, _, attr = name.rpartition(".")
        if role in ("vector", "hidden_vector"):
            if attr == "bias":
                param.zero_()
            elif _is_norm(modules.get(module_name)) and attr == "weight":
                param.fill_(1.0)
            continue
        if role == "unembedding" and zero_unembedding:
            param.zero_()
            continue
        if role == "hidden" and hidden_init == "fan_in":
            # Linear (out, in) and Conv (out, in, *kernel): everything after dim 0 feeds one output.
            std = hidden_gain / math.sqrt(param[0].numel())
        else:
            std = init_std * scaling(role, p, m).init_std
        param.normal_(0.0, std, generator=generator)
    return model


# ------------------------------------------------------------------------------------------------ transfer


@dataclass(frozen=True)
class Transfer:
    """Hyperparameters of a sweep's winner carried from the base shape to the target shape.

    ``groups[role]`` holds that role's effective ``lr``, ``weight_decay``, ``eps`` (Adam groups) and
    ``init_std`` (if the config had one) at the target; ``forward`` the forward multipliers the model must
    apply; ``unchanged`` the config entries that muP transfers as they are (betas, schedule, warm-up fraction,
    ...).
    """

    parameterization: Parameterization
    optimizer: str
    base: Shape
    target: Shape
    mult: Multipliers
    groups: dict[str, dict[str, float]]
    forward: dict[str, float]
    unchanged: dict[str, Any]
    sources: dict[str, str] = field(repr=False)

    def describe(self) -> str:
        """A readable account of what changed and why."""
        p, m = self.parameterization, self.mult
        alpha = "none" if p.alpha is None else f"{p.alpha:g}"
        lines = [
            f"{p.value} transfer ({self.optimizer}) from width {self.base.width}, depth {self.base.depth} "
            f"to width {self.target.width}, depth {self.target.depth}: m_w = {m.width:g}, m_d = {m.depth:g}, "
            f"alpha = {alpha}",
        ]
        keys = [
            k for k in ("init_std", "lr", "weight_decay", "eps") if any(k in g for g in self.groups.values())
        ]
        lines.append(f"  {'role':<14}{'optimizer':<10}" + "".join(f"{k:>14}" for k in keys))
        for role, g in self.groups.items():
            cells = "".join(f"{g[k]:>14.4g}" if k in g else f"{'-':>14}" for k in keys)
            lines.append(f"  {role:<14}{g['optimizer']:<10}{cells}")
        f = self.forward
        lines.append(
            f"  forward: residual x + {f['residual_multiplier']:.4g} * F(LN(x)); head input * "
            f"{f['output_multiplier']:.4g}; attention logits q.k "
            + ("* sqrt(d_0) / d_head (= 1/sqrt(d_head) at a fixed head dim)" if p.scales_width else "/ sqrt(d_head)")
        )
        if self.unchanged:
            lines.append("  unchanged: " + ", ".join(f"{k}={v!r}" for k, v in self.unchanged.items()))
        for role, source in self.sources.items():
            lines.append(f"  [{role}] {source}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


_SCALED_KEYS = ("lr", "weight_decay", "eps", "init_std", "muon_lr")


def transfer_hparams(
    best_config: Mapping[str, Any],
    base: Shape | Mapping[str, int],
    target: Shape | Mapping[str, int],
    parameterization: str | Parameterization = "completep",
    *,
    optimizer: str = "adamw",
    muon_adjust_lr: str = "match_rms_adamw",
) -> Transfer:
    """Carry a sweep's best hyperparameters from the base shape to the target shape.

    ``best_config`` keys ``lr``, ``weight_decay``, ``eps``, ``init_std`` (and ``muon_lr`` for Muon's hidden
    matrices) are scaled per role with ``scaling``; any other key (betas, warm-up, schedule) is reported as
    unchanged, which is what muP prescribes for them.

    Example:
        >>> t = transfer_hparams({"lr": 1e-2, "weight_decay": 0.1, "eps": 1e-8, "beta2": 0.95},
        ...                      base={"width": 256, "depth": 4}, target={"width": 1024, "depth": 8})
        >>> t.groups["hidden"]["lr"], t.groups["hidden"]["eps"], t.forward["residual_multiplier"]
        (0.0025, 1.25e-09, 0.5)
    """
    b, t = Shape.parse(base, "base"), Shape.parse(target, "target")
    p = Parameterization.parse(parameterization)
    opt = _check_optimizer(optimizer)
    _check_adjust(muon_adjust_lr)
    if not isinstance(best_config, Mapping):
        raise ValueError(f"best_config must be a dict, got {type(best_config).__name__}")
    for key in _SCALED_KEYS:
        value = best_config.get(key)
        if value is not None and not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            raise ValueError(f"best_config[{key!r}] must be a non-negative number, got {value!r}")
    if "lr" not in best_config and "muon_lr" not in best_config:
        raise ValueError(f"best_config has no 'lr'; its keys are {sorted(best_config)}")

    m = multipliers(b, t)
    groups: dict[str, dict[str, float]] = {}
    sources: dict[str, str] = {}
    for role in ROLES:
        s = scaling(role, p, m, opt, muon_adjust_lr)
        base_lr = (
            best_config.get("muon_lr", best_config.get("lr"))
            if s.optimizer == "muon"
            else best_config.get("lr")
        )
        g: dict[str, Any] = {"optimizer": s.optimizer}
        if "init_std" in best_config and role in ("embedding", "hidden", "unembedding"):
            g["init_std"] = best_config["init_std"] * s.init_std
        if base_lr is not None:
            g["lr"] = base_lr * s.lr
        g["weight_decay"] = best_config.get("weight_decay", 0.0) * s.weight_decay
        if s.eps is not None and "eps" in best_config:
            g["eps"] = best_config["eps"] * s.eps
        groups[role] = g
        sources[role] = s.source
    return Transfer(
        parameterization=p,
        optimizer=opt,
        base=b,
        target=t,
        mult=m,
        groups=groups,
        forward={
            "residual_multiplier": residual_multiplier(p, m),
            "output_multiplier": output_multiplier(p, m),
        },
        unchanged={k: v for k, v in best_config.items() if k not in _SCALED_KEYS},
        sources=sources,
    )


# ----------------------------------------------------------------------------------------- coordinate check


@dataclass(frozen=True)
class CoordRecord:
    """Mean absolute value of one module's output, at one width, seed and training step (``step`` = updates
    applied before the forward pass)."""

    width: int
    seed: int
    step: int
    module: str
    mean_abs: float


def coord_check(
    make_model: Callable[[int], nn.Module],
    widths: Sequence[int],
    steps: int = 5,
    *,
    make_optimizer: Callable[[nn.Module, int], torch.optim.Optimizer | Sequence[torch.optim.Optimizer]],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    batch: Any,
    seeds: Sequence[int] = (0,),
) -> list[CoordRecord]:
    """Record ``mean |output|`` of every module over the first ``steps`` training steps, across widths.

    The coordinate check of TP V (and microsoft/mup's ``get_coord_data``): under muP every activation's
    typical entry size stays ``Theta(1)`` as width grows, at initialization and after updates; under SP it
    blows up with width after a few steps. Forward hooks record each module whose output is a tensor (the
    model itself as ``"<root>"``); ``coord_slopes`` fits the trend.

    Args:
        make_model: ``width -> model``, already parameterized (called after ``torch.manual_seed(seed)``).
        widths: the widths to compare, e.g. ``[32, 64, 128, 256, 512]``.
        steps: training steps; the forward pass of each step is recorded before its update.
        make_optimizer: ``(model, width) -> optimizer`` (or a sequence of them, e.g. Muon + AdamW).
        loss_fn: ``(model, batch) -> scalar loss``.
        batch: the data, the same every step (isolates the effect of width); or ``step -> batch``.
        seeds: one run per seed and width; ``coord_slopes`` averages them.

    Returns:
        One ``CoordRecord`` per (width, seed, step, module).

    Example:
        >>> def make(w):
        ...     net = nn.Sequential(nn.Linear(4, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 1))
        ...     return reinit_(net, "mup", Shape(32), Shape(w), init_std=0.5)
        >>> def adamw(m, w):
        ...     return torch.optim.AdamW(param_groups(m, "mup", Shape(32), Shape(w), lr=1e-2))
        >>> rec = coord_check(make, [32, 64], steps=2, make_optimizer=adamw, batch=torch.randn(16, 4),
        ...                   loss_fn=lambda m, x: m(x).pow(2).mean())
        >>> len(rec)  # 2 widths x 2 steps x (5 modules + the model itself, "<root>")
        24
    """
    if steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not widths:
        raise ValueError("widths is empty; pass e.g. widths=[32, 64, 128, 256, 512]")
    records: list[CoordRecord] = []
    now = {"width": 0, "seed": 0, "step": 0}  # stamped on every record the hooks write

    def recorder(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                value = out.detach().abs().float().mean().item()
                records.append(CoordRecord(now["width"], now["seed"], now["step"], name, value))

        return hook

    for width in widths:
        for seed in seeds:
            now.update(width=width, seed=seed, step=0)
            torch.manual_seed(seed)
            model = make_model(width)
            opts = make_optimizer(model, width)
            opts = list(opts) if isinstance(opts, Sequence) else [opts]
            hooks = [
                module.register_forward_hook(recorder(canonical_name(name) or "<root>"))
                for name, module in _unwrap(model).named_modules()
            ]
            try:
                model.train()
                for step in range(steps):
                    now["step"] = step
                    data = batch(step) if callable(batch) else batch
                    for o in opts:
                        o.zero_grad(set_to_none=True)
                    loss = loss_fn(model, data)
                    loss.backward()
                    for o in opts:
                        o.step()
            finally:
                for h in hooks:
                    h.remove()
    return records


def coord_slopes(records: Iterable[CoordRecord], step: int | None = None) -> dict[str, float]:
    """Least-squares slope of ``log mean|activation|`` against ``log width`` for each module at one step.

    Seeds are averaged first. A slope near 0 means the module's activations are width-invariant (muP's
    promise); SP shows slopes near 1/2 (init std fixed) or 1 (updates growing with width). ``step=None`` takes
    the last step. A module with a zero mean at some width (a zero-initialized output at step 0) gets ``nan``.

    Example:
        >>> recs = [CoordRecord(w, 0, 0, "fc", float(w) ** 0.5) for w in (32, 64, 128)]
        >>> round(coord_slopes(recs)["fc"], 3)
        0.5
    """
    records = list(records)
    if not records:
        return {}
    if step is None:
        step = max(r.step for r in records)
    sums: dict[str, dict[int, list[float]]] = {}
    for r in records:
        if r.step == step:
            sums.setdefault(r.module, {}).setdefault(r.width, []).append(r.mean_abs)
    slopes: dict[str, float] = {}
    for module, by_width in sums.items():
        widths = sorted(by_width)
        means = [sum(by_width[w]) / len(by_width[w]) for w in widths]
        if len(widths) < 2 or min(means) <= 0 or not all(math.isfinite(v) for v in means):
            slopes[module] = float("nan")
            continue
        x = [math.log(w) for w in widths]
        y = [math.log(v) for v in means]
        x_bar, y_bar = sum(x) / len(x), sum(y) / len(y)
        slopes[module] = sum((a - x_bar) * (b - y_bar) for a, b in zip(x, y, strict=True)) / sum(
            (a - x_bar) ** 2 for a in x
        )
    return slopes
