# Developer entry points. Each target wraps one command; the scripts say more.
GO ?= go

# STATICCHECK_VERSION comes from .ci/versions, which .ci/run reads too, so
# `make lint` runs the same staticcheck as CI.
include .ci/versions
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN_DIR)/staticcheck

.PHONY: test test-norace demo fuzz bench soak lint ci

# The race detector needs cgo: CGO_ENABLED=1 and a C compiler (gcc or clang).
test:
	$(GO) test -race ./... ./examples/...

# The same tests without the race detector, for machines without a C compiler.
test-norace:
	CGO_ENABLED=0 $(GO) test ./... ./examples/...

demo:
	$(GO) run ./examples/quickstart

fuzz:
	scripts/fuzz

bench:
	scripts/bench

soak:
	scripts/soak

# lint installs staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR), as .ci/run does.
lint:
	@out=$$(gofmt -l $$(find . -name "*.go" -not -path "*/testdata/*" -not -path "./.git/*")); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi
	$(GO) vet ./... ./examples/...
	GOBIN="$(GOBIN_DIR)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./... ./examples/...

ci:
	bash .ci/run
