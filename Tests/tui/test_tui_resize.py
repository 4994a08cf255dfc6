"""The chat window follows the terminal's size from the first resize on."""
from __future__ import annotations

from tuihelpers import Pane


def test_first_shrink_is_redrawn(binaries, relays, account, tmux_socket):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 120, 36)
    a.wait_text("[online]")
    a.type("a line to see after the shrink")
    a.wait_text("a line to see after the shrink")

    # The very first resize of the session, smaller in both directions: tmux crops the old picture (the
    # status bar and input line were on rows 35 and 36), so only a redraw at 80×24 brings them back.
    a.resize(80, 24)

    def redrawn(screen: str) -> bool:
        lines = screen.splitlines()
        return (len(lines) <= 24 and all(len(line) <= 80 for line in lines)
                and any("[online]" in line for line in lines[-3:])
                and "a line to see after the shrink" in screen)
    a.wait("the window redrawn at 80x24 without C-l", redrawn, deadline=10)
