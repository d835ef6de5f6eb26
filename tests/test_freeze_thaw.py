"""Freeze-thaw BO: the learning-curve GP (exact, calibrated, robust) and the pause/thaw decisions it drives."""

from __future__ import annotations

import math
import tempfile

import numpy as np
import pytest
import torch

import hpo
from hpo.executors.simulated import SimulatedExecutor
from hpo.history import History
from hpo.orchestrator import Budget, Orchestrator
from hpo.scheduler import Decision
from hpo.space import Fidelity, Float, Int, Space
from hpo.storage import Storage
from hpo.surrogates.freeze_thaw import (
    CurveData,
    FreezeThawGP,
    FreezeThawHyperparameters,
    exponential_decay_kernel,
    fit_freeze_thaw_gp,
    log_expected_improvement,
    matern52_kernel,
)
from hpo.trial import Trial, TrialStatus
from schedulers.freeze_thaw import FreezeThawScheduler
from searchers.freeze_thaw import FreezeThawSearcher
from tests.helpers import curve_trainable


def _random_curves(rng: np.random.Generator, n: int, max_step: int, shared_grid: bool):
    curves = []
    for i in range(n):
        T = int(rng.integers(1, 16))
        if shared_grid or i % 2 == 0:
            steps = np.arange(1, T + 1)
        else:
            steps = np.sort(rng.choice(np.arange(1, max_step + 1), T, replace=False))
        curves.append((steps, rng.normal(size=T)))
    return curves


def _hypers(d: int, rng: np.random.Generator) -> FreezeThawHyperparameters:
    h = FreezeThawHyperparameters.default(d)
    h.log_lengthscale = torch.tensor(np.log(rng.uniform(0.2, 1.0, d)))
    h.mean = torch.tensor(0.3, dtype=torch.float64)
    h.log_noise = torch.tensor(math.log(0.05), dtype=torch.float64)
    h.start = torch.tensor(1.5, dtype=torch.float64)  # the shared start value's weight d(t) is part of the test
    h.log_beta_d = torch.tensor(math.log(0.2), dtype=torch.float64)
    return h


def _dense(gp: FreezeThawGP, amp2: torch.Tensor):
    """The same model as one dense GP over every observed point: O((sum T_n)^3), the reference.

    ``y_n(t) = s d(t) + w(t) f_n + g_n(t)``: mean ``s d + m w``, covariance ``w w' K_x + [same curve] a^2 (k_t +
    noise)``.
    """
    data, h = gp.data, gp.hypers
    idx = torch.cat([torch.full((int(data.mask[n].sum()),), n) for n in range(data.n)])
    t = data.t[data.mask]
    y = data.y[data.mask]
    d = h.start_weight(t)
    w = 1 - d
    Kx = gp._kx(h, data.X, data.X, torch.eye(data.n, dtype=torch.float64))
    decay = h.value("log_outputscale_t") * exponential_decay_kernel(t, t, h.value("log_alpha"), h.value("log_beta"))
    same = (idx[:, None] == idx[None, :]).double()
    noise = (h.value("log_noise") + 1e-8) * torch.eye(len(t), dtype=torch.float64)
    K = w[:, None] * w[None, :] * Kx[idx][:, idx] + same * amp2[idx][:, None] * (decay + noise)
    return idx, t, y, K, Kx, h.start * d + h.mean * w


