"""The freeze-thaw learning-curve GP and the basket decision that pauses, thaws and starts trials from it.

Swersky, Snoek, Adams, "Freeze-Thaw Bayesian Optimization" (arXiv:1406.3896, 2014). Each curve converges to an
asymptote; the asymptotes of all configs share a GP over the configs, and, given its asymptote, each curve is a GP
with the exponential-decay kernel (a mixture of exponential decays, Eq. 6 of the paper). Curves are independent given
their asymptotes, so exact inference costs ``O(N^3 + sum_n T_n^3)`` (Sec. 3.1) instead of the dense
``O((sum_n T_n)^3)``, and ``O(N^3 + G^3 + N G^2)`` when the curves share a step grid of ``G`` steps.

Two extensions of the paper's model, each reducing to it (``d = 0``, ``a_n = 1``), for curves of real sweeps where
most configs barely learn and a few fall far (TaskSet): every curve starts from a shared value ``s`` and moves to
its asymptote with weight ``w(t) = 1 - d(t)``, so an early drop says the asymptote is lower still; and each curve's
covariance has its own amplitude ``a_n^2`` (:func:`estimate_amplitudes`), so a falling curve is not forecast as
flat as the majority.

Notation
--------
- ``N``: curves (trials with a finite point, and failed trials as one pessimistic point each); ``d``: parameters.
- ``X: (N, d)``: encoded configs in the unit cube; ``x_*``: a config without a curve (a new candidate).
- ``T``: points a curve may hold (padding); ``t: (N, T)`` steps normalized to ``step / max_step`` in ``(0, 1]``;
  ``y: (N, T)`` standardized minimize-signed values; ``mask: (N, T)`` which of them are real.
- ``f: (N,)``: asymptotes, ``f ~ GP(m, k_x)`` with ``k_x = s_x^2 Matern52_ARD(x, x') + nugget [same curve]``;
  ``K_x: (N, N)``.
- ``y_n(t) | f_n ~ GP(s d(t) + w(t) f_n, a_n^2 (k_t + noise))``, ``k_t(t, t') = s_t^2 beta^alpha / (t + t' +
  beta)^alpha``, ``d(t) = (beta_d / (t + beta_d))^alpha_d``, ``w = 1 - d``; ``K_tn: (T_n, T_n)`` with noise on
  its diagonal; ``L_n`` its Cholesky factor; ``w_n: (T_n,)`` the weights at the curve's steps.
- ``Lambda: (N,) = w_n^T K_tn^-1 w_n``; ``gamma: (N,) = w_n^T K_tn^-1 (y_n - s d_n - m w_n)`` (DESIGN.md and the
  paper's Eq. 12-13 with ``w = 1``).
- ``B = I + Lambda^1/2 K_x Lambda^1/2: (N, N)``; its eigenvalues are >= 1, so its Cholesky factor ``L_B`` is
  stable where ``K_x^-1`` is not (the same device as GPML's Algorithm 3.2).
- ``C = (K_x^-1 + Lambda)^-1 = Lambda^-1/2 (I - B^-1) Lambda^-1/2``: posterior covariance of ``f``;
  ``mu = m + C gamma = m + K_x a`` with ``a = Lambda^1/2 B^-1 Lambda^-1/2 gamma: (N,)``.
- A *member* is an asymptote the posterior is asked about: an existing curve (index ``n``) or a new config.
  A *query* is a member at a normalized step: its latent value, or its noisy observation.

Marginal likelihood
-------------------
``y = s d + W^T f + e`` with ``W`` the ``N x sum T_n`` matrix holding ``w_n`` in row ``n`` and
``e ~ N(0, blockdiag K_tn)``. Woodbury and the determinant lemma on ``Sigma = blockdiag K_tn + W^T K_x W`` give,
with ``r_n = y_n - s d_n - m w_n``, ``g = Lambda^-1/2 gamma``::

    -2 log p(y) = sum_n r_n^T K_tn^-1 r_n - |g|^2 + |L_B^-1 g|^2 + sum_n log|K_tn| + log|B| + (sum T_n) log 2 pi

every term from per-curve Cholesky factors and one ``N x N`` factor.

Predictive (derived)
--------------------
For a query at ``t_q`` on curve ``n``, ``k_q = a_n^2 k_t(t_n, t_q)``: ``Omega_q = w(t_q) - k_q^T K_tn^-1 w_n``,
mean ``s d(t_q) + k_q^T K_tn^-1 (y_n - s d_n) + Omega_q mu_n``, and
``Cov(q, q') = Omega_q Omega_q' C_nn' + [n = n'] (a_n^2 k_t(t_q, t_q') - k_q^T K_tn^-1 k_q')``; a new config has
``Omega = w(t_q)``, the prior residual and its asymptote's posterior from the GP over configs.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import norm

from hpo.candidates import Candidates
from hpo.history import History
from hpo.space import Space
from hpo.trial import Trial, TrialStatus

__all__ = [
    "CurveData",
    "FreezeThawGP",
    "FreezeThawHyperparameters",
    "FreezeThawPolicy",
    "Plan",
    "estimate_amplitudes",
    "exponential_decay_kernel",
    "fit_freeze_thaw_gp",
    "matern52_kernel",
]

_DTYPE = torch.float64
_JITTER = 1e-8
_LOG_2PI = math.log(2 * math.pi)


# -- kernels ----------------------------------------------------------------------------------------------------------


def exponential_decay_kernel(
    t1: torch.Tensor, t2: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """``k(t, t') = beta^alpha / (t + t' + beta)^alpha`` (paper Eq. 6), shapes ``(..., n) x (..., m) -> (..., n, m)``.

    The infinite mixture ``int_0^inf e^-lambda t e^-lambda t' psi(d lambda)`` of exponential decays with a
    Gamma(alpha, beta) mixing measure: a curve drawn from it decays towards zero, so ``f_n`` plus it converges to
    ``f_n``. BoTorch's ``ExponentialDecayKernel`` is the same plus an offset that would break that convergence.
    """
    s = t1.unsqueeze(-1) + t2.unsqueeze(-2)
    return torch.exp(alpha * (torch.log(beta) - torch.log(s + beta)))


def matern52_kernel(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    """Matern-5/2 ARD correlation ``(1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)``, ``(n, d) x (m, d) -> (n, m)``."""
    a, b = x1 / lengthscale, x2 / lengthscale
    r2 = (a.pow(2).sum(-1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(-1)).clamp_min(1e-30)
    r = torch.sqrt(r2)
    return (1 + math.sqrt(5) * r + 5.0 / 3.0 * r2) * torch.exp(-math.sqrt(5) * r)


# -- data -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveData:
    """Learning curves ready for the model: padded, normalized and standardized.

    Attributes:
        X: ``(N, d)`` encoded configs.
        t: ``(N, T)`` steps / max_step (padding: 1).
        y: ``(N, T)`` standardized values (padding: 0).
        mask: ``(N, T)`` True where a point is real; every curve has at least one.
        trial_ids: ``(N,)`` the trial of each curve (-1 for curves not from a history).
        failed: ``(N,)`` True for failed trials (one pessimistic point at the final step).
        center, scale: ``y = (clip(value, upper) - center) / scale`` in the minimize-signed objective.
        upper: values above it are clipped to it (diverging losses must not set the scale).
        grid: ``(G,)`` normalized steps when every curve's points are the first ``n_points`` steps of this grid
            (one Cholesky factor serves all curves); None otherwise.
        max_step: the step normalized to 1.

    Example:
        >>> import numpy as np
        >>> data = CurveData.from_curves(np.zeros((2, 1)), [([1, 2], [1.0, 0.8]), ([1], [0.9])], max_step=4)
        >>> data.grid.tolist(), data.mask.sum(1).tolist()
        ([0.25, 0.5], [2, 1])
    """

    X: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    trial_ids: np.ndarray
    failed: np.ndarray
    center: float
    scale: float
    upper: float
    grid: torch.Tensor | None
    max_step: int

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def n_points(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def standardize(self, value: np.ndarray | float) -> np.ndarray:
        return (np.minimum(np.asarray(value, dtype=float), self.upper) - self.center) / self.scale

    def unstandardize(self, z: np.ndarray | float) -> np.ndarray:
        return np.asarray(z, dtype=float) * self.scale + self.center

    def subset(self, idx: np.ndarray) -> CurveData:
        """The curves ``idx`` with the same scaling (hyperparameters may be fitted on a subset)."""
        i = torch.as_tensor(idx, dtype=torch.long)
        mask = self.mask[i]
        grid = None
        if self.grid is not None:
            cols = int(mask.sum(-1).max())
            grid, mask = self.grid[:cols], mask[:, :cols]
        T = mask.shape[1]
        return CurveData(self.X[i], self.t[i, :T], self.y[i, :T], mask, self.trial_ids[idx], self.failed[idx],
                         self.center, self.scale, self.upper, grid, self.max_step)

    @classmethod
    def from_curves(
        cls,
        X: np.ndarray,
        curves: Sequence[tuple[Sequence[float], Sequence[float]]],
        max_step: int,
        failed: Sequence[bool] | None = None,
        trial_ids: Sequence[int] | None = None,
        max_points: int = 64,
        max_grid: int = 128,
    ) -> CurveData:
        """Build from raw ``(steps, values)`` per config (minimize-signed values; non-finite points dropped).

        A failed curve becomes one point at ``max_step`` with the clipping threshold, the worst value the model
        knows: a diverged run is a failure, not a number, but the region it came from should look bad. Curves
        longer than ``max_points`` keep their last point and an even subsample of the rest.
        """
        X = np.asarray(X, dtype=float).reshape(len(curves), -1)
        failed = np.zeros(len(curves), bool) if failed is None else np.asarray(failed, bool)
        ids = np.full(len(curves), -1) if trial_ids is None else np.asarray(trial_ids)
        clean: list[tuple[np.ndarray, np.ndarray]] = []
        for steps, values in curves:
            s, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
            ok = np.isfinite(v) & (s > 0)
            if len(s) > max_points and ok.all():
                ok = None  # subsampled below
            clean.append((s, v) if ok is None or ok.all() else (s[ok], v[ok]))
        keep = np.array([i for i, (s, _) in enumerate(clean) if failed[i] or len(s)], dtype=int)
        if not keep.size:
            raise ValueError("no curve has a finite point; the model needs at least one")
        good = [i for i in keep if not failed[i]]
        lasts = np.array([clean[i][1][-1] for i in good])
        pooled = np.concatenate([clean[i][1] for i in good] or [np.zeros(0)])
        if lasts.size == 0:  # only failures: any scale will do
            lasts = pooled = np.zeros(1)
        med, lo = float(np.median(lasts)), float(lasts.min())
        q25, q75 = np.percentile(pooled, [25, 75])
        # Robust clipping: worse than the median by twice the spread of the better half is simply "bad".
        spread = max(med - lo, float(q75 - q25), 1e-9 * (1 + abs(med)))
        upper = med + 2 * spread
        clipped = np.minimum(pooled, upper)
        center = float(clipped.mean())
        scale = float(clipped.std())
        if not scale > 1e-12 * (1 + abs(center)):
            scale = 1.0
        steps_list, values_list = [], []
        for i in keep:
            s, v = clean[i]
            if failed[i]:
                s, v = np.array([float(max_step)]), np.array([upper])
            elif len(s) > max_points:
                sub = np.unique(np.round(np.linspace(0, len(s) - 2, max_points - 1)).astype(int))
                sub = np.append(sub[sub < len(s) - 1], len(s) - 1)
                s, v = s[sub], v[sub]
            steps_list.append(s)
            values_list.append(v)
        # Pad all curves at once: point k of curve j goes to row j, column k.
        lengths = np.array([len(s) for s in steps_list])
        n, T = len(lengths), int(lengths.max())
        all_s, all_v = np.concatenate(steps_list), np.concatenate(values_list)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(all_s)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        t, y, mask = np.ones((n, T)), np.zeros((n, T)), np.zeros((n, T), bool)
        t[rows, cols] = all_s / max_step
        y[rows, cols] = (np.minimum(all_v, upper) - center) / scale
        mask[rows, cols] = True
        # One Cholesky factor serves every curve whose points are a prefix of a common grid: point k of every
        # curve is the k-th smallest step of all.
        union = np.unique(all_s)
        grid = None
        if len(union) <= max_grid and np.array_equal(np.searchsorted(union, all_s), cols):
            grid = torch.as_tensor(union[:T] / max_step, dtype=_DTYPE)
        return cls(
            X=torch.as_tensor(X[keep], dtype=_DTYPE),
            t=torch.as_tensor(t, dtype=_DTYPE),
            y=torch.as_tensor(y, dtype=_DTYPE),
            mask=torch.as_tensor(mask),
            trial_ids=ids[keep],
            failed=failed[keep],
            center=center,
            scale=scale,
            upper=float(upper),
            grid=grid,
            max_step=int(max_step),
        )

    @classmethod
    def from_history(
        cls,
        history: History,
        max_points: int = 64,
        cache: dict[int, tuple] | None = None,
        max_curves: int | None = None,
    ) -> CurveData | None:
        """The curves of a history's trials (minimize-signed), or None when no trial has a finite point yet.

        ``cache`` keeps each trial's encoded config and signed curve across calls, keyed by trial id and checked
        by the identity of its config and the length of its curve (a snapshot of another sweep misses).
        ``max_curves`` bounds the model's size (its cost grows as ``N^3``): beyond it, the curves kept are the
        running ones, then the longest, then those with the best last value; the rest (in TaskSet, hundreds of
        configs tried for one step and left at chance level) are left out.
        """
        space = history.space
        cache = {} if cache is None else cache
        xs, curves, failed, ids = [], [], [], []
        for trial in history:
            hit = cache.get(trial.trial_id)
            if hit is None or hit[0] is not trial.config:
                hit = (trial.config, space.encode({k: trial.config[k] for k in space.names}), -1, None)
            if hit[2] != len(trial.curve):
                hit = (hit[0], hit[1], len(trial.curve), _signed_curve(history, trial))
            cache[trial.trial_id] = hit
            steps, values, n_reported = hit[3]
            bad = trial.status is TrialStatus.FAILED or len(values) < n_reported
            if not len(steps) and not bad:
                continue
            xs.append(hit[1])
            curves.append((steps, values))
            failed.append(bad)
            ids.append(trial.trial_id)
        if not any(len(c[0]) for c, f in zip(curves, failed, strict=True) if not f):
            return None
        if max_curves is not None and len(curves) > max_curves:
            running = {t.trial_id for t in history if t.status in (TrialStatus.RUNNING, TrialStatus.PENDING)}
            rank = sorted(range(len(curves)), key=lambda i: (
                ids[i] not in running, -len(curves[i][0]), curves[i][1][-1] if len(curves[i][1]) else math.inf))
            pick = sorted(rank[:max_curves])
            xs, curves = [xs[i] for i in pick], [curves[i] for i in pick]
            failed, ids = [failed[i] for i in pick], [ids[i] for i in pick]
        return cls.from_curves(np.asarray(xs), curves, space.max_step, failed, ids, max_points)


def _signed_curve(history: History, trial: Trial) -> tuple[np.ndarray, np.ndarray, int]:
    """Finite points of the metric, minimize-signed, and how many points reported the metric at all."""
    metric = history.metric
    pts = [(s, m[metric]) for s, m in trial.curve if metric in m]
    if not pts:
        return np.zeros(0), np.zeros(0), 0
    a = np.array(pts, dtype=float)
    ok = np.isfinite(a[:, 1])
    values = a[ok, 1] if history.mode == "min" else -a[ok, 1]
    return a[ok, 0], values, len(pts)


# -- hyperparameters --------------------------------------------------------------------------------------------------


@dataclass
class FreezeThawHyperparameters:
    """The model's hyperparameters, stored as logs (their optimization is unconstrained) except the two means.

    Priors (maximum a posteriori fit) keep few data from producing a degenerate fit: the lengthscales get BoTorch's
    dimension-scaled LogNormal(sqrt2 + log(d)/2, sqrt3) (Hvarfner et al., ICML 2024), the other scales
    LogNormal priors around values that suit standardized curves on normalized steps.
    """

    log_lengthscale: torch.Tensor
    log_outputscale_x: torch.Tensor
    log_nugget: torch.Tensor
    mean: torch.Tensor
    log_outputscale_t: torch.Tensor
    log_alpha: torch.Tensor
    log_beta: torch.Tensor
    log_noise: torch.Tensor
    start: torch.Tensor
    log_alpha_d: torch.Tensor
    log_beta_d: torch.Tensor

    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "log_lengthscale": (math.log(2.5e-2), math.log(1e3)),  # BoTorch's lower bound in the unit cube
        "log_outputscale_x": (math.log(1e-4), math.log(1e2)),
        "log_nugget": (math.log(1e-6), math.log(1e1)),
        "log_outputscale_t": (math.log(1e-4), math.log(1e2)),
        "log_alpha": (math.log(1e-2), math.log(1e2)),
        "log_beta": (math.log(1e-3), math.log(1e2)),
        "log_noise": (math.log(1e-6), math.log(1e1)),
        "log_alpha_d": (math.log(5e-2), math.log(2e1)),
        "log_beta_d": (math.log(1e-3), math.log(1e1)),
    }

    @classmethod
    def default(cls, d: int) -> FreezeThawHyperparameters:
        def c(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=_DTYPE)

        return cls(
            log_lengthscale=torch.full((d,), math.sqrt(2) + 0.5 * math.log(d) - 1.0, dtype=_DTYPE),
            log_outputscale_x=c(0.0),
            log_nugget=c(math.log(1e-2)),
            mean=c(0.0),
            log_outputscale_t=c(math.log(0.3)),
            log_alpha=c(0.0),
            log_beta=c(math.log(0.3)),
            log_noise=c(math.log(1e-2)),
            start=c(0.0),
            log_alpha_d=c(0.0),
            log_beta_d=c(math.log(0.05)),
        )

    _LINEAR: ClassVar[tuple[str, ...]] = ("mean", "start")

    def names(self) -> list[str]:
        return ["log_lengthscale", "log_outputscale_x", "log_nugget", "mean", "log_outputscale_t", "log_alpha",
                "log_beta", "log_noise", "start", "log_alpha_d", "log_beta_d"]

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, n) for n in self.names()]

    def clone(self, requires_grad: bool = False) -> FreezeThawHyperparameters:
        return FreezeThawHyperparameters(*[v.detach().clone().requires_grad_(requires_grad) for v in self.tensors()])

    def value(self, name: str) -> torch.Tensor:
        """The hyperparameter itself (``exp`` of the stored log, clamped to its bounds; the means as they are)."""
        raw = getattr(self, name)
        if name in self._LINEAR:
            return raw
        lo, hi = self._BOUNDS[name]
        return torch.exp(raw.clamp(lo, hi))

    def log_prior(self) -> torch.Tensor:
        d = self.log_lengthscale.shape[0]

        def lognormal(log_v: torch.Tensor, loc: float, scale: float) -> torch.Tensor:
            # density of log v under N(loc, scale^2): the prior on v in log coordinates
            return (-0.5 * ((log_v - loc) / scale) ** 2).sum()

        return (
            lognormal(self.log_lengthscale, math.sqrt(2) + 0.5 * math.log(d), math.sqrt(3))
            + lognormal(self.log_outputscale_x, 0.0, 1.0)
            + lognormal(self.log_nugget, math.log(1e-2), 2.0)
            - 0.5 * self.mean**2
            + lognormal(self.log_outputscale_t, math.log(0.3), 1.5)
            + lognormal(self.log_alpha, 0.0, 1.0)
            + lognormal(self.log_beta, math.log(0.3), 1.5)
            + lognormal(self.log_noise, math.log(1e-2), 2.0)
            - 0.5 * (self.start / 3.0) ** 2
            + lognormal(self.log_alpha_d, 0.0, 1.5)
            + lognormal(self.log_beta_d, math.log(0.05), 2.0)
        )

    def start_weight(self, t: torch.Tensor) -> torch.Tensor:
        """``d(t) = (beta_d / (t + beta_d))^alpha_d``: how much of the shared start value a curve still shows at
        ``t``; 1 at ``t = 0``, falling to 0. The asymptote's weight is ``w(t) = 1 - d(t)``."""
        beta_d = self.value("log_beta_d")
        return torch.exp(self.value("log_alpha_d") * (torch.log(beta_d) - torch.log(t + beta_d)))


