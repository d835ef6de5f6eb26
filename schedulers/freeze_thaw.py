"""Freeze-thaw scheduling: pause every trial after a segment, thaw the one a learning-curve model finds most
informative (or start a new config), on any worker, from its checkpoint.

Swersky, Snoek, Adams, "Freeze-Thaw Bayesian Optimization" (2014). After each segment the basket of paused trials and
new candidates is scored by :class:`~hpo.surrogates.freeze_thaw.FreezeThawPolicy`: by default ASHA's promotion with
new configs chosen by the learning-curve GP (the best rule we measured on TaskSet), or the paper's entropy search over
the best final value per unit cost, or a cheaper expected-improvement rule. The trial whose segment just ended
continues if it wins;
otherwise it is paused (it holds no worker, its checkpoint waits) and the free worker thaws the winner or starts the
new config that :class:`~searchers.freeze_thaw.FreezeThawSearcher` proposes from the same plan. Nothing is ever
stopped: a frozen trial may be thawed whenever the model changes its mind.

Syne Tune removed its freeze-thaw scheduler in 0.14; Ray Tune's ASHA and Optuna's pruners cannot pause and resume.
"""

from __future__ import annotations

from hpo.history import History
from hpo.scheduler import Decision, Scheduler
from hpo.space import Space
from hpo.surrogates.freeze_thaw import FreezeThawPolicy, register_policy
from hpo.trial import Trial, TrialStatus

__all__ = ["FreezeThawScheduler"]


class FreezeThawScheduler(Scheduler):
    """Pause, thaw or start trials by the freeze-thaw model.

    Args:
        space: needs a fidelity (training steps).
        metric, mode: what to optimize.
        acquisition: ``"promote"`` (the default: ASHA's promotion of the best third of each step's trials,
            segments ending at ``min_steps * 3^k``, new configs by the model's expected improvement of their final
            value; ``promote_by="forecast"`` ranks by the model's forecasts instead of the values), ``"entropy"``
            (the paper's entropy search per unit cost), ``"ei"`` (expected improvement of the final value per unit
            of cost to finish), ``"ei_horizon"`` (ifBO's expected improvement at a random horizon) or ``"ei_next"``
            (DyHPO's expected improvement at the next segment's end over the best value seen at that step).
            ``benchmarks/results/freeze_thaw_taskset.md`` compares them.
        segment_steps: steps between decisions for a thawed trial (default ``max_step / 10``; with ``"promote"``,
            geometric segments unless this is given).
        min_steps: steps a new trial trains before it can be paused (default ``fidelity.low``).
        n_initial: random configs (their first segment) before the model decides.
        seed: seeds candidates and Monte Carlo.
        **options: further :class:`~hpo.surrogates.freeze_thaw.FreezeThawPolicy` options (``n_candidates``,
            ``basket_paused``, ``basket_new``, ``segment_growth``, ``promote_by``, ``min_distance``, ``n_samples``,
            ``n_fantasies``, ``refit_growth``, ``cost_key``, ``candidates``).

    Used with :class:`~searchers.freeze_thaw.FreezeThawSearcher` (``searcher="freeze_thaw"``), both share this
    scheduler's model and plan; with another searcher, a "new config" decision takes that searcher's config.

    Example:
        >>> from hpo.space import Space, Float, Fidelity
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True)}, fidelity=Fidelity("epoch", 1, 48))
        >>> s = FreezeThawScheduler(space, "loss", min_steps=2)
        >>> from hpo.trial import Trial
        >>> s.next_stop(None, Trial(0, {"lr": 1e-3, "epoch": 48})), s.policy.acquisition, s.policy.segment_growth
        (2, 'promote', 3.0)
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
        seed: int = 0,
        **options,
    ) -> None:
        super().__init__(space, metric, mode)
        self.policy = FreezeThawPolicy(
            space, metric, mode, acquisition=acquisition, segment_steps=segment_steps, min_steps=min_steps,
            n_initial=n_initial, seed=seed, **options,
        )
        register_policy(self.policy)

    def next_stop(self, history: History, trial: Trial) -> int:
        return self.policy.next_stop(trial)

    def on_segment_end(self, history: History, trial: Trial) -> Decision:
        if trial.last_step >= self.max_step:
            return Decision.CONTINUE  # the orchestrator completes it
        if self.policy.in_warmup(history):
            return Decision.PAUSE
        # The trial competes with the paused ones for its own worker: continuing saves a reload.
        plan = self.policy.plan(history, [*history.paused, trial])
        return Decision.CONTINUE if plan.trial_id == trial.trial_id else Decision.PAUSE

    def choose_trial_to_run(self, history: History) -> int | None:
        paused = history.paused
        if not paused or self.policy.in_warmup(history):
            return None
        plan = self.policy.plan(history, paused)
        if plan.trial_id is not None and history[plan.trial_id].status is TrialStatus.PAUSED:
            return plan.trial_id
        return None
