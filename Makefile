# memtunnel — hand-written GNU make.
#
#   make                 build bin/memtunnel (installs missing Debian packages)
#   make check           unit tests, integration tests against real memcached
#                        (static build), then the buildpack (bin/compile,
#                        examples)
#   make unit SUITE=config
#                        one unit suite (SUITE="config ident": several)
#   make test T=20       one integration scenario (T="20 21": several;
#                        V=1 shows its output)
#   make demo            a set/get through memtunnel to a TLS memcached it starts
#   make static          build/static/memtunnel, as the Heroku buildpack builds it
#   make check-buildpack bin/compile as Heroku runs it, and the examples
#   make bench           memtunnel beside stunnel, haproxy and nginx (~5 min)
#   make SANITIZE=address,undefined check
#                        the same under ASan + UBSan, built in its own directory
#   make clean           remove the build, but keep the static build's wolfSSL
#                        cache (build/static/cache) and the source mirror
#   make distclean       remove everything under build/
#   make V=1             show the commands

VERSION := 0.1.0

CFLAGS ?= -O2 -g
WARN := -std=gnu11 -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes
HARDEN := -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDHARDEN := -Wl,-z,relro,-z,now
PKGS := libuv wolfssl

ifneq ($(SANITIZE),)
  BUILD := build/sanitize
  PROG := $(BUILD)/memtunnel
  HARDEN := -fstack-protector-strong
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
  BUILD := build/default
  PROG := bin/memtunnel
  SANFLAGS :=
endif

# Evaluated when a recipe runs, after `deps` had its chance to install them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS = $(shell pkg-config --libs check)

ALL_CFLAGS = $(WARN) $(HARDEN) $(SANFLAGS) $(CFLAGS) $(PKG_CFLAGS) \
             -DMEMTUNNEL_VERSION='"$(VERSION)"' -MMD -MP
ALL_LDFLAGS = $(LDHARDEN) $(SANFLAGS) $(LDFLAGS)

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=$(BUILD)/src/%.o)
LIB_OBJS := $(filter-out $(BUILD)/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.o)
UNIT := $(BUILD)/unit_tests
MCLOAD := $(BUILD)/tools/mcload
PKI := build/pki
# Two parts side by side, each one's report printed whole once both ended.
PAIR := tests/tools/pair.sh $(BUILD)/lanes

ifeq ($(V),)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
else
  Q :=
  say =
endif

.PHONY: all deps deps-test check modgraph unit test integration integration-static integration-halves unit-and-static demo sanitize clean distclean tools pki

all: $(PROG)

# (Not when the static build brings its own wolfSSL and libuv: static.mk.)
deps:
	$(Q)$(if $(STATIC_WOLFSSL),:,tests/deps.sh build)

deps-test: deps
	$(Q)tests/deps.sh test

$(PROG): $(OBJS) | deps
	$(call say,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

$(BUILD)/src/%.o: src/%.c | deps
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%.o: tests/unit/%.c | deps
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc -c -o $@ $<

$(UNIT): $(UNIT_OBJS) $(LIB_OBJS)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)

$(MCLOAD): tests/tools/mcload.c | deps
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WARN) $(SANFLAGS) $(CFLAGS) -o $@ $<

tools: $(MCLOAD)

# pki.sh reuses a complete PKI (~10 ms) and renews it when it is a day old,
# so the certificates that expire in 3 and 30 days keep their meaning.
pki:
	$(Q)tests/pki.sh $(PKI) >/dev/null

# Under the sanitizers each suite runs in a process of its own, two at a
# time: with LeakSanitizer checking every forked test, one runner for all
# the suites took 150 s on a 2-core VM, suite by suite 22 s (since grown to
# 126 s; two at a time, 74 s).  Each suite's report is printed whole, in
# order, at the end.  SUITE=NAME... runs only those suites (unit_tests
# --list names them).
UNIT_OUT := $(BUILD)/unit-out
unit: $(UNIT) pki
ifneq ($(SANITIZE),)
	$(Q)rm -rf $(UNIT_OUT) && mkdir -p $(UNIT_OUT) && \
	  suites="$(if $(SUITE),$(SUITE),$$($(UNIT) --list))" && rc=0 && \
	  { printf '%s\n' $$suites | MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) \
	      xargs -P 2 -I @ sh -c '$(UNIT) @ >$(UNIT_OUT)/@.out 2>&1' || rc=$$?; } && \
	  for s in $$suites; do cat $(UNIT_OUT)/$$s.out; done && exit $$rc
else
	$(Q)MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) $(UNIT) $(SUITE)
endif

# The module graph from the objects' symbols; fails on a call cycle
# between modules (HACKING.md, "Modules").
modgraph: $(PROG)
	$(Q)tests/tools/modgraph-selftest.sh >/dev/null
	$(Q)tests/tools/modgraph.sh $(OBJS) >$(BUILD)/modgraph.txt || \
	  { cat $(BUILD)/modgraph.txt; exit 1; }
	$(Q)tail -n 1 $(BUILD)/modgraph.txt