# -- the model --------------------------------------------------------------------------------------------------------


def _cholesky(A: torch.Tensor) -> torch.Tensor:
    """Cholesky factor with escalating jitter; raises ``torch.linalg.LinAlgError`` if even 1e-2 fails."""
    L, info = torch.linalg.cholesky_ex(A)
    if not bool((info != 0).any()):
        return L
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    scale = A.diagonal(dim1=-2, dim2=-1).abs().mean().clamp_min(1e-12).detach()
    for jitter in (1e-8, 1e-6, 1e-4, 1e-2):
        L, info = torch.linalg.cholesky_ex(A + jitter * scale * eye)
        if not bool((info != 0).any()):
            return L
    raise torch.linalg.LinAlgError("covariance is not positive definite even with jitter 1e-2")


def _curve_terms(data: CurveData, h: FreezeThawHyperparameters, grid: bool) -> dict[str, torch.Tensor]:
    """Unit-amplitude factors ``L_n`` of ``K_tn = k_t + noise I``, the half-solves ``L_n^-1 w_n`` and
    ``L_n^-1 (y_n - s d_n - m w_n)`` (``(N, T)``, zero on padding) and ``log |K_tn|``."""
    alpha, beta = h.value("log_alpha"), h.value("log_beta")
    s_t, noise = h.value("log_outputscale_t"), h.value("log_noise")
    mask = data.mask.to(_DTYPE)
    d = h.start_weight(data.t)
    wts = (1 - d) * mask
    r = (data.y - h.start * d - h.mean * (1 - d)) * mask
    if grid:
        # Shared grid: L_n is the leading T_n x T_n block of the grid's factor, so one forward substitution with
        # the grid's L gives every curve's L_n^-1 v in its first T_n entries (the paper's Sec. 3.1, cheaper still).
        G = data.grid.shape[0]
        K = s_t * exponential_decay_kernel(data.grid, data.grid, alpha, beta)
        L = _cholesky(K + (noise + _JITTER) * torch.eye(G, dtype=_DTYPE))
        rhs = torch.stack([wts, r], 0).reshape(2 * data.n, G).T
        Z = torch.linalg.solve_triangular(L, rhs, upper=False).T.reshape(2, data.n, G) * mask
        cum = torch.cumsum(torch.log(L.diagonal()), 0)
        return {"L": L, "z1": Z[0], "zr": Z[1], "logdet_t": 2 * cum[data.n_points - 1]}
    # Padding rows and columns are the identity: they change neither solves nor determinants.
    K = s_t * exponential_decay_kernel(data.t, data.t, alpha, beta)
    mm = mask.unsqueeze(-1) * mask.unsqueeze(-2)
    eye = torch.eye(data.t.shape[1], dtype=_DTYPE)
    K = K * mm + eye * ((noise + _JITTER) * mask.unsqueeze(-1) + (1 - mask).unsqueeze(-1))
    L = _cholesky(K)
    Z = torch.linalg.solve_triangular(L, torch.stack([wts, r], -1), upper=False)
    return {"L": L, "z1": Z[..., 0], "zr": Z[..., 1], "logdet_t": 2 * torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1)}


