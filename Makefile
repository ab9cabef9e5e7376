# SPDX-License-Identifier: GPL-2.0-or-later
# qcow2elf: `make` builds ./qcow2elf, `make check` runs every test,
# `make install` honours PREFIX and DESTDIR.  User CFLAGS, CPPFLAGS and
# LDFLAGS are respected; the flags the build needs are kept apart in Q2E_*.

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# The gdb helpers, for `source` (dumps also carry them).
GDBDIR ?= $(PREFIX)/share/qcow2elf/gdb
# Where bash-completion loads completions from on demand.
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PKG_CONFIG ?= pkg-config
OBJDUMP ?= objdump
CFLAGS ?= -O2 -g
INSTALL ?= install

ifneq ($(V),1)
Q := @
quiet = @printf '  %-7s %s\n' $(1) $(2);
endif

# libelf and cmocka have .pc files.  Debian's libdwarf has none: its
# headers live in /usr/include/libdwarf and the producer is in libdwarf.so;
# newer releases ship libdwarf.pc and a separate libdwarfp.
ELF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libelf 2>/dev/null)
ELF_LIBS := $(shell $(PKG_CONFIG) --libs libelf 2>/dev/null || echo -lelf)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
ifneq ($(shell $(PKG_CONFIG) --exists libdwarfp 2>/dev/null && echo y),)
DWARF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdwarfp libdwarf)
DWARF_LIB := dwarfp
else ifneq ($(shell $(PKG_CONFIG) --exists libdwarf 2>/dev/null && echo y),)
DWARF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdwarf)
DWARF_LIB := dwarf
else
DWARF_CFLAGS := -I/usr/include/libdwarf
DWARF_LIB := dwarf
endif

# libdwarf is not linked: only `dump` needs it, and src/emit/dwarf_lib.c
# loads it then, by the soname of the library found here (or
# DWARF_SONAME=...).  Linked, it (548 KiB) and the libraries it needs
# were read from disk before any command started (see dwarf_lib.h).
ifeq ($(origin DWARF_SONAME),undefined)
DWARF_SO := $(shell d=$$($(PKG_CONFIG) --variable=libdir lib$(DWARF_LIB) 2>/dev/null) && \
	[ -n "$$d" ] && echo "$$d/lib$(DWARF_LIB).so" || $(CC) -print-file-name=lib$(DWARF_LIB).so)
DWARF_SONAME := $(shell $(OBJDUMP) -p $(DWARF_SO) 2>/dev/null | sed -n 's/^ *SONAME *//p')
endif
ifeq ($(DWARF_SONAME),)
ifneq ($(filter-out clean uninstall lint,$(or $(MAKECMDGOALS),all)),)
$(error cannot find the soname of lib$(DWARF_LIB).so (libdwarf-dev): install it, or name it with DWARF_SONAME=)
endif
endif

# libelf and zlib from their archives where all of them exist, for the
# same reason: two files fewer to find and read at every start (a cold
# start of the program took 10.7 ms with them shared, 8.1 linked in,
# against 6.7 for a program that needs libc alone).  STATIC_LIBS=no links
# the shared libraries.
STATIC_LIBS ?= yes
ifeq ($(STATIC_LIBS),yes)
ELF_STATIC_LIBS := $(shell $(PKG_CONFIG) --static --libs libelf 2>/dev/null || echo -lelf -lz)
ELF_ARCHIVES := $(foreach l,$(filter -l%,$(ELF_STATIC_LIBS)),\
	$(shell $(CC) -print-file-name=lib$(l:-l%=%).a))
ifeq ($(filter-out /%,$(ELF_ARCHIVES)),)
ELF_LIBS := -Wl,-Bstatic $(ELF_STATIC_LIBS) -Wl,-Bdynamic
endif
endif

# liburing, where it is installed: the threads that copy a dump's regions
# ask the kernel for 64 small reads in one system call (src/source/batch.c),
# which with 34,000 reads of 512 bytes halved their time; without it, one
# call a read.  From its archive too, as libelf: it is 20 KiB.  URING=no
# builds without it where it is installed.
URING ?= yes
ifeq ($(URING),yes)
ifneq ($(shell $(PKG_CONFIG) --exists liburing 2>/dev/null && echo y),)
URING_CPPFLAGS := -DQ2E_HAVE_LIBURING $(shell $(PKG_CONFIG) --cflags liburing)
URING_LIBS := $(shell $(PKG_CONFIG) --libs liburing)
ifeq ($(STATIC_LIBS),yes)
ifneq ($(filter /%,$(shell $(CC) -print-file-name=liburing.a)),)
URING_LIBS := -Wl,-Bstatic $(URING_LIBS) -Wl,-Bdynamic
endif
endif
endif
endif

