"""What draws the eye, end to end: the mouse wheel, the bell and desktop notifications (checked in the raw
bytes the real `parley` binary writes to its terminal), and unread counts that outlive the process."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tuihelpers import Pane, wait_for

MORE = re.compile(r"↓ \d+ more")
OSC = re.compile(rb"\x1b\]([^\x07\x1b]*)(?:\x07|\x1b\\)")


def open_chat(tmux_socket, binaries, who, contact, width=110, height=34, extra=(), env=None, name=None):
    return Pane(tmux_socket, name or who.address.split("@")[0],
                [str(binaries["parley"]), "chat", contact.address, *who.args(), *extra], width, height, env)


def wheel(protocol: str, up: bool, x: int = 60, y: int = 10) -> str:
    """One wheel notch as the terminal reports it: button 64 is up, 65 down (xterm's encoding)."""
    button = 64 if up else 65
    if protocol == "sgr":  # SGR 1006: ESC [ < button ; x ; y M
        return f"\x1b[<{button};{x};{y}M"
    return "\x1b[M" + chr(32 + button) + chr(32 + x) + chr(32 + y)  # X10/normal: ESC [ M, then 32 + each value


@pytest.mark.parametrize("term, protocol", [("xterm-256color", "sgr"), ("tmux-256color", "x10")])
def test_mouse_wheel_scrolls_the_conversation(binaries, relays, account, tmux_socket, term, protocol):
    """The wheel scrolls up into older messages and back down, three lines a notch, in the mouse encoding
    the terminal's terminfo names (xterm-256color: SGR 1006 reports; tmux-256color: classic ESC [ M)."""
    relay = relays("a")
    alice, bob = account("alice", relay), account("bob", relay)
    alice.run("add-contact", bob.address)
    a = open_chat(tmux_socket, binaries, alice, bob, env={"TERM": term})
    a.wait_text("[online]")
    # The window asked the terminal for button reports (else a real terminal would send none).
    assert a.flag("mouse_standard_flag") == "1"
    assert a.flag("mouse_sgr_flag") == ("1" if protocol == "sgr" else "0")

    for n in range(1, 61):
        a.type(f"wheel line {n:02d}")
    a.wait("the last message sent", lambda s: re.search(r"wheel line 60 ✓", s))

    # One notch moves three lines; twenty-five reach the first message; as many down come back.
    a.send_raw(wheel(protocol, up=True))
    a.wait("one notch up", lambda s: "↓ 3 more" in s and "wheel line 57" in s and "wheel line 58" not in s)
    a.send_raw(wheel(protocol, up=False))
    a.wait("one notch down", lambda s: "wheel line 60" in s and not MORE.search(s))
    a.send_raw(wheel(protocol, up=True) * 25)
    screen = a.wait_text("wheel line 01")
    assert "wheel line 60" not in screen
    # The reports were taken as the wheel, not typed into the input line.
    assert "64;" not in screen and "M`" not in screen
    a.send_raw(wheel(protocol, up=False) * 25)
    a.wait("back at the newest message", lambda s: "wheel line 60" in s and not MORE.search(s))
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")


class RawOutput:
    """The bytes a pane's program writes, read in segments: each segment ends at a marker typed into the
    input line, whose echo comes after everything the program wrote before it."""

    def __init__(self, pane: Pane, path: Path):
        self.pane, self.path, self.offset = pane, path, 0
        self.markers = 0
        pane.record_output(path)

    def segment(self) -> bytes:
        self.markers += 1
        marker = f"zq{self.markers}zq"
        self.pane.type(marker, enter=False)

        def written():
            data = self.path.read_bytes() if self.path.exists() else b""
            return data if marker.encode() in data[self.offset:] else None
        data = wait_for(f"the marker {marker} in the raw output", written)
        end = data.index(marker.encode(), self.offset)
        part, self.offset = data[self.offset:end], end + len(marker)
        self.pane.keys("C-u")  # clear the marker from the input line again
        return part


def bells(output: bytes) -> int:
    """Bells outside escape sequences (an OSC sequence may itself end with BEL)."""
    return OSC.sub(b"", output).count(b"\x07")


def unread(screen: str, name: str) -> int:
    """The unread count the roster shows for a contact (0 when none)."""
    for line in screen.splitlines():
        match = re.search(rf"[?✔!✖] {name}@\S*\s+\((\d+)\)", line.split("│")[0])
        if match:
            return int(match.group(1))
    return 0


def setup_three(relays, account):
    relay = relays("a")
    alice, bob, carol = account("alice", relay), account("bob", relay), account("carol", relay)
    for peer in (bob, carol):
        alice.run("add-contact", peer.address)
        peer.run("add-contact", alice.address)
    return alice, bob, carol


@pytest.mark.parametrize("desktop, prefix", [("osc777", b"777;notify;Parley;New message from "),
                                             ("osc9", b"9;Parley: new message from ")])
def test_new_message_rings_and_notifies_naming_only_the_sender(binaries, relays, account, tmux_socket, tmp_path,
                                                               desktop, prefix):
    alice, bob, carol = setup_three(relays, account)
    config = tmp_path / "config.toml"
    config.write_text(f'notify = "{desktop}"\n')
    a = open_chat(tmux_socket, binaries, alice, carol, extra=("--config", str(config)))
    a.wait_text("[online]")
    out = RawOutput(a, tmp_path / "alice.out")
    out.segment()

    # Bob writes while Alice looks at Carol's conversation: a bell, and one notification naming Bob only.
    bob.run("send", alice.address, "first secret words")
    a.wait("bob's unread count", lambda s: unread(s, "bob") == 1)
    part = out.segment()
    assert bells(part) >= 1
    notes = OSC.findall(part)
    assert notes == [prefix + bob.address.encode()]
    assert b"secret" not in b"".join(notes)

    # A message in the focused conversation is on screen already: no bell, no notification.
    carol.run("send", alice.address, "carol says hi")
    a.wait_text("carol: carol says hi")
    part = out.segment()
    assert bells(part) == 0 and OSC.findall(part) == []


def test_notify_per_contact_and_unread_counts_across_restarts(binaries, relays, account, tmux_socket, tmp_path):
    alice, bob, carol = setup_three(relays, account)
    config = tmp_path / "config.toml"
    config.write_text('notify = "osc777"\n')
    b = open_chat(tmux_socket, binaries, bob, alice)
    b.wait_text("[online]")
    a = open_chat(tmux_socket, binaries, alice, carol, extra=("--config", str(config)))
    a.wait_text("[online]")
    out = RawOutput(a, tmp_path / "alice-1.out")
    out.segment()

    b.type("first secret words")
    a.wait("bob's unread count", lambda s: unread(s, "bob") == 1)
    part = out.segment()
    assert bells(part) >= 1 and OSC.findall(part) == [b"777;notify;Parley;New message from " + bob.address.encode()]

    # /notify bob bell: the bell only.
    a.type("/notify bob bell")
    a.wait_text(f"notifications from {bob.address}: bell")
    out.segment()
    b.type("second secret words")
    a.wait("bob's unread count", lambda s: unread(s, "bob") == 2)
    part = out.segment()
    assert bells(part) >= 1 and OSC.findall(part) == []

    # /notify bob off: silence, for Bob only.
    a.type("/notify bob off")
    a.wait_text(f"notifications from {bob.address}: off")
    out.segment()
    b.type("third secret words")
    a.wait("bob's unread count", lambda s: unread(s, "bob") == 3)
    part = out.segment()
    assert bells(part) == 0 and OSC.findall(part) == []
    # …while Carol, not looked at now (/set lists the settings on the console), still rings.
    a.type("/set")
    a.wait_text("keymap = emacs")
    out.segment()
    carol.run("send", alice.address, "carol's secret words")
    a.wait("carol's unread count", lambda s: unread(s, "carol") == 1)
    part = out.segment()
    assert bells(part) >= 1 and OSC.findall(part) == [b"777;notify;Parley;New message from " + carol.address.encode()]

    # A restart: the count comes back from the store, and Bob stays silenced (the setting is stored too).
    a.type("/quit")
    a.wait_text("PARLEY-EXITED-0")
    a.kill()
    a = open_chat(tmux_socket, binaries, alice, carol, extra=("--config", str(config)))
    a.wait("the restored unread count", lambda s: "[online]" in s and unread(s, "bob") == 3)
    out = RawOutput(a, tmp_path / "alice-2.out")
    out.segment()
    b.type("fourth secret words")
    a.wait("bob's unread count", lambda s: unread(s, "bob") == 4)
    part = out.segment()
    assert bells(part) == 0 and OSC.findall(part) == []

    # Reading the conversation clears the count, in the store too: Bob sees his messages read, and the
    # next start shows no count.
    a.type("/msg bob")
    a.wait("bob's conversation read", lambda s: "bob: fourth secret words" in s and unread(s, "bob") == 0)
    b.wait("the read mark", lambda s: "fourth secret words ✓✓ read" in s)
    a.type("/quit")
    a.wait_text("PARLEY-EXITED-0")
    a.kill()
    a = open_chat(tmux_socket, binaries, alice, carol, extra=("--config", str(config)))
    screen = a.wait("the roster", lambda s: "[online]" in s and "bob@" in s)
    assert unread(screen, "bob") == 0
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")
