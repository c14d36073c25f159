# The benchmark: memtunnel beside stunnel, haproxy and nginx in one run
# (and a plaintext relay, the floor of one extra hop).
# Included by the top-level Makefile (after PROG, WARN, HARDEN, Q and say).
#
#   make bench                        measure build/static/memtunnel, the
#                                     buildpack's AES-NI build (made or
#                                     refreshed first; cached, ~2 s)
#   make bench BENCH_MEMTUNNEL=PATH   measure any memtunnel binary
#   make bench BENCH_ROUNDS=5 BENCH_SECONDS=3 BENCH_WORKLOADS="a e f" ...
#                                     see tests/bench/bench.sh for all settings
#
#   make bench-selftest               the programs build, the report's
#                                     verdicts on fixed figures (make check)
#
# Results: build/bench/results.md (tables) and results.tsv (every round).

MCBENCH := build/bench/mcbench
RELAY := build/bench/relay
AEAD := build/bench/aead
BENCH_STATIC := build/static/memtunnel
BENCH_MEMTUNNEL ?= $(BENCH_STATIC)

# The load generator is always optimised, whatever CFLAGS say.
$(MCBENCH): tests/bench/mcbench.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WARN) $(HARDEN) -O2 -g -pthread -o $@ $< $(LDHARDEN)

# The reference target "relay": one plaintext hop, no TLS.
$(RELAY): tests/bench/relay.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(WARN) $(HARDEN) -O2 -g -o $@ $< $(LDHARDEN)

# TLS's cost per operation (part of the best case): the cipher alone and the
# whole record layer, timed with the static build's wolfSSL, the one
# memtunnel runs with on the platform.
$(AEAD): tests/bench/aead.c $(wildcard build/static/cache/wolfssl-*/lib/libwolfssl.a) | static
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)w=$$(ls -d build/static/cache/wolfssl-*/ | head -n1) && \
	  $(CC) $(WARN) $(HARDEN) -O2 -g -I$${w}include -o $@ $< $${w}lib/libwolfssl.a -lm -lpthread $(LDHARDEN)

.PHONY: bench bench-selftest
# The benchmark's parts without the benchmark (part of make check): its
# programs build, the TLS timer works, the report's verdicts are right.
bench-selftest: $(MCBENCH) $(RELAY) $(AEAD) pki
	$(Q)tests/bench/selftest.sh $(abspath $(AEAD)) $(abspath $(PKI))

# The static build and bin/memtunnel are brought up to date first; another
# binary is taken as it is (bench.sh warns when src/ is newer than it).
ifeq ($(BENCH_MEMTUNNEL),$(BENCH_STATIC))
bench: static
endif
ifeq ($(BENCH_MEMTUNNEL),$(PROG))
bench: $(PROG)
endif
bench: $(MCBENCH) $(RELAY) $(AEAD)
	$(Q)MEMTUNNEL=$(abspath $(BENCH_MEMTUNNEL)) MCBENCH=$(abspath $(MCBENCH)) \
		RELAY=$(abspath $(RELAY)) AEAD=$(abspath $(AEAD)) tests/bench/bench.sh
