"""One chat window per home: a second window, or `parley receive`, on the same home is refused by name."""
from __future__ import annotations

import re
import subprocess

from tuihelpers import Pane


def test_second_window_on_a_home_is_refused(binaries, relays, account, tmux_socket):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    first = Pane(tmux_socket, "first", [str(binaries["parley"]), "chat", bob.address, *alice.args()])
    first.wait_text("[online]")

    second = Pane(tmux_socket, "second", [str(binaries["parley"]), "chat", bob.address, *alice.args()])
    screen = second.wait_text("PARLEY-EXITED-1")
    match = re.search(r"parley is already running on this home \(chat window, pid (\d+)\)", screen)
    assert match, screen

    receive = subprocess.run([str(binaries["parley"]), "receive", "--timeout", "0", *alice.args()],
                             capture_output=True, text=True, timeout=60)
    assert receive.returncode == 1, receive
    assert f"(chat window, pid {match.group(1)})" in receive.stderr, receive.stderr

    # The first window is undisturbed (no second push connection flapped it offline), and once it quits
    # the home is free again.
    assert "[online]" in first.screen()
    first.type("/quit")
    first.wait_text("PARLEY-EXITED-0")
    alice.run("receive", "--timeout", "0")
