# tailhorizon: CoreDNS with the tailnet split-horizon plugins.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
BIN     := bin/coredns
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test bench bench-realworld lint fuzz clean thirdparty release
.DEFAULT_GOAL := build

bin:
	mkdir -p bin

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/coredns

# The demo world (cmd/demo/world) on 127.0.0.1:5300 until Ctrl-C: coredns
# with an embedded tailnet, an mDNS LAN (as root) and a public stand-in.
# SOCKET=/run/tailscale/tailscaled.sock runs it on a real tailscaled instead.
SOCKET ?=
run: build
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/demo ./cmd/demo
	./bin/demo $(if $(SOCKET),-socket $(SOCKET))

# The short fuzz run goes first, so that go test's results close the output.
# The timeout is for one package: on a cold machine test/install builds
# stock CoreDNS with our plugins (its dependencies fetched first) and a
# linux/arm64 binary, about 13 minutes on 2 cores; warm, under 3.
test: lint thirdparty
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	$(GO) test -race -count=1 -timeout 25m ./...

# Each fuzz target for FUZZTIME (a short run in make test; run it for 10m
# per target before a release). Seeds are in the fuzz_test.go files.
FUZZTIME ?= 10m
FUZZ_TARGETS := tailnet:FuzzServeDNS tailnet:FuzzParse tailnet:FuzzRecords fallback:FuzzServeDNS fallback:FuzzParse \
	mdns/internal/lan:FuzzInspect mdns:FuzzServeDNS mdns:FuzzParse
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline
# exceeded" as -fuzztime ends (golang/go#75804, fixed in 1.27): such a run,
# with no failing input written, is run once more.
fuzz: bin
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz plugin/$$pkg $$fn for $(FUZZTIME)"; \
		for try in 1 2; do \
			if $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./plugin/$$pkg/ >bin/fuzz.log 2>&1; then \
				if grep -q 'no fuzz tests to fuzz' bin/fuzz.log; then echo "  no $$fn in plugin/$$pkg"; exit 1; fi; break; \
			fi; \
			if [ $$try = 1 ] && grep -q 'context deadline exceeded' bin/fuzz.log && ! grep -q 'Failing input written' bin/fuzz.log; then \
				echo "  the fuzz coordinator's deadline race (golang/go#75804), no failing input: once more"; continue; \
			fi; \
			cat bin/fuzz.log; exit 1; \
		done; \
	done

BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# Go benchmarks of the plugins next to stock CoreDNS plugins in the same run
# (GOBENCH=0 skips them), then, with dnsperf installed, the dnsperf
# benchmarks against bin/coredns: test/bench/fallback.sh (the fallback path
# against cache + forward, about 5 minutes) and, as root, test/bench/plugins.sh
# (tailnet, mdns and fallback next to whoami, hosts and template on the demo
# world, failover time, memory under a flood of names; about 8 minutes).
# Durations come from the environment (see the scripts). docs/benchmarks.md
# keeps the latest figures; this run's are in bin/bench*.{txt,md,png}.
GOBENCH ?= 1
bench: build
	@if [ "$(GOBENCH)" != 0 ]; then \
		$(GO) test -run '^$$' -bench . -benchmem -count 6 ./plugin/... | tee bin/bench.txt && \
		$(GO) run $(BENCHSTAT) bin/bench.txt; \
	fi
	@if ! command -v dnsperf >/dev/null 2>&1; then \
		echo "dnsperf not installed (apt-get install dnsperf dnsutils gnuplot-nox): skipping test/bench/*.sh"; \
	else \
		rc=0; \
		test/bench/fallback.sh $(BIN) >bin/bench-fallback.md || rc=1; \
		cat bin/bench-fallback.md; \
		if [ "$$(id -u)" != 0 ]; then \
			echo "not root: skipping test/bench/plugins.sh (the demo world's mDNS LAN is a veth pair)"; \
		else \
			test/bench/plugins.sh $(BIN) >bin/bench-plugins.md || rc=1; \
			cat bin/bench-plugins.md; \
		fi; \
		exit $$rc; \
	fi

# Failover times and the cost of probing against real headscale and
# tailscaled (test/realworld_bench_test.go; TRIALS=10 each, about 10 minutes,
# as root); the tables go to bin/failover.md and bin/probe-cost.md.
bench-realworld: thirdparty bin
	TAILHORIZON_BENCH=$(CURDIR)/bin $(GO) test -count=1 -timeout 30m -run '^TestBench' -v ./test/ | tee bin/bench-realworld.txt

# The real tailscaled, tailscale and headscale binaries that test/realnet
# runs, built once into $TAILHORIZON_CACHE (default ~/.cache/tailhorizon).
thirdparty:
	GO=$(GO) test/realnet/build.sh

# Static, stripped binaries with VERSION in them (`coredns -version`), one
# per RELEASE_TARGETS entry (GOOS/GOARCH[/GOARM]), a .deb for each Linux one
# (packaging/deb/build.sh) and SHA256SUMS, into RELEASE_DIR. On a busy
# 2-core machine one cold cross build takes 5 to 8 minutes; warm, the six
# take 90 s. test/install (TestRelease) runs it for linux/arm64 only.
RELEASE_DIR ?= bin/release
RELEASE_TARGETS ?= linux/amd64 linux/arm64 linux/arm/7 darwin/arm64 darwin/amd64 windows/amd64
release:
	rm -rf $(RELEASE_DIR)
	mkdir -p $(RELEASE_DIR)
	@set -e; for t in $(RELEASE_TARGETS); do \
		os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=; \
		case $$rest in */*) arm=$${rest#*/};; esac; \
		ext=; if [ $$os = windows ]; then ext=.exe; fi; \
		bin=$(RELEASE_DIR)/tailhorizon_$(VERSION)_$${os}_$${arch}$${arm:+v$$arm}$$ext; \
		echo "build $$bin"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath \
			-ldflags "-s -w $(LDFLAGS)" -o $$bin ./cmd/coredns; \
		if [ $$os = linux ]; then packaging/deb/build.sh $$bin $$arch $(VERSION) $(RELEASE_DIR); fi; \
	done
	cd $(RELEASE_DIR) && sha256sum -- * >SHA256SUMS
	@cat $(RELEASE_DIR)/SHA256SUMS

lint:
	$(GO) vet ./...
	GOOS=darwin $(GO) build -o /dev/null ./cmd/coredns ./cmd/demo
	GOOS=windows $(GO) build -o /dev/null ./cmd/coredns ./cmd/demo
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
