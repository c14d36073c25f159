# The static build and the buildpack's tests; included at the end of the
# Makefile (after PROG and Q are set).
#
#   static           build/static/memtunnel: wolfSSL (from the
#                    distribution's source package, with the CPU's AES
#                    instructions) and libuv linked statically, glibc
#                    dynamic; cached in build/static/cache (make clean
#                    keeps it, make distclean drops it)
#   static-mirror    copy the source packages that build uses to
#                    build/source-mirror, for offline builds with
#                    MEMTUNNEL_SOURCE_MIRROR=build/source-mirror
#   check-buildpack  bin/detect, bin/compile (twice, as a non-root user),
#                    bin/release, the app's Procfile command, source
#                    mirrors intact and corrupted; then every example app
#                    through the static binary
#   bench-static     throughput through bin/memtunnel (Debian's wolfSSL)
#                    against build/static/memtunnel
#
# build-static.sh decides itself whether anything needs rebuilding (its
# cache key covers memtunnel's sources, the source packages and the
# toolchain), so these targets always run it; a cached build takes a second.

STATIC_PROG := build/static/memtunnel
STATIC_MIRROR := build/source-mirror

.PHONY: static static-mirror check-buildpack bench-static

static:
	$(Q)buildpack/build-static.sh --out $(STATIC_PROG)

static-mirror:
	$(Q)buildpack/build-static.sh --make-mirror $(STATIC_MIRROR)

check-buildpack: static
	$(Q)tests/deps.sh test
	$(Q)tests/buildpack/run.sh
	$(Q)MEMTUNNEL=$(abspath $(STATIC_PROG)) tests/buildpack/examples.sh

bench-static: static bin/memtunnel $(MCLOAD)
	$(Q)tests/deps.sh test
	$(Q)MCLOAD=$(abspath $(MCLOAD)) tests/buildpack/bench.sh \
	  $(abspath bin/memtunnel) $(abspath $(STATIC_PROG))
