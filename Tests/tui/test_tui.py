"""The chat window end to end: the real `parley` binary in tmux, real relays, two people."""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from tuihelpers import Pane, safety_digits, wait_for


def open_chat(tmux_socket, binaries, who, contact, width=110, height=34, extra=()):
    return Pane(tmux_socket, who.address.split("@")[0],
                [str(binaries["parley"]), "chat", contact.address, *who.args(), *extra], width, height)


def test_two_people_chat_scroll_resize_verify_theme_and_key_change(binaries, relays, account, tmux_socket, tmp_path):
    relay_a, relay_b = relays("a"), relays("b")
    alice = account("alice", relay_a)
    bob = account("bob", relay_b)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)

    a = open_chat(tmux_socket, binaries, alice, bob)
    b = open_chat(tmux_socket, binaries, bob, alice)
    a.wait_text("[online]")
    b.wait_text("[online]")

    # A message arrives, and its delivery state advances on the sender's screen to read (Bob has it open).
    a.type("Hello Bob, 漢字 and 😀 work too")
    b.wait_text("alice: Hello Bob, 漢字 and 😀 work too")
    a.wait("the read mark", lambda s: "Hello Bob, 漢字 and 😀 work too ✓✓ read" in s)
    b.type("Hi Alice!")
    a.wait_text("bob: Hi Alice!")

    # Scrolling: enough messages to fill more than a screen, then page up and back down.
    for n in range(1, 41):
        b.type(f"numbered line {n:02d}")
    a.wait_text("numbered line 40")
    a.keys("PageUp")
    screen = a.wait("scrolled up", lambda s: "more" in s and "numbered line 40" not in s)
    assert re.search(r"↓ \d+ more", screen)
    a.keys("PageUp", "PageUp")
    a.wait_text("Hi Alice!")
    a.keys("PageDown", "PageDown", "PageDown", "PageDown")
    a.wait("back at the bottom", lambda s: "numbered line 40" in s and "more" not in s)

    # Resize at any moment: narrower (the roster hides below 60 columns), then back.
    a.resize(50, 20)
    screen = a.wait("the narrow layout", lambda s: "numbered line 40" in s and "Contacts" not in s)
    assert all(len(line) <= 50 for line in screen.splitlines())
    a.resize(110, 34)
    a.wait("the wide layout", lambda s: "Contacts" in s and "numbered line 40" in s)

    # Verification: both screens show the same 60 digits and a QR code; Alice confirms with Bob's digits.
    a.type("/verify")
    screen_a = a.wait("Alice's safety number", lambda s: len(safety_digits(s)) == 60)
    assert "▀" in screen_a or "▄" in screen_a or "█" in screen_a
    b.type("/verify")
    screen_b = b.wait("Bob's safety number", lambda s: len(safety_digits(s)) == 60)
    assert safety_digits(screen_a) == safety_digits(screen_b)
    b.keys("Escape")
    b.wait("Bob's verification screen closed", lambda s: "Safety number with" not in s)
    a.keys("Escape")
    a.wait("the verification screen closed", lambda s: "Safety number with" not in s)
    a.type("/verify 12345")  # not a safety number at all: said so, nothing changes
    a.wait_text("that is not a safety number")
    a.type(f"/verify bob {safety_digits(screen_b)}")
    a.wait("the verified badge", lambda s: "verified ✔" in s or "✔ verified" in s)

    # Themes switch live.
    a.type("/theme mono")
    a.wait_text("theme: mono")
    a.type("/theme nosuchtheme")
    a.wait_text("no theme named 'nosuchtheme'")

    # A file: encrypted, uploaded, announced in the conversation, saved and checked on the other side.
    document = tmp_path / "notes.txt"
    document.write_text("attachment body ✓\n" * 100)
    a.type(f"/attach {document} the notes")
    b.wait_text("📎 notes.txt (1 KB)")
    saved = tmp_path / "saved.txt"
    b.type(f"/save {saved}")
    b.wait_text("saved the newest attachment, notes.txt")
    wait_for("the saved file", lambda: saved.exists() and saved.read_bytes() == document.read_bytes())

    # Key change: Bob's relay is reinstalled and bob@… registered again with a new key; his first
    # message shows Alice a warning, and sending to him stops.
    b.type("/quit")
    b.wait_text("PARLEY-EXITED-0")
    relay_b.wipe()
    relays("b2", port=relay_b.port)
    new_bob = account("bob", relay_b, directory=tmp_path / "new")
    new_bob.run("add-contact", alice.address)
    new_bob.run("send", alice.address, "this is bob again")
    a.wait("the key-change warning and the message", lambda s: "KEY CHANGED" in s and "identity key of" in s
           and "bob: this is bob again" in s)
    a.type("still you?")
    a.wait("sending stopped", lambda s: "not sent" in s)

    a.type("/quit")
    a.wait_text("PARLEY-EXITED-0")


