# pingid-ssh: `make demo` runs the product end to end in a temporary directory,
# `make test` runs every check that CI runs. Nothing is written outside the tree and
# temporary directories except by `make install`.

GO      ?= go
CC      ?= cc
CFLAGS  ?= -O2 -g -Wall -Wextra -Werror -fPIC -D_FORTIFY_SOURCE=2 -fstack-protector-strong
PREFIX  ?= /usr/local
PAMDIR  ?= /lib/x86_64-linux-gnu/security
OPA     := $(GO) tool opa
REGO    := policy policy_test examples/overrides
# The built-ins the engine allows; opa refuses the rest as the daemon would.
CAPS    := --capabilities policy/capabilities.json

.PHONY: all build deps test test-go test-rego demo e2e bench install clean

all: build

build: bin/pingid-ssh pam/pam_pingid.so

# deps installs the Debian packages the shim and the tests need (as root), once.
deps:
	@./scripts/deps.sh

# cgo on: user and group lookups must go through NSS (LDAP, sssd), not /etc/passwd alone.
bin/pingid-ssh: FORCE
	CGO_ENABLED=1 $(GO) build -o $@ ./cmd/pingid-ssh

pam/pam_pingid.so: pam/pam_pingid.c | deps
	$(CC) $(CFLAGS) -shared -o $@ $< -lpam

test: deps test-rego test-go

test-go: build
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

test-rego:
	$(OPA) fmt --list --fail $(REGO)
	$(OPA) check --strict $(CAPS) $(REGO)
	$(OPA) test $(CAPS) --coverage --threshold 95 policy policy_test > /dev/null
	$(OPA) test $(CAPS) policy policy_test
	$(OPA) test $(CAPS) policy examples/overrides

demo: bin/pingid-ssh
	./demo/run.sh

e2e: deps build
	$(GO) test -count=1 -tags e2e -v ./e2e/...

# Go benchmarks, then the load program's table (see BENCHMARKS.md). Figures only: a missed
# target shows in the table and never fails the target.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./engine/ ./offline/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 5s ./bench/
	$(GO) run ./cmd/pingid-bench -bin bin/pingid-ssh

install: build
	install -D -m 0755 bin/pingid-ssh $(DESTDIR)$(PREFIX)/sbin/pingid-ssh
	install -D -m 0644 pam/pam_pingid.so $(DESTDIR)$(PAMDIR)/pam_pingid.so
	install -D -m 0644 deploy/pingid-ssh.service \
		$(DESTDIR)/etc/systemd/system/pingid-ssh.service
	install -d -m 0755 $(DESTDIR)/etc/pingid/policy.d
	install -d -m 0700 $(DESTDIR)/var/lib/pingid
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/pingid-ssh/README.md

clean:
	rm -rf bin pam/pam_pingid.so

FORCE:
