"""Ablation of muP design choices on the character-LM GPT: which base constants make wider muP models better.

Under a correct muP the model at the base shape equals SP there, and at a fixed base learning rate a wider model
should train at least as well (TP V, Figure 1). This script trains the ``examples/transfer_gpt`` model at a few
widths and learning rates with one design choice changed at a time, so a variant that breaks "wider is better"
(or that SP beats at the wide end) shows up in one table.

Variants (``VARIANTS``; each is a set of overrides of the model as ``hpo.transfer`` builds it, which draws
hidden matrices with std ``1/sqrt(fan_in)`` and uses attention ``1/sqrt(d_head)`` at the fixed head dim 16):

- ``sp``, ``mup``: the parameterizations as built;
- ``*_gpt2_init``: hidden matrices ``N(0, 0.02^2)`` at the base (``hidden_init='scaled'``, GPT-2/nanoGPT-mup);
  ``_attn_inv_d``: attention ``q.k / d_head`` without the base constant (the model before the fix);
- ``mup_gain05``: hidden std ``0.5 / sqrt(fan_in)``;
- ``mup_zero_head``: zero-initialized head (TP V's recommendation); ``mup_head_sp_init``: head weights
  ``m_w`` times larger, so that under the ``m_w^-1`` multiplier the init-time logits are SP's;
- ``mup_emb_lr_sqrt``: embedding lr times ``m_w^-1/2`` (u-muP's rule, Blake et al. 2024);
  ``mup_vec_lr_inv``, ``mup_embvec_lr_inv``: vector (and embedding) lr times ``m_w^-1``, as SP has them.

Usage::

    python -m benchmarks.mup_ablation --device cuda --jobs 12 --widths 32,128,512 --lrs=-9:-3 --out-dir DIR
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from benchmarks import _torch_only

_torch_only.install()  # before examples.transfer_gpt imports hpo.transfer
from examples.transfer_gpt.model import GPT, GPTConfig, get_batch, load_corpus  # noqa: E402

VARIANTS: dict[str, dict] = {
    "sp": {"p": "sp"},
    "mup": {"p": "mup"},
    "sp_gpt2_init": {"p": "sp", "hidden_init": "scaled"},
    "mup_gpt2_init": {"p": "mup", "hidden_init": "scaled"},
    "mup_gpt2_init_attn_inv_d": {"p": "mup", "hidden_init": "scaled", "attn_inv_d": True},
    "mup_gain05": {"p": "mup", "fanin": 0.5},
    "mup_zero_head": {"p": "mup", "zero_head": True},
    "mup_head_sp_init": {"p": "mup", "head_std_mult": True},
    "mup_emb_lr_sqrt": {"p": "mup", "emb_lr": ("pow", -0.5)},
    "mup_vec_lr_inv": {"p": "mup", "vec_lr": ("pow", -1.0)},
    "mup_embvec_lr_inv": {"p": "mup", "emb_lr": ("pow", -1.0), "vec_lr": ("pow", -1.0)},
}

_CORPUS = None


def _init() -> None:
    global _CORPUS
    torch.set_num_threads(1)
    _CORPUS = load_corpus()


def run(variant: str, width: int, k: int, seed: int, steps: int, batch: int, device: str, base: int = 32) -> float:
    v = VARIANTS[variant]
    corpus = _CORPUS
    cfg = GPTConfig(
        vocab_size=corpus.vocab_size, n_embd=width, n_layer=2, head_dim=16, block_size=64,
        parameterization=v["p"], base_width=base, base_depth=2, hidden_init=v.get("hidden_init", "fan_in"),
    )
    torch.manual_seed(seed)
    model = GPT(cfg)
    m_w = width / base
    with torch.no_grad():
        if v.get("attn_inv_d"):
            for b in model.blocks:
                b.attn.scale = 1 / 16
        if "fanin" in v:
            for n, prm in model.named_parameters():
                if prm.ndim == 2 and n.startswith("blocks"):
                    prm.normal_(0, v["fanin"] / math.sqrt(prm.shape[1]))
        if v.get("zero_head"):
            model.lm_head.weight.zero_()
        if v.get("head_std_mult"):
            model.lm_head.weight.mul_(m_w)  # under the m_w^-1 multiplier: SP's init-time logits
    model.to(device)
    groups = model.param_groups(2.0**k)
    for key, roles in (("emb_lr", ("embedding",)), ("vec_lr", ("vector", "hidden_vector"))):
        if key in v:
            kind, val = v[key]
            for g in groups:
                if g["role"] in roles:
                    g["lr"] *= val if kind == "const" else m_w**val
    cuda = torch.device(device).type == "cuda"
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.95), fused=True if cuda else None)
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(seed)
    warm = max(1, steps // 10)
    for step in range(steps):
        f = (step + 1) / warm if step < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))
        for g, b in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = b * f
        x, y = get_batch(corpus.train, 64, batch, gen)
        _, loss = model(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    eg = torch.Generator().manual_seed(10_000)
    with torch.no_grad():
        ls = [model(*(t.to(device) for t in get_batch(corpus.val, 64, 32, eg)))[1].item() for _ in range(8)]
    value = sum(ls) / len(ls)
    return value if math.isfinite(value) else math.inf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--widths", default="32,128,512")
    ap.add_argument("--lrs", default="-10:-5")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--time-limit", type=float, default=math.inf)
    ap.add_argument("--out-dir", default=".")
    a = ap.parse_args()
    lo, hi = (int(x) for x in a.lrs.split(":"))
    widths = [int(w) for w in a.widths.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    # Variant by variant (in the order given), so a cut-off run has whole tables for the first variants.
    todo = [
        (v, w, k, s) for v in a.variants.split(",") for s in seeds for w in sorted(widths, reverse=True)
        for k in range(lo, hi + 1)
    ]
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, "mup_ablation.json")
    out: dict[str, float] = {}
    t0 = time.time()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(a.jobs, mp_context=ctx, initializer=_init) as pool:
        futs = {pool.submit(run, v, w, k, s, a.steps, a.batch_size, a.device): (v, w, k, s) for v, w, k, s in todo}
        for fut in as_completed(futs):
            v, w, k, s = futs[fut]
            out[f"{v}/{w}/{k}/{s}"] = fut.result()
            with open(path, "w") as f:
                json.dump({"steps": a.steps, "batch": a.batch_size, "losses": out, "wall_s": time.time() - t0}, f)
            if time.time() - t0 > a.time_limit:
                for other in futs:
                    other.cancel()
    # table: per variant and width, the loss at each lr (seed mean) and the best
    lines = [f"steps {a.steps}, batch {a.batch_size}x64, seeds {seeds}, wall {time.time() - t0:.0f}s", ""]
    lines.append("| variant | width | " + " | ".join(f"k={k}" for k in range(lo, hi + 1)) + " | best k | best |")
    lines.append("|" + "---|" * (hi - lo + 5))
    for v in a.variants.split(","):
        for w in widths:
            cells, best = [], (math.inf, None)
            for k in range(lo, hi + 1):
                vals = [out.get(f"{v}/{w}/{k}/{s}") for s in seeds]
                vals = [x for x in vals if x is not None]
                m = sum(vals) / len(vals) if vals else math.nan
                cells.append(f"{m:.3f}" if vals else "n/a")
                if vals and m < best[0]:
                    best = (m, k)
            lines.append(f"| {v} | {w} | " + " | ".join(cells) + f" | {best[1]} | {best[0]:.3f} |")
    text = "\n".join(lines)
    with open(os.path.join(a.out_dir, "mup_ablation.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
