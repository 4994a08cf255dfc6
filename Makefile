# Parley — build, test and benchmark entry points. `make demo` and `make test` do all set-up on a fresh
# Debian 12 machine: missing -dev packages are installed with apt when run as root, otherwise the exact
# apt-get line is printed; Python test peers go into .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := libsodium-dev libncurses-dev libsqlite3-dev libqrencode-dev tmux python3-venv pkg-config openssl jq sqlite3
# Several relay nodes (deploy/): HAProxy in front, PostgreSQL behind, run both on loopback by the tests,
# which also have systemd-analyze check deploy/'s unit.
APT_PACKAGES += haproxy postgresql systemd
VENV := .venv
PY := $(VENV)/bin/python
SWIFT ?= swift
export LANG ?= C.UTF-8

.PHONY: deps venv build release demo test test-swift test-interop test-fuzz test-tui bench clean fuzz fuzz-build fuzz-short fuzz-seeds

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

# The demo runs the built binary; the build step runs only when a file it is built from is newer than it
# (a `swift build` with nothing to do still takes several seconds to find that out).
PARLEY_BIN := .build/debug/parley
demo: deps
	@if [ ! -x $(PARLEY_BIN) ] || [ -n "$$(find Sources Package.swift Package.resolved -newer $(PARLEY_BIN) -print -quit 2>/dev/null)" ]; then \
	  echo "$(SWIFT) build --product parley"; $(SWIFT) build --product parley; \
	fi
	$(PARLEY_BIN) demo

test: test-swift test-interop test-fuzz fuzz-short crash-test test-tui

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

# libFuzzer on every decoder of outside bytes (issue #19): Sources/Fuzz/ParleyFuzz, one executable with a
# target per decoder family (`parley-fuzz list`), seed corpora in Tests/fuzz-corpus/<target>/.
#
# How it is built, and why so (checked with Swift 6.3.1 on Linux):
# - The fuzz target exists only when PARLEY_FUZZ=1 (see Package.swift), and builds in its own scratch path,
#   so the ordinary `swift build` neither builds it nor shares a build directory with it. With the variable
#   set, Parley's own modules get -sanitize=fuzzer,address (coverage for libFuzzer, AddressSanitizer); the
#   dependencies are built as usual.
# - `-Xswiftc -sanitize=fuzzer` on the whole command line cannot be used: every executable in the package
#   would link libFuzzer's main next to its own.
# - SwiftPM links an executable with `--defsym main=<Module>_main`, so a fuzz target without a main of its own
#   fails to link ("symbol not found: ParleyFuzz_main"). ParleyFuzz therefore has a `@main` that calls
#   LLVMFuzzerRunDriver (taking the target name as its first argument), and also exports
#   LLVMFuzzerTestOneInput, which libFuzzer's own main in the runtime library refers to; the defsym makes
#   the Swift main the one that runs.
# - Swift's backtracer and AddressSanitizer both handle the crash signal and the backtracer then trips
#   over ASan (a bogus heap-use-after-free in CrashHandlerLinux); SWIFT_BACKTRACE=enable=no leaves crashes
#   to libFuzzer, which prints the stack and saves the input.
# - -malloc_limit_mb=1: no input is longer than -max_len (8 KB), so a single allocation of 1 MB or more
#   means a decoder believed a length or count field; libFuzzer reports it with the stack. libFuzzer
#   watches allocations through the hooks it installs for leak detection, so its -detect_leaks must stay
#   on (with -detect_leaks=0 the limit is silently not enforced: checked with a 1.5 MB reservation);
#   LeakSanitizer itself is off (ASAN_OPTIONS=detect_leaks=0), since the Swift runtime's one-time
#   metadata allocations look like leaks to it.
# `make fuzz` runs each target for FUZZ_SECONDS and keeps what it learns in .build-fuzz/corpus (new inputs
# worth keeping can be copied into Tests/fuzz-corpus); `make fuzz-short`, part of `make test`, replays the
# committed corpora (the regression inputs of every fix among them) and fuzzes each target for
# FUZZ_SHORT_SECONDS. Findings land in .build-fuzz/findings/.
FUZZ_SCRATCH := .build-fuzz
FUZZ_BIN := $(FUZZ_SCRATCH)/debug/parley-fuzz
FUZZ_CORPUS := Tests/fuzz-corpus
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 8
FUZZ_TARGETS := envelope sealed-content sender-certificate ratchet-messages device-list prekey-bundle provisioning \
  attachment-pointer content relay-json json-rpc config theme store-records
# MLS (issue #21); mls-welcome, mls-key-package and mls-group-process read the IETF vectors in ../shared/vectors/mls.
FUZZ_TARGETS += mls-message mls-key-package mls-welcome mls-group-info mls-ratchet-tree mls-group-state mls-group-process
FUZZ_OPTIONS := -malloc_limit_mb=1 -rss_limit_mb=2048 -max_len=8192 -timeout=10 -print_final_stats=1
FUZZ_ENV := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0

fuzz-build: deps
	PARLEY_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product parley-fuzz

# Each target: the committed corpus replayed, then FUZZ_SECONDS of fuzzing from it. A target is one
# process on one core, and -max_total_time counts wall-clock seconds: targets run FUZZ_JOBS at a time (one
# per core by default), each fuzzing as long as when they ran one after another. Each target's report is
# printed whole when it ends (--output-sync); the first failure stops the run once the running ones end.
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

fuzz: fuzz-build
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) --output-sync=target $(addprefix fuzz-target-,$(FUZZ_TARGETS))

fuzz-target-%:
	@mkdir -p $(FUZZ_SCRATCH)/corpus/$* $(FUZZ_SCRATCH)/findings; echo "== fuzz $* ($(FUZZ_SECONDS) s)"; \
	$(FUZZ_ENV) $(FUZZ_BIN) $* $(FUZZ_OPTIONS) -max_total_time=$(FUZZ_SECONDS) \
	  -artifact_prefix=$(FUZZ_SCRATCH)/findings/$*- $(FUZZ_SCRATCH)/corpus/$* $(FUZZ_CORPUS)/$* \
	  > $(FUZZ_SCRATCH)/findings/$*.log 2>&1 || { tail -40 $(FUZZ_SCRATCH)/findings/$*.log; exit 1; }; \
	grep -E '^(Done [0-9]+ runs|stat::peak_rss_mb)' $(FUZZ_SCRATCH)/findings/$*.log || true

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS)

# Rewrites the seed corpus from the protocol vectors and values built with fixed keys (run after a format
# changes; regression inputs, named regress-*, are kept).
fuzz-seeds: fuzz-build
	$(FUZZ_BIN) seeds $(FUZZ_CORPUS)

bench: release
	.build/release/parley-bench
	.build/release/parley-tui-bench
	scripts/bench-chat-rss.sh

clean:
	rm -rf .build $(FUZZ_SCRATCH) $(VENV)
