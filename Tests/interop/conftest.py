from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from swift_peer import SwiftPeer, peer_binary  # noqa: E402


@pytest.fixture(scope="session")
def swift_binary(tmp_path_factory):
    """The peer binary, copied once per run: every test uses the same build, and a `swift build` running
    meanwhile (relinking .build/debug) cannot break the run with "text file busy"."""
    binary = peer_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"Swift interop peer not found at {binary}: build it first with `make build` "
                    f"(or `swift build --product parley-interop-peer`) in the repository root.", pytrace=False)
    copy = tmp_path_factory.mktemp("peer") / binary.name
    shutil.copy2(binary, copy)
    return copy


@pytest.fixture
def swift_factory(swift_binary):
    """Starts `parley-interop-peer` processes; FAILS (never skips) when the binary is missing."""
    peers = []

    def start(*args: str) -> SwiftPeer:
        peer = SwiftPeer(*args, binary=swift_binary)
        peers.append(peer)
        return peer
    yield start
    for peer in peers:
        peer.close()


@pytest.fixture
def swift(swift_factory):
    return swift_factory("--device-id", "3")
