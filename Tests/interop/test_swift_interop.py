"""The cross-check proper: the package-based Python peer (parley_py) against the Swift implementation,
driven through the test tool `parley-interop-peer`. Every scenario runs with either side as initiator."""
from __future__ import annotations

import random
from dataclasses import replace
from typing import List, Tuple

import pytest

import parley_py as p
import parley_wire as w
from sides import PySide, Refused, SwiftSide


@pytest.fixture(params=["swift-initiates", "python-initiates"])
def pair(request, swift):
    """(initiator, responder, python side, swift side)"""
    py, sw = PySide(device_id=2), SwiftSide(swift)
    return (sw, py, py, sw) if request.param == "swift-initiates" else (py, sw, py, sw)


def test_peer_binary_present():
    """A missing Swift peer is a failure of the suite, never a skip."""
    from swift_peer import peer_binary
    import os
    binary = peer_binary()
    assert binary.is_file() and os.access(binary, os.X_OK), (
        f"{binary} missing: build it with `make build` or `swift build --product parley-interop-peer`")


def expected_ad(initiator, responder) -> bytes:
    return b"\x06" + initiator.identity_key + b"\x06" + responder.identity_key


def check_chain(sender, receiver) -> None:
    """After the receiver has the sender's newest message: same chain key, position and ratchet key."""
    s, r = sender.state(), receiver.state()
    assert s.cks is not None and r.ckr == s.cks, "receiving chain key differs from the sending chain key"
    assert r.nr == s.ns
    assert r.dhr == s.dhs


def check_root(py: PySide, sw: SwiftSide) -> None:
    """Called after Python decrypted a message that opened a new chain of Swift's. Both sides walk the same
    root chain; Python has just done its receiving step (root_log[-2]) and its own sending step
    (root_log[-1]); the receiving step's root key is the one Swift holds since its last step."""
    assert sw.state().rk == py.root_log[-2], "root keys differ"


def start(initiator, responder, opk=True, pq_one_time=True, extra=2) -> List[Tuple[bytes, int, bytes]]:
    """Initiator sends 1+extra PreKeyMessages; they arrive last first, then first, then the rest."""
    bundle = responder.bundle(opk=opk, pq_one_time=pq_one_time)
    sent = [(b"hello 0", *initiator.init(bundle, b"hello 0"))]
    for i in range(1, 1 + extra):
        sent.append((f"hello {i}".encode(), *initiator.encrypt(f"hello {i}".encode())))
    assert all(ct == w.CONTENT_PREKEY for _, ct, _ in sent), "messages before the first reply must be PreKeyMessages"
    order = list(dict.fromkeys([len(sent) - 1, 0] + list(range(1, len(sent) - 1))))
    for i in order:
        pt, ct, msg = sent[i]
        assert responder.decrypt(ct, msg) == pt
    return sent


@pytest.mark.parametrize("opk,pq_one_time", [(True, True), (False, True), (True, False), (False, False)])
def test_session_start_agrees_on_sk_and_ad(pair, opk, pq_one_time):
    initiator, responder, py, sw = pair
    sent = start(initiator, responder, opk, pq_one_time)
    b = w.PreKeyMessage.decode(sent[0][2])
    assert (b.opk_id != 0) == opk
    assert b.pq_kind == (w.PQ_ONE_TIME if pq_one_time else w.PQ_LAST_RESORT)
    i, r = initiator.state(), responder.state()
    assert len(i.sk) == 32 and i.sk == r.sk, "PQXDH shared keys differ"
    assert i.ad == r.ad == expected_ad(initiator, responder)
    assert py.root_log[0] == i.sk
    check_chain(initiator, responder)
    if responder is py:
        check_root(py, sw)
    # the first reply: the responder's first chain, and the initiator stops wrapping
    ct, msg = responder.encrypt(b"reply")
    assert ct == w.CONTENT_RATCHET
    assert initiator.decrypt(ct, msg) == b"reply"
    check_chain(responder, initiator)
    if initiator is py:
        check_root(py, sw)
    ct, msg = initiator.encrypt(b"unwrapped now")
    assert ct == w.CONTENT_RATCHET
    assert responder.decrypt(ct, msg) == b"unwrapped now"
    check_chain(initiator, responder)


