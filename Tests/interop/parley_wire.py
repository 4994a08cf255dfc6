"""Byte layouts of PROTOCOL.md, written from the document alone (not from the Swift code).

Covers what the cross-check needs: key encoding (§2), PreKeyBundle (§3.3), the ratchet header and
RatchetMessage (§5, §6.1), PreKeyMessage (§6.2) and the 160-byte padding (§6.3); for the vector check
(test_vectors.py) also the signed device list (§3.2), the sender certificate, Inner and Envelope (§7), the
attachment pointer (§12.1) and the link code and provisioning payload (§15.1). Every decoder checks the
version byte, every length and refuses trailing bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

VERSION = 0x01

# §2 Encode(K) type bytes
KEY_X25519 = 0x05
KEY_ED25519 = 0x06
KEY_MLKEM1024 = 0x08

X25519_LEN = 32
ED25519_LEN = 32
SIG_LEN = 64
MLKEM1024_EK_LEN = 1568
MLKEM1024_CT_LEN = 1568
HEADER_LEN = 41
TAG_LEN = 16

# §3.3 pqKind
PQ_ONE_TIME = 0x01
PQ_LAST_RESORT = 0x02

# §7 contentType, used by the cross-check to tell the two message kinds apart (as the envelope does)
CONTENT_RATCHET = 0x01
CONTENT_PREKEY = 0x02

PADDING_BLOCK = 160


class WireError(ValueError):
    """Malformed structure."""


class UnsupportedVersion(WireError):
    """A version byte other than 0x01."""


def encode_key(type_byte: int, raw: bytes) -> bytes:
    """Encode(K) of §2."""
    expected = {KEY_X25519: X25519_LEN, KEY_ED25519: ED25519_LEN, KEY_MLKEM1024: MLKEM1024_EK_LEN}[type_byte]
    if len(raw) != expected:
        raise WireError(f"key of type {type_byte:#04x} must be {expected} bytes, got {len(raw)}")
    return bytes([type_byte]) + raw


class _Reader:
    def __init__(self, data: bytes, structure: str) -> None:
        self.data = bytes(data)
        self.offset = 0
        self.structure = structure

    def raw(self, n: int) -> bytes:
        if len(self.data) - self.offset < n:
            raise WireError(f"{self.structure}: truncated")
        out = self.data[self.offset:self.offset + n]
        self.offset += n
        return out

    def u8(self) -> int:
        return self.raw(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.raw(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.raw(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.raw(8))[0]

    def version(self) -> None:
        v = self.u8()
        if v != VERSION:
            raise UnsupportedVersion(f"{self.structure}: unsupported version {v}")

    def rest(self) -> bytes:
        out = self.data[self.offset:]
        self.offset = len(self.data)
        return out

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise WireError(f"{self.structure}: {len(self.data) - self.offset} trailing bytes")


def _u16(v: int) -> bytes:
    return struct.pack(">H", v)


def _u32(v: int) -> bytes:
    return struct.pack(">I", v)


def _u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def bytes16(data: bytes) -> bytes:
    """Conventions: a u16 length followed by that many bytes."""
    if len(data) > 0xFFFF:
        raise WireError("bytes16: longer than 65535 bytes")
    return _u16(len(data)) + bytes(data)


def bytes32(data: bytes) -> bytes:
    """Conventions: a u32 length followed by that many bytes."""
    return _u32(len(data)) + bytes(data)


@dataclass(frozen=True)
class PreKeyBundle:
    """§3.3."""
    identity_key: bytes          # DIK, Ed25519, 32
    device_id: int
    spk_id: int
    spk: bytes                   # X25519, 32
    spk_sig: bytes               # 64
    pq_key_id: int
    pq_kind: int
    pq_key: bytes                # ML-KEM-1024 ek, 1568
    pq_sig: bytes                # 64
    opk_id: int = 0
    opk: Optional[bytes] = None

    def encode(self) -> bytes:
        if (self.opk_id == 0) != (self.opk is None):
            raise WireError("PreKeyBundle: opkId 0 means no OPK")
        assert len(self.identity_key) == 32 and len(self.spk) == 32 and len(self.spk_sig) == 64
        assert len(self.pq_key) == MLKEM1024_EK_LEN and len(self.pq_sig) == 64
        out = (bytes([VERSION]) + self.identity_key + _u32(self.device_id)
               + _u32(self.spk_id) + self.spk + self.spk_sig
               + _u32(self.pq_key_id) + bytes([self.pq_kind]) + self.pq_key + self.pq_sig
               + _u32(self.opk_id))
        if self.opk is not None:
            assert len(self.opk) == 32
            out += self.opk
        return out

    @staticmethod
    def decode(data: bytes) -> "PreKeyBundle":
        r = _Reader(data, "PreKeyBundle")
        r.version()
        ik = r.raw(32)
        device_id = r.u32()
        spk_id = r.u32()
        spk = r.raw(32)
        spk_sig = r.raw(64)
        pq_id = r.u32()
        pq_kind = r.u8()
        if pq_kind not in (PQ_ONE_TIME, PQ_LAST_RESORT):
            raise WireError(f"PreKeyBundle: unknown pqKind {pq_kind}")
        pq = r.raw(MLKEM1024_EK_LEN)
        pq_sig = r.raw(64)
        opk_id = r.u32()
        opk = None if opk_id == 0 else r.raw(32)
        r.finish()
        return PreKeyBundle(ik, device_id, spk_id, spk, spk_sig, pq_id, pq_kind, pq, pq_sig, opk_id, opk)


@dataclass(frozen=True)
class RatchetHeader:
    """§5: 0x01 ‖ DHs(32) ‖ PN u32 ‖ N u32 (41 bytes)."""
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        assert len(self.dh) == 32
        return bytes([VERSION]) + self.dh + _u32(self.pn) + _u32(self.n)

    @staticmethod
    def decode(data: bytes) -> "RatchetHeader":
        r = _Reader(data, "RatchetHeader")
        r.version()
        h = RatchetHeader(r.raw(32), r.u32(), r.u32())
        r.finish()
        return h


@dataclass(frozen=True)
class RatchetMessage:
    """§6.1: Header(41) ‖ ciphertext ‖ tag(16); `ciphertext` here includes the tag."""
    header: RatchetHeader
    ciphertext: bytes

    def encode(self) -> bytes:
        return self.header.encode() + self.ciphertext

    @staticmethod
    def decode(data: bytes) -> "RatchetMessage":
        if len(data) < HEADER_LEN + TAG_LEN:
            raise WireError("RatchetMessage: truncated")
        return RatchetMessage(RatchetHeader.decode(data[:HEADER_LEN]), bytes(data[HEADER_LEN:]))


@dataclass(frozen=True)
class PreKeyMessage:
    """§6.2."""
    identity_key: bytes     # IK_A, Ed25519, 32
    ephemeral_key: bytes    # EK_A, X25519, 32
    spk_id: int
    opk_id: int
    pq_key_id: int
    pq_kind: int
    kem_ciphertext: bytes   # 1568
    message: RatchetMessage

    def encode_prefix(self) -> bytes:
        assert len(self.identity_key) == 32 and len(self.ephemeral_key) == 32
        assert len(self.kem_ciphertext) == MLKEM1024_CT_LEN
        return (bytes([VERSION]) + self.identity_key + self.ephemeral_key
                + _u32(self.spk_id) + _u32(self.opk_id) + _u32(self.pq_key_id) + bytes([self.pq_kind])
                + self.kem_ciphertext)

    def encode(self) -> bytes:
        return self.encode_prefix() + self.message.encode()

    @staticmethod
    def decode(data: bytes) -> "PreKeyMessage":
        r = _Reader(data, "PreKeyMessage")
        r.version()
        ik = r.raw(32)
        ek = r.raw(32)
        spk_id = r.u32()
        opk_id = r.u32()
        pq_id = r.u32()
        pq_kind = r.u8()
        if pq_kind not in (PQ_ONE_TIME, PQ_LAST_RESORT):
            raise WireError(f"PreKeyMessage: unknown pqKind {pq_kind}")
        ct = r.raw(MLKEM1024_CT_LEN)
        msg = RatchetMessage.decode(r.rest())
        return PreKeyMessage(ik, ek, spk_id, opk_id, pq_id, pq_kind, ct, msg)


PREKEY_PREFIX_LEN = 1 + 32 + 32 + 4 + 4 + 4 + 1 + MLKEM1024_CT_LEN


def pad(content: bytes) -> bytes:
    """§6.3: append 0x80, then 0x00 until the length is a multiple of 160."""
    out = bytearray(content)
    out.append(0x80)
    while len(out) % PADDING_BLOCK:
        out.append(0x00)
    return bytes(out)


def unpad(padded: bytes) -> bytes:
    """§6.3: strip trailing 0x00, then exactly one 0x80; anything else is malformed."""
    if len(padded) == 0 or len(padded) % PADDING_BLOCK:
        raise WireError("padding: length is not a positive multiple of 160")
    end = len(padded)
    while end > 0 and padded[end - 1] == 0x00:
        end -= 1
    if end == 0 or padded[end - 1] != 0x80:
        raise WireError("padding: no 0x80 terminator")
    return bytes(padded[:end - 1])


# §1 labels used by signatures (a labelled signature signs label ‖ 0x00 ‖ body)
SIG_DEVICE_LIST = b"parley.device-list.v1"
SIG_SENDER_CERT = b"parley.sender-certificate.v1"


def labelled(label: bytes, body: bytes) -> bytes:
    """§1: the message a labelled signature signs."""
    return label + b"\x00" + body


@dataclass(frozen=True)
class DeviceEntry:
    """§3.2: deviceId u32 ‖ DIK(32) ‖ createdAt u64 (ms)."""
    device_id: int
    identity_key: bytes
    created_at: int


@dataclass(frozen=True)
class SignedDeviceList:
    """§3.2: DeviceList ‖ signature(64), DeviceList = 0x01 ‖ AIK(32) ‖ version u64 ‖ count u16 ‖ entries."""
    account_key: bytes
    version: int
    devices: tuple
    signature: bytes

    @staticmethod
    def body(account_key: bytes, version: int, devices) -> bytes:
        """The DeviceList (what the signature covers, after the label)."""
        assert len(account_key) == 32
        ids = [d.device_id for d in devices]
        if any(a >= b for a, b in zip(ids, ids[1:])):
            raise WireError("DeviceList: device ids must be strictly increasing")
        out = bytes([VERSION]) + account_key + _u64(version) + _u16(len(devices))
        for d in devices:
            assert len(d.identity_key) == 32
            out += _u32(d.device_id) + d.identity_key + _u64(d.created_at)
        return out

    def encode_body(self) -> bytes:
        return SignedDeviceList.body(self.account_key, self.version, self.devices)

    def encode(self) -> bytes:
        assert len(self.signature) == SIG_LEN
        return self.encode_body() + self.signature

    @staticmethod
    def decode(data: bytes) -> "SignedDeviceList":
        r = _Reader(data, "SignedDeviceList")
        r.version()
        aik = r.raw(32)
        version = r.u64()
        count = r.u16()
        devices = tuple(DeviceEntry(r.u32(), r.raw(32), r.u64()) for _ in range(count))
        sig = r.raw(SIG_LEN)
        r.finish()
        out = SignedDeviceList(aik, version, devices, sig)
        out.encode_body()  # checks the ordering
        return out


@dataclass(frozen=True)
class SenderCertificate:
    """§7: 0x01 ‖ bytes16(address) ‖ AIK(32) ‖ deviceId u32 ‖ DIK(32) ‖ expiresAt u64 ‖ signature(64)."""
    address: str
    account_key: bytes
    device_id: int
    device_key: bytes
    expires_at: int
    signature: bytes

    @staticmethod
    def body(address: str, account_key: bytes, device_id: int, device_key: bytes, expires_at: int) -> bytes:
        """All fields before the signature (what it covers, after the label)."""
        assert len(account_key) == 32 and len(device_key) == 32
        return (bytes([VERSION]) + bytes16(address.encode("utf-8")) + account_key + _u32(device_id)
                + device_key + _u64(expires_at))

    def encode_body(self) -> bytes:
        return SenderCertificate.body(self.address, self.account_key, self.device_id, self.device_key, self.expires_at)

    def encode(self) -> bytes:
        assert len(self.signature) == SIG_LEN
        return self.encode_body() + self.signature

    @staticmethod
    def decode(data: bytes) -> "SenderCertificate":
        r = _Reader(data, "SenderCertificate")
        r.version()
        address = r.raw(r.u16()).decode("utf-8")
        out = SenderCertificate(address, r.raw(32), r.u32(), r.raw(32), r.u64(), r.raw(SIG_LEN))
        r.finish()
        return out


@dataclass(frozen=True)
class SealedInner:
    """§7: Inner = bytes16(SenderCertificate) ‖ contentType u8 ‖ content (before Pad)."""
    certificate: bytes
    content_type: int
    content: bytes

    def encode(self) -> bytes:
        return bytes16(self.certificate) + bytes([self.content_type]) + self.content

    @staticmethod
    def decode(data: bytes) -> "SealedInner":
        r = _Reader(data, "Inner")
        cert = r.raw(r.u16())
        content_type = r.u8()
        if content_type not in (CONTENT_RATCHET, CONTENT_PREKEY):
            raise WireError(f"Inner: unknown contentType {content_type}")
        return SealedInner(cert, content_type, r.rest())


@dataclass(frozen=True)
class Envelope:
    """§7: 0x01 ‖ E(32) ‖ ciphertext ‖ tag(16); `ciphertext` here includes the tag."""
    ephemeral_key: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        assert len(self.ephemeral_key) == 32
        return bytes([VERSION]) + self.ephemeral_key + self.ciphertext

    @staticmethod
    def decode(data: bytes) -> "Envelope":
        r = _Reader(data, "Envelope")
        r.version()
        e = r.raw(32)
        ct = r.rest()
        if len(ct) < TAG_LEN:
            raise WireError("Envelope: truncated")
        return Envelope(e, ct)


@dataclass(frozen=True)
class AttachmentPointer:
    """§12.1: bytes16(id) ‖ key(32) ‖ size u64 ‖ digest(32) ‖ bytes16(fileName) ‖ bytes16(contentType).
    `id` is the relay's id as text (UTF-8), not the bytes it spells."""
    id: str
    key: bytes
    size: int
    digest: bytes
    file_name: str
    content_type: str

    def encode(self) -> bytes:
        assert len(self.key) == 32 and len(self.digest) == 32
        return (bytes16(self.id.encode("utf-8")) + self.key + _u64(self.size) + self.digest
                + bytes16(self.file_name.encode("utf-8")) + bytes16(self.content_type.encode("utf-8")))

    @staticmethod
    def read(r: "_Reader") -> "AttachmentPointer":
        return AttachmentPointer(r.raw(r.u16()).decode("utf-8"), r.raw(32), r.u64(), r.raw(32),
                                 r.raw(r.u16()).decode("utf-8"), r.raw(r.u16()).decode("utf-8"))


