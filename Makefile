# SSL-Messager. `make demo` runs the main job, `make test` the tests.
GO      ?= go
BIN     := bin
BINS    := server client gencert loadgen demo
# Where run-server and run-client keep their data.
DATA    ?= .

.PHONY: all build demo-bins test e2e-vectors fuzz demo run-server run-client certs bench bench-quick fmt vet clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./server ./client ./tools/gencert ./tools/loadgen ./tools/demo

# What the demo runs, without the load generator.
demo-bins:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./server ./client ./tools/gencert ./tools/demo

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory e2e-vectors

# The end-to-end encryption vectors recomputed independently in Python
# (testdata/e2e/check.py), when python3 has the cryptography package.
e2e-vectors:
	@if python3 -c 'import cryptography' 2>/dev/null; then python3 testdata/e2e/check.py; \
	else echo "SKIPPED: testdata/e2e/check.py (python3 with the cryptography package not found; Debian: apt-get install python3-cryptography)"; fi

# Every fuzz target in turn, FUZZTIME each (go test allows one target per
# run). New interesting inputs land in Go's cache; copy the ones worth
# keeping into the package's testdata/fuzz/, which make test replays.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Server plus two scripted clients exchanging messages and a file, on a
# fresh users.csv and spool under .demo/; exits non-zero if a step fails.
demo: demo-bins
	$(BIN)/demo --bin $(BIN) --dir .demo

certs: build
	@if [ -f certs/server.pem ]; then echo "certs/ already has certificates (bin/gencert --force to replace them)"; \
	else $(BIN)/gencert --dir certs; fi

run-server: certs
	$(BIN)/server --listen 127.0.0.1:18443 --users $(DATA)/users.csv --spool $(DATA)/spool --offline $(DATA)/offline

run-client: build
	$(BIN)/client --server localhost:18443 --ca certs/ca.pem

# The standard load suite against a fresh server per scenario (minutes),
# then the Go micro-benchmarks.
bench: build
	$(BIN)/loadgen suite --bin $(BIN) --dir .bench
	$(GO) test -run '^$$' -bench . -benchmem ./internal/wire ./internal/relay

# The same suite in a small size (seconds): CI runs it.
bench-quick: build
	$(BIN)/loadgen suite --bin $(BIN) --dir .bench --quick

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN) .demo .bench
