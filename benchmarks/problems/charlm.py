"""A small character-level transformer LM trained on Python's own standard-library sources, for real, on the CPU.

No download: the corpus is a fixed list of modules of the running Python's standard library (train and validation
sets are different modules). Two problems:

- ``charlm``: multi-fidelity. A 2-layer, width-32 decoder; the space is the AdamW learning rate, weight decay,
  ``beta2`` and warm-up fraction; the fidelity is the evaluation ``round`` 1..12, one round = 10 optimizer steps
  followed by the validation loss. Cost = measured CPU seconds (like ``digits_mlp``).
- ``charlm_cost``: cost-aware. The width ``d_model`` and the number of optimizer ``steps`` are in the space with the
  learning rate, so cost depends on the config and the best (cost, loss) trade-off is a real curve. Cost = training
  FLOPs (deterministic, Kaplan et al. 2020's ``C = 6 N + 6 n_layer n_ctx d`` per token), charged to the simulated
  clock at a fixed nominal rate of :data:`NOMINAL_FLOPS` FLOP/s so that runs are reproducible; the measured seconds
  are reported beside it (metric ``train_seconds``).

Notation
--------
- ``V``: vocabulary (printable ASCII, newline and tab, and one token for anything else), ``n_ctx = 32``: context,
  ``B = 16``: sequences a batch, ``L = 2``: layers, ``d``: width (``d_model``), single-head attention.
- ``N = 12 L d^2 + V d``: parameters that cost FLOPs per token (blocks and the tied output layer).
"""

from __future__ import annotations

import math
import sysconfig
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

import hpo
from benchmarks.problems.base import Problem
from benchmarks.problems.measured import MeasuredTrainable
from hpo.space import Fidelity, Float, Int, Space

__all__ = ["NOMINAL_FLOPS", "PROBLEMS", "CharLM", "train", "training_flops"]

TRAIN_MODULES = (
    "argparse.py", "collections/__init__.py", "functools.py", "typing.py", "inspect.py", "pathlib.py",
    "dataclasses.py", "enum.py", "statistics.py", "shutil.py", "difflib.py", "configparser.py", "logging/__init__.py",
)  # fmt: skip
VALID_MODULES = ("textwrap.py", "json/encoder.py", "string.py", "heapq.py", "csv.py", "pprint.py", "contextlib.py")

N_CTX, BATCH, N_LAYER = 32, 16, 2
ROUND_STEPS, ROUNDS = 10, 12
WIDTH = 32
EVAL_SEQS = 64
# Single-thread float32 throughput of the largest config (d=96, 400 steps: 2.9e11 FLOPs in 11.7 CPU seconds) on the
# machine the benchmarks were written on; only the scale of the virtual clock depends on it.
NOMINAL_FLOPS = 2.5e10

_CHARS = "\n\t" + "".join(chr(c) for c in range(32, 127))
_INDEX = {c: i for i, c in enumerate(_CHARS)}
VOCAB = len(_CHARS) + 1  # the last token stands for any other character


