"""CARBS' surrogate models: performance, log cost, success probability, and the Pareto value as a function of cost.

Fetterman et al., "Tune As You Scale: Hyperparameter Optimization For Compute Efficient Training" (2023), Sec. 3.2,
and the reference implementation (imbue-ai/carbs, ``carbs/model.py``). All four models are GPyTorch exact GPs
(BoTorch ``SingleTaskGP``); only how their hyperparameters are set differs between the two modes.

Notation
--------
- ``n``: successful observations; ``N``: finished trials (successes and failures); ``m``: pending suggestions;
  ``q``: candidates.
- ``D``: GP input dimension (CARBS' basic coordinates as the searcher hands them over, one-hot categoricals
  included).
- ``Z``: GP inputs, ``Z (n, D)``, ``Z_outcome (N, D)``, ``Z_pending (m, D)``, ``Zq (q, D)``.
- ``y``: objectives, ``(n,)``, lower is better (the History sign).
- ``g``: goodness, ``(n,)``: the quantile-normal transform of ``-y``, higher is better. Every performance
  quantity (the Pareto value ``tau``, EI) lives in ``g`` units.
- ``c``: costs, ``(n,)``, positive; ``ell = log c`` scaled (min-max to ``[-1, 1]`` in the reference, standardized
  otherwise).
- ``p``: probability that a run succeeds (does not fail or diverge), ``(q,)``.

The two modes
-------------
``reference`` reproduces the reference's models in effect: a Linear + Matern-3/2 kernel with lengthscale equal to
the search radius (0.3) and unit variances, noise 0.01, jitter 1e-4. The reference "trains" them with 1000 Adam
steps at learning rate 1e-4 (pyro's ``gp.util.train``), which moves no hyperparameter by more than about 10 %, so
fixed hyperparameters reproduce it while skipping those 1000 steps per model (most of its 9 to 10 s per suggestion).
Its success model is a GP regression on labels -1 (success) / +1 (failure) read as ``Normal(mu, var).cdf(0)``
(variance in the place of the scale, as the reference does).

``carbs`` (ours) fits the hyperparameters by maximum marginal likelihood (L-BFGS, BoTorch's dimension-scaled
lengthscale prior, a linear mean so that the models extrapolate trends such as "bigger costs more and does better"),
and reads the success probability as ``Phi(mu / sigma)`` of a GP on labels +1 / -1. Fitting is the only expensive
step (``O(n^3)`` per marginal-likelihood evaluation, ~50 evaluations); the searcher refits on a geometric schedule of
the observation count and reuses the hyperparameters in between (see :class:`HyperCache`), so most suggestions cost
one Cholesky factorization per model.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.kernels import LinearKernel, MaternKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean, LinearMean, ZeroMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from scipy.special import ndtr, ndtri

__all__ = [
    "CARBSSurrogate",
    "HyperCache",
    "Prediction",
    "QuantileNormal",
    "expected_improvement",
    "log_expected_hypervolume_improvement",
    "log_expected_improvement",
]

_DTYPE = torch.float64
# sklearn's QuantileTransformer clips at these probabilities, so the reference's extremes sit at +-5.2
_REF_CLIP = 1e-7


# --------------------------------------------------------------------------------------------------------------
# Output transform
# --------------------------------------------------------------------------------------------------------------


class QuantileNormal:
    """Piecewise-linear map from values to standard-normal scores through ``K = max(2, floor(sqrt(n)))`` quantiles.

    Knots: the empirical quantiles ``Q_j`` of the fitted values at levels ``j / (K - 1)``; a value ``v`` gets the
    level ``u(v)`` by linear interpolation between knots, and the score ``Phi^-1(u)``. Fewer knots than points keep
    distances within a knot interval (the reference's comment: "preserves more distance information"), and ranks
    make the model immune to outliers such as a half-diverged run.

    ``tails="reference"`` maps levels 0 and 1 to ``Phi^-1(1e-7) = -5.2`` and ``+5.2`` as sklearn does (the best
    observation sits five standard deviations out); ``tails="soft"`` maps level ``u`` to ``(u (K - 1) + 1/2) / K``
    so the extremes sit at ``Phi^-1(1 / 2K)`` (about +-1.8 for 200 points) and the top points do not dominate the GP.

    Example:
        >>> t = QuantileNormal("soft").fit(np.array([1.0, 2.0, 3.0, 4.0]))
        >>> bool(t.transform(np.array([4.0]))[0] > t.transform(np.array([1.0]))[0])
        True
    """

    def __init__(self, tails: str = "soft") -> None:
        if tails not in ("soft", "reference"):
            raise ValueError(f"tails must be 'soft' or 'reference', got {tails!r}")
        self.tails = tails
        self.knots = np.zeros(2)
        self.levels = np.array([0.0, 1.0])

    def fit(self, v: np.ndarray) -> QuantileNormal:
        v = np.asarray(v, dtype=float)
        k = max(2, int(math.sqrt(len(v))))
        self.levels = np.linspace(0.0, 1.0, k)
        self.knots = np.quantile(v, self.levels) if len(v) else np.zeros(k)
        return self

    def _u(self, v: np.ndarray) -> np.ndarray:
        # Repeated knots (ties) make interp ambiguous; averaging the forward and backward interpolation as sklearn
        # does puts tied values at the middle of their levels.
        fwd = np.interp(v, self.knots, self.levels)
        bwd = -np.interp(-v, -self.knots[::-1], -self.levels[::-1])
        return 0.5 * (fwd + bwd)

    def _clip(self, u: np.ndarray) -> np.ndarray:
        if self.tails == "reference":
            return np.clip(u, _REF_CLIP, 1 - _REF_CLIP)
        k = len(self.levels)
        return (u * (k - 1) + 0.5) / k

    def transform(self, v: np.ndarray) -> np.ndarray:
        return ndtri(self._clip(self._u(np.asarray(v, dtype=float))))

    def inverse(self, s: np.ndarray) -> np.ndarray:
        """Scores back to values (clamped to the fitted range)."""
        p = ndtr(np.asarray(s, dtype=float))
        k = len(self.levels)
        u = p if self.tails == "reference" else (p * k - 0.5) / (k - 1)
        return np.interp(np.clip(u, 0.0, 1.0), self.levels, self.knots)


# --------------------------------------------------------------------------------------------------------------
# Expected improvement
# --------------------------------------------------------------------------------------------------------------


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """``EI = sigma (phi(z) + z Phi(z))`` with ``z = (mu - best - bias) / sigma`` (maximization).

    The reference's ``exploration_bias`` raises the bar ``best`` by ``bias`` (in ``g`` units), which favours
    uncertain candidates. It underflows to 0 for ``z`` below about -38; :func:`log_expected_improvement` does not.
    """
    z = (mu - best - bias) / sigma
    return sigma * (np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) + z * ndtr(z))


def log_expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """``log EI``, accurate where EI underflows (BoTorch's LogEI helper, Ament et al., NeurIPS 2023), so that the
    argmax of ``log EI + log prior + log p`` never degenerates into a tie of zeros."""
    from botorch.acquisition.analytic import _log_ei_helper

    z = torch.as_tensor((mu - best - bias) / sigma, dtype=_DTYPE)
    return _log_ei_helper(z).numpy() + np.log(sigma)


def log_expected_hypervolume_improvement(
    mu: np.ndarray,
    sigma: np.ndarray,
    ell: np.ndarray,
    front_ell: np.ndarray,
    front_g: np.ndarray,
    g_ref: float,
    ell_ref: float,
    bias: float = 0.0,
) -> np.ndarray:
    """``log E[HVI]``: the expected area a candidate adds to the region of (scaled log cost, goodness) that the
    front dominates (ours; the reference scores EI over the Pareto value at the candidate's cost only).

    A candidate at cost ``ell`` with goodness ``g ~ N(mu, sigma^2)`` dominates every dearer cost up to ``ell_ref``,
    so it adds ``int_ell^ell_ref (g - G(e))^+ de``, where ``G(e)`` is the best front goodness at cost ``<= e``
    (``g_ref`` below the cheapest member). ``G`` is a step function, so the expectation is a sum of EIs, one per
    step, weighted by the step's width beyond ``ell``: ``sum_j w_j EI(mu, sigma; G_j)``. Unlike EI at ``ell`` alone,
    a small gain at a cheap cost that the next member nearly matches is worth little, and a cost gap in the front
    (a cheap member, then nothing up to a dear one) is worth filling in.

    Args:
        mu, sigma, ell: ``(q,)`` the candidates' goodness mean and std and predicted scaled log cost.
        front_ell, front_g: ``(m,)`` the front members' scaled log costs and goodness.
        g_ref, ell_ref: the reference point: goodness counted from, and the dearest cost counted up to
            (``> ell``).
        bias: EI's exploration bias.

    Example:
        >>> mu, sd = np.array([1.0, 1.0]), np.array([0.1, 0.1])
        >>> a = log_expected_hypervolume_improvement(mu, sd, np.array([0.0, 1.5]), np.array([-1.0, 1.0]),
        ...                                          np.array([0.0, 0.9]), -1.0, 2.0)
        >>> bool(a[0] > a[1])  # cheaper: beats the first member's 0.0 up to cost 1, then the second's 0.9
        True
    """
    order = np.argsort(front_ell, kind="stable")
    fe = np.asarray(front_ell, dtype=float)[order]
    levels = np.concatenate([[g_ref], np.maximum.accumulate(np.asarray(front_g, dtype=float)[order])])  # (m + 1,)
    starts = np.concatenate([[-np.inf], fe])
    ends = np.concatenate([fe, [ell_ref]])
    ell = np.asarray(ell, dtype=float)
    w = np.clip(ends[None, :] - np.maximum(ell[:, None], starts[None, :]), 0.0, None)  # (q, m + 1)
    log_ei = log_expected_improvement(
        np.asarray(mu, dtype=float)[:, None], np.asarray(sigma, dtype=float)[:, None], levels[None, :], bias
    )
    with np.errstate(divide="ignore"):
        terms = np.log(w) + log_ei
    top = terms.max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (top + np.log(np.exp(terms - top).sum(1, keepdims=True)))[:, 0]


# --------------------------------------------------------------------------------------------------------------
# GP construction, fitting and the hyperparameter cache
# --------------------------------------------------------------------------------------------------------------


class HyperCache:
    """Fitted GP hyperparameters (state dicts) by a key of the data they were fitted on; least recently used out.

    A suggestion stays a pure function of ``(space, history, seed)``: the key holds the fitting data themselves, so
    a cached state is exactly what a fresh fit on the same data would return.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._d: OrderedDict[Hashable, dict[str, torch.Tensor]] = OrderedDict()

    def get_or_fit(self, key: Hashable, fit: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        state = fit()
        self._d[key] = state
        while len(self._d) > self.size:
            self._d.popitem(last=False)
        return state


def data_key(*arrays: np.ndarray) -> tuple[Any, ...]:
    """A hashable key of arrays' shapes and exact bytes."""
    return tuple((a.shape, np.ascontiguousarray(a, dtype=float).tobytes()) for a in arrays)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=float), dtype=_DTYPE)


def _reference_gp(Z: np.ndarray, v: np.ndarray, radius: float) -> SingleTaskGP:
    """The reference's ``SurrogateModel._get_model``: Linear(variance 1) + Matern-3/2(lengthscale = radius,
    variance 1), Gaussian noise 0.01 (the median of its LogNormal(log 1e-2, 0.5) prior) plus jitter 1e-4, zero mean,
    hyperparameters held fixed (see the module docstring)."""
    d = Z.shape[1]
    matern = MaternKernel(nu=1.5, ard_num_dims=d)
    matern.lengthscale = torch.full((1, d), float(radius), dtype=_DTYPE)
    covar = LinearKernel() + matern
    covar.kernels[0].variance = torch.tensor(1.0, dtype=_DTYPE)
    lik = GaussianLikelihood()
    lik.noise = torch.tensor(1e-2 + 1e-4, dtype=_DTYPE)
    model = SingleTaskGP(
        _t(Z), _t(v)[:, None], likelihood=lik, covar_module=covar, mean_module=ZeroMean(), outcome_transform=None
    )
    return model.to(_DTYPE)


def _fitted_gp(Z: np.ndarray, v: np.ndarray, state: dict[str, torch.Tensor] | None, linear_mean: bool) -> SingleTaskGP:
    """BoTorch's default ``SingleTaskGP`` (RBF ARD kernel with the dimension-scaled LogNormal lengthscale prior of
    Hvarfner et al. 2024, LogNormal noise prior) with a linear or constant mean, loading ``state`` when given."""
    d = Z.shape[1]
    mean = LinearMean(d) if linear_mean else ConstantMean()
    model = SingleTaskGP(_t(Z), _t(v)[:, None], mean_module=mean, outcome_transform=None).to(_DTYPE)
    if linear_mean:  # gpytorch draws LinearMean's initial weights from the global RNG; start from a flat mean
        model.mean_module.weights.data.zero_()
        model.mean_module.bias.data.fill_(float(np.mean(v)) if len(v) else 0.0)
    if state is not None:
        model.load_state_dict(state, strict=False)
    return model


def fit_hyperparameters(model: SingleTaskGP, maxiter: int = 50) -> dict[str, torch.Tensor]:
    """Maximize the marginal likelihood (L-BFGS-B through BoTorch's scipy wrapper) and return the state dict.

    A failed fit (Cholesky error, non-finite values) keeps the initial hyperparameters with a warning: a sweep
    never dies of a numerical accident.
    """
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    model.train()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll_scipy(mll, options={"maxiter": maxiter})
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise ValueError("non-finite hyperparameters")
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    except Exception as e:  # numerical failure: fall back to the prior's defaults, never crash a sweep
        warnings.warn(f"CARBS: GP hyperparameter fit failed ({e}); using default hyperparameters", stacklevel=2)
        state = init
    model.eval()
    return state


def _posterior(model: SingleTaskGP, Zq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent (noiseless) posterior mean and variance at ``Zq (q, D)``."""
    model.eval()
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False), gpytorch.settings.cholesky_max_tries(6):
        post = model.posterior(_t(Zq))
        mu = post.mean.squeeze(-1).numpy()
        var = post.variance.squeeze(-1).clamp_min(1e-12).numpy()
    return mu, var


def _joint_sample(model: SingleTaskGP, Zp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One joint draw of the latent function at ``Zp (m, D)`` (a Thompson fantasy), from the seeded ``rng``."""
    model.eval()
    with torch.no_grad():
        post = model.posterior(_t(Zp))
        mu = post.mean.squeeze(-1).numpy()
        cov = post.distribution.covariance_matrix.numpy()
    cov = 0.5 * (cov + cov.T)
    jitter = 1e-9 * max(float(np.mean(np.diag(cov))), 1e-12)
    for _ in range(6):
        try:
            chol = np.linalg.cholesky(cov + jitter * np.eye(len(cov)))
            break
        except np.linalg.LinAlgError:
            jitter *= 100
    else:
        chol = np.diag(np.sqrt(np.clip(np.diag(cov), 0, None)))
    return mu + chol @ rng.standard_normal(len(mu))


# --------------------------------------------------------------------------------------------------------------
# The four models together
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """The surrogates at ``q`` candidates.

    Attributes:
        g_mean, g_std: performance posterior (goodness units, latent, pending fantasies included), ``(q,)``.
        log_cost: predicted log cost (natural log, in the cost's units), ``(q,)``.
        p_success: probability that the run succeeds, ``(q,)``.
        tau: the Pareto value (goodness) at the predicted cost, ``(q,)``.
    """

    g_mean: np.ndarray
    g_std: np.ndarray
    log_cost: np.ndarray
    p_success: np.ndarray
    tau: np.ndarray


class CARBSSurrogate:
    """Performance, log-cost, success and Pareto-value GPs for one suggestion.

    Args:
        mode: ``"carbs"`` (fitted hyperparameters) or ``"reference"`` (the reference's fixed ones).
        radius: the reference's Matern lengthscale (its search radius, in GP input units).
        cache: fitted hyperparameters by data, shared across suggestions.

    Call :meth:`fit` with the data, then :meth:`predict`. ``fit_rows`` (the number of leading observations the
    hyperparameters are fitted on) lets the searcher refit only on a schedule; the posterior always conditions on
    every observation.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.random((12, 2)); y = ((Z - 0.3) ** 2).sum(1); c = np.exp(2 * Z[:, 0])
        >>> s = CARBSSurrogate("carbs").fit(Z, y, c, np.zeros((0, 2)), rng)
        >>> s.predict(np.array([[0.3, 0.3], [0.9, 0.9]])).g_mean.argmax()
        np.int64(0)
    """

    def __init__(self, mode: str = "carbs", radius: float = 0.3, cache: HyperCache | None = None) -> None:
        if mode not in ("carbs", "reference"):
            raise ValueError(f"mode must be 'carbs' or 'reference', got {mode!r}")
        self.mode, self.radius = mode, float(radius)
        self.cache = cache if cache is not None else HyperCache()
        self._ref = mode == "reference"

    # -- transforms ---------------------------------------------------------------------------------------------

    def _goodness_of(self, y: np.ndarray) -> np.ndarray:
        """``g`` of ``y`` under a transform fitted on ``y`` itself (ours: then standardized, as BoTorch's default
        kernel has no output scale and expects unit variance)."""
        t = QuantileNormal("reference" if self._ref else "soft").fit(-y)
        g = t.transform(-y)
        return g if self._ref else (g - g.mean()) / max(g.std(), 1e-6)

    def goodness(self, y: np.ndarray) -> np.ndarray:
        """Objectives -> goodness under the fitted transform."""
        return (self.transform.transform(-np.asarray(y, dtype=float)) - self._g_shift) / self._g_scale

    def _fit_cost_transform(self, c: np.ndarray) -> None:
        lc = np.log(c)
        if self._ref:  # min-max of log cost to [-1, 1] (the reference's MinMaxScaler)
            lo, hi = lc.min(), lc.max()
            self._c_shift, self._c_scale = 0.5 * (lo + hi), max(0.5 * (hi - lo), 1e-12)
        else:
            self._c_shift, self._c_scale = lc.mean(), max(lc.std(), 1e-6)

    def ell(self, c: np.ndarray) -> np.ndarray:
        """Costs -> scaled log costs."""
        return self.ell_of_log_cost(np.log(c))

    def ell_of_log_cost(self, log_c: np.ndarray) -> np.ndarray:
        """Log costs (such as :attr:`Prediction.log_cost`) -> scaled log costs."""
        return (log_c - self._c_shift) / self._c_scale

    def cost_from_ell(self, e: np.ndarray) -> np.ndarray:
        return np.exp(e * self._c_scale + self._c_shift)

    # -- fitting ------------------------------------------------------------------------------------------------

    def _model(
        self,
        Z: np.ndarray,
        v: np.ndarray,
        kind: str,
        linear_mean: bool,
        fit_on: tuple[np.ndarray, ...] | None = None,
        fit_v: np.ndarray | None = None,
    ) -> SingleTaskGP:
        """A GP on ``(Z, v)``; ours with hyperparameters fitted on ``(Z[:k], fit_v)`` where ``fit_on`` holds the
        raw data those came from (the cache key)."""
        if self._ref:
            return _reference_gp(Z, v, self.radius)
        k = len(fit_v) if fit_v is not None else len(Z)
        fv = fit_v if fit_v is not None else v

        def fit() -> dict[str, torch.Tensor]:
            return fit_hyperparameters(_fitted_gp(Z[:k], fv, None, linear_mean))

        key = (kind, *data_key(Z[:k], *(fit_on if fit_on is not None else (fv,))))
        return _fitted_gp(Z, v, self.cache.get_or_fit(key, fit), linear_mean)

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        c: np.ndarray,
        Z_pending: np.ndarray,
        rng: np.random.Generator,
        Z_outcome: np.ndarray | None = None,
        succeeded: np.ndarray | None = None,
        fit_rows: int | None = None,
        outcome_fit_rows: int | None = None,
    ) -> CARBSSurrogate:
        """Fit on ``n >= 1`` successes ``(Z, y, c)`` (in trial order) and pending points ``Z_pending``.

        Args:
            Z_outcome, succeeded: every finished trial's input ``(N, D)`` and whether it succeeded ``(N,)``, in
                trial order, for the success model (fitted only when both outcomes occur).
            fit_rows, outcome_fit_rows: fit hyperparameters on the first rows only (ours; see
                :class:`HyperCache`). The transforms of a fit are those of its own rows, so the fitted state depends
                on those rows alone and later observations do not invalidate the cache.

        Pending points get Thompson fantasies: one joint posterior draw of ``g`` at ``Z_pending`` is added to the
        performance model's data (hyperparameters unchanged), so candidates near work in flight lose their
        uncertainty bonus (the reference's ``OutstandingSuggestionEstimatorEnum.THOMPSON``).
        """
        n = len(Z)
        k = n if fit_rows is None else min(max(int(fit_rows), 1), n)
        self.transform = QuantileNormal("reference" if self._ref else "soft").fit(-y)
        raw = self.transform.transform(-y)
        self._g_shift, self._g_scale = (0.0, 1.0) if self._ref else (raw.mean(), max(raw.std(), 1e-6))
        g = self.goodness(y)
        self._fit_cost_transform(c)
        e = self.ell(c)
        g_k = self._goodness_of(y[:k])
        lc_k = np.log(c[:k])
        e_k = (lc_k - lc_k.mean()) / max(lc_k.std(), 1e-6)
        self.perf = self._model(Z, g, "perf", True, fit_on=(y[:k],), fit_v=g_k)
        self.cost = self._model(Z, e, "cost", True, fit_on=(c[:k],), fit_v=e_k)
        if len(Z_pending):
            fantasy = _joint_sample(self.perf, Z_pending, rng)
            Zf, gf = np.vstack([Z, Z_pending]), np.concatenate([g, fantasy])
            if self._ref:
                self.perf = _reference_gp(Zf, gf, self.radius)
            else:
                self.perf = _fitted_gp(Zf, gf, self.perf.state_dict(), linear_mean=True)
        self.success = None
        if Z_outcome is not None and succeeded is not None and 0 < int(np.sum(succeeded)) < len(succeeded):
            ok = np.asarray(succeeded, dtype=bool)
            # reference: -1 success / +1 failure read as Normal(mu, var).cdf(0); ours: +1 / -1 read as Phi(mu / sd)
            labels = np.where(ok, -1.0, 1.0) if self._ref else np.where(ok, 1.0, -1.0)
            m = len(ok) if outcome_fit_rows is None else min(max(int(outcome_fit_rows), 1), len(ok))
            if self._ref or 0 < int(ok[:m].sum()) < m:
                self.success = self._model(Z_outcome, labels, "success", False, fit_v=labels[:m])
            else:  # the fitting rows hold one outcome only: fit on all rows
                self.success = self._model(Z_outcome, labels, "success", False)
        self._g = g
        return self

    def fit_pareto(self, c_pareto: np.ndarray, y_pareto: np.ndarray) -> None:
        """The Pareto value ``tau(ell)``: a 1-d GP from scaled log cost to goodness over the Pareto members, RBF
        kernel with unit lengthscale (the reference's ``fit_pareto_set``; ours adds a constant mean at the members'
        average so that it does not sag towards 0 between members). Fixed hyperparameters: the members are few and
        change with every observation, so fitting them would cost more than it tells."""
        e = self.ell(c_pareto)
        g = self.goodness(y_pareto)
        self._e_lo, self._e_hi = float(e.min()), float(e.max())
        mean = ZeroMean() if self._ref else ConstantMean()
        lik = GaussianLikelihood()
        lik.noise = torch.tensor(1e-2 + 1e-4, dtype=_DTYPE)
        kernel = ScaleKernel(RBFKernel())
        kernel.outputscale = torch.tensor(1.0, dtype=_DTYPE)
        kernel.base_kernel.lengthscale = torch.tensor(1.0, dtype=_DTYPE)
        model = SingleTaskGP(
            _t(e)[:, None],
            _t(g)[:, None],
            likelihood=lik,
            covar_module=kernel,
            mean_module=mean,
            outcome_transform=None,
        ).to(_DTYPE)
        if not self._ref:
            model.mean_module.constant.data.fill_(float(g.mean()))
        self.pareto = model

    def pareto_value(self, ell: np.ndarray) -> np.ndarray:
        """``tau`` at scaled log costs, clamped to the Pareto members' cost range as the reference does."""
        e = np.clip(np.asarray(ell, dtype=float), self._e_lo, self._e_hi)
        mu, _ = _posterior(self.pareto, e[:, None])
        return mu

    # -- prediction ---------------------------------------------------------------------------------------------

    def predict(self, Zq: np.ndarray) -> Prediction:
        g_mean, g_var = _posterior(self.perf, Zq)
        e_mean, _ = _posterior(self.cost, Zq)
        if self.success is None:
            p = np.ones(len(Zq))
        else:
            s_mean, s_var = _posterior(self.success, Zq)
            # The reference passes the variance as the normal's scale; kept for faithfulness.
            p = ndtr(-s_mean / s_var) if self._ref else ndtr(s_mean / np.sqrt(s_var))
        tau = self.pareto_value(e_mean) if hasattr(self, "pareto") else np.full(len(Zq), self._g.max())
        log_cost = e_mean * self._c_scale + self._c_shift
        return Prediction(g_mean, np.sqrt(g_var), log_cost, p, tau)
