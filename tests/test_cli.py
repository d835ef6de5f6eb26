"""The hpo-tune command: bad input gives one-line errors; a killed driver resumes without loss."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hpo.storage import Storage
from hpo.tune import main

ROOT = Path(__file__).resolve().parents[1]

TRAIN = textwrap.dedent(
    """
    import time

    def train(config):
        time.sleep(config["sleep"])
        return {"loss": (config["x"] - 0.3) ** 2}
    """
)


def write_sweep(tmp_path: Path, **overrides) -> Path:
    (tmp_path / "mytrain.py").write_text(TRAIN)
    spec = {
        "name": "t",
        "entrypoint": "mytrain:train",
        "metric": "loss",
        "space": "{x: {type: float, low: 0.0, high: 1.0}, sleep: 0.0}",
        "searcher": "random",
        "resources": "{num_cpus: 1}",
        "max_concurrent": "2",
        "budget": "{max_trials: 4}",
        "directory": "run",
    }
    spec.update(overrides)
    path = tmp_path / "sweep.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in spec.items() if v is not None))
    return path


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_malformed_sweep_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text("entrypoint: a:b\nspace: {x: [1, 2\n")
    code, err = run_cli(capsys, path)
    assert code == 2
    assert err.startswith("hpo-tune: error: sweep file") and "is not valid YAML at line" in err


def test_unknown_searcher_name_lists_the_known_ones(tmp_path, capsys):
    code, err = run_cli(capsys, write_sweep(tmp_path, searcher="bayesopt"))
    assert code == 2
    assert "unknown searcher 'bayesopt'; choose one of" in err and "'random'" in err


def test_unknown_key_and_missing_entrypoint_are_named(tmp_path, capsys):
    code, err = run_cli(capsys, write_sweep(tmp_path, metrc="loss"))
    assert code == 2 and "unknown keys ['metrc']" in err
    code, err = run_cli(capsys, write_sweep(tmp_path, entrypoint="nosuchmodule:train"))
    assert code == 2 and "cannot import 'nosuchmodule'" in err


def test_config_outside_the_space_is_refused_before_anything_runs(tmp_path, capsys):
    code, err = run_cli(capsys, write_sweep(tmp_path, points_to_evaluate="[{x: 3.0}]"))
    assert code == 2
    assert err == "hpo-tune: error: config value x=3.0 is outside the space; it must be a float in [0.0, 1.0]"


def test_bad_input_loses_no_recorded_result(tmp_path, capsys, ray_local):
    sweep = write_sweep(tmp_path)
    assert main([str(sweep), "--quiet"]) == 0
    with Storage(tmp_path / "run", readonly=True) as st:
        before = [(t.trial_id, t.curve) for t in st.load_trials()]
        assert [t.status.value for t in st.load_trials()] == ["completed"] * 4
    other_space = "{x: {type: float, low: 0.0, high: 2.0}, sleep: 0.0}"
    for bad in ({"searcher": "nope"}, {"points_to_evaluate": "[{x: 9}]"}, {"space": other_space}):
        code, err = run_cli(capsys, write_sweep(tmp_path, **bad))
        assert code == 2 and err.startswith("hpo-tune: error:")
    with Storage(tmp_path / "run", readonly=True) as st:
        assert [(t.trial_id, t.curve) for t in st.load_trials()] == before


def test_changed_space_on_an_existing_directory_is_refused(tmp_path, capsys, ray_local):
    assert main([str(write_sweep(tmp_path)), "--quiet"]) == 0
    code, err = run_cli(capsys, write_sweep(tmp_path, space="{x: {type: float, low: 0.0, high: 2.0}, sleep: 0.0}"))
    assert code == 2 and "holds a sweep with another space" in err


def _completed(directory: Path) -> int:
    try:
        with Storage(directory, readonly=True) as st:
            return sum(e["kind"] == "completed" for e in st.events())
    except Exception:
        return 0


def test_kill_9_of_the_driver_then_rerun_finishes_with_no_result_lost_or_run_twice(tmp_path):
    sweep = write_sweep(tmp_path, space="{x: {type: float, low: 0.0, high: 1.0}, sleep: 0.5}",
                        budget="{max_trials: 14}")
    cmd = [sys.executable, "-m", "hpo", str(sweep), "--quiet"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _completed(tmp_path / "run") < 4 and time.time() < deadline:
        time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with Storage(tmp_path / "run", readonly=True) as st:
        before = {t.trial_id: t.curve for t in st.load_trials() if t.status.value == "completed"}
        n_events = len(st.events())
    assert 4 <= len(before) < 14

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with Storage(tmp_path / "run", readonly=True) as st:
        trials = st.load_trials()
        later = st.events()[n_events:]
    assert len(trials) == 14 and all(t.status.value == "completed" for t in trials)
    for t in trials:
        if t.trial_id in before:
            assert t.curve == before[t.trial_id]  # kept as recorded
    rerun = {e["trial_id"] for e in later if e["kind"] in ("started", "requeued", "completed")}
    assert not rerun & set(before)  # no completed trial ran again


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_exits_cleanly(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0


def test_the_entrypoint_next_to_the_sweep_file_wins_over_the_working_directory(tmp_path, monkeypatch):
    from hpo.tune import _import_entrypoint

    for d, value in (("sw", "next to the sweep file"), ("other", "working directory")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "hpo_order_probe.py").write_text(f"def train(config):\n    return {value!r}\n")
    monkeypatch.chdir(tmp_path / "other")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "hpo_order_probe", raising=False)
    assert _import_entrypoint("hpo_order_probe:train", tmp_path / "sw")({}) == "next to the sweep file"
    sys.modules.pop("hpo_order_probe", None)


def test_a_sweep_whose_every_trial_failed_exits_1_with_the_first_reason(tmp_path, capsys, monkeypatch, ray_local):
    (tmp_path / "shell").mkdir()
    monkeypatch.chdir(tmp_path / "shell")
    code, err = run_cli(capsys, write_sweep(tmp_path, metric="los"), "--quiet", "--directory", "cwd_run")
    assert code == 1
    assert err.startswith("hpo-tune: error: every trial failed; the first: trainable reported ['loss'] at step 1 but "
                          "not the sweep's metric 'los'")
    assert (tmp_path / "shell" / "cwd_run" / "sweep.db").exists()  # --directory is the shell's, not the file's


def test_results_of_a_directory_without_a_sweep_is_a_one_line_error(tmp_path, capsys):
    from hpo.storage import Storage

    Storage(tmp_path / "empty").close()
    code, err = run_cli(capsys, "results", tmp_path / "empty")
    assert code == 2 and "holds no sweep spec" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"resources": "[1, 0]"},
            "resources must map a resource to an amount per trial, e.g. {num_cpus: 1, num_gpus: 0.5}; got [1, 0]",
        ),
        ({"resources": "{num_cpus: -1}"}, "resources: num_cpus must be a number >= 0 per trial, got -1"),
        ({"max_concurrent": "two"}, "max_concurrent must be a whole number >= 1 (or None), got 'two'"),
        ({"seed": "abc"}, "seed must be an integer, got 'abc'"),
    ],
)
def test_bad_resources_concurrency_and_seed_are_one_line_errors_before_anything_is_stored(tmp_path, capsys, override,
                                                                                           message):
    code, err = run_cli(capsys, write_sweep(tmp_path, **override))
    assert code == 2 and err == f"hpo-tune: error: {message}"
    assert not (tmp_path / "run" / "sweep.db").exists()
