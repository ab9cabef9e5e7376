# SPDX-License-Identifier: GPL-2.0-or-later
# qcow2elf: `make` builds ./qcow2elf, `make check` runs every test,
# `make install` honours PREFIX and DESTDIR.  User CFLAGS, CPPFLAGS and
# LDFLAGS are respected; the flags the build needs are kept apart in Q2E_*.

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
CC ?= cc
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
INSTALL ?= install

ifneq ($(V),1)
Q := @
quiet = @printf '  %-7s %s\n' $(1) $(2);
endif

# libelf and cmocka have .pc files.  Debian's libdwarf has none: its
# headers live in /usr/include/libdwarf and the producer is in libdwarf.a;
# newer releases ship libdwarf.pc and a separate libdwarfp.
ELF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libelf 2>/dev/null)
ELF_LIBS := $(shell $(PKG_CONFIG) --libs libelf 2>/dev/null || echo -lelf)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
ifneq ($(shell $(PKG_CONFIG) --exists libdwarfp 2>/dev/null && echo y),)
DWARF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdwarfp libdwarf)
DWARF_LIBS := $(shell $(PKG_CONFIG) --libs libdwarfp libdwarf)
else ifneq ($(shell $(PKG_CONFIG) --exists libdwarf 2>/dev/null && echo y),)
DWARF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdwarf)
DWARF_LIBS := $(shell $(PKG_CONFIG) --libs libdwarf) -lz
else
DWARF_CFLAGS := -I/usr/include/libdwarf
DWARF_LIBS := -ldwarf -lz
endif

Q2E_CPPFLAGS := -Iinclude -Isrc -DQ2E_VERSION='"$(VERSION)"' -D_FILE_OFFSET_BITS=64
Q2E_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers \
	$(ELF_CFLAGS) $(DWARF_CFLAGS)
Q2E_LIBS := $(DWARF_LIBS) $(ELF_LIBS)

# BUILD and BIN may be set to build out of tree (parallel work, sanitizers).
BUILD ?= build
BIN ?= qcow2elf
# The library's layers, lowest first; the command line (src/cli) is apart.
LIB_LAYERS := src/source src/decode src/model src/check src/emit src/out src/view
LIB_SRCS := $(wildcard src/*.c $(addsuffix /*.c,$(LIB_LAYERS)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BIN := $(BUILD)/tests/fuzz_image

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call quiet,CC,$<)$(CC) $(Q2E_CPPFLAGS) $(CPPFLAGS) $(Q2E_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libqcow2elf.a: $(LIB_OBJS)
	$(call quiet,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(BIN): $(CLI_OBJS) $(BUILD)/libqcow2elf.a
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(Q2E_LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/libqcow2elf.a
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(Q2E_LIBS)

$(BUILD)/tests/unit/%.o: Q2E_CFLAGS += $(CMOCKA_CFLAGS)

# The fuzz target: a plain main() replaying the corpus unless built with
# clang -fsanitize=fuzzer (see tests/fuzz/README).
$(FUZZ_BIN): $(BUILD)/tests/fuzz/fuzz_image.o $(BUILD)/libqcow2elf.a
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(Q2E_LIBS)

unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

# Replays every input that once crashed the model (and the seeds).
fuzz-replay: $(FUZZ_BIN)
	$(Q)cd $(BUILD) && $(abspath $(FUZZ_BIN)) $(abspath tests/fuzz/corpus) </dev/null

check: $(BIN) unit fuzz-replay
	$(Q)Q2E=$(abspath $(BIN)) tests/integration/run.sh

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(BIN) $(DESTDIR)$(BINDIR)/qcow2elf
	$(INSTALL) -m 644 contrib/man/qcow2elf.1 $(DESTDIR)$(MANDIR)/man1/qcow2elf.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qcow2elf $(DESTDIR)$(MANDIR)/man1/qcow2elf.1

clean:
	rm -rf $(BUILD) $(BIN)

.PHONY: all unit fuzz-replay check install uninstall clean
.DELETE_ON_ERROR:

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d) $(BUILD)/tests/fuzz/fuzz_image.d

# The benchmark of README's "Performance" section: not part of `make check`
# (minutes, and cold runs drop the page cache when run as root).
BENCH_OUT ?= $(BUILD)/bench-results.txt
$(BUILD)/bench/readranges: contrib/bench/readranges.c
	@mkdir -p $(dir $@)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $<

bench: $(BIN) $(BUILD)/bench/readranges
	$(Q)Q2E=$(abspath $(BIN)) READRANGES=$(abspath $(BUILD)/bench/readranges) \
		contrib/bench/bench.sh --out=$(BENCH_OUT) $(BENCH_ARGS)

.PHONY: bench