LINK_PREFIX = "parley-link:"


@dataclass(frozen=True)
class LinkCode:
    """§15: 0x01 ‖ bytes16(relay) ‖ slot(16) ‖ E.pub(32) ‖ DIK_new(32); text = prefix ‖ unpadded base64url."""
    relay: str
    slot: bytes
    ephemeral_key: bytes
    device_key: bytes

    def encode(self) -> bytes:
        assert len(self.slot) == 16 and len(self.ephemeral_key) == 32 and len(self.device_key) == 32
        return bytes([VERSION]) + bytes16(self.relay.encode("utf-8")) + self.slot + self.ephemeral_key + self.device_key

    def text(self) -> str:
        import base64
        return LINK_PREFIX + base64.urlsafe_b64encode(self.encode()).decode("ascii").rstrip("=")

    @staticmethod
    def decode(data: bytes) -> "LinkCode":
        r = _Reader(data, "LinkCode")
        r.version()
        out = LinkCode(r.raw(r.u16()).decode("utf-8"), r.raw(16), r.raw(32), r.raw(32))
        r.finish()
        return out

    @staticmethod
    def from_text(text: str) -> "LinkCode":
        import base64
        body = "".join(text.split())
        if not body.startswith(LINK_PREFIX):
            raise WireError("a link code starts with " + LINK_PREFIX)
        body = body[len(LINK_PREFIX):].rstrip("=")
        return LinkCode.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


