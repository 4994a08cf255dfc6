"""Disappearing messages in the chat window: /disappear on one side, the title and the notice on both, the
message gone from both screens when its timer runs out, and the policy's refusal. The real `parley` in tmux."""
from __future__ import annotations

from tuihelpers import Pane


def chat(tmux_socket, binaries, me, peer, env=None, name=None):
    return Pane(tmux_socket, name or me.address.split("@")[0], [str(binaries["parley"]), "chat", peer.address, *me.args()],
                160, 30, env or {})


def test_disappear_sets_the_timer_on_both_sides_and_messages_go(binaries, relays, account, tmux_socket, tmp_path):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    a = chat(tmux_socket, binaries, alice, bob)
    b = chat(tmux_socket, binaries, bob, alice)
    a.wait_text("[online]")
    b.wait_text("[online]")

    a.type("/disappear 5s")
    a.wait_text("You set disappearing messages to 5s")
    a.wait_text("disappears after 5s")
    b.wait_text(f"{alice.address} set disappearing messages to 5s")
    b.wait_text("disappears after 5s")

    a.type("this one will vanish")
    b.wait_text("this one will vanish")
    # Five seconds after each side stored it, both windows have dropped it (and the stores deleted it).
    a.wait("gone on Alice's screen", lambda s: "this one will vanish" not in s)
    b.wait("gone on Bob's screen", lambda s: "this one will vanish" not in s)

    b.type("/disappear off")
    a.wait_text(f"{bob.address} turned disappearing messages off")
    a.wait("the title without a timer", lambda s: "disappears after" not in s)
    a.kill()
    b.kill()

    # Under min_disappearing the window refuses off and longer timers, saying why.
    policy = tmp_path / "policy.toml"
    policy.write_text('min_disappearing = "1h"\n')
    managed = chat(tmux_socket, binaries, alice, bob, {"PARLEY_POLICY": str(policy)}, name="managed")
    managed.wait_text("[online]")
    managed.type("/disappear off")
    managed.wait_text("forbidden by policy: disappearing messages cannot be turned off")
    managed.type("/disappear 2h")
    managed.wait_text("longer than 1h, the longest allowed (min_disappearing)")
    managed.kill()