def test_long_conversation_out_of_order_across_ratchet_steps(pair):
    initiator, responder, py, sw = pair
    rng = random.Random(0x5EED)
    start(initiator, responder)
    speakers = [responder, initiator]
    turns = 12 if initiator is sw else 13          # end with Python receiving, so the last root key is checked
    held: List[Tuple[object, int, bytes, int, bytes]] = []   # (receiver, turn, plaintext, content type, message)
    delivered_late = 0
    chain_keys = set()                                         # the ratchet key of every chain sent
    py_chains = set()                                          # Swift's chains that Python received
    for turn in range(turns):
        sender, receiver = speakers[turn % 2], speakers[(turn + 1) % 2]
        msgs = []
        for i in range(3 + turn % 3):
            pt = (f"turn {turn} message {i} from {sender.name} " * (1 + 7 * (i % 2))).encode()
            ct, m = sender.encrypt(pt)
            assert ct == w.CONTENT_RATCHET
            msgs.append((pt, ct, m))
        # hold back early messages of this chain (never the last: the chain positions must meet afterwards)
        hold = {0} if turn % 3 else {0, 1}
        now = [x for k, x in enumerate(msgs) if k not in hold]
        rng.shuffle(now)
        for pt, ct, m in now:
            assert receiver.decrypt(ct, m) == pt
        held += [(receiver, turn, *msgs[k]) for k in sorted(hold)]
        check_chain(sender, receiver)
        chain_keys.add(sender.state().dhs)
        if receiver is py:
            check_root(py, sw)
            py_chains.add(sw.state().dhs)
        # a replay is refused and changes nothing
        before = receiver.state()
        with pytest.raises(Refused) as e:
            receiver.decrypt(now[0][1], now[0][2])
        if receiver is sw:
            assert e.value.kind == "duplicateOrReplayedMessage"
        assert receiver.state() == before
        # messages held back at least two DH ratchet steps ago arrive now, in random order
        if turn in (4, 8):
            due = [h for h in held if h[1] <= turn - 2]
            rng.shuffle(due)
            for h in due:
                assert h[0].decrypt(h[3], h[4]) == h[2]
                held.remove(h)
                delivered_late += 1
    # everything still held arrives at the end, newest chains first
    for h in sorted(held, key=lambda h: -h[1]):
        assert h[0].decrypt(h[3], h[4]) == h[2]
        delivered_late += 1
    assert delivered_late >= 16
    assert len(chain_keys) == turns >= 12, "fewer DH ratchet steps than intended"
    # and the session still works both ways afterwards
    for sender, receiver in ((initiator, responder), (responder, initiator)):
        ct, m = sender.encrypt(b"still here")
        assert receiver.decrypt(ct, m) == b"still here"
        check_chain(sender, receiver)
        if receiver is py:
            check_root(py, sw)
            py_chains.add(sw.state().dhs)
    # the whole root chain was walked: SK, the start (R1 for the initiator, R1 R2 for the responder), and
    # two root keys for every chain Python received
    assert len(py.root_log) == 1 + (1 if initiator is py else 2) + 2 * len(py_chains)


