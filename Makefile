# Parley — build, test and benchmark entry points. `make demo` and `make test` do all set-up on a fresh
# Debian 12 machine: missing -dev packages are installed with apt when run as root, otherwise the exact
# apt-get line is printed; Python test peers go into .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := libsodium-dev libncurses-dev libsqlite3-dev libqrencode-dev tmux python3-venv pkg-config openssl jq sqlite3
VENV := .venv
PY := $(VENV)/bin/python
SWIFT ?= swift
export LANG ?= C.UTF-8

.PHONY: deps venv build release demo test test-swift test-interop test-fuzz test-tui bench clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages; run:"; echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(VENV)/.stamp: Tests/interop/requirements.txt | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/interop/requirements.txt
	touch $@

venv: $(VENV)/.stamp

build: deps
	$(SWIFT) build

# Release binaries link the Swift runtime and Foundation statically: a one-shot `parley send` starts in
# about 12 ms instead of 21 (measured), which is what bots running it per message feel.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

demo: build
	$(SWIFT) run parley demo

test: test-swift test-interop test-fuzz crash-test test-tui

test-swift: deps
	$(SWIFT) build
	$(SWIFT) test

test-interop: venv build
	$(PY) -m pytest -q Tests/interop

# The chat window driven in tmux (send-keys / capture-pane) against real relays: two people chat, scroll,
# resize, verify each other, switch themes and see a key change; and the demo's first minute.
test-tui: venv build
	LANG=C.UTF-8 $(PY) -m pytest -q Tests/tui

# schemathesis against openapi/relay.yaml, on a real relay at a free loopback port (Tests/relay-fuzz).
test-fuzz: venv deps
	$(SWIFT) build --product parley-relay
	$(PY) -m pytest -q Tests/relay-fuzz

# SIGKILLs a receiving device at random moments over 200 restarts while messages stream in, then checks
# that no message was lost or duplicated and that the store opened and verified after every crash.
crash-test: deps
	$(SWIFT) build --product parley-crash-harness
	.build/debug/parley-crash-harness run --cycles 200

bench: release
	.build/release/parley-bench
	.build/release/parley-tui-bench
	scripts/bench-chat-rss.sh

clean:
	rm -rf .build $(VENV)
