"""Fleet runs without an engine: the command lines and the rendered batch script, the
results folder read into a report, the output folder's rules, and the CLI's usage errors.
The engines themselves run for real in test_fleet_ansible.py and test_fleet_slurm.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.errors import ExternalToolError, LockfileError, SnapshotError
from bnb_provision.fleet import ansible as fleet_ansible
from bnb_provision.fleet.ansible import AnsibleTarget, ansible_command, extra_vars
from bnb_provision.fleet.job import (
    DEFAULT_NODE_COMMAND,
    DEFAULT_WORKDIR,
    FleetJob,
    prepare_output,
    template,
)
from bnb_provision.fleet.report import read_results
from bnb_provision.fleet.slurm import SlurmTarget, render_script

SNAPSHOT = {
    "schema": "bnb-provision.machine/1",
    "os": {"system": "linux", "arch": "x86_64"},
    "python": {"version": "3.12.3"},
    "nvidia": {"driver": "580.95.05"},
    "gpus": [{"name": "NVIDIA H100 80GB HBM3"}, {"name": "NVIDIA H100 80GB HBM3"}],
}


def _locks(tmp: Path) -> Path:
    locks = tmp / "locks"
    locks.mkdir()
    (locks / "bnb-provision-locks.toml").write_text("")
    return locks


def _folder(tmp: Path, mode: str, nodes: list[str], files: dict[str, str]) -> Path:
    folder = tmp / "results"
    folder.mkdir()
    (folder / "nodes.txt").write_text(f"# bnb-provision fleet {mode}\n" + "\n".join(nodes) + "\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_the_playbook_gets_only_what_the_job_sets(tmp_path: Path) -> None:
    job = FleetJob(mode="snapshot", output=tmp_path / "out").checked()
    assert extra_vars(job) == {"bnb_fleet_mode": "snapshot", "bnb_fleet_out": str(tmp_path / "out")}
    job = FleetJob(
        mode="init",
        output=tmp_path / "out",
        locks=_locks(tmp_path),
        node_command=("/opt/bnb/bin/bnb-provision",),
        workdir="/scratch/{node}",
        args=("--no-verify",),
    ).checked()
    argv = ansible_command(
        job, AnsibleTarget(inventory="hosts.ini", limit="gpu"), "ansible-playbook"
    )
    assert argv[:4] == ("ansible-playbook", "-i", "hosts.ini", str(template("bnb-fleet.yml")))
    assert argv[4:6] == ("--limit", "gpu") and argv[6] == "--extra-vars"
    assert json.loads(argv[7]) == {
        "bnb_fleet_mode": "init",
        "bnb_fleet_out": str(tmp_path / "out"),
        "bnb_fleet_locks": str(tmp_path / "locks"),
        "bnb_fleet_command": ["/opt/bnb/bin/bnb-provision"],
        "bnb_fleet_workdir": "/scratch/{node}",
        "bnb_fleet_args": ["--no-verify"],
    }


def test_the_templates_default_to_what_the_library_says() -> None:
    playbook = template("bnb-fleet.yml").read_text()
    script = template("bnb-fleet.sbatch").read_text()
    assert f"default('{DEFAULT_WORKDIR}')" in playbook
    assert f"default({list(DEFAULT_NODE_COMMAND)})" in playbook
    assert f"BNB_FLEET_WORKDIR='{DEFAULT_WORKDIR}'" in script
    assert f"BNB_FLEET_COMMAND=({' '.join(DEFAULT_NODE_COMMAND)})" in script


def test_init_needs_a_lock_folder_with_its_manifest(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match=r"bnb-provision-locks\.toml"):
        FleetJob(mode="init", output=tmp_path / "out", locks=tmp_path).checked()


def test_the_rendered_script_quotes_every_setting_and_is_valid_bash(tmp_path: Path) -> None:
    job = FleetJob(
        mode="init",
        output=tmp_path / "my results",
        locks=_locks(tmp_path),
        node_command=("/opt/bnb env/bin/python", "-m", "bnb_provision"),
        args=("--env", "/scratch/{node}/.venv-bnb", "--find-links", "/srv/wheel house"),
    )
    target = SlurmTarget(partition="gpu", nodes=4, time_limit="30", sbatch_args=("--account=ml",))
    with pytest.raises(LockfileError, match="cannot hold spaces"):
        render_script(job, target)  # the job's log path is an #SBATCH line
    job = FleetJob(
        mode=job.mode, output=tmp_path / "out", locks=job.locks, node_command=job.node_command,
        args=job.args,
    )  # fmt: skip
    text = render_script(job, target)
    assert (
        "#SBATCH --partition=gpu\n#SBATCH --nodes=4\n#SBATCH --time=30\n"
        f"#SBATCH --output={tmp_path}/out/slurm-%j.out\n#SBATCH --account=ml\n"
    ) in text
    assert "BNB_FLEET_COMMAND=('/opt/bnb env/bin/python' -m bnb_provision)\n" in text
    assert (
        "BNB_FLEET_ARGS=(--env '/scratch/{node}/.venv-bnb' --find-links '/srv/wheel house')\n"
    ) in text
    assert f"BNB_FLEET_LOCKS={tmp_path}/locks\n" in text
    # the template's defaults were replaced, not added to
    assert re.findall("^BNB_FLEET_MODE=.*$", text, re.MULTILINE) == ["BNB_FLEET_MODE=init"]
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-n"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_folder_is_read_into_ok_failed_and_unreachable_nodes(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "snapshot",
        ["h100", "a100", "down", "gone", "copyfail", "garbled"],
        {
            "h100.json": json.dumps(SNAPSHOT),
            "a100.rc": "3\n",
            "a100.log": "Warning: slow disk\nError: --python /x: no such file.\n",
            "down.engine.log": "unreachable: make the working folder: ssh: connection refused\n",
            "copyfail.engine.log": "failed: copy the lock folder: no space left on device\n",
            "garbled.json": "{not json",
        },
    )
    report = read_results(folder)
    got = {n.node: (n.status, n.why) for n in report.nodes}
    assert got["h100"] == ("ok", "")
    assert got["a100"] == ("failed", "exit 3: Error: --python /x: no such file.")
    assert got["down"] == ("unreachable", "make the working folder: ssh: connection refused")
    assert got["gone"] == ("unreachable", "bnb-provision never reported back")
    assert got["copyfail"] == ("failed", "copy the lock folder: no space left on device")
    assert got["garbled"][0] == "failed" and "not readable JSON" in got["garbled"][1]
    h100 = report.nodes[0]
    assert h100.summary == (
        "linux x86_64, Python 3.12.3, driver 580.95.05, NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3"
    )
    data = report.to_dict()
    assert data["counts"] == {"ok": 1, "unreachable": 2, "failed": 3} and data["ok"] is False
    assert data["nodes"][0]["result"] == str(folder / "h100.json")


def test_an_init_result_gives_the_environment_and_its_verify(tmp_path: Path) -> None:
    env = {"schema": "bnb-provision.env/1", "action": "created", "env": "/w/.venv-bnb"}
    folder = _folder(
        tmp_path,
        "init",
        ["n1", "n2", "n3"],
        {
            "n1.json": json.dumps({**env, "torch": "2.13.0+cu130", "verify": {"ok": True}}),
            "n2.json": json.dumps({**env, "verify": None}),
            "n3.json": json.dumps(SNAPSHOT),  # not what init writes
        },
    )
    n1, n2, n3 = read_results(folder).nodes
    assert n1.verify is True and n1.summary == (
        "created /w/.venv-bnb: torch 2.13.0+cu130, bitsandbytes None; verify PASS"
    )
    assert n2.verify is None and n2.summary.endswith("verify not run")
    assert (n3.status, n3.why) == ("failed", "n3.json is not a bnb-provision.env/1 document")


def test_a_folder_without_its_node_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"nodes\.txt: cannot read it"):
        read_results(tmp_path)
    (tmp_path / "nodes.txt").write_text("node1\n")
    with pytest.raises(SnapshotError, match="first line should be"):
        read_results(tmp_path)


def test_results_are_never_mixed_with_an_earlier_run(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "snapshot",
        ["n1", "n2"],
        {"n1.json": "{}", "n2.rc": "1", "n2.log": "x", "slurm-7.out": "", "notes.md": "mine"},
    )
    with pytest.raises(LockfileError, match="is not empty"):
        prepare_output(folder, force=False)
    prepare_output(folder, force=True)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md"]
    (tmp_path / "file").write_text("")
    with pytest.raises(LockfileError, match="is a file"):
        prepare_output(tmp_path / "file", force=True)


def test_without_ansible_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    (tmp_path / "hosts.ini").write_text("node1\n")
    job = FleetJob(mode="snapshot", output=tmp_path / "out")
    with pytest.raises(ExternalToolError, match=r"pip install 'bnb-provision\[fleet\]'"):
        fleet_ansible.run_ansible(job, AnsibleTarget(inventory=str(tmp_path / "hosts.ini")))
    assert not (tmp_path / "out").exists()


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slurm", "--inventory", "h.ini"], "give --inventory FILE (Ansible) or --slurm"),
        ([], "give --inventory FILE (Ansible) or --slurm"),
        (["--inventory", "h.ini", "--partition", "gpu"], "--partition goes with --slurm"),
        (["--slurm", "--limit", "gpu"], "--limit is for Ansible"),
    ],
)
def test_the_engine_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = _cli("fleet", "snapshot", "-o", str(tmp_path / "o"), *args)
    assert code == 2 and message in err


def test_every_fleet_command_has_an_example() -> None:
    group = cli.all_commands()["fleet"]
    assert isinstance(group, click.Group)
    for name, command in group.commands.items():
        assert command.help and "Example:" in command.help, name
        code, out, _ = _cli("fleet", name, "--help")
        assert code == 0 and ("--json" in out or name == "slurm-script"), name


def test_slurm_script_prints_the_rendered_script(tmp_path: Path) -> None:
    code, out, _ = _cli(
        "fleet", "slurm-script", "snapshot", "--nodes", "2", "-o", str(tmp_path / "s"),
        "--", "--python", "/opt/{node}/python",
    )  # fmt: skip
    assert code == 0 and out.startswith("#!/bin/bash\n")
    assert "#SBATCH --nodes=2\n" in out and "BNB_FLEET_ARGS=(--python '/opt/{node}/python')" in out
    assert not (tmp_path / "s").exists()  # printing writes nothing


def test_report_reads_a_folder_and_exits_9_when_a_node_failed(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "snapshot",
        ["h100", "down"],
        {"h100.json": json.dumps(SNAPSHOT), "down.engine.log": "unreachable: x: refused\n"},
    )
    code, out, err = _cli("fleet", "report", str(folder))
    assert code == 9 and "1 of 2 nodes did not succeed: down (unreachable)" in err
    assert out.splitlines()[0] == "fleet snapshot: 1 of 2 nodes ok, 1 unreachable, 0 failed"
    assert "h100  ok           linux x86_64" in out and "down  unreachable  x: refused" in out
    (folder / "down.engine.log").unlink()
    (folder / "down.json").write_text(json.dumps(SNAPSHOT))
    code, out, _ = _cli("fleet", "report", str(folder), "--json")
    assert code == 0 and json.loads(out)["ok"] is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"LC_ALL": "C"}, "C.UTF-8"),
        ({"LANG": "POSIX"}, "C.UTF-8"),
        ({"LANG": "de_DE.UTF-8"}, None),
        ({"LC_CTYPE": "en_US.utf8", "LANG": "C"}, None),
    ],
)
def test_ansible_gets_the_utf8_locale_it_requires(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], expected: str | None
) -> None:
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    env = fleet_ansible._environment()
    assert env.get("LC_ALL") == (expected or given.get("LC_ALL"))
    assert env["ANSIBLE_NOCOLOR"] == "1"
