# stratum: the two commands a fresh machine needs are `make run` and `make test`.
GO ?= go
BIN := bin/stratum

.PHONY: run test build vet fmt-check tidy-check test-short bench compose-test fuzz negative-controls chaos chaos-short model clean

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/stratum

# A local cluster: one embedded etcd and 3 data nodes on 127.0.0.1:9001-9003,
# data under ./stratum-dev. Ctrl-C stops it; a restart keeps every object.
run: build
	./$(BIN) dev --dir stratum-dev

# Everything CI runs: formatting, a tidy module, vet, the import-direction
# check, and every test with the race detector.
test: fmt-check tidy-check vet
	$(GO) test -race -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

# go.mod lists direct dependencies as direct and go.sum holds exactly what
# the build and tests need: `go mod tidy` must change nothing.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Go benchmarks of the hot paths, then `stratum bench` against fresh local
# clusters (see docs/performance.md for the figures and how to read them).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./ring ./api ./datanode/store ./tests
	scripts/bench-cluster.sh 10000

# Every fuzz target for FUZZTIME each (their seed corpora already run in
# `make test`).
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./api ./api/objid ./ring ./controlplane ./tests ./datanode/httpbody ./datanode/git/pktline ./datanode/git/object ./datanode/git/pack ./datanode/git/receivepack; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

# Builds each deliberately planted bug in (internal/planted) and checks that
# the test meant to catch it fails (docs/testing.md).
negative-controls:
	scripts/negative-controls.sh

# The seeded fault-injection suite (docs/testing.md): TestChaos once per
# seed in SEEDS, each for DURATION, then TestCrashLoop with CRASHES kills.
# Reports go to chaos-reports/. A failing seed prints its replay command.
# NODES=5 adds the majorities ring, drains and removals to the faults.
SEEDS ?= 1 2 3
DURATION ?= 60s
CRASHES ?= 15
NODES ?= 3
CHAOS_TESTS ?= ^(TestChaos|TestCrashLoop)$$
chaos:
	STRATUM_CHAOS_SEEDS="$(SEEDS)" STRATUM_CHAOS_DURATION=$(DURATION) STRATUM_CHAOS_NODES=$(NODES) \
	STRATUM_CHAOS_REPORT_DIR=$(CURDIR)/chaos-reports \
	STRATUM_CRASHLOOP_ROUNDS=$(CRASHES) $(GO) test -count=1 -v -timeout 4h -run '$(CHAOS_TESTS)' ./tests

# A few short seeds, about 4 minutes on 2 cores: seeds 7 and 18 on 3 nodes
# (between them a kill, a failing fsync, clock jumps, a slow node, etcd
# cuts, full disks and an isolation) with the crash loop, then seed 326 on
# 5 nodes (a majorities ring, drains, a split, a forced removal, a pause
# and a clock jump).
chaos-short:
	$(MAKE) chaos SEEDS="7 18" DURATION=30s CRASHES=10
	$(MAKE) chaos SEEDS=326 DURATION=45s NODES=5 CHAOS_TESTS='^TestChaos$$'

# The model-based store test (docs/testing.md) for longer than `make test`
# runs it: OPS operations on each seed in SEEDS, concurrent bursts included.
# A failing seed prints its replay command.
OPS ?= 3000
model:
	STRATUM_STORE_MODEL_SEEDS="$(SEEDS)" STRATUM_STORE_MODEL_OPS=$(OPS) \
	$(GO) test -race -count=1 -v -timeout 2h -run '^TestStoreModel$$' ./datanode/store

# The Docker Compose deployment, end to end (needs Docker and docker-compose).
compose-test:
	deploy/compose-test.sh

clean:
	rm -rf bin stratum-dev chaos-reports
