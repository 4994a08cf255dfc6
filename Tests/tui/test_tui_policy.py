"""The administrator's policy (parley-policy(5)) in the chat window: the real `parley` binary in tmux."""
from __future__ import annotations

from tuihelpers import Pane


def test_policy_refuses_unverified_contacts_blocked_files_and_other_relays(binaries, relays, account, tmux_socket, tmp_path):
    relay = relays("a")
    alice = account("alice", relay)
    bob = account("bob", relay)
    alice.run("add-contact", bob.address)
    policy = tmp_path / "policy.toml"
    policy.write_text(f'require_verified = true\nattachments = "block"\nallowed_relays = ["{relay.name}"]\n')
    note = tmp_path / "note.txt"
    note.write_text("a note\n")

    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 200, 34,
             {"PARLEY_POLICY": str(policy)})
    a.wait_text("[online]")
    # Bob is not verified: the message is not sent, and the window says why and how to verify.
    a.type("hello Bob")
    a.wait_text("not sent: policy allows only verified contacts; /verify first")
    # Files are blocked; a contact on another relay is refused.
    a.type(f"/attach {note}")
    a.wait_text("not sent: forbidden by policy: attachments are blocked")
    a.type("/add carol@relay.elsewhere.example:7000")
    a.wait_text("cannot add carol@relay.elsewhere.example:7000: forbidden by policy: relay.elsewhere.example:7000 is not one")
    assert "hello Bob ✓" not in a.screen()
    a.kill()

    # A malformed policy stops the window before it opens, with the file, the line and the reason.
    policy.write_text("require_verified = maybe\n")
    broken = Pane(tmux_socket, "broken", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 140, 20,
                  {"PARLEY_POLICY": str(policy)})
    screen = broken.wait_text("PARLEY-EXITED-6")
    assert f"the policy file {policy}, line 1:" in screen.replace("\n", ""), screen
