"""Attachments, links and desktop notifications end to end: /attachments and /save N over every file of a
conversation, /open handing a private decrypted copy or a link to a fake xdg-open, a link drawn underlined,
and a notification through a fake notify-send. The fake programs on PATH write their argv to a file."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tuihelpers import Pane, wait_for

RECORDER = """#!/bin/sh
# Appends this call's argv (NUL after each argument, a line end after the call) to {log}.
{{ for a in "$0" "$@"; do printf '%s\\0' "$a"; done; printf '\\n'; }} >> {log}.part
{extra}
mv {log}.part {log}.ready && cat {log}.ready >> {log} && rm {log}.ready
"""

# xdg-open also keeps what it was given, and the modes of the file and its directory, before Parley
# removes its private copy.
KEEP = 'if [ -f "$1" ]; then cp "$1" {dir}/opened-copy; stat -c %a "$1" "$(dirname "$1")" "$(dirname "$(dirname "$1")")" > {dir}/opened-modes; fi'


def fake_programs(directory: Path) -> Path:
    directory.mkdir()
    for name in ("xdg-open", "notify-send"):
        log = directory / f"argv-{name}"
        extra = KEEP.format(dir=directory) if name == "xdg-open" else ""
        path = directory / name
        path.write_text(RECORDER.format(log=log, extra=extra))
        path.chmod(0o755)
    return directory


def calls(directory: Path, name: str) -> list[list[str]]:
    log = directory / f"argv-{name}"
    if not log.exists():
        return []
    return [line.split("\0")[:-1] for line in log.read_text().split("\n") if line]


SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def underline_mask(line: str) -> tuple[str, list[bool]]:
    """The text of a line captured with escapes (`capture-pane -e`), and for each character whether it is
    drawn underlined (SGR 4, until 24 or 0)."""
    text, mask, on, i = "", [], False, 0
    while i < len(line):
        match = SGR.match(line, i)
        if match:
            codes = match.group(1).split(";") if match.group(1) else ["0"]
            while codes:
                code = codes.pop(0)
                if code in ("38", "48", "58") and codes:  # an extended colour: 5;N or 2;R;G;B follow
                    del codes[:2 if codes[0] == "5" else 4]
                elif code in ("0", "24"):
                    on = False
                elif code == "4" or code.startswith("4:"):
                    on = code != "4:0"
            i = match.end()
            continue
        text += line[i]
        mask.append(on)
        i += 1
    return text, mask


def test_attachments_saved_and_opened_links_highlighted_and_opened_and_notify_send(binaries, relays, account, tmux_socket,
                                                                                    tmp_path):
    relay = relays("a")
    alice, bob = account("alice", relay), account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    fakes = fake_programs(tmp_path / "fakes")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {"PATH": f"{fakes}:{os.environ['PATH']}", "XDG_RUNTIME_DIR": str(runtime)}

    # Three files and a link from Bob, before Alice's window opens.
    files = {}
    for name in ("first.txt", "second.txt", "third.txt"):
        files[name] = tmp_path / name
        files[name].write_text(f"the {name} body\n" * 40)
        bob.run("send", alice.address, f"here is {name}", "--attachment", str(files[name]))
    link = "https://example.com/guide_(v2)?a=1&b=2"
    bob.run("send", alice.address, f"read {link}. then reply")

    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 110, 34, env)
    a.wait("the conversation", lambda s: "[online]" in s and "then reply" in s)

    # The link is drawn in the theme's link style (default: blue, underlined), the words around it are not.
    styled = a.tmux("capture-pane", "-p", "-e", "-t", "alice")
    text, underlined = underline_mask(next(l for l in styled.splitlines() if "then reply" in l))
    start = text.index(link)
    assert all(underlined[start:start + len(link)]), text
    assert not any(underlined[text.index("read "):start]) and not any(underlined[start + len(link):text.index("reply") + 5]), text

    # /attachments lists all three, numbered from the newest; /save 2 saves the second-newest.
    a.type("/attachments")
    screen = a.wait_text("Attachments with")
    assert re.search(r"1\s+\d+ (B|KB)\s+third\.txt", screen) and re.search(r"2\s+\d+ (B|KB)\s+second\.txt", screen)
    assert re.search(r"3\s+\d+ (B|KB)\s+first\.txt", screen)
    a.type(f"/msg {bob.address}")
    a.wait_text("then reply")
    saved = tmp_path / "saved-second.txt"
    a.type(f"/save 2 {saved}")
    a.wait_text("saved attachment 2 from the newest, second.txt")
    wait_for("the saved file", lambda: saved.exists() and saved.read_bytes() == files["second.txt"].read_bytes())

    # /open 3: the oldest file, decrypted into a private copy that the fake xdg-open receives as its one argument.
    a.type("/open 3")
    a.wait_text("opened first.txt with xdg-open")
    opened = wait_for("xdg-open's call", lambda: calls(fakes, "xdg-open"))
    assert len(opened) == 1 and opened[0][0] == str(fakes / "xdg-open") and len(opened[0]) == 2
    private = Path(opened[0][1])
    assert private.name == "first.txt" and private.parent.parent.parent == runtime
    assert (fakes / "opened-copy").read_bytes() == files["first.txt"].read_bytes()
    assert (fakes / "opened-modes").read_text().split() == ["600", "700", "700"]

    # /open link: the exact link, after the status line named it.
    a.type("/open link")
    a.wait_text(f"opening {link} with xdg-open")
    opened = wait_for("xdg-open's second call", lambda: len(calls(fakes, "xdg-open")) == 2 and calls(fakes, "xdg-open"))
    assert opened[1] == [str(fakes / "xdg-open"), link]

    # Selection mode's o: the newest message's link, then (one up) the third file's private copy.
    a.keys("M-s")
    a.wait_text("[select:")
    a.keys("o")
    opened = wait_for("xdg-open's third call", lambda: len(calls(fakes, "xdg-open")) == 3 and calls(fakes, "xdg-open"))
    assert opened[2] == [str(fakes / "xdg-open"), link]
    a.keys("Up")
    a.keys("o")
    opened = wait_for("xdg-open's fourth call", lambda: len(calls(fakes, "xdg-open")) == 4 and calls(fakes, "xdg-open"))
    assert Path(opened[3][1]).name == "third.txt"
    a.keys("Escape")
    a.wait("the selection prompt gone", lambda s: "[select:" not in s)

    # A message while Alice looks elsewhere: notify-send names Bob, without the text.
    a.type("/set")
    a.wait_text("keymap = emacs")
    bob.run("send", alice.address, "first secret words")
    note = wait_for("notify-send's call", lambda: calls(fakes, "notify-send"))
    assert note == [[str(fakes / "notify-send"), "--app-name=Parley", "--category=im.received", "--",
                     f"Message from {bob.address}", "New message (open Parley to read it)"]]
    # With notify_text on, the text (markup escaped).
    a.type("/set notify_text on")
    a.wait_text("notify_text = on")
    bob.run("send", alice.address, "second <b>words</b>")
    notes = wait_for("notify-send's second call", lambda: len(calls(fakes, "notify-send")) == 2 and calls(fakes, "notify-send"))
    assert notes[1][-1] == "second &lt;b&gt;words&lt;/b&gt;"

    # Closing the window removes the private copies.
    assert list(runtime.glob("parley-open-*"))
    a.type("/quit")
    a.wait_text("PARLEY-EXITED-0")
    assert not list(runtime.glob("parley-open-*"))
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700


def tiny_png(width: int = 4, height: int = 2) -> bytes:
    """A valid RGBA PNG of one colour."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\x10\x80\xf0\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_image_placeholder_and_kitty_graphics_when_enabled(binaries, relays, account, tmux_socket, tmp_path):
    """Off by default (and inside tmux): a placeholder line and no graphics escape. With
    inline_images = "kitty", the PNG is downloaded, decrypted and written to the terminal as kitty graphics
    escapes (wrapped for tmux's passthrough, since the window runs inside tmux), then placed in the rows left."""
    import base64
    relay = relays("a")
    alice, bob = account("alice", relay), account("bob", relay)
    alice.run("add-contact", bob.address)
    bob.run("add-contact", alice.address)
    image = tmp_path / "dot.png"
    image.write_bytes(tiny_png())
    bob.run("send", alice.address, "a dot", "--attachment", str(image))

    a = Pane(tmux_socket, "alice", [str(binaries["parley"]), "chat", bob.address, *alice.args()], 110, 34)
    raw = tmp_path / "alice.out"
    a.record_output(raw)
    a.wait("the placeholder", lambda s: "[online]" in s and f"[image: dot.png {len(tiny_png())} B — /open 1]" in s)
    a.type("/set inline_images kitty")
    a.wait_text("inline_images = kitty")
    encoded = base64.b64encode(tiny_png())
    transmit = b"\x1bPtmux;\x1b\x1b_Ga=t,f=100,i=1,q=2,m=0;" + encoded + b"\x1b\x1b\\\x1b\\"
    data = wait_for("the image's escapes", lambda: (lambda d: d if transmit in d and b"_Ga=p,i=1," in d else None)(raw.read_bytes()))
    assert data.count(b"_Ga=t") == 1
    a.type("/set inline_images off")
    a.wait_text("inline_images = off")
    wait_for("the placement removed", lambda: b"_Ga=d,d=a,q=2" in raw.read_bytes())
    a.keys("C-c")
    a.wait_text("PARLEY-EXITED-0")
