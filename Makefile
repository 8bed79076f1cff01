# Warren developer tasks. `make test` is what CI runs (.ci/run).

GO      ?= go
PYTHON  := /usr/bin/python3
# Packages also run under the race detector by `make test` and `make race`
# (the core and the fronts; cmd/warren's end-to-end tests run once, without
# -race: building every dependency with the race runtime costs minutes).
RACE_PKGS ?= ./amqpserver/... ./mapping/... ./gateway/...
FUZZTIME  ?= 10s
# Written by .ci/reference-rabbitmq when the reference RabbitMQ answers.
REF_ENV   := /tmp/warren-reference-rabbitmq.env

.PHONY: all build vet test test-deps browser-deps reference-rabbitmq race run generate fuzz

all: build

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# Run every test. The Python tutorial tests (cmd/warren) need pika for
# /usr/bin/python3; test-deps installs it when missing, and
# WARREN_REQUIRE_PYTHON=1 turns a missing pika into a failure, not a skip.
test: test-deps browser-deps reference-rabbitmq
	set -a; if [ -f $(REF_ENV) ]; then . $(REF_ENV); fi; set +a; \
	WARREN_REQUIRE_PYTHON=1 WARREN_REQUIRE_BROWSER=1 $(GO) test -count=1 -timeout 30m ./...
	$(GO) test -race -short -count=1 $(RACE_PKGS)

# Installs python3-pika with apt when /usr/bin/python3 cannot import pika.
test-deps:
	@if $(PYTHON) -c 'import pika' >/dev/null 2>&1; then \
		echo "test-deps: pika found for $(PYTHON)"; \
	else \
		if [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else \
			echo "test-deps: $(PYTHON) cannot import pika and I cannot install it (not root, no sudo)."; \
			echo "test-deps: install it with: apt-get install -y python3-pika"; \
			echo "test-deps: (plain 'go test ./...' skips the Python tutorial tests instead)"; \
			exit 1; \
		fi; \
		echo "test-deps: $(PYTHON) cannot import pika; installing python3-pika:"; \
		echo "+ $${SUDO:+$$SUDO }apt-get update"; \
		$$SUDO apt-get update; \
		echo "+ $${SUDO:+$$SUDO }apt-get install -y python3-pika"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-pika; \
		$(PYTHON) -c 'import pika; print("test-deps: pika", pika.__version__, "installed")'; \
	fi

# (curl and openssl are for the TLS tests: curl --cacert, openssl s_client.)
# Installs what the browser and Node tests need: Debian's chromium (the
# real-browser tests of the WebSocket example page and the web UI drive it
# over the DevTools protocol), node/npm, and the npm packages of
# clients/js/test (@stomp/stompjs, ws, @cloudamqp/amqp-client) from its lockfile.
browser-deps:
	@set -e; SUDO=; if [ "$$(id -u)" != 0 ]; then SUDO="sudo -n"; fi; \
	missing=; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
		echo "browser-deps: installing$$missing"; \
		$$SUDO apt-get update; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else echo "browser-deps: chromium, node and npm found"; fi; \
	if [ ! -d clients/js/test/node_modules/@stomp/stompjs ] || [ ! -d clients/js/test/node_modules/@cloudamqp/amqp-client ]; then \
		echo "+ npm ci in clients/js/test"; \
		cd clients/js/test && npm ci --no-audit --no-fund; \
	fi

# Starts Debian's rabbitmq-server (installed when missing) on
# 127.0.0.1:5673 as the reference broker of the tests that check Warren
# against RabbitMQ (shovel migration, API shapes); they skip without it.
reference-rabbitmq:
	@bash .ci/reference-rabbitmq $(REF_ENV) || echo "reference-rabbitmq: not available; the tests against RabbitMQ will skip"

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

run:
	$(GO) run ./cmd/warren

generate:
	$(GO) generate ./...

# Short fuzz run of every Fuzz target in the module, FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "+ fuzz $$f in $$pkg ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done