@dataclass(frozen=True)
class ProvisioningPayload:
    """§15: 0x01 ‖ bytes16(address) ‖ AIK seed(32) ‖ deviceId u32 ‖ bytes32(SignedDeviceList) ‖ flags u8
    ‖ [AttachmentPointer if flags & 1]."""
    address: str
    account_seed: bytes
    device_id: int
    device_list: bytes
    transfer: Optional[AttachmentPointer]

    def encode(self) -> bytes:
        assert len(self.account_seed) == 32
        out = (bytes([VERSION]) + bytes16(self.address.encode("utf-8")) + self.account_seed + _u32(self.device_id)
               + bytes32(self.device_list) + bytes([0 if self.transfer is None else 1]))
        if self.transfer is not None:
            out += self.transfer.encode()
        return out

    @staticmethod
    def decode(data: bytes) -> "ProvisioningPayload":
        r = _Reader(data, "ProvisioningPayload")
        r.version()
        address = r.raw(r.u16()).decode("utf-8")
        seed = r.raw(32)
        device_id = r.u32()
        device_list = r.raw(r.u32())
        flags = r.u8()
        if flags not in (0, 1):
            raise WireError("ProvisioningPayload: flags")
        transfer = AttachmentPointer.read(r) if flags == 1 else None
        r.finish()
        return ProvisioningPayload(address, seed, device_id, device_list, transfer)
