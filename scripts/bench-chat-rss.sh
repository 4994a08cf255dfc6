#!/usr/bin/env bash
# The real chat window's memory over a 100,000-message conversation (issue #7: ≤ 50 MB resident).
# parley-tui-bench measures an off-screen viewer in its own process; this opens the real `parley` binary
# in a detached tmux window of 120x40 on the same kind of history, and reads its VmRSS once the
# conversation is drawn, again after 40 PageUps (older pages loaded from the store), and its peak (VmHWM).
# Prints one JSON object, like the other benches. Every wait polls a condition with a deadline.
#
#   scripts/bench-chat-rss.sh [--messages N]      BIN_DIR (default .build/release) picks the binaries
set -euo pipefail

BIN_DIR=${BIN_DIR:-$(dirname "$0")/../.build/release}
MESSAGES=100000
PAGES=40
TARGET_MB=50
DEADLINE=${PARLEY_BENCH_DEADLINE:-120}   # seconds for any one wait
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) MESSAGES=${2:?--messages needs a count}; shift 2 ;;
    *) echo "usage: $0 [--messages N]" >&2; exit 1 ;;
  esac
done
# 40 pages of 35 lines must not reach the start of the history (the screen would stop changing).
[[ "$MESSAGES" =~ ^[0-9]+$ ]] && [ "$MESSAGES" -ge 2000 ] || { echo "$0: --messages needs a count of at least 2000" >&2; exit 1; }

PARLEY=$(realpath "$BIN_DIR/parley")
TUI_BENCH=$(realpath "$BIN_DIR/parley-tui-bench")
for tool in "$PARLEY" "$TUI_BENCH"; do
  [ -x "$tool" ] || { echo "$0: $tool is not built (make release)" >&2; exit 1; }
done
command -v tmux >/dev/null || { echo "$0: tmux is not installed (make deps installs it)" >&2; exit 1; }

HOME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/parley-chat-rss-XXXXXX")
SOCKET="parley-chat-rss-$$"   # a private tmux server: the user's own sessions are never touched
cleanup() {
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  rm -rf "$HOME_DIR"
}
trap cleanup EXIT

fail() { echo "$0: $*" >&2; exit 2; }

# Polls `"$@"` every 50 ms until it succeeds, for at most $DEADLINE seconds.
wait_until() {
  local what=$1; shift
  local end=$((SECONDS + DEADLINE))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out waiting for $what"
    sleep 0.05
  done
}

screen() { tmux -L "$SOCKET" capture-pane -p -t chat; }

"$TUI_BENCH" --messages "$MESSAGES" --pages 1 --keep "$HOME_DIR" >/dev/null

# The bench home's relay (bench.example) does not exist. Where user namespaces are allowed the window
# runs without any network, so it never even asks a DNS server; it shows itself disconnected either way.
ISOLATE=()
if unshare -rn true 2>/dev/null; then ISOLATE=(unshare -rn); fi
tmux -L "$SOCKET" new-session -d -s chat -x 120 -y 40 \
  "env -u LINES -u COLUMNS LANG=C.UTF-8 TERM=xterm-256color ${ISOLATE[*]} '$PARLEY' --home '$HOME_DIR' --key-file '$HOME_DIR/store.key' bob@bench.example:7000; sleep 600"

# The parley process itself: the one whose executable is the binary and whose arguments name this home
# (a pattern match on command lines would also find the tmux command that started it).
find_pid() {
  local exe
  for exe in /proc/[0-9]*/exe; do
    [ "$(readlink "$exe" 2>/dev/null)" = "$PARLEY" ] || continue
    local proc=${exe%/exe}
    if tr '\0' '\n' <"$proc/cmdline" 2>/dev/null | grep -qxF "$HOME_DIR"; then
      PID=${proc#/proc/}
      return 0
    fi
  done
  return 1
}
PID=
wait_until "the parley process" find_pid

# Drawn: the conversation pane shows messages of the history (every one is from "me" or "bob").
drawn() { screen | grep -qE '(me|bob): '; }
wait_until "the conversation to be drawn" drawn

kb() {
  local value
  value=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$PID/status" 2>/dev/null)
  [ -n "$value" ] || fail "parley (pid $PID) exited early: $(screen)"
  echo "$value"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
RSS_OPEN=$(kb VmRSS)
# VmHWM is only brought up to date at some kernel events, so the peak reported is the larger of it and
# every VmRSS sampled here (once drawn, after each page).
SAMPLED_PEAK=$RSS_OPEN
for _ in $(seq "$PAGES"); do
  before=$(screen)
  tmux -L "$SOCKET" send-keys -t chat PageUp
  changed() { [ "$(screen)" != "$before" ]; }
  wait_until "a PageUp to scroll" changed
  now=$(kb VmRSS)
  [ "$now" -le "$SAMPLED_PEAK" ] || SAMPLED_PEAK=$now
done
RSS_SCROLLED=$(kb VmRSS)
PEAK=$(kb VmHWM)
[ "$PEAK" -ge "$SAMPLED_PEAK" ] || PEAK=$SAMPLED_PEAK
screen | grep -qE '↓ [0-9]+ more' || fail "the window did not scroll up: $(screen)"

tmux -L "$SOCKET" send-keys -t chat C-c
gone() { [ ! -e "/proc/$PID" ] || grep -q '^State:.*Z' "/proc/$PID/status" 2>/dev/null; }
wait_until "parley to quit" gone

OK=$(awk -v r="$RSS_SCROLLED" -v p="$PEAK" -v t="$TARGET_MB" 'BEGIN { print (r / 1024 <= t && p / 1024 <= t) ? "true" : "false" }')
printf '{"name":"chat_window_rss","rss_open_mb":%s,"rss_scrolled_mb":%s,"peak_mb":%s,"target_mb":%s,"ok":%s,"messages":%s,"pages":%s,"description":"the real parley window in tmux 120x40 over one conversation of %s messages: VmRSS once drawn, VmRSS after %s PageUps, peak (VmHWM or the largest VmRSS sampled)"}\n' \
  "$(mb "$RSS_OPEN")" "$(mb "$RSS_SCROLLED")" "$(mb "$PEAK")" "$TARGET_MB" "$OK" "$MESSAGES" "$PAGES" "$MESSAGES" "$PAGES"
