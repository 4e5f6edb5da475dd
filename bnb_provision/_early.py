"""Start uv before the command line is parsed, where the command already says what uv does.

Before the CLI could start any program, Python's start-up and the imports it needs
(click, dataclasses, subprocess, pathlib) take about 60 ms on a small machine; a warm
``uv venv`` + ``uv pip sync`` of a CPU lock takes about 250 ms. So the entry point
(:func:`main`) starts uv at once, with only the modules Python has loaded by then,
and imports the CLI while uv works, for two commands:

* ``init`` with a lock, in its usual form::

      bnb-provision init --lock FILE.txt [--env DIR] [--stack S] [--offline]
                         [--find-links DIR]... [--no-verify] [--json]

  where what uv must do follows from the command line and the lock's header alone:
  ``uv venv`` then ``uv pip sync`` into a new ``<env>.d/<timestamp>.partial`` build;
* ``lock``, run again in the same folder with the same arguments: the ``uv pip
  compile`` runs the same command ran last time (remembered in the cache folder).

Any other command line, a lock for another Python, or ``BNB_PROVISION_NO_PRESTART=1``
starts nothing here.

It is a guess, and it is checked: the library claims a started run (:func:`claim`,
:func:`claim_compile`) only when what it would start itself is identical (the same uv,
arguments, input files and output handling). Otherwise the run is cancelled and its
files removed, and so is any run nobody claimed, at exit. Results never depend on this
module, only time does. The same functions build the uv commands for both sides.
"""

from __future__ import annotations

import _thread
import itertools
import marshal
import os
import sys
import time

TYPE_CHECKING = False  # typing itself costs ms to import, and this module runs first
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "NO_PRESTART_ENV",
    "SCRATCH",
    "InitBuild",
    "LockCompile",
    "Prestarted",
    "build_name",
    "cache_folder",
    "caching",
    "claim",
    "claim_compile",
    "discard_unclaimed",
    "init_request",
    "main",
    "plan_line_python",
    "prestart",
    "read_private",
    "remember_lock",
    "source_args",
    "sync_step",
    "venv_python",
    "venv_step",
    "write_private",
]

NO_PRESTART_ENV = "BNB_PROVISION_NO_PRESTART"
_STACKS = ("bnb", "gptq", "awq")
_FLAGS = ("--offline", "--no-verify", "--json")
_VALUED = ("--lock", "--env", "--stack", "--find-links")
_HEADER_LINES = 40  # the header lock writes is a dozen lines; a plain lock has none
_SIGTERM, _SIGKILL = 15, 9  # POSIX values; the signal module costs ms to import
SCRATCH = "\0tmp"  # marks the scratch folder in remembered compiles; replaced when run
_MEMO = "lock-commands.marshal"  # marshal: built in, no import; entries carry the version
_MEMO_SIZE = 16


def caching() -> bool:
    """False when ``BNB_PROVISION_NO_CACHE`` (or the older ``..._NO_DB_CACHE``) is set."""
    return not (
        os.environ.get("BNB_PROVISION_NO_CACHE") or os.environ.get("BNB_PROVISION_NO_DB_CACHE")
    )


def cache_folder() -> str:
    """bnb-provision's cache folder (``$XDG_CACHE_HOME/bnb-provision``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bnb-provision")


def read_private(path: str) -> bytes | None:
    """A cache file's bytes, if this user owns it and nobody else may write it, else None.

    The cache steers what runs (the DB, the planned locks, the uv runs started at launch):
    a file someone else could have written is ignored, as ssh ignores such keys.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private(path: str, data: bytes) -> None:
    """Write a cache file atomically, readable and writable by this user only.
    Raises OSError; a cache that cannot be written is for the caller to shrug off."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    return [*args, *source_args(offline=offline, find_links=find_links), requirements]


def source_args(*, offline: bool, find_links: Sequence[str]) -> list[str]:
    """uv's flags for where packages come from: only ``find_links`` when offline."""
    args = ["--offline", "--no-index"] if offline else []
    for d in find_links:
        args += ["--find-links", d]
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
    """uv commands running one after another in a thread, cancellable.

    :meth:`finish` waits and raises the first failure (with uv's output, when it was
    captured to the log file); :meth:`cancel` stops the running command and starts no
    other; :meth:`discard` also removes the files the run owns.
    """

    def __init__(
        self, steps: Sequence[Sequence[str]], *, capture: bool, log: str, owns: Sequence[str]
    ) -> None:
        self.steps = tuple(tuple(s) for s in steps)
        self.capture = capture
        self._log = log
        self._owns = tuple(owns)  # removed by discard(): folders and files
        self._mutex = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._pid: int | None = None
        self._cancelled = False
        self.failure: tuple[tuple[str, ...], int] | None = None  # (step, exit status)
        self.error: str | None = None  # the step could not be started

    def start(self) -> None:
        self._done.acquire()
        try:
            _thread.start_new_thread(self._run, ())
        except BaseException:
            self._done.release()
            raise

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
                    pid = self._pid = os.posix_spawn(
                        argv[0], argv, os.environ, file_actions=actions
                    )
                if hasattr(os, "waitid"):  # wait without reaping: cancel() never signals
                    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # a reused pid
                with self._mutex:
                    self._pid = None
                    _, status = os.waitpid(pid, 0)
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
        """Cancel, then remove what the run owns."""
        import shutil

        self.cancel()
        for path in (*self._owns, self._log):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

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