def test_replayed_session_start_without_one_time_keys_refused_by_swift(swift):
    """A session start resting on last-resort keys only (nothing to burn), replayed after the session has
    moved on by more ratchet steps than the retired-key memory holds, is refused as a replay, and the live
    session stays: the peer tool decides this by the messenger's own code path (PeerDeviceSessions.receive)."""
    py, sw = PySide(device_id=2), SwiftSide(swift)
    sent = start(py, sw, opk=False, pq_one_time=False, extra=0)
    _, start_ct, start_msg = sent[0]
    for turn in range(12):
        ct, m = sw.encrypt(f"b{turn}".encode())
        assert py.decrypt(ct, m) == f"b{turn}".encode()
        ct, m = py.encrypt(f"a{turn}".encode())
        assert sw.decrypt(ct, m) == f"a{turn}".encode()
    before = sw.state()
    with pytest.raises(Refused) as e:
        sw.decrypt(start_ct, start_msg)
    assert e.value.kind == "duplicateOrReplayedMessage"
    assert sw.state() == before
    ct, m = py.encrypt(b"still here")
    assert sw.decrypt(ct, m) == b"still here"


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[index] ^= mask
    return bytes(b)


def test_tampered_messages_refused_by_both(pair):
    initiator, responder, py, sw = pair
    bundle = responder.bundle()
    ct, first = initiator.init(bundle, b"first")
    pre = w.PREKEY_PREFIX_LEN
    forged_prekey = {
        "version": (_flip(first, 0, 0x03), {"unsupportedVersion"}),
        "identity key": (_flip(first, 1 + 4), {"decryptionFailed", "crypto", "malformed"}),
        "ephemeral key": (_flip(first, 1 + 32 + 3), {"decryptionFailed"}),
        "signed prekey id": (_flip(first, 1 + 64 + 3, 0x40), {"unknownPreKey"}),
        "one-time prekey id": (_flip(first, 1 + 64 + 4, 0x40), {"unknownPreKey"}),
        "PQ prekey id": (_flip(first, 1 + 64 + 8, 0x40), {"unknownPreKey"}),
        "PQ kind": (_flip(first, 1 + 64 + 12, 0x03), {"unknownPreKey"}),
        "KEM ciphertext": (_flip(first, 1 + 64 + 13 + 100), {"decryptionFailed"}),
        "ratchet header N": (_flip(first, pre + 40), {"decryptionFailed"}),
        "ratchet ciphertext": (_flip(first, pre + 41 + 5), {"decryptionFailed"}),
        "tag": (_flip(first, len(first) - 1, 0x80), {"decryptionFailed"}),
    }
    for what, (forged, kinds) in forged_prekey.items():
        with pytest.raises(Refused) as e:
            responder.decrypt(ct, forged)
        if responder is sw:
            assert e.value.kind in kinds, what
    # the forgeries burnt nothing: the genuine message still starts the session
    assert responder.decrypt(ct, first) == b"first"

    for sender, receiver in ((responder, initiator), (initiator, responder)):
        ct, m = sender.encrypt(b"genuine")
        assert ct == w.CONTENT_RATCHET
        before = receiver.state()
        forged = {
            "version": (_flip(m, 0, 0x03), {"unsupportedVersion"}),
            "ratchet key": (_flip(m, 1 + 7), {"decryptionFailed", "crypto"}),
            "PN": (_flip(m, 33 + 3), {"decryptionFailed"}),
            "N": (_flip(m, 37 + 3, 0x04), {"decryptionFailed"}),
            "ciphertext": (_flip(m, 41 + 20), {"decryptionFailed"}),
            "tag": (_flip(m, len(m) - 3), {"decryptionFailed"}),
            "truncated": (m[:41 + 15], {"malformed"}),
            "extended": (m + b"\x00", {"decryptionFailed"}),
        }
        for what, (bad, kinds) in forged.items():
            with pytest.raises(Refused) as e:
                receiver.decrypt(w.CONTENT_RATCHET, bad)
            if receiver is sw:
                assert e.value.kind in kinds, what
            assert receiver.state() == before, f"state changed by a refused message ({what})"
        assert receiver.decrypt(ct, m) == b"genuine"
        check_chain(sender, receiver)


