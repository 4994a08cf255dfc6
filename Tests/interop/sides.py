"""The two implementations behind one interface, so every scenario runs in both directions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import parley_py as p
import parley_wire as w
from swift_peer import PeerError, SwiftPeer


class Refused(Exception):
    """The side refused a bundle or message (the kind is implementation-specific)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class State:
    sk: bytes
    ad: bytes
    rk: bytes
    cks: Optional[bytes]
    ckr: Optional[bytes]
    dhs: bytes
    dhr: Optional[bytes]
    ns: int
    nr: int
    pn: int


class PySide:
    name = "python"

    def __init__(self, device_id: int = 2) -> None:
        self.device = p.PyDevice(device_id)
        self.identity_key = self.device.identity_key
        self.session: Optional[p.Session] = None

    def bundle(self, opk: bool = True, pq_one_time: bool = True) -> bytes:
        return self.device.bundle(with_opk=opk, pq_one_time=pq_one_time).encode()

    def init(self, bundle: bytes, plaintext: bytes) -> Tuple[int, bytes]:
        try:
            self.session, ct, msg = self.device.initiate(bundle, plaintext)
        except p.BundleSignatureError as e:
            raise Refused("badSignature", str(e)) from e
        return ct, msg

    def encrypt(self, plaintext: bytes) -> Tuple[int, bytes]:
        assert self.session is not None
        return self.session.encrypt(plaintext)

    def decrypt(self, content_type: int, message: bytes) -> bytes:
        try:
            self.session, content = self.device.receive(content_type, message)
        except (p.DecryptError, p.UnknownPreKey, w.WireError) as e:
            raise Refused(type(e).__name__, str(e)) from e
        return content

    def state(self) -> State:
        assert self.session is not None
        s = self.session.secrets()
        return State(s.sk, s.ad, s.rk, s.cks, s.ckr, s.dhs, s.dhr, s.ns, s.nr or 0, s.pn)

    @property
    def root_log(self) -> List[bytes]:
        assert self.session is not None
        return list(self.session.root_log)


class SwiftSide:
    name = "swift"

    def __init__(self, peer: SwiftPeer) -> None:
        self.peer = peer
        self.identity_key = peer.identity_key

    def bundle(self, opk: bool = True, pq_one_time: bool = True) -> bytes:
        return self.peer.bundle(opk=opk, pq_one_time=pq_one_time)

    def _wrap(self, f, *args):
        try:
            return f(*args)
        except PeerError as e:
            raise Refused(e.kind, e.detail) from e

    def init(self, bundle: bytes, plaintext: bytes) -> Tuple[int, bytes]:
        return self._wrap(self.peer.init, bundle, plaintext)

    def encrypt(self, plaintext: bytes) -> Tuple[int, bytes]:
        return self._wrap(self.peer.encrypt, plaintext)

    def decrypt(self, content_type: int, message: bytes) -> bytes:
        return self._wrap(self.peer.decrypt, content_type, message)

    def state(self) -> State:
        s = self.peer.secrets()
        return State(s.sk, s.ad, s.rk, s.cks, s.ckr, s.dhs, s.dhr, s.ns, s.nr, s.pn)
