#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `dump` at scale: past gdb 13's 32767 sections, and past 65279 where ELF
# needs extended numbering.  The image gets one L2 table per 32 KiB of
# guest space (512-byte clusters), from a sparse raw file with one byte per
# 32 KiB, through qemu-img convert (fast, unlike qemu-io per write).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img readelf objdump objcopy gdb python3

cd "$T_TMP" || finish
n=66000
corpus_sparse_tables many.qcow2 $n 32768 || { fail "image made"; finish; }

"$Q2E" dump many.qcow2 -o many.elf 2>dump.err
assert_eq "dump of $n L2 tables exits 0" 0 $?
assert_eq "and prints nothing" "" "$(cat dump.err)"

nsec=$(readelf -hW many.elf | sed -n 's/.*Number of section headers: *0 (\([0-9]*\))/\1/p')
assert_match "extended numbering: e_shnum 0, the count in section 0" "^[0-9]+$" "$nsec"
[ -n "$nsec" ] && [ "$nsec" -gt 65279 ] && pass "more than 65279 sections ($nsec)" || fail "more than 65279 sections" "$nsec"
# Past 65534 program headers e_phnum is PN_XNUM and section 0's sh_info
# holds the count, as the gABI says; readelf 2.40 warns about any sh_info
# in section 0 all the same.  That warning, and no other, is expected.
nph=$(readelf -hW many.elf | sed -n 's/.*Number of program headers: *\([0-9]*\).*/\1/p')
readelf -SW many.elf >secs 2>readelf.err
if [ "$nph" = 65535 ]; then
	assert_eq "readelf: only its known complaint about PN_XNUM's sh_info" "" \
		"$(grep -v "^readelf: Warning: \[ 0\]: Unexpected value ([0-9]*) in info field.$" readelf.err)"
else
	assert_eq "readelf reads it without a warning" "" "$(cat readelf.err)"
fi
assert_eq "readelf lists every L2 table" "$n" "$(grep -c ' \.qcow2\.l2\.[0-9]* ' secs)"
objdump -h many.elf >/dev/null 2>objdump.err
assert_eq "objdump reads it without a warning" "" "$(cat objdump.err)"