class InitBuild(Prestarted):
    """``uv venv`` + ``uv pip sync`` into ``<store>/<name>.partial``, with an owner file
    (``.partial.pid``) so that a later rebuild can tell an abandoned build."""

    def __init__(
        self, store: str, name: str, steps: Sequence[Sequence[str]], *, capture: bool
    ) -> None:
        self.store = store
        self.name = name
        self.partial = os.path.join(store, f"{name}.partial")
        super().__init__(
            steps,
            capture=capture,
            log=f"{self.partial}.log",
            owns=(self.partial, f"{self.partial}.pid"),
        )
        self._made_store = False

    def start(self) -> None:
        self._made_store = not os.path.isdir(self.store)
        os.makedirs(self.store, exist_ok=True)
        with open(f"{self.partial}.pid", "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        super().start()

    def finish(self, timeout: float = 1800.0) -> None:
        super().finish(timeout)
        try:
            os.unlink(self._log)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        """Also remove ``<env>.d`` when this run made it and it is empty now."""
        super().discard()
        if self._made_store:
            try:
                os.rmdir(self.store)
            except OSError:
                pass  # something else is in it now


class LockCompile(Prestarted):
    """One ``uv pip compile`` in its own scratch folder, which holds its input (and the
    previous lock, handed to uv as its preferences) and its output."""

    def __init__(self, template: Sequence[str], uv_input: str, preferences: str) -> None:
        self.folder = _scratch_folder()
        self.uv_input = uv_input
        self.preferences: bytes | None = None
        self._preferences_path = preferences
        super().__init__(
            [[a.replace(SCRATCH, self.folder) for a in template]],
            capture=True,
            log=os.path.join(self.folder, "uv-output.txt"),
            owns=(),  # the folder, once this run has made it
        )

    def start(self) -> None:
        os.mkdir(self.folder, 0o700)
        self._owns = (self.folder,)
        with open(os.path.join(self.folder, "pyproject.toml"), "w", encoding="utf-8") as f:
            f.write(self.uv_input)
        if self._preferences_path:
            try:
                with open(self._preferences_path, "rb") as src:
                    self.preferences = src.read()
            except OSError:
                self.preferences = None
            else:
                with open(os.path.join(self.folder, "pylock.toml"), "wb") as dst:
                    dst.write(self.preferences)
        super().start()


_serial = itertools.count()


def _scratch_folder() -> str:
    base = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - tempfile's own first choice
    unique = f"{os.getpid()}-{time.time_ns():x}-{next(_serial)}"
    return os.path.join(base, f"bnb-provision-lock-{unique}")


_pending: list[Prestarted] = []
_claims = _thread.allocate_lock()  # lock's worker threads claim compiles


def prestart(argv: Sequence[str]) -> list[Prestarted]:
    """Start now the uv runs ``argv`` already determines (see above); they wait to be
    claimed, and are discarded at exit when nobody claims them."""
    if not hasattr(os, "posix_spawn") or os.environ.get(NO_PRESTART_ENV):
        return []
    command = argv[0] if argv else ""
    runs = _init_runs(argv) if command == "init" else _lock_runs(argv) if command == "lock" else []
    started = []
    for run in runs:
        try:
            run.start()
        except (OSError, RuntimeError):  # RuntimeError: no thread could be started
            run.discard()
            continue
        started.append(run)
    if started:
        if not _pending:
            import atexit

            atexit.register(discard_unclaimed)
        _pending.extend(started)
    return started


def _init_runs(argv: Sequence[str]) -> list[Prestarted]:
    request = init_request(argv, stderr_is_tty=sys.stderr.isatty())
    if request is None or request.python != f"{sys.version_info[0]}.{sys.version_info[1]}":
        return []  # init uses this interpreter only for a lock of its own Python
    uv = _uv_beside()
    if uv is None:
        return []
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
    return [InitBuild(request.store, name, steps, capture=request.capture)]


def _uv_beside() -> str | None:
    """The uv binary the ``uv`` package installed beside this interpreter, if any."""
    uv = os.path.join(os.path.dirname(sys.executable), "uv.exe" if os.name == "nt" else "uv")
    return uv if os.access(uv, os.X_OK) else None


def claim(
    store: str,
    steps_for: Callable[[str], Sequence[Sequence[str]]] | None,
    *,
    capture: bool,
) -> InitBuild | None:
    """The started init build if its steps are exactly the ones wanted, else None.

    ``steps_for(partial)`` gives the steps the caller would run in the build folder
    ``partial``; None means it wants none. An init build not claimed is discarded.
    """
    taken = None
    with _claims:
        builds = [r for r in _pending if isinstance(r, InitBuild)]
        for build in builds:
            _pending.remove(build)
    for build in builds:
        if (
            taken is None
            and steps_for is not None
            and build.store == store
            and build.capture == capture
            and build.steps == tuple(tuple(s) for s in steps_for(build.partial))
        ):
            taken = build
        else:
            build.discard()
    return taken


# -- lock: the compiles the same command ran last time ---------------------------------


def _memo_key(argv: Sequence[str]) -> tuple[str, ...]:
    from bnb_provision import __version__

    return (__version__, sys.executable, os.getcwd(), *argv)


def _read_memo() -> list[tuple[tuple[str, ...], tuple[tuple[tuple[str, ...], str, str], ...]]]:
    data = read_private(os.path.join(cache_folder(), _MEMO))
    if data is None:
        return []
    try:
        entries = marshal.loads(data)  # noqa: S302 - our own private cache file, checked below
        checked = []
        for key, compiles in entries:
            for template, uv_input, preferences in compiles:
                if not (
                    all(isinstance(a, str) for a in template)
                    and isinstance(uv_input, str)
                    and isinstance(preferences, str)
                ):
                    raise TypeError(template)
            checked.append((tuple(key), tuple(compiles)))
    except (OSError, EOFError, ValueError, TypeError):
        return []  # none yet, or unreadable: nothing starts early
    return checked


def _lock_runs(argv: Sequence[str]) -> list[Prestarted]:
    uv = _uv_beside()
    if uv is None or not caching():
        return []
    key = _memo_key(argv)
    for k, compiles in _read_memo():
        if k == key:
            # only ever this uv's pip compile, whatever the file says
            if all(tuple(t[:3]) == (uv, "pip", "compile") for t, _, _ in compiles):
                return [LockCompile(t, uv_input, prefs) for t, uv_input, prefs in compiles]
            return []
    return []


def remember_lock(argv: Sequence[str], compiles: Sequence[tuple[Sequence[str], str, str]]) -> None:
    """Remember the compiles a lock command ran: ``(uv argv with SCRATCH for the
    scratch folder, the input pyproject.toml, the path of the lock handed to uv as its
    preferences or "")``. The next run of the same command starts them at launch."""
    if not caching():
        return
    key = _memo_key(argv)
    entries = [e for e in _read_memo() if e[0] != key]
    entries.insert(0, (key, tuple((tuple(t), i, p) for t, i, p in compiles)))
    try:
        write_private(os.path.join(cache_folder(), _MEMO), marshal.dumps(entries[:_MEMO_SIZE]))
    except OSError:
        return  # a cache that cannot be written is no error


def claim_compile(
    args_for: Callable[[str], Sequence[str]], uv_input: str, preferences: bytes | None
) -> LockCompile | None:
    """A started compile whose uv argv (``args_for(its scratch folder)``), input and
    preferences are exactly these, else None. Safe to call from several threads."""
    with _claims:
        for run in _pending:
            if (
                isinstance(run, LockCompile)
                and run.uv_input == uv_input
                and run.preferences == preferences
                and run.steps[0] == tuple(args_for(run.folder))
            ):
                _pending.remove(run)
                return run
    return None


def discard_unclaimed() -> None:
    """Cancel and remove every run nobody claimed (also done at exit)."""
    with _claims:
        runs = list(_pending)
        _pending.clear()
    for run in runs:
        run.discard()


def main() -> None:
    """Console-script entry point: start what argv already says, run the CLI, leave."""
    import gc

    # nothing loaded from here to the CLI is garbage; cli.main freezes it all and
    # turns the collector back on (saves a few ms of collections during imports)
    gc.disable()
    prestart(sys.argv[1:])
    from bnb_provision.cli import main as cli_main

    try:
        cli_main()
    except SystemExit as exc:  # click ends every command with one
        _leave(exc.code)
    _leave(0)


def _leave(code: object) -> None:
    """Exit without tearing the interpreter down.

    Once a command has returned there is nothing left to finalize: every file it wrote
    is closed, every thread it started has finished. Tearing down click, tomllib and
    packaging costs ~10 ms here, as much as all the work after uv. So: run the exit
    handlers (among them :func:`discard_unclaimed`), flush the output, and end the
    process, with the status ``sys.exit`` would give.
    """
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message")
        sys.stderr.write(f"{code}\n")
        status = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers Python runs at exit, in order
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what Python itself exits with
            status = status or 120
    os._exit(status)
