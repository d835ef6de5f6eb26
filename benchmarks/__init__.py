"""hpo's benchmark harness: problems, peers and the runs that compare them, declared as data.

- :mod:`benchmarks.problems`: what is optimized (BoTorch functions, TaskSet curves, real CPU training, a cost-aware
  LM), each with its space, cost and known optimum.
- :mod:`benchmarks.peers`: Optuna's samplers and pruners as hpo searchers and schedulers, and method names
  ``SEARCHER[+SCHEDULER]`` for ours (any name of :mod:`hpo.registry`).
- :mod:`benchmarks.suites`: suites as lists of ``(problem, method, seed, workers, budget)`` runs.
- :mod:`benchmarks.harness`: runs one spec on the simulated executor through hpo's own orchestrator and stores a
  JSON record; :mod:`benchmarks.metrics`: regret traces, hypervolume, latency, utilization.
- :mod:`benchmarks.report`: the markdown tables and the figures in ``benchmarks/results/``.

Command line: ``python -m benchmarks {list,run,report}`` (see :mod:`benchmarks.__main__`).
"""
