"""A small pre-LN character-level GPT with SP, muP, depth-muP and CompleteP built in.

Notation
--------
- ``B, T``: batch size and sequence length; ``V``: vocabulary size (characters).
- ``n = n_embd``, ``L = n_layer``; ``d_head`` is fixed, so the number of heads ``n / d_head`` grows with
  width.
- ``m_w = n / n_0``, ``m_d = L / L_0`` against the base shape ``(n_0, L_0)`` where the hyperparameters are
  tuned.

The forward pass carries the parameterization's multipliers (``hpo.transfer``):

- residual branches ``x + m_d^-alpha F(LN(x))`` (``residual_multiplier``; 1 for SP and muP);
- the head's input times ``m_w^-1`` (``output_multiplier``; 1 for SP);
- attention logits ``q.k / d_head`` under muP and its depth variants, ``q.k / sqrt(d_head)`` under SP.

Init and optimizer groups come from ``hpo.transfer.reinit_`` and ``hpo.transfer.param_groups``, so the model
holds no scaling rule of its own. Data: Python's own standard-library sources, read from disk (no download).

Run ``python -m examples.transfer_gpt.model`` to train a small model for a few steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hpo.transfer import (
    Multipliers,
    Parameterization,
    Shape,
    attention_scale,
    multipliers,
    output_multiplier,
    param_groups,
    reinit_,
    residual_multiplier,
)

__all__ = ["GPT", "CharCorpus", "GPTConfig", "get_batch", "load_corpus", "train"]

STDLIB_FILES: tuple[str, ...] = (
    "argparse.py",
    "functools.py",
    "dataclasses.py",
    "enum.py",
    "inspect.py",
    "typing.py",
    "os.py",
    "pathlib.py",
)


@dataclass(frozen=True)
class GPTConfig:
    """Shape and parameterization of a ``GPT``.

    Example:
        >>> GPTConfig(vocab_size=96, n_embd=128, n_layer=4).mult
        Multipliers(width=2.0, depth=2.0)
    """

    vocab_size: int
    n_embd: int = 64
    n_layer: int = 2
    head_dim: int = 16
    block_size: int = 64
    parameterization: str = "mup"
    base_width: int = 64
    base_depth: int = 2
    init_std: float = 0.02  # embeddings and head (and hidden matrices with hidden_init="scaled")
    hidden_init: str = "fan_in"  # hidden matrices N(0, 1/fan_in): see hpo.transfer.reinit_
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.n_embd % self.head_dim:
            raise ValueError(
                f"n_embd={self.n_embd} is not a multiple of head_dim={self.head_dim}; heads keep a fixed "
                "dimension, so choose n_embd = k * head_dim"
            )
        Parameterization.parse(self.parameterization)

    @property
    def shape(self) -> Shape:
        return Shape(self.n_embd, self.n_layer)

    @property
    def base(self) -> Shape:
        return Shape(self.base_width, self.base_depth)

    @property
    def mult(self) -> Multipliers:
        return multipliers(self.base, self.shape)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_embd // cfg.head_dim
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        # The base has the same head dim (heads grow in number), so muP's scale equals SP's 1/sqrt(d_head).
        self.scale = attention_scale(cfg.head_dim, cfg.parameterization, base_head_dim=cfg.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, cfg.mlp_ratio * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.mlp_ratio * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN block ``x + r attn(LN(x))``, then ``x + r mlp(LN(x))``, ``r = m_d^-alpha`` (Dey et al. 2025)."""

    def __init__(self, cfg: GPTConfig, residual: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.residual * self.attn(self.ln_1(x))
        return x + self.residual * self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Character-level GPT whose init, multipliers and optimizer groups follow ``cfg.parameterization``.

    Token and position embeddings, ``n_layer`` pre-LN blocks in ``blocks`` (an ``nn.ModuleList``, which is how
    ``hpo.transfer.infer_roles`` finds the residual blocks), a final LayerNorm and an untied head ``lm_head``.

    Example:
        >>> model = GPT(GPTConfig(vocab_size=32, n_embd=64, n_layer=2, block_size=16))
        >>> logits, loss = model(torch.zeros(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long))
        >>> tuple(logits.shape)
        (2, 16, 32)
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        mult = cfg.mult
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        residual = residual_multiplier(cfg.parameterization, mult)
        self.blocks = nn.ModuleList(Block(cfg, residual) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.output_mult = output_multiplier(cfg.parameterization, mult)
        reinit_(self, cfg.parameterization, cfg.base, cfg.shape, init_std=cfg.init_std, hidden_init=cfg.hidden_init)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        # The m_w^-1 multiplier goes on the head's input, so lm_head's output (what a coord check sees) is the
        # logits.
        logits = self.lm_head(self.ln_f(x) * self.output_mult)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    def param_groups(
        self, lr: float, weight_decay: float = 0.0, eps: float = 1e-8, optimizer: str = "adamw", **kwargs: Any
    ) -> list[dict[str, Any]]:
        """``hpo.transfer.param_groups`` at this shape, from base ``lr``, ``weight_decay`` and ``eps``."""
        return param_groups(
            self,
            self.cfg.parameterization,
            self.cfg.base,
            self.cfg.shape,
            lr=lr,
            weight_decay=weight_decay,
            eps=eps,
            optimizer=optimizer,
            **kwargs,
        )


class CharCorpus:
    """Characters of a text as integer ids, split into train and validation.

    Example:
        >>> corpus = CharCorpus("abcabcabca")
        >>> corpus.vocab_size, corpus.decode(corpus.train[:3].tolist())
        (3, 'abc')
    """

    def __init__(self, text: str, val_fraction: float = 0.1) -> None:
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([self.stoi[c] for c in text], dtype=torch.long)
        n_val = int(len(data) * val_fraction)
        self.train, self.val = data[: len(data) - n_val], data[len(data) - n_val :]

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)


def load_corpus(files: Sequence[str] = STDLIB_FILES, max_chars: int | None = None) -> CharCorpus:
    """The sources of some standard-library modules (found next to ``os.py``), joined, as a ``CharCorpus``."""
    root = os.path.dirname(os.__file__)
    parts = []
    for name in files:
        with open(os.path.join(root, name), encoding="utf-8") as f:
            parts.append(f.read())
    text = "\n".join(parts)
    return CharCorpus(text[:max_chars] if max_chars else text)


def get_batch(
    data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``block_size`` characters and their next-character targets."""
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix.tolist()])
    return x, y


def train(
    cfg: GPTConfig,
    corpus: CharCorpus,
    *,
    lr: float,
    steps: int,
    batch_size: int = 16,
    weight_decay: float = 0.0,
    eps: float = 1e-8,
    betas: tuple[float, float] = (0.9, 0.95),
    warmup_fraction: float = 0.1,
    seed: int = 0,
    eval_batches: int = 8,
    optimizer: str = "adamw",
    device: str | torch.device = "cpu",
) -> float:
    """Train a fresh ``GPT(cfg)`` (linear warm-up, cosine decay to 10%); returns the validation loss.

    A diverged run returns ``inf``. The data order depends only on ``seed``, so runs that differ in shape or
    learning rate see the same batches (batches are drawn on the CPU and moved to ``device``, so a GPU run
    sees the same data as a CPU run; the init is drawn on the CPU too).
    """
    torch.manual_seed(seed)
    model = GPT(cfg).to(device)
    groups = model.param_groups(lr, weight_decay, eps, optimizer)
    if optimizer == "adamw":
        # The fused kernel updates every group in one launch on a GPU (the foreach default on a CPU).
        opt = torch.optim.AdamW(groups, betas=betas, fused=True if torch.device(device).type == "cuda" else None)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=0.9)
    else:
        raise ValueError(f"optimizer {optimizer!r}: this example trains with 'adamw' or 'sgd'")
    base_lrs = [g["lr"] for g in opt.param_groups]
    data_gen = torch.Generator().manual_seed(seed)
    warmup = max(1, int(warmup_fraction * steps))
    model.train()
    for step in range(steps):
        # Linear warm-up then cosine decay to 10%: the schedule is a shape-free hyperparameter that transfers
        # as is.
        if step < warmup:
            factor = (step + 1) / warmup
        else:
            factor = 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
        for g, base_lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = base_lr * factor
        x, y = get_batch(corpus.train, cfg.block_size, batch_size, data_gen)
        _, loss = model(x.to(device), y.to(device))
        # Checking every step would synchronize a GPU each step; a diverged run stays non-finite anyway.
        if (step % 25 == 0 or step == steps - 1) and not torch.isfinite(loss):
            return float("inf")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    eval_gen = torch.Generator().manual_seed(10_000)
    with torch.no_grad():
        losses = [
            model(*(t.to(device) for t in get_batch(corpus.val, cfg.block_size, batch_size, eval_gen)))[1].item()
            for _ in range(eval_batches)
        ]
    value = sum(losses) / len(losses)
    return value if math.isfinite(value) else float("inf")


if __name__ == "__main__":
    corpus = load_corpus()
    for width in (64, 128):
        cfg = GPTConfig(vocab_size=corpus.vocab_size, n_embd=width, n_layer=2, parameterization="mup")
        print(f"width {width}: val loss {train(cfg, corpus, lr=2**-7, steps=100):.3f}")