integration: $(PROG) $(MCLOAD) pki deps-test
	$(Q)MEMTUNNEL=$(abspath $(PROG)) MCLOAD=$(abspath $(MCLOAD)) \
	  MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) tests/integration/run.sh

# make test T=20: the scenarios named in T (numbers, as run.sh takes them),
# with what `make integration` gives them.
test: $(PROG) $(MCLOAD) pki deps-test
	$(Q)if [ -z "$(T)" ]; then \
	  echo 'make test: name the scenarios, e.g. make test T=20 or T="20 21"' >&2; \
	  exit 64; fi
	$(Q)MEMTUNNEL=$(abspath $(PROG)) MCLOAD=$(abspath $(MCLOAD)) \
	  MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) tests/integration/run.sh $(if $(V),-v) $(T)

check: deps-test
	$(Q)$(MAKE) --no-print-directory modgraph
	$(Q)$(MAKE) --no-print-directory unit-and-static
	$(Q)$(MAKE) --no-print-directory integration-static
	$(Q)$(MAKE) --no-print-directory bench-selftest
	$(Q)$(MAKE) --no-print-directory check-buildpack

# The unit tests (one core) beside the static build (wolfSSL's, minutes on a
# cold cache), each one's report printed whole once both have ended.
unit-and-static: $(UNIT) pki
	$(Q)$(PAIR) unit '$(MAKE) --no-print-directory unit' \
	  'static build' '$(MAKE) --no-print-directory static'

# The scenarios against the static build, the binary the buildpack ships
# (its wolfSSL is configured differently from Debian's: no OpenSSL layer,
# AES-NI), in two lanes.  make sanitize runs them against the Debian-linked
# build, which the unit tests link too.
integration-static: static $(MCLOAD) pki deps-test
	$(Q)$(MAKE) --no-print-directory integration-halves SCENARIO_PROG=$(STATIC_PROG)

SOAKLOAD := $(BUILD)/tools/soakload
FUZZ_SECONDS ?= 60
.PHONY: check-long fuzz valgrind

$(SOAKLOAD): tests/long/soakload.c | deps
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WARN) $(SANFLAGS) $(CFLAGS) -o $@ $<

# The long tests (tests/long/): the soak, a million verified operations with
# client aborts, and the reuse soak, a million through --reuse on from
# thousands of short-lived clients (minutes).
check-long: $(PROG) $(MCLOAD) $(SOAKLOAD) pki deps-test
	$(Q)MEMTUNNEL=$(abspath $(PROG)) MCLOAD=$(abspath $(MCLOAD)) \
	  SOAKLOAD=$(abspath $(SOAKLOAD)) MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) \
	  tests/long/run.sh

# libFuzzer targets (clang) for the configuration and PEM parsers.
fuzz: deps-test
	$(Q)tests/deps.sh extra
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS)

# Integration scenarios under valgrind memcheck: no leak, no invalid access.
valgrind: $(PROG) $(MCLOAD) pki deps-test
	$(Q)tests/deps.sh extra
	$(Q)MEMTUNNEL=$(abspath $(PROG)) MCLOAD=$(abspath $(MCLOAD)) \
	  MEMTUNNEL_TEST_PKI=$(abspath $(PKI)) tests/valgrind.sh

sanitize: deps-test
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined unit
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined integration-halves

# Every scenario once, in two lanes side by side (every other scenario in
# each, so that both get their share of the long ones): the scenarios pass
# beside two busy loops, and the heavy ones take turns.  SCENARIO_PROG
# picks the binary (default: the Debian-linked build).
SCENARIOS := $(sort $(wildcard tests/integration/[0-9][0-9]-*.sh))
SCENARIO_PROG ?= $(PROG)
integration-halves: $(SCENARIO_PROG) $(MCLOAD) pki deps-test
	$(Q)export MEMTUNNEL=$(abspath $(SCENARIO_PROG)) MCLOAD=$(abspath $(MCLOAD)) \
	  MEMTUNNEL_TEST_PKI=$(abspath $(PKI)); \
	  $(PAIR) 'integration, first half' 'tests/integration/run.sh $(filter-out $(EVEN),$(SCENARIOS))' \
	    'integration, second half' 'tests/integration/run.sh $(EVEN)'
EVEN = $(foreach i,$(shell seq 2 2 $(words $(SCENARIOS))),$(word $(i),$(SCENARIOS)))

demo: $(PROG) deps-test
	$(Q)MEMTUNNEL=$(abspath $(PROG)) tests/demo.sh

# clean keeps the static build's wolfSSL and libuv cache (minutes to
# rebuild) and the source mirror (made from the network); distclean drops
# them too.
CLEAN_KEEP := build/static build/source-mirror
clean:
	rm -rf bin/memtunnel $(filter-out $(CLEAN_KEEP),$(wildcard build/*)) \
	  $(filter-out build/static/cache,$(wildcard build/static/*))

distclean:
	rm -rf build bin/memtunnel

# The static build (AES-accelerated wolfSSL from the distribution's signed
# source package, libuv static) and the Heroku buildpack's tests.
include buildpack/static.mk

# make bench: memtunnel beside stunnel, haproxy and nginx (tests/bench/).
include tests/bench/bench.mk

-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
