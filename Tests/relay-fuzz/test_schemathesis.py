"""openapi/relay.yaml against a real parley-relay: schemathesis fuzzes every HTTP operation, and a scripted
walk through every route's success path checks the documented statuses and response bodies where random
data cannot reach (signed device lists, signed challenges, signed prekeys).

Checks on every response: no 5xx, the status is documented for the operation, the Content-Type is the
documented one, the body matches the documented schema (responses are `additionalProperties: false`, so
an undocumented field fails too), documented response headers are present.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import zlib
from collections import Counter
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from nacl.signing import SigningKey
from relayfuzz_helpers import SPEC, Account, Device, PushSocket, Relay, b64, prekey_upload, u16, u64

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# Per operation; the whole file stays well under two minutes on a 2-core machine.
MAX_EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "30"))

schema = schemathesis.openapi.from_path(str(SPEC))
# GET /v1/push is a WebSocket upgrade: an HTTP client library cannot follow a 101, so the upgrade and its
# plain-GET fallback are driven by hand in test_push_websocket.
fuzzed = schema.exclude(path="/v1/push")

# Values that only exist once the relay runs (its port is its name): filled in by the `targets` fixture and
# read by the hooks below while Hypothesis draws cases.
TARGETS: dict[str, str] = {}
STATUSES: Counter[str] = Counter()


@fuzzed.hook
def flatmap_path_parameters(context, path_parameters):
    """Besides random values, aim at the registered account, its device and a live attachment slot, so that
    fuzzed bodies reach the code behind the address and id checks."""
    choices = [path_parameters]
    if TARGETS and isinstance(path_parameters, dict):
        known = dict(path_parameters)
        if "deviceId" in known:
            known["deviceId"] = 1
        if "id" in known:
            known["id"] = TARGETS["attachment"]
        if "address" in known:
            # As is, and percent-encoded as OpenAPI clients send reserved characters in a path.
            choices.append({**known, "address": quote(TARGETS["address"], safe="")})
            known["address"] = TARGETS["address"]
        choices.append(known)
    return st.sampled_from(choices)


@fuzzed.hook
def flatmap_body(context, body):
    """Request bodies that name an account: also try this relay's registered and unregistered addresses."""
    if TARGETS and isinstance(body, dict) and "address" in body:
        return st.sampled_from([body, {**body, "address": TARGETS["address"]},
                                {**body, "address": "nobody@" + TARGETS["relay"]}])
    return st.just(body)


