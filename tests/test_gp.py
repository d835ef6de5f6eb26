"""The GP surrogate: it models what it is given, and survives whatever a sweep gives it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hpo.space import Choice, Float, Int, Space
from hpo.surrogates import gp as gp_module
from hpo.surrogates.gp import GPFallbackWarning, GPSurrogate, impute_failed, warp_targets


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small GPs gain nothing from a second thread, and on a shared 2-core machine its spin-waits cost several
    times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quadratic_data(n: int, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return X, ((X - 0.3) ** 2).sum(1)


def test_gp_interpolates_a_smooth_function_and_is_uncertain_far_from_data():
    X, y = quadratic_data(30)
    gp = GPSurrogate(d=2).fit(X, y)
    rng = np.random.default_rng(1)
    Xq = rng.random((200, 2))
    mu, _ = gp.predict(Xq)
    truth = warp_targets(np.concatenate([y, ((Xq - 0.3) ** 2).sum(1)]), "standardize")[30:]
    # the modelled ranking of unseen points matches the truth's
    assert np.corrcoef(mu, truth)[0, 1] > 0.95
    _, sigma_at_data = gp.predict(X[:5])
    gp_far = GPSurrogate(d=2).fit(X[X[:, 0] < 0.5], y[X[:, 0] < 0.5])
    _, s_near = gp_far.predict(np.array([[0.25, 0.5]]))
    _, s_far = gp_far.predict(np.array([[0.99, 0.5]]))
    assert sigma_at_data.max() < 0.05 and s_far[0] > 3 * s_near[0]


def test_gp_lean_predictions_equal_the_botorch_models_with_categorical_parameters():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "gelu", "tanh"]), "n": Int(1, 8)})
    rng = np.random.default_rng(0)
    X = np.stack([space.encode(space.decode(u)) for u in rng.random((25, 3))])
    y = (X[:, 0] - 0.4) ** 2 + 0.3 * (X[:, 1] > 2 / 3)
    gp = GPSurrogate.for_space(space).fit(X, y)
    Xq = torch.as_tensor(rng.random((7, 3)), dtype=torch.float64)
    mu, sigma = gp.mean_std(Xq)
    post = gp.model.posterior(Xq)
    assert torch.allclose(mu, post.mean.squeeze(-1), atol=1e-8)
    assert torch.allclose(sigma, post.variance.squeeze(-1).sqrt(), atol=1e-8)
    assert gp.choice_dims == {1: 3}


def test_power_warp_is_monotone_standardized_and_tames_a_heavy_tail():
    y = np.array([0.0, 0.1, 0.2, 0.3, 1e6])
    z = warp_targets(y, "power")
    assert np.all(np.diff(z) > 0) and abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    # standardizing alone squeezes the four good points together; the warp keeps them apart
    zs = warp_targets(y, "standardize")
    assert (z[3] - z[0]) > 20 * (zs[3] - zs[0])
    r = warp_targets(y, "rank")
    assert np.all(np.diff(r) > 0)


def test_robust_warp_is_affine_in_the_bulk_and_compresses_only_the_bad_tail():
    y = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 1e6])
    z = warp_targets(y, "robust")
    assert np.all(np.diff(z) > 0) and abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    # within 3 robust standard deviations of the median (and on the whole good side) the map is affine: the
    # differences near the optimum keep their ratios, which a power transform would bend
    slope = (z[1] - z[0]) / (y[1] - y[0])
    assert np.allclose(np.diff(z[:6]) / np.diff(y[:6]), slope)
    # the diverged value is pulled in to a logarithmic distance instead of 1e6 / IQR
    assert (z[6] - z[5]) < 50 * slope


def test_failed_trials_are_imputed_with_the_worst_value_and_steer_the_model_away():
    assert impute_failed(np.array([1.0, np.nan, 3.0, -np.inf]))[0].tolist() == [1.0, 3.0, 3.0, 3.0]
    X, y = quadratic_data(20)
    X = np.vstack([X, [[0.9, 0.9]]])
    y = np.append(y, np.nan)
    gp = GPSurrogate(d=2).fit(X, y)
    assert gp.failed.tolist() == [False] * 20 + [True]
    mu, _ = gp.predict(np.array([[0.9, 0.9], [0.3, 0.3]]))
    assert np.isfinite(mu).all() and mu[0] > mu[1]


@pytest.mark.parametrize(
    "case",
    ["one point", "duplicates", "constant y", "nan and inf", "all failed", "huge values"],
)
def test_gp_survives_degenerate_data(case):
    rng = np.random.default_rng(0)
    if case == "one point":
        X, y = np.array([[0.5, 0.5]]), np.array([3.0])
    elif case == "duplicates":
        X, y = np.repeat([[0.2, 0.7]], 50, axis=0), rng.normal(size=50)
    elif case == "constant y":
        X, y = rng.random((20, 2)), np.full(20, 2.5)
    elif case == "nan and inf":
        X, y = rng.random((20, 2)), rng.normal(size=20)
        y[[1, 5, 9]] = [np.nan, np.inf, -np.inf]
    elif case == "all failed":
        X, y = rng.random((6, 2)), np.full(6, np.nan)
    else:
        X, y = rng.random((20, 2)), rng.normal(size=20) * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error", GPFallbackWarning)  # none of these may need the fallback
        gp = GPSurrogate(d=2).fit(X, y)
    mu, sigma = gp.predict(rng.random((10, 2)))
    assert gp.ok and np.isfinite(mu).all() and np.isfinite(sigma).all() and (sigma > 0).all()
    assert gp.model is not None


def test_gp_falls_back_to_the_prior_mean_with_a_warning_when_cholesky_fails(monkeypatch):
    def broken(self, theta):
        raise torch.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(GPSurrogate, "_condition", broken)
    X, y = quadratic_data(10)
    with pytest.warns(GPFallbackWarning, match="prior-mean"):
        gp = GPSurrogate(d=2).fit(X, y)
    mu, sigma = gp.predict(np.array([[0.1, 0.1], [0.5, 0.5]]))
    assert not gp.ok and gp.model is None
    assert mu.tolist() == [0.0, 0.0] and sigma.tolist() == [1.0, 1.0]


def test_gp_adds_jitter_when_the_kernel_matrix_is_numerically_indefinite(monkeypatch):
    real = torch.linalg.cholesky_ex
    calls = []

    def flaky(A, **kw):
        calls.append(1)
        L, info = real(A, **kw)
        return (L, torch.ones_like(info)) if len(calls) == 1 else (L, info)

    X, y = quadratic_data(10)
    gp = GPSurrogate(d=2).fit(X, y)
    monkeypatch.setattr(torch.linalg, "cholesky_ex", flaky)
    gp.always_refit_below = 0  # condition on the new data with the fitted hyperparameters, no refit
    gp.fit(X, y)
    assert gp.ok and len(calls) == 2


def test_refits_are_warm_started_and_skipped_between_growth_steps():
    X, y = quadratic_data(130)
    gp = GPSurrogate(d=2, always_refit_below=100, refit_growth=0.1)
    gp.fit(X[:100], y[:100])
    assert gp.refitted and gp.n_at_fit == 100
    gp.fit(X[:105], y[:105])
    assert not gp.refitted and gp.X.shape[0] == 105  # conditioned on the new points, same hyperparameters
    gp.fit(X[:110], y[:110])
    assert gp.refitted and gp.n_at_fit == 110


def test_kriging_believer_collapses_variance_at_pending_points_and_keeps_the_mean():
    X, y = quadratic_data(15)
    gp = GPSurrogate(d=2).fit(X, y)
    Xp = np.array([[0.9, 0.1], [0.1, 0.9]])
    kb = gp.believer(Xp)
    mu0, s0 = gp.predict(Xp)
    mu1, s1 = kb.predict(Xp)
    Xq = np.random.default_rng(3).random((50, 2))
    assert np.allclose(gp.predict(Xq)[0], kb.predict(Xq)[0], atol=1e-6)
    # a believed observation leaves at most the noise's uncertainty: sigma1^2 = sigma0^2 s2 / (sigma0^2 + s2) <= s2
    noise = gp.hyperparameters["noise"]
    assert np.allclose(mu0, mu1, atol=1e-6) and (s1 < s0).all() and (s1 <= 1.05 * np.sqrt(noise)).all()


def test_maximize_finds_the_minimum_of_the_posterior_mean():
    X, y = quadratic_data(25)
    gp = GPSurrogate(d=2).fit(X, y)
    x, _ = gp.maximize(lambda Z: -gp.mean(Z).squeeze(-1), np.random.default_rng(0))
    assert np.abs(x - 0.3).max() < 0.03


def test_warm_start_is_a_module_level_seam_for_other_surrogates():
    # freeze-thaw and CARBS build on these names; keep them importable
    for name in ("GPSurrogate", "ChoiceKernel", "warp_targets", "impute_failed", "build_covar_module", "DTYPE"):
        assert hasattr(gp_module, name)
