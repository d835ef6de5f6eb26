"""The transfer_gpt example: its trainable pauses and resumes exactly, counts its compute right, and the guide's
commands run end to end on the smallest sweep (the CI smoke test of docs/transfer_guide.md)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from examples.transfer_gpt.model import GPT
from examples.transfer_gpt.trainable import _full, _gpt_config, corpus, flops_per_step, loop

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 16, "depth": 1, "batch_size": 4, "block_size": 32, "eval_every": 5, "eval_batches": 1,
        "eval_batch_size": 4, "step": 10, "lr": 0.01, "weight_decay": 0.1}


def _losses(config, state=None, stop_at=None):
    out, saved = [], {}

    class Stop(Exception):
        pass

    def on_eval(step, val, flops, make_checkpoint):
        out.append((step, val))
        if step == stop_at:
            saved["state"] = make_checkpoint()
            raise Stop

    try:
        loop(config, state, on_eval)
    except Stop:
        pass
    return out, saved.get("state")


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_a_paused_and_resumed_run_matches_an_uninterrupted_one(optimizer):
    torch.set_num_threads(1)
    config = {**TINY, "optimizer": optimizer, "base_width": 16, "width": 32, "depth": 2, "base_depth": 1}
    straight, _ = _losses(config)
    first, state = _losses(config, stop_at=5)
    # round-trip the checkpoint through torch.save, as the checkpoint store does
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"tg_state_{os.getpid()}.pt"
    torch.save(state, path)
    state = torch.load(path, weights_only=False)
    path.unlink()
    rest, _ = _losses(config, state=state)
    assert [s for s, _ in straight] == [5, 10] and first == straight[:1]
    assert rest == straight[1:]  # bit for bit: model, optimizer state and data order all restored
    assert straight[-1][1] < math.log(corpus().vocab_size)  # it learned something in 10 steps


def test_flops_count_the_models_non_embedding_parameters():
    for width, depth in ((32, 2), (128, 4)):
        c = _full({**TINY, "width": width, "depth": depth})
        model = GPT(_gpt_config(c, corpus().vocab_size))
        n = sum(p.numel() for name, p in model.named_parameters() if not name.startswith(("wte", "wpe")))
        train, evaluate = flops_per_step(c)
        tokens = c["batch_size"] * c["block_size"]
        attention = 6 * depth * c["block_size"] * width
        assert train == 6 * n * tokens + attention * tokens
        assert evaluate == pytest.approx(train / 3 * c["eval_batches"] * c["eval_batch_size"] / c["batch_size"])


def test_guide_commands_run_on_the_smallest_sweep(tmp_path):
    """`hpo-tune SWEEP`, `hpo-tune transfer`, the check: the guide's three steps, on sweep_smoke.yaml."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    d = tmp_path / "smoke"

    def sh(*args):
        p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stdout

    sh("-m", "hpo", "examples/transfer_gpt/sweep_smoke.yaml", "--quiet", "--directory", str(d))
    out = sh("-m", "hpo", "transfer", str(d), "--target", "width=32,depth=2")
    assert "completep transfer (adamw) from width 16, depth 1 to width 32, depth 2" in out
    t = yaml.safe_load((d / "transferred.yaml").read_text())
    assert t["source"]["step"] == 20 and t["config"]["width"] == 32 and t["config"]["base_width"] == 16
    assert t["groups"]["hidden"]["lr"] == pytest.approx(t["best_config"]["lr"] / 2)
    out = sh("-m", "examples.transfer_gpt.refine", str(d), "--lrs=-7,-5", "--seeds", "0", "1")
    refined = json.loads((d / "refine.json").read_text())
    loss = {key: r["val_loss"] for key, r in refined["runs"].items()}
    means = {k: (loss[f"0,{k}"] + loss[f"1,{k}"]) / 2 for k in ("-7", "-5")}
    assert all(r["flops"] > 0 and r["steps"] == 20 for r in refined["runs"].values())
    assert refined["best_k"] == float(min(means, key=means.get))
    t = yaml.safe_load((d / "transferred.yaml").read_text())
    assert t["overrides"] == {"lr": 2.0 ** refined["best_k"]} == {"lr": t["best_config"]["lr"]}
    assert t["groups"]["hidden"]["lr"] == pytest.approx(t["best_config"]["lr"] / 2)
    out = sh("-m", "examples.transfer_gpt.check", str(d), "--grid=-1,1")
    assert "transferred: val loss" in out
    runs = json.loads((d / "check.json").read_text())["runs"]
    assert sorted(r["config"]["lr"] for r in runs.values()) == pytest.approx(
        [t["best_config"]["lr"] * f for f in (0.5, 1, 2)]
    )
    assert all(r["config"]["width"] == 32 and r["val_loss"] < 4.0 for r in runs.values())
    from examples.transfer_gpt.check import proxy_cost  # the proxy's compute counts the refinement runs

    cost = proxy_cost(d)
    assert cost["refine_runs"] == 4 and cost["flops"] > sum(r["flops"] for r in refined["runs"].values())
