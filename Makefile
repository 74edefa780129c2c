# Disperse: `make run` starts a node on defaults, `make test` runs every test.
GO       ?= go
BIN      := bin/disperse
IMAGE    ?= disperse:dev
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Go test flags; `make test TESTFLAGS=-short` skips the slow end-to-end runs.
TESTFLAGS ?=

export CGO_ENABLED := 0

.PHONY: all build run test image cluster cluster-stop bench fuzz vet fmt clean

all: build

## build: the static binary at bin/disperse
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/disperse

## run: one node on defaults, data under ./data
run: build
	./$(BIN) serve

## test: vet, then every test with the race detector (Docker cluster tests use the image built here)
test: vet image
	CGO_ENABLED=1 DISPERSE_IMAGE=$(IMAGE) $(GO) test -race -timeout 14m $(TESTFLAGS) ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }

## image: the Docker image FROM scratch with the static binary (skipped without a Docker engine, except in CI)
image: build
	@if docker info >/dev/null 2>&1; then \
		docker build -q -t $(IMAGE) -f Dockerfile . >/dev/null && echo "image $(IMAGE) built"; \
	elif [ -n "$$CI" ]; then \
		echo 'make image: no Docker engine reachable, and CI needs one'; exit 1; \
	else \
		echo 'make image: no Docker engine reachable; the Docker cluster tests will skip'; \
	fi

## cluster: three nodes on this machine without Docker (logs and data under ./cluster-data)
cluster: build
	@mkdir -p cluster-data
	@for i in 1 2 3; do \
		./$(BIN) serve --name node$$i --gossip-port $$((7945+i)) --http-port $$((7999+i)) \
			--data-dir cluster-data/node$$i --join 127.0.0.1:7946 \
			>cluster-data/node$$i.log 2>&1 & echo $$! >cluster-data/node$$i.pid; \
	done
	@echo 'nodes on http://127.0.0.1:8000, :8001, :8002; stop them with make cluster-stop'

cluster-stop:
	@for f in cluster-data/*.pid; do [ -f "$$f" ] && kill "$$(cat $$f)" 2>/dev/null; rm -f "$$f"; done; true

## bench: Go benchmarks and HTTP load figures (see BENCHMARKS.md)
bench: build
	CGO_ENABLED=1 ./scripts/bench.sh

## fuzz: a short run of every fuzz target
fuzz:
	CGO_ENABLED=1 $(GO) test ./wal -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./engine -run '^$$' -fuzz FuzzDecodeEntries -fuzztime 30s

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin cluster-data
