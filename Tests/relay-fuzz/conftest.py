from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relayfuzz_helpers import Account, Device, Relay, relay_binary  # noqa: E402


@pytest.fixture(scope="session")
def relay_executable(tmp_path_factory) -> Path:
    """The relay binary, copied once per run so that a `swift build` relinking .build/debug meanwhile
    cannot break the run. FAILS (never skips) when it is missing."""
    binary = relay_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"parley-relay not found at {binary}: build it first with `swift build --product parley-relay` "
                    f"(or `make test-fuzz`) in the repository root, or set PARLEY_RELAY_BIN.", pytrace=False)
    copy = tmp_path_factory.mktemp("bin") / binary.name
    shutil.copy2(binary, copy)
    return copy


@pytest.fixture(scope="session")
def relay(relay_executable, tmp_path_factory):
    """One relay for the whole run: 127.0.0.1, a free port, a fresh data directory, --no-rate-limit.
    Stopped with SIGTERM at the end; a non-zero exit status then fails the run."""
    server = Relay(relay_executable, tmp_path_factory.mktemp("relay") / "data")
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"parley-relay exited with {code} after SIGTERM: {server.stderr()}"


@pytest.fixture(scope="session")
def alice(relay) -> tuple[Account, str]:
    """A registered one-device account with prekeys, and a session token for its device."""
    import requests

    from relayfuzz_helpers import prekey_upload

    account = Account("alice", relay.name, [Device(1)])
    r = requests.post(f"{relay.url}/v1/accounts", json=account.register_body(), timeout=10)
    assert r.status_code == 201, r.text
    token = account.login(relay.url, account.devices[0])
    r = requests.put(f"{relay.url}/v1/keys", json=prekey_upload(account.devices[0], one_time=3, one_time_pq=2),
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 204, r.text
    return account, token
