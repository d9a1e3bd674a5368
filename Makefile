# soarutils: one non-recursive Makefile.
#
#   make            build every tool into build/bin/
#   make check      sanitizer build (ASan+UBSan), C unit tests, bats suite
#   make lint       clang-format, cppcheck, mandoc -Tlint, banned functions
#   make bench      side-by-side benchmarks (optimized build)
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (tests/fuzz/fuzz.mk)
#   make demo       a whole playbook against the local simulator
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install the Debian packages the build and tests need

VERSION    = 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions

CC        ?= cc
CFLAGS    ?= -O2 -g
B         ?= build
WARN       = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wwrite-strings -Wformat=2 \
             -fno-common
ALL_CPPFLAGS = -D_GNU_SOURCE -DSOAR_VERSION='"$(VERSION)"' -I. -Ilib \
             $(CPPFLAGS)
ALL_CFLAGS = $(WARN) -pthread -MMD -MP $(CFLAGS)
# --as-needed: a tool loads only the libraries it calls (libcurl alone
# costs milliseconds of start-up that decide must not pay).
ALL_LDFLAGS = -pthread -Wl,--as-needed $(LDFLAGS)
LIBS       = -lcurl -lcrypto -lexpat -lsqlite3 -ljq -lonig -lm

TOOLS      = decide vt-enrich sh-findings sh-update es-fetch es-update es-index
LIB_SRC    = $(sort $(wildcard lib/*.c))
LIB_OBJ    = $(LIB_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
BINS       = $(TOOLS:%=$(B)/bin/%)
MAN1       = $(TOOLS:%=man/man1/%.1)
MAN7       = man/man7/soarutils.7

SAN_FLAGS  = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined

.PHONY: all check unit lint bench demo install uninstall deps clean valgrind
# Objects are kept between builds, not treated as intermediate files.
.SECONDARY:

all: $(BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libsoar.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(B)/bin/%: $(B)/obj/cmd/%.o $(B)/libsoar.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libsoar.a $(LIBS)

$(B)/unit/%: $(B)/obj/tests/unit/%.o $(B)/libsoar.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/libsoar.a $(LIBS)

unit: $(UNIT_BIN)

# The test suite runs against a separate sanitizer build, so an ordinary
# build and a checked one never mix objects.
check:
	$(MAKE) B=build/san CFLAGS='$(SAN_FLAGS)' LDFLAGS='$(SAN_FLAGS)' \
		all unit
	SOAR_BIN=$(CURDIR)/build/san/bin UNIT_DIR=$(CURDIR)/build/san/unit \
		tests/run
	$(MAKE) fuzz-replay

valgrind:
	$(MAKE) B=build/vg CFLAGS='-O1 -g' all unit
	SOAR_BIN=$(CURDIR)/build/vg/bin UNIT_DIR=$(CURDIR)/build/vg/unit \
		SOAR_VALGRIND=1 tests/run

lint:
	tests/lint

bench: all
	BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench bench/decide.sh
	BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench bench/vt-enrich.sh
	BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench bench/sh-findings.sh
	BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench bench/es-fetch.sh
	BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench bench/es-index.sh

# A whole playbook against the local simulator: no account needed.
demo: all
	BIN=$(CURDIR)/$(B)/bin examples/demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7
	for t in $(TOOLS); do \
		install -m 644 completions/bash/$$t \
			$(DESTDIR)$(BASHCOMPDIR)/$$t || exit 1; \
		install -m 644 completions/zsh/_$$t \
			$(DESTDIR)$(ZSHCOMPDIR)/_$$t || exit 1; \
	done

uninstall:
	for t in $(TOOLS); do \
		rm -f $(DESTDIR)$(BINDIR)/$$t $(DESTDIR)$(MANDIR)/man1/$$t.1 \
			$(DESTDIR)$(BASHCOMPDIR)/$$t \
			$(DESTDIR)$(ZSHCOMPDIR)/_$$t; \
	done
	rm -f $(DESTDIR)$(MANDIR)/man7/soarutils.7

# Debian packages for building, testing and benchmarking; installed only
# when missing, so a prepared machine is not touched.
DEPS = make gcc libc6-dev pkg-config libjq-dev libonig-dev \
       libcurl4-openssl-dev libssl-dev libsqlite3-dev libexpat1-dev \
       bats bats-assert bats-support python3 jq curl mandoc time \
       hyperfine valgrind clang-format cppcheck clang libclang-rt-14-dev

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
			-qq --no-install-recommends $$missing; \
	else echo "all build and test packages are installed"; fi

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# libFuzzer targets: fuzz-build, fuzz, fuzz-replay (after `all`, so that
# `all` stays the default goal).
include tests/fuzz/fuzz.mk
