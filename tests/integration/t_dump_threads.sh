#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `dump`'s copying threads (src/emit/span_threads.c) from the command
# line: a write error on a thread and on the main thread (a file size
# limit: EFBIG) leaves no output and no temporary file, and an old dump
# as it was; a full device (-o /dev/full); a FIFO; standard output over
# an old dump; a cold image file, whose tables the threads leave to the
# main thread (each stops at its fourth miss), and one of small tables
# that the threads read many at a time; the same bytes on every run.
# tests/unit/test_span_threads.c drives each path from memory;
# t_dump_bytes.sh compares the sections with the image's bytes.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img readelf python3

cd "$T_TMP" || finish

# tables N: tables.N.qcow2, N L2 tables of 512 bytes, 64 KiB apart in
# the guest, each a span of its own (400: one copying thread, 2,200: two),
# and its dump tables.N.elf.
tables() {
	corpus_sparse_tables "tables.$1.qcow2" "$1" 65536 &&
		"$Q2E" dump "tables.$1.qcow2" -o "tables.$1.elf"
}
tables 400 && tables 2200 || { fail "images made"; finish; }
# 400 L2 tables of 64 KiB, 512 MiB apart: 25 MiB for two threads, none
# of it in the cache after evict (the walk reads the tables, not the
# refcount blocks).
qemu-img create -q -f qcow2 -o preallocation=metadata meta.qcow2 200G &&
	"$Q2E" dump meta.qcow2 -o meta.elf || { fail "image made"; finish; }

# offset_of DUMP SECTION: its file offset, in decimal.
offset_of() {
	local hex
	hex=$(readelf -SW "$1" | sed -n "s/.* $2 *[A-Z]* *[0-9a-f]* \([0-9a-f]*\) .*/\1/p" | head -1)
	echo $((16#$hex))
}

# limited KIB DUMP-ARGS...: the dump under a file size limit of KIB KiB,
# SIGXFSZ ignored so that a write past it fails with EFBIG.
limited() {
	local kib=$1
	shift
	(trap '' XFSZ; ulimit -f "$kib"; "$Q2E" dump "$@")
}

# A limit halfway through the regions (a thread's write fails, or the
# main thread's, where it copies) and one inside the tables after them
# (the main thread's): status 1, a message with the file and an offset,
# no file, no temporary file; over an old dump, the old dump whole.
for n in 400 2200; do
	first=$(offset_of "tables.$n.elf" '\.qcow2\.l1')
	tail=$(offset_of "tables.$n.elf" '\.debug_info')
	for where in regions tail; do
		if [ $where = regions ]; then
			kib=$(((first + tail) / 2 / 1024))
		else
			kib=$((tail / 1024 + 8))
		fi
		rm -rf out && mkdir out
		limited $kib "tables.$n.qcow2" -o out/new.elf 2>err
		assert_eq "$n tables, EFBIG in the $where: status 1" 1 $?
		assert_match "$n tables, EFBIG in the $where: the file and where" \
			"^qcow2elf: 'out/new\.elf': cannot write at 0x[0-9a-f]+: File too large$" \
			"$(cat err)"
		assert_eq "$n tables, EFBIG in the $where: nothing left" "" \
			"$(ls -A out)"
		cp "tables.400.elf" out/old.elf
		limited $kib "tables.$n.qcow2" -o out/old.elf 2>err
		assert_eq "$n tables, EFBIG over an old dump: status 1" 1 $?
		assert_status "$n tables, EFBIG over an old dump: the old dump as it was" 0 \
			cmp tables.400.elf out/old.elf
		assert_eq "$n tables, EFBIG over an old dump: no temporary file" \
			old.elf "$(ls -A out)"
	done
done

# A full device: the error, no success.
"$Q2E" dump tables.2200.qcow2 -o /dev/full 2>err
assert_eq "-o /dev/full: status 1" 1 $?
assert_match "-o /dev/full: the device and the reason" \
	"^qcow2elf: '/dev/full': cannot write: No space left on device$" \
	"$(cat err)"

# A FIFO takes no pwrite(): the dump is made aside and streamed to it.
if mkfifo fifo 2>/dev/null; then
	cat fifo >fifo.elf &
	reader=$!
	assert_status "-o FIFO: status 0" 0 "$Q2E" dump tables.2200.qcow2 -o fifo
	wait $reader
	assert_status "-o FIFO: the same bytes" 0 cmp tables.2200.elf fifo.elf
	rm -f fifo
else
	skip "mkfifo failed"
fi

# Standard output open on an old, longer file (1<>, not truncated): the
# threads write over it, the file ends where the dump does.
cp meta.elf over.elf
"$Q2E" dump tables.2200.qcow2 -o - 1<>over.elf
assert_status "-o - over a longer file: the same bytes" 0 \
	cmp tables.2200.elf over.elf

# evict FILE: its pages out of the page cache (written back first).
evict() {
	python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
PY
}

# A cold image: the walk reads the L2 tables back, not the refcount
# blocks, so each thread misses four in a row and leaves the rest of its
# half to the main thread.  To a new name, over the old dump (writeback
# held at the first cut), --redact; each as warm.
"$Q2E" dump --redact meta.qcow2 -o meta-redact.elf
for opts in "" --redact; do
	want=meta.elf
	[ -n "$opts" ] && want=meta-redact.elf
	evict meta.qcow2
	rm -f cold.elf
	assert_status "cold $opts dump, two threads, new name: status 0" 0 \
		"$Q2E" dump $opts meta.qcow2 -o cold.elf
	assert_status "cold $opts dump, new name: the same bytes as warm" 0 \
		cmp "$want" cold.elf
	evict meta.qcow2
	assert_status "cold $opts dump, over the old dump: status 0" 0 \
		"$Q2E" dump $opts meta.qcow2 -o cold.elf
	assert_status "cold $opts dump, over the old dump: the same bytes" 0 \
		cmp "$want" cold.elf
done

# Small tables, which the threads read 64 at a time (src/model/read_ahead.c,
# one io_uring submission where the kernel has it): with none of them in
# the page cache, then with the first half only, the spans the threads
# find missing are the main thread's, and the bytes are the same.
for part in none half; do
	evict tables.2200.qcow2
	[ $part = half ] &&
		head -c $(($(stat -c %s tables.2200.qcow2) / 2)) tables.2200.qcow2 >/dev/null
	rm -f cold-small.elf
	assert_status "2,200 small tables, $part cached: status 0" 0 \
		"$Q2E" dump tables.2200.qcow2 -o cold-small.elf
	assert_status "2,200 small tables, $part cached: the same bytes" 0 \
		cmp tables.2200.elf cold-small.elf
done

# Whichever thread copies what, the same bytes: five more runs each.
for n in 400 2200; do
	same=0
	for i in 1 2 3 4 5; do
		rm -f again.elf
		"$Q2E" dump "tables.$n.qcow2" -o again.elf &&
			cmp -s "tables.$n.elf" again.elf && same=$((same + 1))
	done
	assert_eq "$n tables: five dumps, the same bytes" 5 $same
done

finish
