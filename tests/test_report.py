"""``doctor --report`` is safe to paste (issue 12): the same redaction in the text and the
JSON, through a home reached by a symbolic link, for user and host names, credentials in
URLs, the values of secret-named variables, and the probe's variable values."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.doctor.redact import REDACTED, Redactor, is_secret_name

SNAP = Path(__file__).parent / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json"
USER = "alice-q"
HOST = "build-node-7.corp.example.com"
API_KEY = "sk-live-4f9a8b7c6d5e"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("git+https://bob:ghp_tok123@github.com/x/y.git", "bob:ghp_tok123", "github.com/x/y.git"),
        ("https://files.example.com/w.whl?token=abc123&x=1", "abc123", "x=1"),
        ("https://s3.example.com/w?X-Amz-Signature=deadbeef", "deadbeef", "s3.example.com"),
        ("export HF_TOKEN=hf_secret_value now", "hf_secret_value", "HF_TOKEN="),
        (f"logged in with {HF}", HF, "logged in"),
        ("GPU-e6227d02-1234-5678-9abc-def012345678 ok", "e6227d02", "GPU-<uuid> ok"),
    ],
)
def test_credentials_in_text_are_redacted(text: str, gone: str, kept: str) -> None:
    out = Redactor().text(text)
    assert gone not in out and kept in out, out


def test_homes_users_and_hosts() -> None:
    r = Redactor(
        homes=("/home/al", "/data/users/al"), users=("al-x",), hosts=("node7", "node7.corp")
    )
    out = r.text("/home/al/.venv /home/alice /data/users/al/x al-x@node7.corp ran on node7")
    assert out == "~/.venv /home/alice ~/x <user>@<host> ran on <host>"


def test_secret_names() -> None:
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"):
        assert is_secret_name(name)
    for name in ("PATH", "CUDA_HOME", "BNB_CUDA_VERSION"):
        assert not is_secret_name(name)


@pytest.fixture
def reporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A home reached through a link, a user, a host, secrets in the environment, and a
    snapshot whose paths and URLs hold all of them."""
    real_home = tmp_path / "real" / USER
    real_home.mkdir(parents=True)
    link_home = tmp_path / "home-link"
    link_home.symlink_to(real_home)
    monkeypatch.setenv("HOME", str(link_home))
    monkeypatch.setenv("LOGNAME", USER)
    monkeypatch.setenv("USER", USER)
    monkeypatch.setenv("MY_SERVICE_API_KEY", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setattr(socket, "gethostname", lambda: HOST)
    data: dict[str, Any] = json.loads(SNAP.read_text())
    env = data["env"]
    env["python"]["executable"] = f"{link_home}/venv/bin/python3"
    env["prefix"] = f"{real_home}/venv"
    env["torch"]["location"] = f"/srv/{HOST}/{USER}/site-packages/torch"
    env["bitsandbytes"]["direct_url"] = (
        f"git+https://{USER}:ghp_s3cr3tt0ken@github.com/org/bnb.git?token=abc123"
    )
    env["variables"]["LD_LIBRARY_PATH"] = f"{real_home}/cuda/lib:/opt/{API_KEY}/lib"
    env["variables"]["BNB_CUDA_VERSION"] = "118"  # makes a finding that names paths
    env["cudart"] = [f"/opt/{API_KEY}/libcudart.so.12", f"{real_home}/lib/libcudart.so.13"]
    data["warnings"] = [f"the hub login {HF} is cached"]
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(data))
    return snap, real_home


SECRETS = (USER, HOST, "build-node-7", "ghp_s3cr3tt0ken", "abc123", API_KEY, HF, "home-link")


def test_text_and_json_reports_are_redacted_alike(reporter: tuple[Path, Path]) -> None:
    snap, real_home = reporter
    runner = CliRunner()
    text = runner.invoke(cli, ["doctor", "--machine", str(snap), "--report"]).stdout
    raw = runner.invoke(cli, ["doctor", "--machine", str(snap), "--report", "--json"]).stdout
    plain = runner.invoke(cli, ["doctor", "--machine", str(snap), "--json"]).stdout
    assert "<details>" in text
    for secret in (*SECRETS, str(real_home)):
        assert secret not in text, secret
        assert secret not in raw, secret
        assert secret in plain, secret  # the control: each was there to redact
    data = json.loads(raw)
    env = data["subject"]["machine"]["env"]
    assert env["python"]["executable"] == "~/venv/bin/python3"
    assert env["prefix"] == "~/venv"
    assert env["torch"]["location"] == "/srv/<host>/<user>/site-packages/torch"
    assert env["bitsandbytes"]["direct_url"] == (
        f"git+https://{REDACTED}@github.com/org/bnb.git?token={REDACTED}"
    )
    assert env["variables"]["LD_LIBRARY_PATH"] == REDACTED
    # the same values, redacted the same way, in the text
    assert "~/venv/bin/python3" in text
    assert data["findings"][0]["title"] in text
