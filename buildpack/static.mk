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
#                    mirrors intact and corrupted; the Cloud Native
#                    Buildpack (buildpack.toml, bin/detect, bin/build twice
#                    as a lifecycle runs them); beside them, every
#                    example app through the static binary
#   bench-static     throughput through bin/memtunnel (Debian's wolfSSL)
#                    against build/static/memtunnel
#
# build-static.sh decides itself whether anything needs rebuilding (its
# cache key covers memtunnel's sources, the source packages, the toolchain
# and the build's own files, these makefiles included), so these targets
# always run it; a cached build takes a second.

STATIC_PROG := build/static/memtunnel
STATIC_MIRROR := build/source-mirror

.PHONY: static static-mirror check-buildpack bench-static

static:
	$(Q)buildpack/build-static.sh --out $(STATIC_PROG)

static-mirror:
	$(Q)buildpack/build-static.sh --make-mirror $(STATIC_MIRROR)

check-buildpack: static
	$(Q)tests/deps.sh test
	$(Q)$(PAIR) buildpack tests/buildpack/run.sh \
	  examples 'MEMTUNNEL=$(abspath $(STATIC_PROG)) tests/buildpack/examples.sh'

bench-static: static bin/memtunnel $(MCLOAD)
	$(Q)tests/deps.sh test
	$(Q)MCLOAD=$(abspath $(MCLOAD)) tests/buildpack/bench.sh \
	  $(abspath bin/memtunnel) $(abspath $(STATIC_PROG))

# memtunnel itself in the static build: build-static.sh runs the Makefile's
# own rules against the libraries it built, objects in its scratch directory:
#
#   make STATIC_WOLFSSL=PREFIX STATIC_LIBUV_INC=DIR STATIC_LIBUV_LIB=FILE \
#        BUILD=DIR PROG=FILE SANITIZE= CC=gcc FILE
#
# The flags are the development build's (WARN, HARDEN, LDHARDEN) but for:
# - no -Werror: a newer compiler's new warning must not fail a deploy;
# - CFLAGS -O2 without -g: the debug information would carry the build's
#   directories into the build ID, which strip keeps, and the binary would
#   differ with the checkout's place; -ffunction-sections -fdata-sections
#   and --gc-sections drop what memtunnel does not use;
# - wolfSSL's headers come first, so <wolfssl/options.h> is the one of the
#   library linked; libwolfssl.a and libuv_a.a link statically, glibc's
#   libraries dynamically;
# - `deps` installs nothing (see the Makefile).
# CFLAGS and LDFLAGS are overridden: a deploy's environment does not change
# the binary.
ifneq ($(STATIC_WOLFSSL),)
  WARN := $(filter-out -Werror,$(WARN))
  override CFLAGS := -O2 -ffunction-sections -fdata-sections
  override LDFLAGS := -Wl,--gc-sections
  PKG_CFLAGS = -I$(STATIC_WOLFSSL)/include -I$(STATIC_LIBUV_INC)
  PKG_LIBS = $(STATIC_WOLFSSL)/lib/libwolfssl.a $(STATIC_LIBUV_LIB) -lm -lpthread -ldl -lrt
endif
