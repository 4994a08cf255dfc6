#!/usr/bin/env bash
# An echo bot over parley's JSON-RPC interface (parley-jsonrpc(5)), in bash with jq.
#
#   examples/echo-bot.sh --home BOT_HOME --key-file BOT_KEY
#
# The arguments go to `parley daemon --stdio` (which runs as a coprocess). Every text message that
# arrives is sent back, prefixed with "echo: ": to its sender, or to the group it was sent in. The subscription uses its own cursor, so
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
    # One tab-separated record per incoming text message: id, sender, group id ("-" outside a group:
    # a tab is whitespace to read, so an empty field would vanish), text
    # (as a JSON string, so that a tab or newline in it cannot break the record).
    record=$(jq -r 'select(.method == "receive" and (.params.envelope.dataMessage.message | type) == "string")
                    | .params.envelope as $e
                    | [$e.dataMessage.id, $e.source, ($e.dataMessage.groupInfo.groupId // "-"), ($e.dataMessage.message | tojson)]
                    | join("\t")' <<<"$line")
    if [[ -z $record ]]; then
        # A response: report failures, ignore the rest (receipts, typing).
        error=$(jq -r 'select(.error != null) | "request \(.id): \(.error.code) \(.error.message)"' <<<"$line")
        [[ -n $error ]] && echo "echo-bot: $error" >&2
        continue
    fi
    IFS=$'\t' read -r id source group text <<<"$record"
    [[ -n ${answered[$id]:-} ]] && continue
    answered[$id]=1
    next_id=$((next_id + 1))
    # A message in a group is answered in the group (send with groupId), any other to its sender.
    request "$(jq -cn --arg to "$source" --arg group "$group" --argjson text "$text" --arg id "echo-$next_id" \
        '{jsonrpc: "2.0", id: $id, method: "send",
          params: ((if $group == "-" then {recipient: $to} else {groupId: $group} end) + {message: ("echo: " + $text)})}')"
done
