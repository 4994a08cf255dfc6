"""Independent check of Tests/vectors/protocol-v1.json (PROTOCOL.md §10), written from PROTOCOL.md alone.

Every value is recomputed from the private inputs with plain Python primitives only — PyNaCl (X25519,
Ed25519, the Ed25519 → X25519 conversion, XChaCha20-Poly1305), `cryptography` (HKDF-SHA256), hmac
(HMAC-SHA256), kyber-py (ML-KEM-1024) — and the byte layouts of parley_wire.py. No Swift code is run and
none of the protocol packages (x3dh, doubleratchet) is used, so a mismatch points at either the
implementation or the document. Each stored value must be equal byte for byte; the stored values that are
inputs or random by nature (`kem_ciphertext`) are checked by using them: decapsulating, decrypting,
opening the envelope.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from pathlib import Path

import nacl.bindings as nb
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from kyber_py.ml_kem import ML_KEM_1024
from nacl.signing import SigningKey, VerifyKey

import parley_wire as w
from test_safety_number import digits, party_hash, scannable

ROOT = Path(__file__).resolve().parents[2]
VECTOR_FILE = ROOT / "Tests" / "vectors" / "protocol-v1.json"
TRANSFER_VECTOR_FILE = ROOT / "Tests" / "vectors" / "link-transfer-v1.json"
PROTOCOL_MD = ROOT / "PROTOCOL.md"

# §1 labels
INFO_PQXDH = b"Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"
INFO_ROOT = b"Parley_Ratchet_Root"
INFO_MESSAGE = b"Parley_Ratchet_MessageKeys"
INFO_SEALED = b"Parley_SealedSender_v1"
INFO_PROVISIONING = b"Parley_Provisioning_v1"

# §10: the scenario
ALICE_DEVICE_ID = 1
BOB_DEVICE_ID = 7
BOB_SPK_ID, BOB_PQ_LAST_RESORT_ID, BOB_OPK_ID, BOB_PQ_ONE_TIME_ID = 1, 2, 3, 4
BOB_ADDRESS = "bob@example.org"
DEVICE_CREATED_AT = 1_767_225_600_000
CERT_EXPIRES_AT = 1_893_456_000_000
ALICE_ADDRESS = "alice@example.org"
SAFETY_ROUNDS = 5200
SCANNABLE_VERSION = 80
# §10: Bob's second device, linked through relay example.org, slot bytes 00 01 … 0f
NEW_DEVICE_ID = 8
NEW_DEVICE_CREATED_AT = 1_767_312_000_000
LINK_RELAY = "example.org"
LINK_SLOT = bytes(range(16))

# §10: each private input is SHA-256 (or SHA-512[0..64) for ML-KEM seeds) of an ASCII name. The document
# gives only the first name as an example; the others are the ones the vector file was produced with.
PRIVATE_INPUT_NAMES = {
    "alice_identity_seed": ("alice identity seed", 32),
    "bob_identity_seed": ("bob identity seed", 32),
    "bob_signed_prekey_private": ("bob signed prekey", 32),
    "bob_one_time_prekey_private": ("bob one-time prekey", 32),
    "bob_pq_one_time_prekey_seed": ("bob pq one-time prekey seed", 64),
    "alice_ephemeral_private": ("alice ephemeral", 32),
    "alice_ratchet_1_private": ("alice ratchet 1", 32),
    "bob_ratchet_1_private": ("bob ratchet 1", 32),
    "bob_account_seed": ("bob account seed", 32),
    "sealed_ephemeral_private": ("sealed ephemeral", 32),
    "alice_account_seed": ("alice account seed", 32),
    "bob_device_8_identity_seed": ("bob device 8 identity seed", 32),
    "link_ephemeral_private": ("link ephemeral", 32),
    "provisioning_ephemeral_private": ("provisioning ephemeral", 32),
}


def named_input(name: str, length: int) -> bytes:
    if length == 32:
        return hashlib.sha256(name.encode("ascii")).digest()
    assert length == 64
    return hashlib.sha512(name.encode("ascii")).digest()[:64]


@functools.lru_cache(maxsize=None)
def stored() -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in json.loads(VECTOR_FILE.read_text()).items()}


def inp(key: str) -> bytes:
    """A private input, from its name (never read from the file)."""
    name, length = PRIVATE_INPUT_NAMES[key]
    return named_input(name, length)


# ---------------------------------------------------------------------------------------------------------
# Primitives, as §0/§2/§5 name them

def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def x25519(priv: bytes, pub: bytes) -> bytes:
    out = nb.crypto_scalarmult(priv, pub)
    assert out != bytes(32), "all-zero X25519 output aborts (§4, §7)"
    return out


def x25519_pub(priv: bytes) -> bytes:
    return nb.crypto_scalarmult_base(priv)


def ed_public(seed: bytes) -> bytes:
    return bytes(SigningKey(seed).verify_key)


def ed_sign(seed: bytes, message: bytes) -> bytes:
    return SigningKey(seed).sign(message).signature


def x_pub(ed_pub: bytes) -> bytes:
    """X(K) for a public key (§2)."""
    return nb.crypto_sign_ed25519_pk_to_curve25519(ed_pub)


def x_priv(ed_seed: bytes) -> bytes:
    """X(K).priv (§2): libsodium's sk_to_curve25519 of the 64-byte secret key (seed ‖ pk)."""
    return nb.crypto_sign_ed25519_sk_to_curve25519(ed_seed + ed_public(ed_seed))


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    return nb.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    return nb.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)


