"""An independent Parley peer: the PyPI packages x3dh, doubleratchet and xeddsa, plus kyber-py for
ML-KEM-1024 and PyNaCl for XChaCha20-Poly1305 / Ed25519, configured to PROTOCOL.md §4–§6.

Nothing here is derived from the Swift sources. Where the packages are configurable, they are configured;
the one place where they are not (x3dh does classic X3DH, PQXDH appends the KEM secret to the HKDF input)
is bridged by the single hook `_PQXDHHKDF` below — see README.md, "The PQ hook".
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import secrets as _secrets
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import nacl.bindings
import nacl.exceptions
import nacl.signing
import x3dh
import x3dh.base_state
from x3dh.identity_key_pair import IdentityKeyPairSeed
import xeddsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet import DoubleRatchet, DoSProtectionException, EncryptedMessage, Header
from doubleratchet import aead as dr_aead
from doubleratchet.recommended import HashFunction as DRHash
from doubleratchet.recommended import diffie_hellman_ratchet_curve25519, kdf_hkdf, kdf_separate_hmacs
from kyber_py.ml_kem import ML_KEM_1024
from x3dh.crypto_provider_cryptography import CryptoProviderImpl as _X3DHCryptoProvider

import parley_wire as w

# PROTOCOL.md §1
INFO_PQXDH = b"Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"
INFO_ROOT = b"Parley_Ratchet_Root"
INFO_MESSAGE = b"Parley_Ratchet_MessageKeys"
# PROTOCOL.md §5.1
MAX_SKIP = 1000
MAX_STORED_SKIPPED = 2000


class BundleSignatureError(Exception):
    """§4 step 1: "bundle signature invalid"."""


class UnknownPreKey(Exception):
    """§4: a PreKeyMessage names a prekey this device does not have (any more)."""


class DecryptError(Exception):
    """The message did not decrypt/authenticate; the session state is unchanged."""


def _run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------------------
# PQXDH on top of x3dh: the hook
#
# x3dh.BaseState computes  SK = HKDF(salt=0^32, IKM = 0xFF*32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info)  and calls
# `CryptoProviderImpl.hkdf_derive` (looked up as a global of x3dh.base_state) exactly once per key agreement.
# PQXDH (and PROTOCOL.md §4) differs only in appending the ML-KEM shared secret SS to that IKM. We replace
# that one global with a subclass whose hkdf_derive appends the SS of the exchange in progress, which the
# caller puts in a ContextVar around get_shared_secret_active/passive. Everything else — DH computations,
# identity-key conversion, SPK signature check, AD construction — is the unmodified package code.
# The hook refuses to run a Parley-labelled HKDF without an SS (so plain X3DH can never slip through) and
# checks the IKM has the X3DH shape it expects.
# ---------------------------------------------------------------------------------------------------------
_KEM_SECRET: contextvars.ContextVar[Optional[bytes]] = contextvars.ContextVar("parley_kem_secret", default=None)


class _PQXDHHKDF(_X3DHCryptoProvider):
    @staticmethod
    async def hkdf_derive(hash_function, length, salt, info, key_material):  # type: ignore[override]
        ss = _KEM_SECRET.get()
        if info == INFO_PQXDH:
            if ss is None:
                raise RuntimeError("PQXDH hook: HKDF with INFO_PQXDH but no KEM shared secret in progress")
            if key_material[:32] != b"\xff" * 32 or len(key_material) not in (32 + 3 * 32, 32 + 4 * 32):
                raise RuntimeError("PQXDH hook: unexpected X3DH key material layout")
            key_material = key_material + ss
        elif ss is not None:
            raise RuntimeError("PQXDH hook: KEM secret set for a non-PQXDH HKDF")
        return await _X3DHCryptoProvider.hkdf_derive(hash_function, length, salt, info, key_material)


x3dh.base_state.CryptoProviderImpl = _PQXDHHKDF  # type: ignore[attr-defined, misc]


@contextlib.contextmanager
def _kem_secret(ss: bytes) -> Iterator[None]:
    assert len(ss) == 32
    token = _KEM_SECRET.set(ss)
    try:
        yield
    finally:
        _KEM_SECRET.reset(token)


class ParleyX3DH(x3dh.BaseState):
    """x3dh configured to §2/§4: identity keys in Ed25519 form, SHA-256, INFO_PQXDH."""

    @staticmethod
    def _encode_public_key(key_format: x3dh.IdentityKeyFormat, pub: bytes) -> bytes:
        if key_format is x3dh.IdentityKeyFormat.CURVE_25519:
            return w.encode_key(w.KEY_X25519, pub)
        if key_format is x3dh.IdentityKeyFormat.ED_25519:
            return w.encode_key(w.KEY_ED25519, pub)
        raise ValueError(key_format)

    @classmethod
    def new(cls, seed: bytes) -> "ParleyX3DH":
        return cls.create(x3dh.IdentityKeyFormat.ED_25519, x3dh.HashFunction.SHA_256, INFO_PQXDH,
                          IdentityKeyPairSeed(seed))


# ---------------------------------------------------------------------------------------------------------
# Double Ratchet configured to §5
# ---------------------------------------------------------------------------------------------------------
# Observation only: while a session operates, new root keys (KDF_RK output [0..32)) are appended to this list,
# so the test can compare every root key, including the intermediate one of a two-step DH ratchet.
_ROOT_LOG: contextvars.ContextVar[Optional[List[bytes]]] = contextvars.ContextVar("parley_root_log", default=None)


class RootKDF(kdf_hkdf.KDF):
    """KDF_RK(rk, dh) = HKDF(salt=rk, IKM=dh, info=INFO_ROOT, L=64); KDFChain keeps [0..32) as rk'."""

    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return INFO_ROOT

    @classmethod
    async def derive(cls, key: bytes, data: bytes, length: int) -> bytes:
        out = await super().derive(key, data, length)
        log = _ROOT_LOG.get()
        if log is not None:
            log.append(out[:32])
        return out


