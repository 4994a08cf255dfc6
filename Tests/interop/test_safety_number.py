"""Cross-check of `parley safety-number` against an independent implementation of libsignal's
NumericFingerprint construction (written here from libsignal's description, with hashlib)."""
import hashlib
import os
import random
import subprocess

import pytest

PARLEY = os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "parley")


def party_hash(key: bytes, stable_id: bytes, iterations: int) -> bytes:
    digest = hashlib.sha512(b"\x00\x00" + key + stable_id + key).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha512(digest + key).digest()
    return digest


def digits(hash_: bytes) -> str:
    return "".join("%05d" % (int.from_bytes(hash_[i:i + 5], "big") % 100000) for i in range(0, 30, 5))


def scannable(version: int, local: bytes, remote: bytes) -> bytes:
    out = bytearray([0x08])
    v = version
    while True:
        byte = v & 0x7F
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            break
    for tag, h in ((0x12, local), (0x1A, remote)):
        out += bytes([tag, 0x22, 0x0A, 0x20]) + h[:32]
    return bytes(out)


def run(local_key: bytes, local_id: str, remote_key: bytes, remote_id: str, iterations=None, version=None):
    assert os.path.exists(PARLEY), f"build the client first: {PARLEY} is missing (make build)"
    args = [PARLEY, "safety-number", "--local-key", local_key.hex(), "--local-id", local_id,
            "--remote-key", remote_key.hex(), "--remote-id", remote_id]
    if iterations is not None:
        args += ["--iterations", str(iterations)]
    if version is not None:
        args += ["--scannable-version", str(version)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.splitlines()
    return out


CASES = [
    (bytes.fromhex("06" + "11" * 32), "alice@relay.example", bytes.fromhex("06" + "22" * 32), "bob@relay.example", None, 80),
    (os.urandom(33), "+14152222222", os.urandom(33), "+14153333333", None, 1),
    (os.urandom(5), "", os.urandom(100), "ünïcødé ☃", 17, 300),
    (b"", "x", b"\x00", "y", 1, 0),
]


@pytest.mark.parametrize("local_key,local_id,remote_key,remote_id,iterations,version", CASES)
def test_digits_and_scannable_match_independent_implementation(local_key, local_id, remote_key, remote_id, iterations, version):
    its = iterations or 5200
    lh = party_hash(local_key, local_id.encode(), its)
    rh = party_hash(remote_key, remote_id.encode(), its)
    expected = "".join(sorted([digits(lh), digits(rh)]))
    lines = run(local_key, local_id, remote_key, remote_id, iterations, version)
    assert lines[0] == expected
    assert len(lines[0]) == 60
    assert lines[1] == scannable(version, lh, rh).hex()


def test_both_sides_see_the_same_number():
    rnd = random.Random(7)
    for _ in range(5):
        a, b = rnd.randbytes(33), rnd.randbytes(33)
        assert run(a, "a@r", b, "b@r")[0] == run(b, "b@r", a, "a@r")[0]


def test_libsignal_published_vector():
    # libsignal's NumericFingerprintGeneratorTest (version 1 keys, 5200 iterations):
    # ALICE_IDENTITY = 05 06863bc6…, BOB_IDENTITY = 05 f781b6fb…, ids "+14152222222" / "+14153333333".
    alice = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
    bob = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
    expected = "300354477692869396892869876765458257569162576843440918079131"
    lines = run(alice, "+14152222222", bob, "+14153333333")
    assert lines[0] == expected