Q2E_CPPFLAGS := $(URING_CPPFLAGS) -Iinclude -Isrc -DQ2E_VERSION='"$(VERSION)"' -D_FILE_OFFSET_BITS=64 \
	-DQ2E_DWARF_SONAME='"$(DWARF_SONAME)"'
Q2E_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers \
	$(ELF_CFLAGS) $(DWARF_CFLAGS)
Q2E_LIBS := $(ELF_LIBS) $(URING_LIBS)
# The program's debug sections compressed, where the linker can: a cold
# start reads the whole file (the kernel reads around the first fault up
# to read_ahead_kb, 8 MiB on the benchmark's disk), and with -g the debug
# info was 750 KiB of its 1 MiB, read before the first byte of an image.
# gdb, valgrind and addr2line read compressed sections.
Q2E_LDFLAGS := $(shell $(CC) -Wl,--compress-debug-sections=zlib -Wl,--version \
	>/dev/null 2>&1 && echo -Wl,--compress-debug-sections=zlib)

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
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# main() alone: the fuzz targets link the rest of the command line.
CLI_MAIN_OBJ := $(BUILD)/src/cli/entry.o
CLI_CMD_OBJS := $(filter-out $(CLI_MAIN_OBJ),$(CLI_OBJS))
# The fuzz targets (tests/fuzz/README), each with its seeds.
FUZZ_TARGETS := fuzz_image fuzz_dump
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/%)
FUZZ_OBJS := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/%.o)
FUZZ_COMMON_OBJS := $(BUILD)/tests/fuzz/fuzz_commands.o \
	$(BUILD)/tests/fuzz/fuzz_replay.o
FUZZ_CORPUS_fuzz_image := tests/fuzz/corpus
FUZZ_CORPUS_fuzz_dump := tests/fuzz/corpus-dump

all: $(BIN)

# The flags each step ran with, kept in a file that is rewritten only when
# they change: objects and programs depend on it, so a build with other
# CFLAGS (or another CC) is a full rebuild, never a mix of the two.
COMPILE_FLAGS := $(CC) $(Q2E_CPPFLAGS) $(CPPFLAGS) $(Q2E_CFLAGS) $(CFLAGS) $(CMOCKA_CFLAGS)
LINK_FLAGS := $(CC) $(CFLAGS) $(LDFLAGS) $(Q2E_LDFLAGS) $(Q2E_LIBS) $(CMOCKA_LIBS)
squote := '
comma := ,
escsq = $(subst $(squote),'\$(squote)',$(1))
define save_flags
	@mkdir -p $(dir $@)
	@printf '%s\n' '$(call escsq,$(1))' | cmp -s - $@ || \
		printf '%s\n' '$(call escsq,$(1))' >$@
endef

$(BUILD)/compile-flags: FORCE
	$(call save_flags,$(COMPILE_FLAGS))

$(BUILD)/link-flags: FORCE
	$(call save_flags,$(LINK_FLAGS))