@pytest.mark.parametrize("shared_grid", [True, False])
@pytest.mark.parametrize("amplitudes", [False, True])
def test_efficient_posterior_equals_the_dense_gp_on_20_curves_of_different_lengths(shared_grid, amplitudes):
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(20, 3))
    data = CurveData.from_curves(X, _random_curves(rng, 20, 40, shared_grid), max_step=40)
    assert (data.grid is not None) == shared_grid  # both code paths are exercised
    h = _hypers(3, rng)
    amp2 = torch.tensor(rng.uniform(0.3, 4.0, 20)) if amplitudes else torch.ones(20, dtype=torch.float64)
    gp = FreezeThawGP(data, h, amp2 if amplitudes else None)
    idx, t, y, K, Kx, prior_mean = _dense(gp, amp2)

    dense_lml = torch.distributions.MultivariateNormal(prior_mean, K).log_prob(y)
    assert float(gp.log_marginal_likelihood()) == pytest.approx(float(dense_lml), abs=1e-6)

    # Future of curve 3 (t = 0.5, 0.9, 1), an observed curve at one of its own steps, and a new config, jointly.
    tq = torch.tensor([0.5, 0.9, 1.0, float(data.t[7, 0]), 0.3, 1.0], dtype=torch.float64)
    x_new = torch.tensor([[0.4, 0.6, 0.2]], dtype=torch.float64)
    members = torch.tensor([3, 7, -1])
    mx = torch.cat([data.X[[3, 7]], x_new])
    qm = torch.tensor([0, 0, 0, 1, 2, 2])
    mean, cov = gp.joint(members, mx, qm, tq, torch.zeros(6, dtype=torch.bool))

    a, b, s_t = h.value("log_alpha"), h.value("log_beta"), h.value("log_outputscale_t")
    w, wq = 1 - h.start_weight(t), 1 - h.start_weight(tq)
    kx_new = h.value("log_outputscale_x") * matern52_kernel(x_new, data.X, h.value("log_lengthscale"))[0]
    rows, prior = [], torch.zeros(6, 6, dtype=torch.float64)
    curve_of = [3, 3, 3, 7, -1, -1]
    for i, c in enumerate(curve_of):
        if c >= 0:
            k_curve = (idx == c) * amp2[c] * s_t * exponential_decay_kernel(tq[i : i + 1], t, a, b)[0]
            rows.append(wq[i] * w * Kx[c][idx] + k_curve)
        else:
            rows.append(wq[i] * w * kx_new[idx])
        for j, c2 in enumerate(curve_of):
            if c >= 0 and c2 >= 0:
                k_f = Kx[c, c2]
            elif c < 0 and c2 < 0:
                k_f = h.value("log_outputscale_x") + h.value("log_nugget")
            else:
                k_f = kx_new[c if c >= 0 else c2]
            prior[i, j] = wq[i] * wq[j] * k_f
            if c == c2:
                amp = amp2[c] if c >= 0 else gp.amp_new
                prior[i, j] += amp * s_t * exponential_decay_kernel(tq[i : i + 1], tq[j : j + 1], a, b)[0, 0]
    ks = torch.stack(rows)
    sol = torch.linalg.solve(K, torch.cat([(y - prior_mean)[:, None], ks.T], 1))
    dense_mean = h.start * (1 - wq) + h.mean * wq + ks @ sol[:, 0]
    dense_cov = prior - ks @ sol[:, 1:]
    assert torch.allclose(mean, dense_mean, atol=1e-6, rtol=0)
    assert torch.allclose(cov, dense_cov, atol=1e-6, rtol=0)
    m2, v2 = gp.marginal(members[qm], mx[qm], tq)
    assert torch.allclose(m2, dense_mean, atol=1e-6, rtol=0)
    assert torch.allclose(v2, dense_cov.diagonal(), atol=1e-6, rtol=0)


def _prior_draws(rng: np.random.Generator, h: FreezeThawHyperparameters, n: int, d: int, max_step: int):
    X = rng.uniform(size=(n, d))
    Xt = torch.as_tensor(X)
    Kx = h.value("log_outputscale_x") * matern52_kernel(Xt, Xt, h.value("log_lengthscale"))
    Kx = Kx + h.value("log_nugget") * torch.eye(n, dtype=torch.float64)
    f = h.mean + torch.linalg.cholesky(Kx) @ torch.as_tensor(rng.standard_normal(n))
    curves = []
    for n_i in range(n):
        T = int(rng.integers(1, 25))
        steps = np.arange(1, T + 1)
        t = torch.as_tensor(steps / max_step)
        Kt = h.value("log_outputscale_t") * exponential_decay_kernel(t, t, h.value("log_alpha"), h.value("log_beta"))
        Kt = Kt + h.value("log_noise") * torch.eye(T, dtype=torch.float64)
        g = torch.linalg.cholesky(Kt) @ torch.as_tensor(rng.standard_normal(T))
        d = h.start_weight(t)
        curves.append((steps, (h.start * d + (1 - d) * f[n_i] + g).numpy()))
    return X, curves, f.numpy()


