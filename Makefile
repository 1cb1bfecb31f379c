# keybuzz-amazon: local development and CI.  See docs/local-stack.md.
#
#   make dev                        local services + API on http://127.0.0.1:3000
#   make test                       gofmt, vet, then every test against an ephemeral stack
#   make setup                      only install what is missing (dev and test do it first)
#   make token TENANT=<id>          a Bearer JWT the local run accepts
#   make invoke FN=<fn> EVENT=<f>   run a function's bootstrap under aws-lambda-rie
#   make mail FILE=<eml> TENANT=<id> deliver a mail to the tenant's inbound address (SMTP, as SES receives it)
#   make build                      the Lambda bootstraps into build/<fn>/bootstrap
#   make migrate-app [ARGS=-apply]  move connections to AMAZON_SPAPI_APP_SOURCE's app (dry run first)

.DEFAULT_GOAL := help
SHELL := /bin/bash

GO        ?= go
STACK     := .local/bin/stack
FUNCTIONS := oauthstart oauthcallback oauthlogin status disconnect pollfanout polltenant ordernotify inboundmail sendreply outbound replysender sesevents
LAMBDA_ARCH ?= arm64
TENANT    ?= tenant-local
GOFILES    = $(shell find . -name '*.go' -not -path './.local/*' -not -path '*/node_modules/*' -not -path './build/*')

# build-<LogicalId> targets for `sam build` (BuildMethod: makefile).
-include sam.mk

.PHONY: help setup dev up test fmt-check vet token migrate migrate-app invoke mail poll-once build bench chaos clean distclean stack

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

# The stack command is built (not `go run`) so that `stack run` can pass the
# wrapped command's exit code through (go run turns every failure into 1).
stack:
	@$(GO) build -o $(STACK) ./cmd/stack

# Installs what the stack needs and is missing (PostgreSQL, fauxqs, the Vault
# dev server, aws-lambda-rie, Go modules), with a progress line per step;
# what is there is skipped. Every target that starts the stack runs it first,
# so on a clean clone `make dev` and `make test` are enough.
setup: stack
	@$(STACK) setup

dev: setup
	$(STACK) run --profile dev -- $(GO) run ./cmd/local

# Only the services (no API), for running things by hand against .local/dev.env.
up: setup
	$(STACK) up --profile dev

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi

vet:
	$(GO) vet ./...

# The chaos soak runs alone, after the other packages: it judges timing
# (every failed delivery must meet a fault it injected), and the other test
# binaries' load on two cores adds failures it could not explain.
test: setup fmt-check vet
	$(STACK) run --profile test -- $(GO) test -count=1 $$($(GO) list ./... | grep -v '/chaos$$')
	$(STACK) run --profile test -- $(GO) test -count=1 ./chaos

token: stack
	@$(STACK) exec --env-file .local/dev.env -- $(GO) run ./cmd/token -tenant $(TENANT)

migrate: stack
	$(STACK) exec --env-file .local/dev.env -- $(GO) run ./cmd/migrate

# Move connections to AMAZON_SPAPI_APP_SOURCE's app: a dry run unless
# ARGS="-apply" (also -to, -batch, -limit; see cmd/migrateapp).
migrate-app: stack
	$(STACK) exec --env-file .local/dev.env -- $(GO) run ./cmd/migrateapp $(ARGS)

invoke:
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=<file>" >&2; exit 2; }
	$(GO) run ./cmd/invoke -fn $(FN) -event $(EVENT)

mail: stack
	@test -n "$(FILE)" -a -n "$(TENANT)" || { echo "usage: make mail FILE=<path.eml> TENANT=<id> [COUNTRY=FR]" >&2; exit 2; }
	@$(STACK) exec --env-file .local/dev.env -- $(GO) run ./cmd/mail -file "$(FILE)" -tenant "$(TENANT)" $(if $(COUNTRY),-country "$(COUNTRY)")

poll-once: stack
	$(STACK) exec --env-file .local/dev.env -- $(GO) run ./cmd/local -poll-once

build:
	@for fn in $(FUNCTIONS); do \
		echo "build/$$fn/bootstrap (linux/$(LAMBDA_ARCH))"; \
		GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
			-o build/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

bench: setup
	$(STACK) run --profile test -- $(GO) run ./bench

chaos: setup
	$(GO) run ./chaos -md RELIABILITY.md -json chaos/results.json $(CHAOS_ARGS)

# Build outputs only; `make distclean` also drops the dev database (.local/).
clean:
	rm -rf build .local/bin .local/build

distclean: clean
	rm -rf .local
