"""Finding one's way in the chat window (#24, features 6, 7 and 9): the "new messages" line and M-u, search
results that open the conversation at the message, and command output over the window that Esc closes."""
from __future__ import annotations

import re

from tuihelpers import Pane

FILLER = "\n".join(f"filler line {n}" for n in range(1, 41))


def two_people(relays, account):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    return alice, bob


def window(binaries, tmux_socket, who, width=110, height=30):
    # No conversation named: the window opens on the console.
    return Pane(tmux_socket, who.address.split("@")[0], [str(binaries["parley"]), *who.args()], width, height)


def frame_rows(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if "┌─" in line or "└─" in line]


def test_new_messages_line_and_jump(binaries, relays, account, tmux_socket):
    alice, bob = two_people(relays, account)
    a = window(binaries, tmux_socket, alice)
    a.wait_text("[online]")
    bob.run("send", alice.address, "read before")
    a.wait_text("(1)")
    a.type("/msg bob")
    a.wait_text("bob: read before")
    a.keys("C-p")  # back to the console: the conversation was read
    a.wait_text("console — type /help")

    bob.run("send", alice.address, "first unread")
    bob.run("send", alice.address, "second unread")
    a.wait_text("(2)")
    a.type("/msg bob")

    def marker_between(screen: str) -> bool:
        lines = screen.splitlines()
        at = [i for i, line in enumerate(lines) if "new messages" in line]
        return (len(at) == 1 and "read before" in lines[at[0] - 1] and "first unread" in lines[at[0] + 1])
    a.wait("the new messages line above the first unread message", marker_between)

    # Left and opened again: nothing is unread now, so no line.
    a.keys("C-p")
    a.wait_text("console — type /help")
    a.keys("C-n")
    a.wait("bob's window without the line", lambda s: "second unread" in s and "new messages" not in s)

    # More unread than a screen holds: the line is above the screen until M-u brings it to the top.
    a.keys("C-p")
    a.wait_text("console — type /help")
    bob.run("send", alice.address, "start of the long part")
    bob.run("send", alice.address, FILLER)
    a.wait_text("(2)")
    a.keys("C-n")
    a.wait("the newest lines", lambda s: "filler line 40" in s and "new messages" not in s)
    a.keys("M-u")

    def jumped(screen: str) -> bool:
        lines = screen.splitlines()
        return len(lines) > 2 and "new messages" in lines[1] and "start of the long part" in lines[2] and "more" in screen
    a.wait("the new messages line at the top after M-u", jumped)
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")


def test_search_opens_the_conversation_at_the_message(binaries, relays, account, tmux_socket):
    alice, bob = two_people(relays, account)
    bob.run("send", alice.address, "the needle is in here")
    bob.run("send", alice.address, FILLER)
    bob.run("send", alice.address, "the haystack ends")
    alice.run("receive", "--timeout", "0")
    a = window(binaries, tmux_socket, alice)
    a.wait_text("[online]")
    a.type("/search NEEDLE")
    screen = a.wait("the result list", lambda s: "Search: NEEDLE — 1 result" in s and "the needle is in here" in s)
    assert "▶ bob" in screen
    a.keys("Enter")

    def opened(screen: str) -> bool:
        return ("[bob]" in screen and "bob: the needle is in here" in screen and "more" in screen
                and "Search:" not in screen and "the haystack ends" not in screen)
    a.wait("bob's conversation scrolled to the message", opened)
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")


def test_help_over_the_window_closes_with_escape_and_follows_a_resize(binaries, relays, account, tmux_socket):
    alice, bob = two_people(relays, account)
    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 120, 36)
    a.wait_text("[online]")
    a.type("kept under the overlay")
    a.wait_text("me: kept under the overlay")
    a.type("/help")
    screen = a.wait("the help overlay", lambda s: "┌─ Help" in s and "/verify [CONTACT] [DIGITS]" in s)
    assert "me: kept under the overlay" not in screen and "console — type /help" not in screen
    assert re.search(r"Esc closes 1–\d+ of \d+", screen), "the help fits on one screen: nothing to scroll"
    a.keys("End")
    a.wait("the end of the help", lambda s: "/quit" in s and re.search(r"Esc closes ([2-9]|\d\d+)–(\d+) of \2 ", s))

    # Resized with the overlay open: the frame is drawn again at 80x24, inside the window.
    a.resize(80, 24)

    def redrawn(screen: str) -> bool:
        lines = screen.splitlines()
        frame = frame_rows(screen)
        return (len(lines) <= 24 and all(len(line) <= 80 for line in lines) and len(frame) == 2
                and frame[0].rstrip().endswith("┐") and frame[1].rstrip().endswith("┘")
                and any("[online]" in line for line in lines[-3:]))
    a.wait("the overlay redrawn at 80x24", redrawn, deadline=10)

    a.keys("Escape")
    a.wait("the conversation again", lambda s: "┌─ Help" not in s and "me: kept under the overlay" in s)
    a.type("/info")
    a.wait("the info overlay", lambda s: "┌─ Info" in s and f"You are {alice.address}" in s)
    a.keys("Escape")
    a.wait("the info overlay closed", lambda s: "┌─ Info" not in s and "me: kept under the overlay" in s)
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")
