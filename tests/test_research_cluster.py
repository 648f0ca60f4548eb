"""``sweep --address`` on a real two-node Ray cluster on 127.0.0.1: a head and a second
node, each with Ray processes of its own (``ray.cluster_utils.Cluster``), as a user's cluster
would be. The sweep gives the same sweep.csv as on a local Ray."""
from __future__ import annotations

import logging

import pandas as pd
import pytest

from mtbt.cli import main

SMALL = ["--set", 'strategy.instrument="equity"', "--set", "data.sample_sessions=20"]
GRID = "[scaling_exits]\ntp1_pct = [0.008, 0.01]\nstop_pct = [0.006, 0.007]\n"


def test_a_sweep_on_a_two_node_cluster_equals_the_local_one(tmp_path):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    sweep = ["sweep", "--grid", str(grid), *SMALL, "--quiet", "--out"]
    assert main([*sweep, str(tmp_path / "local")]) == 0          # local Ray, then gone
    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        assert main([*sweep, str(tmp_path / "cluster"), "--address", cluster.address]) == 0
        assert main([*sweep, str(tmp_path / "beside")]) == 0    # no --address: its own Ray
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR)
        try:          # the sweep's driver was a job of this cluster, with both nodes up
            assert len([n for n in ray.nodes() if n["Alive"]]) == 2
            jobs = ray._private.state.jobs()
            assert len(jobs) == 2 and sum(job["IsDead"] for job in jobs) == 1   # not "beside"
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    on_cluster, on_local = (pd.read_csv(tmp_path / p / "sweep.csv").drop(columns="seconds")
                            for p in ("cluster", "local"))         # all but the timing
    assert len(on_cluster) == 4 and on_cluster["error"].isna().all()
    pd.testing.assert_frame_equal(on_cluster, on_local, check_exact=True)
