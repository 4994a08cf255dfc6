#!/usr/bin/env bash
# An echo bot over parley's JSON-RPC interface (parley-jsonrpc(5)), in bash with jq.
#
#   examples/echo-bot.sh --home BOT_HOME --key-file BOT_KEY
#
# The arguments go to `parley daemon --stdio` (which runs as a coprocess). Every text message that
# arrives is sent back to its sender, prefixed with "echo: ". The subscription uses its own cursor, so
# messages that arrived while the bot was not running are answered when it starts. $PARLEY names the
# parley binary (default: parley on $PATH).
set -euo pipefail

parley=${PARLEY:-parley}
coproc DAEMON { exec "$parley" daemon --stdio "$@"; }
exec {to_daemon}>&"${DAEMON[1]}" {from_daemon}<&"${DAEMON[0]}"

request() { printf '%s\n' "$1" >&"$to_daemon"; }

request '{"jsonrpc":"2.0","id":"subscribe","method":"subscribeReceive","params":{"cursor":"echo-bot"}}'

declare -A answered=()   # message ids already echoed: the daemon delivers at least once
next_id=0
while IFS= read -r line <&"$from_daemon"; do
    # One tab-separated record per incoming text message: id, sender, text (as a JSON string, so that a
    # tab or newline in it cannot break the record).
    record=$(jq -r 'select(.method == "receive" and .params.envelope.dataMessage != null)
                    | [.params.envelope.dataMessage.id, .params.envelope.source, (.params.envelope.dataMessage.message | tojson)]
                    | join("\t")' <<<"$line")
    if [[ -z $record ]]; then
        # A response: report failures, ignore the rest (receipts, typing).
        error=$(jq -r 'select(.error != null) | "request \(.id): \(.error.code) \(.error.message)"' <<<"$line")
        [[ -n $error ]] && echo "echo-bot: $error" >&2
        continue
    fi
    IFS=$'\t' read -r id source text <<<"$record"
    [[ -n ${answered[$id]:-} ]] && continue
    answered[$id]=1
    next_id=$((next_id + 1))
    request "$(jq -cn --arg to "$source" --argjson text "$text" --arg id "echo-$next_id" \
        '{jsonrpc: "2.0", id: $id, method: "send", params: {recipient: $to, message: ("echo: " + $text)}}')"
done
