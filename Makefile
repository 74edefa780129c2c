# Disperse: `make run` starts a node on defaults, `make test` runs every test.
GO       ?= go
BIN      := bin/disperse
IMAGE    ?= disperse:dev
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Go test flags; `make test TESTFLAGS=-short` skips the slow end-to-end runs.
TESTFLAGS ?=

export CGO_ENABLED := 0

# install_wrk, in a recipe's shell: installs Debian's wrk when it is missing, saying so for the
# target $(1). If apt-get cannot, wrk stays missing and the target skips its wrk figures.
install_wrk = command -v wrk >/dev/null || { echo '$(1): installing wrk (Debian package wrk)'; \
	apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } || true; }

.PHONY: all build run test image cluster cluster-stop bench bench-http bench-blob bench-resp bench-security bench-cluster-key bench-memory fuzz vet fmt clean

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
	@mkdir -p bin/image-data
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
		./$(BIN) serve --name node$$i --gossip-port $$((7945+i)) --http-port $$((7999+i)) --resp-port $$((6378+i)) \
			--data-dir cluster-data/node$$i --join 127.0.0.1:7946 \
			>cluster-data/node$$i.log 2>&1 & echo $$! >cluster-data/node$$i.pid; \
	done
	@echo 'nodes on http://127.0.0.1:8000, :8001, :8002; stop them with make cluster-stop'

