"""Trials spread over the nodes of a multi-node Ray cluster (ray.cluster_utils.Cluster, all on this machine)."""

import os
import tempfile

import pytest

import hpo
from hpo.space import Float, Space
from hpo.storage import Storage


def sleepy(config):
    import time

    time.sleep(0.3)
    return config["x"]


@pytest.fixture
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    c.add_node(num_cpus=2)
    c.add_node(num_cpus=2)
    ray.init(address=c.address, runtime_env={"env_vars": {"PYTHONPATH": root}}, log_to_driver=False)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def test_trials_run_on_more_than_one_node(cluster):
    d = tempfile.mkdtemp()
    result = hpo.run(sleepy, Space({"x": Float(0, 1)}), metric="loss", directory=d, max_trials=8, display=False,
                     resources={"num_cpus": 1})
    assert len(result.history.completed) == 8
    with Storage(d, readonly=True) as st:
        nodes = {e["data"]["worker"]["node_id"] for e in st.events() if e["kind"] == "completed"}
    assert len(nodes) == 2