def test_bad_bundle_signature_refused_by_swift(swift):
    sw = SwiftSide(swift)
    bob = p.PyDevice(2)
    mallory = p.PyDevice(9)
    good = bob.bundle()
    enc = w.encode_key
    variants = {
        "spkSig bit flipped": replace(good, spk_sig=_flip(good.spk_sig, 10)),
        "pqSig bit flipped": replace(good, pq_sig=_flip(good.pq_sig, 40)),
        "SPK signed without its 0x05 type byte": replace(good, spk_sig=bob.sign_prekey(good.spk)),
        "PQ key signed without its 0x08 type byte": replace(good, pq_sig=bob.sign_prekey(good.pq_key)),
        "SPK signature over the PQ encoding": replace(good, spk_sig=bob.sign_prekey(enc(w.KEY_MLKEM1024, good.pq_key))),
        "prekeys signed by another identity": replace(
            good, spk_sig=mallory.sign_prekey(enc(w.KEY_X25519, good.spk)),
            pq_sig=mallory.sign_prekey(enc(w.KEY_MLKEM1024, good.pq_key))),
        "identity key swapped": replace(good, identity_key=mallory.identity_key),
        "PQ key swapped, old signature": replace(good, pq_key=mallory.bundle().pq_key),
    }
    for what, bundle in variants.items():
        with pytest.raises(Refused) as e:
            sw.init(bundle.encode(), b"x")
        assert e.value.kind == "badSignature", what
    with pytest.raises(Refused) as e:
        sw.init(b"\x02" + good.encode()[1:], b"x")
    assert e.value.kind == "unsupportedVersion"
    # the same Python bundle, untouched, is accepted
    ct, msg = sw.init(good.encode(), b"x")
    assert ct == w.CONTENT_PREKEY
    assert bob.receive(ct, msg)[1] == b"x"


def test_python_refuses_tampered_swift_bundle(swift):
    sw = SwiftSide(swift)
    alice = PySide(4)
    good = w.PreKeyBundle.decode(sw.bundle())
    assert good.device_id == 3
    for bad in (replace(good, spk_sig=_flip(good.spk_sig, 0)), replace(good, pq_sig=_flip(good.pq_sig, 63))):
        with pytest.raises(Refused):
            alice.init(bad.encode(), b"x")
    ct, msg = alice.init(good.encode(), b"x")
    assert sw.decrypt(ct, msg) == b"x"


@pytest.mark.parametrize("lengths", [[0, 1, 158, 159, 160, 161, 319, 320, 777]])
def test_padding_both_ways(pair, lengths):
    initiator, responder, py, sw = pair
    start(initiator, responder, extra=0)
    for sender, receiver in ((responder, initiator), (initiator, responder)):
        for n in lengths:
            content = bytes((7 * k + n) % 256 for k in range(n))
            ct, m = sender.encrypt(content)
            blocks = n // 160 + 1
            assert len(m) == 41 + 160 * blocks + 16, f"content of {n} bytes not padded to {160 * blocks}"
            assert receiver.decrypt(ct, m) == content


def test_skip_limit_1000(pair):
    initiator, responder, py, sw = pair
    start(initiator, responder, extra=0)
    msgs = [responder.encrypt(f"m{i}".encode()) for i in range(1002)]
    before = initiator.state()
    with pytest.raises(Refused) as e:      # would need 1001 skipped keys in one chain
        initiator.decrypt(*msgs[1001])
    if initiator is sw:
        assert e.value.kind == "tooManySkippedMessages"
    assert initiator.state() == before
    assert initiator.decrypt(*msgs[1000]) == b"m1000"   # exactly 1000 skipped: allowed
    assert initiator.decrypt(*msgs[1001]) == b"m1001"
    for i in (0, 999, 500):
        assert initiator.decrypt(*msgs[i]) == f"m{i}".encode()
    check_chain(responder, initiator)
    if initiator is sw:
        assert sw.peer.secrets().skipped == 1000 - 3


