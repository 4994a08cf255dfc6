"""Three people chat in a group in the chat window, as the README's "Groups in the chat window" says: Alice,
Bob and Carol on one relay, each in a real window. Alice starts the group with /group new in her window; all
three see it in the roster (its name, member count and unread count) and read each other's messages under
their names; /members lists the members with their trust; /kick, /invite, /rename and /leave change the
group and every window shows the notices; a command that needs a group window says so in another."""
from __future__ import annotations

from tuihelpers import Pane


def window(binaries, tmux_socket, who):
    # No conversation named: the window opens on the console.
    return Pane(tmux_socket, who.address.split("@")[0], [str(binaries["parley"]), *who.args()], 110, 30)


def conversation(screen: str) -> str:
    """The window's right-hand side (what is beside the roster), row by row."""
    return "\n".join(line.split("│", 1)[-1] for line in screen.splitlines())


def test_three_people_chat_in_a_group(binaries, relays, account, tmux_socket):
    relay = relays("a")
    alice, bob, carol = account("alice", relay), account("bob", relay), account("carol", relay)
    alice.run("add-contact", bob.address)
    alice.run("add-contact", carol.address)
    # Each member's device has run parley once: that publishes the keys a group needs.
    bob.run("receive", "--timeout", "0")
    carol.run("receive", "--timeout", "0")

    a, b, c = (window(binaries, tmux_socket, who) for who in (alice, bob, carol))
    for pane in (a, b, c):
        pane.wait_text("[online]")

    # A group command outside a group's window says which window it needs.
    a.type("/members")
    a.wait_text("/members works in a group's window")

    # Alice starts the group in her window, which opens on it.
    a.type("/group new Climbing bob carol")
    a.wait_text("created Climbing with bob, carol")
    a.wait(("the group's window"), lambda s: "Climbing (3 members)" in s and "[Climbing]" in s)
    a.type("Saturday at 9?")
    a.wait_text("me: Saturday at 9? ✓")

    # Bob and Carol see it in the roster with its member count and one unread message, and open it by name.
    for pane in (b, c):
        pane.wait(("the group in the roster"), lambda s: "# Climbing" in s and "[3] (1)" in s)
        pane.type("/msg Climbing")
        pane.wait(("the group's window"), lambda s: "Climbing (3 members)" in s and "alice: Saturday at 9?" in s)

    # Everyone reads everyone, each message under its sender's name.
    b.type("Yes, north wall")
    c.type("I'll bring the rope")
    for pane in (a, b, c):
        pane.wait(("both answers"), lambda s: ("bob: Yes, north wall" in s or "me: Yes, north wall" in s)
                  and ("carol: I'll bring the rope" in s or "me: I'll bring the rope" in s))
    a.wait_text("bob: Yes, north wall")
    a.wait_text("carol: I'll bring the rope")
    b.wait_text("carol: I'll bring the rope")
    c.wait_text("bob: Yes, north wall")

    # Selection mode works in a group's window: Bob reacts to the newest message; Alice and Carol see it.
    b.keys("M-s")
    b.wait_text("[select:")
    b.keys("+")
    b.wait_text("[react:")
    b.type("👍")
    for pane in (a, c):
        pane.wait_text("👍 1")

    # /members: each account with its trust and devices, over the window; Esc closes it.
    a.type("/members")
    a.wait(("the members"), lambda s: "Members of Climbing: 3 accounts, 3 devices" in s and "· you" in s
           and "? unverified    1 device   bob@" in s and "? unverified    1 device   carol@" in s)
    a.keys("Escape")
    a.wait(("the members list closed"), lambda s: "Members of Climbing" not in s)

    # /kick: Carol is removed; Bob sees the notice, Carol's window says she is no longer a member and sends nothing.
    a.type("/kick carol")
    a.wait_text("removed carol from Climbing")
    a.wait_text("Climbing (2 members)")
    a.wait_text(f"{carol.address} is no longer in the group.")
    b.wait_text(f"{carol.address} is no longer in the group.")
    c.wait_text("You are no longer in the group.")
    c.wait_text("Climbing (no longer a member)")
    c.type("still here?")
    c.wait_text("you are no longer a member of Climbing")
    a.type("Carol cannot read this")
    b.wait_text("alice: Carol cannot read this")

    # /invite: Carol is back; she reads what comes after, not what was said while she was out.
    a.type("/invite carol")
    a.wait_text("invited carol to Climbing")
    b.wait_text(f"{carol.address} was added to the group.")
    c.wait_text("You were added to the group.")
    for pane in (a, b, c):
        pane.wait_text("Climbing (3 members)")
    a.type("Welcome back")
    c.wait_text("alice: Welcome back")
    assert "Carol cannot read this" not in c.screen()

    # /rename in Bob's window: every window shows the new name and who gave it.
    b.type("/rename Crag crew")
    b.wait_text("the group is now called Crag crew")
    b.wait_text("You renamed the group to “Crag crew”.")
    for pane in (a, c):
        pane.wait_text(f"{bob.address} renamed the group to “Crag crew”.")
    for pane in (a, b, c):
        pane.wait_text("Crag crew (3 members)")

    # /leave in Carol's window: she keeps the history and sends nothing more. MLS lets no member commit its
    # own removal: Alice's device (the lowest leaf left) commits it when it reads her request.
    c.type("/leave")
    c.wait_text("you left Crag crew")
    c.wait_text("You left the group.")
    c.wait_text("Crag crew (no longer a member)")
    c.wait(("the roster marking the group left"), lambda s: any("# Crag crew" in line and "[left]" in line for line in s.splitlines()))
    for pane in (a, b):
        pane.wait_text("Crag crew (2 members)")

    for pane in (a, b, c):
        pane.type("/quit")
        pane.wait_text("PARLEY-EXITED-0")