class ChainKDF(kdf_separate_hmacs.KDF):
    """With MESSAGE_CHAIN_CONSTANT = 0x02 0x01, KDFChain.step gives ck' = HMAC(ck,0x02) (the first 32 bytes,
    kept as the new chain key) and mk = HMAC(ck,0x01) (the next 32, returned)."""

    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256


MESSAGE_CHAIN_CONSTANT = b"\x02\x01"


def message_key_material(mk: bytes) -> Tuple[bytes, bytes]:
    kn = HKDF(algorithm=hashes.SHA256(), length=56, salt=b"\x00" * 32, info=INFO_MESSAGE).derive(mk)
    return kn[:32], kn[32:]


class ParleyAEAD(dr_aead.AEAD):
    """ENCRYPT(mk, p, ad) of §5: XChaCha20-Poly1305-IETF with key/nonce from HKDF(mk)."""

    @staticmethod
    async def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
        k, nonce = message_key_material(key)
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated_data, nonce, k)

    @staticmethod
    async def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
        k, nonce = message_key_material(key)
        try:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, associated_data, nonce, k)
        except nacl.exceptions.CryptoError as e:
            raise dr_aead.AuthenticationFailedException("XChaCha20-Poly1305 authentication failed") from e


class DHRatchet(diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet):
    pass


def wire_header(header: Header) -> w.RatchetHeader:
    return w.RatchetHeader(header.ratchet_pub, header.previous_sending_chain_length, header.sending_chain_length)


