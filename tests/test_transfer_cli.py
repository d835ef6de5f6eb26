"""Sweep files that declare a base shape, and `hpo-tune transfer` carrying a sweep's winner to a target shape."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import hpo
from hpo.executors.simulated import SimulatedExecutor
from hpo.space import Fidelity, Float, Space
from hpo.tune import SweepFileError, load_sweep, main, parse_shape, transfer_sweep

BASE = {"width": 32, "depth": 2}


def lr_curve(config):
    """A learning curve whose final value is best at lr = 2^-6 and wd = 0.1; it improves with the step."""
    state = hpo.get_checkpoint()
    start = state["step"] if state else 0
    for step in range(start + 1, config["step"] + 1):
        loss = (math.log2(config["lr"]) + 6) ** 2 + (math.log10(config["weight_decay"]) + 1) ** 2 + 9.0 / step
        hpo.report({"loss": loss}, step=step, checkpoint={"step": step})


def overfitting_curve(config):
    """Worse with every step: a trial paused at an early rung looks better than any full run."""
    state = hpo.get_checkpoint()
    start = state["step"] if state else 0
    for step in range(start + 1, config["step"] + 1):
        loss = (math.log2(config["lr"]) + 6) ** 2 + step
        hpo.report({"loss": loss}, step=step, checkpoint={"step": step})


def space(**constants) -> Space:
    return Space(
        {"lr": Float(2.0**-10, 2.0**-2, log=True), "weight_decay": Float(1e-3, 1.0, log=True)},
        fidelity=Fidelity("step", 1, 9),
        constants=constants,
    )


def run_sweep(directory: Path, transfer=None, scheduler: str = "fifo", trainable=lr_curve, **constants):
    return hpo.run(
        trainable, space(**constants), metric="loss", directory=directory, max_trials=12, display=False,
        scheduler=scheduler, executor=SimulatedExecutor(2, seed=0), transfer=transfer,
    )


def write_sweep(tmp_path: Path, transfer: str | None, **space_extra: str) -> Path:
    space_lines = "".join(f"  {k}: {v}\n" for k, v in space_extra.items())
    text = (
        "entrypoint: mytrain:train\nmetric: loss\nspace:\n  lr: {type: float, low: 1.0e-4, high: 1.0, log: true}\n"
        + space_lines
        + (f"transfer: {transfer}\n" if transfer is not None else "")
    )
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


# -- the sweep file's transfer section ------------------------------------------------------------------------


def test_sweep_file_transfer_section_is_normalized(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, "{base: {width: 32, depth: 2}, parameterization: CompleteP}",
                                  width="32", depth="2"))
    assert spec["transfer"] == {"base": BASE, "parameterization": "completep", "optimizer": "adamw"}


@pytest.mark.parametrize(
    ("transfer", "extra", "message"),
    [
        ("{base: {width: 0, depth: 2}}", {}, "transfer.base: Shape.width must be a positive integer"),
        ("{base: {width: 32, layers: 2}}", {}, "transfer.base must have the keys 'width'"),
        ("{parameterization: mup}", {}, "transfer must be a mapping with a base shape"),
        ("{base: {width: 32}, parameterisation: mup}", {}, "transfer has unknown keys ['parameterisation']"),
        ("{base: {width: 32}, parameterization: ntk}", {}, "parameterization 'ntk' is unknown"),
        ("{base: {width: 32}, optimizer: lion}", {}, "transfer.optimizer 'lion' is unknown"),
        ("{base: {width: 32, depth: 2}}", {"width": "64"},
         "space constant width=64 differs from transfer.base.width=32"),
        ("{base: {width: 32, depth: 2}, parameterization: sp}", {"parameterization": "completep"},
         "space constant parameterization='completep' differs from transfer.parameterization='sp'"),
    ],
)
def test_bad_transfer_section_is_a_one_line_error(tmp_path, capsys, transfer, extra, message):
    path = write_sweep(tmp_path, transfer, **extra)
    with pytest.raises(SweepFileError, match=None) as e:
        load_sweep(path)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert main([str(path)]) == 2
    assert message in capsys.readouterr().err


def test_searched_width_is_not_checked_against_the_base(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, "{base: {width: 32}}", width="[32, 64]"))
    assert spec["transfer"]["base"] == {"width": 32, "depth": 1}


# -- hpo-tune transfer ----------------------------------------------------------------------------------------


def test_transfer_command_scales_the_best_config_by_the_completep_rules(tmp_path, capsys):
    result = run_sweep(tmp_path / "s", transfer={"base": BASE, "parameterization": "completep"}, width=32, depth=2)
    best = result.best_config
    assert main(["transfer", str(tmp_path / "s"), "--target", "width=128,depth=4"]) == 0
    out = capsys.readouterr().out
    assert "completep transfer (adamw) from width 32, depth 2 to width 128, depth 4: m_w = 4, m_d = 2" in out
    t = yaml.safe_load((tmp_path / "s" / "transferred.yaml").read_text())
    assert t["best_config"] == best and t["source"]["step"] == 9
    # CompleteP (alpha = 1), AdamW: hidden lr eta / m_w * m_d^0, hidden wd lambda * m_w; embedding unchanged;
    # in-block vectors lr eta * m_d^0; residual branches times 1 / m_d; head input times 1 / m_w.
    assert t["groups"]["hidden"]["lr"] == pytest.approx(best["lr"] / 4)
    assert t["groups"]["hidden"]["weight_decay"] == pytest.approx(best["weight_decay"] * 4)
    assert t["groups"]["embedding"]["lr"] == pytest.approx(best["lr"])
    assert t["groups"]["hidden_vector"]["lr"] == pytest.approx(best["lr"])
    assert t["forward"] == {"residual_multiplier": 0.5, "output_multiplier": 0.25}
    # the config a trainable applying hpo.transfer itself needs: base values, target shape, base shape
    assert t["config"] == {**best, "width": 128, "depth": 4, "base_width": 32, "base_depth": 2}


def test_a_width_only_target_keeps_the_base_depth(tmp_path, capsys):
    run_sweep(tmp_path / "s", transfer={"base": BASE, "parameterization": "completep"}, width=32, depth=2)
    assert main(["transfer", str(tmp_path / "s"), "--target", "width=128"]) == 0
    t = yaml.safe_load((tmp_path / "s" / "transferred.yaml").read_text())
    assert t["target"] == {"width": 128, "depth": 2}
    assert t["forward"]["residual_multiplier"] == 1.0


def test_set_overrides_a_best_value_before_the_transfer_and_an_unknown_name_is_refused(tmp_path, capsys):
    run_sweep(tmp_path / "s", transfer={"base": BASE, "parameterization": "completep"}, width=32, depth=2)
    assert main(["transfer", str(tmp_path / "s"), "--target", "width=128,depth=4", "--set", "lr=0.0078125"]) == 0
    t = yaml.safe_load((tmp_path / "s" / "transferred.yaml").read_text())
    assert t["overrides"] == {"lr": 0.0078125} and t["best_config"]["lr"] == 0.0078125
    assert t["groups"]["hidden"]["lr"] == pytest.approx(0.0078125 / 4) and t["config"]["lr"] == 0.0078125
    assert "--set lr=0.0078125" in (tmp_path / "s" / "transferred.yaml").read_text().splitlines()[0]
    capsys.readouterr()
    assert main(["transfer", str(tmp_path / "s"), "--target", "width=128,depth=4", "--set", "lrr=0.1"]) == 2
    assert "cannot override ['lrr']" in capsys.readouterr().err
    assert main(["transfer", str(tmp_path / "s"), "--target", "width=128,depth=4", "--set", "lr"]) == 2
    assert "--set must be NAME=VALUE" in capsys.readouterr().err


def test_transfer_under_mup_scales_width_only_and_sp_nothing(tmp_path):
    run_sweep(tmp_path / "m", transfer={"base": BASE, "parameterization": "mup"})
    t = transfer_sweep(tmp_path / "m", {"width": 256, "depth": 8})
    assert t["groups"]["hidden"]["lr"] == pytest.approx(t["best_config"]["lr"] / 8)
    assert t["forward"]["residual_multiplier"] == 1.0
    run_sweep(tmp_path / "sp", transfer={"base": BASE, "parameterization": "sp"})
    t = transfer_sweep(tmp_path / "sp", {"width": 256, "depth": 8})
    assert all(g["lr"] == pytest.approx(t["best_config"]["lr"]) for g in t["groups"].values())


def test_transfer_picks_the_best_trial_trained_to_the_full_budget(tmp_path):
    # ASHA pauses most trials at early rungs; a short run's loss must not compete with full runs' losses.
    run_sweep(tmp_path / "a", transfer={"base": BASE}, scheduler="asha", trainable=overfitting_curve)
    t = transfer_sweep(tmp_path / "a", {"width": 64, "depth": 2})
    with hpo.tune.Storage(tmp_path / "a", readonly=True) as st:
        trials = st.load_trials()
    full = [tr for tr in trials if tr.last_step == 9]
    assert len(full) < len(trials)
    assert min(tr.curve[-1][1]["loss"] for tr in trials) < min(tr.curve[-1][1]["loss"] for tr in full)
    assert t["source"]["step"] == 9
    assert t["source"]["loss"] == pytest.approx(min(tr.curve[-1][1]["loss"] for tr in full))


def test_transfer_without_a_declared_base_needs_base_and_refuses_a_conflicting_one(tmp_path, capsys):
    run_sweep(tmp_path / "n")
    assert main(["transfer", str(tmp_path / "n"), "--target", "width=128,depth=4"]) == 2
    assert "the sweep declares no base shape; pass --base width=N,depth=L" in capsys.readouterr().err
    code = main(["transfer", str(tmp_path / "n"), "--target", "width=128,depth=4", "--base", "width=32,depth=2",
                 "--parameterization", "mup", "--out", str(tmp_path / "t.yaml")])
    assert code == 0
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["multipliers"] == {"width": 4.0, "depth": 2.0}
    run_sweep(tmp_path / "d", transfer={"base": BASE, "parameterization": "completep"})
    assert main(["transfer", str(tmp_path / "d"), "--target", "width=64", "--parameterization", "sp"]) == 2
    assert "the sweep declares parameterization 'completep'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("128x4", "--target must be 'width=N,depth=L'"),
        ("depth=4", "--target must give the width"),
        ("width=wide", "--target: width must be an integer"),
    ],
)
def test_bad_target_is_a_one_line_error(tmp_path, capsys, text, message):
    with pytest.raises(ValueError, match="--target"):
        parse_shape(text)
    run_sweep(tmp_path / "s", transfer={"base": BASE})
    assert main(["transfer", str(tmp_path / "s"), "--target", text]) == 2
    assert message in capsys.readouterr().err


def test_transfer_of_a_directory_without_a_sweep_names_the_fix(tmp_path, capsys):
    assert main(["transfer", str(tmp_path), "--target", "width=64"]) == 2
    assert "holds no sweep; pass the directory of a sweep" in capsys.readouterr().err
    assert parse_shape("width=128,depth=4") == {"width": 128, "depth": 4}
