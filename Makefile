# Developer entry points. Each target wraps one command; the scripts say more.
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: test demo fuzz bench soak lint ci

test:
	$(GO) test -race ./...

demo:
	$(GO) run ./examples/quickstart

fuzz:
	scripts/fuzz

bench:
	scripts/bench

soak:
	scripts/soak

lint:
	@out=$$(gofmt -l $$(find . -name "*.go" -not -path "*/testdata/*" -not -path "./.git/*")); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

ci:
	bash .ci/run