# The last L2 table, far past index 65279: its bytes are the image's.
last=$((n - 1))
line=$(grep " \.qcow2\.l2\.$last " secs)
addr=$((16#$(awk '{for (i = 1; i <= NF; i++) if ($i == "PROGBITS") print $(i + 1)}' <<<"$line")))
# (objcopy --dump-section rewrites all sections into its output file, which
# takes minutes at this count; -O binary --only-section reads the one.)
objcopy -O binary --only-section=".qcow2.l2.$last" many.elf l2.bin
assert_status "objcopy: .qcow2.l2.$last holds the image's bytes" 0 cmp l2.bin <(dd if=many.qcow2 bs=512 skip=$((addr / 512)) count=1 2>/dev/null)
sym=$(readelf -sW many.elf | awk -v s="l2_table_$last" '$8 == s {print $2, $7}')
assert_eq "its symbol is absolute (gdb 13 misplaces section-relative ones past 32767), at its address" "$(printf %016x "$addr") ABS" "$sym"

# gdb reads the early structures and the last ones alike.
out=$(gdb -nx -batch -iex 'set auto-load python-scripts off' -ex 'p qcow2_header.cluster_bits' -ex "p/x &l2_table_$last" \
	-ex "p/x l2_table_$last[0].raw" many.elf 2>/dev/null)
assert_match "gdb prints the header of a huge dump" '^\$1 = 9$' "$(sed -n 1p <<<"$out")"
assert_eq "gdb: the last L2 table is at its address" "\$2 = $(printf 0x%x "$addr")" "$(sed -n 2p <<<"$out")"
first=$(od -An -v -tx1 -j "$addr" -N 8 many.qcow2 | tr -d ' \n' | sed 's/^0*//')
assert_eq "gdb: its first entry is the image's" "\$3 = 0x${first:-0}" "$(sed -n 3p <<<"$out")"

# A dump killed while it writes leaves neither its output nor its temporary
# file: stopped as soon as the temporary file appears, then signalled.  It
# is unnamed (O_TMPFILE) until the rename, which leaves a named one too
# short a time to be caught: the process's open "#N (deleted)" file in the
# output's directory counts too.
# signal_dump SIGNAL OUT [IGNORE]: the exit status; "seen" says whether the
# temporary file was caught before the dump ended.
signal_dump() {
	local pid

	if [ -n "${3:-}" ]; then
		(trap '' "$1"; exec "$Q2E" dump many.qcow2 -o "$2" 2>/dev/null) &
	else
		"$Q2E" dump many.qcow2 -o "$2" 2>/dev/null &
	fi
	pid=$!
	seen=
	for _ in $(seq 20000); do
		if compgen -G "$2.tmp*" >/dev/null ||
		   ls -l "/proc/$pid/fd" 2>/dev/null | grep -q " $PWD/#[0-9]* (deleted)$"; then
			kill -STOP "$pid" 2>/dev/null && seen=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
	done
	kill -"$1" "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	wait "$pid"
}
signal_dump TERM killed.elf
rc=$?
if [ -n "$seen" ]; then
	assert_eq "a dump killed by SIGTERM dies of it" 143 "$rc"
	assert_eq "and leaves no temporary file" "" \
		"$(compgen -G 'killed.elf.tmp*')"
	# The output is written unnamed (O_TMPFILE) and only named for the
	# rename at the end: the signal may land after that rename, and
	# then the output is there, but complete.
	if [ -e killed.elf ]; then
		assert_status "and its output is absent or complete" 0 \
			cmp many.elf killed.elf
	else
		pass "and its output is absent or complete"
	fi
else
	skip "the dump ended before it could be killed"
fi
# As under nohup: an ignored SIGHUP stays ignored, and the dump completes.
signal_dump HUP nohup.elf ignore
rc=$?
if [ -n "$seen" ]; then
	assert_eq "a dump ignoring SIGHUP is not ended by one" 0 "$rc"
	assert_status "and its output is complete" 0 cmp many.elf nohup.elf
else
	skip "the dump ended before it could be signalled"
fi

# Peak memory (issue 12): what a dump needs beyond the model of the image
# (`info` walks the same) grows by a few bytes a section.  It was 1.3 KiB a
# section when libdwarf kept every variable and libelf every section
# header, then 82 bytes while the symbols and their names were kept; now
# they are made again from the model for each table that lists them, and
# what is left is the section list (16 bytes a section) and the address
# order (4).  What any dump needs beyond `info`, whatever the image (its
# buffers, and libdwarf, which only dump loads), is measured on an image
# of one table and left out: 6 to 15 bytes a section measured, hence 24.
# GNU time reads the peak RSS, the least of five runs of each command
# (a run's peak moves by a few hundred KiB with when its threads start).
# And the job's peak is no more than `qemu-img check`'s.
# FILE COMMAND...: the least peak RSS of five runs in KiB, into FILE:
# what the command needs.  One binary's peaks vary by 300 KiB from run
# to run (9,412 to 9,720 KiB for dump, 9,672 to 9,900 for qemu-img check
# here), more than dump stayed under qemu-img: medians of three crossed
# in a CI run, and so did the least of three (9,788 KiB against 9,728)
# before the dump's write buffers were halved.
peak() {
	local out=$1 i
	shift
	for i in 1 2 3 4 5; do
		/usr/bin/time -o "$out.$i" -f %M "$@" >/dev/null
	done
	cat "$out".[1-5] | sort -n | sed -n 1p >"$out"
}
if [ -x /usr/bin/time ] && ! readelf -sW "$Q2E" 2>/dev/null | grep -q __asan_init; then
	qemu-img create -q -f qcow2 -o cluster_size=512 one.qcow2 1M &&
		qemu-io -f qcow2 -c 'write 0 512' one.qcow2 >/dev/null ||
		fail "the one-table image is made"
	peak info1.rss "$Q2E" info one.qcow2
	peak dump1.rss "$Q2E" dump one.qcow2 -o mem1.elf
	peak info.rss "$Q2E" info many.qcow2
	peak dump.rss "$Q2E" dump many.qcow2 -o mem.elf
	peak qemu.rss qemu-img check many.qcow2
	nsec=$(readelf -SW mem.elf 2>/dev/null | grep -c ' \.qcow2\.')
	extra=$(( ($(cat dump.rss) - $(cat info.rss) - $(cat dump1.rss) +
		   $(cat info1.rss)) * 1024 ))
	[ "$extra" -le $((nsec * 24)) ] &&
		pass "dump's memory beyond the model: $((extra / 1024)) KiB for $nsec sections" ||
		fail "dump's memory beyond the model is at most 24 bytes a section" \
			"$((extra / 1024)) KiB for $nsec sections"
	[ "$(cat dump.rss)" -le "$(cat qemu.rss)" ] &&
		pass "dump's peak ($(cat dump.rss) KiB) is no more than qemu-img check's ($(cat qemu.rss) KiB)" ||
		fail "dump's peak is no more than qemu-img check's" \
			"$(cat dump.rss) KiB against $(cat qemu.rss) KiB"
	rm -f mem.elf mem1.elf
else
	skip "no GNU time to read the peak memory (or an ASan build)"
fi

finish