@pytest.fixture(scope="session")
def targets(relay, alice):
    account, token = alice
    r = requests.post(f"{relay.url}/v1/attachments", json={"size": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 201, r.text
    TARGETS.update(address=account.address, relay=relay.name, attachment=r.json()["id"], token=token)
    yield TARGETS
    TARGETS.clear()


@fuzzed.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz(case, relay, targets):
    """Random and boundary requests, valid and invalid per the document (schemathesis' examples, coverage
    and fuzzing phases)."""
    # Authenticated operations carry schemathesis' random bearer values; half of the cases (chosen from
    # the case's own data, so that a failing case replays the same way) get the valid token instead, so
    # that their bodies reach the code behind authentication. Applies to every phase, not only fuzzing.
    if case.headers and "Authorization" in case.headers:
        if zlib.crc32(repr((case.headers["Authorization"], case.path_parameters, case.query, case.body)).encode()) % 2:
            case.headers["Authorization"] = f"Bearer {targets['token']}"
    response = case.call_and_validate(base_url=relay.url, checks=CHECKS, timeout=30)
    STATUSES[f"{case.method.upper()} {case.operation.path} {response.status_code}"] += 1


@pytest.fixture(scope="module", autouse=True)
def status_report():
    """With RELAY_FUZZ_STATS=FILE, writes how many fuzzed requests got each status, per operation."""
    yield
    if os.environ.get("RELAY_FUZZ_STATS"):
        with open(os.environ["RELAY_FUZZ_STATS"], "w") as out:
            out.writelines(f"{count:6d}  {key}\n" for key, count in sorted(STATUSES.items()))


class Walk:
    """Calls operations of the document with chosen data and validates every response like the fuzzer."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, expect: int, *, token: str | None = None, **case_kwargs):
        operation = schema[path][method]
        headers = dict(case_kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        case = operation.Case(headers=headers, **case_kwargs)
        response = case.call_and_validate(base_url=self.base_url, checks=CHECKS, timeout=30)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        self.seen.add((method, path))
        return response


def test_every_route_success_and_error_paths(relay):
    walk = Walk(relay.url)
    bob = Account("bob", relay.name, [Device(1)])
    # Health and registration.
    health = walk("GET", "/v1/health", 200).json()
    assert health == {"status": "ok", "name": relay.name, "version": "1"}
    created = walk("POST", "/v1/accounts", 201, body=bob.register_body()).json()
    assert created["address"] == bob.address and base64.b64decode(created["deviceList"]) == bob.signed_device_list()
    walk("POST", "/v1/accounts", 409, body=bob.register_body())
    walk("POST", "/v1/accounts", 404, body={**bob.register_body(), "address": "bob@elsewhere.example"})
    walk("POST", "/v1/accounts", 400, body={**bob.register_body(), "accountKey": b64(bytes(32))})
    walk("POST", "/v1/accounts", 413, body={**bob.register_body(), "padding": "x" * 70_000})
    assert walk("GET", "/v1/accounts/{address}", 200, path_parameters={"address": bob.address}).json() == created
    # Percent-encoded, as OpenAPI clients send the '@' and ':' of a path parameter.
    assert walk("GET", "/v1/accounts/{address}", 200, path_parameters={"address": quote(bob.address, safe="")}).json() == created
    walk("GET", "/v1/accounts/{address}", 400, path_parameters={"address": "bob%ZZ"})
    walk("GET", "/v1/accounts/{address}", 404, path_parameters={"address": "carol@" + relay.name})
    walk("GET", "/v1/accounts/{address}", 400, path_parameters={"address": "Not An Address"})

    # Device authentication: a challenge is single use, whatever the outcome.
    device = bob.devices[0]
    walk("POST", "/v1/auth/challenge", 404, body={"address": bob.address, "deviceId": 2})
    challenge = base64.b64decode(walk("POST", "/v1/auth/challenge", 200, body={"address": bob.address, "deviceId": 1}).json()["challenge"])
    session = walk("POST", "/v1/auth/session", 200, body=bob.session_body(device, challenge)).json()
    token = session["token"]
    walk("POST", "/v1/auth/session", 401, body=bob.session_body(device, challenge))

    # Prekeys.
    walk("PUT", "/v1/keys", 401, body={"oneTimePreKeys": [], "oneTimePQPreKeys": []})
    walk("PUT", "/v1/keys", 204, token=token, body=prekey_upload(device, one_time=2, one_time_pq=1))
    walk("PUT", "/v1/keys", 400, token=token, body={"oneTimePreKeys": [{"id": 0, "key": b64(bytes(32))}], "oneTimePQPreKeys": []})
    count = walk("GET", "/v1/keys/count", 200, token=token).json()
    assert count == {"oneTimePreKeys": 2, "oneTimePQPreKeys": 1, "low": True}
    walk("GET", "/v1/keys/count", 401, token="0" * 64)
    walk("GET", "/v1/keys/{address}/{deviceId}", 200, path_parameters={"address": bob.address, "deviceId": 1})
    walk("GET", "/v1/keys/{address}/{deviceId}", 404, path_parameters={"address": bob.address, "deviceId": 7})

    # Sealed-sender sends: all devices or none.
    envelope = os.urandom(300)
    message = {"deviceId": 1, "deviceKey": b64(device.public), "envelope": b64(envelope)}
    walk("POST", "/v1/messages/{address}", 204, path_parameters={"address": bob.address}, body={"messages": [message]})
    stale = walk("POST", "/v1/messages/{address}", 410, path_parameters={"address": bob.address},
                 body={"messages": [{**message, "deviceKey": b64(bytes(32))}]}).json()
    assert stale == {"missingDevices": [], "extraDevices": [], "staleDevices": [1]}
    extra = walk("POST", "/v1/messages/{address}", 409, path_parameters={"address": bob.address},
                 body={"messages": [message, {**message, "deviceId": 5}]}).json()
    assert extra == {"missingDevices": [], "extraDevices": [5], "staleDevices": []}
    walk("POST", "/v1/messages/{address}", 400, path_parameters={"address": bob.address}, body={"messages": []})
    walk("POST", "/v1/messages/{address}", 404, path_parameters={"address": "carol@" + relay.name}, body={"messages": [message]})
    walk("POST", "/v1/messages/{address}", 413, path_parameters={"address": bob.address},
         body={"messages": [{**message, "envelope": b64(bytes(97 * 1024))}]})

    # Mailbox: fetch, acknowledge, gone.
    page = walk("GET", "/v1/mailbox", 200, token=token, query={"limit": 10}).json()
    assert [base64.b64decode(m["envelope"]) for m in page["messages"]] == [envelope] and page["more"] is False
    walk("POST", "/v1/mailbox/ack", 400, token=token, body={"ids": ["zero"]})
    walk("POST", "/v1/mailbox/ack", 204, token=token, body={"ids": [m["id"] for m in page["messages"]]})
    assert walk("GET", "/v1/mailbox", 200, token=token).json()["messages"] == []

    # Delivery access (PROTOCOL.md §13.1): the account's device registers the key's verifier, never the key.
    verifier = {"verifier": b64(bytes(32))}
    walk("PUT", "/v1/delivery-access", 401, body=verifier)
    walk("PUT", "/v1/delivery-access", 400, token=token, body={"verifier": b64(bytes(16))})
    walk("PUT", "/v1/delivery-access", 204, token=token, body=verifier)

    # Attachments: a slot is asked for with a token (the quota) and filled with its upload secret alone.
    walk("POST", "/v1/attachments", 400, token=token, body={"size": 0})
    walk("POST", "/v1/attachments", 400, token=token, body={"size": 9})  # not a padded size (PADMÉ: 10)
    walk("POST", "/v1/attachments", 413, token=token, body={"size": 100 * 1024 * 1024 + 1})
    slot = walk("POST", "/v1/attachments", 201, token=token, body={"size": 5}).json()
    path_id = {"id": slot["id"]}
    secret = {"Parley-Upload-Secret": slot["uploadSecret"]}
    octets = {"media_type": "application/octet-stream"}
    walk("GET", "/v1/attachments/{id}", 404, path_parameters=path_id)
    walk("PUT", "/v1/attachments/{id}", 401, token=token, path_parameters=path_id, body=b"12345", **octets)
    walk("PUT", "/v1/attachments/{id}", 404, path_parameters=path_id, headers={"Parley-Upload-Secret": "0" * 64}, body=b"12345", **octets)
    walk("PUT", "/v1/attachments/{id}", 400, path_parameters=path_id, headers=secret, body=b"1234", **octets)
    walk("PUT", "/v1/attachments/{id}", 413, path_parameters=path_id, headers=secret, body=b"123456", **octets)
    walk("PUT", "/v1/attachments/{id}", 204, path_parameters=path_id, headers=secret, body=b"12345", **octets)
    walk("PUT", "/v1/attachments/{id}", 409, path_parameters=path_id, headers=secret, body=b"12345", **octets)
    assert walk("GET", "/v1/attachments/{id}", 200, path_parameters=path_id).content == b"12345"
    walk("PUT", "/v1/attachments/{id}", 404, path_parameters={"id": "0" * 64}, headers=secret, body=b"1", **octets)

    # Provisioning: a slot waits (204), takes one sealed message from a device, hands it over once, then is gone.
    slot = walk("POST", "/v1/provisioning", 201).json()
    at_slot = {"id": slot["id"]}
    walk("GET", "/v1/provisioning/{id}", 204, path_parameters=at_slot)
    walk("PUT", "/v1/provisioning/{id}", 401, path_parameters=at_slot, body={"message": b64(b"sealed")})
    walk("PUT", "/v1/provisioning/{id}", 204, token=token, path_parameters=at_slot, body={"message": b64(b"sealed")})
    walk("PUT", "/v1/provisioning/{id}", 404, token=token, path_parameters=at_slot, body={"message": b64(b"again")})
    assert base64.b64decode(walk("GET", "/v1/provisioning/{id}", 200, path_parameters=at_slot).json()["message"]) == b"sealed"
    walk("GET", "/v1/provisioning/{id}", 404, path_parameters=at_slot)
    big = walk("POST", "/v1/provisioning", 201).json()
    walk("PUT", "/v1/provisioning/{id}", 413, token=token, path_parameters={"id": big["id"]}, body={"message": b64(bytes(65 * 1024))})

    # A newer device list: same account key, higher version; a second device joins.
    bob.devices.append(Device(2))
    bob.version = 2
    devices = "/v1/accounts/{address}/devices"
    at_bob = {"address": bob.address}
    walk("PUT", devices, 204, path_parameters=at_bob, body={"deviceList": b64(bob.signed_device_list())})
    walk("PUT", devices, 409, path_parameters=at_bob, body={"deviceList": b64(bob.signed_device_list())})
    impostor = Account("bob", relay.name, bob.devices, version=3)
    walk("PUT", devices, 403, path_parameters=at_bob, body={"deviceList": b64(impostor.signed_device_list())})
    walk("PUT", devices, 404, path_parameters={"address": "carol@" + relay.name}, body={"deviceList": b64(bob.signed_device_list())})
    walk("PUT", devices, 400, path_parameters=at_bob, body={"deviceList": b64(b"\x01garbage")})
    missing = walk("POST", "/v1/messages/{address}", 409, path_parameters={"address": bob.address},
                   body={"messages": [message]}).json()
    assert missing == {"missingDevices": [2], "extraDevices": [], "staleDevices": []}

    # MLS delivery (PROTOCOL.md §17). KeyPackages: uploaded by a device, claimed by anyone, once each, then
    # the last-resort one (device 2 has none and is left out).
    walk("PUT", "/v1/key-packages", 401, body={"keyPackages": [b64(b"kp")]})
    walk("PUT", "/v1/key-packages", 204, token=token, body={"keyPackages": [b64(b"kp1")], "lastResort": b64(b"last")})
    walk("PUT", "/v1/key-packages", 413, token=token, body={"keyPackages": [b64(bytes(16 * 1024 + 1))]})
    walk("PUT", "/v1/key-packages", 400, token=token, body={"keyPackages": [""]})
    assert walk("GET", "/v1/key-packages/count", 200, token=token).json() == {"keyPackages": 1, "lastResort": True, "low": True}
    walk("GET", "/v1/key-packages/count", 401, token="0" * 64)
    claim = "/v1/key-packages/{address}/claim"
    claimed = [walk("POST", claim, 200, path_parameters=at_bob).json()["keyPackages"] for _ in range(2)]
    assert claimed == [[{"deviceId": 1, "keyPackage": b64(b"kp1"), "lastResort": False}],
                       [{"deviceId": 1, "keyPackage": b64(b"last"), "lastResort": True}]], claimed
    walk("POST", claim, 404, path_parameters={"address": "carol@" + relay.name})

    # A group: epoch 0 registered with a device token; sends and commits carry the epoch's secret only.
    group_id, secret0, secret1 = os.urandom(32), os.urandom(32), os.urandom(32)

    def verifier(epoch: int, secret: bytes) -> str:
        return b64(hashlib.sha256(b"parley group send v1\x00" + group_id + epoch.to_bytes(8, "big") + secret).digest())

    creation = {"groupId": group_id.hex(), "verifier": verifier(0, secret0)}
    walk("POST", "/v1/groups", 401, body=creation)
    assert walk("POST", "/v1/groups", 201, token=token, body=creation).json() == {"groupId": group_id.hex(), "epoch": 0}
    walk("POST", "/v1/groups", 409, token=token, body=creation)
    walk("POST", "/v1/groups", 400, token=token, body={**creation, "groupId": "zz"})
    at_group = {"groupId": group_id.hex()}
    to_bob = [{"address": bob.address, "deviceId": 1}, {"address": bob.address, "deviceId": 2}]
    hello = {"epoch": 0, "message": b64(b"hello group"), "recipients": to_bob}
    send, commit = "/v1/groups/{groupId}/messages", "/v1/groups/{groupId}/commits"
    walk("POST", send, 401, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret1)}, body=hello)
    walk("POST", send, 404, path_parameters={"groupId": "0" * 64}, headers={"Parley-Group-Secret": b64(secret0)}, body=hello)
    walk("POST", send, 204, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret0)}, body=hello)
    walk("POST", send, 413, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret0)},
         body={**hello, "message": b64(bytes(97 * 1024))})
    step = {"epoch": 0, "message": b64(b"commit"), "recipients": to_bob, "nextVerifier": verifier(1, secret1)}
    walk("POST", commit, 204, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret0)}, body=step)
    lost = walk("POST", commit, 409, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret0)}, body=step).json()
    assert lost["error"] == "epoch_conflict" and lost["epoch"] == 1, lost
    walk("POST", send, 400, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret1)},
         body={"epoch": 1, "message": b64(b"x"), "recipients": []})

    # Mailbox version 2: the group message and the commit, stored once, in each device's mailbox.
    page = walk("GET", "/v1/mailbox", 200, token=token, query={"version": 2}).json()
    assert page["version"] == 2 and [m["group"]["kind"] for m in page["messages"]] == ["message", "commit"], page
    assert walk("GET", "/v1/mailbox", 200, token=token).json()["messages"] == [], "version 1 leaves group messages out"
    walk("GET", "/v1/mailbox", 400, token=token, query={"version": 3})
    rest = walk("POST", "/v1/mailbox/ack", 200, token=token, query={"fetch": 10, "version": 2},
                body={"ids": [m["id"] for m in page["messages"]]}).json()
    assert rest["messages"] == [] and rest["version"] == 2

    # Rejoining (PROTOCOL.md §17.9): a commit leaves a GroupInfo for the devices it names; such a device
    # fetches it with its token and posts an external commit, which is the epoch's one commit.
    info, info_route, external = b64(b"group info"), "/v1/groups/{groupId}/group-info", "/v1/groups/{groupId}/external-commits"
    walk("GET", info_route, 404, token=token, path_parameters=at_group)  # the commit that started epoch 1 left none
    with_info = {"epoch": 1, "message": b64(b"commit"), "recipients": to_bob, "nextVerifier": verifier(2, os.urandom(32)),
                 "groupInfo": info, "rejoiners": [to_bob[0]]}
    walk("POST", commit, 400, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret1)},
         body={k: v for k, v in with_info.items() if k != "rejoiners"})
    walk("POST", commit, 204, path_parameters=at_group, headers={"Parley-Group-Secret": b64(secret1)}, body=with_info)
    walk("GET", info_route, 401, path_parameters=at_group)
    assert walk("GET", info_route, 200, token=token, path_parameters=at_group).json() == {"groupId": group_id.hex(), "epoch": 2, "groupInfo": info}
    rejoin = {"epoch": 2, "message": b64(b"external commit"), "recipients": to_bob, "nextVerifier": verifier(3, os.urandom(32)),
              "groupInfo": info, "rejoiners": [to_bob[1]]}
    walk("POST", external, 401, path_parameters=at_group, body=rejoin)
    walk("POST", external, 400, token=token, path_parameters=at_group,
         body={k: v for k, v in rejoin.items() if k not in ("groupInfo", "rejoiners")})
    walk("POST", external, 204, token=token, path_parameters=at_group, body=rejoin)
    walk("POST", external, 409, token=token, path_parameters=at_group, body=rejoin)
    walk("POST", external, 403, token=token, path_parameters=at_group, body={**rejoin, "epoch": 3})  # epoch 3 names device 2 only
    walk("GET", info_route, 404, token=token, path_parameters=at_group)

    # An account key change (PROTOCOL.md §3.5): the current key's statement names the new key, and the list
    # of version + 1 is signed by the new key. Its own account, so bob's keys stay as they are.
    dora = Account("dora", relay.name, [Device(1)])
    walk("POST", "/v1/accounts", 201, body=dora.register_body())
    old_key, new_key = dora.account_key, SigningKey.generate()

    def key_change(signer: SigningKey, address: str = dora.address) -> str:
        body = (bytes([1]) + u16(len(address.encode())) + address.encode() + old_key.verify_key.encode()
                + new_key.verify_key.encode() + u64(1_700_000_000_000))
        return b64(body + signer.sign(b"parley.account-key-change.v1\x00" + body).signature)

    dora.account_key, dora.version = new_key, 2
    new_list = b64(dora.signed_device_list())
    at_dora, key_route = {"address": dora.address}, "/v1/accounts/{address}/key"
    walk("PUT", key_route, 404, path_parameters={"address": "carol@" + relay.name},
         body={"keyChange": key_change(old_key, "carol@" + relay.name), "deviceList": new_list})
    walk("PUT", key_route, 400, path_parameters=at_dora, body={"keyChange": b64(b"short"), "deviceList": new_list})
    walk("PUT", key_route, 403, path_parameters=at_dora, body={"keyChange": key_change(new_key), "deviceList": new_list})
    walk("PUT", key_route, 403, path_parameters=at_dora, body={"keyChange": key_change(old_key, bob.address), "deviceList": new_list})
    walk("PUT", key_route, 204, path_parameters=at_dora, body={"keyChange": key_change(old_key), "deviceList": new_list})
    account = walk("GET", "/v1/accounts/{address}", 200, path_parameters=at_dora).json()
    assert base64.b64decode(account["accountKey"]) == new_key.verify_key.encode() and "keyChange" in account, account
    # The old key is no longer current: its statement is refused, and nothing changes.
    walk("PUT", key_route, 403, path_parameters=at_dora, body={"keyChange": key_change(old_key), "deviceList": new_list})

    # Every HTTP operation of the document was exercised (GET /v1/push: test_push_websocket).
    documented = {(method.upper(), path) for path, methods in schema.raw_schema["paths"].items() for method in methods}
    assert walk.seen == documented - {("GET", "/v1/push")}


def test_push_websocket(relay, alice):
    account, token = alice
    device = account.devices[0]
    host, port = "127.0.0.1", relay.port
    with PushSocket(host, port, token) as push:
        # 101, then the text frame `wake` straight away, and again when mail arrives.
        assert push.status == 101
        assert push.read_frame() == (0x1, b"wake")
        message = {"deviceId": 1, "deviceKey": b64(device.public), "envelope": b64(os.urandom(200))}
        r = requests.post(f"{relay.url}/v1/messages/{account.address}", json={"messages": [message]}, timeout=10)
        assert r.status_code == 204, r.text
        assert push.read_frame() == (0x1, b"wake")
        # A newer connection for the same device closes this one with 4409.
        with PushSocket(host, port, token) as newer:
            assert newer.status == 101 and newer.read_frame() == (0x1, b"wake")
            opcode, payload = push.read_frame()
            assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 4409, (opcode, payload)
    # Upgrade refused without a valid token: an empty 400 and the connection closed.
    for bad in (None, "0" * 64):
        with PushSocket(host, port, bad) as refused:
            assert refused.status == 400 and refused.buffer == b"" and refused.read_frame() == (-1, b"")
    # A plain GET: 401 without a token, 426 with one. Validated against the document.
    operation = schema["/v1/push"]["GET"]
    for headers, expect in (({}, 401), ({"Authorization": f"Bearer {token}"}, 426)):
        response = operation.Case(headers=headers).call_and_validate(base_url=relay.url, checks=CHECKS, timeout=30)
        assert response.status_code == expect, response.text
    assert response.headers.get("upgrade") == ["websocket"], response.headers


def test_sigterm_with_open_push_connection(relay_executable, tmp_path):
    """SIGTERM stops the relay promptly and cleanly even while a push client that never answers the close
    frame is connected (it used to ignore SIGTERM altogether, then to hang on such a client)."""
    server = Relay(relay_executable, tmp_path / "data")
    server.start()
    try:
        account = Account("dora", server.name, [Device(1)])
        assert requests.post(f"{server.url}/v1/accounts", json=account.register_body(), timeout=10).status_code == 201
        token = account.login(server.url, account.devices[0])
        with PushSocket("127.0.0.1", server.port, token) as push:
            assert push.status == 101 and push.read_frame() == (0x1, b"wake")
            started = time.monotonic()
            assert server.stop() == 0, server.stderr()
            assert time.monotonic() - started < 10
    finally:
        server.stop()


def test_relay_survived(relay):
    """Still serving after the fuzzing (a crash would show here as a refused connection)."""
    assert relay.process.poll() is None, relay.stderr()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5):
        pass
    assert requests.get(f"{relay.url}/v1/health", timeout=10).status_code == 200
