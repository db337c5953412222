# Junction's build. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BIN := bin/junction
BUILDER_VERSION := v0.165.0
STATICCHECK_VERSION := v0.8.2
# telemetrygen drives `make perf`; v0.161.0 is the newest the module proxy
# serves.
TELEMETRYGEN_VERSION := v0.161.0
TOOLS := $(CURDIR)/build/tools
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Short fuzz runs in `make test`; raise for a longer local run. Counts, not
# durations: Go 1.26's fuzz coordinator can fail a target with a spurious
# "context deadline exceeded" when a duration runs out while a worker is
# busy (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
# 20000 inputs take 2-8 s per target here. Minimizing a new input is bounded
# by count too.
FUZZTIME ?= 20000x
FUZZMINIMIZETIME ?= 200x

.PHONY: all build run demo test check-tidy check-generated generate lint bench bench-scale soak perf tools plugin fuzz
all: build

## build: the junction binary (bin/junction)
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./collector

## demo: Junction on its default config fed by the scenario simulator, with a
## live view of the alerts; leaves the API up for Grafana
demo: build
	scripts/demo.sh

## run: Junction on its embedded default config (OTLP on 127.0.0.1:4317/4318)
run: build
	$(BIN)

$(TOOLS)/builder:
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(BUILDER_VERSION)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/telemetrygen:
	GOBIN=$(TOOLS) $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)

# mdatagen's version is pinned in tools/mdatagen/go.mod (a module of its own:
# `go install ...@version` needs a version list that the module proxy does
# not serve for it).
$(TOOLS)/mdatagen: tools/mdatagen/go.mod tools/mdatagen/go.sum
	cd tools/mdatagen && GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/mdatagen

tools: $(TOOLS)/builder $(TOOLS)/staticcheck $(TOOLS)/mdatagen $(TOOLS)/telemetrygen

## generate: regenerate collector/components.go from builder-config.yaml, each
## component's metadata code and documentation.md from its metadata.yaml
## (mdatagen), and the generated parts of the docs
generate: $(TOOLS)/builder $(TOOLS)/mdatagen
	scripts/generate.sh $(TOOLS)/builder collector
	scripts/mdatagen.sh $(TOOLS)/mdatagen
	$(GO) generate ./rules
	$(GO) test ./processors/correlationprocessor -run 'TestEntitiesDocInSync' -update

## check-generated: fail when collector/components.go or a component's
## mdatagen output differs from what the builder and mdatagen generate
check-generated: $(TOOLS)/builder $(TOOLS)/mdatagen
	scripts/check-generated.sh $(TOOLS)/builder $(TOOLS)/mdatagen

## check-tidy: fail when `go mod tidy` would change go.mod or go.sum. -e:
## tidy also wants test-only modules of dependencies' own tests, some of
## which the module proxy does not serve (contrib pkg/semconvtest); they are
## never built here. Its complaints about them go to build/tidy.log.
check-tidy:
	@mkdir -p build
	@$(GO) mod tidy -e -diff 2>build/tidy.log || { cat build/tidy.log; echo "go.mod and go.sum are not tidy: run go mod tidy -e and commit the result"; exit 1; }

## test: everything CI runs
test: check-tidy check-generated build
	JUNCTION_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 ./...
	$(MAKE) fuzz
	$(MAKE) -C grafana-plugin test

## plugin: the Grafana plugin (grafana-plugin/dist: frontend bundle and backend binary)
plugin:
	$(MAKE) -C grafana-plugin build

## fuzz: short fuzz runs of the telemetry consume paths (tag junction_fuzz
## leaves out the tests that build whole receivers, which an instrumented
## build would compile for minutes)
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=grafana-plugin '^func Fuzz' . | xargs -r grep -H '^func Fuzz' | sed -E 's#^\./(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1:\2#' | sort -u); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz ./$$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -tags junction_fuzz -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg || exit 1; \
	done

## bench: all benchmarks, 6 runs each, for benchstat
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee build/bench.txt

## perf: CPU per span of bin/junction on the OTLP passthrough, the contrib
## spanmetrics pipeline and Junction's default config, side by side under
## telemetrygen at 500, 2,000 and 5,000 spans/s; prints the Markdown section
## of docs/benchmarks.md (about 11 minutes). PERF_SECS, PERF_ROUNDS,
## PERF_LOADS, PERF_PROFILE_SECS change the runs; PERF_ARGS=-w=docs/benchmarks.md rewrites the
## section; CPU profiles land in build/perf/ (PERF_ARGS=-profile-configs=passthrough,default
## profiles the passthrough too; PERF_ARGS='-idle -configs passthrough,default' measures with no load)
perf: build $(TOOLS)/telemetrygen
	$(GO) run ./scripts/perf -junction $(BIN) -telemetrygen $(TOOLS)/telemetrygen $(PERF_ARGS)

## bench-scale: the correlation processor's cost against the number of
## entities and the span rate (docs/benchmarks.md "Scale curve")
bench-scale:
	$(GO) test -run '^$$' -bench 'BenchmarkScale' -benchmem -benchtime 3x -count 3 -timeout 0 ./processors/correlationprocessor/

## soak: the correlation processor under entity churn for SOAK (10m), its
## live heap every minute (docs/benchmarks.md "Churn soak")
SOAK ?= 10m
soak:
	$(GO) test -run '^$$' -bench BenchmarkChurnSoak -benchtime 1x -timeout 0 ./processors/correlationprocessor/ -soak $(SOAK)

## lint: go vet and staticcheck, on the root module and the plugin's module
## (grafana-plugin/ is its own module: vet it from there, by ./pkg/...,
## since node_modules ships .go files)
lint: $(TOOLS)/staticcheck
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	cd grafana-plugin && $(GO) vet ./pkg/... && $(TOOLS)/staticcheck ./pkg/...