def test_asymptote_falls_inside_the_predicted_95_percent_interval_on_curves_from_the_prior():
    rng = np.random.default_rng(0)
    d, max_step = 2, 50
    h = FreezeThawHyperparameters.default(d)
    h.log_lengthscale = torch.tensor([math.log(0.3), math.log(0.5)], dtype=torch.float64)
    h.log_outputscale_t = torch.tensor(math.log(1.0), dtype=torch.float64)
    h.log_beta = torch.tensor(math.log(0.1), dtype=torch.float64)
    inside, inside_fitted = [], []
    for _ in range(3):
        X, curves, f = _prior_draws(rng, h, 60, d, max_step)
        data = CurveData.from_curves(X, curves, max_step)
        f_std = data.standardize(f)  # the truth in the model's standardized units
        members = torch.arange(data.n)
        for gp, out in ((FreezeThawGP(data, _rescaled(h, data)), inside),
                        (fit_freeze_thaw_gp(data, max_iter=50), inside_fitted)):
            with torch.no_grad():
                mu, var = gp.asymptote_posterior(members, data.X, full_cov=False)
            out.extend(np.abs(f_std - mu.numpy()) <= 1.96 * np.sqrt(var.numpy()))
    # With the hyperparameters the curves were drawn with, the intervals are exact (measured: 94% of 180).
    assert np.mean(inside) >= 0.9
    # Fitted (MAP) hyperparameters and per-curve amplitudes are a little overconfident (measured: 88%).
    assert np.mean(inside_fitted) >= 0.85


def _rescaled(h: FreezeThawHyperparameters, data: CurveData) -> FreezeThawHyperparameters:
    """The true hyperparameters in the standardized units of ``data``."""
    s2 = data.scale**2
    r = h.clone()
    r.mean = torch.tensor((float(h.mean) - data.center) / data.scale, dtype=torch.float64)
    r.start = torch.tensor((float(h.start) - data.center) / data.scale, dtype=torch.float64)
    for name in ("log_outputscale_x", "log_nugget", "log_outputscale_t", "log_noise"):
        setattr(r, name, getattr(h, name) - math.log(s2))
    return r


def test_a_curve_that_moves_more_than_the_rest_gets_a_larger_amplitude():
    # 30 curves that barely move and one still falling fast: one shared curve kernel would call the fall noise.
    rng = np.random.default_rng(0)
    steps = np.arange(1, 6)
    curves = [(steps, 0.69 + 0.002 * rng.normal(size=5)) for _ in range(30)]
    curves.append((steps, 0.45 + 0.25 / steps))
    curves.append((steps[:1], [0.6]))
    data = CurveData.from_curves(rng.uniform(size=(32, 2)), curves, max_step=50)
    gp = fit_freeze_thaw_gp(data, max_iter=30)
    amp2 = gp.amp2.numpy()
    assert amp2[30] > 50 * np.median(amp2[:30])
    assert 0.1 < np.median(amp2[:30]) < 10
    # One point says nothing of how a curve moves: it takes the mean amplitude of the curves that say, E[a^2], as
    # a config never run does.
    assert amp2[31] == pytest.approx(amp2[:31].mean())
    assert gp.amp_new == pytest.approx(amp2[:31].mean())


