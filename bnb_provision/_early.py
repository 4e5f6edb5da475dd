"""Start ``init``'s uv steps before the command line is parsed.

Before the CLI could start any program, Python's start-up and the imports it needs
(click, dataclasses, subprocess, pathlib) take about 60 ms on a small machine; a warm
``uv venv`` + ``uv pip sync`` of a CPU lock takes about 250 ms. For the usual form of
``init`` with a lock::

    bnb-provision init --lock FILE.txt [--env DIR] [--stack S] [--offline]
                       [--find-links DIR]... [--no-verify] [--json]

what uv must do follows from the command line and the lock's header alone. So the
entry point (:func:`main`) starts ``uv venv`` and then ``uv pip sync`` into a new
``<env>.d/<timestamp>.partial`` build at once, with only the modules Python has
loaded by then, and imports the CLI while uv works. Any other command line, a lock
for another Python, or ``BNB_PROVISION_NO_PRESTART=1`` starts nothing here.

It is a guess, and it is checked: :func:`claim` hands the started steps to
``envbuild`` only when the steps it would start itself are identical (the same uv,
arguments and output handling, in the same folder). Otherwise they are cancelled and
their folder is removed, and so are steps nobody claimed, at exit. Results never
depend on this module, only time does. The same functions build the uv commands for
both, so the two cannot drift apart silently.
"""

from __future__ import annotations

import _thread
import itertools
import os
import sys
import time

TYPE_CHECKING = False  # typing itself costs ms to import, and this module runs first
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "NO_PRESTART_ENV",
    "Prestarted",
    "build_name",
    "claim",
    "init_request",
    "main",
    "plan_line_python",
    "prestart",
    "sync_step",
    "venv_python",
    "venv_step",
]

NO_PRESTART_ENV = "BNB_PROVISION_NO_PRESTART"
_STACKS = ("bnb", "gptq", "awq")
_FLAGS = ("--offline", "--no-verify", "--json")
_VALUED = ("--lock", "--env", "--stack", "--find-links")
_HEADER_LINES = 40  # the header lock writes is a dozen lines; a plain lock has none
_SIGTERM, _SIGKILL = 15, 9  # POSIX values; the signal module costs ms to import


# -- the uv commands of a build (used by envbuild too) ----------------------------------


