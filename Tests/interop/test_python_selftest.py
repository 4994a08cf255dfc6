"""Part A on its own: the package-based Python peer against itself through the wire codec, plus white-box
recomputations of §4 and §5 from raw primitives (PyNaCl, cryptography), so that the package configuration
and the PQ hook are proven before they are used to judge the Swift implementation."""
from __future__ import annotations

import hashlib
import hmac
import random

import nacl.bindings as nb
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import parley_py as p
import parley_wire as w


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def x_priv_from_seed(seed: bytes) -> bytes:
    sk = nb.crypto_sign_seed_keypair(seed)[1]
    return nb.crypto_sign_ed25519_sk_to_curve25519(sk)


def test_wire_roundtrip_and_padding():
    bob = p.PyDevice(9)
    b = bob.bundle()
    raw = b.encode()
    assert len(raw) == 1 + 32 + 4 + 4 + 32 + 64 + 4 + 1 + 1568 + 64 + 4 + 32
    assert w.PreKeyBundle.decode(raw) == b
    with pytest.raises(w.UnsupportedVersion):
        w.PreKeyBundle.decode(b"\x02" + raw[1:])
    with pytest.raises(w.WireError):
        w.PreKeyBundle.decode(raw + b"\x00")
    for n in (0, 1, 158, 159, 160, 161, 319, 320, 1000):
        c = bytes(range(256))[:n] if n <= 256 else bytes(n)
        padded = w.pad(c)
        assert len(padded) % 160 == 0 and len(padded) > n and len(padded) - n <= 160
        assert w.unpad(padded) == c
    for bad in (b"\x00" * 160, b"\x01" + b"\x00" * 159, b"\x80" * 159 + b"\x01"):
        with pytest.raises(w.WireError):
            w.unpad(bad)


@pytest.mark.parametrize("with_opk,pq_one_time", [(True, True), (False, False), (True, False), (False, True)])
def test_pqxdh_hook_matches_independent_recomputation(with_opk, pq_one_time):
    alice, bob = p.PyDevice(1), p.PyDevice(2)
    bundle = bob.bundle(with_opk=with_opk, pq_one_time=pq_one_time)
    # Bob's private keys, taken before the exchange burns the one-time ones
    spk_priv = bob.x3dh.model.signed_pre_key.priv
    opk_priv = None
    if bundle.opk is not None:
        opk_priv = next(k for k in bob.x3dh.model.pre_keys if nb.crypto_scalarmult_base(k) == bundle.opk)
    sa, ctype, msg = alice.initiate(bundle.encode(), b"first")
    ss, kem_ct, ek_a = sa.debug_kem
    pkm = w.PreKeyMessage.decode(msg)
    assert ctype == w.CONTENT_PREKEY and pkm.kem_ciphertext == kem_ct and pkm.ephemeral_key == ek_a
    assert (pkm.spk_id, pkm.opk_id, pkm.pq_key_id, pkm.pq_kind) == (
        bundle.spk_id, bundle.opk_id, bundle.pq_key_id, bundle.pq_kind)
    sb, content = bob.receive(ctype, msg)
    assert content == b"first"

    # §4 from raw primitives (Bob's view)
    x_ik_a = nb.crypto_sign_ed25519_pk_to_curve25519(alice.identity_key)
    dh1 = nb.crypto_scalarmult(spk_priv, x_ik_a)
    dh2 = nb.crypto_scalarmult(x_priv_from_seed(bob.seed), ek_a)
    dh3 = nb.crypto_scalarmult(spk_priv, ek_a)
    dh4 = b"" if opk_priv is None else nb.crypto_scalarmult(opk_priv, ek_a)
    ikm = b"\xff" * 32 + dh1 + dh2 + dh3 + dh4
    sk = hkdf(b"\x00" * 32, ikm + ss, p.INFO_PQXDH, 32)
    assert sa.sk == sb.sk == sk
    assert sk != hkdf(b"\x00" * 32, ikm, p.INFO_PQXDH, 32)  # the KEM secret really is in the IKM
    assert sa.ad == sb.ad == b"\x06" + alice.identity_key + b"\x06" + bob.identity_key

    # §5.2 + §5 first message from raw primitives
    rm = pkm.message
    kdf = hkdf(sk, nb.crypto_scalarmult(spk_priv, rm.header.dh), p.INFO_ROOT, 64)
    rk1, ck0 = kdf[:32], kdf[32:]
    assert sa.root_log[:2] == sb.root_log[:2] == [sk, rk1]
    mk = hmac.new(ck0, b"\x01", hashlib.sha256).digest()
    ck1 = hmac.new(ck0, b"\x02", hashlib.sha256).digest()
    kn = hkdf(b"\x00" * 32, mk, p.INFO_MESSAGE, 56)
    assert rm.header.pn == 0 and rm.header.n == 0
    padded = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
        rm.ciphertext, sa.ad + rm.header.encode(), kn[32:], kn[:32])
    assert w.unpad(padded) == b"first"
    assert sa.secrets().cks == ck1 == sb.secrets().ckr and sa.secrets().ns == sb.secrets().nr == 1
    # one-time keys burnt only now
    assert (bundle.opk_id in bob.opks) is False
    if bundle.pq_kind == w.PQ_ONE_TIME:
        assert (w.PQ_ONE_TIME, bundle.pq_key_id) not in bob.pq_keys
    else:
        assert (w.PQ_LAST_RESORT, bundle.pq_key_id) in bob.pq_keys


