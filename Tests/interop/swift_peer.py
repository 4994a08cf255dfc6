"""Driver for the Swift test tool `parley-interop-peer` (JSON lines on stdin/stdout)."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO / ".build" / "debug" / "parley-interop-peer"

# Only a guard against a hung peer (so a bug fails the test instead of hanging the suite); no test relies
# on anything finishing within a time.
HANG_GUARD_SECONDS = 300


def peer_binary() -> Path:
    return Path(os.environ.get("PARLEY_INTEROP_PEER", DEFAULT_BINARY))


class PeerError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class SwiftSecrets:
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
    skipped: int
    pending_prekey: bool


def _b(v: Optional[str]) -> Optional[bytes]:
    return None if v is None else bytes.fromhex(v)


class SwiftPeer:
    def __init__(self, *args: str, binary: Optional[Path] = None) -> None:
        binary = binary or peer_binary()
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0)
        self._lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        hello = self.call("hello")
        self.identity_key = bytes.fromhex(hello["identity"])
        self.device_id = hello["device_id"]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def call(self, cmd: str, **fields: Any) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"cmd": cmd, **{k: (v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in fields.items()}}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=HANG_GUARD_SECONDS)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"parley-interop-peer did not answer {cmd!r}")
        if line is None:
            raise AssertionError(f"parley-interop-peer exited ({self.proc.wait()}) on {cmd!r}:\n{self._stderr_text()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise PeerError(reply.get("error", "?"), reply.get("detail", ""))
        return reply

    # -- commands -------------------------------------------------------------------------------------
    def bundle(self, opk: bool = True, pq_one_time: bool = True) -> bytes:
        return bytes.fromhex(self.call("bundle", opk=opk, pq_one_time=pq_one_time)["bundle"])

    def init(self, bundle: bytes, plaintext: bytes) -> Tuple[int, bytes]:
        r = self.call("init", bundle=bundle, plaintext=plaintext)
        return r["content_type"], bytes.fromhex(r["message"])

    def encrypt(self, plaintext: bytes) -> Tuple[int, bytes]:
        r = self.call("encrypt", plaintext=plaintext)
        return r["content_type"], bytes.fromhex(r["message"])

    def decrypt(self, content_type: int, message: bytes) -> bytes:
        return bytes.fromhex(self.call("decrypt", content_type=content_type, message=message)["plaintext"])

    def secrets(self) -> SwiftSecrets:
        r = self.call("secrets")
        assert r["has_session"], "the Swift peer has no session"
        return SwiftSecrets(sk=_b(r["sk"]), ad=_b(r["ad"]), rk=_b(r["rk"]), cks=_b(r["cks"]), ckr=_b(r["ckr"]),
                            dhs=_b(r["dhs"]), dhr=_b(r["dhr"]), ns=r["ns"], nr=r["nr"], pn=r["pn"],
                            skipped=r["skipped"], pending_prekey=r["pending_prekey"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=HANG_GUARD_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._stderr.close()
