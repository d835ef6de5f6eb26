"""Shared fixtures: one local Ray with 4 logical CPUs and 4 logical GPUs for every test that needs Ray."""

from __future__ import annotations

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

try:  # one thread per test process: on 2 shared cores, torch's default threads slow GP fits several-fold
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass


@pytest.fixture
def ray_local():
    """A local Ray with 4 logical GPUs (no real GPU needed: Ray schedules them as resources)."""
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) != 4:
        ray.shutdown()
    if not ray.is_initialized():
        ray.init(
            num_cpus=4,
            num_gpus=4,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": ROOT}},  # workers import the tests' trainables
        )
    yield ray
