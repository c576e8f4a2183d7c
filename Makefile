# SPDX-License-Identifier: Apache-2.0

# sudo resets PATH; Go is often only in /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin

# The one copy of the BPF compiler and its flags. `make generate` passes them
# to bpf2go (loader/gen.go); CI runs it and `git diff --exit-code` to prove
# the committed objects are current.
CLANG ?= clang
CFLAGS := -O2 -g -Wall -Werror -mcpu=v3
GO ?= go
CLANG_FORMAT ?= clang-format-14

.PHONY: generate build test bench demo lint clean help conformance

generate: ## regenerate the bpf2go output (loader/nwbpf_bpfel.{go,o})
	BPF2GO_CC=$(CLANG) BPF2GO_CFLAGS="$(CFLAGS)" $(GO) generate ./loader

build: ## build every package and the nwbpf command
	$(GO) build ./...
	$(GO) build -o nwbpf ./cmd/nwbpf

test: ## run all tests (privileged ones need root: sudo make test)
	$(GO) test -p 1 ./...

bench: ## per-frame cost of the classifier next to an empty program
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 2s ./loader

demo: ## clean-traffic against spoofing in a throw-away libvirt-like network (root: sudo make demo)
	$(GO) run ./cmd/nwbpf demo

lint: ## gofmt, go vet, staticcheck and clang-format checks
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(CLANG_FORMAT) --dry-run -Werror bpf/*.c bpf/*.h

# `make conformance` compares nwbpf with real libvirt over every stock filter
# and the checklist set (root, libvirtd) and rewrites docs/conformance.md.
CONFORMANCE_SEED ?= 1
CONFORMANCE_RANDOM ?= 1000
conformance: ## nwbpf against real libvirt (sudo; CONFORMANCE_SEED, CONFORMANCE_RANDOM); rewrites docs/conformance.md
	NWBPF_CONFORMANCE_SEED=$(CONFORMANCE_SEED) NWBPF_CONFORMANCE_RANDOM=$(CONFORMANCE_RANDOM) \
	NWBPF_CONFORMANCE_REPORT=$(CURDIR)/docs/conformance.md \
	$(GO) test -p 1 -count 1 -timeout 60m -v -run '^TestConformance$$' ./tests/conformance

clean: ## remove build output
	rm -f nwbpf
	$(GO) clean -testcache

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-10s %s\n", $$1, $$2}'
