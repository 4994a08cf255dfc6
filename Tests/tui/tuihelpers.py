"""Helpers for driving the real `parley` binary in tmux against real relays (see README.md)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = float(os.environ.get("PARLEY_TUI_DEADLINE", "45"))


def built(name: str) -> Path:
    for config in ("debug", "release"):
        path = ROOT / ".build" / config / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise AssertionError(f"{name} not built: run `swift build` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, condition, deadline: float = DEADLINE, every: float = 0.1):
    """Polls `condition` until it returns something truthy; fails with `what` and the last value."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = condition()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Relay:
    def __init__(self, binary: Path, directory: Path, port: int | None = None, extra: tuple[str, ...] = ()):
        self.binary, self.directory, self.extra = binary, directory, extra
        self.port = port or free_port()
        self.name = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "relay.out", "w")
        self.process = subprocess.Popen(
            [str(self.binary), "serve", "--listen", self.name, "--data", str(self.directory / "data"), "--log-level", "error", *self.extra],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for("the relay's banner",
                 lambda: "serving" in (self.directory / "relay.out").read_text(errors="replace"))
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def wipe(self):
        """Forget every account: the relay is replaced, as when a server is reinstalled."""
        self.stop()
        shutil.rmtree(self.directory / "data", ignore_errors=True)


class Account:
    def __init__(self, parley: Path, name: str, relay: Relay, directory: Path):
        self.parley, self.relay = parley, relay
        directory.mkdir(parents=True, exist_ok=True)
        self.address = f"{name}@{relay.name}"
        self.home = directory / f"{name}-home"
        self.key = directory / f"{name}.key"

    def args(self) -> list[str]:
        return ["--home", str(self.home), "--key-file", str(self.key)]

    def run(self, *command: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.parley), *command, *self.args()], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "LANG": "C.UTF-8"})
        assert result.returncode == 0, f"parley {' '.join(command)}: {result.returncode} {result.stderr}"
        return result

    def init(self):
        self.run("init", self.address)
        return self


class Pane:
    """One tmux session on a private server socket, running one command at a fixed size."""

    def __init__(self, socket_name: str, name: str, command: list[str], width: int = 110, height: int = 34,
                 env: dict[str, str] | None = None):
        self.socket, self.name = socket_name, name
        environment = {"LANG": "C.UTF-8", "TERM": "xterm-256color", **(env or {})}
        exports = " ".join(f"{k}={quote(v)}" for k, v in environment.items())
        # The shell line after the command shows how it ended, and keeps the pane open to look at.
        line = f"env -u LINES -u COLUMNS {exports} {' '.join(quote(c) for c in command)}; echo PARLEY-EXITED-$?; sleep 600"
        self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), line)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str):
        self.tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str, enter: bool = True):
        self.tmux("send-keys", "-t", self.name, "-l", text)
        if enter:
            self.keys("Enter")

    def wait(self, what: str, predicate, deadline: float = DEADLINE) -> str:
        def check():
            screen = self.screen()
            return screen if predicate(screen) else None
        try:
            return wait_for(what, check, deadline)
        except AssertionError:
            size = self.tmux("display", "-p", "-t", self.name, "#{window_width}x#{window_height}").strip()
            raise AssertionError(f"timed out waiting for {what} in {self.name} ({size}); screen:\n{self.screen()}") from None

    def wait_text(self, text: str, deadline: float = DEADLINE) -> str:
        return self.wait(repr(text), lambda s: text in s, deadline)

    def send_raw(self, data: str):
        """Bytes as a terminal would send them (mouse reports, for one), written to the program's input as is."""
        self.tmux("send-keys", "-t", self.name, "-l", data)

    def record_output(self, path: Path):
        """From now on every byte the program writes to the terminal is appended to `path` (bell, OSC…)."""
        self.tmux("pipe-pane", "-o", "-t", self.name, f"cat >> {quote(str(path))}")

    def flag(self, name: str) -> str:
        """A tmux format variable of the pane, e.g. mouse_sgr_flag."""
        return self.tmux("display", "-p", "-t", self.name, "#{" + name + "}").strip()

    def resize(self, width: int, height: int):
        self.tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def kill(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-session", "-t", self.name], capture_output=True)


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


DIGIT_ROW = re.compile(r"^\s*(\d{5}) (\d{5}) (\d{5}) (\d{5})\s*$")


def safety_digits(screen: str) -> str:
    """The 60 digits from a verification screen (three rows of four groups)."""
    rows = []
    for line in screen.splitlines():
        # The roster pane sits left of the verification screen: look at the part after its border.
        part = line.split("│", 1)[-1]
        match = DIGIT_ROW.match(part)
        if match:
            rows.append("".join(match.groups()))
    return "".join(rows)
