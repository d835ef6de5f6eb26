"""The Ray executor on a local Ray with 4 logical GPUs (no real GPU needed)."""

import functools
import os
import signal
import tempfile
import time

import pytest

import hpo
from hpo.executors.ray import RayExecutor
from hpo.space import Fidelity, Float, Space
from hpo.storage import Storage
from hpo.trial import TrialStatus

SPACE = Space({"x": Float(0.0, 1.0)})


def gpu_trainable(config, barrier=None):
    t0 = time.time()
    time.sleep(0.4)
    if barrier:  # the first trials wait (at most 30 s) until four have started: slow actor starts on a loaded
        open(os.path.join(barrier, f"{os.getpid()}-{t0}"), "w").close()  # machine cannot hide concurrency
        while len(os.listdir(barrier)) < 4 and time.time() - t0 < 30:
            time.sleep(0.05)
    return {"loss": config["x"], "start": t0, "end": time.time(),
            "gpu": float(os.environ["CUDA_VISIBLE_DEVICES"])}


def _max_overlap(intervals):
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    cur = best = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def test_trials_asking_one_gpu_never_exceed_four_and_each_sees_its_own_device(ray_local):
    d = tempfile.mkdtemp()
    trainable = functools.partial(gpu_trainable, barrier=tempfile.mkdtemp())  # a partial, as users pass data
    result = hpo.run(trainable, SPACE, metric="loss", directory=d, max_trials=12, display=False,
                     resources={"num_cpus": 0, "num_gpus": 1})
    trials = result.history.completed
    assert len(trials) == 12
    spans = [(t.value("start"), t.value("end")) for t in trials]
    assert _max_overlap(spans) == 4
    for a in trials:  # trials that overlap in time run on different GPUs
        for b in trials:
            if a.trial_id < b.trial_id and a.value("start") < b.value("end") and b.value("start") < a.value("end"):
                assert a.value("gpu") != b.value("gpu")
    with Storage(d, readonly=True) as st:
        workers = [e["data"]["worker"] for e in st.events() if e["kind"] == "completed"]
    assert all(w["cuda_visible_devices"] == w["gpu_ids"][0] for w in workers)


def test_fractional_gpus_pack_two_trials_per_gpu(ray_local):
    ex = RayExecutor(num_cpus=0, num_gpus=0.5)
    ex.start(gpu_trainable, "loss", None)
    try:
        assert ex.num_slots == 8
    finally:
        ex.shutdown()


def test_asking_more_gpus_than_the_cluster_has_is_a_clear_error(ray_local):
    ex = RayExecutor(num_gpus=8)
    with pytest.raises(ValueError, match="each trial asks for 8.0 GPU but the Ray cluster has 4; lower"):
        ex.start(gpu_trainable, "loss", None)


def killed_once_trainable(config):
    """Reports 6 steps with checkpoints; the first attempt kills its own worker process after step 3."""
    state = hpo.get_checkpoint()
    start = state["step"] if state else 0
    for step in range(start + 1, config["epoch"] + 1):
        hpo.report({"loss": 1.0 / step, "resumed_from": float(start)}, step=step, checkpoint={"step": step})
        marker = config["marker"]
        if step == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


def test_segment_whose_worker_died_is_retried_from_its_last_checkpoint(ray_local):
    d = tempfile.mkdtemp()
    space = Space({"x": Float(0.0, 1.0)}, fidelity=Fidelity("epoch", 1, 6), constants={"marker": f"{d}/killed"})
    result = hpo.run(killed_once_trainable, space, metric="loss", directory=d, max_trials=1, display=False,
                     resources={"num_cpus": 1})
    (trial,) = result.history.trials
    assert trial.status is TrialStatus.COMPLETED
    assert [s for s, _ in trial.curve] == [1, 2, 3, 4, 5, 6]  # nothing lost, nothing twice
    assert [m["resumed_from"] for _, m in trial.curve] == [0, 0, 0, 3, 3, 3]
    with Storage(d, readonly=True) as st:
        (done,) = [e for e in st.events() if e["kind"] == "completed"]
    assert done["data"]["attempts"] == 2


def failing_trainable(config):
    if config["x"] > 0.5:
        raise ValueError("bad batch")
    return config["x"]


def test_exception_in_user_code_on_ray_fails_the_trial_and_keeps_the_worker(ray_local):
    d = tempfile.mkdtemp()
    result = hpo.run(failing_trainable, SPACE, metric="loss", directory=d, max_trials=10, display=False,
                     resources={"num_cpus": 1}, max_concurrent=2)
    h = result.history
    assert len(h.failed) + len(h.completed) == 10 and h.failed and h.completed
    assert all(t.error.startswith("ValueError: bad batch\nTraceback") for t in h.failed)
    with Storage(d, readonly=True) as st:
        pids = {e["data"]["worker"]["pid"] for e in st.events() if e["kind"] in ("completed", "failed")}
    assert len(pids) == 2  # the same two long-lived workers served all ten trials
