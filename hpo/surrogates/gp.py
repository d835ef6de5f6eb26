"""The standard GP surrogate: Matern-5/2 ARD on the unit cube, robustly warped outputs, warm-started fits.

Notation
--------
- ``n``: observations; ``d``: searched parameters (one unit-cube coordinate each, see :mod:`hpo.space`);
  ``m``: pending points; ``b``: query points.
- ``X``: ``(n, d)`` encoded configs in ``[0, 1]^d``. ``y``: ``(n,)`` objectives, signed so that lower is better
  (:meth:`hpo.history.History.observations`); NaN or +-inf marks a failed trial.
- ``z``: ``(n,)`` the modelled targets: ``y`` with failures imputed, warped and standardized. Lower is better, and
  every number this module returns (posterior mean ``mu``, standard deviation ``sigma``, best value ``z_best``) is in
  ``z`` units. The warp is monotone, so argmins and Pareto sets in ``z`` are those of ``y``.
- ``theta``: GP hyperparameters: lengthscales ``ell`` (one per parameter), noise variance ``s2``, constant mean ``c``.

Model
-----
``f ~ GP(c, k)``, ``z_i = f(x_i) + e_i``, ``e_i ~ N(0, s2)``, with

    k(x, x') = k_M52(x_C, x'_C) * k_H(x_K, x'_K)

over the continuous and integer coordinates ``C`` and the categorical (:class:`~hpo.space.Choice`) coordinates
``K``. ``k_M52(r) = (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`` with ``r^2 = sum_j (x_j - x'_j)^2 / ell_j^2`` (ARD), and
``k_H`` is a Hamming kernel on the choice indices (:class:`ChoiceKernel`). There is no output scale: ``z`` is
standardized, as in BoTorch's defaults. Priors are BoTorch's (Hvarfner, Hellsten, Nardi, "Vanilla Bayesian
Optimization Performs Great in High Dimensions", ICML 2024): ``ell_j ~ LogNormal(sqrt2 + log(d)/2, sqrt3)``, which
scales lengthscales with ``sqrt(d)`` so that high-dimensional models do not start out overly wiggly, and
``s2 ~ LogNormal(-4, 1)``. The model is BoTorch's :class:`~botorch.models.SingleTaskGP` in double precision, so
every BoTorch acquisition function and the pathwise (Matheron) samplers work on it.

Robustness (a sweep never dies of a numerical accident)
--------------------------------------------------------
- Failed trials (NaN, +-inf) are imputed with the worst finite ``y``: the search learns to avoid the region
  without one absurd value dominating the standardization.
- Heavy tails: ``warp="power"`` (default) centres ``y`` on its median, scales it by its interquartile range,
  compresses the bad tail beyond 3 logarithmically, then applies a Yeo-Johnson power transform with its
  maximum-likelihood ``lambda`` (clipped to ``[-2, 2]``), as HEBO does (Cowen-Rivers et al., JAIR 2022); a loss
  that explodes for bad configs no longer flattens the model near the optimum. ``"robust"`` is the same without the
  power transform (affine within 3 robust standard deviations and on the whole good side, so the differences near the
  optimum keep their ratios); ``"rank"`` (a Gaussian copula, ``z = Phi^-1((rank + 1/2) / n)``) and ``"standardize"``
  are the other alternatives.
- Constant ``y`` (or one point) gives ``z = 0``: the GP is then its prior, which is what we know.
- Duplicated inputs are fine: the noise variance is kept ``>= 1e-6``.
- A failed Cholesky is retried with jitter ``1e-8 .. 1e-4`` (as GPyTorch's ``psd_safe_cholesky``), then the fit is
  retried from the priors' modes, then with a noise floor of ``1e-3``; if that fails too, :attr:`GPSurrogate.ok` is
  False and :attr:`GPSurrogate.model` None (the prior-mean model: constant mean, unit variance everywhere) and a
  :class:`GPFallbackWarning` says so. Searchers then suggest space-filling
  points until the next fit succeeds.

Cost
----
An exact fit costs one Cholesky of the ``n x n`` kernel matrix per L-BFGS-B step, ``n^3 / 3`` flops (4e7 at
``n = 500``), plus the kernel and its gradient. The log marginal likelihood is written directly in torch (the
kernel's squared distances as one matrix product), which at these ``n`` is several times cheaper than going through
GPyTorch's modules; the fitted ``theta`` is then loaded into the BoTorch model. Refits are warm-started from the
previous ``theta`` (at most 30 iterations; 200 from the priors' modes), and beyond ``always_refit_below``
observations ``theta`` is refitted only when ``n`` has grown by ``refit_growth`` since the last fit; in between,
the GP is conditioned on the new data with the previous ``theta`` (one Cholesky). Predictions for acquisition
optimization use the cached Cholesky factor and ``alpha = (K + s2 I)^-1 (z - c)``: ``O(n d)`` per mean,
``O(n^2)`` per variance.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.exceptions.warnings import InputDataWarning, OptimizationWarning
from botorch.models import SingleTaskGP
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from botorch.optim import optimize_acqf
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel, ProductKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.priors import LogNormalPrior
from scipy import stats
from torch import Tensor

from hpo.space import Choice, Space

__all__ = [
    "DTYPE",
    "ChoiceKernel",
    "GPFallbackWarning",
    "GPSurrogate",
    "impute_failed",
    "warp_targets",
]

DTYPE = torch.float64
MIN_NOISE = 1e-6
_FALLBACK_NOISE = 1e-3
_SQRT2, _SQRT3 = math.sqrt(2.0), math.sqrt(3.0)


class GPFallbackWarning(RuntimeWarning):
    """The GP could not be fitted (e.g. a Cholesky failure) and fell back to its prior."""


# -- targets ---------------------------------------------------------------------------------------------------


def impute_failed(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace non-finite objectives (failed trials) by the worst finite one.

    Returns ``(y_imputed, failed)`` with ``failed`` the boolean mask of imputed entries. With no finite value at all
    every entry becomes 0 (nothing is known; the GP stays at its prior).

    Example:
        >>> impute_failed(np.array([1.0, np.nan, 3.0, np.inf]))[0].tolist()
        [1.0, 3.0, 3.0, 3.0]
    """
    y = np.asarray(y, dtype=float).copy()
    failed = ~np.isfinite(y)
    if failed.all():
        return np.zeros_like(y), failed
    y[failed] = y[~failed].max()
    return y, failed


