"""The fleet batch script run for real by Slurm, on a cluster this test starts.

munged, slurmctld and three slurmd (nodes fleet1-3, one host, loopback only) from Debian's
packages; skipped, with the reason, where they are not installed or do not come up. Every
node runs the real ``bnb-provision`` of this worktree in its own working folder: snapshots
of an allocation, a lock made from them, ``fleet init`` through the CLI with one node that
already has an environment (bnb-provision refuses it there), and a node whose slurmd died
after the controller last heard from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bnb_provision.fleet.job import FleetJob
from bnb_provision.fleet.run import run_fleet
from bnb_provision.fleet.slurm import SlurmTarget
from tests.support.slurm import Cluster, ClusterUnavailableError, start_cluster
from tests.support.wheelhouse import TORCH, cpu_wheelhouse

pytestmark = pytest.mark.slurm
NODE_COMMAND = (sys.executable, "-m", "bnb_provision")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("slurm")
    try:
        with (
            start_cluster(root / "cluster", ("fleet1", "fleet2", "fleet3")) as running,
            pytest.MonkeyPatch.context() as mp,
        ):
            mp.setenv("SLURM_CONF", str(running.conf))
            yield running
    except ClusterUnavailableError as exc:
        pytest.skip(f"no Slurm cluster here: {exc}")


@pytest.fixture(scope="module")
def snapshots(cluster: Cluster) -> Any:
    job = FleetJob(
        mode="snapshot",
        output=cluster.root.parent / "snapshots",
        node_command=NODE_COMMAND,
        workdir=str(cluster.root.parent / "work" / "{node}"),
        timeout=300,
    )
    return run_fleet(job, SlurmTarget(nodes=2, partition="fleet", time_limit="10"))


def test_snapshot_on_every_node_of_the_allocation(cluster: Cluster, snapshots: Any) -> None:
    report = snapshots
    assert report.engine == "slurm" and report.mode == "snapshot" and report.ok
    assert report.job_id is not None and report.log == report.folder / f"slurm-{report.job_id}.out"
    nodes = [n.node for n in report.nodes]
    assert len(nodes) == 2 and set(nodes) <= set(cluster.nodes)
    for node in report.nodes:
        snapshot = json.loads((report.folder / f"{node.node}.json").read_text())
        assert snapshot["schema"] == "bnb-provision.machine/1"
        assert node.result == report.folder / f"{node.node}.json"
        assert node.summary.startswith("linux ")
        assert (report.folder / f"{node.node}.rc").read_text().strip() == "0"
        assert (cluster.root.parent / "work" / node.node).is_dir()
    script = (report.folder / "bnb-fleet.sbatch").read_text()
    assert "#SBATCH --partition=fleet\n#SBATCH --nodes=2\n#SBATCH --time=10\n" in script
    assert report.to_dict()["schema"] == "bnb-provision.fleet/1"


def test_init_on_every_node_names_the_node_where_bnb_provision_refused(
    cluster: Cluster, snapshots: Any
) -> None:
    root = cluster.root.parent
    house = cpu_wheelhouse(root / "wheelhouse")
    lock = [*NODE_COMMAND, "lock", "--machine", str(snapshots.folder), "-o", str(root / "locks")]
    lock += ["--torch", TORCH, "--cuda", "cpu", "--offline", "--find-links", str(house)]
    done = subprocess.run(lock, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    # fleet2 already has an environment where init would make one
    (root / "work" / "fleet2" / ".venv-bnb").mkdir(parents=True)
    done = subprocess.run(
        [
            *NODE_COMMAND, "fleet", "init", "--slurm", "--nodelist", "fleet1,fleet2",
            "--lock", str(root / "locks"), "-o", str(root / "results"),
            "--node-command", " ".join(NODE_COMMAND), "--workdir", str(root / "work" / "{node}"),
            "--timeout", "300", "--json",
            "--", "--offline", "--find-links", str(house), "--no-verify",
        ],
        capture_output=True, text=True, timeout=600, check=False, env=cluster.env,
    )  # fmt: skip
    assert done.returncode == 9, done.stdout + done.stderr
    assert "1 of 2 nodes did not succeed: fleet2 (failed)" in done.stderr
    report = json.loads(done.stdout)
    fleet1, fleet2 = report["nodes"]
    assert (fleet1["node"], fleet1["status"]) == ("fleet1", "ok")
    result = json.loads(Path(fleet1["result"]).read_text())
    assert result["schema"] == "bnb-provision.env/1" and result["action"] == "created"
    assert Path(result["env"]) == root / "work" / "fleet1" / ".venv-bnb"
    assert result["torch"] == f"{TORCH}+cpu" and fleet1["summary"].endswith("verify not run")
    assert (fleet2["node"], fleet2["status"]) == ("fleet2", "failed")
    assert fleet2["why"].startswith("exit 3: Error: ") and "already exists" in fleet2["why"]
    assert fleet2["result"] is None and not (root / "results" / "fleet2.json").exists()


def test_a_node_whose_slurmd_died_is_reported_unreachable(cluster: Cluster) -> None:
    cluster.kill_node("fleet3")
    job = FleetJob(
        mode="snapshot",
        output=cluster.root.parent / "after-a-crash",
        node_command=NODE_COMMAND,
        workdir=str(cluster.root.parent / "work" / "{node}"),
        timeout=300,
    )
    report = run_fleet(job, SlurmTarget(nodelist="fleet1,fleet3"))
    by_node = {n.node: n for n in report.nodes}
    assert by_node["fleet1"].status == "ok"
    assert by_node["fleet3"].status == "unreachable"
    assert "failed on node fleet3" in by_node["fleet3"].why
    assert not (report.folder / "fleet3.json").exists()
    assert not report.ok and report.count("unreachable") == 1