def _history(space: Space, curves: dict[int, list[float]], status=TrialStatus.PAUSED, mode="min") -> History:
    trials = []
    for tid, values in curves.items():
        config = space.complete({"x": (tid + 0.5) / (len(curves) + 1)})
        sign = 1 if mode == "min" else -1
        curve = tuple((s + 1, {"loss": sign * v}) for s, v in enumerate(values))
        trials.append(Trial(tid, config, status, curve))
    return History(space, "loss", mode, tuple(trials))


def test_diverged_trial_counts_as_a_failure_at_the_worst_value_not_as_a_number():
    space = Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 20))
    h = _history(space, {i: [1.0 - 0.05 * i, 0.9 - 0.05 * i] for i in range(5)})
    bad = Trial(5, space.complete({"x": 0.99}), TrialStatus.FAILED, ((1, {"loss": 0.5}), (2, {"loss": math.nan})))
    data = CurveData.from_history(h.with_trials((*h.trials, bad)))
    row = list(data.trial_ids).index(5)
    assert data.failed[row] and int(data.mask[row].sum()) == 1
    assert float(data.y[row, 0]) == pytest.approx(float(data.standardize(data.upper)))
    assert float(data.y[row, 0]) >= float(data.y[data.mask].max())
    assert torch.isfinite(data.y).all()


def test_maximization_decides_as_minimization_of_the_negated_metric():
    space = Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 20))
    curves = {i: list(1.0 + 0.3 * i + 0.5 / np.arange(1, 2 + i % 3)) for i in range(6)}
    plans = []
    for mode in ("min", "max"):
        sched = FreezeThawScheduler(space, "loss", mode, acquisition="ei", n_initial=3)
        plans.append(sched.policy.plan(_history(space, curves, mode=mode), _history(space, curves).paused))
    assert plans[0].trial_id == plans[1].trial_id
    assert plans[0].scores == pytest.approx(plans[1].scores)


def test_forecast_of_a_paused_curve_is_uncertain_and_more_so_further_ahead():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 11)
    curves = [(steps, a + 1.0 / steps + 0.01 * rng.normal(size=10)) for a in rng.uniform(0, 1, 12)]
    curves.append((steps[:3], 0.2 + 1.0 / steps[:3]))
    gp = fit_freeze_thaw_gp(CurveData.from_curves(rng.uniform(size=(13, 2)), curves, max_step=50), max_iter=50)
    mean, var = gp.predict([4, 10, 50], curve=12)
    assert 0 < var[0] < var[1] < var[2]
    assert mean[2] < 0.2 + 1.0 / 3  # it keeps falling: below its last value
    _, new_var = gp.predict([1, 50], x=np.array([0.5, 0.5]))
    assert new_var[1] > var[2]  # a config never run is less known than a curve seen for 3 steps


def test_log_expected_improvement_matches_the_closed_form_and_stays_finite_far_out():
    mean, sd = np.array([0.0, 1.0, 30.0]), np.array([1.0, 0.5, 1.0])
    u = (0.2 - mean) / sd
    from scipy.stats import norm

    ei = sd * (u * norm.cdf(u) + norm.pdf(u))
    got = log_expected_improvement(mean, sd, 0.2)
    assert np.allclose(np.exp(got[:2]), ei[:2], rtol=1e-10)
    assert np.isfinite(got[2]) and got[2] < -400  # EI underflows to 0 there; its log still ranks


def test_scheduler_continues_the_clearly_best_curve_and_pauses_a_hopeless_one():
    space = Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 30))
    # Seven paused curves around 1.0 and two running ones: trial 7 far below them all, trial 8 far above.
    curves = {i: [1.2, 1.1, 1.05, 1.0 + 0.01 * i] for i in range(7)}
    curves[7] = [0.6, 0.4, 0.3, 0.25]
    curves[8] = [2.0, 2.0, 2.0, 2.0]
    for acquisition in ("entropy", "ei"):
        sched = FreezeThawScheduler(space, "loss", acquisition=acquisition, n_initial=3, segment_steps=3)
        h = _history(space, curves)
        running = h.with_trials(tuple(
            t if t.trial_id < 7 else Trial(t.trial_id, t.config, TrialStatus.RUNNING, t.curve) for t in h))
        assert sched.on_segment_end(running, running[7]) is Decision.CONTINUE
        assert sched.on_segment_end(running, running[8]) is Decision.PAUSE


