# postel - a mail transfer agent. Plain Makefile; see README.md.
#   make            build posteld and postel
#   make run        install missing packages, build, start posteld on 127.0.0.1:2525
#   make test       unit + transcript + integration tests (installs what they need)
#   make SANITIZE=1 test   the same under ASan/UBSan, in build-san/
#   make test-clean make deps, make and make test in a fresh minimal Debian 12 root (root)
#   make valgrind   the integration core under valgrind (valgrind-full: the whole suite)
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each
#   make bench      throughput and memory figures, side by side with Postfix

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc
BINDIR   := $(PREFIX)/bin
SBINDIR  := $(PREFIX)/sbin
MANDIR   := $(PREFIX)/share/man
# sendmail, mailq and newaliases go here; SENDMAIL_LINKS=yes also puts them in the
# places other MTAs use ($(SBINDIR)/sendmail, $(BINDIR)/mailq, $(BINDIR)/newaliases).
COMPATDIR := $(PREFIX)/lib/postel/bin
SENDMAIL_LINKS ?= no
FUZZ_SECONDS ?= 60

PKGS     := libevent libevent_pthreads libevent_openssl libcares openssl
# The version is CHANGES.md's top entry ("## 0.2 (unreleased)" gives 0.2): one place.
VERSION  := $(shell sed -n 's/^\#\# \([0-9][0-9.]*\).*/\1/p' CHANGES.md | head -n 1)
CFLAGS   := -std=c11 -D_GNU_SOURCE -O2 -g -Isrc -DPOSTEL_VERSION='"$(VERSION)"' \
            -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes \
            -Wno-format-nonliteral $(EXTRA_CFLAGS)
LDLIBS   := -lpthread -lcrypt

ifdef SANITIZE
BUILD    := build-san
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
else
BUILD    := build
endif

# pkg-config is looked up lazily so that `make deps` can run before it exists.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LIB_SRCS := $(filter-out src/posteld.c src/cli/postel.c, $(wildcard src/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps run test unit integration fuzz fuzz-ci bench clean install check-config valgrind \
        valgrind-full test-clean

all: $(BUILD)/posteld $(BUILD)/postel

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libpostel.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/posteld: $(BUILD)/src/posteld.o $(BUILD)/libpostel.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/postel: $(BUILD)/src/cli/postel.o $(BUILD)/libpostel.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libpostel.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libpostel.a \
	    $(LDFLAGS) -lcmocka $(PKG_LIBS) $(LDLIBS)

# The Maildir test makes the directory sync fail on purpose.
$(BUILD)/tests/unit/deliver/test_maildir: LDFLAGS += -Wl,--wrap=fsx_dirsync

deps:
	@sh scripts/deps.sh

run: deps all
	@mkdir -p var
	exec ./$(BUILD)/posteld -d

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
	    (cd tests/unit && CMOCKA_MESSAGE_OUTPUT=stdout ../../$$t) || fail=1; \
	done; exit $$fail

integration: all
	POSTEL_BUILD=$(BUILD) /usr/bin/python3 -m pytest -q -rs tests/integration $(PYTEST_ARGS)

# The integration core under valgrind (no invalid accesses, no definite leaks); CI runs this.
# About 14 minutes on 2 cores (measured per file: test_relay 8.3, test_durability 2.9,
# test_aliases 1.7, test_etrn 0.6, test_reload 0.2). Every one of these tests submits over
# SMTP, so the receiving core (session machine, DATA reader, spool commit) runs under
# valgrind throughout; beyond it they cover local delivery and aliases (test_aliases), the
# queue (test_durability: commit, crash and recovery; test_etrn: flush; test_reload) and the
# delivery and relay paths (test_relay: MX routing, the SMTP client, retries, bounces). Left
# to valgrind-full: test_basic (every command's replies, 6.9 minutes), ESMTP extensions, bad
# input and limits (also run under ASan in CI and fuzzed), TLS, AUTH, configuration.
VALGRIND_CORE ?= tests/integration/test_relay.py tests/integration/test_aliases.py \
                 tests/integration/test_durability.py tests/integration/test_etrn.py \
                 tests/integration/test_reload.py
valgrind: all
	POSTEL_BUILD=$(BUILD) POSTEL_VALGRIND=1 /usr/bin/python3 -m pytest -q -rs $(VALGRIND_CORE)

# The whole integration suite under valgrind (about 26 minutes). The command-line tests are
# left out (they poll the queue with short timeouts, which valgrind's pace does not meet) and
# so is the install test (it runs make).
VALGRIND_ARGS ?= --ignore=tests/integration/test_cli.py --ignore=tests/integration/test_install.py
valgrind-full: all
	POSTEL_BUILD=$(BUILD) POSTEL_VALGRIND=1 /usr/bin/python3 -m pytest -q -rs tests/integration \
	    $(VALGRIND_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

# make test from nothing: a minimal Debian 12 root (mmdebstrap, cached for a week), a clone
# of HEAD (uncommitted changes are not tested), make deps from Debian's archive, then make
# and make test in fresh namespaces with loopback only. Needs root. See scripts/test-clean.sh.
test-clean:
	@sh scripts/test-clean.sh

# libFuzzer needs clang; each target is linked with the library sources directly.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -DPOSTEL_VERSION='"$(VERSION)"' \
               -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all
fuzz-build: $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS) $(LDLIBS)

fuzz: deps fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci: deps fuzz-build
	@sh scripts/fuzz.sh $${FUZZ_SECONDS:-20}

bench: deps all
	@sh bench/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(COMPATDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(PREFIX)/share/doc/postel $(DESTDIR)$(PREFIX)/lib/systemd/system \
	    $(DESTDIR)$(SYSCONFDIR)/postel
	install -m 755 $(BUILD)/posteld $(DESTDIR)$(SBINDIR)/posteld
	install -m 755 $(BUILD)/postel $(DESTDIR)$(BINDIR)/postel
	for n in sendmail mailq newaliases; do \
	    ln -sf $(BINDIR)/postel $(DESTDIR)$(COMPATDIR)/$$n; done
	if [ "$(SENDMAIL_LINKS)" = yes ]; then \
	    ln -sf $(BINDIR)/postel $(DESTDIR)$(SBINDIR)/sendmail; \
	    ln -sf $(BINDIR)/postel $(DESTDIR)$(BINDIR)/mailq; \
	    ln -sf $(BINDIR)/postel $(DESTDIR)$(BINDIR)/newaliases; fi
	for m in docs/*.1; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/; done; true
	for m in docs/*.5; do install -m 644 $$m $(DESTDIR)$(MANDIR)/man5/; done
	for m in docs/*.8; do install -m 644 $$m $(DESTDIR)$(MANDIR)/man8/; done
	install -m 644 etc/postel.conf.example README.md CHANGES.md \
	    $(DESTDIR)$(PREFIX)/share/doc/postel/
	[ -e $(DESTDIR)$(SYSCONFDIR)/postel/postel.conf ] || \
	    install -m 644 etc/postel.conf.example $(DESTDIR)$(SYSCONFDIR)/postel/postel.conf
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	    -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/postel.service.in \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/postel.service

check-config: all
	./$(BUILD)/posteld -n

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJS:.o=.d) $(BUILD)/src/posteld.d $(BUILD)/src/cli/postel.d
