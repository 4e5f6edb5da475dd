"""A real Slurm cluster on 127.0.0.1 for tests: munged, slurmctld and one slurmd per node.

Debian's packages (``apt-get install slurmctld slurmd slurm-client munge``) run several
slurmd on one host, each with its own node name (``slurmd -N``) and port, so a one-host
cluster still has several nodes. Everything lives in one folder (configuration, munge key
and socket, state, logs); nothing listens beyond loopback. :func:`start_cluster` raises
:class:`ClusterUnavailableError` with the reason when the daemons are missing or do not come up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "scontrol",
    "sinfo",
    "scancel",
    "squeue",
)
SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"


class ClusterUnavailableError(RuntimeError):
    """The cluster cannot run here; the message says why."""


@dataclass
class Cluster:
    root: Path
    conf: Path
    nodes: tuple[str, ...]
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def kill_node(self, node: str) -> None:
        """SIGKILL the node's slurmd: the controller still believes the node is up."""
        os.kill(self.pids[f"slurmd-{node}"], signal.SIGKILL)
        self.pids.pop(f"slurmd-{node}")

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n" + p.read_text(errors="replace")[-1500:]
            for p in sorted((self.root / "log").glob("*.log"))
        )


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _config(root: Path, nodes: tuple[str, ...], ports: list[int]) -> str:
    host = socket.gethostname().split(".")[0]
    lines = [
        "ClusterName=bnbfleet",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"SlurmctldPort={ports[0]}",
        f"AuthInfo=socket={root}/munge/munge.sock",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool/%n",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.%n.pid",
        f"SlurmctldLogFile={root}/log/slurmctld.log",
        f"SlurmdLogFile={root}/log/slurmd.%n.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/builtin",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "MessageTimeout=3",
        "DebugFlags=NO_CONF_HASH",
    ]
    for node, port in zip(nodes, ports[1:], strict=True):
        lines.append(f"NodeName={node} NodeAddr=127.0.0.1 Port={port} CPUs=1 State=UNKNOWN")
    lines.append(f"PartitionName=fleet Nodes={','.join(nodes)} Default=YES MaxTime=60 State=UP")
    return "\n".join(lines) + "\n"


def _pid(pidfile: Path) -> int | None:
    """The pid a daemon wrote, or None while the file is missing or not yet written (a
    daemon creates it first and writes it after: an empty file is read under load)."""
    try:
        words = pidfile.read_text().split()
    except OSError:
        return None
    return int(words[0]) if words and words[0].isdigit() else None


def _start(cluster: Cluster, name: str, argv: list[str], pidfile: Path) -> None:
    done = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, check=False)
    deadline = time.monotonic() + 10
    while (pid := _pid(pidfile)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if done.returncode != 0 or pid is None:
        raise ClusterUnavailableError(
            f"{name} did not start: {done.stderr.strip()}\n{cluster.logs()}"
        )
    cluster.pids[name] = pid


def _wait_idle(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        states = cluster.run("sinfo", "-h", "-N", "-o", "%N %T").stdout
        idle = {ln.split()[0] for ln in states.splitlines() if ln.split()[1:] == ["idle"]}
        if idle >= set(cluster.nodes):
            return
        time.sleep(0.5)
    raise ClusterUnavailableError(f"the nodes did not become idle: {states}\n{cluster.logs()}")


def _munge(cluster: Cluster) -> None:
    munge = cluster.root / "munge"
    munge.mkdir(mode=0o700)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    _start(
        cluster,
        "munged",
        [
            shutil.which("munged", path=SBIN) or "munged",
            f"--socket={munge}/munge.sock",
            f"--key-file={key}",
            f"--log-file={cluster.root}/log/munged.log",
            f"--pid-file={munge}/munged.pid",
            f"--seed-file={munge}/munged.seed",
            "--force",
        ],
        munge / "munged.pid",
    )


def _daemons(cluster: Cluster) -> None:
    root, conf = cluster.root, str(cluster.conf)
    _munge(cluster)
    ctld = shutil.which("slurmctld", path=SBIN) or "slurmctld"
    _start(cluster, "slurmctld", [ctld, "-f", conf, "-i"], root / "slurmctld.pid")
    for node in cluster.nodes:
        (root / "spool" / node).mkdir(parents=True)
        slurmd = shutil.which("slurmd", path=SBIN) or "slurmd"
        _start(
            cluster, f"slurmd-{node}", [slurmd, "-f", conf, "-N", node], root / f"slurmd.{node}.pid"
        )


def _cancel_jobs(cluster: Cluster, timeout: float = 15) -> None:
    """Cancel every job, batch scripts and steps alike, and wait for the queue to empty:
    a step still running when the daemons stop leaves its slurmstepd and sruns behind."""
    cluster.run("scancel", "--full", "--partition", "fleet", timeout=20)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster.run("squeue", "-h").stdout.strip():
        time.sleep(0.2)


def _stop(cluster: Cluster) -> None:
    _cancel_jobs(cluster)
    cluster.run("scontrol", "shutdown", timeout=20)
    for name in [n for n in cluster.pids if n != "munged"] + ["munged"]:
        pid = cluster.pids.get(name)
        if pid is None:
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


@contextmanager
def start_cluster(root: Path, nodes: tuple[str, ...], timeout: float = 40) -> Iterator[Cluster]:
    """A running cluster of ``nodes`` (one partition, ``fleet``), stopped on exit."""
    missing = [d for d in DAEMONS if shutil.which(d, path=SBIN + ":" + os.environ["PATH"]) is None]
    if missing:
        raise ClusterUnavailableError(
            f"not installed: {', '.join(missing)} (apt-get install slurmctld slurmd "
            "slurm-client munge)"
        )
    if os.geteuid() != 0:
        raise ClusterUnavailableError("slurmd runs jobs as their users, so it needs root")
    for sub in ("state", "log", "spool"):
        (root / sub).mkdir(parents=True)
    conf = root / "slurm.conf"
    conf.write_text(_config(root, nodes, _free_ports(len(nodes) + 1)))
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": os.environ["PATH"] + ":" + SBIN}
    cluster = Cluster(root=root, conf=conf, nodes=nodes, env=env)
    try:
        _daemons(cluster)
        _wait_idle(cluster, timeout)
        yield cluster
    finally:
        _stop(cluster)