@pytest.mark.parametrize("promote_by", ["value", "forecast"])
def test_promote_thaws_only_the_best_third_of_a_step_best_first_and_its_segments_grow(promote_by):
    space = Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 27))
    # Nine trials paused after one step; trial i's loss 1 + 0.1 i (trials 3..8 behind the best third).
    h = _history(space, {i: [1.0 + 0.1 * i] for i in range(9)})
    sched = FreezeThawScheduler(space, "loss", acquisition="promote", segment_growth=3, promote_by=promote_by,
                                n_initial=3, n_candidates=64)
    if promote_by == "value":
        assert sched.choose_trial_to_run(h) == 0
    else:  # the forecast may reorder the best three, never let another in
        assert sched.choose_trial_to_run(h) in (0, 1, 2)
    running = h.with_trials(tuple(Trial(t.trial_id, t.config, TrialStatus.RUNNING if t.trial_id in (1, 5) else
                                        t.status, t.curve) for t in h))
    assert sched.on_segment_end(running, running[5]) is Decision.PAUSE  # 6th of 9: not in the best 3
    assert [sched.next_stop(h, Trial(0, {}, TrialStatus.PAUSED, tuple((s, {}) for s in range(1, n + 1))))
            for n in (1, 3, 9)] == [3, 9, 27]


def test_searcher_proposes_the_new_config_the_scheduler_planned():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)}, fidelity=Fidelity("epoch", 1, 30))
    curves = {i: [2.0, 1.8, 1.7] for i in range(5)}
    h = _history(space, {i: v for i, v in curves.items()})
    h = h.with_trials(tuple(Trial(t.trial_id, space.complete({"x": 0.1 * t.trial_id, "y": 0.5}), t.status, t.curve)
                            for t in h))
    searcher = FreezeThawSearcher(space, seed=3)
    sched = FreezeThawScheduler(space, "loss", acquisition="ei", n_initial=3)
    tid = sched.choose_trial_to_run(h)
    plan = sched.policy.plan(h, h.paused)
    if tid is None:
        config = searcher.suggest(h)
        assert config == {k: v for k, v in space.decode(plan.config_u).items() if k in space.names}
    # Alone (no freeze-thaw scheduler for its space), the searcher plans with a policy of its own.
    alone = FreezeThawSearcher(Space.from_dict(space.to_dict()), seed=3)
    assert alone.policy(History(alone.space, "loss")) is not sched.policy


def _simulated_sweep(acquisition: str, directory: str, max_cost: float = 90):
    space = Space({"x": Float(-2.0, 2.0)}, fidelity=Fidelity("epoch", 1, 9))
    return hpo.run(
        curve_trainable,
        space,
        metric="loss",
        directory=directory,
        searcher={"name": "freeze_thaw", "n_initial": 3},
        scheduler={"name": "freeze_thaw", "acquisition": acquisition, "n_initial": 3, "segment_steps": 2,
                   "n_candidates": 64, "n_samples": 256},
        max_cost=max_cost,
        executor=SimulatedExecutor(num_workers=3, duration="constant", seed=0),
        display=False,
    )