$(BUILD)/%.o: %.c $(BUILD)/compile-flags
	@mkdir -p $(dir $@)
	$(call quiet,CC,$<)$(CC) $(Q2E_CPPFLAGS) $(CPPFLAGS) $(Q2E_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libqcow2elf.a: $(LIB_OBJS)
	$(call quiet,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(BIN): $(CLI_OBJS) $(BUILD)/libqcow2elf.a $(BUILD)/link-flags
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) $(Q2E_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(Q2E_LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/libqcow2elf.a $(BUILD)/link-flags
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) $(TEST_WRAP) -o $@ $(filter %.o %.a,$^) $(CMOCKA_LIBS) $(Q2E_LIBS)

# The copying threads' test stands in for the image's reads, the file's
# writes and the start of a thread (tests/unit/test_span_threads.c).
$(BUILD)/tests/test_span_threads: TEST_WRAP := $(addprefix -Wl$(comma)--wrap=,\
	q2e_image_read_cached q2e_image_read_bytes pwrite64 pthread_create \
	sync_file_range q2e_image_batch_open q2e_image_read_cached_many)

# Where an image file holds data: lseek() stands in for a driver without
# holes (tests/unit/test_seek_map.c).
$(BUILD)/tests/test_seek_map: TEST_WRAP := -Wl,--wrap=lseek64

$(BUILD)/tests/unit/%.o: Q2E_CFLAGS += $(CMOCKA_CFLAGS)

# The fuzz targets: a replayer's main() (tests/fuzz/fuzz_replay.c) unless
# built with clang -fsanitize=fuzzer -DQ2E_LIBFUZZER (`make fuzz`).
$(FUZZ_BINS): $(BUILD)/%: $(BUILD)/tests/fuzz/%.o $(FUZZ_COMMON_OBJS) \
		$(CLI_CMD_OBJS) $(BUILD)/libqcow2elf.a $(BUILD)/link-flags
	$(call quiet,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(Q2E_LIBS)

# Objects reached only through the pattern rules above would be
# intermediate, deleted after each build and recompiled by the next.
.SECONDARY: $(UNIT_OBJS) $(FUZZ_OBJS) $(FUZZ_COMMON_OBJS)

# Dumps carry the gdb helpers (src/emit/gdb_script.c): the Python file as
# a C byte list.
$(BUILD)/gen/qcow2elf_py.h: contrib/gdb/qcow2elf.py
	@mkdir -p $(dir $@)
	$(call quiet,GEN,$@)od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' >$@.tmp && mv $@.tmp $@
$(BUILD)/src/emit/gdb_script.o: $(BUILD)/gen/qcow2elf_py.h
$(BUILD)/src/emit/gdb_script.o: Q2E_CPPFLAGS += -I$(BUILD)/gen

unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

# Replays the seeds and every input that once found something, each under
# a time and a memory limit (Q2E_FUZZ_TIMEOUT, Q2E_FUZZ_MAX_RSS_MB).
fuzz-replay: $(FUZZ_BINS)
	$(Q)fail=0; $(foreach t,$(FUZZ_TARGETS),\
		$(BUILD)/$(t) $(FUZZ_CORPUS_$(t)) </dev/null || fail=1;) \
	exit $$fail

# `make fuzz` builds the libFuzzer targets in FUZZ_BUILD with clang, ASan
# and UBSan, from the same source lists; with FUZZ_SECONDS=N it also runs
# FUZZ_TARGET for N seconds on a copy of its committed corpus, keeping what
# it finds in $(FUZZ_BUILD)/artifacts.  FUZZ_ARGS adds libFuzzer options.
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -g -O1 -fno-omit-frame-pointer
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_TARGET ?= fuzz_image
FUZZ_SECONDS ?=
FUZZ_TIMEOUT ?= 10
FUZZ_WORK := $(FUZZ_BUILD)/work-$(FUZZ_TARGET)

fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		CFLAGS='$(call escsq,$(FUZZ_CFLAGS) $(FUZZ_SANITIZE))' \
		CPPFLAGS='$(call escsq,$(CPPFLAGS)) -DQ2E_LIBFUZZER' \
		$(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
ifneq ($(FUZZ_SECONDS),)
	$(Q)mkdir -p $(FUZZ_WORK) $(FUZZ_BUILD)/artifacts
	$(Q)cp $(FUZZ_CORPUS_$(FUZZ_TARGET))/* $(FUZZ_WORK)/
	$(Q)$(FUZZ_BUILD)/$(FUZZ_TARGET) -max_total_time=$(FUZZ_SECONDS) \
		-timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 -max_len=131072 \
		-dict=tests/fuzz/fuzz.dict \
		-artifact_prefix=$(abspath $(FUZZ_BUILD))/artifacts/ $(FUZZ_ARGS) \
		$(FUZZ_WORK) </dev/null
endif

# The sizes and includes the layout promises (tests/lint.sh).
lint:
	$(Q)tests/lint.sh

# lint last: a file grown too long should not hide what the tests say.
check: $(BIN) unit fuzz-replay
	$(Q)Q2E=$(abspath $(BIN)) tests/integration/run.sh
	$(Q)tests/lint.sh

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(BIN) $(DESTDIR)$(BINDIR)/qcow2elf
	$(INSTALL) -m 644 contrib/man/qcow2elf.1 $(DESTDIR)$(MANDIR)/man1/qcow2elf.1
	$(INSTALL) -d $(DESTDIR)$(GDBDIR)
	$(INSTALL) -m 644 contrib/gdb/qcow2elf.py $(DESTDIR)$(GDBDIR)/qcow2elf.py
	$(INSTALL) -d $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 644 contrib/completion/qcow2elf.bash $(DESTDIR)$(BASHCOMPDIR)/qcow2elf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qcow2elf $(DESTDIR)$(MANDIR)/man1/qcow2elf.1 \
		$(DESTDIR)$(GDBDIR)/qcow2elf.py $(DESTDIR)$(BASHCOMPDIR)/qcow2elf

clean:
	rm -rf $(BUILD) $(BIN)

.PHONY: all unit fuzz-replay fuzz lint check install uninstall clean FORCE
.DELETE_ON_ERROR:

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) \
	$(FUZZ_OBJS:.o=.d) $(FUZZ_COMMON_OBJS:.o=.d)

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