def test_hook_refuses_plain_x3dh():
    alice, bob = p.PyDevice(1), p.PyDevice(2)
    b = bob.bundle()
    xb = p.x3dh.Bundle(b.identity_key, b.spk, b.spk_sig, frozenset({b.opk}))
    with pytest.raises(RuntimeError, match="no KEM shared secret"):
        p._run(alice.x3dh.get_shared_secret_active(xb))


def test_bad_bundle_signatures_refused():
    alice, bob = p.PyDevice(1), p.PyDevice(2)
    good = bob.bundle()
    from dataclasses import replace
    for bad in (replace(good, spk_sig=bytes([good.spk_sig[0] ^ 1]) + good.spk_sig[1:]),
                replace(good, pq_sig=good.pq_sig[:-1] + bytes([good.pq_sig[-1] ^ 0x80])),
                replace(good, pq_sig=bob.signing_key.sign(good.pq_key).signature)):  # signed without 0x08
        with pytest.raises(p.BundleSignatureError):
            alice.initiate(bad.encode(), b"x")


def test_forged_prekey_message_does_not_burn_one_time_keys():
    alice, bob = p.PyDevice(1), p.PyDevice(2)
    b = bob.bundle()
    _, ct, msg = alice.initiate(b.encode(), b"hi")
    forged = bytearray(msg)
    forged[-1] ^= 1
    with pytest.raises(p.DecryptError):
        bob.receive(ct, bytes(forged))
    assert b.opk_id in bob.opks and (w.PQ_ONE_TIME, b.pq_key_id) in bob.pq_keys
    bob.receive(ct, msg)
    assert b.opk_id not in bob.opks


def test_python_conversation_out_of_order_many_steps():
    rng = random.Random(1234)
    alice, bob = p.PyDevice(1), p.PyDevice(2)
    sa, ct, m = alice.initiate(bob.bundle().encode(), b"a0")
    # two more PreKeyMessages before Bob answers; deliver them in reverse, the first one last
    more = [sa.encrypt(b"a1"), sa.encrypt(b"a2")]
    assert all(c == w.CONTENT_PREKEY for c, _ in more)
    sb, c = bob.receive(*more[1])
    assert c == b"a2"
    assert bob.receive(*more[0])[1] == b"a1"
    assert bob.receive(ct, m)[1] == b"a0"
    held = []
    sides = [(sb, bob, alice, "b"), (sa, alice, bob, "a")]
    for turn in range(12):
        sender_s, _, receiver, tag = sides[turn % 2]
        msgs = [(f"{tag}{turn}.{i}".encode(), sender_s.encrypt(f"{tag}{turn}.{i}".encode())) for i in range(4)]
        if turn >= 1:
            assert all(c == w.CONTENT_RATCHET for _, (c, _) in msgs)
        keep = msgs[1:]
        held.append((receiver, msgs[0]))          # the first of each chain arrives much later
        rng.shuffle(keep)
        for plain, (c, data) in keep:
            assert receiver.receive(c, data)[1] == plain
        # replay refused
        with pytest.raises(p.DecryptError):
            receiver.receive(*keep[0][1])
    for receiver, (plain, (c, data)) in held:
        assert receiver.receive(c, data)[1] == plain
    a, b = sa.secrets(), sb.secrets()
    assert len(a.root_log) >= 12 and a.root_log[:len(b.root_log)] == b.root_log[:len(a.root_log)]