cluster-stop:
	@for f in cluster-data/*.pid; do [ -f "$$f" ] && kill "$$(cat $$f)" 2>/dev/null; rm -f "$$f"; done; true

## bench: Go benchmarks, then HTTP load on real nodes (figures go into BENCHMARKS.md)
bench: build
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'AppendParallel|SerialFsync' -benchtime 3s ./wal
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'ApplyParallel|Get$$' ./engine
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'Recovery1M' -benchtime 1x -timeout 30m ./engine
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'ZipfHitRatio' -benchtime 1x -timeout 30m ./engine
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'GetRouterVsBare' ./httpd
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'PutSingleNode|PutReplicated' -benchtime 50000x -timeout 30m ./cluster
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'Repair|CatchUp' -benchtime 1x -timeout 30m ./cluster
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'CatchUpBinary' -benchtime 1x -count 3 -timeout 30m ./cmd/disperse
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'Encode' ./blob
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench 'GetWhileScrubbing' -benchtime 20x -count 3 ./blob
	@$(MAKE) --no-print-directory bench-http
	@$(MAKE) --no-print-directory bench-blob
	@$(MAKE) --no-print-directory bench-resp
	@$(MAKE) --no-print-directory bench-security
	@$(MAKE) --no-print-directory bench-cluster-key
	@$(MAKE) --no-print-directory bench-memory

# bench-http: one node with --fsync always and one with --fsync never on
# loopback, and the baseline (a bare gin handler over a map) in a process of
# its own, all loaded by `disperse bench`, and the two nodes' PUTs by wrk
# (a Debian package, installed here if missing), always against never
# alternated three times; then one node alone and a
# three-node cluster, loaded alone, replicated, alone again, by `disperse
# bench` and by wrk, each ratio taken against the mean of the two runs
# alone.
bench-http: build
	@set -e; dir=$$(mktemp -d); pids=; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; rm -rf "$$dir"' EXIT; \
	./$(BIN) serve --name always --gossip-port 17946 --resp-port 0 --http-port 18000 --data-dir "$$dir/always" --log-level warn & pids="$$pids $$!"; \
	./$(BIN) serve --name never --gossip-port 17947 --resp-port 0 --http-port 18001 --data-dir "$$dir/never" --fsync never --log-level warn & pids="$$pids $$!"; \
	./$(BIN) bench --serve-baseline 127.0.0.1:18002 >/dev/null & pids="$$pids $$!"; \
	for p in 18000 18001; do ./$(BIN) ready --addr http://127.0.0.1:$$p --timeout 60s; done; \
	echo '== GET, 64 clients, 100-byte values: node vs bare gin + map'; \
	./$(BIN) bench --compare --baseline-addr http://127.0.0.1:18002 --op get --addr http://127.0.0.1:18000 --clients 64 --duration 10s; \
	echo '== PUT, --fsync always vs bare gin + map'; \
	./$(BIN) bench --compare --baseline-addr http://127.0.0.1:18002 --op put --addr http://127.0.0.1:18000 --clients 64 --duration 10s; \
	echo '== PUT, --fsync never'; \
	./$(BIN) bench --op put --addr http://127.0.0.1:18001 --clients 64 --duration 10s; \
	$(call install_wrk,bench-http); \
	printf '%s\n' 'wrk.method = "PUT"' 'wrk.body = string.rep("v", 100)' \
		'wrk.headers["Content-Type"] = "application/octet-stream"' \
		'request = function() return wrk.format(nil, "/cache/wrk-" .. math.random(0, 99999)) end' >"$$dir/put.lua"; \
	wrps() { awk '/^Requests\/sec:/{print $$2}' "$$1"; }; \
	if command -v wrk >/dev/null; then \
		echo '== PUT with wrk (2 threads, 64 connections, 8 s), --fsync always vs never, alternated three times'; \
		rs=; line=; for i in 1 2 3; do \
			wrk -t2 -c64 -d8s -s "$$dir/put.lua" http://127.0.0.1:18000 >"$$dir/wrk-always.txt"; \
			wrk -t2 -c64 -d8s -s "$$dir/put.lua" http://127.0.0.1:18001 >"$$dir/wrk-never.txt"; \
			a=$$(wrps "$$dir/wrk-always.txt"); b=$$(wrps "$$dir/wrk-never.txt"); \
			rs="$$rs $$(awk -v a=$$a -v b=$$b 'BEGIN{printf "%.2f", a/b}')"; line="$$line $$a/$$b"; \
		done; \
		echo "PUT always/never per s$$line; ratios$$rs, median $$(echo $$rs | tr ' ' '\n' | sort -n | sed -n 2p)"; \
	fi; \
	kill $$pids; wait $$pids 2>/dev/null || true; pids=; \
	./$(BIN) serve --name solo --gossip-port 17970 --resp-port 0 --http-port 18020 --data-dir "$$dir/solo" --log-level warn & pids="$$pids $$!"; \
	for i in 1 2 3; do \
		./$(BIN) serve --name rep$$i --gossip-port $$((17959+i)) --resp-port 0 --http-port $$((18009+i)) \
			--data-dir "$$dir/rep$$i" --join 127.0.0.1:17960 --log-level warn & pids="$$pids $$!"; \
	done; \
	./$(BIN) ready --addr http://127.0.0.1:18020 --timeout 60s; \
	tries=0; until [ "$$(./$(BIN) members --json --addr http://127.0.0.1:18010 2>/dev/null | grep -o '"state":"alive"' | wc -l)" -eq 3 ]; do \
		tries=$$((tries+1)); [ $$tries -le 300 ] || { echo 'bench-http: 3 nodes not alive after 60s'; exit 1; }; sleep 0.2; \
	done; \
	rps() { awk '/ req\/s /{print $$2; exit}' "$$1"; }; \
	echo '== PUT, --fsync always: a node alone, a node of three (replicated to both others), the node alone again'; \
	for run in solo1:18020 rep:18010 solo2:18020; do \
		./$(BIN) bench --op put --addr http://127.0.0.1:$${run#*:} --clients 64 --duration 10s >"$$dir/$${run%%:*}.txt"; \
		cat "$$dir/$${run%%:*}.txt"; \
	done; \
	awk -v s1="$$(rps "$$dir/solo1.txt")" -v r="$$(rps "$$dir/rep.txt")" -v s2="$$(rps "$$dir/solo2.txt")" \
		'BEGIN { printf "ratio replicated/single: %.3f (single %.0f and %.0f req/s)\n", r / ((s1 + s2) / 2), s1, s2 }'; \
	if command -v wrk >/dev/null; then \
		echo '== PUT with wrk (2 threads, 64 connections, 10 s): the node alone, the node of three, alone again'; \
		for run in solo1:18020 rep:18010 solo2:18020; do \
			wrk -t2 -c64 -d10s --latency -s "$$dir/put.lua" http://127.0.0.1:$${run#*:} >"$$dir/wrk-$${run%%:*}.txt"; \
			echo "-- $${run%%:*}: $$(grep -E 'Requests/sec|Non-2xx|Socket errors' "$$dir/wrk-$${run%%:*}.txt" | tr -s ' ' | paste -sd';' -)"; \
			grep -E '^ +(50|99)%' "$$dir/wrk-$${run%%:*}.txt" | tr -s ' ' | paste -sd' ' -; \
		done; \
		awk -v s1="$$(wrps "$$dir/wrk-solo1.txt")" -v r="$$(wrps "$$dir/wrk-rep.txt")" -v s2="$$(wrps "$$dir/wrk-solo2.txt")" \
			'BEGIN { printf "wrk ratio replicated/single: %.3f (single %.0f and %.0f req/s)\n", r / ((s1 + s2) / 2), s1, s2 }'; \
	else \
		echo 'bench-http: wrk not installed and apt-get could not install it; the wrk figures are skipped'; \
	fi

# bench-cluster-key: two three-node clusters side by side, one with
# --cluster-key (encrypted gossip and replication, signed peer requests) and
# one without, all --fsync always; PUTs of 100-byte values by 64 clients for
# 10 s to one node of each in turn, three times; the ratio is keyed/open of
# the means.
bench-cluster-key: build
	@set -e; dir=$$(mktemp -d); pids=; key=$$(head -c 32 /dev/urandom | base64); \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; rm -rf "$$dir"' EXIT; \
	for i in 1 2 3; do \
		./$(BIN) serve --name open$$i --gossip-port $$((17960+i)) --resp-port 0 --http-port $$((18010+i)) \
			--data-dir "$$dir/open$$i" --join 127.0.0.1:17961 --log-level error & pids="$$pids $$!"; \
		./$(BIN) serve --name keyed$$i --gossip-port $$((17970+i)) --resp-port 0 --http-port $$((18020+i)) \
			--data-dir "$$dir/keyed$$i" --join 127.0.0.1:17971 --cluster-key "$$key" --log-level error & pids="$$pids $$!"; \
	done; \
	for p in 18011 18021; do \
		tries=0; until [ "$$(./$(BIN) members --json --addr http://127.0.0.1:$$p 2>/dev/null | grep -o '"state":"alive"' | wc -l)" -eq 3 ]; do \
			tries=$$((tries+1)); [ $$tries -le 300 ] || { echo "bench-cluster-key: 3 nodes not alive on $$p after 60s"; exit 1; }; sleep 0.2; \
		done; \
	done; \
	echo '== PUT, --fsync always, to one node of three: a cluster without a key, then one with --cluster-key, three times'; \
	for r in 1 2 3; do for c in open:18011 keyed:18021; do \
		./$(BIN) bench --op put --addr http://127.0.0.1:$${c#*:} --clients 64 --duration 10s | tee -a "$$dir/$${c%%:*}.txt" | grep 'req/s'; \
	done; done; \
	awk 'FNR==1{f++} / req\/s /{s[f]+=$$2; n[f]++} END { printf "ratio keyed/open: %.3f (means %.0f and %.0f req/s)\n", (s[2]/n[2])/(s[1]/n[1]), s[2]/n[2], s[1]/n[1] }' \
		"$$dir/open.txt" "$$dir/keyed.txt"

## bench-security: what tokens and TLS cost. Three nodes on loopback: one open on plain HTTP,
## one with a token over TLS (a certificate made here with openssl), one with a token on plain
## HTTP. GET with a token over TLS against plain GET, and PUT with a token against PUT without,
## each by `disperse bench` and by wrk (64 keep-alive clients). Runs alternate open, guarded,
## open, guarded, open; each ratio is the guarded mean over the open mean of the same run, for
## requests/s and for the node's own CPU time per request (from /proc), the load generator
## sharing the machine's cores.
bench-security: build
	@set -e; dir=$$(mktemp -d); pids=; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; rm -rf "$$dir"' EXIT; \
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$$dir/key.pem" -out "$$dir/cert.pem" 2>/dev/null; \
	tok=$$(openssl rand -hex 32); \
	./$(BIN) serve --name open --gossip-port 17990 --resp-port 0 --http-port 18040 --data-dir "$$dir/open" --log-level error & openpid=$$!; pids="$$pids $$!"; \
	AUTH_TOKEN=$$tok ./$(BIN) serve --name tls --gossip-port 17991 --resp-port 0 --http-port 18041 --data-dir "$$dir/tls" \
		--tls-cert "$$dir/cert.pem" --tls-key "$$dir/key.pem" --log-level error & tlspid=$$!; pids="$$pids $$!"; \
	AUTH_TOKEN=$$tok ./$(BIN) serve --name auth --gossip-port 17992 --resp-port 0 --http-port 18042 --data-dir "$$dir/auth" --log-level error & authpid=$$!; pids="$$pids $$!"; \
	./$(BIN) ready --addr http://127.0.0.1:18040 --timeout 60s; \
	./$(BIN) ready --addr https://127.0.0.1:18041 --cacert "$$dir/cert.pem" --timeout 60s; \
	./$(BIN) ready --addr http://127.0.0.1:18042 --timeout 60s; \
	$(call install_wrk,bench-security); \
	printf '%s\n' 'request = function() return wrk.format("GET", string.format("/cache/bench-%08d", math.random(0, 9999))) end' >"$$dir/get.lua"; \
	printf '%s\n' 'wrk.method = "PUT"' 'wrk.body = string.rep("v", 100)' \
		'wrk.headers["Content-Type"] = "application/octet-stream"' \
		'request = function() return wrk.format(nil, "/cache/wrk-" .. math.random(0, 99999)) end' >"$$dir/put.lua"; \
	ticks() { awk '{print $$14 + $$15}' /proc/$$1/stat; }; \
	hz=$$(getconf CLK_TCK); \
	run1() { \
		tool=$$1; op=$$2; kind=$$3; pid=$$4; url=$$5; shift 5; \
		t0=$$(ticks $$pid); \
		if [ $$tool = disperse ]; then \
			./$(BIN) bench --op $$op --keys 10000 --clients 64 --duration 10s --addr $$url "$$@" >"$$dir/out.txt"; \
			rps=$$(awk '/ req\/s /{print $$2; exit}' "$$dir/out.txt"); n=$$(awk '/ req\/s /{for(i=1;i<NF;i++) if($$i=="requests") print $$(i+1); exit}' "$$dir/out.txt"); \
			line=$$(grep ' req/s ' "$$dir/out.txt" | cut -d' ' -f2- | tr -s ' '); \
		else \
			wrk -t2 -c64 -d10s --latency -s "$$dir/$$op.lua" "$$@" $$url >"$$dir/out.txt"; \
			rps=$$(awk '/^Requests\/sec:/{print $$2}' "$$dir/out.txt"); n=$$(awk '/requests in/{print $$1}' "$$dir/out.txt"); \
			line="$$(grep -E 'Requests/sec|Non-2xx|Socket errors' "$$dir/out.txt" | tr -s ' ' | paste -sd';' -) $$(grep -E '^ +(50|99)%' "$$dir/out.txt" | tr -s ' ' | paste -sd' ' -)"; \
		fi; \
		us=$$(awk -v t=$$(( $$(ticks $$pid) - t0 )) -v hz=$$hz -v n=$$n 'BEGIN { printf "%.1f", t / hz / n * 1e6 }'); \
		echo "$$rps $$us" >>"$$dir/r.$$kind"; \
		printf '  %-8s %s; node CPU %s us/request\n' $$kind "$$line" $$us; \
	}; \
	compare() { \
		tool=$$1; op=$$2; name=$$3; gpid=$$4; gurl=$$5; shift 5; : >"$$dir/r.open"; : >"$$dir/r.guarded"; \
		echo "== $$tool, $$op, 64 clients, 100-byte values: an open node (plain HTTP, no token) vs $$name"; \
		for kind in open guarded open guarded open; do \
			if [ $$kind = open ]; then run1 $$tool $$op open $$openpid http://127.0.0.1:18040; \
			else run1 $$tool $$op guarded $$gpid $$gurl "$$@"; fi; \
		done; \
		awk -v name="$$name" -v tool=$$tool 'FNR==1{f++} {r[f]+=$$1; c[f]+=$$2; n[f]++} END { \
			printf "%s: %s / open: %.3f of the requests/s (means %.0f and %.0f), %.3f by node CPU per request (%.1f and %.1f us)\n", \
				tool, name, (r[2]/n[2])/(r[1]/n[1]), r[2]/n[2], r[1]/n[1], (c[1]/n[1])/(c[2]/n[2]), c[2]/n[2], c[1]/n[1] }' "$$dir/r.open" "$$dir/r.guarded"; \
	}; \
	compare disperse get "GET with a token over TLS" $$tlspid https://127.0.0.1:18041 --token $$tok --cacert "$$dir/cert.pem"; \
	compare disperse put "PUT with a token" $$authpid http://127.0.0.1:18042 --token $$tok; \
	if command -v wrk >/dev/null; then \
		compare wrk get "GET with a token over TLS" $$tlspid https://127.0.0.1:18041 -H "Authorization: Bearer $$tok"; \
		compare wrk put "PUT with a token" $$authpid http://127.0.0.1:18042 -H "Authorization: Bearer $$tok"; \
	else \
		echo 'bench-security: wrk not installed and apt-get could not install it; the wrk figures are skipped'; \
	fi

## bench-blob: six nodes on loopback; one 256 MiB and one 2 GiB blob (k=4, m=2) through the
## first, against a file + fsync baseline, with the first node's peak memory
bench-blob: build
	@set -e; dir=$$(mktemp -d); pids=; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; rm -rf "$$dir"' EXIT; \
	for i in 1 2 3 4 5 6; do \
		./$(BIN) serve --name blob$$i --gossip-port $$((17945+i)) --resp-port 0 --http-port $$((17999+i)) \
			--data-dir "$$dir/node$$i" --join 127.0.0.1:17946 --log-level warn \
			>"$$dir/node$$i.log" 2>&1 & pids="$$pids $$!"; \
	done; \
	set -- $$pids; first=$$1; tries=0; \
	until [ "$$(./$(BIN) members --json --addr http://127.0.0.1:18000 2>/dev/null | grep -o '"state":"alive"' | wc -l)" -eq 6 ]; do \
		tries=$$((tries+1)); \
		if [ $$tries -gt 300 ]; then echo 'bench-blob: 6 nodes not alive after 60s'; cat "$$dir"/node*.log; exit 1; fi; \
		sleep 0.2; \
	done; \
	for size in 256MiB 2GiB; do \
		./$(BIN) bench --op blob --addr http://127.0.0.1:18000 --blob-bytes $$size \
			--data 4 --parity 2 --compare --pid $$first; \
	done

## bench-resp: redis-benchmark (-c 64 -d 100 -r 100000) against nodes and against Debian's
## redis-server in one run, node and server alternated three times (median ratio), then SET on one
## node of three against the single node; installs redis-tools and redis-server when they are missing
RESP_BENCH_N ?= 100000
bench-resp: build
	@command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server >/dev/null; }
	@set -e; dir=$$(mktemp -d); pids=; mkdir -p "$$dir/aof" "$$dir/mem"; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; rm -rf "$$dir"' EXIT; \
	./$(BIN) serve --name always --gossip-port 17980 --http-port 18030 --resp-port 16380 --data-dir "$$dir/always" --log-level warn & pids="$$pids $$!"; \
	./$(BIN) serve --name never --gossip-port 17981 --http-port 18031 --resp-port 16381 --data-dir "$$dir/never" --fsync never --log-level warn & pids="$$pids $$!"; \
	redis-server --port 16390 --save '' --appendonly yes --appendfsync always --dir "$$dir/aof" --logfile "$$dir/aof.log" & pids="$$pids $$!"; \
	redis-server --port 16391 --save '' --appendonly no --dir "$$dir/mem" --logfile "$$dir/mem.log" & pids="$$pids $$!"; \
	for p in 18030 18031; do ./$(BIN) ready --addr http://127.0.0.1:$$p --timeout 60s; done; \
	for p in 16390 16391; do tries=0; until redis-cli -p $$p ping >/dev/null 2>&1; do \
		tries=$$((tries+1)); [ $$tries -le 300 ] || { echo "bench-resp: redis-server on $$p did not start"; exit 1; }; sleep 0.2; done; done; \
	rps() { redis-benchmark -p $$1 -c 64 -d 100 -r 100000 -n $$2 -P $$3 -t $$4 --csv | tail -1 | cut -d, -f2 | tr -d '"'; }; \
	cmp() { rs=; line=; for i in 1 2 3; do a=$$(rps $$2 $$4 $$5 $$6); b=$$(rps $$3 $$4 $$5 $$6); \
			r=$$(awk -v a=$$a -v b=$$b 'BEGIN{printf "%.2f", a/b}'); rs="$$rs $$r"; line="$$line $$a/$$b"; done; \
		echo "$$1: $${7:-node/redis-server} per s$$line; ratios$$rs, median $$(echo $$rs | tr ' ' '\n' | sort -n | sed -n 2p)"; }; \
	n=$(RESP_BENCH_N); \
	cmp "SET, --fsync always vs appendonly yes, appendfsync always" 16380 16390 $$n 1 set; \
	cmp "SET, --fsync never vs no persistence" 16381 16391 $$n 1 set; \
	cmp "GET" 16380 16390 $$n 1 get; \
	cmp "GET -P 16 (--fsync never vs no persistence)" 16381 16391 $$((n*5)) 16 get; \
	cmp "SET -P 16 (--fsync never vs no persistence)" 16381 16391 $$((n*5)) 16 set; \
	cmp "SET -P 16, --fsync always vs appendfsync always" 16380 16390 $$((n*5)) 16 set; \
	for i in 1 2 3; do \
		./$(BIN) serve --name rep$$i --gossip-port $$((17982+i)) --http-port $$((18032+i)) --resp-port $$((16381+i)) \
			--data-dir "$$dir/rep$$i" --join 127.0.0.1:17983 --log-level warn & pids="$$pids $$!"; \
	done; \
	tries=0; until [ "$$(./$(BIN) members --json --addr http://127.0.0.1:18033 2>/dev/null | grep -o '"state":"alive"' | wc -l)" -eq 3 ]; do \
		tries=$$((tries+1)); [ $$tries -le 300 ] || { echo 'bench-resp: 3 nodes not alive after 60s'; exit 1; }; sleep 0.2; done; \
	cmp "SET, --fsync always, to one node of three (replicated to both others) vs a single node" 16382 16380 $$n 1 set 'three/single'

## bench-memory: resident memory of a node and of Debian's redis-server filled with the same
## 1,000,000 keys of 100 bytes (redis-cli --pipe), after the fill and after a restart, with the
## time from start to serving (each start after a sync, so that neither waits on the other's
## writes still going to the disk); then a node with --max-memory $(MEM_BENCH_BOUND) MiB under PUTs over
## HTTP (disperse bench, 2,000,000 keys) with its peak resident memory; then GETs (wrk) of keys
## that a node at that bound holds, against a node without one. Installs redis-server and wrk when
## missing.
MEM_BENCH_KEYS ?= 1000000
MEM_BENCH_BOUND ?= 128
MEM_BENCH_SECONDS ?= 120
bench-memory: build
	@command -v redis-cli >/dev/null && command -v redis-server >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server >/dev/null; }
	@set -e; dir=$$(mktemp -d); pids=; mkdir -p "$$dir/redis"; \
	trap 'st=$$?; [ -z "$$pids" ] || kill $$pids 2>/dev/null; wait 2>/dev/null; rm -rf "$$dir"; exit $$st' EXIT; \
	rss() { awk '/^VmRSS/{printf "%.1f", $$2/1024}' /proc/$$1/status; }; \
	now() { date +%s.%N; }; \
	gen() { awk -v n=$$1 -v size=$$2 'BEGIN{v=sprintf("%" size "s",""); gsub(/ /,"v",v); for(i=0;i<n;i++){k="k" i; printf "*3\r\n$$3\r\nSET\r\n$$%d\r\n%s\r\n$$%d\r\n%s\r\n", length(k), k, size, v}}'; }; \
	node() { ./$(BIN) serve --name mem --gossip-port 17990 --http-port 18050 --resp-port 16392 --data-dir "$$dir/$$1" --fsync never --log-level warn $$2 & pid=$$!; pids="$$pids $$pid"; \
		./$(BIN) ready --addr http://127.0.0.1:18050 --timeout 300s >/dev/null; }; \
	redis() { redis-server --port 16393 --save '' --appendonly no --dir "$$dir/redis" --logfile "$$dir/redis.log" & rpid=$$!; pids="$$pids $$rpid"; \
		until [ "$$(redis-cli -p 16393 info persistence 2>/dev/null | tr -d '\r' | grep '^loading:')" = loading:0 ]; do sleep 0.05; done; }; \
	n=$(MEM_BENCH_KEYS); \
	t0=$$(now); node full; gen $$n 100 | redis-cli -p 16392 --pipe >/dev/null; sleep 2; nfill=$$(rss $$pid); sleep 8; nquiet=$$(rss $$pid); \
	kill $$pid; wait $$pid || true; sync; t0=$$(now); node full; nstart=$$(awk -v a=$$t0 -v b=$$(now) 'BEGIN{printf "%.2f", b-a}'); nrest=$$(rss $$pid); \
	kill $$pid; wait $$pid || true; \
	redis; gen $$n 100 | redis-cli -p 16393 --pipe >/dev/null; sleep 2; rfill=$$(rss $$rpid); sleep 8; rquiet=$$(rss $$rpid); redis-cli -p 16393 save >/dev/null; \
	redis-cli -p 16393 shutdown nosave >/dev/null 2>&1 || true; wait $$rpid || true; \
	sync; t0=$$(now); redis; rstart=$$(awk -v a=$$t0 -v b=$$(now) 'BEGIN{printf "%.2f", b-a}'); rrest=$$(rss $$rpid); \
	redis-cli -p 16393 shutdown nosave >/dev/null 2>&1 || true; wait $$rpid || true; \
	echo "== $$n keys of 100 bytes: resident MiB node/redis-server"; \
	echo "after the fill:    $$nfill / $$rfill (ratio $$(awk -v a=$$nfill -v b=$$rfill 'BEGIN{printf "%.2f", a/b}'))"; \
	echo "10 s after it:     $$nquiet / $$rquiet (ratio $$(awk -v a=$$nquiet -v b=$$rquiet 'BEGIN{printf "%.2f", a/b}'))"; \
	echo "after a restart:   $$nrest / $$rrest (ratio $$(awk -v a=$$nrest -v b=$$rrest 'BEGIN{printf "%.2f", a/b}'))"; \
	echo "start to serving:  $$nstart s / $$rstart s"; \
	b=$(MEM_BENCH_BOUND); \
	node bounded "--max-memory $${b}MiB"; echo 0 > "$$dir/peak"; \
	( peak=0; while kill -0 $$pid 2>/dev/null; do r=$$(awk '/^VmRSS/{print $$2}' /proc/$$pid/status 2>/dev/null); \
		if [ "$${r:-0}" -gt $$peak ]; then peak=$$r; echo $$peak > "$$dir/peak.tmp"; mv "$$dir/peak.tmp" "$$dir/peak"; fi; sleep 0.05; done ) & sampler=$$!; \
	echo "== --max-memory $${b}MiB, PUT over HTTP of 100-byte values to 2,000,000 keys for $(MEM_BENCH_SECONDS) s (16 clients):"; \
	./$(BIN) bench --op put --addr http://127.0.0.1:18050 --keys 2000000 --clients 16 --duration $(MEM_BENCH_SECONDS)s; sleep 1; \
	echo "peak resident $$(awk '{printf "%.1f", $$1/1024}' "$$dir/peak") MiB, after $$(rss $$pid) MiB; $$(curl -s http://127.0.0.1:18050/metrics | grep -E '^disperse_(keys|eviction_stubs|evictions_total|memory_used_bytes|memory_budget_bytes)' | tr '\n' ' ')"; \
	kill $$pid; wait $$pid 2>/dev/null || true; wait $$sampler 2>/dev/null || true; pids=; \
	$(call install_wrk,bench-memory); \
	if ! command -v wrk >/dev/null; then echo 'bench-memory: wrk not installed and apt-get could not install it; the GET figures are skipped'; exit 0; fi; \
	./$(BIN) serve --name getb --gossip-port 17991 --http-port 18052 --resp-port 16394 --data-dir "$$dir/getb" --fsync never --log-level warn --max-memory $${b}MiB & pids="$$pids $$!"; \
	./$(BIN) serve --name getu --gossip-port 17992 --http-port 18053 --resp-port 16395 --data-dir "$$dir/getu" --fsync never --log-level warn & pids="$$pids $$!"; \
	for p in 18052 18053; do ./$(BIN) ready --addr http://127.0.0.1:$$p --timeout 60s >/dev/null; done; \
	gen $$n 100 | redis-cli -p 16394 --pipe >/dev/null; gen $$n 100 | redis-cli -p 16395 --pipe >/dev/null; \
	idle() { for q in 18052 18053; do until [ "$$(curl -s http://127.0.0.1:$$q/metrics | awk '/^disperse_snapshot_in_progress /{print $$2}')" = 0 ]; do sleep 0.2; done; done; }; \
	printf '%s\n' "request = function() return wrk.format(\"GET\", \"/cache/k\" .. math.random($$((n*9/10)), $$((n-1)))) end" >"$$dir/get.lua"; \
	echo "== GET with wrk (2 threads, 64 connections, 8 s) of the last tenth of the $$n keys, which a node with --max-memory $${b}MiB still holds, against a node without a bound; each once no snapshot runs, alternated three times"; \
	gets() { idle; wrk -t2 -c64 -d8s -s "$$dir/get.lua" http://127.0.0.1:$$1 | awk '/^Requests\/sec:/{printf "%s", $$2} /^  Non-2xx/{printf " (non-2xx %s)", $$NF}'; }; \
	rs=; line=; for i in 1 2 3; do \
		bnd=$$(gets 18052); unb=$$(gets 18053); \
		rs="$$rs $$(awk -v a=$${bnd%% *} -v b=$${unb%% *} 'BEGIN{printf "%.2f", a/b}')"; line="$$line $$bnd/$$unb"; \
	done; \
	echo "GET bounded/unbounded per s$$line; ratios$$rs, median $$(echo $$rs | tr ' ' '\n' | sort -n | sed -n 2p); bounded node: $$(curl -s http://127.0.0.1:18052/metrics | grep -E '^disperse_(keys|cache_misses_total) ' | tr '\n' ' ')"; \
	kill $$pids; wait $$pids 2>/dev/null || true; pids=

## fuzz: a short run of every fuzz target
fuzz:
	CGO_ENABLED=1 $(GO) test ./wal -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./engine -run '^$$' -fuzz FuzzDecodeEntries -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./engine -run '^$$' -fuzz FuzzOrdered -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./resp -run '^$$' -fuzz FuzzReader -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./httpd -run '^$$' -fuzz FuzzParseTTL -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./httpd -run '^$$' -fuzz FuzzParseRange -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./httpd -run '^$$' -fuzz FuzzJSONPut -fuzztime 30s
	CGO_ENABLED=1 $(GO) test ./httpd -run '^$$' -fuzz FuzzBlobQuery -fuzztime 30s

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin cluster-data