@lru_cache(maxsize=1)
def corpus() -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of the training and validation modules, 1-d int64 tensors."""
    root = Path(sysconfig.get_paths()["stdlib"])

    def encode(names: tuple[str, ...]) -> torch.Tensor:
        text = "\n".join((root / n).read_text(encoding="utf-8") for n in names)
        return torch.tensor([_INDEX.get(c, VOCAB - 1) for c in text], dtype=torch.long)

    return encode(TRAIN_MODULES), encode(VALID_MODULES)


class CharLM(nn.Module):
    """A pre-LayerNorm decoder-only transformer with learned positions and a tied output layer.

    Example:
        >>> m = CharLM(d_model=32)
        >>> m(torch.zeros(2, 8, dtype=torch.long)).shape
        torch.Size([2, 8, 96])
    """

    def __init__(self, d_model: int = 64, n_layer: int = N_LAYER, n_ctx: int = N_CTX) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.zeros(n_ctx, d_model))
        self.blocks = nn.ModuleList(_Block(d_model) for _ in range(n_layer))
        self.norm = nn.LayerNorm(d_model)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.tok.weight.T


class _Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))
        return x + self.mlp(self.ln2(x))


def training_flops(d_model: int, steps: int) -> float:
    """``6 N + 6 L n_ctx d`` FLOPs a token (Kaplan et al., 2020, Table 1) times ``steps * B * n_ctx`` tokens."""
    n = 12 * N_LAYER * d_model**2 + VOCAB * d_model
    return float(steps * BATCH * N_CTX * (6 * n + 6 * N_LAYER * N_CTX * d_model))


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def _valid_loss(model: CharLM, valid: torch.Tensor) -> float:
    model.eval()
    starts = torch.linspace(0, len(valid) - N_CTX - 2, EVAL_SEQS).long()
    x = torch.stack([valid[s : s + N_CTX] for s in starts])
    y = torch.stack([valid[s + 1 : s + N_CTX + 1] for s in starts])
    loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)).item()
    model.train()
    return loss


def train(config: dict[str, Any]) -> dict[str, float] | None:
    """Train a :class:`CharLM` with AdamW, reporting ``valid_loss``.

    With a ``round`` fidelity in the config, it trains ``round * ROUND_STEPS`` steps in all and reports (and
    checkpoints) after every round; with ``steps`` and ``d_model`` in the config (cost-aware), it trains ``steps``
    steps and returns the final validation loss, the FLOPs and the measured seconds.
    """
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    train_ids, valid_ids = corpus()
    d = int(config.get("d_model", WIDTH))
    fidelity = "round" in config
    total = int(config["round"]) * ROUND_STEPS if fidelity else int(config["steps"])
    warmup = max(1, int(config.get("warmup", 0.05) * total))
    torch.manual_seed(0)
    model = CharLM(d)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config["lr"],
        betas=(0.9, config.get("beta2", 0.99)),
        weight_decay=config.get("weight_decay", 0.0),
    )
    step = 0
    state = hpo.get_checkpoint() if fidelity else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
    while step < total:
        gen = torch.Generator().manual_seed(step)  # batch i is the same whether or not the run was paused
        starts = torch.randint(0, len(train_ids) - N_CTX - 1, (BATCH,), generator=gen)
        x = torch.stack([train_ids[s : s + N_CTX] for s in starts])
        y = torch.stack([train_ids[s + 1 : s + N_CTX + 1] for s in starts])
        for group in opt.param_groups:
            group["lr"] = config["lr"] * _lr_factor(step, total, warmup)
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"training loss is {loss.item()} at step {step}: diverged")
        if fidelity and step % ROUND_STEPS == 0:
            hpo.report(
                {"valid_loss": _valid_loss(model, valid_ids), "train_loss": loss.item()},
                step=step // ROUND_STEPS,
                checkpoint={"model": model.state_dict(), "opt": opt.state_dict(), "step": step},
            )
    return {
        "valid_loss": _valid_loss(model, valid_ids),
        "flops": training_flops(d, total),
        "train_seconds": time.perf_counter() - t0,
    }


def _charlm_space() -> Space:
    return Space(
        {
            "lr": Float(1e-4, 1e-1, log=True),
            "weight_decay": Float(1e-4, 1.0, log=True),
            "beta2": Float(0.9, 0.999),
            "warmup": Float(0.0, 0.3),
        },
        fidelity=Fidelity("round", 1, ROUNDS),
    )


def cost_space() -> Space:
    return Space(
        {
            "d_model": Int(16, 96, log=True),
            "steps": Int(25, 400, log=True),
            "lr": Float(1e-4, 1e-1, log=True),
        },
        constants={"weight_decay": 0.01, "beta2": 0.99, "warmup": 0.05},
    )


def _flop_seconds(config: dict[str, Any], start: int, stop: int, measured: float) -> float:
    return training_flops(int(config["d_model"]), int(config["steps"])) / NOMINAL_FLOPS


def _measured(**kwargs: Any) -> MeasuredTrainable:
    corpus()  # read the sources now, so that the first trial is not charged for it
    return MeasuredTrainable(train, "valid_loss", **kwargs)


def _build_charlm() -> Problem:
    return Problem(
        name="charlm",
        kind="real",
        space=_charlm_space(),
        make=lambda: _measured(max_step=ROUNDS),
        metric="valid_loss",
        budget=30.0,
        budget_unit="seconds",
        executor_duration=lambda trainable: trainable.failure_duration,
        notes=(
            f"char-level transformer (L={N_LAYER}, d={WIDTH}) on Python stdlib sources, {ROUNDS} rounds of "
            f"{ROUND_STEPS} AdamW steps; cost = measured CPU seconds of each segment (1 thread)"
        ),
    )


def _build_cost() -> Problem:
    space = cost_space()
    top = training_flops(96, 400)
    return Problem(
        name="charlm_cost",
        kind="cost",
        space=space,
        make=lambda: _measured(max_step=1, duration_of=_flop_seconds),
        metric="valid_loss",
        budget=4.0,
        budget_unit="full_runs",
        full_run_cost=top / NOMINAL_FLOPS,
        executor_duration=lambda trainable: trainable.failure_duration,
        cost_metric="flops",
        hv_ref=(math.log10(top), math.log(VOCAB)),
        notes=(
            "char-level transformer with width d_model (16..96) and steps (25..400) in the space; cost = training "
            f"FLOPs (6N + 6 L n_ctx d a token), clock at a nominal {NOMINAL_FLOPS:.0e} FLOP/s; hypervolume of "
            "(log10 FLOPs, valid loss) against the fixed reference (log10 FLOPs of the largest config, ln V)"
        ),
    )


PROBLEMS: dict[str, Callable[[], Problem]] = {"charlm": _build_charlm, "charlm_cost": _build_cost}
