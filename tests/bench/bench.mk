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
# Results: build/bench/results.md (tables) and results.tsv (every round).

MCBENCH := build/bench/mcbench
RELAY := build/bench/relay
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

.PHONY: bench
# The static build and bin/memtunnel are brought up to date first; another
# binary is taken as it is (bench.sh warns when src/ is newer than it).
ifeq ($(BENCH_MEMTUNNEL),$(BENCH_STATIC))
bench: buildpack-static
endif
ifeq ($(BENCH_MEMTUNNEL),$(PROG))
bench: $(PROG)
endif
bench: $(MCBENCH) $(RELAY)
	$(Q)MEMTUNNEL=$(abspath $(BENCH_MEMTUNNEL)) MCBENCH=$(abspath $(MCBENCH)) \
		RELAY=$(abspath $(RELAY)) tests/bench/bench.sh
