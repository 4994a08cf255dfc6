"""Selection mode and message actions in the chat window, Alice and Bob each in a real window on one relay:
moving through messages, reply (quoted on both sides), react, edit, delete for everyone (after y), save
from the selection, Esc leaving; each seen in the other window and in the window of Alice's second device."""
from __future__ import annotations

import json
import os
import subprocess

from tuihelpers import Account, Pane, wait_for


def link_second_device(binaries, existing: Account, directory) -> Account:
    """A second device of `existing`'s account, linked as a user would: `parley link` on the new home prints
    the code, `parley devices add CODE` on the existing one answers it."""
    second = Account(binaries["parley"], existing.address.split("@")[0], existing.relay, directory)
    link = subprocess.Popen([str(binaries["parley"]), "link", existing.relay.name, "--json", "--timeout", "120", *second.args()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "LANG": "C.UTF-8"})
    code = json.loads(link.stdout.readline())["code"]
    existing.run("devices", "add", code, "--name", "second")
    assert link.wait(timeout=120) == 0, link.stderr.read()
    return second


def test_selection_mode_reply_react_edit_delete_and_save(binaries, relays, account, tmux_socket, tmp_path):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    alice2 = link_second_device(binaries, alice, tmp_path / "second")
    bob.run("send", alice.address, "Lunch at noon?")
    bob.run("send", alice.address, "Or one?")

    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()])
    a.wait_text("Or one?")
    b = Pane(tmux_socket, "bob", [str(binaries["parley"]), "chat", alice.address, *bob.args()])
    b.wait_text("[online]")

    # Selection mode: M-s selects the newest message, Up the one before; Esc leaves.
    a.keys("M-s")
    a.wait_text("[select:")
    a.keys("Up")
    a.keys("Escape")
    a.wait(("the selection prompt gone"), lambda s: "[select:" not in s)

    # A draft in the input line survives a reaction prompt that is cancelled.
    a.type("half-typed draft", enter=False)
    a.keys("M-s")
    a.keys("+")
    a.wait_text("[react:")
    a.keys("Escape")
    a.wait_text("[bob] half-typed draft")
    a.keys("C-u")
    a.wait(("the input line cleared"), lambda s: "half-typed draft" not in s)

    # React to "Lunch at noon?" (the second newest): Bob sees it under his message with its count.
    a.keys("M-s")
    a.wait_text("[select:")
    a.keys("Up")
    a.keys("+")
    a.wait_text("[react:")
    a.type("👍")
    b.wait_text("👍 1")

    # Reply to it: the quote above the reply in both windows.
    a.keys("M-s")
    a.keys("Up")
    a.keys("r")
    a.wait_text("[reply to")
    a.type("yes, at noon")
    a.wait_text("┌ bob: Lunch at noon?")
    b.wait_text("┌ me: Lunch at noon?")
    b.wait_text("yes, at noon")

    # Edit the reply (the newest message): the input holds its text; the new one is shown as edited.
    a.keys("M-s")
    a.keys("e")
    a.wait_text("[edit] yes, at noon")
    a.keys("C-u")
    a.type("yes, at 12:30")
    b.wait_text("yes, at 12:30 (edited)")
    a.wait_text("yes, at 12:30 (edited)")
    # h shows the earlier texts of the selected (edited) message in the console.
    a.keys("M-s")
    a.keys("h")
    a.wait_text("the earlier texts are in the console")
    a.keys("Escape")
    a.wait(("the selection prompt gone"), lambda s: "[select:" not in s)
    a.keys("C-p")
    a.wait(("the earlier texts"), lambda s: "Earlier texts of your message" in s and "yes, at noon" in s and "now: yes, at 12:30" in s)
    a.keys("C-n")
    a.wait_text("[bob]")

    # Bob's message cannot be edited or deleted by Alice.
    a.keys("M-s")
    a.keys("Up", "Up")
    a.keys("e")
    a.wait_text("only your own messages can be edited")
    a.keys("Escape")
    # (Escape and a letter typed at once would read as Alt and the letter: wait for the prompt first.)
    a.wait(("the selection prompt gone"), lambda s: "[select:" not in s)

    # Delete for everyone, after y; n keeps it.
    a.type("sent by mistake")
    b.wait_text("sent by mistake")
    a.keys("M-s")
    a.keys("d")
    a.wait_text("[delete for everyone? y/n]")
    a.keys("n")
    a.wait_text("not deleted")
    a.keys("M-s")
    a.keys("d")
    a.wait_text("[delete for everyone? y/n]")
    a.keys("y")
    b.wait(("the message replaced by deleted"), lambda s: "🗑 deleted" in s and "sent by mistake" not in s)
    a.wait_text("🗑 deleted")

    # Bob reacts to Alice's reply: Alice sees it; and Bob's reaction replaces his earlier one.
    b.keys("M-s")
    b.keys("Up")
    b.keys("+")
    b.type("🎉")
    a.wait_text("🎉 1")

    # Save from the selection: s puts the /save line for that attachment in the input line.
    document = tmp_path / "notes.txt"
    document.write_text("attachment body ✓\n" * 50)
    bob.run("send", alice.address, "the notes", "--attachment", str(document))
    a.wait_text("notes.txt")
    a.type("after the file")
    b.wait_text("after the file")
    a.keys("M-s")
    a.keys("Up")
    a.keys("s")
    a.wait_text("[bob] /save 1")
    saved = tmp_path / "saved.txt"
    a.type(str(saved))
    a.wait_text("saved the newest attachment, notes.txt")
    wait_for("the saved file", lambda: saved.exists() and saved.read_bytes() == document.read_bytes())

    # Alice's second device catches up: the reply with its quote, both reactions, the edit, the delete.
    a2 = Pane(tmux_socket, "alice2", [str(binaries["parley"]), "chat", bob.address, *alice2.args()])
    a2.wait(("everything on the second device"),
            lambda s: all(text in s for text in ["┌ bob: Lunch at noon?", "👍 1", "🎉 1", "yes, at 12:30 (edited)", "🗑 deleted"])
            and "sent by mistake" not in s)

    for pane in (a, b, a2):
        pane.type("/quit")
        pane.wait_text("PARLEY-EXITED-0")