class ParleyDoubleRatchet(DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        # ad for a message = AD ‖ Header, Header = 0x01 ‖ DHs(32) ‖ PN u32 ‖ N u32
        return associated_data + wire_header(header).encode()


RATCHET_CONFIG = dict(
    diffie_hellman_ratchet_class=DHRatchet,
    root_chain_kdf=RootKDF,
    message_chain_kdf=ChainKDF,
    message_chain_constant=MESSAGE_CHAIN_CONSTANT,
    dos_protection_threshold=MAX_SKIP,
    max_num_skipped_message_keys=MAX_STORED_SKIPPED,
    aead=ParleyAEAD,
)


# ---------------------------------------------------------------------------------------------------------
# Sessions and a device
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Secrets:
    sk: bytes
    ad: bytes
    rk: bytes
    cks: Optional[bytes]
    ns: int
    ckr: Optional[bytes]
    nr: Optional[int]
    pn: int
    dhs: bytes
    dhr: bytes
    root_log: List[bytes]


@dataclass
class Session:
    peer_identity: bytes
    sk: bytes
    ad: bytes
    ratchet: ParleyDoubleRatchet
    root_log: List[bytes]
    # set while this side is the initiator and no message from the peer has decrypted yet (§6.2)
    prekey_prefix: Optional[bytes] = None

    def encrypt(self, content: bytes) -> Tuple[int, bytes]:
        """Returns (contentType, wire bytes): a PreKeyMessage until the peer has answered, else a
        RatchetMessage."""
        enc = _run(self._encrypt(w.pad(content)))
        rm = w.RatchetMessage(wire_header(enc.header), enc.ciphertext).encode()
        if self.prekey_prefix is not None:
            return w.CONTENT_PREKEY, self.prekey_prefix + rm
        return w.CONTENT_RATCHET, rm

    async def _encrypt(self, padded: bytes) -> EncryptedMessage:
        token = _ROOT_LOG.set(self.root_log)
        try:
            return await self.ratchet.encrypt_message(padded, self.ad)
        finally:
            _ROOT_LOG.reset(token)

    def decrypt_ratchet(self, rm: w.RatchetMessage) -> bytes:
        """Decrypts on the package's copy-on-failure path; returns the unpadded content."""
        new_roots: List[bytes] = []

        async def go() -> bytes:
            token = _ROOT_LOG.set(new_roots)
            try:
                msg = EncryptedMessage(Header(rm.header.dh, rm.header.pn, rm.header.n), rm.ciphertext)
                return await self.ratchet.decrypt_message(msg, self.ad)
            finally:
                _ROOT_LOG.reset(token)
        try:
            padded = _run(go())
        except Exception as e:  # AuthenticationFailed, Duplicate, DoSProtection, ...
            raise DecryptError(f"{type(e).__name__}: {e}") from e
        self.root_log.extend(new_roots)
        self.prekey_prefix = None   # the peer's message decrypted: stop wrapping (§6.2, §8)
        return w.unpad(padded)

    def secrets(self) -> Secrets:
        m = self.ratchet.model.diffie_hellman_ratchet
        skr = m.symmetric_key_ratchet
        return Secrets(
            sk=self.sk, ad=self.ad, rk=m.root_chain.key,
            cks=None if skr.sending_chain is None else skr.sending_chain.key,
            ns=0 if skr.sending_chain is None else skr.sending_chain.length,
            ckr=None if skr.receiving_chain is None else skr.receiving_chain.key,
            nr=None if skr.receiving_chain is None else skr.receiving_chain.length,
            pn=skr.previous_sending_chain_length or 0,
            dhs=xeddsa.priv_to_curve25519_pub(m.own_ratchet_priv),
            dhr=m.other_ratchet_pub,
            root_log=list(self.root_log),
        )


def _x25519_pub(priv: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult_base(priv)


class PyDevice:
    """One Parley device built from the packages: identity (seed shared by x3dh and PyNaCl), signed prekey
    (x3dh's), one-time prekeys (x3dh's), ML-KEM-1024 prekeys (kyber-py) signed with the same Ed25519 key."""

    def __init__(self, device_id: int = 1, seed: Optional[bytes] = None, one_time: int = 3) -> None:
        self.device_id = device_id
        self.seed = seed or _secrets.token_bytes(32)
        self.x3dh = ParleyX3DH.new(self.seed)
        self.signing_key = nacl.signing.SigningKey(self.seed)
        self.identity_key = bytes(self.signing_key.verify_key)
        assert self.x3dh.bundle.identity_key == self.identity_key, "x3dh and PyNaCl disagree on the Ed25519 key"
        self._next_id = 1
        self.spk_id = self._alloc()
        self.x3dh.generate_pre_keys(one_time)
        self.opks: Dict[int, bytes] = {self._alloc(): pub for pub in sorted(self.x3dh.bundle.pre_keys)}
        self.pq_last_resort_id = self._alloc()
        self.pq_keys: Dict[Tuple[int, int], Tuple[bytes, bytes]] = {
            (w.PQ_LAST_RESORT, self.pq_last_resort_id): ML_KEM_1024.keygen()}
        for _ in range(one_time):
            self.pq_keys[(w.PQ_ONE_TIME, self._alloc())] = ML_KEM_1024.keygen()
        self.offered_opks: set = set()
        self.offered_pq: set = set()
        self.sessions: Dict[bytes, Session] = {}

    def _alloc(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # ---- bundle ------------------------------------------------------------------------------------
    def sign_prekey(self, encoded: bytes) -> bytes:
        return self.signing_key.sign(encoded).signature

    def bundle(self, with_opk: bool = True, pq_one_time: bool = True) -> w.PreKeyBundle:
        b = self.x3dh.bundle
        opk_id, opk = 0, None
        if with_opk:
            free = [i for i in sorted(self.opks) if i not in self.offered_opks]
            if free:
                opk_id, opk = free[0], self.opks[free[0]]
                self.offered_opks.add(opk_id)
        pq_kind, pq_id = w.PQ_LAST_RESORT, self.pq_last_resort_id
        if pq_one_time:
            free_pq = [k for k in sorted(self.pq_keys) if k[0] == w.PQ_ONE_TIME and k not in self.offered_pq]
            if free_pq:
                (pq_kind, pq_id) = free_pq[0]
                self.offered_pq.add(free_pq[0])
        ek = self.pq_keys[(pq_kind, pq_id)][0]
        return w.PreKeyBundle(
            identity_key=b.identity_key, device_id=self.device_id,
            spk_id=self.spk_id, spk=b.signed_pre_key, spk_sig=b.signed_pre_key_sig,
            pq_key_id=pq_id, pq_kind=pq_kind, pq_key=ek,
            pq_sig=self.sign_prekey(w.encode_key(w.KEY_MLKEM1024, ek)),
            opk_id=opk_id, opk=opk)

    # ---- initiator (§4 Alice) -------------------------------------------------------------------------
    def initiate(self, bundle_bytes: bytes, first_content: bytes) -> Tuple[Session, int, bytes]:
        bundle = w.PreKeyBundle.decode(bundle_bytes)
        vk = nacl.signing.VerifyKey(bundle.identity_key)
        try:
            vk.verify(w.encode_key(w.KEY_X25519, bundle.spk), bundle.spk_sig)
            vk.verify(w.encode_key(w.KEY_MLKEM1024, bundle.pq_key), bundle.pq_sig)
        except nacl.exceptions.BadSignatureError as e:
            raise BundleSignatureError("bundle signature invalid") from e
        ss, ct = ML_KEM_1024.encaps(bundle.pq_key)
        xb = x3dh.Bundle(identity_key=bundle.identity_key, signed_pre_key=bundle.spk,
                         signed_pre_key_sig=bundle.spk_sig,
                         pre_keys=frozenset() if bundle.opk is None else frozenset({bundle.opk}))
        root_log: List[bytes] = []

        async def go():
            with _kem_secret(ss):
                try:
                    sk, ad, header = await self.x3dh.get_shared_secret_active(xb, require_pre_key=False)
                except x3dh.KeyAgreementException as e:
                    raise BundleSignatureError(str(e)) from e
            token = _ROOT_LOG.set(root_log)
            try:
                dr, enc = await ParleyDoubleRatchet.encrypt_initial_message(
                    shared_secret=sk, recipient_ratchet_pub=bundle.spk, message=w.pad(first_content),
                    associated_data=ad, **RATCHET_CONFIG)
            finally:
                _ROOT_LOG.reset(token)
            return sk, ad, header, dr, enc
        sk, ad, header, dr, enc = _run(go())
        assert header.pre_key == bundle.opk and header.signed_pre_key == bundle.spk
        prefix = w.PreKeyMessage(self.identity_key, header.ephemeral_key, bundle.spk_id, bundle.opk_id,
                                 bundle.pq_key_id, bundle.pq_kind, ct,
                                 w.RatchetMessage(wire_header(enc.header), enc.ciphertext)).encode_prefix()
        session = Session(bundle.identity_key, sk, ad, dr, [sk] + root_log, prefix)
        self.sessions[bundle.identity_key] = session
        # for the white-box test of the hook
        session.debug_kem = (ss, ct, header.ephemeral_key)  # type: ignore[attr-defined]
        rm = w.RatchetMessage(wire_header(enc.header), enc.ciphertext).encode()
        return session, w.CONTENT_PREKEY, prefix + rm

    # ---- receiving --------------------------------------------------------------------------------
    def receive(self, content_type: int, data: bytes) -> Tuple[Session, bytes]:
        if content_type == w.CONTENT_RATCHET:
            rm = w.RatchetMessage.decode(data)
            # one session per peer in this harness: find the one whose chains know this DH key, else try all
            errors = []
            for s in list(self.sessions.values()):
                try:
                    return s, s.decrypt_ratchet(rm)
                except DecryptError as e:
                    errors.append(e)
            raise DecryptError("; ".join(map(str, errors)) or "no session")
        if content_type != w.CONTENT_PREKEY:
            raise w.WireError(f"unknown content type {content_type}")
        pkm = w.PreKeyMessage.decode(data)
        existing = self.sessions.get(pkm.identity_key)
        if existing is not None:
            # Sesame (§8): a PreKeyMessage of a session we already have decrypts in it
            try:
                return existing, existing.decrypt_ratchet(pkm.message)
            except DecryptError:
                pass
        return self._respond(pkm)

    def _respond(self, pkm: w.PreKeyMessage) -> Tuple[Session, bytes]:
        if pkm.spk_id != self.spk_id:
            raise UnknownPreKey(f"signed prekey {pkm.spk_id}")
        opk_pub = None
        if pkm.opk_id != 0:
            opk_pub = self.opks.get(pkm.opk_id)
            if opk_pub is None:
                raise UnknownPreKey(f"one-time prekey {pkm.opk_id}")
        pq = self.pq_keys.get((pkm.pq_kind, pkm.pq_key_id))
        if pq is None:
            raise UnknownPreKey(f"post-quantum prekey {pkm.pq_key_id} kind {pkm.pq_kind}")
        ss = ML_KEM_1024.decaps(pq[1], pkm.kem_ciphertext)
        xh = x3dh.Header(identity_key=pkm.identity_key, ephemeral_key=pkm.ephemeral_key,
                         signed_pre_key=self.x3dh.bundle.signed_pre_key, pre_key=opk_pub)
        root_log: List[bytes] = []
        rm = pkm.message

        async def go():
            with _kem_secret(ss):
                sk, ad, spk_pair = await self.x3dh.get_shared_secret_passive(xh, require_pre_key=False)
            token = _ROOT_LOG.set(root_log)
            try:
                dr, padded = await ParleyDoubleRatchet.decrypt_initial_message(
                    shared_secret=sk, own_ratchet_priv=spk_pair.priv,
                    message=EncryptedMessage(Header(rm.header.dh, rm.header.pn, rm.header.n), rm.ciphertext),
                    associated_data=ad, **RATCHET_CONFIG)
            finally:
                _ROOT_LOG.reset(token)
            return sk, ad, dr, padded
        try:
            sk, ad, dr, padded = _run(go())
        except (dr_aead.AuthenticationFailedException, DoSProtectionException, x3dh.KeyAgreementException,
                xeddsa.XEdDSAException, ValueError) as e:
            # ValueError/XEdDSAException: a key in the PreKeyMessage is not a valid point
            raise DecryptError(f"{type(e).__name__}: {e}") from e
        content = w.unpad(padded)
        # only now, after the first message decrypted, burn the one-time keys (§4)
        if opk_pub is not None:
            self.x3dh.delete_pre_key(opk_pub)
            del self.opks[pkm.opk_id]
        if pkm.pq_kind == w.PQ_ONE_TIME:
            del self.pq_keys[(pkm.pq_kind, pkm.pq_key_id)]
        session = Session(pkm.identity_key, sk, ad, dr, [sk] + root_log, None)
        self.sessions[pkm.identity_key] = session
        return session, content
