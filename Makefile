# The few verbs people type. Tool versions are pinned here and installed
# into ./bin with `go install`, so generation needs no remote registry.
BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.5.1
GOTESTSUM_VERSION          ?= v1.13.0
GRPC_GATEWAY_VERSION       ?= v2.34.0
# The S3 server the photo store's tests run against (issue 15).
VERSITYGW_VERSION          ?= v1.8.0
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test generate checkgenerate lint bench tools test-tools build fieldsim faults

## run: bring the whole stack up on this machine (see README)
run:
	bash scripts/dev.sh

## test: the test suite CI runs (needs PostgreSQL+PostGIS; installs PostGIS on Debian as root)
test:
	bash scripts/test.sh

build:
	go build -o bin/ ./cmd/...

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/gotestsum $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2

## test-tools: servers the tests start (versitygw, a real S3 server for the photo store)
test-tools: $(BIN)/versitygw

$(BIN)/versitygw:
	GOBIN=$(BIN) go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/gotestsum:
	GOBIN=$(BIN) go install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
# The JSON gateway and its OpenAPI document (internal/gateway, issue 20).
$(BIN)/protoc-gen-grpc-gateway:
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(BIN)/protoc-gen-openapiv2:
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

## generate: regenerate api/ and proto/descriptors.binpb from proto/
generate: tools
	buf lint
	buf generate
	buf build -o proto/descriptors.binpb

## checkgenerate: fail when api/ is stale
checkgenerate: generate
	@if [ -n "$$(git status --porcelain -- api proto)" ]; then echo "api/ is stale: run 'make generate' and commit"; git status --short -- api proto; exit 1; fi

## lint: buf lint, gofmt, go vet
lint: tools
	buf lint
	@test -z "$$(gofmt -l cmd internal migrations)" || (gofmt -l cmd internal migrations; exit 1)
	go vet ./...

## fieldsim: build the field simulator (see BENCHMARKS.md)
fieldsim:
	go build -o bin/fieldsim ./cmd/fieldsim

## faults: the fault-injection scenarios (long; `bash scripts/faults.sh short` for a quick one)
faults:
	bash scripts/faults.sh

## bench: the benchmarks quoted in BENCHMARKS.md
bench:
	go test -run '^$$' -bench . -benchmem ./internal/...
