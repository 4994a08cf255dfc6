"""A real parley-relay process on loopback, and just enough of a Parley device to drive every route.

Keys: Ed25519 (PyNaCl) for account and device identities, X25519 for prekeys, ML-KEM-1024 (kyber-py) for
PQ prekeys. Byte layouts follow PROTOCOL.md §2, §3.2 and §13.
"""

from __future__ import annotations

import base64
import os
import select
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from nacl.public import PrivateKey
from nacl.signing import SigningKey

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "openapi" / "relay.yaml"
BANNER = "parley-relay: serving "


def relay_binary() -> Path:
    return Path(os.environ.get("PARLEY_RELAY_BIN", REPO / ".build" / "debug" / "parley-relay"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """`parley-relay serve` on 127.0.0.1 with a fresh data directory; `stop()` sends SIGTERM."""

    def __init__(self, binary: Path, data_dir: Path, rate_limit: bool = False) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.rate_limit = rate_limit
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.stderr_path = data_dir.parent / (data_dir.name + ".stderr")

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.name}"

    def start(self, timeout: float = 30.0) -> None:
        # The port is chosen here and passed in --listen so that the relay's name (the part after '@' in
        # its addresses) is the real host:port; a port taken between probe and bind is retried.
        for _ in range(5):
            self.port = free_port()
            args = [str(self.binary), "serve", "--listen", self.name, "--data", str(self.data_dir), "--log-level", "warning"]
            if not self.rate_limit:
                args.append("--no-rate-limit")
            stderr = open(self.stderr_path, "w")
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
            stderr.close()
            line = self._read_banner(timeout)
            if line is not None:
                assert line.strip().endswith(self.url), f"unexpected banner: {line!r}"
                return
            code = self.process.wait(timeout=10)
            if code != 3:  # 3: cannot bind (or data directory unusable); anything else is a real failure
                break
        raise RuntimeError(f"parley-relay did not start (exit {self.process.returncode}): {self.stderr()}")

    def _read_banner(self, timeout: float) -> str | None:
        assert self.process and self.process.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith(BANNER):
                    return line
                if line == "":  # EOF: the process exited
                    return None
            elif self.process.poll() is not None:
                return None
        self.process.kill()
        raise RuntimeError(f"parley-relay printed no banner within {timeout}s: {self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (0 for a clean shutdown); SIGKILL only if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode


# MARK: Keys and signed structures

def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


@dataclass
class Device:
    device_id: int
    key: SigningKey = field(default_factory=SigningKey.generate)

    @property
    def public(self) -> bytes:
        return self.key.verify_key.encode()


@dataclass
class Account:
    """One account with its devices, registered at `relay_name`."""

    name: str
    relay_name: str
    devices: list[Device]
    account_key: SigningKey = field(default_factory=SigningKey.generate)
    version: int = 1

    @property
    def address(self) -> str:
        return f"{self.name}@{self.relay_name}"

    def signed_device_list(self) -> bytes:
        """PROTOCOL.md §3.2: DeviceList ‖ Ed25519-Sign(AIK, "parley.device-list.v1" ‖ 0x00 ‖ DeviceList)."""
        body = bytes([1]) + self.account_key.verify_key.encode() + u64(self.version) + u16(len(self.devices))
        for d in sorted(self.devices, key=lambda d: d.device_id):
            body += u32(d.device_id) + d.public + u64(1_700_000_000_000)
        return body + self.account_key.sign(b"parley.device-list.v1\x00" + body).signature

    def register_body(self) -> dict:
        return {"address": self.address, "accountKey": b64(self.account_key.verify_key.encode()),
                "deviceList": b64(self.signed_device_list())}

    def session_body(self, device: Device, challenge: bytes) -> dict:
        """PROTOCOL.md §13: Ed25519-Sign(DIK, "parley.relay-auth.v1" ‖ 0x00 ‖ challenge ‖ relayName)."""
        message = b"parley.relay-auth.v1\x00" + challenge + self.relay_name.encode()
        return {"address": self.address, "deviceId": device.device_id, "challenge": b64(challenge),
                "signature": b64(device.key.sign(message).signature)}

    def login(self, base_url: str, device: Device) -> str:
        r = requests.post(f"{base_url}/v1/auth/challenge", json={"address": self.address, "deviceId": device.device_id}, timeout=10)
        r.raise_for_status()
        challenge = base64.b64decode(r.json()["challenge"])
        r = requests.post(f"{base_url}/v1/auth/session", json=self.session_body(device, challenge), timeout=10)
        r.raise_for_status()
        return r.json()["token"]


def prekey_upload(device: Device, one_time: int = 2, one_time_pq: int = 1, first_id: int = 1) -> dict:
    """Signed X25519 prekey, last-resort ML-KEM-1024 prekey and one-time keys (PROTOCOL.md §3.3)."""
    from kyber_py.ml_kem import ML_KEM_1024

    def signed(type_byte: int, key_id: int, raw: bytes) -> dict:
        return {"id": key_id, "key": b64(raw), "signature": b64(device.key.sign(bytes([type_byte]) + raw).signature)}

    next_id = first_id
    def take() -> int:
        nonlocal next_id
        next_id += 1
        return next_id - 1

    pq = [ML_KEM_1024.keygen()[0] for _ in range(1 + one_time_pq)]
    return {
        "signedPreKey": signed(0x05, take(), PrivateKey.generate().public_key.encode()),
        "lastResortPQPreKey": signed(0x08, take(), pq[0]),
        "oneTimePreKeys": [{"id": take(), "key": b64(PrivateKey.generate().public_key.encode())} for _ in range(one_time)],
        "oneTimePQPreKeys": [signed(0x08, take(), k) for k in pq[1:]],
    }


class PushSocket:
    """A raw RFC 6455 client for GET /v1/push: the handshake, then reading the server's (unmasked) frames."""

    def __init__(self, host: str, port: int, token: str | None, timeout: float = 10.0) -> None:
        lines = ["GET /v1/push HTTP/1.1", f"Host: {host}:{port}", "Connection: Upgrade", "Upgrade: websocket",
                 "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {b64(os.urandom(16))}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, self.buffer = data.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; (-1, b"") when the connection closed."""
        while True:
            if len(self.buffer) >= 2:
                length, offset = self.buffer[1] & 0x7F, 2
                if length == 126 and len(self.buffer) >= 4:
                    length, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
                if length < 127 and len(self.buffer) >= offset + length:
                    frame, self.buffer = self.buffer[:offset + length], self.buffer[offset + length:]
                    return frame[0] & 0x0F, frame[offset:]
            chunk = self.sock.recv(4096)
            if not chunk:
                return -1, b""
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "PushSocket":
        return self

    def __exit__(self, *_) -> None:
        self.close()