def kdf_rk(rk: bytes, dh: bytes) -> tuple[bytes, bytes]:
    """§5 KDF_RK → (rk', ck)."""
    out = hkdf(rk, dh, INFO_ROOT, 64)
    return out[:32], out[32:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """§5 KDF_CK → (ck', mk)."""
    return hmac256(ck, b"\x02"), hmac256(ck, b"\x01")


def message_key_material(mk: bytes) -> tuple[bytes, bytes]:
    kn = hkdf(bytes(32), mk, INFO_MESSAGE, 56)
    return kn[:32], kn[32:56]


def ratchet_encrypt(mk: bytes, header: w.RatchetHeader, padded: bytes, ad: bytes) -> bytes:
    """§5 ENCRYPT with ad = AD ‖ Header, §6.1 RatchetMessage = Header ‖ ciphertext ‖ tag."""
    key, nonce = message_key_material(mk)
    hdr = header.encode()
    return hdr + aead_encrypt(key, nonce, padded, ad + hdr)


def ratchet_decrypt(mk: bytes, message: bytes, ad: bytes) -> bytes:
    key, nonce = message_key_material(mk)
    return aead_decrypt(key, nonce, message[w.HEADER_LEN:], ad + message[:w.HEADER_LEN])


def mlkem_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """ML-KEM-1024 key pair from a 64-byte seed d ‖ z (FIPS 203 ML-KEM.KeyGen_internal(d, z))."""
    assert len(seed) == 64
    return ML_KEM_1024._keygen_internal(seed[:32], seed[32:])


# ---------------------------------------------------------------------------------------------------------
# The scenario of §10, step by step

@functools.lru_cache(maxsize=None)
def identities() -> dict[str, bytes]:
    return {
        "alice_identity_public": ed_public(inp("alice_identity_seed")),
        "bob_identity_public": ed_public(inp("bob_identity_seed")),
        "alice_identity_x25519_public": x_pub(ed_public(inp("alice_identity_seed"))),
    }


@functools.lru_cache(maxsize=None)
def bob_prekeys() -> dict[str, bytes]:
    ek, dk = mlkem_keypair(inp("bob_pq_one_time_prekey_seed"))
    return {
        "spk": x25519_pub(inp("bob_signed_prekey_private")),
        "opk": x25519_pub(inp("bob_one_time_prekey_private")),
        "pq_ek": ek,
        "pq_dk": dk,
    }


@functools.lru_cache(maxsize=None)
def bob_bundle() -> bytes:
    """§3.3 with OPK 3 and one-time PQ key 4; signatures are Ed25519(DIK, Encode(key)), deterministic."""
    bob_seed = inp("bob_identity_seed")
    pk = bob_prekeys()
    return w.PreKeyBundle(
        identity_key=ed_public(bob_seed), device_id=BOB_DEVICE_ID,
        spk_id=BOB_SPK_ID, spk=pk["spk"], spk_sig=ed_sign(bob_seed, w.encode_key(w.KEY_X25519, pk["spk"])),
        pq_key_id=BOB_PQ_ONE_TIME_ID, pq_kind=w.PQ_ONE_TIME, pq_key=pk["pq_ek"],
        pq_sig=ed_sign(bob_seed, w.encode_key(w.KEY_MLKEM1024, pk["pq_ek"])),
        opk_id=BOB_OPK_ID, opk=pk["opk"],
    ).encode()


def kem_shared_secret() -> bytes:
    """Bob decapsulates the stored ciphertext (the encapsulation itself is random by nature)."""
    return ML_KEM_1024.decaps(bob_prekeys()["pq_dk"], stored()["kem_ciphertext"])


def pqxdh_alice(ss: bytes) -> bytes:
    """§4 step 4, Alice's side."""
    ik_a = x_priv(inp("alice_identity_seed"))
    ek_a = inp("alice_ephemeral_private")
    pk = bob_prekeys()
    dh1 = x25519(ik_a, pk["spk"])
    dh2 = x25519(ek_a, x_pub(ed_public(inp("bob_identity_seed"))))
    dh3 = x25519(ek_a, pk["spk"])
    dh4 = x25519(ek_a, pk["opk"])
    return hkdf(bytes(32), b"\xff" * 32 + dh1 + dh2 + dh3 + dh4 + ss, INFO_PQXDH, 32)


def pqxdh_bob(ss: bytes) -> bytes:
    """§4, Bob's side: the same DHs with the roles of the keys swapped."""
    ek_a_pub = x25519_pub(inp("alice_ephemeral_private"))
    spk = inp("bob_signed_prekey_private")
    dh1 = x25519(spk, x_pub(ed_public(inp("alice_identity_seed"))))
    dh2 = x25519(x_priv(inp("bob_identity_seed")), ek_a_pub)
    dh3 = x25519(spk, ek_a_pub)
    dh4 = x25519(inp("bob_one_time_prekey_private"), ek_a_pub)
    return hkdf(bytes(32), b"\xff" * 32 + dh1 + dh2 + dh3 + dh4 + ss, INFO_PQXDH, 32)


def associated_data() -> bytes:
    """§4: AD = Encode(IK_A) ‖ Encode(IK_B), Ed25519 encodings."""
    ids = identities()
    return (w.encode_key(w.KEY_ED25519, ids["alice_identity_public"])
            + w.encode_key(w.KEY_ED25519, ids["bob_identity_public"]))


@functools.lru_cache(maxsize=None)
def computed() -> dict[str, bytes]:
    """Every value of the vector file, recomputed."""
    v: dict[str, bytes] = {}
    for key in PRIVATE_INPUT_NAMES:
        v[key] = inp(key)
    v.update(identities())
    v["bob_bundle"] = bob_bundle()

    ss = kem_shared_secret()
    v["kem_ciphertext"] = stored()["kem_ciphertext"]   # random by nature; used, not recomputed
    v["kem_shared_secret"] = ss
    sk = pqxdh_alice(ss)
    assert sk == pqxdh_bob(ss)
    ad = associated_data()
    v["pqxdh_shared_key"] = sk
    v["pqxdh_associated_data"] = ad

    # §5.2 Alice as sender: DHs = alice ratchet 1, DHr = SPK_B, (RK, CKs) = KDF_RK(SK, DH(DHs, DHr)).
    alice_dhs = inp("alice_ratchet_1_private")
    spk_b = bob_prekeys()["spk"]
    _alice_rk, alice_cks = kdf_rk(sk, x25519(alice_dhs, spk_b))
    v["message_1_chain_key"] = alice_cks
    alice_cks, mk1 = kdf_ck(alice_cks)
    v["message_1_message_key"] = mk1
    v["message_1_aead_key"], v["message_1_aead_nonce"] = message_key_material(mk1)
    m1_content = b"Hello Bob, this is Parley."
    v["message_1_plaintext"] = m1_content
    v["message_1_padded"] = w.pad(m1_content)
    v["message_1_header"] = w.RatchetHeader(x25519_pub(alice_dhs), pn=0, n=0).encode()
    m1 = ratchet_encrypt(mk1, w.RatchetHeader(x25519_pub(alice_dhs), pn=0, n=0), w.pad(m1_content), ad)
    v["message_1_ratchet"] = m1
    v["message_1_prekey"] = w.PreKeyMessage(
        identity_key=identities()["alice_identity_public"],
        ephemeral_key=x25519_pub(inp("alice_ephemeral_private")),
        spk_id=BOB_SPK_ID, opk_id=BOB_OPK_ID, pq_key_id=BOB_PQ_ONE_TIME_ID, pq_kind=w.PQ_ONE_TIME,
        kem_ciphertext=stored()["kem_ciphertext"], message=w.RatchetMessage.decode(m1),
    ).encode()

    # §5.2 Bob as receiver: DHs = SPK_B pair, RK = SK; message 1 triggers a DH ratchet step.
    bob_rk = sk
    bob_dhr = w.RatchetHeader.decode(m1[:w.HEADER_LEN]).dh
    bob_rk, bob_ckr = kdf_rk(bob_rk, x25519(inp("bob_signed_prekey_private"), bob_dhr))
    bob_dhs = inp("bob_ratchet_1_private")
    bob_rk, bob_cks = kdf_rk(bob_rk, x25519(bob_dhs, bob_dhr))
    _bob_ckr, mk1_bob = kdf_ck(bob_ckr)
    assert w.unpad(ratchet_decrypt(mk1_bob, m1, ad)) == m1_content
    v["message_2_chain_key"] = bob_cks
    bob_cks, mk2 = kdf_ck(bob_cks)
    v["message_2_message_key"] = mk2
    v["message_2_aead_key"], v["message_2_aead_nonce"] = message_key_material(mk2)
    m2_content = b"Hi Alice."
    v["message_2_plaintext"] = m2_content
    v["message_2_padded"] = w.pad(m2_content)
    v["message_2_header"] = w.RatchetHeader(x25519_pub(bob_dhs), pn=0, n=0).encode()
    # PN = number of messages in Bob's previous sending chain = 0 (he had none).
    m2 = ratchet_encrypt(mk2, w.RatchetHeader(x25519_pub(bob_dhs), pn=0, n=0), w.pad(m2_content), ad)
    v["message_2_ratchet"] = m2
    v["root_key_after_message_2_bob"] = bob_rk

    # §3.2 device list, §7 sender certificate, both signed by Bob's account key with their §1 labels.
    account_seed = inp("bob_account_seed")
    aik = ed_public(account_seed)
    dik_b = identities()["bob_identity_public"]
    devices = (w.DeviceEntry(BOB_DEVICE_ID, dik_b, DEVICE_CREATED_AT),)
    list_body = w.SignedDeviceList.body(aik, 1, devices)
    v["bob_device_list"] = w.SignedDeviceList(
        aik, 1, devices, ed_sign(account_seed, w.labelled(w.SIG_DEVICE_LIST, list_body))).encode()
    cert_body = w.SenderCertificate.body(BOB_ADDRESS, aik, BOB_DEVICE_ID, dik_b, CERT_EXPIRES_AT)
    cert = w.SenderCertificate(BOB_ADDRESS, aik, BOB_DEVICE_ID, dik_b, CERT_EXPIRES_AT,
                               ed_sign(account_seed, w.labelled(w.SIG_SENDER_CERT, cert_body))).encode()
    v["bob_sender_certificate"] = cert

    # §7 sealing message 2 to Alice's device.
    v["sealed_envelope_message_2"] = seal(w.SealedInner(cert, w.CONTENT_RATCHET, m2).encode(),
                                          inp("sealed_ephemeral_private"), identities()["alice_identity_public"])

    # §14 the safety number of Alice's and Bob's accounts; the scannable form as Alice's device shows it.
    alice_hash = party_hash(account_key_input(inp("alice_account_seed")), ALICE_ADDRESS.encode(), SAFETY_ROUNDS)
    bob_hash = party_hash(account_key_input(account_seed), BOB_ADDRESS.encode(), SAFETY_ROUNDS)
    v["safety_number"] = "".join(sorted([digits(alice_hash), digits(bob_hash)])).encode("ascii")
    v["safety_number_scannable_alice"] = scannable(SCANNABLE_VERSION, alice_hash, bob_hash)

    # §15 Bob links device 8: the link code, the version 2 list, the payload and the sealed message.
    code = link_code()
    v["link_code"] = code.encode()
    v["link_code_text"] = code.text().encode("ascii")
    v["bob_device_list_2"] = bob_device_list_2()
    v["provisioning_payload"] = provisioning_payload()
    v["provisioning_message"] = seal_provisioning(provisioning_payload(), inp("provisioning_ephemeral_private"), code)
    return v


# §14
def account_key_input(account_seed: bytes) -> bytes:
    """key = Encode(AIK) = 0x06 ‖ AIK."""
    return w.encode_key(w.KEY_ED25519, ed_public(account_seed))


# §15
def link_code() -> w.LinkCode:
    return w.LinkCode(LINK_RELAY, LINK_SLOT, x25519_pub(inp("link_ephemeral_private")),
                      ed_public(inp("bob_device_8_identity_seed")))


@functools.lru_cache(maxsize=None)
def bob_device_list_2() -> bytes:
    account_seed = inp("bob_account_seed")
    aik = ed_public(account_seed)
    devices = (w.DeviceEntry(BOB_DEVICE_ID, ed_public(inp("bob_identity_seed")), DEVICE_CREATED_AT),
               w.DeviceEntry(NEW_DEVICE_ID, ed_public(inp("bob_device_8_identity_seed")), NEW_DEVICE_CREATED_AT))
    body = w.SignedDeviceList.body(aik, 2, devices)
    return w.SignedDeviceList(aik, 2, devices, ed_sign(account_seed, w.labelled(w.SIG_DEVICE_LIST, body))).encode()


def stand_in_transfer() -> w.AttachmentPointer:
    return w.AttachmentPointer(id=hashlib.sha256(b"link transfer id").hexdigest(),
                               key=hashlib.sha256(b"link transfer key").digest(), size=1000,
                               digest=hashlib.sha256(b"link transfer blob").digest(),
                               file_name="link-transfer", content_type="application/x-parley-link")


def provisioning_payload() -> bytes:
    return w.ProvisioningPayload(BOB_ADDRESS, inp("bob_account_seed"), NEW_DEVICE_ID, bob_device_list_2(),
                                 stand_in_transfer()).encode()


def provisioning_key_material(e2_pub: bytes, e_pub: bytes, shared: bytes) -> tuple[bytes, bytes]:
    kn = hkdf(e2_pub + e_pub, shared, INFO_PROVISIONING, 56)
    return kn[:32], kn[32:56]


def seal_provisioning(payload: bytes, e2_priv: bytes, code: w.LinkCode) -> bytes:
    """§15: message = 0x01 ‖ E'.pub ‖ AEAD(k, n, payload, AD = 0x01 ‖ E'.pub ‖ slot ‖ DIK_new)."""
    e2_pub = x25519_pub(e2_priv)
    key, nonce = provisioning_key_material(e2_pub, code.ephemeral_key, x25519(e2_priv, code.ephemeral_key))
    header = bytes([w.VERSION]) + e2_pub
    return header + aead_encrypt(key, nonce, payload, header + code.slot + code.device_key)


def sealed_key_material(e_pub: bytes, s: bytes, recipient_x: bytes) -> tuple[bytes, bytes]:
    kn = hkdf(e_pub + recipient_x, s, INFO_SEALED, 56)
    return kn[:32], kn[32:56]


def seal(inner: bytes, e_priv: bytes, recipient_ik: bytes) -> bytes:
    recipient_x = x_pub(recipient_ik)
    e_pub = x25519_pub(e_priv)
    key, nonce = sealed_key_material(e_pub, x25519(e_priv, recipient_x), recipient_x)
    header = bytes([w.VERSION]) + e_pub
    return w.Envelope(e_pub, aead_encrypt(key, nonce, w.pad(inner), header)).encode()


# ---------------------------------------------------------------------------------------------------------
# The checks

def check(*keys: str) -> None:
    for key in keys:
        assert computed()[key].hex() == stored()[key].hex(), f"vector {key}"


def test_private_inputs_are_sha_of_their_names():
    for key, (name, length) in PRIVATE_INPUT_NAMES.items():
        assert len(stored()[key]) == length, key
        assert stored()[key] == named_input(name, length), f"{key} is not SHA of {name!r}"
    # §10's own example
    assert stored()["alice_identity_seed"] == hashlib.sha256(b"alice identity seed").digest()


def test_identity_keys_and_conversion():
    check("alice_identity_public", "bob_identity_public", "alice_identity_x25519_public")
    # §2: the private conversion (SHA-512(seed)[0..32) clamped) matches the public one (birational map).
    for seed_key in ("alice_identity_seed", "bob_identity_seed"):
        seed = inp(seed_key)
        h = bytearray(hashlib.sha512(seed).digest()[:32])
        h[0] &= 248
        h[31] &= 127
        h[31] |= 64
        assert x_priv(seed) == bytes(h)
        assert x25519_pub(x_priv(seed)) == x_pub(ed_public(seed))


def test_mlkem_seed_is_d_then_z():
    seed = inp("bob_pq_one_time_prekey_seed")
    assert mlkem_keypair(seed) == ML_KEM_1024.key_derive(seed)   # FIPS 203 §7.1 seed layout d ‖ z


def test_bob_bundle():
    check("bob_bundle")
    b = w.PreKeyBundle.decode(stored()["bob_bundle"])
    assert (b.device_id, b.spk_id, b.pq_key_id, b.pq_kind, b.opk_id) == (7, 1, 4, w.PQ_ONE_TIME, 3)
    vk = VerifyKey(b.identity_key)
    vk.verify(w.encode_key(w.KEY_X25519, b.spk), b.spk_sig)
    vk.verify(w.encode_key(w.KEY_MLKEM1024, b.pq_key), b.pq_sig)


def test_kem_ciphertext_decapsulates_to_the_stored_secret():
    assert len(stored()["kem_ciphertext"]) == w.MLKEM1024_CT_LEN
    check("kem_shared_secret")
    # and it is not ML-KEM's implicit rejection: a ciphertext changed in one bit gives a different secret
    ct = bytearray(stored()["kem_ciphertext"])
    ct[0] ^= 1
    assert ML_KEM_1024.decaps(bob_prekeys()["pq_dk"], bytes(ct)) != stored()["kem_shared_secret"]


def test_pqxdh_shared_key_and_associated_data():
    check("pqxdh_shared_key", "pqxdh_associated_data")
    ss = kem_shared_secret()
    assert pqxdh_alice(ss) == pqxdh_bob(ss) == stored()["pqxdh_shared_key"]
    assert len(stored()["pqxdh_associated_data"]) == 66


def test_message_1_ratchet():
    check("message_1_plaintext", "message_1_ratchet")
    m = w.RatchetMessage.decode(stored()["message_1_ratchet"])
    assert m.header == w.RatchetHeader(x25519_pub(inp("alice_ratchet_1_private")), 0, 0)
    assert len(m.ciphertext) == 160 + w.TAG_LEN


def test_message_1_prekey():
    check("message_1_prekey")
    pm = w.PreKeyMessage.decode(stored()["message_1_prekey"])
    assert pm.message.encode() == stored()["message_1_ratchet"]
    assert pm.identity_key == stored()["alice_identity_public"]
    assert pm.kem_ciphertext == stored()["kem_ciphertext"]


def test_message_2_ratchet_and_bob_root_key():
    check("message_2_plaintext", "message_2_ratchet", "root_key_after_message_2_bob")
    m = w.RatchetMessage.decode(stored()["message_2_ratchet"])
    assert m.header == w.RatchetHeader(x25519_pub(inp("bob_ratchet_1_private")), 0, 0)


def test_alice_decrypts_the_stored_message_2():
    """Alice's side of the reply: she receives Bob's new ratchet key and performs her DH ratchet step."""
    sk = stored()["pqxdh_shared_key"]
    alice_dhs = inp("alice_ratchet_1_private")
    rk, _cks = kdf_rk(sk, x25519(alice_dhs, bob_prekeys()["spk"]))
    m2 = stored()["message_2_ratchet"]
    rk, ckr = kdf_rk(rk, x25519(alice_dhs, w.RatchetHeader.decode(m2[:w.HEADER_LEN]).dh))
    assert rk == stored()["root_key_after_message_2_bob"]  # both sides agree on the root after the step
    _ckr, mk = kdf_ck(ckr)
    assert w.unpad(ratchet_decrypt(mk, m2, stored()["pqxdh_associated_data"])) == stored()["message_2_plaintext"]


def test_bob_device_list():
    check("bob_device_list")
    dl = w.SignedDeviceList.decode(stored()["bob_device_list"])
    assert dl.account_key == ed_public(inp("bob_account_seed"))
    assert dl.version == 1
    assert dl.devices == (w.DeviceEntry(7, stored()["bob_identity_public"], DEVICE_CREATED_AT),)
    VerifyKey(dl.account_key).verify(w.labelled(w.SIG_DEVICE_LIST, dl.encode_body()), dl.signature)


def test_bob_sender_certificate():
    check("bob_sender_certificate")
    c = w.SenderCertificate.decode(stored()["bob_sender_certificate"])
    assert (c.address, c.device_id, c.expires_at) == (BOB_ADDRESS, 7, CERT_EXPIRES_AT)
    assert c.account_key == ed_public(inp("bob_account_seed"))
    assert c.device_key == stored()["bob_identity_public"]
    VerifyKey(c.account_key).verify(w.labelled(w.SIG_SENDER_CERT, c.encode_body()), c.signature)


def test_sealed_envelope_message_2():
    check("sealed_envelope_message_2")


def test_alice_opens_the_stored_envelope():
    """§7 receiving side: open with X(DIK_A).priv, unpad, and find Bob's certificate and message 2."""
    env = w.Envelope.decode(stored()["sealed_envelope_message_2"])
    own_x = x_pub(stored()["alice_identity_public"])
    s = x25519(x_priv(inp("alice_identity_seed")), env.ephemeral_key)
    key, nonce = sealed_key_material(env.ephemeral_key, s, own_x)
    padded = aead_decrypt(key, nonce, env.ciphertext, bytes([w.VERSION]) + env.ephemeral_key)
    assert len(padded) % 160 == 0
    inner = w.SealedInner.decode(w.unpad(padded))
    assert inner.certificate == stored()["bob_sender_certificate"]
    assert inner.content_type == w.CONTENT_RATCHET
    assert inner.content == stored()["message_2_ratchet"]
    assert env.ephemeral_key == x25519_pub(inp("sealed_ephemeral_private"))


def test_message_keys_headers_and_padding():
    check(*(f"message_{n}_{part}" for n in (1, 2)
            for part in ("chain_key", "message_key", "aead_key", "aead_nonce", "header", "padded")))
    for n in (1, 2):
        assert len(stored()[f"message_{n}_padded"]) == 160
        assert stored()[f"message_{n}_ratchet"][:w.HEADER_LEN] == stored()[f"message_{n}_header"]
        # the stored message decrypts with the stored key and nonce to the stored padded plaintext
        ad = stored()["pqxdh_associated_data"] + stored()[f"message_{n}_header"]
        assert aead_decrypt(stored()[f"message_{n}_aead_key"], stored()[f"message_{n}_aead_nonce"],
                            stored()[f"message_{n}_ratchet"][w.HEADER_LEN:], ad) == stored()[f"message_{n}_padded"]


def test_safety_number():
    check("safety_number", "safety_number_scannable_alice")
    number = stored()["safety_number"].decode("ascii")
    assert len(number) == 60 and number.isdigit()
    assert len(stored()["safety_number_scannable_alice"]) == 74


def test_link_code():
    check("link_code", "link_code_text")
    code = w.LinkCode.from_text(stored()["link_code_text"].decode("ascii"))
    assert code.encode() == stored()["link_code"]
    assert (code.relay, code.slot) == (LINK_RELAY, LINK_SLOT)


def test_provisioning_payload_and_message():
    check("bob_device_list_2", "provisioning_payload", "provisioning_message")


def test_new_device_opens_the_stored_provisioning_message():
    """§15.1, the new device's side: open with E, then every check of the payload."""
    code = w.LinkCode.decode(stored()["link_code"])
    message = stored()["provisioning_message"]
    assert message[0] == w.VERSION
    e2_pub = message[1:33]
    e_priv = inp("link_ephemeral_private")
    key, nonce = provisioning_key_material(e2_pub, x25519_pub(e_priv), x25519(e_priv, e2_pub))
    payload = w.ProvisioningPayload.decode(aead_decrypt(key, nonce, message[33:], message[:33] + code.slot + code.device_key))
    dl = w.SignedDeviceList.decode(payload.device_list)
    VerifyKey(dl.account_key).verify(w.labelled(w.SIG_DEVICE_LIST, dl.encode_body()), dl.signature)
    assert dl.account_key == ed_public(payload.account_seed)
    assert w.DeviceEntry(payload.device_id, code.device_key, NEW_DEVICE_CREATED_AT) in dl.devices
    assert payload.address.split("@", 1)[1] == code.relay
    assert payload.transfer == stand_in_transfer()


# §15.2: the link transfer of §10 (Bob's store: Alice as a verified contact, two messages, two device names)

def sha(name: str) -> bytes:
    return hashlib.sha256(name.encode("ascii")).digest()


def u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def u64(v: int) -> bytes:
    return v.to_bytes(8, "big")


def contact_record(address: str, account_key: bytes, device_list, trust: int, display_name: str) -> bytes:
    account = bytes([1]) + account_key + (bytes([1]) + w.bytes32(device_list) if device_list is not None else bytes([0]))
    return (bytes([1]) + w.bytes16(address.encode()) + w.bytes32(account) + bytes([trust])
            + w.bytes16(display_name.encode()))


def message_record(direction: int, conversation: str, sender: str, sender_device: int, message_id: bytes,
                   sent_at: int, received_at: int, text: str, reply_to=None, attachment=None) -> bytes:
    out = (bytes([1, direction]) + w.bytes16(conversation.encode()) + w.bytes16(sender.encode()) + u32(sender_device)
           + w.bytes16(message_id) + u64(sent_at) + u64(received_at) + w.bytes32(text.encode()))
    if reply_to is not None or attachment is not None:
        out += bytes([(1 if reply_to is not None else 0) | (2 if attachment is not None else 0)])
        if reply_to is not None:
            out += w.bytes16(reply_to)
        if attachment is not None:
            out += attachment.encode()
    return out


def link_transfer() -> bytes:
    alice_aik = ed_public(inp("alice_account_seed"))
    devices = (w.DeviceEntry(ALICE_DEVICE_ID, ed_public(inp("alice_identity_seed")), DEVICE_CREATED_AT),)
    body = w.SignedDeviceList.body(alice_aik, 1, devices)
    alice_list = w.SignedDeviceList(alice_aik, 1, devices,
                                    ed_sign(inp("alice_account_seed"), w.labelled(w.SIG_DEVICE_LIST, body))).encode()
    contacts = [contact_record(ALICE_ADDRESS, alice_aik, alice_list, 1, "Alice")]           # trust 1: verified
    photo = w.AttachmentPointer(sha("photo id").hex(), sha("photo key"), 5, sha("photo blob"), "a.txt", "text/plain")
    messages = [   # (state, record), oldest first
        (11, message_record(1, ALICE_ADDRESS, ALICE_ADDRESS, ALICE_DEVICE_ID, b"\x11" * 16, 1_767_225_600_000,
                            1_767_225_601_000, "Hello Bob, this is Parley.")),                    # incoming, seen
        (3, message_record(2, ALICE_ADDRESS, BOB_ADDRESS, BOB_DEVICE_ID, b"\x22" * 16, 1_767_225_660_000,
                           1_767_225_660_000, "Hi Alice.", reply_to=b"\x11" * 16, attachment=photo)),  # outgoing, read
    ]
    names = [(7, "desk"), (8, "laptop")]
    out = bytes([1]) + u32(len(contacts)) + b"".join(w.bytes32(c) for c in contacts)
    out += u32(len(messages)) + b"".join(bytes([state]) + w.bytes32(m) for state, m in messages)
    out += u32(len(names)) + b"".join(u32(i) + w.bytes16(n.encode()) for i, n in names)
    return out


def test_link_transfer():
    stored_transfer = bytes.fromhex(json.loads(TRANSFER_VECTOR_FILE.read_text())["link_transfer"])
    assert link_transfer().hex() == stored_transfer.hex()


def test_every_stored_value_is_recomputed():
    assert set(computed()) == set(stored())
    mismatched = sorted(k for k in stored() if computed()[k] != stored()[k])
    assert not mismatched


def test_protocol_md_quotes_match_the_file():
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    section = text[text.index("## 10. Test vectors"):text.index("## 11.")]
    quoted = dict(re.findall(r"^([a-z0-9_]+) = ([0-9a-f]+)$", section, flags=re.M))
    assert len(quoted) >= 5
    for key, value in quoted.items():
        assert stored()[key].hex() == value, f"PROTOCOL.md §10 quotes {key} differently"
    # every value of the file is named in §10 (table or quick-check list)
    named = set(re.findall(r"`([a-z0-9_]+)`", section)) | set(quoted)
    assert set(stored()) <= named, sorted(set(stored()) - named)


# Readings of the document that the vectors rule out: each alternative must NOT reproduce the file, so the
# check above really pins these choices down.

def _sk_without_ff_prefix() -> bytes:
    ss = kem_shared_secret()
    ik_a = x_priv(inp("alice_identity_seed"))
    ek_a = inp("alice_ephemeral_private")
    pk = bob_prekeys()
    ikm = (x25519(ik_a, pk["spk"]) + x25519(ek_a, x_pub(stored()["bob_identity_public"]))
           + x25519(ek_a, pk["spk"]) + x25519(ek_a, pk["opk"]) + ss)
    return hkdf(bytes(32), ikm, INFO_PQXDH, 32)


def _mlkem_seed_z_then_d() -> bytes:
    seed = inp("bob_pq_one_time_prekey_seed")
    return ML_KEM_1024._keygen_internal(seed[32:], seed[:32])[0]


def _inner_not_padded() -> bytes:
    e_priv = inp("sealed_ephemeral_private")
    recipient_x = x_pub(stored()["alice_identity_public"])
    e_pub = x25519_pub(e_priv)
    key, nonce = sealed_key_material(e_pub, x25519(e_priv, recipient_x), recipient_x)
    inner = w.SealedInner(stored()["bob_sender_certificate"], w.CONTENT_RATCHET, stored()["message_2_ratchet"]).encode()
    return bytes([w.VERSION]) + e_pub + aead_encrypt(key, nonce, inner, bytes([w.VERSION]) + e_pub)


def _message_2_with_ad_swapped() -> bytes:
    ad = stored()["pqxdh_associated_data"]
    swapped = ad[33:] + ad[:33]
    sk = stored()["pqxdh_shared_key"]
    bob_dhr = x25519_pub(inp("alice_ratchet_1_private"))
    rk, _ = kdf_rk(sk, x25519(inp("bob_signed_prekey_private"), bob_dhr))
    _, cks = kdf_rk(rk, x25519(inp("bob_ratchet_1_private"), bob_dhr))
    _, mk = kdf_ck(cks)
    return ratchet_encrypt(mk, w.RatchetHeader(x25519_pub(inp("bob_ratchet_1_private")), 0, 0),
                           w.pad(b"Hi Alice."), swapped)


def _certificate_signed_without_label() -> bytes:
    c = w.SenderCertificate.decode(stored()["bob_sender_certificate"])
    return c.encode_body() + ed_sign(inp("bob_account_seed"), c.encode_body())


def _safety_number_of_raw_account_keys() -> bytes:
    a = party_hash(ed_public(inp("alice_account_seed")), ALICE_ADDRESS.encode(), SAFETY_ROUNDS)
    b = party_hash(ed_public(inp("bob_account_seed")), BOB_ADDRESS.encode(), SAFETY_ROUNDS)
    return "".join(sorted([digits(a), digits(b)])).encode("ascii")


def _provisioning_with_hex_slot_in_ad() -> bytes:
    code = link_code()
    e2_priv = inp("provisioning_ephemeral_private")
    e2_pub = x25519_pub(e2_priv)
    key, nonce = provisioning_key_material(e2_pub, code.ephemeral_key, x25519(e2_priv, code.ephemeral_key))
    header = bytes([w.VERSION]) + e2_pub
    return header + aead_encrypt(key, nonce, provisioning_payload(), header + code.slot.hex().encode() + code.device_key)


def _payload_with_bytes16_list() -> bytes:
    p = w.ProvisioningPayload.decode(provisioning_payload())
    return (bytes([w.VERSION]) + w.bytes16(p.address.encode()) + p.account_seed + p.device_id.to_bytes(4, "big")
            + w.bytes16(p.device_list) + b"\x01" + p.transfer.encode())


def _pointer_with_raw_id() -> bytes:
    p = w.ProvisioningPayload.decode(provisioning_payload())
    t = p.transfer
    raw = (w.bytes16(bytes.fromhex(t.id)) + t.key + t.size.to_bytes(8, "big") + t.digest
           + w.bytes16(t.file_name.encode()) + w.bytes16(t.content_type.encode()))
    return provisioning_payload()[:-len(t.encode())] + raw


@pytest.mark.parametrize("reading, key, alternative", [
    ("safety number of the raw 32-byte AIK", "safety_number", _safety_number_of_raw_account_keys),
    ("slot as its hex text in the provisioning AD", "provisioning_message", _provisioning_with_hex_slot_in_ad),
    ("bytes32 read as bytes16", "provisioning_payload", _payload_with_bytes16_list),
    ("attachment id as raw bytes", "provisioning_payload", _pointer_with_raw_id),
    ("SK without the 0xFF*32 prefix", "pqxdh_shared_key", _sk_without_ff_prefix),
    ("ML-KEM seed as z ‖ d", "bob_bundle", _mlkem_seed_z_then_d),
    ("Inner sealed without Pad", "sealed_envelope_message_2", _inner_not_padded),
    ("Bob's AD as Encode(IK_B) ‖ Encode(IK_A)", "message_2_ratchet", _message_2_with_ad_swapped),
    ("certificate signed without its label", "bob_sender_certificate", _certificate_signed_without_label),
])
def test_wrong_readings_do_not_reproduce_the_file(reading, key, alternative):
    value = alternative()
    assert value not in stored()[key], reading