def test_skipped_key_store_keeps_2000_and_evicts_oldest(pair):
    """§5.1: at most 2000 stored skipped keys; the oldest stored is evicted first."""
    initiator, responder, py, sw = pair
    start(initiator, responder, extra=0)
    sender, receiver = responder, initiator
    chains = []
    for size in (1001, 1001, 2):
        msgs = [sender.encrypt(f"c{len(chains)} m{i}".encode()) for i in range(size)]
        chains.append(msgs)
        assert receiver.decrypt(*msgs[-1]) == f"c{len(chains) - 1} m{size - 1}".encode()
        ct, m = receiver.encrypt(b"ack")        # lets the sender ratchet, so the next chain is a new one
        assert sender.decrypt(ct, m) == b"ack"
    if receiver is sw:
        assert sw.peer.secrets().skipped == 2000
    with pytest.raises(Refused):               # chain 0, message 0: the oldest key, evicted
        receiver.decrypt(*chains[0][0])
    for c, i in ((0, 1), (0, 999), (1, 0), (1, 999), (2, 0)):
        assert receiver.decrypt(*chains[c][i]) == f"c{c} m{i}".encode()


def test_skip_limit_across_dh_step_swift(swift):
    """§5.1 also bounds the keys skipped at the end of the previous chain (PN). The Python package only
    warns there (DiffieHellmanRatchet.next_decryption_key), so this direction is checked on Swift alone."""
    py, sw = PySide(2), SwiftSide(swift)
    start(py, sw, extra=0)
    ct, m = sw.encrypt(b"r")
    assert py.decrypt(ct, m) == b"r"
    chain_a = [py.encrypt(f"a{i}".encode()) for i in range(1003)]     # PN of the next chain: 1003
    assert sw.decrypt(*chain_a[0]) == b"a0"
    ct, m = sw.encrypt(b"r2")
    assert py.decrypt(ct, m) == b"r2"
    b0 = py.encrypt(b"b0")
    assert w.RatchetMessage.decode(b0[1]).header.pn == 1003
    before = sw.state()
    with pytest.raises(Refused) as e:          # would skip a1 … a1002: 1002 keys
        sw.decrypt(*b0)
    assert e.value.kind == "tooManySkippedMessages"
    assert sw.state() == before
    assert sw.decrypt(*chain_a[1001]) == b"a1001"   # skips a1 … a1000: exactly 1000
    assert sw.decrypt(*b0) == b"b0"                 # now only a1002 is skipped
    assert sw.decrypt(*chain_a[1002]) == b"a1002"


def test_low_order_keys_refused_by_swift(swift):
    """§4: an all-zero X25519 output aborts the exchange — even when the bundle's signatures are valid."""
    sw = SwiftSide(swift)
    bob = p.PyDevice(2)
    good = bob.bundle()
    zero = bytes(32)
    for what, bundle in {
        "signed prekey": replace(good, spk=zero, spk_sig=bob.sign_prekey(w.encode_key(w.KEY_X25519, zero))),
        "one-time prekey": replace(good, opk=zero),
    }.items():
        with pytest.raises(Refused) as e:
            sw.init(bundle.encode(), b"x")
        assert e.value.kind == "crypto", what
    # a PreKeyMessage whose ephemeral key is a low-order point
    alice = p.PyDevice(4)
    _, ct, msg = alice.initiate(sw.bundle(), b"hi")
    pkm = w.PreKeyMessage.decode(msg)
    with pytest.raises(Refused) as e:
        sw.decrypt(ct, replace(pkm, ephemeral_key=zero).encode())
    assert e.value.kind == "crypto"
    assert sw.decrypt(ct, msg) == b"hi"
    # and a ratchet header carrying one
    ct, m = alice.sessions[sw.identity_key].encrypt(b"next")
    assert ct == w.CONTENT_PREKEY
    before = sw.state()
    bad = replace(w.PreKeyMessage.decode(m), message=w.RatchetMessage(
        w.RatchetHeader(zero, 0, 1), w.PreKeyMessage.decode(m).message.ciphertext))
    with pytest.raises(Refused):
        sw.decrypt(ct, bad.encode())
    assert sw.state() == before
    assert sw.decrypt(ct, m) == b"next"