def build_name(now: float | None = None) -> str:
    """A build folder's name: the UTC time to the microsecond, sortable."""
    t = time.time() if now is None else now
    seconds, micros = divmod(round(t * 1_000_000), 1_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f"{micros:06d}Z"


def venv_python(env: str) -> str:
    """Where ``uv venv`` puts the interpreter (known before the environment exists)."""
    return os.path.join(env, "Scripts", "python.exe") if os.name == "nt" else f"{env}/bin/python"


def venv_step(uv: str, interpreter: str, env: str) -> list[str]:
    """``uv venv`` for a build folder that is renamed when complete: relocatable, so that
    its scripts' shebangs and activation scripts do not name the ``.partial`` path."""
    return [uv, "venv", "--relocatable", "--quiet", "--no-python-downloads", "--python",
            interpreter, env]  # fmt: skip


def sync_step(
    uv: str, env: str, requirements: str, *, offline: bool, find_links: Sequence[str], quiet: bool
) -> list[str]:
    """``uv pip sync`` of a hash-pinned requirements lock into the environment ``env``."""
    args = [uv, "pip", "sync", "--python", venv_python(env), "--require-hashes",
            "--no-python-downloads"]  # fmt: skip
    if quiet:
        args.append("--quiet")
    if offline:
        args += ["--offline", "--no-index"]
    for d in find_links:
        args += ["--find-links", d]
    args.append(requirements)
    return args


def plan_line_python(line: str) -> str | None:
    """The Python version (``3.11``) a lock header's ``# Plan: ...`` line names, else None."""
    if not line.startswith("# Plan: "):
        return None
    words = line.replace(",", " ").split()
    found = None
    for word, value in itertools.pairwise(words):
        major, dot, minor = value.partition(".")
        if word == "Python" and dot and major.isdigit() and minor.isdigit():
            found = value
    return found


# -- reading the command line ---------------------------------------------------------


class InitRequest:
    """What ``init`` argv says uv must do: where, which lock, which sources, quiet or not."""

    __slots__ = ("capture", "find_links", "offline", "python", "requirements", "store")

    def __init__(
        self,
        *,
        store: str,
        requirements: str,
        python: str,
        offline: bool,
        find_links: tuple[str, ...],
        capture: bool,
    ) -> None:
        self.store = store
        self.requirements = requirements
        self.python = python
        self.offline = offline
        self.find_links = find_links
        self.capture = capture


def _options(args: Sequence[str]) -> dict[str, list[str]] | None:
    """``--name value``, ``--name=value`` and the known flags; None at anything else."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg in _FLAGS:
            found.setdefault(arg, []).append("")
        elif name in _VALUED:
            if not eq:
                i += 1
                if i == len(args):
                    return None
                value = args[i]
            if not value or value.startswith("-"):
                return None
            found.setdefault(name, []).append(value)
        else:  # --help, another option, an argument: leave it all to click
            return None
        i += 1
    return found


def init_request(argv: Sequence[str], *, stderr_is_tty: bool) -> InitRequest | None:
    """The uv work of ``init`` argv, when it follows from argv and the lock's header alone."""
    if not argv or argv[0] != "init":
        return None
    opts = _options(argv[1:])
    if opts is None or "--lock" not in opts:
        return None
    if any(len(v) > 1 for k, v in opts.items() if k != "--find-links"):
        return None  # repeated: click's rules decide, not a guess
    lock = opts["--lock"][0]
    stack = opts.get("--stack", ["bnb"])[0]
    offline = "--offline" in opts
    find_links = tuple(os.path.realpath(d) for d in opts.get("--find-links", []))
    if (
        stack not in _STACKS
        or (offline and not find_links)
        or not lock.endswith(".txt")
        or not os.path.isfile(lock)
    ):
        return None
    env = opts.get("--env", [f".venv-{stack}"])[0]
    if os.path.lexists(env):
        return None  # init refuses an existing environment
    env = os.path.join(os.getcwd(), env)
    if ".." not in env.split(os.sep):
        env = os.path.normpath(env)  # as pathlib spells it
    python = _lock_python(lock)
    if python is None:
        return None
    return InitRequest(
        store=os.path.join(os.path.dirname(env), os.path.basename(env) + ".d"),
        requirements=os.path.realpath(lock),
        python=python,
        offline=offline,
        find_links=find_links,
        capture="--json" in opts or not stderr_is_tty,
    )


def _lock_python(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            for _, line in zip(range(_HEADER_LINES), f, strict=False):
                found = plan_line_python(line.strip())
                if found:
                    return found
    except (OSError, UnicodeDecodeError):
        return None
    return None


# -- running the steps ----------------------------------------------------------------


class Prestarted:
    """uv steps running one after another in a thread, in a new ``.partial`` build folder.

    The same interface as envbuild's own step runner: :meth:`finish` waits and raises
    the first failure; :meth:`cancel` stops the running step; :meth:`discard` also
    removes the build folder and its files.
    """

    def __init__(
        self, store: str, name: str, steps: Sequence[Sequence[str]], *, capture: bool
    ) -> None:
        self.store = store
        self.name = name
        self.partial = os.path.join(store, f"{name}.partial")
        self.steps = tuple(tuple(s) for s in steps)
        self.capture = capture
        self._log = f"{self.partial}.log"
        self._owner = f"{self.partial}.pid"
        self._mutex = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._pid: int | None = None
        self._cancelled = False
        self._made_store = False
        self.failure: tuple[tuple[str, ...], int] | None = None  # (step, exit status)
        self.error: str | None = None  # the step could not be started

    def start(self) -> None:
        self._made_store = not os.path.isdir(self.store)
        os.makedirs(self.store, exist_ok=True)
        with open(self._owner, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        self._done.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            for argv in self.steps:
                with self._mutex:
                    if self._cancelled:
                        return
                    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
                    ]
                    if self.capture:
                        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                        actions += [
                            (os.POSIX_SPAWN_OPEN, 1, self._log, flags, 0o600),
                            (os.POSIX_SPAWN_DUP2, 1, 2),
                        ]
                    self._pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
                _, status = os.waitpid(self._pid, 0)
                with self._mutex:
                    self._pid = None
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    self.failure = (argv, code)
                    return
        except OSError as exc:
            self.error = f"{self.steps[0][0]} could not be started: {exc}"
        finally:
            self._done.release()

    def cancel(self) -> None:
        """Stop the running step (terminate, then kill after 5 s) and start no other."""
        with self._mutex:
            self._cancelled = True
            pid = self._pid
            if pid is not None:
                os.kill(pid, _SIGTERM)
        if not self._done.acquire(timeout=5):
            with self._mutex:
                if self._pid is not None:
                    os.kill(self._pid, _SIGKILL)
            self._done.acquire()
        self._done.release()

    def discard(self) -> None:
        """Cancel, then remove the build folder, its log and its owner file (and the
        ``<env>.d`` folder, when this made it and it is empty now)."""
        import shutil

        self.cancel()
        shutil.rmtree(self.partial, ignore_errors=True)
        for path in (self._log, self._owner):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if self._made_store:
            try:
                os.rmdir(self.store)
            except OSError:
                pass  # something else is in it now

    def finish(self, timeout: float = 1800.0) -> None:
        """Wait for the steps; raise ExternalToolError for the first that failed."""
        from bnb_provision.errors import ExternalToolError

        if not self._done.acquire(timeout=timeout):
            self.cancel()
            raise ExternalToolError(f"{self.steps[-1][0]} did not finish within {timeout:g} s")
        self._done.release()
        if self.error is not None:
            raise ExternalToolError(self.error, command=self.steps[0])
        if self._cancelled:
            raise ExternalToolError("uv was cancelled", command=self.steps[0])
        if self.failure is not None:
            argv, code = self.failure
            output = ""
            if self.capture:
                try:
                    with open(self._log, encoding="utf-8", errors="replace") as f:
                        output = f.read()
                except OSError:
                    pass
            raise ExternalToolError.exited(argv, code, output)
        try:
            os.unlink(self._log)
        except FileNotFoundError:
            pass


_pending: list[Prestarted] = []


def prestart(argv: Sequence[str]) -> Prestarted | None:
    """Start ``init``'s uv steps now if ``argv`` says what they are (see above)."""
    if not hasattr(os, "posix_spawn") or os.environ.get(NO_PRESTART_ENV):
        return None
    request = init_request(argv, stderr_is_tty=sys.stderr.isatty())
    if request is None or request.python != f"{sys.version_info[0]}.{sys.version_info[1]}":
        return None  # init uses this interpreter only for a lock of its own Python
    uv = os.path.join(os.path.dirname(sys.executable), "uv")  # where the uv package puts it
    if not os.access(uv, os.X_OK):
        return None
    name = build_name()
    partial = os.path.join(request.store, f"{name}.partial")
    steps = [
        venv_step(uv, sys.executable, partial),
        sync_step(
            uv,
            partial,
            request.requirements,
            offline=request.offline,
            find_links=request.find_links,
            quiet=request.capture,
        ),
    ]
    early = Prestarted(request.store, name, steps, capture=request.capture)
    try:
        early.start()
    except OSError:
        return None
    if not _pending:
        import atexit

        atexit.register(_discard_unclaimed)
    _pending.append(early)
    return early


def claim(
    store: str,
    steps_for: Callable[[str], Sequence[Sequence[str]]] | None,
    *,
    capture: bool,
) -> Prestarted | None:
    """The started steps if they are exactly the ones wanted, else None.

    ``steps_for(partial)`` gives the steps the caller would run in the build folder
    ``partial``; None means it wants none. Whatever is not claimed is discarded.
    """
    taken = None
    while _pending:
        early = _pending.pop()
        if (
            taken is None
            and steps_for is not None
            and early.store == store
            and early.capture == capture
            and early.steps == tuple(tuple(s) for s in steps_for(early.partial))
        ):
            taken = early
        else:
            early.discard()
    return taken


def _discard_unclaimed() -> None:
    while _pending:
        _pending.pop().discard()


def main() -> None:
    """Console-script entry point: start what argv already says, then run the CLI."""
    import gc

    # nothing loaded from here to the CLI is garbage; cli.main freezes it all and
    # turns the collector back on (saves a few ms of collections during imports)
    gc.disable()
    prestart(sys.argv[1:])
    from bnb_provision.cli import main as cli_main

    cli_main()
