from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuihelpers import Account, Relay, built  # noqa: E402


@pytest.fixture(scope="session")
def binaries(tmp_path_factory):
    """parley and parley-relay, copied once so a concurrent `swift build` cannot swap them mid-run."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (make deps installs it)", pytrace=False)
    directory = tmp_path_factory.mktemp("bin")
    copies = {}
    for name in ("parley", "parley-relay"):
        copies[name] = directory / name
        shutil.copy2(built(name), copies[name])
    return copies


@pytest.fixture
def tmux_socket(tmp_path):
    """A private tmux server per test, killed at the end (never touches the user's sessions)."""
    name = f"parley-tui-{os.getpid()}-{tmp_path.name}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True)


@pytest.fixture
def relays(binaries, tmp_path):
    started: list[Relay] = []

    def start(label: str, port: int | None = None, extra: tuple[str, ...] = ()) -> Relay:
        relay = Relay(binaries["parley-relay"], tmp_path / f"relay-{label}", port, extra).start()
        started.append(relay)
        return relay
    yield start
    for relay in started:
        relay.stop()


@pytest.fixture
def account(binaries, tmp_path):
    def make(name: str, relay: Relay, directory: Path | None = None) -> Account:
        return Account(binaries["parley"], name, relay, directory or tmp_path).init()
    return make
