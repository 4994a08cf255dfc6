#!/usr/bin/env python3
"""An echo bot over parley's JSON-RPC interface (parley-jsonrpc(5)), Python standard library only.

    parley daemon --home BOT_HOME --key-file BOT_KEY --socket /run/user/1000/parley/bot.sock &
    examples/echo_bot.py /run/user/1000/parley/bot.sock

Connects to the daemon's Unix socket, subscribes with its own cursor (messages that arrived while the bot
was away are replayed first), and sends every text message back prefixed with "echo: ": to its sender, or,
for a message in a group (dataMessage.groupInfo), to the group (send with groupId). Reconnects when the
daemon restarts.

To have it post in a group, create one with it through the daemon (updateGroup) or add the bot's account
to yours (`parley group add GROUP BOT_ADDRESS`); what members write there is echoed to all of them.
"""
import itertools
import json
import socket
import sys
import time

CURSOR = "echo-bot-py"


class Daemon:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8", newline="\n")
        self.ids = itertools.count(1)

    def request(self, method, **params):
        message = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}
        self.sock.sendall((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))

    def lines(self):
        for line in self.reader:
            if line.strip():
                yield json.loads(line)


def serve(path, answered):
    daemon = Daemon(path)
    daemon.request("subscribeReceive", cursor=CURSOR)
    for message in daemon.lines():
        if "error" in message:
            error = message["error"]
            print(f"echo_bot: request {message.get('id')}: {error['code']} {error['message']}", file=sys.stderr)
            continue
        if message.get("method") != "receive":
            continue
        envelope = message["params"]["envelope"]
        data = envelope.get("dataMessage")
        if data is None or not isinstance(data.get("message"), str) or data.get("id") in answered:
            continue  # a receipt, typing, a reaction or a group change, or a repeat (delivery is at least once)
        answered.add(data["id"])
        group = data.get("groupInfo")
        if group is not None:
            daemon.request("send", groupId=group["groupId"], message="echo: " + data["message"])
        else:
            daemon.request("send", recipient=envelope["source"], message="echo: " + data["message"])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: echo_bot.py SOCKET_PATH")
    answered = set()
    while True:
        try:
            serve(sys.argv[1], answered)
        except (ConnectionError, FileNotFoundError, OSError) as error:
            print(f"echo_bot: {error}; reconnecting", file=sys.stderr)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
