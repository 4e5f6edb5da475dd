"""The one subprocess wrapper: every external program runs through :func:`run`.

On POSIX each program starts in a session of its own, so a timeout or a cancel stops
the whole process group: a helper whose child hangs (an ``nvidia-smi`` wrapper script,
say) cannot hold the caller beyond its bound.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from bnb_provision.errors import ExternalToolError

__all__ = ["Completed", "Running", "Steps", "find_program", "run", "start", "start_steps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Completed:
    """The result of a finished program."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def find_program(name: str, *extra_dirs: str) -> str | None:
    """Return the full path of ``name`` on PATH or in ``extra_dirs``, else None."""
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        found = shutil.which(name, path=d)
        if found:
            return found
    return None


class Running:
    """A started program; :meth:`wait` finishes it like :func:`run`, :meth:`cancel` stops it."""

    def __init__(
        self,
        argv: tuple[str, ...],
        proc: subprocess.Popen[str],
        *,
        timeout: float | None,
        check: bool,
        input_text: str | None,
    ) -> None:
        self.argv = argv
        self._proc = proc
        self._timeout = timeout
        self._check = check
        self._input = input_text
        self.cancelled = False

    def _signal(self, sig: int) -> None:
        """Send ``sig`` to the program's process group (POSIX), or to the program."""
        if os.name == "posix":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)
        elif sig == signal.SIGTERM:
            self._proc.terminate()
        else:
            self._proc.kill()

    def _kill(self) -> tuple[str | None, str | None]:
        """Kill the process group and collect what was printed, without waiting on pipes
        that something outside the group may still hold."""
        self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))
        try:
            return self._proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc.wait()
            return None, None

    def cancel(self) -> None:
        """Stop the program and its children (terminate, then kill); :meth:`wait` then raises."""
        self.cancelled = True
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))

    def wait(self) -> Completed:
        argv = self.argv
        try:
            stdout, stderr = self._proc.communicate(self._input, timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            self._kill()
            raise ExternalToolError(
                f"{argv[0]} did not finish within {self._timeout:g} s", command=argv
            ) from exc
        except BaseException:  # Ctrl-C: the program must not outlive us
            self._kill()
            raise
        done = Completed(
            args=argv, returncode=self._proc.returncode, stdout=stdout or "", stderr=stderr or ""
        )
        if self.cancelled:
            raise ExternalToolError(f"{' '.join(argv[:3])} was cancelled", command=argv)
        if self._check and done.returncode != 0:
            raise ExternalToolError.exited(argv, done.returncode, done.stderr or done.stdout)
        return done


def start(
    args: list[str] | tuple[str, ...],
    *,
    timeout: float | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input_text: str | None = None,
    capture: bool = True,
) -> Running:
    """Start a program; with ``capture=False`` its output goes to this terminal.

    Raises :class:`ExternalToolError` when the program is missing or not executable.
    """
    argv = tuple(str(a) for a in args)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            cwd=cwd,
            start_new_session=os.name == "posix",
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(f"{argv[0]} was not found", command=argv) from exc
    except PermissionError as exc:
        raise ExternalToolError(f"{argv[0]} is not executable: {exc}", command=argv) from exc
    return Running(argv, proc, timeout=timeout, check=check, input_text=input_text)


def run(
    args: list[str] | tuple[str, ...],
    *,
    timeout: float | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input_text: str | None = None,
    capture: bool = True,
) -> Completed:
    """Run a program and capture its output as text (or show it, ``capture=False``).

    Raises :class:`ExternalToolError` when the program is missing, exceeds
    ``timeout`` seconds, or (with ``check``) exits non-zero.
    """
    return start(
        args,
        timeout=timeout,
        check=check,
        env=env,
        cwd=cwd,
        input_text=input_text,
        capture=capture,
    ).wait()


class Steps:
    """Programs run one after the other in a worker thread, as :func:`run` would run them.

    The caller does other work meanwhile; :meth:`cancel` stops the running program and
    skips the rest, :meth:`finish` waits and re-raises the first failure in the calling
    thread. Made (and started) by :func:`start_steps`.
    """

    def __init__(
        self, steps: Sequence[Sequence[str]], *, timeout: float | None, capture: bool
    ) -> None:
        self._steps = [tuple(str(a) for a in argv) for argv in steps]
        self._timeout = timeout
        self._capture = capture
        self._lock = threading.Lock()
        self._current: Running | None = None
        self._cancelled = False
        self._done: list[Completed] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="bnb-provision-steps", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            for argv in self._steps:
                with self._lock:
                    if self._cancelled:
                        return
                    self._current = start(argv, timeout=self._timeout, capture=self._capture)
                self._done.append(self._current.wait())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by finish()
            self._error = exc

    def cancel(self) -> None:
        """Stop the running program, skip the rest, and wait for the worker to end."""
        with self._lock:
            self._cancelled = True
            if self._current is not None:
                self._current.cancel()
        self._thread.join()

    def finish(self) -> tuple[Completed, ...]:
        """Wait for every step and return their results; re-raise the first failure (or
        the cancel). Interrupted while waiting, it cancels the steps."""
        try:
            self._thread.join()
        except BaseException:
            self.cancel()
            raise
        if self._error is not None:
            raise self._error
        if len(self._done) < len(self._steps):  # cancelled before this step started
            argv = self._steps[len(self._done)]
            raise ExternalToolError(f"{' '.join(argv[:3])} was cancelled", command=argv)
        return tuple(self._done)


def start_steps(
    steps: Sequence[Sequence[str]], *, timeout: float | None = None, capture: bool = True
) -> Steps:
    """Start running ``steps`` (argv lists) one after the other in the background.

    ``timeout`` bounds each step; with ``capture=False`` their output goes to this
    terminal. Failures (a missing program, a timeout, a non-zero exit) surface as
    :class:`ExternalToolError` from :meth:`Steps.finish`.
    """
    return Steps(steps, timeout=timeout, capture=capture)