def _robust_scale(y: np.ndarray, std: float, c: float = 3.0) -> np.ndarray:
    """Centre on the median, scale by the interquartile range (as a normal's standard deviation, IQR / 1.349), and
    compress the bad tail beyond ``c`` logarithmically, ``u -> c + log(1 + u - c)``: one diverged run with a finite
    loss of 1e6 must not squeeze every good run into one value. The good tail is left alone."""
    q25, q50, q75 = np.percentile(y, [25, 50, 75])
    scale = (q75 - q25) / 1.349
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(q50)):
        scale = std
    u = (y - q50) / scale
    tail = u > c
    u[tail] = c + np.log1p(u[tail] - c)
    return u


def warp_targets(y: np.ndarray, warp: str = "power") -> np.ndarray:
    """Finite objectives ``y (n,)`` -> standardized, monotonically warped targets ``z (n,)``.

    ``warp``: ``"power"`` (robust scaling, Yeo-Johnson, then standardized again), ``"robust"`` (robust scaling
    with the bad tail compressed, then standardized), ``"rank"`` (Gaussian
    copula of the ranks; ties share their mean rank) or ``"standardize"``. Constant input gives zeros.

    Example:
        >>> z = warp_targets(np.array([0.0, 1.0, 2.0, 1000.0]))
        >>> bool(np.all(np.diff(z) > 0)), abs(round(float(z.mean()), 6)), round(float(z.std()), 6)
        (True, 0.0, 1.0)
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return y.copy()
    std = y.std()
    if not np.isfinite(std) or std <= 1e-12 * max(1.0, np.abs(y).max()):
        return np.zeros_like(y)
    if warp == "rank":
        ranks = stats.rankdata(y)  # 1..n, ties averaged
        z = stats.norm.ppf((ranks - 0.5) / y.size)
    elif warp == "power":
        ys = _robust_scale(y, std)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lam = float(stats.yeojohnson_normmax(ys))
            lam = float(np.clip(lam, -2.0, 2.0)) if np.isfinite(lam) else 1.0
        except (ValueError, FloatingPointError, RuntimeError):
            lam = 1.0
        z = stats.yeojohnson(ys, lmbda=lam)
    elif warp == "robust":
        z = _robust_scale(y, std)
    elif warp == "standardize":
        z = y
    else:
        raise ValueError(f"unknown warp {warp!r}; use 'robust', 'power', 'rank' or 'standardize'")
    z = np.asarray(z, dtype=float)
    zs = z.std()
    if not np.isfinite(zs) or zs <= 1e-12:
        return np.zeros_like(y)
    return (z - z.mean()) / zs


# -- kernels ---------------------------------------------------------------------------------------------------


class ChoiceKernel(Kernel):
    """Hamming-distance kernel for categorical parameters encoded as one unit-cube coordinate with ``k`` bins.

    ``k(x, x') = exp(-sum_j [c_j(x) != c_j(x')] / ell_j)`` with the choice index ``c_j(u) = min(floor(u k_j),
    k_j - 1)`` (:class:`hpo.space.Choice` encodes choice ``i`` to the bin ``[i/k, (i+1)/k)``). It is positive
    definite (a product over parameters of ``exp(-[c != c']/ell)``, each a valid kernel on a finite set) and
    treats all pairs of distinct choices as equally far apart, as Optuna's GP and CoCaBO do. Its gradient in ``x``
    is zero: optimizers change choices only through their random restarts.

    Args:
        n_choices: ``k_j`` for each active dimension, in ``active_dims`` order.

    Example:
        >>> kern = ChoiceKernel([3], active_dims=[0]).double()
        >>> kern.lengthscale = 1.0
        >>> x = torch.tensor([[1 / 6], [1 / 6 + 0.01], [5 / 6]], dtype=torch.float64)
        >>> [round(v, 3) for v in kern(x, x).to_dense()[0].tolist()]  # same choice, same choice, other choice
        [1.0, 1.0, 0.368]
    """

    has_lengthscale = True

    def __init__(self, n_choices: Sequence[int], **kwargs: Any) -> None:
        super().__init__(ard_num_dims=len(n_choices), **kwargs)
        self.register_buffer("n_choices", torch.tensor([float(k) for k in n_choices]))

    def _index(self, x: Tensor) -> Tensor:
        k = self.n_choices.to(x)
        return torch.minimum(torch.floor(x * k), k - 1)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, last_dim_is_batch: bool = False, **params: Any):
        c1, c2 = self._index(x1), self._index(x2)
        ell = self.lengthscale  # (*batch, 1, k)
        if diag:
            return torch.exp(-((c1 != c2).to(x1) / ell).sum(-1))
        mismatch = (c1.unsqueeze(-2) != c2.unsqueeze(-3)).to(x1)  # (*batch, n1, n2, k)
        return torch.exp(-(mismatch / ell.unsqueeze(-2)).sum(-1))


def _dim_scaled_prior(dim: int) -> LogNormalPrior:
    return LogNormalPrior(loc=_SQRT2 + 0.5 * math.log(max(dim, 1)), scale=_SQRT3)


def build_covar_module(d: int, choice_dims: Mapping[int, int] | None = None) -> Kernel:
    """Matern-5/2 ARD over the non-categorical coordinates times a :class:`ChoiceKernel` over the categorical ones,
    each with BoTorch's dimension-scaled lengthscale prior for its own number of coordinates."""
    choice_dims = dict(choice_dims or {})
    cont = [j for j in range(d) if j not in choice_dims]
    if not choice_dims:
        return get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False)
    parts: list[Kernel] = []
    if cont:
        parts.append(
            get_covar_module_with_dim_scaled_prior(ard_num_dims=len(cont), use_rbf_kernel=False, active_dims=cont)
        )
    cat = sorted(choice_dims)
    prior = _dim_scaled_prior(len(cat))
    parts.append(
        ChoiceKernel(
            [choice_dims[j] for j in cat],
            active_dims=cat,
            lengthscale_prior=prior,
            lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=prior.mode),
        )
    )
    return parts[0] if len(parts) == 1 else ProductKernel(*parts)


def choice_dims_of(space: Space) -> dict[int, int]:
    """``{coordinate: number of choices}`` for the space's :class:`~hpo.space.Choice` parameters."""
    return {j: len(p.choices) for j, p in enumerate(space.params.values()) if isinstance(p, Choice)}


# -- the exact GP, lean ------------------------------------------------------------------------------------------


def _log_lognormal(v: Tensor, loc: float, scale: float) -> Tensor:
    """``log LogNormal(v; loc, scale)``, the density in ``v`` (as GPyTorch adds priors: no Jacobian)."""
    lv = torch.log(v)
    return (-lv - math.log(scale * math.sqrt(2 * math.pi)) - (lv - loc) ** 2 / (2 * scale**2)).sum()


class _Theta:
    """Hyperparameters as one unconstrained vector ``p = [log ell_C, log ell_K, log s2, c]`` for L-BFGS-B."""

    def __init__(self, n_cont: int, n_cat: int) -> None:
        self.n_cont, self.n_cat = n_cont, n_cat
        self.loc_c = _SQRT2 + 0.5 * math.log(max(n_cont, 1))
        self.loc_k = _SQRT2 + 0.5 * math.log(max(n_cat, 1))

    def initial(self) -> np.ndarray:
        """The priors' modes: ``ell = exp(loc - scale^2)``, ``s2 = exp(-4 - 1)``, ``c = 0``."""
        return np.concatenate(
            [
                np.full(self.n_cont, self.loc_c - 3.0),
                np.full(self.n_cat, self.loc_k - 3.0),
                [-5.0, 0.0],
            ]
        )

    def bounds(self, noise_floor: float) -> list[tuple[float, float]]:
        ell = (math.log(2.5e-2), math.log(1e4))
        return [ell] * (self.n_cont + self.n_cat) + [(math.log(noise_floor), math.log(10.0)), (-10.0, 10.0)]

    def split(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        nc, nk = self.n_cont, self.n_cat
        return p[:nc].exp(), p[nc : nc + nk].exp(), p[nc + nk].exp(), p[nc + nk + 1]

    def log_prior(self, p: Tensor) -> Tensor:
        ell_c, ell_k, s2, _ = self.split(p)
        lp = _log_lognormal(s2.reshape(1), -4.0, 1.0)
        if self.n_cont:
            lp = lp + _log_lognormal(ell_c, self.loc_c, _SQRT3)
        if self.n_cat:
            lp = lp + _log_lognormal(ell_k, self.loc_k, _SQRT3)
        return lp


def _kernel(
    x1: Tensor, x2: Tensor, ell_c: Tensor, ell_k: Tensor, cont: list[int], cat: list[int], n_choices: Tensor
) -> Tensor:
    """``k(x1, x2)``, ``(..., b1, d) x (..., b2, d) -> (..., b1, b2)``: Matern-5/2 ARD on ``cont`` times the
    Hamming kernel on ``cat`` (the same functions as the BoTorch model's kernels)."""
    out = None
    if cont:
        a, b = x1[..., cont] / ell_c, x2[..., cont] / ell_c
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matrix product instead of a (b1, b2, d) tensor
        d2 = a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1).unsqueeze(-2) - 2.0 * (a @ b.transpose(-1, -2))
        # sqrt has an infinite derivative at 0 (the diagonal); the kernel's derivative there is 0
        r = torch.sqrt(d2.clamp_min(1e-30) * 5.0)
        out = (1.0 + r + r * r / 3.0) * torch.exp(-r)
    if cat:
        c1 = torch.minimum(torch.floor(x1[..., cat] * n_choices), n_choices - 1)
        c2 = torch.minimum(torch.floor(x2[..., cat] * n_choices), n_choices - 1)
        mism = (c1.unsqueeze(-2) != c2.unsqueeze(-3)).to(x1)
        kc = torch.exp(-(mism / ell_k).sum(-1))
        out = kc if out is None else out * kc
    return out


def _neg_log_posterior(p: Tensor, X: Tensor, z: Tensor, spec: _Theta, cont, cat, n_choices) -> Tensor:
    """``-(log N(z; c, K + s2 I) + log prior(theta))``, with ``log N = -1/2 r^T (K + s2 I)^-1 r - sum log diag L
    - n/2 log 2 pi`` from one Cholesky ``L L^T = K + s2 I`` (``n^3/3`` flops), ``r = z - c``."""
    ell_c, ell_k, s2, c = spec.split(p)
    K = _kernel(X, X, ell_c, ell_k, cont, cat, n_choices)
    K = K + s2 * torch.eye(X.shape[0], dtype=X.dtype)
    L = torch.linalg.cholesky(K)
    r = (z - c).unsqueeze(-1)
    a = torch.linalg.solve_triangular(L, r, upper=False)
    ll = -0.5 * (a * a).sum() - torch.log(torch.diagonal(L)).sum() - 0.5 * X.shape[0] * math.log(2 * math.pi)
    return -(ll + spec.log_prior(p))


def _fit_theta(p0: np.ndarray, X: Tensor, z: Tensor, spec: _Theta, cont, cat, n_choices, maxiter: int, floor: float):
    """MAP hyperparameters by L-BFGS-B from ``p0`` (at most ``maxiter`` iterations)."""
    from scipy.optimize import minimize

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        p = torch.tensor(x, dtype=DTYPE, requires_grad=True)
        loss = _neg_log_posterior(p, X, z, spec, cont, cat, n_choices)
        (g,) = torch.autograd.grad(loss, p)
        return float(loss.detach()), g.numpy()

    bounds = spec.bounds(floor)
    x0 = np.clip(p0, [b[0] for b in bounds], [b[1] for b in bounds])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": int(maxiter)})
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        raise FloatingPointError(f"hyperparameter fit diverged: {res.message}")
    return res.x


# -- the surrogate ---------------------------------------------------------------------------------------------


class GPSurrogate:
    """A GP on the unit cube that survives any data a sweep produces, refitted cheaply as the sweep grows.

    Call :meth:`fit` with all observations each time (it is cheap to call again: hyperparameters are
    warm-started and, past ``always_refit_below`` points, only refitted when the data grew by ``refit_growth``).
    Then use :meth:`predict` / :meth:`mean_std` (this module's own exact-GP algebra, fast for acquisition
    optimization), :attr:`model` (the same GP as a BoTorch ``SingleTaskGP``, for BoTorch acquisition functions and
    pathwise samples; None for the prior fallback), :meth:`believer` (condition on pending points) and
    :meth:`maximize` (multi-start optimization of an acquisition function over the cube).

    Hyperparameters are fitted by L-BFGS-B on the log marginal likelihood plus log priors, written directly in
    torch (as Optuna's GP does): GPyTorch's module machinery costs several times the Cholesky itself at the ``n``
    of a sweep. The fitted values are then loaded into the BoTorch model, whose kernels compute the same function.

    Args:
        d: number of unit-cube coordinates.
        choice_dims: ``{coordinate: number of choices}`` of categorical parameters (see :func:`choice_dims_of`).
        warp: output warp, ``"power"``, ``"robust"``, ``"rank"`` or ``"standardize"`` (see :func:`warp_targets`).
        always_refit_below: refit ``theta`` on every call while ``n`` is below this.
        refit_growth: beyond it, refit when ``n >= (1 + refit_growth) * n_at_last_fit``.
        cold_maxiter, warm_maxiter: L-BFGS-B iteration caps for a fit from the priors' modes and from the last
            ``theta``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.random((12, 2)); y = ((X - 0.3) ** 2).sum(1)
        >>> gp = GPSurrogate(d=2).fit(X, y)
        >>> mu, sigma = gp.predict(np.array([[0.3, 0.3], [0.9, 0.9]]))
        >>> bool(mu[0] < mu[1])
        True
    """

    def __init__(
        self,
        d: int,
        choice_dims: Mapping[int, int] | None = None,
        warp: str = "power",
        always_refit_below: int = 100,
        refit_growth: float = 0.1,
        cold_maxiter: int = 200,
        warm_maxiter: int = 30,
    ) -> None:
        if warp not in ("robust", "power", "rank", "standardize"):
            raise ValueError(f"unknown warp {warp!r}; use 'robust', 'power', 'rank' or 'standardize'")
        self.d = int(d)
        self.choice_dims = {int(j): int(k) for j, k in (choice_dims or {}).items()}
        self.warp = warp
        self.always_refit_below = int(always_refit_below)
        self.refit_growth = float(refit_growth)
        self.cold_maxiter = int(cold_maxiter)
        self.warm_maxiter = int(warm_maxiter)
        self._cat = sorted(self.choice_dims)
        self._cont = [j for j in range(self.d) if j not in self.choice_dims]
        self._n_choices = torch.tensor([float(self.choice_dims[j]) for j in self._cat], dtype=DTYPE)
        self._spec = _Theta(len(self._cont), len(self._cat))
        self.X = torch.empty(0, self.d, dtype=DTYPE)
        self.z = torch.empty(0, dtype=DTYPE)
        self.failed = np.zeros(0, dtype=bool)
        self.theta: np.ndarray | None = None  # the unconstrained vector p of the current model
        self.n_at_fit = 0
        self.refitted = False
        self.noise_floor = MIN_NOISE
        self._L: Tensor | None = None
        self._alpha: Tensor | None = None
        self._model: SingleTaskGP | None = None

    @classmethod
    def for_space(cls, space: Space, **kwargs: Any) -> GPSurrogate:
        """A surrogate for a :class:`~hpo.space.Space`: its dimension and categorical coordinates."""
        return cls(space.dim, choice_dims_of(space), **kwargs)

    @property
    def ok(self) -> bool:
        """True when a GP is fitted; False for the prior-mean fallback (or before any data)."""
        return self._L is not None

    @property
    def z_best(self) -> float:
        """The best (lowest) modelled target, or 0.0 without data."""
        return float(self.z.min()) if self.z.numel() else 0.0

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """``{"lengthscale": (d,) array in coordinate order, "noise": s2, "mean": c}`` of the fitted GP."""
        if self.theta is None:
            return {}
        ell_c, ell_k, s2, c = self._spec.split(torch.as_tensor(self.theta, dtype=DTYPE))
        ell = np.empty(self.d)
        ell[self._cont], ell[self._cat] = ell_c.numpy(), ell_k.numpy()
        return {"lengthscale": ell, "noise": float(s2), "mean": float(c)}

    # -- fitting ---------------------------------------------------------------------------------------------

    def _needs_refit(self, n: int) -> bool:
        if self.theta is None or n < self.always_refit_below:
            return True
        return n - self.n_at_fit >= self.refit_growth * self.n_at_fit - 1e-9

    def _condition(self, theta: np.ndarray) -> None:
        """Cache ``L`` (Cholesky of ``K + s2 I``) and ``alpha = (K + s2 I)^-1 (z - c)`` for ``theta``."""
        ell_c, ell_k, s2, c = self._spec.split(torch.as_tensor(theta, dtype=DTYPE))
        K = _kernel(self.X, self.X, ell_c, ell_k, self._cont, self._cat, self._n_choices)
        K = K + s2 * torch.eye(self.X.shape[0], dtype=DTYPE)
        L, info = torch.linalg.cholesky_ex(K)
        if info.item() != 0:
            # GPyTorch's psd_safe_cholesky does the same: retry with growing jitter before giving up
            for jitter in (1e-8, 1e-6, 1e-4):
                L, info = torch.linalg.cholesky_ex(K + jitter * torch.eye(K.shape[0], dtype=DTYPE))
                if info.item() == 0:
                    break
            else:
                raise torch.linalg.LinAlgError("kernel matrix is not positive definite even with jitter 1e-4")
        alpha = torch.cholesky_solve((self.z - c).unsqueeze(-1), L)
        if not (torch.isfinite(L).all() and torch.isfinite(alpha).all()):
            raise FloatingPointError("non-finite Cholesky factor")
        self._L, self._alpha, self.theta, self._model = L, alpha, np.asarray(theta, dtype=float), None

    def fit(self, X: np.ndarray | Tensor, y: np.ndarray | Tensor) -> GPSurrogate:
        """Fit to ``X (n, d)`` and ``y (n,)`` (lower is better; non-finite = failed). Never raises for bad data."""
        X_np = np.asarray(X.detach().cpu() if isinstance(X, Tensor) else X, dtype=float).reshape(-1, self.d)
        y_np = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y, dtype=float).reshape(-1)
        if X_np.shape[0] != y_np.shape[0]:
            raise ValueError(f"X has {X_np.shape[0]} rows but y has {y_np.shape[0]} values; pass one y per row of X")
        keep = np.isfinite(X_np).all(axis=1)
        X_np, y_np = np.clip(X_np[keep], 0.0, 1.0), y_np[keep]
        y_imp, self.failed = impute_failed(y_np)
        self.X = torch.as_tensor(X_np, dtype=DTYPE)
        self.z = torch.as_tensor(warp_targets(y_imp, self.warp), dtype=DTYPE)
        self.refitted, self._model = False, None
        n = self.X.shape[0]
        if n == 0:
            self._L = self._alpha = None
            return self
        refit = self._needs_refit(n)
        attempts: list[tuple[np.ndarray, int, float]] = []
        if self.theta is not None:
            attempts.append((self.theta, self.warm_maxiter if refit else 0, self.noise_floor))
        attempts.append((self._spec.initial(), self.cold_maxiter, MIN_NOISE))
        attempts.append((self._spec.initial(), self.cold_maxiter, _FALLBACK_NOISE))
        errors = []
        for p0, maxiter, floor in attempts:
            try:
                p = p0
                if maxiter > 0:
                    args = (self.X, self.z, self._spec, self._cont, self._cat, self._n_choices)
                    p = _fit_theta(p0, *args, maxiter=maxiter, floor=floor)
                self._condition(p)
            except Exception as e:  # a numerical accident must not end a sweep
                errors.append(f"{type(e).__name__}: {e}")
                continue
            self.noise_floor = floor
            if maxiter > 0:
                self.n_at_fit, self.refitted = n, True
            return self
        warnings.warn(
            f"GP fit failed on {n} points ({'; '.join(errors)[:300]}); falling back to the prior-mean model",
            GPFallbackWarning,
            stacklevel=2,
        )
        self._L = self._alpha = self.theta = None
        return self

    # -- predictions -----------------------------------------------------------------------------------------

    def mean_std(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Differentiable posterior mean and standard deviation of ``f`` at ``X (..., b, d) -> (..., b)``:
        ``mu = c + k(X, X_n) alpha``, ``sigma^2 = 1 - ||L^-1 k(X_n, X)||^2`` (``k(x, x) = 1``). The prior-mean
        fallback gives ``(0, 1)``."""
        if self._L is None:
            shape = X.shape[:-1]
            return torch.zeros(shape, dtype=DTYPE), torch.ones(shape, dtype=DTYPE)
        ell_c, ell_k, _, c = self._spec.split(torch.as_tensor(self.theta, dtype=DTYPE))
        Ks = _kernel(X, self.X, ell_c, ell_k, self._cont, self._cat, self._n_choices)  # (..., b, n)
        mu = c + (Ks @ self._alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(self._L, Ks.transpose(-1, -2), upper=False)  # (..., n, b)
        var = (1.0 - v.pow(2).sum(-2)).clamp_min(1e-12)
        return mu, var.sqrt()

    def mean(self, X: Tensor) -> Tensor:
        """Differentiable posterior mean ``(..., b, d) -> (..., b)``, without the variance's triangular solve."""
        if self._L is None:
            return torch.zeros(X.shape[:-1], dtype=DTYPE)
        ell_c, ell_k, _, c = self._spec.split(torch.as_tensor(self.theta, dtype=DTYPE))
        Ks = _kernel(X, self.X, ell_c, ell_k, self._cont, self._cat, self._n_choices)
        return c + (Ks @ self._alpha).squeeze(-1)

    def sample(self, X: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One joint posterior sample of ``f`` at ``X (b, d) -> (b,)`` (a Thompson sample on a finite set).

        Costs a ``b x b`` Cholesky (``b^3 / 3`` flops); for samples over the whole cube use BoTorch's pathwise
        ``draw_matheron_paths(self.model)`` where the kernel allows (no categorical parameters)."""
        mu, _ = self.mean_std(X)
        if self._L is None:
            cov = torch.eye(X.shape[0], dtype=DTYPE)
        else:
            ell_c, ell_k, _, _ = self._spec.split(torch.as_tensor(self.theta, dtype=DTYPE))
            Ks = _kernel(X, self.X, ell_c, ell_k, self._cont, self._cat, self._n_choices)
            V = torch.linalg.solve_triangular(self._L, Ks.T, upper=False)
            cov = _kernel(X, X, ell_c, ell_k, self._cont, self._cat, self._n_choices) - V.T @ V
        eps = torch.randn(X.shape[0], dtype=DTYPE, generator=generator)
        for jitter in (1e-8, 1e-6, 1e-4, 1e-2):
            L, info = torch.linalg.cholesky_ex(cov + jitter * torch.eye(X.shape[0], dtype=DTYPE))
            if info.item() == 0:
                return mu + L @ eps
        return mu + cov.diagonal().clamp_min(0.0).sqrt() * eps

    def predict(self, X: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of ``f`` (``z`` units, noise excluded) at ``X (b, d)``, as arrays."""
        Xt = torch.as_tensor(np.asarray(X, dtype=float), dtype=DTYPE).reshape(-1, self.d)
        with torch.no_grad():
            mu, sigma = self.mean_std(Xt)
        return mu.numpy(), sigma.numpy()

    @property
    def model(self) -> SingleTaskGP | None:
        """This GP as a BoTorch ``SingleTaskGP`` (in eval mode, on ``z``), or None for the prior fallback."""
        if self._L is None:
            return None
        if self._model is None:
            noise_prior = LogNormalPrior(loc=-4.0, scale=1.0)
            likelihood = GaussianLikelihood(
                noise_prior=noise_prior, noise_constraint=GreaterThan(self.noise_floor, transform=None)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputDataWarning)
                model = SingleTaskGP(
                    self.X,
                    self.z.unsqueeze(-1),
                    likelihood=likelihood,
                    covar_module=build_covar_module(self.d, self.choice_dims),
                    outcome_transform=None,
                ).to(DTYPE)
            hp = self.hyperparameters
            kernels = (
                list(model.covar_module.kernels)
                if isinstance(model.covar_module, ProductKernel)
                else [model.covar_module]
            )
            for kern in kernels:
                dims = kern.active_dims.tolist() if kern.active_dims is not None else list(range(self.d))
                kern.lengthscale = torch.as_tensor(hp["lengthscale"][dims], dtype=DTYPE).reshape(1, -1)
            model.likelihood.noise = torch.tensor([max(hp["noise"], self.noise_floor)], dtype=DTYPE)
            model.mean_module.constant = torch.tensor(hp["mean"], dtype=DTYPE)
            model.eval()
            self._model = model
        return self._model

    def believer(self, X_pending: np.ndarray | Tensor) -> GPSurrogate:
        """This GP conditioned on pending points at its posterior mean (kriging believer; Ginsbourger, Le Riche,
        Carraro, 2010), with the same ``theta`` and no refit.

        The mean is unchanged everywhere (the believed values are the mean); the variance near pending points
        shrinks, so variance-seeking moves (Thompson samples, the mean-variance Pareto set) leave them alone.
        Costs one ``(n + m)`` Cholesky. Returns ``self`` when nothing is pending or there is no model.
        """
        Xp = torch.as_tensor(np.asarray(X_pending, dtype=float), dtype=DTYPE).reshape(-1, self.d)
        if self._L is None or Xp.shape[0] == 0:
            return self
        try:
            with torch.no_grad():
                zp, _ = self.mean_std(Xp)
            other = copy.copy(self)
            other.X, other.z = torch.cat([self.X, Xp]), torch.cat([self.z, zp])
            other._condition(self.theta)
            return other
        except Exception as e:  # the unconditioned model is still a good model
            msg = f"conditioning on pending points failed ({e}); ignoring them"
            warnings.warn(msg, GPFallbackWarning, stacklevel=2)
            return self

    # -- acquisition optimization ----------------------------------------------------------------------------

    def start_points(self, rng: np.random.Generator, n_local: int, top: int = 5, scale: float = 0.05) -> Tensor:
        """Candidate starts near the incumbents: the ``top`` best observed points and Gaussian perturbations of them
        (standard deviation ``scale`` in the cube, clipped). Acquisitions that reward exploitation peak there, and
        uniform raw samples rarely land there once ``d`` is larger than a few."""
        if self.X.shape[0] == 0 or n_local <= 0:
            return torch.empty(0, self.d, dtype=DTYPE)
        best = self.X[torch.argsort(self.z)[:top]].numpy()
        idx = rng.integers(0, best.shape[0], size=n_local)
        local = np.clip(best[idx] + scale * rng.standard_normal((n_local, self.d)), 0.0, 1.0)
        return torch.as_tensor(np.vstack([best, local]), dtype=DTYPE)

    def maximize(
        self,
        acqf: AcquisitionFunction | Callable[[Tensor], Tensor],
        rng: np.random.Generator,
        raw_samples: int = 512,
        num_restarts: int = 8,
        maxiter: int = 100,
        extra_starts: Tensor | None = None,
    ) -> tuple[np.ndarray, float]:
        """Maximize ``acqf`` (``b x 1 x d -> b``) over the unit cube; returns ``(x (d,), value)``.

        Multi-start L-BFGS-B (BoTorch's ``optimize_acqf``): ``raw_samples`` scrambled Sobol points plus the
        incumbents and perturbations of them (:meth:`start_points`) and ``extra_starts`` are scored, the best
        ``num_restarts`` (half by value, half drawn by Boltzmann weights as BoTorch does, so that restarts do not all
        sit in one basin) are refined jointly, and the best result is returned.
        """
        seed = int(rng.integers(0, 2**31 - 1))
        sobol = torch.quasirandom.SobolEngine(self.d, scramble=True, seed=seed).draw(raw_samples, dtype=DTYPE)
        parts = [sobol, self.start_points(rng, n_local=max(raw_samples // 8, 16))]
        if extra_starts is not None and extra_starts.numel():
            parts.append(extra_starts.reshape(-1, self.d).to(DTYPE))
        cand = torch.cat(parts).unsqueeze(-2)  # (r, 1, d)
        with torch.no_grad():
            vals = torch.cat([acqf(c) for c in cand.split(2048)]).reshape(-1)
        vals = torch.where(torch.isfinite(vals), vals, torch.full_like(vals, -torch.inf))
        k = min(num_restarts, cand.shape[0])
        order = torch.argsort(vals, descending=True)
        chosen = order[: max(k // 2, 1)].tolist()
        finite = torch.isfinite(vals)
        if k > len(chosen) and finite.sum() > len(chosen):
            v = vals.clone()
            v[~finite] = vals[finite].min()
            w = torch.softmax((v - v.mean()) / v.std().clamp_min(1e-9), 0)
            w[chosen] = 0.0
            g = torch.Generator().manual_seed(seed)
            more = torch.multinomial(w, min(k - len(chosen), int((w > 0).sum())), replacement=False, generator=g)
            chosen += more.tolist()
        starts = cand[chosen]
        bounds = torch.stack([torch.zeros(self.d, dtype=DTYPE), torch.ones(self.d, dtype=DTYPE)])
        if not isinstance(acqf, AcquisitionFunction):
            acqf = _CallableAcquisition(acqf)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizationWarning)
                x, v = optimize_acqf(
                    acqf,
                    bounds=bounds,
                    q=1,
                    num_restarts=starts.shape[0],
                    batch_initial_conditions=starts,
                    options={"maxiter": int(maxiter)},
                    retry_on_optimization_warning=False,
                )
            value = float(v)
            if not math.isfinite(value) or value < float(vals[order[0]]):
                raise FloatingPointError("optimizer did worse than its best start")
            return x.reshape(-1).detach().numpy(), value
        except Exception:  # the best scored start is a fine answer
            return cand[order[0]].reshape(-1).numpy(), float(vals[order[0]])


class _CallableAcquisition(AcquisitionFunction):
    """Wraps ``f: b x 1 x d -> b`` (e.g. a negated pathwise sample) as a BoTorch acquisition function."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        torch.nn.Module.__init__(self)
        self.fn = fn

    def forward(self, X: Tensor) -> Tensor:
        return self.fn(X)
