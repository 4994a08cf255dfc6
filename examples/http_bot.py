#!/usr/bin/env python3
"""An echo bot over parley daemon's HTTP endpoint (signal-cli's /api/v1, parley-jsonrpc(5)), Python
standard library only.

    parley daemon --home BOT_HOME --key-file BOT_KEY --http 127.0.0.1:8080 &
    examples/http_bot.py http://127.0.0.1:8080 [--token-file FILE] [--account ADDRESS]

Reads GET /api/v1/events (Server-Sent Events) with its own cursor, so messages that arrived while the bot
was away come first, and answers every text message through POST /api/v1/rpc with "echo: " and the text,
from the account that received it (a daemon may serve several). When the stream breaks it reconnects with
the last event id as Last-Event-ID, so no message is lost or answered twice.
"""
import argparse
import itertools
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CURSOR = "echo-bot-http"


class Endpoint:
    def __init__(self, base, token=None, account=None):
        self.base = base.rstrip("/")
        self.token = token
        self.account = account
        self.ids = itertools.count(1)

    def headers(self, **extra):
        headers = dict(extra)
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        return headers

    def rpc(self, method, **params):
        body = json.dumps({"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}).encode("utf-8")
        request = urllib.request.Request(self.base + "/api/v1/rpc", data=body, method="POST",
                                         headers=self.headers(**{"Content-Type": "application/json"}))
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.load(response)
        if "error" in reply:
            error = reply["error"]
            print(f"http_bot: {method}: {error['code']} {error['message']}", file=sys.stderr)
            return None
        return reply["result"]

    def events(self, last_event_id):
        """Yields (id or None, event name, data) for each event; ends when the stream does."""
        query = {"cursor": CURSOR}
        if self.account:
            query["account"] = self.account
        headers = self.headers(Accept="text/event-stream")
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        request = urllib.request.Request(self.base + "/api/v1/events?" + urllib.parse.urlencode(query), headers=headers)
        # Longer than the daemon's 15-second keep-alive comments: a silent stream is a dead one.
        with urllib.request.urlopen(request, timeout=60) as stream:
            event_id, name, data = None, None, []
            for raw in stream:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield event_id, name, "\n".join(data)
                    event_id, name, data = None, None, []
                    continue
                if line.startswith(":"):
                    continue  # a comment: the keep-alive
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    data.append(value)
                elif field == "event":
                    name = value
                elif field == "id":
                    event_id = value


def serve(endpoint, state):
    for event_id, name, data in endpoint.events(state["last"]):
        if name == "receive":
            params = json.loads(data)
            envelope = params["envelope"]
            message = envelope.get("dataMessage")
            # Receipts and typing indicators have no dataMessage, reactions and group changes no text; an
            # id seen before is a repeat. A message in a group is answered in the group.
            if message is not None and isinstance(message.get("message"), str) and message.get("id") not in state["answered"]:
                state["answered"].add(message["id"])
                to = {"groupId": message["groupInfo"]["groupId"]} if "groupInfo" in message else {"recipient": envelope["source"]}
                endpoint.rpc("send", account=params["account"], message="echo: " + message["message"], **to)
        if event_id:
            state["last"] = event_id


def main():
    parser = argparse.ArgumentParser(description="An echo bot over parley daemon --http.")
    parser.add_argument("url", help="the daemon's address, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token-file", help="the file given to --http-token-file")
    parser.add_argument("--account", help="answer only this account (default: every account the daemon serves)")
    arguments = parser.parse_args()
    token = None
    if arguments.token_file:
        with open(arguments.token_file, encoding="utf-8") as file:
            token = file.readline().strip()
    endpoint = Endpoint(arguments.url, token, arguments.account)
    state = {"last": None, "answered": set()}
    while True:
        try:
            serve(endpoint, state)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            print(f"http_bot: {error}; reconnecting", file=sys.stderr)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
