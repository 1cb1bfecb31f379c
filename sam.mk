# sam.mk: the build targets of template.yaml (BuildMethod: makefile).
#
# `sam build` runs `make build-<LogicalId>` in the repository root (CodeUri: .)
# with ARTIFACTS_DIR set; each target writes that function's `bootstrap` for
# provided.al2023 on arm64. The root Makefile includes this file; it also
# works alone: make -f sam.mk build-StatusFunction ARTIFACTS_DIR=/tmp/out

SAM_GOENV   := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
SAM_GOFLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

# $(call sam_go_build,<dir under functions/>)
define sam_go_build
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 2; }
	@test -d ./functions/$(1) || { echo "functions/$(1) is missing" >&2; exit 2; }
	$(SAM_GOENV) go build $(SAM_GOFLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
endef

.PHONY: build-OAuthStartFunction build-OAuthCallbackFunction build-OAuthLoginFunction build-DisconnectFunction build-StatusFunction \
	build-PollFanoutFunction build-PollTenantFunction build-OrderNotifyFunction

build-OAuthStartFunction:
	$(call sam_go_build,oauthstart)

build-OAuthCallbackFunction:
	$(call sam_go_build,oauthcallback)

build-OAuthLoginFunction:
	$(call sam_go_build,oauthlogin)

build-DisconnectFunction:
	$(call sam_go_build,disconnect)

build-StatusFunction:
	$(call sam_go_build,status)

build-PollFanoutFunction:
	$(call sam_go_build,pollfanout)

build-PollTenantFunction:
	$(call sam_go_build,polltenant)

build-OrderNotifyFunction:
	$(call sam_go_build,ordernotify)

.PHONY: build-InboundMailFunction
build-InboundMailFunction:
	$(call sam_go_build,inboundmail)

.PHONY: build-SendReplyFunction build-OutboundFunction build-ReplySenderFunction build-SesEventsFunction
build-SendReplyFunction:
	$(call sam_go_build,sendreply)

build-OutboundFunction:
	$(call sam_go_build,outbound)

build-ReplySenderFunction:
	$(call sam_go_build,replysender)

build-SesEventsFunction:
	$(call sam_go_build,sesevents)