class FreezeThawGP:
    """The freeze-thaw hierarchical GP with fixed hyperparameters: exact posterior and marginal likelihood.

    Args:
        data: the curves (see :class:`CurveData`).
        hypers: hyperparameters (default: :meth:`FreezeThawHyperparameters.default`); fit them with
            :func:`fit_freeze_thaw_gp`.

    All results are in standardized units; ``data.unstandardize`` maps means back (and ``scale^2`` variances).

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.2], [0.8]])
        >>> curves = [([1, 2, 3], [1.0, 0.7, 0.6]), ([1, 2], [1.2, 1.1])]
        >>> gp = FreezeThawGP(CurveData.from_curves(X, curves, max_step=10))
        >>> mean, var = gp.predict(curve=1, steps=[5, 10])
        >>> bool(var[1] > var[0] > 0)
        True
    """

    def __init__(
        self,
        data: CurveData,
        hypers: FreezeThawHyperparameters | None = None,
        amp2: torch.Tensor | None = None,
        amp_new: float | None = None,
    ) -> None:
        self.data = data
        self.hypers = hypers if hypers is not None else FreezeThawHyperparameters.default(data.dim)
        self.amp2 = amp2
        # A new config's amplitude: that of the curves with few points (the population's mean), else 1.
        if amp_new is None:
            amp_new = 1.0
            if amp2 is not None and bool((data.n_points < 3).any()):
                amp_new = float(amp2[data.n_points < 3][0])
        self.amp_new = float(amp_new)
        # Score new configs by the smooth part h(x) of their asymptote, without the nugget: with it, expected
        # improvement rewards the noise lottery and re-proposes neighbours of the best config (noisy-EI pathology).
        self.latent_new = False
        self._grid = data.grid is not None
        with torch.no_grad():
            self._terms = self._compute(self.hypers)

    # ---- shared algebra -------------------------------------------------------------------------------------

    def _compute(self, h: FreezeThawHyperparameters) -> dict[str, torch.Tensor]:
        """Per-curve half-solves ``L_n^-1 v`` and the ``N x N`` factor; everything else is dot products of them.

        A curve's amplitude scales its whole covariance, so ``L_n = a_n L_n(1)``: the factors are those of unit
        amplitude and every half-solve is divided by ``a_n``.
        """
        data = self.data
        c = _curve_terms(data, h, self._grid)
        amp2 = self.amp2 if self.amp2 is not None else torch.ones(data.n, dtype=_DTYPE)
        inv_a = torch.rsqrt(amp2).unsqueeze(-1)
        z1, zr = c["z1"] * inv_a, c["zr"] * inv_a
        logdet_t = c["logdet_t"] + data.n_points * torch.log(amp2)
        lam = (z1 * z1).sum(-1).clamp_min(1e-12)  # a curve seen only where d(t) = 1 says nothing of its asymptote
        gamma = (z1 * zr).sum(-1)
        quad = (zr * zr).sum(-1)
        Kx = self._kx(h, data.X, data.X, same=torch.eye(data.n, dtype=_DTYPE))
        sl = torch.sqrt(lam)
        Bm = torch.eye(data.n, dtype=_DTYPE) + sl.unsqueeze(-1) * Kx * sl.unsqueeze(-2)
        LB = _cholesky(Bm)
        g = gamma / sl
        v = torch.linalg.solve_triangular(LB, g.unsqueeze(-1), upper=False).squeeze(-1)
        return {"L": c["L"], "z1": z1, "zr": zr, "lam": lam, "gamma": gamma, "quad": quad, "logdet_t": logdet_t,
                "LB": LB, "sl": sl, "g": g, "v": v, "Kx": Kx}

    def _kx(self, h: FreezeThawHyperparameters, x1: torch.Tensor, x2: torch.Tensor,
            same: torch.Tensor | None = None) -> torch.Tensor:
        K = h.value("log_outputscale_x") * matern52_kernel(x1, x2, h.value("log_lengthscale"))
        return K if same is None else K + h.value("log_nugget") * same

    def log_marginal_likelihood(self, h: FreezeThawHyperparameters | None = None) -> torch.Tensor:
        """``log p(y | hypers)``, differentiable in ``h`` (module docstring for the formula)."""
        T = self._terms if h is None else self._compute(h)
        n_obs = float(self.data.mask.sum())  # an integer tensor times a float would be float32
        quad = T["quad"].sum() - (T["g"] ** 2).sum() + (T["v"] ** 2).sum()
        logdet = T["logdet_t"].sum() + 2 * torch.log(T["LB"].diagonal()).sum()
        return -0.5 * (quad + logdet + n_obs * _LOG_2PI)

    # ---- posterior ------------------------------------------------------------------------------------------

    def _half_solve(self, curves: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        """``L_n^-1 rhs`` for each query's curve ``n = curves[q]``; ``rhs: (Q, T)`` masked by the curve."""
        L = self._terms["L"]
        if self._grid:
            z = torch.linalg.solve_triangular(L, rhs.T, upper=False).T * self.data.mask[curves]
        else:
            z = torch.linalg.solve_triangular(L[curves], rhs.unsqueeze(-1), upper=False).squeeze(-1)
        return z if self.amp2 is None else z * torch.rsqrt(self.amp2[curves]).unsqueeze(-1)

    def asymptote_posterior(
        self, curves: torch.Tensor, x: torch.Tensor, full_cov: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior of members' asymptotes: ``mu = m + k(x, X) a``, ``C = k(x, x) - V^T V`` with
        ``V = L_B^-1 Lambda^1/2 k(X, x)``.

        Args:
            curves: ``(P,)`` the curve index of each member, -1 for a new config.
            x: ``(P, d)`` the members' configs (for an existing curve, its own).
            full_cov: the ``(P, P)`` covariance, or only its diagonal ``(P,)``.
        """
        T, h, data = self._terms, self.hypers, self.data
        idx = torch.arange(data.n)
        same_train = ((curves.unsqueeze(-1) == idx) & (curves.unsqueeze(-1) >= 0)).to(_DTYPE)
        Kpx = self._kx(h, x, data.X, same_train)
        a = T["sl"] * torch.cholesky_solve((T["g"]).unsqueeze(-1), T["LB"]).squeeze(-1)
        mean = h.mean + Kpx @ a
        V = torch.linalg.solve_triangular(T["LB"], (T["sl"].unsqueeze(-1) * Kpx.T), upper=False)
        own = self._own_nugget(curves)
        if not full_cov:
            prior = h.value("log_outputscale_x") + h.value("log_nugget") * own
            return mean, (prior - (V * V).sum(0)).clamp_min(1e-12)
        same = (curves.unsqueeze(-1) == curves.unsqueeze(-2)) & (curves.unsqueeze(-1) >= 0)
        same = (same | torch.diag(own > 0)).to(_DTYPE)
        if len(curves) > 1 and not self.latent_new:  # two new members with one config are one asymptote, not two
            dup = (torch.cdist(x, x) < 1e-12) & (curves.unsqueeze(-1) < 0) & (curves.unsqueeze(-2) < 0)
            same = torch.maximum(same, dup.to(_DTYPE))
        Kpp = self._kx(h, x, x, same)
        return mean, Kpp - V.T @ V

    def _own_nugget(self, curves: torch.Tensor) -> torch.Tensor:
        """1 where a member's asymptote carries its own nugget: an existing curve always (its ``f_n`` is what
        training it on gives), a new config unless :attr:`latent_new` asks for the smooth part ``h(x)`` alone."""
        if not self.latent_new:
            return torch.ones(len(curves), dtype=_DTYPE)
        return (curves >= 0).to(_DTYPE)

    def joint(
        self,
        member_curves: torch.Tensor,
        member_x: torch.Tensor,
        q_member: torch.Tensor,
        q_t: torch.Tensor,
        q_noisy: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint posterior of queries ``(member, normalized step)``: mean ``(Q,)`` and covariance ``(Q, Q)``.

        For an existing curve ``n`` with ``k_q = a_n^2 k_t(t_n, t_q)`` (paper Eq. 19 and Sec. 3.1, with the
        asymptote integrated out): ``mean_q = s d_q + k_q^T K_tn^-1 (y_n - s d_n) + Omega_q mu_n`` with
        ``Omega_q = w_q - k_q^T K_tn^-1 w_n`` (the paper's ``1 - k_q^T K_tn^-1 1`` when ``w = 1``), and

            ``Cov(q, q') = Omega_q Omega_q' C(n, n') + [n = n'] (a_n^2 k_t(t_q, t_q') - k_q^T K_tn^-1 k_q')``

        plus the observation noise (times ``a_n^2``) on the diagonal of ``noisy`` queries. A new config has
        ``Omega = w_q`` and the prior ``k_t`` as its residual. Curves are independent given ``f``, so members couple
        through ``C`` alone.

        Args:
            member_curves: ``(P,)`` curve index per member, -1 for a new config.
            member_x: ``(P, d)`` configs.
            q_member: ``(Q,)`` member of each query; q_t: ``(Q,)`` normalized steps; q_noisy: ``(Q,)`` bool,
                True for an observation (with noise), False for the latent curve value.
        """
        h = self.hypers
        mu, C = self.asymptote_posterior(member_curves, member_x, full_cov=True)
        omega, local, W, amp = self._local(member_curves[q_member], q_t)
        mean = local + omega * mu[q_member]
        decay = exponential_decay_kernel(q_t, q_t, h.value("log_alpha"), h.value("log_beta"))
        resid = h.value("log_outputscale_t") * amp.unsqueeze(-1) * decay - W @ W.T
        same = q_member.unsqueeze(-1) == q_member.unsqueeze(-2)
        cov = omega.unsqueeze(-1) * omega.unsqueeze(-2) * C[q_member][:, q_member] + same * resid
        cov = cov + torch.diag(q_noisy.to(_DTYPE) * h.value("log_noise") * amp)
        return mean, cov

    def _local(
        self, curve: torch.Tensor, q_t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per query on curve ``curve[q]`` (-1: a new config) at ``q_t[q]``: ``Omega = w_q - k_q^T K_tn^-1 w_n``,
        the local mean ``s d_q + k_q^T K_tn^-1 (y_n - s d_n)``, ``W = L_n^-1 k_q: (Q, T)`` and the curve's amplitude
        multiplier; a new config has ``Omega = w_q`` and the local mean ``s d_q``."""
        h, data, T = self.hypers, self.data, self._terms
        Q = len(q_t)
        d = h.start_weight(q_t)
        omega, local = 1 - d, h.start * d
        W = torch.zeros(Q, data.t.shape[1], dtype=_DTYPE)
        amp = torch.full((Q,), self.amp_new, dtype=_DTYPE)
        old = curve >= 0
        if bool(old.any()):
            c = curve[old]
            if self.amp2 is not None:
                amp[old] = self.amp2[c]
            tq = data.grid if self._grid else data.t[c]
            decay = exponential_decay_kernel(q_t[old].unsqueeze(-1), tq, h.value("log_alpha"), h.value("log_beta"))
            kq = h.value("log_outputscale_t") * amp[old].unsqueeze(-1) * decay.squeeze(-2) * data.mask[c]
            w = self._half_solve(c, kq)
            z1, zr = T["z1"][c], T["zr"][c]
            omega = omega.clone()
            local = local.clone()
            omega[old] = omega[old] - (w * z1).sum(-1)
            # k^T K^-1 (y - s d) = k^T K^-1 (y - s d - m w) + m k^T K^-1 w
            local[old] = local[old] + (w * zr).sum(-1) + h.mean * (w * z1).sum(-1)
            W[old] = w
        return omega, local, W, amp

    def _one_query(self, member_curves: torch.Tensor, member_x: torch.Tensor, q_t: torch.Tensor) -> dict:
        """The pieces of one query per member: ``mu``, ``V = L_B^-1 Lambda^1/2 k(X, x)``, ``Omega``, the local
        mean ``k_q^T K_tn^-1 y_n``, ``W = L_n^-1 k_q`` and the prior variances."""
        T, h, data = self._terms, self.hypers, self.data
        idx = torch.arange(data.n)
        same_train = ((member_curves.unsqueeze(-1) == idx) & (member_curves.unsqueeze(-1) >= 0)).to(_DTYPE)
        Kpx = self._kx(h, member_x, data.X, same_train)
        a = T["sl"] * torch.cholesky_solve(T["g"].unsqueeze(-1), T["LB"]).squeeze(-1)
        V = torch.linalg.solve_triangular(T["LB"], T["sl"].unsqueeze(-1) * Kpx.T, upper=False)
        omega, local, W, amp = self._local(member_curves, q_t)
        decay = torch.exp(h.value("log_alpha") * (torch.log(h.value("log_beta"))
                                                   - torch.log(2 * q_t + h.value("log_beta"))))
        return {"mu": h.mean + Kpx @ a, "V": V, "omega": omega, "local": local, "W": W, "amp": amp,
                "prior_f": h.value("log_outputscale_x") + h.value("log_nugget") * self._own_nugget(member_curves),
                "prior_t": h.value("log_outputscale_t") * amp * decay}

    def marginal(
        self, member_curves: torch.Tensor, member_x: torch.Tensor, q_t: torch.Tensor, noisy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of one query per member (``q_t: (P,)``), without the ``P x P`` covariance:
        ``Var = Omega^2 C_nn + k_t(t, t) - |L_n^-1 k_q|^2``, ``C_nn = k(x, x) - |V|^2``."""
        q = self._one_query(member_curves, member_x, q_t)
        var_f = (q["prior_f"] - (q["V"] ** 2).sum(0)).clamp_min(1e-12)
        mean = q["local"] + q["omega"] * q["mu"]
        var = q["omega"] ** 2 * var_f + q["prior_t"] - (q["W"] ** 2).sum(-1)
        if noisy:
            var = var + self.hypers.value("log_noise") * q["amp"]
        return mean, var.clamp_min(1e-12)

    def cross_covariance(
        self,
        curves_a: torch.Tensor, x_a: torch.Tensor, t_a: torch.Tensor,
        curves_b: torch.Tensor, x_b: torch.Tensor, t_b: torch.Tensor,
    ) -> torch.Tensor:
        """``Cov(a_i, b_j): (P_a, P_b)`` between latent queries of two member sets, one query per member; members
        of different sets are different asymptotes unless they are the same existing curve."""
        h = self.hypers
        qa, qb = self._one_query(curves_a, x_a, t_a), self._one_query(curves_b, x_b, t_b)
        same = ((curves_a.unsqueeze(-1) == curves_b.unsqueeze(-2)) & (curves_a.unsqueeze(-1) >= 0)).to(_DTYPE)
        C = self._kx(h, x_a, x_b, same) - qa["V"].T @ qb["V"]
        decay = exponential_decay_kernel(t_a, t_b, h.value("log_alpha"), h.value("log_beta"))
        resid = h.value("log_outputscale_t") * qa["amp"].unsqueeze(-1) * decay - qa["W"] @ qb["W"].T
        return qa["omega"].unsqueeze(-1) * qb["omega"].unsqueeze(-2) * C + same * resid

    def predict(
        self, steps: Sequence[float], curve: int | None = None, x: np.ndarray | None = None, noisy: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance, in the objective's units, of a curve at ``steps`` (a step count, not normalized).

        Give ``curve`` (an index into the data) to extrapolate an observed curve, or ``x`` (an encoded config) for
        the whole curve of a new config.
        """
        t = torch.as_tensor(np.asarray(steps, dtype=float) / self.data.max_step, dtype=_DTYPE)
        if curve is not None:
            mc, mx = torch.tensor([int(curve)]), self.data.X[int(curve)].unsqueeze(0)
        elif x is not None:
            mc, mx = torch.tensor([-1]), torch.as_tensor(np.asarray(x, dtype=float), dtype=_DTYPE).reshape(1, -1)
        else:
            raise ValueError("predict needs curve= (an observed curve) or x= (a new config)")
        q = torch.zeros(len(t), dtype=torch.long)
        with torch.no_grad():
            mean, cov = self.joint(mc, mx, q, t, torch.full((len(t),), noisy))
        sd = self.data.scale
        return self.data.unstandardize(mean.numpy()), cov.diagonal().clamp_min(0).numpy() * sd**2


# -- fitting ----------------------------------------------------------------------------------------------------------


def estimate_amplitudes(
    data: CurveData,
    hypers: FreezeThawHyperparameters,
    prior_sd: float | None = None,
    limit: float = 6.0,
    n_grid: int = 97,
) -> torch.Tensor:
    """Per-curve amplitude multipliers ``a_n^2`` of the curve covariance, ``(N,)``: each curve's maximum a posteriori
    value (on a grid of ``|log a^2| <= limit``) under its restricted likelihood and a Cauchy prior on ``log a^2``
    centred at 0, with scale ``prior_sd`` or, when None, one estimated from the curves (empirical Bayes,
    :func:`_amplitude_spread`).

    Why: one curve kernel for all curves is fitted by the majority. On populations where most configs barely learn
    (TaskSet: 95% of the curves are flat at chance level), it learns that curves are flat and predicts a good,
    still-falling curve's final value as its last value, with a tiny variance. A curve's own movement tells how much
    it has left to move: ``K_tn = a_n^2 (k_t + noise I)``, the scale mixture behind a Student-t process (Shah,
    Wilson, Ghahramani, AISTATS 2014) with its scale at the mode. Scaling the whole covariance, noise included, keeps
    a curve's forecast shape and only widens it: a jumpy curve is not read as a steep one (scaling ``k_t`` alone
    extrapolated jumps into wild forecasts in our TaskSet tests). The restricted likelihood integrates the curve's
    offset (its asymptote) out with a flat prior, so ``a_n`` reads only the curve's shape; a curve with fewer than
    three points takes the mean amplitude of those with more (or 1 while fewer than five have more), as a new
    config does (:attr:`FreezeThawGP.amp_new`). With ``B = k_t + noise I`` (unit amplitude) and
    ``q_n = y^T B^-1 y - (1^T B^-1 y)^2 / 1^T B^-1 1`` (from the half-solves the model computes anyway):

        ``-2 log p(y_n | a^2) = q_n / a^2 + (T_n - 1) log a^2 + const``,   unpenalized optimum ``q_n / (T_n - 1)``.
    """
    with torch.no_grad():
        c = _curve_terms(data, hypers, data.grid is not None)
        lam = (c["z1"] ** 2).sum(-1).clamp_min(1e-300)
        q = ((c["zr"] ** 2).sum(-1) - (c["z1"] * c["zr"]).sum(-1) ** 2 / lam).clamp_min(0)
        dof = (data.n_points - 1).to(_DTYPE)
        if prior_sd is None:
            g_hat = torch.log(q.clamp_min(1e-300) / dof.clamp_min(1)).clamp(-limit, limit)
            prior_sd = _amplitude_spread(g_hat, data.n_points)
        g = torch.linspace(-limit, limit, n_grid, dtype=_DTYPE)
        obj = q[:, None] * torch.exp(-g) + dof[:, None] * g + 2 * torch.log1p((g / prior_sd) ** 2)
        amp2 = torch.exp(g[obj.argmin(-1)])
        # Two points barely say how a curve moves: such curves (and new configs, see ``amp_new``) take the mean
        # amplitude of the curves that do say, E[a^2], the moment-matched choice.
        known = data.n_points >= 3
        if int(known.sum()) >= 5:
            amp2 = torch.where(known, amp2, amp2[known].mean())
        return amp2


def _amplitude_spread(g_hat: torch.Tensor, n_points: torch.Tensor) -> float:
    """Empirical-Bayes scale of the prior of ``log a^2``: the robust spread (median absolute deviation) of the
    curves' own estimates, less their sampling noise.

    A log-variance estimated from ``T`` points has a sampling variance of about ``2 / (T - 1)``; what the estimates
    vary by beyond that is how much the curves' amplitudes really differ. The prior is a Cauchy with this scale:
    curves that share one amplitude (as draws from the model's prior do) are shrunk to it, while the few curves of a
    population that really move (5% of TaskSet's) are penalized only logarithmically and keep their amplitude. The
    scale is at least 1 (a factor e in variance): smaller scales cost TaskSet's falling curves their forecasts.
    """
    ok = n_points >= 3
    if int(ok.sum()) < 5:
        return 1.0
    g = g_hat[ok]
    mad = 1.4826 * float((g - g.median()).abs().median())
    noise = float((2.0 / (n_points[ok] - 1)).mean())
    return math.sqrt(max(mad**2 - noise, 1.0))


def fit_freeze_thaw_gp(
    data: CurveData,
    init: FreezeThawHyperparameters | None = None,
    max_iter: int = 50,
    max_fit_curves: int = 256,
    seed: int = 0,
    amplitudes: bool = True,
) -> FreezeThawGP:
    """Maximum a posteriori hyperparameters by L-BFGS (torch autograd), then the exact posterior on all curves.

    The fit uses at most ``max_fit_curves`` curves (the best by last value, the rest at random): the marginal
    likelihood's cost grows as ``N^3`` while hyperparameters settle with a few hundred curves. With ``amplitudes``,
    the per-curve amplitudes (:func:`estimate_amplitudes`) and the hyperparameters are fitted in turn. A
    failed optimization (non-finite loss, Cholesky failure) restarts from the defaults; if that fails too, the
    model keeps default hyperparameters with a warning: a numerical accident never ends a sweep.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> curves = [(np.arange(1, 6), 1 / np.arange(1, 6) + a) for a in rng.uniform(0, 1, 8)]
        >>> gp = fit_freeze_thaw_gp(CurveData.from_curves(rng.uniform(size=(8, 2)), curves, 10), max_iter=10)
        >>> bool(gp.hypers.value("log_noise") < 0.1)
        True
    """
    with _few_threads(data.n):
        return _fit(data, init, max_iter, max_fit_curves, seed, amplitudes)


def _fit(data, init, max_iter, max_fit_curves, seed, amplitudes) -> FreezeThawGP:
    pick = np.arange(data.n)
    if data.n > max_fit_curves:
        rng = np.random.default_rng(seed)
        last = (data.y * data.mask).sum(-1) / data.mask.sum(-1)  # cheap stand-in for "good curve"
        best = np.argsort(last.numpy())[: max_fit_curves // 4]
        rest = np.setdiff1d(np.arange(data.n), best)
        pick = np.sort(np.concatenate([best, rng.choice(rest, max_fit_curves - len(best), replace=False)]))
    fit_data = data.subset(pick) if len(pick) < data.n else data
    starts = [init.clone()] if init is not None else []
    starts.append(FreezeThawHyperparameters.default(data.dim))
    h, amp2 = FreezeThawHyperparameters.default(data.dim), None
    for start in starts:
        try:
            if amplitudes:
                # Amplitudes given the starting hyperparameters, hyperparameters given them, amplitudes again:
                # one optimization (a second round changed predictions little in our tests).
                amp2 = estimate_amplitudes(data, start)
                h = _lbfgs(fit_data, start, max_iter, amp2[pick])
                amp2 = estimate_amplitudes(data, h)
            else:
                h = _lbfgs(fit_data, start, max_iter, None)
            break
        except (torch.linalg.LinAlgError, RuntimeError, ValueError) as e:
            warnings.warn(f"freeze-thaw GP fit failed ({e}); retrying from default hyperparameters", stacklevel=2)
            h, amp2 = FreezeThawHyperparameters.default(data.dim), None
    try:
        return FreezeThawGP(data, h, amp2)
    except (torch.linalg.LinAlgError, RuntimeError):
        warnings.warn("freeze-thaw GP: fitted hyperparameters fail on all curves; using defaults", stacklevel=2)
        return FreezeThawGP(data, FreezeThawHyperparameters.default(data.dim))


def _lbfgs(
    data: CurveData, start: FreezeThawHyperparameters, max_iter: int, amp2: torch.Tensor | None
) -> FreezeThawHyperparameters:
    """Minimize the negative log posterior per observation with SciPy's L-BFGS-B on torch gradients (as Optuna's
    GP sampler does): box bounds come free and it needs none of ``torch.optim``'s machinery."""
    from scipy.optimize import minimize

    names = start.names()
    sizes = [getattr(start, n).numel() for n in names]
    bounds = []
    for n, k in zip(names, sizes, strict=True):
        bounds += [FreezeThawHyperparameters._BOUNDS.get(n, (-10.0, 10.0))] * k
    model = FreezeThawGP.__new__(FreezeThawGP)
    model.data, model.amp2 = data, amp2
    model._grid = data.grid is not None
    n_obs = float(data.mask.sum())

    def unpack(theta: np.ndarray) -> FreezeThawHyperparameters:
        parts, i = [], 0
        for n, k in zip(names, sizes, strict=True):
            v = torch.tensor(theta[i : i + k], dtype=_DTYPE, requires_grad=True)
            parts.append(v if getattr(start, n).dim() else v.reshape(()))
            i += k
        return FreezeThawHyperparameters(*parts)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        h = unpack(theta)
        model.hypers = h
        loss = -(model.log_marginal_likelihood(h) + h.log_prior()) / n_obs
        if not torch.isfinite(loss):
            raise ValueError("non-finite marginal likelihood")
        grads = torch.autograd.grad(loss, h.tensors())
        return loss.item(), np.concatenate([g.reshape(-1).numpy() for g in grads])

    theta0 = np.concatenate([getattr(start, n).detach().reshape(-1).numpy() for n in names])
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": max_iter})
    return unpack(res.x).clone()


# -- the decision -----------------------------------------------------------------------------------------------------


def log_expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """``log EI`` for minimization, ``log(sd h(u))`` with ``u = (best - mean) / sd`` and ``h(u) = phi(u) + u Phi(u)``.

    In log space so that hopeless members still rank (Ament et al., "Unexpected improvements to expected
    improvement", NeurIPS 2023). For ``u < 0``, ``h(u) = phi(u) (1 - |u| Phi(u) / phi(u))`` with the Mills ratio
    from ``erfcx``, which keeps its digits down to ``u`` of about -1e4.
    """
    from scipy.special import erfcx

    sd = np.maximum(sd, 1e-12)
    u = (best - mean) / sd
    log_phi = -0.5 * u**2 - 0.5 * math.log(2 * math.pi)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pos = np.log(np.exp(log_phi) + u * norm.cdf(u))
        inner = 1 + u * math.sqrt(math.pi / 2) * erfcx(-u / math.sqrt(2))
        neg = log_phi + np.log(np.maximum(inner, 1e-300))
    return np.where(u >= 0, pos, neg) + np.log(sd)


@dataclass(frozen=True)
class Plan:
    """What to run on the next free worker.

    Attributes:
        trial_id: the paused trial to thaw, or None for a new config.
        config_u: the new config (encoded) when ``trial_id`` is None; None during the random warm-up.
        scores: ``"trial <id>"`` / ``"new <k>"`` -> the rule's score, for inspection.
        rule: the acquisition rule that decided (``"warmup"`` before the model runs).
    """

    trial_id: int | None
    config_u: np.ndarray | None
    scores: dict[str, float] = field(default_factory=dict)
    rule: str = "warmup"


_RULES = ("entropy", "ei", "ei_horizon", "ei_next", "promote")


class FreezeThawPolicy:
    """The freeze-thaw decision: which member of a basket of paused trials and new candidates to run next.

    Paper Sec. 4 (Algorithm 1): the basket holds the ``basket_paused`` paused trials and the ``basket_new`` new
    candidates (out of ``n_candidates`` Sobol points and perturbations of the best configs) with the highest
    expected improvement of their final value; the member run next maximizes, per unit of cost:

    - ``"entropy"`` (the paper's): the information gained about which member (or the best completed trial) has
      the lowest final value, ``H(P_min) - E_z H(P_min | z)``, where ``z`` is the member's next observation
      (the end of its next segment) and ``P_min`` is estimated by Monte Carlo with common random numbers, the
      fantasies ``z`` at Gauss-Hermite nodes, and the conditioning by Matheron's rule;
    - ``"ei"``: the expected improvement of the final value over what the sweep holds (the best completed final
      value, or before any, the best value seen), divided by the cost of training the member to the final step;
    - ``"ei_horizon"``: as in ifBO (Rakotoarison et al., ICML 2024), the expected improvement over the best value
      seen so far of each member's value a random number of steps ahead (one horizon per decision);
    - ``"ei_next"``: as in DyHPO (Wistuba et al., NeurIPS 2022), the expected improvement of each member's value
      at the end of its next segment over the best value any trial showed at that step: a new config competes
      with every first segment seen, a thawed trial with the few that got as far.
    - ``"promote"``: ASHA's asynchronous promotion (Li et al., MLSys 2020): a paused trial at step ``s`` is thawed
      when it ranks in the best ``1 / eta`` of the trials that got to ``s``, by the model's forecast of its final
      value (``promote_by="forecast"``) or, as ASHA, by its value at ``s`` (``"value"``); otherwise a new config
      by expected improvement of its final value. With ``segment_growth`` (segments end at ``min_steps`` times its
      powers) it is ASHA with a learning-curve model proposing the configs. The default: the cheapest rule, and the
      best we measured on TaskSet (benchmarks/results/freeze_thaw_taskset.md).

    Entropy search only learns; when one paused trial is likely the best run (``P_min >= exploit_pmin`` among the
    runs that exist), it is thawed so that the sweep also finishes its best run. New configs are scored by the
    smooth part of their asymptote (no nugget), and a share ``explore`` of them are plain Sobol points.

    Work in flight (running trials, new trials without a report) is accounted for by conditioning on its next
    observation at the posterior mean (kriging believer): variances shrink where results are about to arrive.

    A policy is a function of ``(space, history, options)`` apart from the warm start of its hyperparameter fits,
    and is shared by :class:`~schedulers.freeze_thaw.FreezeThawScheduler` and
    :class:`~searchers.freeze_thaw.FreezeThawSearcher` through :func:`shared_policy`, so that they fit one model
    and the searcher proposes the new config the scheduler chose.

    Args:
        space, metric, mode: the sweep's.
        acquisition: ``"promote"`` (default), ``"entropy"``, ``"ei"``, ``"ei_horizon"`` or ``"ei_next"``.
        segment_steps: steps a thawed trial runs before the next decision (default: ``max_step / 10``, >= 1).
        segment_growth: instead, geometric segments: a thawed trial at step ``s`` runs to ``s * segment_growth``
            (``"promote"`` also keeps the best ``1 / segment_growth`` of each step's trials). Default 3 for
            ``"promote"`` when ``segment_steps`` is not given, else none.
        promote_by: ``"promote"`` ranks a step's trials as ASHA, by their value at that step (``"value"``, the
            default; the model then only proposes new configs), or by the model's forecast of their final value
            (``"forecast"``).
        min_distance: a new config closer than this to a tried one (in the unit cube) is not started: a near-copy
            (default 0: no limit).
        min_steps: steps a new trial runs before it may be paused (default: ``fidelity.low``).
        n_initial: curves (random Sobol configs) before the model decides.
        n_candidates: new candidates scored per decision.
        basket_paused, basket_new: basket sizes (paper: 10 and 3).
        n_samples, n_fantasies: Monte Carlo samples of ``P_min`` and fantasies per member (``"entropy"``).
        refit_growth: refit hyperparameters when the number of observed points grew by this fraction.
        explore: the chance that a new config is a random Sobol point rather than the model's choice.
        exploit_pmin: with ``"entropy"``, thaw the paused trial most likely to be the best when that chance is at
            least this (entropy search alone would keep learning and never finish the best run).
        cost_key: the trial cost that measures a step's cost (a new config costs the median step).
        candidates: new configs come only from these (a tabulated benchmark's settings, a shortlist), each at
            most once, all of them scored (up to ``4 n_candidates`` untried ones a decision, drawn at random); once
            every one was tried, the most promising paused trial by the forecast of its final value runs on.
        seed: seeds candidates, Monte Carlo and horizons.
        max_points, max_fit_curves, max_curves: model size limits (points a curve, curves in a hyperparameter fit,
            curves in the model; see :meth:`CurveData.from_history` and :func:`fit_freeze_thaw_gp`).

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> policy = FreezeThawPolicy(Space({"lr": Float(1e-4, 1, log=True)}, fidelity=Fidelity("epoch", 1, 32)),
        ...                           "loss")
        >>> policy.segment_steps, policy.min_steps
        (3, 1)
    """

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str = "min",
        acquisition: str = "promote",
        segment_steps: int | None = None,
        min_steps: int | None = None,
        n_initial: int = 5,
        n_candidates: int = 256,
        basket_paused: int = 10,
        basket_new: int = 3,
        n_samples: int = 512,
        n_fantasies: int = 5,
        refit_growth: float = 0.2,
        explore: float = 0.25,
        segment_growth: float | None = None,
        min_distance: float = 0.0,
        promote_by: str = "value",
        exploit_pmin: float = 0.5,
        cost_key: str = "wall_seconds",
        candidates: Candidates | Sequence[Mapping[str, Any]] | None = None,
        seed: int = 0,
        max_points: int = 64,
        max_fit_curves: int = 128,
        max_curves: int = 300,
    ) -> None:
        if acquisition not in _RULES:
            raise ValueError(f"acquisition must be one of {list(_RULES)}, got {acquisition!r}")
        if space.fidelity is None:
            raise ValueError(
                "freeze-thaw needs a fidelity (training steps) in the space, e.g. fidelity: {name: epoch, low: 1, "
                "high: 50}; for single-step trials use a GP searcher with the fifo scheduler"
            )
        self.space, self.metric, self.mode = space, metric, mode
        self.acquisition = acquisition
        max_step = space.max_step
        self.segment_steps = int(segment_steps) if segment_steps is not None else max(1, round(max_step / 10))
        self.min_steps = int(min_steps) if min_steps is not None else int(space.fidelity.low)
        if self.segment_steps < 1 or self.min_steps < 1:
            raise ValueError(f"segment_steps and min_steps must be >= 1, got {self.segment_steps}, {self.min_steps}")
        self.n_initial = max(int(n_initial), 1)
        self.n_candidates, self.basket_paused, self.basket_new = int(n_candidates), int(basket_paused), int(basket_new)
        self.n_samples, self.n_fantasies = int(n_samples), int(n_fantasies)
        self.refit_growth, self.cost_key, self.seed = float(refit_growth), cost_key, int(seed)
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be a probability in [0, 1], got {explore}")
        self.explore = float(explore)
        if segment_growth is not None and not segment_growth > 1:
            raise ValueError(f"segment_growth must be > 1 (e.g. 3: segments end at 1, 3, 9, 27 steps), got "
                             f"{segment_growth}")
        if segment_growth is None and segment_steps is None and acquisition == "promote":
            segment_growth = 3.0  # ASHA's rungs: segments end at min_steps * 3^k
        self.segment_growth = None if segment_growth is None else float(segment_growth)
        if not min_distance >= 0:
            raise ValueError(f"min_distance must be >= 0 (a distance in the unit cube), got {min_distance}")
        self.min_distance = float(min_distance)
        if promote_by not in ("forecast", "value"):
            raise ValueError(f"promote_by must be 'forecast' or 'value', got {promote_by!r}")
        self.promote_by = promote_by
        self.candidates = Candidates.of(space, candidates)
        self.exploit_pmin = float(exploit_pmin)
        self._last_p_min = self._last_p_min_runs = np.zeros(1)
        self.max_points, self.max_fit_curves, self.max_curves = int(max_points), int(max_fit_curves), int(max_curves)
        self._model: FreezeThawGP | None = None
        self._model_key: Any = None
        self._fit_points = 0
        self._plans: dict[Any, Plan] = {}
        self._curves: dict[int, tuple] = {}
        self._step_values: dict[tuple[int, int], dict[int, float]] = {}
        self._keys: dict[int, tuple[Any, tuple]] = {}
        self.n_fits = 0

    # ---- schedule -------------------------------------------------------------------------------------------

    def next_stop(self, trial: Trial) -> int:
        """A new trial runs ``min_steps``; a thawed one ``segment_steps`` more."""
        if trial.last_step == 0:
            step = self.min_steps
        elif self.segment_growth is not None:
            step = max(trial.last_step + 1, round(trial.last_step * self.segment_growth))
        else:
            step = trial.last_step + self.segment_steps
        return min(step, self.space.max_step)

    def in_warmup(self, history: History) -> bool:
        n = 0
        for t in history:
            n += bool(t.curve) and t.status is not TrialStatus.FAILED
            if n >= self.n_initial:
                return False
        return True

    # ---- model ----------------------------------------------------------------------------------------------

    def model(self, history: History) -> FreezeThawGP | None:
        """The model of the history's curves: refitted when the data grew by ``refit_growth``, else the last
        hyperparameters with the new data (a posterior update costs one factorization, a fit dozens)."""
        key = _data_key(history)
        if key == self._model_key:
            return self._model
        data = CurveData.from_history(history, self.max_points, self._curves, self.max_curves)
        if data is None:
            return None
        n_points = int(data.mask.sum())
        if self._model is None or n_points >= (1 + self.refit_growth) * self._fit_points:
            init = self._model.hypers if self._model is not None else None
            self._model = fit_freeze_thaw_gp(data, init, max_iter=30 if init is None else 20,
                                             max_fit_curves=self.max_fit_curves, seed=self.seed)
            self._fit_points = n_points
            self.n_fits += 1
        else:
            try:
                hypers = self._model.hypers
                self._model = FreezeThawGP(data, hypers, estimate_amplitudes(data, hypers))
            except (torch.linalg.LinAlgError, RuntimeError):
                self._model = fit_freeze_thaw_gp(data, None, max_fit_curves=self.max_fit_curves, seed=self.seed)
                self._fit_points = n_points
        self._model.latent_new = True
        self._model_key = key
        return self._model

    # ---- the plan -------------------------------------------------------------------------------------------

    def plan(self, history: History, actionable: Sequence[Trial], exclude: Sequence[int] = ()) -> Plan:
        """Decide among thawing one of ``actionable`` (paused trials, or one whose segment just ended) and a new
        config. ``exclude``: trial ids not to count as work in flight (the one being decided on)."""
        act_ids = tuple(sorted(t.trial_id for t in actionable))
        skip = set(act_ids) | set(exclude)
        in_flight = [t for t in history if t.status in (TrialStatus.PENDING, TrialStatus.RUNNING)
                     and t.trial_id not in skip]
        key = (_data_key(history), act_ids, tuple((t.trial_id, t.last_step) for t in in_flight))
        if key in self._plans:
            return self._plans[key]
        with _few_threads(len(history)):
            plan = self._plan(history, list(actionable), in_flight)
        if len(self._plans) > 16:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _plan(self, history: History, actionable: list[Trial], in_flight: list[Trial]) -> Plan:
        if self.in_warmup(history):
            return Plan(None, None)
        gp = self.model(history)
        if gp is None:
            return Plan(None, None)
        data = gp.data
        row = {int(tid): i for i, tid in enumerate(data.trial_ids)}
        rng = np.random.default_rng([self.seed, int(data.mask.sum()), len(history)])
        max_step = self.space.max_step

        # Members: paused trials with a curve, and new candidates.
        paused = [t for t in actionable if t.trial_id in row and t.status is not TrialStatus.FAILED
                  and t.last_step < max_step]
        score_p = None
        if self.acquisition == "promote" and self.promote_by == "value" and paused:
            # ASHA's ranking needs no posterior: a promotable trial wins before any candidate is scored (the same
            # plan as scoring everything, at a fraction of the cost).
            last_p = np.array([t.last_step for t in paused], dtype=float)
            score_p = self._promote_scores(history, paused, last_p, None, row, np.full(len(paused), -np.inf),
                                           len(paused))
            if np.isfinite(score_p).any():
                i = int(np.argmax(score_p))
                return Plan(paused[i].trial_id, None, {f"trial {paused[i].trial_id}": float(score_p[i])},
                            self.acquisition)
        with torch.no_grad():
            all_mean, all_var = gp.marginal(torch.arange(data.n), data.X, torch.ones(data.n, dtype=_DTYPE))
        final_mean = all_mean.numpy().copy()
        final_mean[data.failed] = math.inf
        cand = self._candidates(history, data, final_mean, rng)
        n_p, n_c = len(paused), len(cand)
        p_rows = torch.tensor([row[t.trial_id] for t in paused], dtype=torch.long)
        curves = torch.cat([p_rows, torch.full((n_c,), -1, dtype=torch.long)])
        xs = torch.cat([data.X[p_rows], torch.as_tensor(cand, dtype=_DTYPE).reshape(n_c, self.space.dim)])
        last = np.array([t.last_step for t in paused] + [0] * n_c, dtype=float)
        cost_step = self._step_costs(history, paused, n_c)
        flight_c, flight_x, flight_t = self._in_flight(history, in_flight, row, data)

        # Final values: the paused trials' from the all-curves marginal; the candidates' conditioned on work in
        # flight, so that a free worker does not start a near-copy of a config that is about to report.
        with torch.no_grad():
            c_mean, c_var = self._conditioned_marginal(gp, curves[n_p:], xs[n_p:], torch.ones(n_c, dtype=_DTYPE),
                                                       flight_c, flight_x, flight_t)
        mean = np.concatenate([all_mean.numpy()[p_rows.numpy()], c_mean.numpy()])
        sd = np.sqrt(np.concatenate([all_var.numpy()[p_rows.numpy()], c_var.numpy()]))
        best_final = self._incumbent(history, data)
        log_ei = log_expected_improvement(mean, sd, best_final)

        if self.acquisition == "promote":
            if score_p is not None:  # by value, already ranked above (nothing was promotable)
                score = np.concatenate([score_p, log_ei[n_p:]])
            else:
                score = self._promote_scores(history, paused, last, final_mean, row, log_ei, n_p)
            members = np.arange(n_p + n_c)
        elif self.acquisition == "ei_horizon":
            horizon = int(rng.integers(1, max_step + 1))
            t_h = torch.as_tensor(np.minimum(last + horizon, max_step) / max_step, dtype=_DTYPE)
            with torch.no_grad():
                mh, vh = self._conditioned_marginal(gp, curves, xs, t_h, flight_c, flight_x, flight_t)
            tau = float((data.y[data.mask & ~torch.as_tensor(data.failed).unsqueeze(-1)]).min())
            score = log_expected_improvement(mh.numpy(), np.sqrt(vh.numpy()), tau)
            members = np.arange(n_p + n_c)
        elif self.acquisition == "ei_next":
            next_step = np.where(last > 0, np.minimum(last + self.segment_steps, max_step), self.min_steps)
            t_next = torch.as_tensor(next_step / max_step, dtype=_DTYPE)
            with torch.no_grad():
                mn, vn = self._conditioned_marginal(gp, curves, xs, t_next, flight_c, flight_x, flight_t)
            score = log_expected_improvement(mn.numpy(), np.sqrt(vn.numpy()), _best_at(data, next_step / max_step))
            members = np.arange(n_p + n_c)
        else:
            # The basket (paper Algorithm 1): the most promising paused trials and new candidates by EI.
            top_p = np.argsort(-log_ei[:n_p], kind="stable")[: self.basket_paused]
            top_c = n_p + np.argsort(-log_ei[n_p:], kind="stable")[: self.basket_new]
            members = np.concatenate([top_p, top_c]).astype(int)
            remaining = np.where(last[members] > 0, max_step - last[members], max_step)
            if self.acquisition == "ei":
                score = log_ei[members] - np.log(remaining * cost_step[members])
            else:
                steps = np.where(last[members] > 0, np.minimum(self.segment_steps, remaining), self.min_steps)
                ig = self._information_gain(gp, curves[members], xs[members], last[members], history, row,
                                            flight_c, flight_x, flight_t, rng, len(top_p))
                score = np.log(np.maximum(ig, 1e-12)) - np.log(steps * cost_step[members])
                if ig.max() < 1e-4:  # nothing left to learn among them: fall back to EI per cost
                    score = log_ei[members] - np.log(remaining * cost_step[members])
                # Entropy search only learns; a sweep must also train its best run to the end. When one paused
                # trial is likely the best of the runs that exist (P_min >= exploit_pmin), thaw it.
                k = int(np.argmax(self._last_p_min_runs[: len(top_p)])) if len(top_p) else -1
                if k >= 0 and self._last_p_min_runs[k] >= self.exploit_pmin:
                    score = np.where(np.arange(len(members)) == k, np.inf, score)
            score = _scatter(score, members, n_p + n_c)
        order = np.argsort(-score, kind="stable")
        names = [f"trial {t.trial_id}" for t in paused] + [f"new {k}" for k in range(n_c)]
        scores = {names[i]: float(score[i]) for i in order[:32] if np.isfinite(score[i])}
        seen = self._seen_keys(history)
        twin = self._twins(history, cand, flight_x)
        explore = rng.random() < self.explore
        for i in order:
            if i < n_p:
                if score[i] == -np.inf and self.acquisition == "promote":
                    continue  # not promotable: a new config (the searcher's Sobol point if no candidate is left)
                return Plan(paused[i].trial_id, None, scores, self.acquisition)
            if explore:
                # Epsilon-greedy, as AEGiS (De Ath et al., 2021): a stationary GP is overconfident where good
                # configs are rare needles (TaskSet: 5%), so some new configs are plain Sobol points (or random
                # untried candidates).
                i = n_p + int(rng.integers(n_c if self.candidates is not None else self.n_candidates))
            config = self.space.decode(cand[i - n_p])
            if self.space.key(config) not in seen and not twin[i - n_p]:
                return Plan(None, cand[i - n_p], scores, "explore" if explore else self.acquisition)
        if n_c == 0 and self.candidates is not None and paused:
            # Every candidate was tried: nothing new can be learned by starting, so train on the paused run with
            # the best forecast (rather than stop the sweep with its budget unspent).
            k = int(np.argmin(final_mean[p_rows.numpy()]))
            return Plan(paused[k].trial_id, None, scores, "exhausted")
        return Plan(None, None, scores, self.acquisition)

    def _twins(self, history: History, cand: np.ndarray, flight_x: torch.Tensor) -> np.ndarray:
        """True for candidates closer than ``min_distance`` (in the unit cube) to a tried or running config
        (``flight_x``: the configs of work in flight, which may have no curve yet): training that
        config on says more than starting its near-copy, and on a tabulated benchmark (TaskSet answers a config by
        its nearest tabulated setting) the copy *is* it."""
        if self.min_distance <= 0 or self.candidates is not None:  # candidates: the untried ones only
            return np.zeros(len(cand), dtype=bool)
        d = self.space.dim
        U = torch.as_tensor(cand, dtype=_DTYPE).reshape(len(cand), d)
        # Every trial's encoded config (cached by model(); the model itself may leave short curves out).
        tried = [self._curves[t.trial_id][1] for t in history if t.trial_id in self._curves]
        tried = torch.cat([torch.as_tensor(np.asarray(tried, dtype=float).reshape(-1, d)),
                           flight_x.to(_DTYPE).reshape(-1, d)])
        return (torch.cdist(U, tried).min(-1).values < self.min_distance).numpy()

    def _promote_scores(self, history: History, paused: list[Trial], last: np.ndarray,
                        final_mean: np.ndarray | None, row: dict[int, int], log_ei: np.ndarray, n_p: int) -> np.ndarray:
        """ASHA's promotion with the model's forecasts: a paused trial at step ``s`` is thawed when its predicted
        final value is among the best ``floor(n / eta)`` of the ``n`` trials that got to ``s`` (``eta``:
        ``segment_growth``, default 3), the best predicted first; otherwise a new config by expected improvement.
        Trials the model leaves out (its curve cap drops the worst short curves) count as peers that lose."""
        eta = self.segment_growth or 3.0
        alive = [t for t in history if t.status is not TrialStatus.FAILED]
        reach = np.array([t.last_step for t in alive], dtype=float)
        modelled = None if final_mean is None else np.array(
            [final_mean[row[t.trial_id]] if t.trial_id in row else np.inf for t in alive])
        score = log_ei.copy()
        at_step: dict[int, np.ndarray] = {}
        pos = {t.trial_id: j for j, t in enumerate(alive)}
        peer_ids = np.array([t.trial_id for t in alive])
        for i in range(n_p):
            peers = reach >= last[i]
            k = int(peers.sum() // eta)
            if self.promote_by == "value":  # ASHA's own ranking: the value at the step, the model only proposes
                at = int(last[i])
                if at not in at_step:  # only the trials that got there are peers
                    at_step[at] = np.array([self._value_at(t, at) if r >= at else math.inf
                                            for t, r in zip(alive, reach, strict=True)])
                vals, own = at_step[at][peers], at_step[at][pos[paused[i].trial_id]]
            else:
                vals, own = modelled[peers], final_mean[row[paused[i].trial_id]]
            # Its rank among the peers, ties to the older trial (as ASHA's sort): copies of one config (tabulated
            # benchmarks answer near configs with one curve) do not all pass together.
            ids = peer_ids[peers]
            ahead = int((vals < own).sum() + ((vals == own) & (ids < paused[i].trial_id)).sum())
            if k >= 1 and ahead < k:
                score[i] = 1e6 - own  # promotable: before every new config, the best first
            else:
                score[i] = -np.inf
        return score

    def _value_at(self, trial: Trial, step: int) -> float:
        """The trial's minimize-signed metric at its last report at or before ``step`` (inf if none), from the
        curves :meth:`model` read (cached as a step -> value map while the curve does not change)."""
        hit = self._curves.get(trial.trial_id)
        if hit is None:
            return math.inf
        key = (trial.trial_id, hit[2])
        table = self._step_values.get(key)
        if table is None:
            steps, values, _ = hit[3]
            table = self._step_values[key] = {int(a): float(b) for a, b in zip(steps, values, strict=True)}
        if step in table:
            return table[step]
        before = [a for a in table if a <= step]
        return table[max(before)] if before else math.inf

    def _candidates(self, history: History, data: CurveData, final_mean: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
        """``n_candidates`` Sobol points, and a quarter as many Gaussian perturbations (sd 0.05 in the unit cube)
        of the five configs with the best predicted final value, where the optimum most likely is. With
        ``candidates``: the untried ones (at most ``4 n_candidates``, drawn at random)."""
        if self.candidates is not None:
            rows = np.flatnonzero(~self.candidates.tried(history))
            if len(rows) > 4 * self.n_candidates:
                rows = np.sort(rng.choice(rows, 4 * self.n_candidates, replace=False))
            return self.candidates.U[rows]
        n_local = self.n_candidates // 4
        sobol = self.space.sobol(self.n_candidates, seed=int(rng.integers(2**31)))
        top = data.X[np.argsort(final_mean, kind="stable")[:5]].numpy()
        local = top[rng.integers(len(top), size=n_local)] + rng.normal(0, 0.05, size=(n_local, self.space.dim))
        return self._snap(np.clip(np.concatenate([sobol, local]), 0, 1))

    def _seen_keys(self, history: History) -> set[tuple]:
        keys = set()
        for t in history:
            hit = self._keys.get(t.trial_id)
            if hit is None or hit[0] is not t.config:
                hit = self._keys[t.trial_id] = (t.config, self.space.key(t.config))
            keys.add(hit[1])
        return keys

    def _snap(self, U: np.ndarray) -> np.ndarray:
        """Candidates as the configs they decode to: the model must score what will actually run."""
        from hpo.space import Float

        if all(isinstance(p, Float) for p in self.space.params.values()):
            return U
        names = self.space.names
        return np.array([self.space.encode({k: self.space.decode(u)[k] for k in names}) for u in U])

    def _step_costs(self, history: History, paused: list[Trial], n_new: int) -> np.ndarray:
        per_step = {t.trial_id: t.cost.get(self.cost_key, 0.0) / t.last_step for t in history
                    if t.last_step > 0 and t.cost.get(self.cost_key, 0.0) > 0}
        typical = float(np.median(list(per_step.values()))) if per_step else 1.0
        own = [per_step.get(t.trial_id, typical) for t in paused]
        return np.maximum(np.array(own + [typical] * n_new, dtype=float), 1e-12)

    def _in_flight(self, history: History, in_flight: list[Trial], row: dict[int, int], data: CurveData):
        """Queries of work in flight: a running trial's next stop, a new trial's first segment end."""
        c, x, t = [], [], []
        for trial in in_flight:
            if trial.trial_id in row:
                c.append(row[trial.trial_id])
                x.append(data.X[row[trial.trial_id]].numpy())
            else:
                c.append(-1)
                x.append(self.space.encode({k: trial.config[k] for k in self.space.names}))
            t.append(self.next_stop(trial) / self.space.max_step)
        d = self.space.dim
        return (torch.tensor(c, dtype=torch.long), torch.as_tensor(np.asarray(x, dtype=float).reshape(-1, d)),
                torch.tensor(t, dtype=_DTYPE))

    def _conditioned_marginal(self, gp, curves, xs, t, fc, fx, ft):
        """Marginals of ``(member, t)`` after conditioning on the in-flight observations at their mean: the mean
        stays and ``Var -= Cov(q, z) Cov(z, z)^-1 Cov(z, q)`` (kriging believer)."""
        mean, var = gp.marginal(curves, xs, t)
        if len(fc) == 0:
            return mean, var
        cross = gp.cross_covariance(curves, xs, t, fc, fx, ft)
        _, cff = gp.joint(fc, fx, torch.arange(len(fc)), ft, torch.ones(len(fc), dtype=torch.bool))
        w = torch.linalg.solve_triangular(_cholesky(cff), cross.T, upper=False)
        return mean, (var - (w * w).sum(0)).clamp_min(1e-12)

    def _incumbent(self, history: History, data: CurveData) -> float:
        """What the sweep holds now, standardized: the best final value of a completed trial, or before any, the
        best value seen at any step. Against it, expected improvement values *training* a run to the end: against
        the best predicted final value (a plug-in incumbent) the run the model is surest of has no improvement left
        to expect, and is never finished."""
        finals = [float(data.standardize(y)) for t in history.completed if t.last_step >= self.space.max_step
                  and (y := history.objective(t)) is not None and math.isfinite(y)]
        if finals:
            return min(finals)
        ok = data.mask & ~torch.as_tensor(data.failed).unsqueeze(-1)
        return float(data.y[ok].min()) if bool(ok.any()) else math.inf

    def _information_gain(self, gp, curves, xs, last, history, row, fc, fx, ft, rng, n_runs: int) -> np.ndarray:
        """Entropy search over the basket (paper Sec. 4, Eq. 21-22), by Monte Carlo.

        ``F: (P,)`` latent final values of the members, ``Z: (P,)`` their next observations. Joint samples
        ``(F^s, Z^s)`` are conditioned on a fantasy ``z`` of member ``a`` by Matheron's rule,
        ``F | z = F^s + Cov(F, Z_a) (z - Z_a^s) / Var(Z_a)``, with the same samples for every ``a`` and ``z``, so
        differences of entropies are not drowned in Monte Carlo noise.
        """
        data, max_step = gp.data, self.space.max_step
        P = len(curves)
        t_next = np.where(last > 0, np.minimum(last + self.segment_steps, max_step), self.min_steps) / max_step
        F = len(fc)
        mc, mx = torch.cat([curves, fc]), torch.cat([xs, fx])
        qm = torch.cat([torch.arange(P), torch.arange(P), P + torch.arange(F)])
        qt = torch.cat([torch.ones(P, dtype=_DTYPE), torch.as_tensor(t_next, dtype=_DTYPE), ft])
        noisy = torch.cat([torch.zeros(P, dtype=torch.bool), torch.ones(P + F, dtype=torch.bool)])
        with torch.no_grad():
            mean, cov = gp.joint(mc, mx, qm, qt, noisy)
            if F:  # kriging believer on work in flight: the mean stays, the covariance shrinks
                Lf = _cholesky(cov[2 * P:, 2 * P:])
                w = torch.linalg.solve_triangular(Lf, cov[2 * P:, : 2 * P], upper=False)
                cov = cov[: 2 * P, : 2 * P] - w.T @ w
                mean = mean[: 2 * P]
            L = _cholesky(cov)
        mean, cov, L = mean.numpy(), cov.numpy(), L.numpy()
        S = self.n_samples
        draws = mean + rng.standard_normal((S, 2 * P)) @ L.T  # (S, 2P)
        Fs, Zs = draws[:, :P], draws[:, P:]
        inc = [t for t in history.completed if t.last_step >= max_step and (y := history.objective(t)) is not None
               and math.isfinite(y)]
        best = min((float(data.standardize(history.objective(t))) for t in inc), default=math.inf)

        def p_min(Fv: np.ndarray) -> np.ndarray:
            # Fv: (G, S, P) -> (G, P + 1): how often each member, or the best completed trial (last), is lowest
            G = Fv.shape[0]
            idx = np.where(Fv.min(-1) < best, Fv.argmin(-1), P)  # (G, S)
            flat = (np.arange(G)[:, None] * (P + 1) + idx).ravel()
            return np.bincount(flat, minlength=G * (P + 1)).reshape(G, P + 1) / S

        def entropy(Fv: np.ndarray) -> np.ndarray:
            p = p_min(Fv)
            with np.errstate(divide="ignore", invalid="ignore"):
                return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)

        self._last_p_min = p_min(Fs[None])[0]
        # Which run that exists (paused, or the best completed) is the best: new candidates are not runs yet.
        runs_only = np.concatenate([Fs[:, :n_runs], np.full((S, P - n_runs), np.inf)], -1)
        self._last_p_min_runs = p_min(runs_only[None])[0]
        h0 = float(entropy(Fs[None])[0])
        nodes, weights = np.polynomial.hermite_e.hermegauss(self.n_fantasies)
        weights = weights / weights.sum()
        var_z = np.diag(cov)[P:]
        gain = cov[:P, P:] / var_z  # (P members' F, P actions): Cov(F, Z_a) / Var(Z_a)
        z = mean[P:, None] + np.sqrt(var_z)[:, None] * nodes[None, :]  # (A, J) fantasies
        shift = z[:, :, None] - Zs.T[:, None, :]  # (A, J, S)
        Fc = Fs[None, None] + shift[..., None] * gain.T[:, None, None, :]  # F | Z_a = z: (A, J, S, P)
        h = entropy(Fc.reshape(-1, S, P)).reshape(P, -1)  # (A, J)
        return np.maximum(h0 - h @ weights, 0.0)


@contextlib.contextmanager
def _few_threads(n: int, small: int = 4000):
    """One torch thread below a few thousand curves: OpenMP's fork-join costs more than it saves on matrices of a
    thousand rows, and far more when other processes share the cores (measured on 2 busy cores: a decision with
    1000 trials took 20 CPU seconds with 2 threads, 2 with one)."""
    before = torch.get_num_threads()
    if n < small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _best_at(data: CurveData, t: np.ndarray) -> np.ndarray:
    """For each normalized step ``t[i]``: the best value any curve that got that far showed there (its last point at
    or before ``t[i]``), DyHPO's incumbent at a budget; the best value anywhere where no curve got that far."""
    ok = data.mask & ~torch.as_tensor(data.failed).unsqueeze(-1)
    y = torch.where(ok, data.y, torch.tensor(math.inf, dtype=_DTYPE))
    reach = torch.where(ok, data.t, torch.tensor(-1.0, dtype=_DTYPE)).max(-1).values
    overall = float(y.min())
    out = np.full(len(t), overall)
    for b in np.unique(t):
        before = ok & (data.t <= b + 1e-12)
        if not bool(before.any()):
            continue
        last_idx = (before.cumsum(-1) * before).argmax(-1)  # index of the last point at or before b
        vals = y.gather(1, last_idx.unsqueeze(-1)).squeeze(-1)
        vals = torch.where((reach >= b - 1e-12) & before.any(-1), vals, torch.tensor(math.inf, dtype=_DTYPE))
        best = float(vals.min())
        if math.isfinite(best):
            out[t == b] = best
    return out


def _scatter(values: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    out[idx] = values
    return out


def _data_key(history: History) -> tuple:
    return tuple((t.trial_id, len(t.curve), t.status is TrialStatus.FAILED) for t in history
                 if t.curve or t.status is TrialStatus.FAILED)


_POLICIES: weakref.WeakValueDictionary[int, FreezeThawPolicy] = weakref.WeakValueDictionary()


def register_policy(policy: FreezeThawPolicy) -> None:
    """Make ``policy`` the one that :func:`shared_policy` finds for its space (the scheduler registers its own)."""
    _POLICIES[id(policy.space)] = policy


def shared_policy(space: Space, metric: str) -> FreezeThawPolicy | None:
    """The policy registered for this very space object and metric (one sweep's scheduler), if any."""
    policy = _POLICIES.get(id(space))
    if policy is not None and policy.space is space and policy.metric == metric:
        return policy
    return None