def test_help_completion_and_vi_keymap(binaries, relays, account, tmux_socket):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), *alice.args(), "--keymap", "vi"], 100, 40)
    a.wait_text("[online]")
    a.type("/help")
    a.wait_text("/verify [CONTACT] [DIGITS]")
    # The help is shown over the window; End shows its last lines.
    a.keys("End")
    a.wait("the end of the help", lambda s: "/theme [NAME]" in s and "/quit" in s)
    # Tab completes a command, then a contact.
    a.type("/ms", enter=False)
    a.keys("Tab")
    a.type("b", enter=False)
    a.keys("Tab")
    a.wait_text("/msg bob@" + relay.name)
    a.keys("Enter")
    a.wait("bob's window", lambda s: "[bob]" in s)
    # vi: Escape, then `0 D` clears the line, `i` inserts again.
    a.type("abc def", enter=False)
    a.keys("Escape")
    a.wait_text("[vi:N]")
    a.keys("0", "D", "i")
    a.type("from vi mode")
    a.wait("the message in the pane", lambda s: re.search(r"me: from vi mode ✓", s))
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")


def test_demo_first_minute(binaries, tmux_socket, tmp_path):
    """What a newcomer sees: the guide's greeting, an answer, the verification screen, a clean exit."""
    d = Pane(tmux_socket, "demo", [str(binaries["parley"]), "demo"], 110, 40, env={"TMPDIR": str(tmp_path)})
    d.wait_text("Hi! I'm the Parley guide")
    d.wait_text("[online]")
    d.type("hello")
    d.wait_text("Your message reached me encrypted")
    d.type("how do I verify?")
    d.wait_text("On my side our safety number is")
    d.type("/verify")
    screen = d.wait("the verification screen", lambda s: len(safety_digits(s)) == 60)
    digits = safety_digits(screen)
    d.keys("Escape")
    d.wait("the verification screen closed", lambda s: "Safety number with" not in s)
    d.type(f"/verify guide {digits}")
    d.wait("the verified badge", lambda s: "✔ verified" in s)
    d.type("/quit")
    d.wait_text("PARLEY-EXITED-0")
    wait_for("the demo directory removed", lambda: not any(p.name.startswith("parley-demo-") for p in tmp_path.iterdir()))


def parley_pid(pane: Pane) -> int:
    """The parley process in a pane (the pane's shell runs `env …`, which execs parley)."""
    shell = pane.tmux("display", "-p", "-t", pane.name, "#{pane_pid}").strip()
    return int(wait_for("the parley process", lambda: subprocess.run(["pgrep", "-P", shell], capture_output=True,
                                                                      text=True).stdout.split()[0:1])[0])


@pytest.mark.parametrize("signal_number, status", [(signal.SIGTERM, 0), (signal.SIGHUP, 0), (signal.SIGABRT, 128 + signal.SIGABRT)])
def test_terminal_is_restored_on_signals(binaries, relays, account, tmux_socket, signal_number, status):
    relay = relays("a")
    alice = account("alice", relay)
    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), *alice.args()], 90, 24)
    a.wait_text("[online]")
    os.kill(parley_pid(a), signal_number)
    screen = a.wait_text(f"PARLEY-EXITED-{status}")
    # Back on the normal screen: the chat window (drawn on the alternate screen) is gone, the cursor shows.
    assert "Contacts" not in screen and "[online]" not in screen
    assert a.tmux("display", "-p", "-t", a.name, "#{alternate_on}#{cursor_flag}").strip() == "01"


def test_a_message_the_relay_refuses_is_marked_failed_and_does_not_block_the_next(binaries, relays, account, tmux_socket):
    # The relay takes envelopes of at most 4096 bytes: a 5000-character text passes the client's own limit
    # (set for the usual 96 KiB) and is refused with 413 for good.
    relay = relays("small", extra=("--max-envelope-bytes", "4096"))
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    a = open_chat(tmux_socket, binaries, alice, bob)
    b = open_chat(tmux_socket, binaries, bob, alice)
    a.wait_text("[online]")
    b.wait_text("[online]")

    a.type("L" * 5000)
    a.wait("the refusal on the status line", lambda s: "not sent: the relay refused the request (413)" in s)
    a.wait_text("✗ failed")
    a.type("after the refused one")
    b.wait_text("alice: after the refused one")

    a.type("/retry")
    a.wait("the retry refused again", lambda s: "not sent" in s and "413" in s)
    a.type("/delete")
    a.wait_text("deleted the failed message")
    a.wait("the failed message gone", lambda s: "✗ failed" not in s and "after the refused one" in s)

