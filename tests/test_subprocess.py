"""The one subprocess wrapper: real programs, their failures, a timeout, a cancel."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError

PY = sys.executable


def test_run_captures_output_and_exit_status() -> None:
    done = process.run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert (done.returncode, done.stdout.strip(), done.stderr.strip()) == (0, "out", "err")
    quiet = process.run([PY, "-c", "raise SystemExit(3)"], check=False)
    assert quiet.returncode == 3


def test_a_failure_carries_the_programs_own_message() -> None:
    with pytest.raises(ExternalToolError, match=r"exited with status 1:\nno such index") as info:
        process.run([PY, "-c", "import sys; sys.exit('no such index')"], check=True)
    assert info.value.returncode == 1 and info.value.output == "no such index"


def test_uncaptured_output_goes_to_the_terminal_and_the_error_says_so(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ExternalToolError, match="its own output is above"):
        process.run([PY, "-c", "print('progress 50%'); raise SystemExit(1)"], capture=False)
    assert "progress 50%" in capfd.readouterr().out


def test_missing_program_and_timeout() -> None:
    with pytest.raises(ExternalToolError, match="was not found"):
        process.run(["/nonexistent/uv", "--version"])
    with pytest.raises(ExternalToolError, match=r"did not finish within 0\.3 s"):
        process.run([PY, "-c", "import time; time.sleep(30)"], timeout=0.3)


def test_cancel_stops_a_running_program_from_another_thread() -> None:
    running = process.start([PY, "-c", "import time; time.sleep(30)"])
    threading.Timer(0.2, running.cancel).start()
    start = time.monotonic()
    with pytest.raises(ExternalToolError, match="was cancelled"):
        running.wait()
    assert time.monotonic() - start < 10


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_a_timeout_stops_children_that_hold_the_output(tmp_path: Path) -> None:
    """An nvidia-smi that is a wrapper script whose child hangs: the timeout is the bound,
    not the child's lifetime (issue 12: it took 60 s instead of 5)."""
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\nsleep 60 &\nsleep 60\n")
    script.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(ExternalToolError, match="did not finish within 1 s"):
        process.run([str(script)], timeout=1)
    assert time.monotonic() - start < 10


def test_steps_run_in_order_in_the_background() -> None:
    steps = process.start_steps(
        [[PY, "-c", "print('one')"], [PY, "-c", "print('two')"]], timeout=60
    )
    done = steps.finish()
    assert [d.stdout.strip() for d in done] == ["one", "two"]


def test_a_failed_step_stops_the_rest_and_finish_re_raises_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    steps = process.start_steps(
        [
            [PY, "-c", "import sys; sys.exit('no such index')"],
            [PY, "-c", f"open({str(marker)!r}, 'w').close()"],
        ]
    )
    with pytest.raises(ExternalToolError, match="no such index"):
        steps.finish()
    assert not marker.exists()


def test_cancel_stops_the_running_step_and_skips_the_rest() -> None:
    steps = process.start_steps(
        [[PY, "-c", "import time; time.sleep(30)"], [PY, "-c", "import time; time.sleep(30)"]]
    )
    time.sleep(0.3)
    start = time.monotonic()
    steps.cancel()
    assert time.monotonic() - start < 10
    with pytest.raises(ExternalToolError, match="was cancelled"):
        steps.finish()