@pytest.mark.parametrize("acquisition", ["entropy", "ei", "ei_horizon"])
def test_sweep_built_from_the_registry_pauses_thaws_from_checkpoints_and_finishes_trials(acquisition):
    with tempfile.TemporaryDirectory() as d:
        result = _simulated_sweep(acquisition, d)
        with Storage(d, readonly=True) as st:
            events = st.events()
    kinds = [e["kind"] for e in events]
    assert kinds.count("paused") >= 3 and kinds.count("resumed") >= 1
    assert result.history.completed, "some trial trained to the full budget"
    resumed = {e["trial_id"] for e in events if e["kind"] == "resumed"}
    for tid in resumed:
        curve = result.history[tid].curve
        steps = [s for s, _ in curve]
        assert steps == list(range(1, len(steps) + 1))  # one curve, no step lost or repeated across the pause
        assert max(m["resumed_from"] for _, m in curve) > 0  # a resumed segment started from its checkpoint
    best = result.history.best()
    assert abs(best.config["x"] - 0.3) < 0.5


def test_sweep_with_max_trials_budget_reaches_budget_without_error():
    space = Space({"x": Float(-2.0, 2.0)}, fidelity=Fidelity("epoch", 1, 9))
    with tempfile.TemporaryDirectory() as d, Storage(d) as st:
        sched = FreezeThawScheduler(space, "loss", n_initial=2, segment_steps=2)
        history = Orchestrator(
            curve_trainable, space, "loss", "min", FreezeThawSearcher(space, n_initial=2), sched,
            SimulatedExecutor(2, duration="constant"), st, Budget(max_trials=6),
        ).run()
    assert len(history) == 6
    assert all(t.status in (TrialStatus.PAUSED, TrialStatus.COMPLETED) for t in history)


def stepped_trainable(config):
    """``curve_trainable`` that also reports each step as one unit of cost ``steps``, the sweep's budget."""
    state = hpo.get_checkpoint()
    start = state["step"] if state else 0
    for step in range(start + 1, config["epoch"] + 1):
        loss = (config["x"] - 0.3) ** 2 + 1.0 / step
        hpo.report({"loss": loss, "resumed_from": float(start)}, step=step, checkpoint={"step": step},
                   cost={"steps": 1.0})


def test_on_ray_a_paused_trial_frees_its_worker_and_is_thawed_from_its_checkpoint(ray_local):
    # Three configs, three trials, 24 steps = all three trained to 8: every trial the warm-up pauses (the first to
    # report always is) must be thawed for the budget to be spent. With an open space and no trial cap, whether the
    # model thaws a paused trial or prefers new configs depends on the order results arrive on Ray (both can be
    # right), so the test would not say whether thawing works.
    space = Space({"x": Int(0, 2)}, fidelity=Fidelity("epoch", 1, 8))
    with tempfile.TemporaryDirectory() as d:
        result = hpo.run(
            stepped_trainable,
            space,
            metric="loss",
            directory=d,
            searcher={"name": "freeze_thaw", "n_initial": 2},
            scheduler={"name": "freeze_thaw", "acquisition": "ei", "n_initial": 2, "segment_steps": 2,
                       "n_candidates": 64},
            points_to_evaluate=[{"x": 0}, {"x": 1}, {"x": 2}],
            max_trials=3,
            max_cost=24,
            cost_key="steps",
            resources={"num_cpus": 1},
            max_concurrent=2,
            display=False,
        )
        with Storage(d, readonly=True) as st:
            events = st.events()
    starts = [e for e in events if e["kind"] in ("started", "resumed", "continued")]
    ends = [e for e in events if e["kind"] in ("paused", "completed", "segment_ended")]
    assert any(e["kind"] == "resumed" for e in starts)
    assert [t.last_step for t in result.history] == [8, 8, 8]  # the budget was spent by thawing, not lost
    # Never more segments in flight than the two workers: a paused trial holds none.
    in_flight = 0
    for e in sorted(starts + ends, key=lambda e: e["event_id"]):
        in_flight += 1 if e in starts else -1
        assert in_flight <= 2
    thawed = {e["trial_id"] for e in events if e["kind"] == "resumed"}
    for tid in thawed:
        curve = result.history[tid].curve
        assert [s for s, _ in curve] == list(range(1, len(curve) + 1))
        assert max(m["resumed_from"] for _, m in curve) > 0  # the thawed segment loaded its checkpoint
