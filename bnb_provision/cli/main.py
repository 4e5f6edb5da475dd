"""The command line: each command is a docstring, an example and one library call.

Library errors become ``Error: ...`` on stderr and their own exit code (see
``bnb_provision.errors`` and README.md). Usage errors are click's (exit 2).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from bnb_provision import __version__
from bnb_provision.errors import ProvisionError

JSON_HELP = "Print machine-readable JSON (versioned schema) instead of a table."


class _Group(click.Group):
    """Turn library errors into ``Error: ...`` and their exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _machine_and_pin_options(f: Any) -> Any:
    """The machine flags and the plan constraints shared by plan and lock."""
    options = [
        click.option(
            "--os",
            "os_name",
            type=click.Choice(["linux", "windows", "macos"]),
            help="Plan for this OS instead of this machine's.",
        ),
        click.option("--arch", type=click.Choice(["x86_64", "aarch64"]), help="CPU architecture."),
        click.option("--driver", metavar="VERSION", help="NVIDIA driver version, e.g. 570.133.07."),
        click.option(
            "--gpu",
            "gpus",
            multiple=True,
            metavar="NAME|X.Y",
            help="A GPU by name ('RTX 3090') or compute capability ('8.6'); repeatable.",
        ),
        click.option(
            "--python", "python", metavar="X.Y", help="Python version of the environment."
        ),
        click.option("--torch", "torch", metavar="VERSION", help="Pin torch (2.8 or 2.8.0)."),
        click.option("--bnb", "bnb", metavar="VERSION", help="Pin bitsandbytes (0.45 or 0.45.5)."),
        click.option("--cuda", "cuda", metavar="X.Y|cpu", help="Pin the CUDA build (12.6) or cpu."),
        click.option(
            "--profile",
            type=click.Choice(["inference", "qlora"]),
            default="inference",
            show_default=True,
            help="inference, or qlora (adds peft and trl).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnb-provision")
def cli() -> None:
    """Set up, lock and repair bitsandbytes / PyTorch / CUDA stacks.

    \b
    detect   what this machine and an environment have
    plan     the combination that runs here, and why
    doctor   what is wrong with an environment, and the fix
    explain  the cause of an error message, and the fix
    verify   prove bitsandbytes' kernels run in an environment
    lock     hash-pinned lock files for this machine or a team's machines
    bundle   a wheelhouse of a lock, for air-gapped machines
    init     a verified environment per stack, from a plan or a lock
    rebuild  rebuild after upgrades, swapping atomically, keeping backups
    """


@cli.command()
@click.option(
    "--python",
    "python",
    metavar="PATH",
    help="Also inspect the environment of this Python interpreter.",
)
@click.option(
    "--env",
    "env_dir",
    metavar="DIR",
    type=click.Path(path_type=str),
    help="Also inspect this virtual environment (DIR/bin/python).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def detect(python: str | None, env_dir: str | None, as_json: bool) -> None:
    """Show the driver, GPUs, OS and (optionally) an environment, without importing torch.

    \b
    Example:
        bnb-provision detect --python .venv/bin/python
        bnb-provision detect --json > machine.json   # a snapshot for plan/lock --machine
    """
    from bnb_provision.detect.machine import detect_machine

    if python and env_dir:
        raise click.UsageError("give --python or --env, not both")
    machine = detect_machine(python=python, env_dir=env_dir)
    if as_json:
        _emit_json(machine.to_dict())
        return
    from bnb_provision.cli.render import render_machine

    report = None
    if machine.env is not None and machine.env.bitsandbytes is not None:
        from bnb_provision.db.compat import load_db
        from bnb_provision.plan.analysis import bnb_load_report

        report = bnb_load_report(machine, load_db())
    click.echo(render_machine(machine, report))


@cli.command()
@click.option(
    "--machine",
    "machine_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Plan for the machine in this snapshot (bnb-provision detect --json).",
)
@_machine_and_pin_options
@click.option("--all-rejected", is_flag=True, help="List every rejected alternative.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def plan(
    machine_file: Path | None,
    os_name: str | None,
    arch: str | None,
    driver: str | None,
    gpus: tuple[str, ...],
    python: str | None,
    torch: str | None,
    bnb: str | None,
    cuda: str | None,
    profile: str,
    all_rejected: bool,
    as_json: bool,
) -> None:
    """Choose the torch / CUDA / bitsandbytes / Hugging Face combination, and explain it.

    \b
    Example:
        bnb-provision plan
        bnb-provision plan --gpu "GTX 1080 Ti" --driver 550.54.14 --python 3.11
        bnb-provision plan --machine machine.json --torch 2.8 --json
    """
    from bnb_provision.db.compat import load_db
    from bnb_provision.detect.machine import detect_machine, load_machine
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.inputs import MachineFlags, apply_flags, plan_for, plan_to_dict

    db = load_db()
    flags = MachineFlags(os=os_name, arch=arch, driver=driver, gpus=gpus, python=python)
    if machine_file is not None:
        machine = apply_flags(load_machine(machine_file), flags, db)
    elif flags.any_machine_flag:
        machine = apply_flags(None, flags, db)
    else:
        machine = apply_flags(detect_machine(), flags, db)
    result = plan_for(
        machine, db, Constraints(torch=torch, bnb=bnb, cuda=cuda, python=python, profile=profile)
    )
    if as_json:
        _emit_json(plan_to_dict(result))
        return
    from bnb_provision.cli.render import render_plan

    click.echo(render_plan(result, all_rejected=all_rejected))


def _target_machine(python: str | None, env_dir: str | None, machine_file: Path | None) -> Any:
    from bnb_provision.detect.machine import detect_machine, load_machine

    if sum(x is not None for x in (python, env_dir, machine_file)) > 1:
        raise click.UsageError("give one of --python, --env, --machine")
    if machine_file is not None:
        return load_machine(machine_file)
    if python is None and env_dir is None:
        # the environment the user is in: an activated venv's python comes first on PATH
        import shutil

        python = shutil.which("python") or shutil.which("python3")
    return detect_machine(python=python, env_dir=env_dir)


@cli.command()
@click.option(
    "--python",
    "python",
    metavar="PATH",
    help="The environment's Python interpreter (default: python on PATH).",
)
@click.option("--env", "env_dir", metavar="DIR", help="The virtual environment's folder.")
@click.option(
    "--machine",
    "machine_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="A snapshot (detect --json --python ...) taken where the environment is.",
)
@click.option("--model-params", type=float, metavar="N", help="Model size, e.g. 7e9.")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    type=click.Path(path_type=Path),
    help="A model's config.json (or its folder) for the memory check.",
)
@click.option(
    "--quant",
    type=click.Choice(["nf4", "fp4", "int8"]),
    default="nf4",
    show_default=True,
    help="Quantization for the memory check.",
)
@click.option(
    "--report",
    is_flag=True,
    help="Print a block safe to paste into a public issue (paths, user, values redacted).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def doctor(
    python: str | None,
    env_dir: str | None,
    machine_file: Path | None,
    model_params: float | None,
    config_path: Path | None,
    quant: str,
    report: bool,
    as_json: bool,
) -> None:
    """Diagnose a bitsandbytes / torch / CUDA environment: the cause and the fix, in order.

    Exits 9 when an error-severity finding stands.

    \b
    Example:
        bnb-provision doctor --python .venv/bin/python
        bnb-provision doctor --env .venv --model-params 70e9 --quant nf4
        bnb-provision doctor --machine snapshot.json --json
    """
    from bnb_provision.db.compat import load_db
    from bnb_provision.doctor.checks import DoctorOptions, diagnose
    from bnb_provision.doctor.memory import read_model_shape, shape_from_params
    from bnb_provision.env.stamp import read_stamp
    from bnb_provision.errors import FindingsError

    machine = _target_machine(python, env_dir, machine_file)
    if machine.env is None:
        raise click.UsageError(
            "doctor needs an environment: --python PATH, --env DIR, or a "
            "--machine snapshot taken with --python"
        )
    model = None
    if config_path is not None:
        try:
            model = read_model_shape(config_path)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--config") from exc
    elif model_params is not None:
        model = shape_from_params(model_params)
    stamp = read_stamp(machine.env.prefix) if machine.env.prefix and machine_file is None else None
    findings = diagnose(machine, load_db(), DoctorOptions(model=model, quant=quant, stamp=stamp))
    _emit_findings(
        findings,
        machine=machine,
        as_json=as_json,
        report=report,
        header=f"bnb-provision doctor: {machine.env.python.executable or 'snapshot'}",
    )
    if any(f.severity == "error" for f in findings):
        raise FindingsError(f"{sum(f.severity == 'error' for f in findings)} error(s) found")


@cli.command()
@click.option(
    "--log",
    "log_file",
    metavar="FILE",
    default="-",
    type=click.File("r", encoding="utf-8", errors="replace"),
    help="Read the error text from FILE (default: standard input).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def explain(log_file: Any, as_json: bool) -> None:
    """Explain an error message or a whole traceback: its cause and the fix.

    \b
    Example:
        python train.py 2>&1 | bnb-provision explain
        bnb-provision explain --log error.txt --json
    """
    from bnb_provision.db.compat import load_db
    from bnb_provision.doctor.checks import explain_text

    text = log_file.read()
    if not text.strip():
        raise click.UsageError("no error text: pipe it in or give --log FILE")
    findings = explain_text(text, load_db())
    _emit_findings(
        findings, machine=None, as_json=as_json, report=False, header="bnb-provision explain"
    )


def _emit_findings(
    findings: Any, *, machine: Any, as_json: bool, report: bool, header: str
) -> None:
    import getpass

    from bnb_provision.cli.render import redact, render_findings
    from bnb_provision.doctor.findings import findings_to_dict

    subject: dict[str, Any] = {}
    if machine is not None:
        subject = {"machine": machine.to_dict()}
    if as_json:
        _emit_json(findings_to_dict(findings, subject=subject))
        return
    text = render_findings(findings, header)
    if report and machine is not None:
        from bnb_provision.cli.render import render_machine

        env_values = tuple(v for _, v in machine.env.variables) if machine.env else ()
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - no passwd entry
            user = ""
        body = render_machine(machine) + "\n\n" + text
        text = (
            "<details><summary>bnb-provision doctor report</summary>\n\n```\n"
            + redact(body, home=str(Path.home()), user=user, secrets=env_values)
            + "\n```\n</details>"
        )
    click.echo(text)


@cli.command()
@click.option("--python", "python", metavar="PATH", help="The environment's Python interpreter.")
@click.option("--env", "env_dir", metavar="DIR", help="The virtual environment's folder.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def verify(python: str | None, env_dir: str | None, as_json: bool) -> None:
    """Prove bitsandbytes' kernels run: NF4/FP4, Linear4bit, LLM.int8(), 8-bit Adam.

    Runs inside the environment on every visible GPU (or the CPU backend); exits 9
    when a check fails.

    \b
    Example:
        bnb-provision verify --env .venv-bnb
        bnb-provision verify --python /opt/conda/bin/python --json
    """
    from bnb_provision.cli.render import render_verify
    from bnb_provision.detect.target import find_env_python
    from bnb_provision.env.verify import run_verify
    from bnb_provision.errors import FindingsError

    if python and env_dir:
        raise click.UsageError("give --python or --env, not both")
    exe = str(find_env_python(env_dir)) if env_dir else (python or sys.executable)
    report = run_verify(exe)
    if as_json:
        _emit_json(report.data)
    else:
        click.echo(render_verify(report.data))
    if not report.ok:
        raise FindingsError("verify failed: " + "; ".join(report.failures()[:3]))


@cli.command()
@click.option(
    "--machine",
    "machine_files",
    multiple=True,
    metavar="FILE|DIR",
    type=click.Path(path_type=Path, exists=True),
    help="A detect snapshot, or a folder of them; repeatable.",
)
@_machine_and_pin_options
@click.option(
    "--stack",
    type=click.Choice(["bnb", "gptq", "awq"]),
    default="bnb",
    show_default=True,
    help="Which quantization stack the lock is for.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("locks"),
    show_default=True,
    help="Folder for the lock files and the manifest.",
)
@click.option("--offline", is_flag=True, help="Resolve from --find-links only, no index.")
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="A wheelhouse (bnb-provision bundle writes one).",
)
@click.option(
    "--index-url",
    "index_url",
    default="https://pypi.org/simple",
    show_default=True,
    help="The default index (a PyPI mirror).",
)
@click.option(
    "--torch-index-url",
    "torch_index",
    metavar="URL",
    help="PyTorch index template, {variant} replaced (a mirror of download.pytorch.org).",
)
@click.option("--force", is_flag=True, help="Replace existing lock files (old ones kept as .bak).")
@click.option(
    "--upgrade",
    is_flag=True,
    help="Resolve afresh; by default an existing lock's versions are kept where the plan allows.",
)
@click.option("--dockerfile", is_flag=True, help="Also write a Dockerfile per Linux lock.")
@click.option("--uv-project", is_flag=True, help="Also write the uv pyproject.toml of each lock.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def lock(
    machine_files: tuple[Path, ...],
    os_name: str | None,
    arch: str | None,
    driver: str | None,
    gpus: tuple[str, ...],
    python: str | None,
    torch: str | None,
    bnb: str | None,
    cuda: str | None,
    profile: str,
    stack: str,
    output: Path,
    offline: bool,
    find_links: tuple[Path, ...],
    index_url: str,
    torch_index: str | None,
    force: bool,
    upgrade: bool,
    dockerfile: bool,
    uv_project: bool,
    as_json: bool,
) -> None:
    """Write hash-pinned lock files (requirements.txt + pylock.toml) through uv.

    Machines that need the same plan share a lock; a manifest maps each machine class
    to its lock so init can pick it.

    \b
    Example:
        bnb-provision lock -o locks
        bnb-provision lock --machine snapshots/ -o locks --dockerfile
        bnb-provision lock --os windows --gpu "RTX 4090" --driver 572.61 --python 3.12
    """
    from bnb_provision.lock.lockset import LockOptions, LockRequest, lock_request
    from bnb_provision.plan.constraints import Constraints, MachineFlags

    if offline and not find_links:
        raise click.UsageError("--offline needs --find-links DIR (a wheelhouse)")
    request = LockRequest(
        machine_files=machine_files,
        flags=MachineFlags(os=os_name, arch=arch, driver=driver, gpus=gpus, python=python),
        constraints=Constraints(torch=torch, bnb=bnb, cuda=cuda, python=python, profile=profile),
    )
    opts = LockOptions(
        output=output,
        stack=stack,
        default_index=index_url,
        torch_index_template=torch_index,
        offline=offline,
        find_links=tuple(p.resolve() for p in find_links),
        force=force,
        upgrade=upgrade,
        dockerfile=dockerfile,
        uv_project=uv_project,
        regenerate=shlex.join(["bnb-provision", *sys.argv[1:]]),
    )
    result = lock_request(request, opts, log=lambda m: None if as_json else click.echo(m, err=True))
    if as_json:
        _emit_json(
            {
                "schema": "bnb-provision.lock/1",
                "manifest": str(result.manifest),
                "locks": [
                    {
                        "name": r.spec.name,
                        "requirements": str(r.requirements),
                        "pylock": str(r.pylock),
                        "machines": list(r.spec.machines),
                        "packages": dict(r.packages),
                        "changed": list(r.changed),
                        "seconds": round(r.seconds, 3),
                    }
                    for r in result.results
                ],
                "unplanned": [{"machine": m, "why": w} for m, w in result.unplanned],
            }
        )
        return
    for r in result.results:
        click.echo(
            f"{r.requirements}\n{r.pylock}\n  for: {', '.join(r.spec.machines)} "
            f"({len(r.packages)} packages, {r.seconds:.1f} s)"
        )
        for change in r.changed:
            click.echo(f"  {change}")
    for m, why in result.unplanned:
        click.echo(f"not locked: {m}: {why}", err=True)
    click.echo(f"manifest: {result.manifest}")


@cli.command()
@click.argument("lock_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("wheelhouse"),
    show_default=True,
    help="The wheelhouse folder.",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def bundle(lock_file: Path, output: Path, as_json: bool) -> None:
    """Download every file of a pylock.toml into a wheelhouse, checking each sha256.

    \b
    Example:
        bnb-provision bundle locks/pylock.bnb-linux-x86_64-py3.12-....toml -o wheelhouse
        # then, on the air-gapped machine:
        bnb-provision init --offline --find-links wheelhouse
    """
    from bnb_provision.lock.bundle import bundle_lock

    result = bundle_lock(
        lock_file, output, log=lambda m: None if as_json else click.echo(m, err=True)
    )
    if as_json:
        _emit_json(
            {
                "schema": "bnb-provision.bundle/1",
                "directory": str(result.directory),
                "downloaded": list(result.downloaded),
                "present": list(result.present),
            }
        )
        return
    click.echo(
        f"{output}: {len(result.downloaded)} downloaded, {len(result.present)} already "
        "there, all sha256-checked"
    )


def _env_options(f: Any) -> Any:
    options = [
        click.option(
            "--env",
            "env_dir",
            type=click.Path(path_type=Path),
            help="The environment's path (default .venv-<stack>).",
        ),
        click.option(
            "--stack", type=click.Choice(["bnb", "gptq", "awq"]), default="bnb", show_default=True
        ),
        click.option(
            "--lock",
            "lock_path",
            type=click.Path(path_type=Path, exists=True),
            help="Install this lock (requirements.txt, pylock.toml, or a lock folder "
            "with its manifest) instead of planning.",
        ),
        click.option(
            "--torch",
            "torch",
            metavar="VERSION|system",
            help="Pin torch, or 'system' to adopt the torch already installed.",
        ),
        click.option(
            "--system-python",
            type=click.Path(path_type=Path),
            help="With --torch system: the interpreter holding torch (default: python3).",
        ),
        click.option("--bnb", "bnb", metavar="VERSION"),
        click.option("--cuda", "cuda", metavar="X.Y|cpu"),
        click.option("--python", "python", metavar="X.Y"),
        click.option(
            "--profile",
            type=click.Choice(["inference", "qlora"]),
            default="inference",
            show_default=True,
        ),
        click.option("--offline", is_flag=True, help="Install from --find-links only."),
        click.option(
            "--find-links",
            "find_links",
            multiple=True,
            type=click.Path(path_type=Path),
            metavar="DIR",
        ),
        click.option("--index-url", default="https://pypi.org/simple", show_default=True),
        click.option("--torch-index-url", "torch_index", metavar="URL"),
        click.option("--no-verify", is_flag=True, help="Skip the kernel checks (not advised)."),
        click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing."),
        click.option("--json", "as_json", is_flag=True, help=JSON_HELP),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _build_options(kw: dict[str, Any], keep: int = 2) -> Any:
    from bnb_provision.env.build import BuildOptions, default_env_path
    from bnb_provision.plan.constraints import Constraints

    torch = kw["torch"]
    system = None
    if torch == "system":
        exe = kw["system_python"] or Path(_subprocess_which("python3"))
        system = exe
        torch = None
    if kw["offline"] and not kw["find_links"]:
        raise click.UsageError("--offline needs --find-links DIR")
    return BuildOptions(
        env=kw["env_dir"] or default_env_path(kw["stack"]),
        stack=kw["stack"],
        constraints=Constraints(
            torch=torch, bnb=kw["bnb"], cuda=kw["cuda"], python=kw["python"], profile=kw["profile"]
        ),
        lock=kw["lock_path"],
        torch_system=system,
        offline=kw["offline"],
        find_links=tuple(p.resolve() for p in kw["find_links"]),
        index_url=kw["index_url"],
        torch_index_template=kw["torch_index"],
        verify=not kw["no_verify"],
        keep=keep,
        dry_run=kw["dry_run"],
        # uv draws its own progress when a person watches; --json stays quiet
        progress=not kw["as_json"] and sys.stderr.isatty(),
    )


def _subprocess_which(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        raise click.UsageError(f"--torch system: no {name} on PATH; give --system-python PATH")
    return found


def _report_build(result: Any, as_json: bool) -> None:
    from bnb_provision.cli.render import render_verify
    from bnb_provision.env.build import describe

    if as_json:
        _emit_json(describe(result))
        return
    s = result.summary
    what = f"torch {s.torch}+{s.variant}, bitsandbytes {s.bitsandbytes}" if s else ""
    click.echo(f"{result.env}: {result.action} ({what})")
    for r in result.reasons:
        click.echo(f"  - {r}")
    if result.report is not None:
        click.echo(render_verify(result.report.data))
    if result.backups:
        click.echo("backups kept: " + ", ".join(str(b) for b in result.backups))


@cli.command()
@_env_options
def init(**kw: Any) -> None:
    """Create a verified environment for a stack: detect, plan, lock, install, verify, stamp.

    \b
    Example:
        bnb-provision init                          # .venv-bnb for this machine
        bnb-provision init --lock locks/            # the team's lock for this machine
        bnb-provision init --torch system --offline --find-links wheelhouse
    """
    from bnb_provision.env.build import init_env

    opts = _build_options(kw)
    result = init_env(opts, log=lambda m: None if kw["as_json"] else click.echo(m, err=True))
    _report_build(result, kw["as_json"])


@cli.command()
@_env_options
@click.option(
    "--keep",
    type=int,
    default=2,
    show_default=True,
    help="How many old environments to keep as backups.",
)
def rebuild(keep: int, **kw: Any) -> None:
    """Rebuild after a driver or torch upgrade, without ever losing the working environment.

    Re-plans; if the plan changed or verify fails, builds the new environment beside the
    old one, verifies it, then swaps them atomically and keeps the old one as a backup.

    \b
    Example:
        bnb-provision rebuild --dry-run
        bnb-provision rebuild --env .venv-bnb --keep 3
    """
    from bnb_provision.env.build import rebuild_env

    opts = _build_options(kw, keep=keep)
    result = rebuild_env(opts, log=lambda m: None if kw["as_json"] else click.echo(m, err=True))
    _report_build(result, kw["as_json"])


cli.add_command(__import__("bnb_provision.cli.fit", fromlist=["fit"]).fit)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bnb-provision")


if __name__ == "__main__":  # pragma: no cover
    main()
