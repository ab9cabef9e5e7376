#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Reading from a cold page cache, where the byte source has the planned
# regions fetched ahead by a thread of its own (src/source/readahead.c),
# gives the same reports and dumps as reading from a warm one; and the
# advice is given only when the cache is cold.  The data extents a dump
# records are the file's holes and data as SEEK_DATA/SEEK_HOLE say.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io dd fincore

cd "$T_TMP" || finish
# Scattered 64 KiB tables (an L2 table every 512 MiB), and 512-byte
# tables close together, which the plan merges; with a snapshot and a
# discard, so that tables are shared and a few moved.
qemu-img create -q -f qcow2 -o preallocation=metadata big.qcow2 64G &&
	qemu-img snapshot -c one big.qcow2 &&
	qemu-io -f qcow2 -c 'discard 0 1M' big.qcow2 >/dev/null ||
	fail "the 64G image builds"
qemu-img create -q -f qcow2 -o preallocation=metadata,cluster_size=512 \
	small.qcow2 64M || fail "the 512-byte cluster image builds"

# Drops FILE from the page cache (written back first: dirty pages stay).
evict() {
	sync "$1" && dd if="$1" iflag=nocache count=0 status=none
}

# cached FILE: bytes of FILE in the page cache.
cached() {
	fincore --bytes --noheadings --output RES "$1" | tr -d ' '
}

# reads IMAGE TAG [BEFORE]: every command that reads the regions, into
# TAG.*, each after running BEFORE IMAGE; TAG.status has their exit
# statuses.
reads() {
	local b=${3:-:} st=()
	$b "$1"; "$Q2E" check --output=json "$1" >"$2.check.json"
	st+=($?)
	$b "$1"; "$Q2E" check -M --output=json "$1" >"$2.viscera.json"
	st+=($?)
	$b "$1"; "$Q2E" map --output=json "$1" >"$2.map.json"
	st+=($?)
	$b "$1"; "$Q2E" dump "$1" -o "$2.elf"
	st+=($?)
	echo "${st[*]}" >"$2.status"
}

# The numbers qemu-img check gives, as check --output=json gives them.
QEMU_KEYS='{"image-end-offset", "total-clusters", "allocated-clusters",
	    "fragmented-clusters", "compressed-clusters", "corruptions",
	    "leaks", "check-errors"} | with_entries(select(.value != null))'

# warm_as_qemu IMAGE: the warm run's results are right before the cold
# one is compared with them: qemu-img's numbers and map, a dump that
# checks as the image does.
warm_as_qemu() {
	local w=warm-$1
	assert_eq "$1, warm: every command exits 0" "0 0 0 0" "$(cat "$w.status")"
	assert_eq "$1, warm: check's numbers are qemu-img's" \
		"$(qemu-img check --output=json "$1" | jq -cS "$QEMU_KEYS")" \
		"$(jq -cS "$QEMU_KEYS" "$w.check.json")"
	assert_eq "$1, warm: check -M gives the header's L1 table offset" \
		"$(python3 -c 'import struct, sys
print(struct.unpack(">Q", open(sys.argv[1], "rb").read(48)[40:])[0])' "$1")" \
		"$(jq '.viscera."active-l1".location.offset' "$w.viscera.json")"
	assert_same_file "$1, warm: map is qemu-img map's" \
		<(qemu-img map --output=json "$1") "$w.map.json"
	assert_same_file "$1, warm: the dump checks as the image does" \
		<(jq -S . "$w.check.json") \
		<("$Q2E" check --output=json "$w.elf" | jq -S ".filename = \"$1\"")
}

for img in big.qcow2 small.qcow2; do
	reads "$img" "warm-$img"
	t_case "$img, warm" warm_as_qemu "$img"
	evict "$img"
	assert_eq "$img is out of the page cache" 0 "$(cached "$img")"
	reads "$img" "cold-$img" evict
	for what in status check.json viscera.json map.json elf; do
		assert_same_file "$img: $what from a cold cache, as from a warm one" \
			"warm-$img.$what" "cold-$img.$what"
	done
done

# The data extents a dump records are those SEEK_DATA and SEEK_HOLE give
# with the page cache empty (the byte source asks FIEMAP, a thousand at a
# time): on an image with scattered writes and punched holes, and on one
# with extents allocated but unwritten, which are holes whatever the page
# cache holds (SEEK_DATA calls them data once their pages are cached).
seek_extents() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size, off = os.fstat(fd).st_size, 0
while off < size:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
    print(d, h - d)
    off = h' "$1"
}
dump_extents() {
	readelf -x .qcow2elf.extents "$1" | python3 -c '
import struct, sys
b = bytes.fromhex("".join("".join(l.split()[1:5]) for l in sys.stdin
                           if l.strip().startswith("0x")))
for o, n in struct.iter_unpack("<QQ", b):
    print(o, n)'
}
case_extents() {
	local i
	qemu-img create -q -f qcow2 ext.qcow2 4G
	for i in $(seq 0 40); do
		qemu-io -f qcow2 -c "write $((i * 97))M 64k" ext.qcow2 >/dev/null
	done
	# Holes inside the clusters, so that the file has many extents.
	for i in $(seq 0 47); do
		fallocate -p -o $((512 * 1024 + i * 65536 + 16384)) -l 4k ext.qcow2
	done
	cp --sparse=always ext.qcow2 unwritten.qcow2
	# Its data before the unwritten extents are added around it.
	seek_extents unwritten.qcow2 >unwritten.qcow2.want
	fallocate -o 0 -l "$(stat -c %s unwritten.qcow2)" unwritten.qcow2
	# With every page of the file in the cache, SEEK_DATA would now call
	# the whole file data; the dump must not follow it.
	cat unwritten.qcow2 >/dev/null
	for f in ext.qcow2 unwritten.qcow2 small.qcow2; do
		"$Q2E" dump "$f" -o "$f.elf" 2>/dev/null
		[ "$f" = unwritten.qcow2 ] || seek_extents "$f" >"$f.want"
		dump_extents "$f.elf" >"$f.got"
		assert_same_file "$f: the dump's extents are SEEK_DATA's, cold" \
			"$f.want" "$f.got"
	done
	assert_eq "the image has many extents" true \
		"$([ "$(wc -l <ext.qcow2.want)" -gt 40 ] && echo true)"
}
if command -v fallocate >/dev/null && command -v readelf >/dev/null; then
	t_case "data extents" case_extents
else
	skip "needs fallocate and readelf"
fi

if command -v strace >/dev/null && command -v readelf >/dev/null; then
	# fadvise64 is the system call behind posix_fadvise: ADVICE holds
	# "offset length" of each WILLNEED a check gave.
	# The check, traced, must exit 0 (strace gives its status).
	advice() {
		rm -f trace
		strace -f -qq -e trace=fadvise64 -o trace "$Q2E" check big.qcow2 >/dev/null ||
			fail "the check under strace exits 0"
		sed -n 's/.*fadvise64([0-9]*, \([0-9]*\), \([0-9]*\), POSIX_FADV_WILLNEED).*/\1 \2/p' trace >advice
	}
	# The tables, as the dump's sections: "offset size" each.
	readelf -SW cold-big.qcow2.elf |
		sed -n 's/^ *\[ *[0-9]*\] \.qcow2\.[^ ]* *[A-Z]* *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\).*/\1 \2/p' |
		while read -r a n; do echo $((16#$a)) $((16#$n)); done >tables
	# covered: tables wholly inside one advised range; stray: advised
	# ranges that start where no table does.
	coverage() {
		python3 -c '
import sys
adv = [tuple(map(int, l.split())) for l in open("advice")]
tab = [tuple(map(int, l.split())) for l in open("tables")]
starts = {o for o, n in tab}
covered = sum(1 for o, n in tab if n and any(a <= o and o + n <= a + l for a, l in adv))
stray = sum(1 for a, l in adv if a not in starts)
print(covered, stray)'
	}
	# Whether the advice thread runs soon depends on the machine's load;
	# what the reader advises itself does not: the tables the header
	# points to, the snapshot's L1 table, and where the plan's reads start
	# to miss the cache, the next 16 ranges of tables.  The thread
	# advises the rest as it can.
	evict big.qcow2
	advice
	read -r covered stray <<<"$(coverage)"
	[ "$covered" -ge 20 ] &&
		pass "a cold check advises the kernel of the tables ahead" ||
		fail "a cold check advises the kernel of the tables ahead" \
			"$covered of $(wc -l <tables) tables covered"
	assert_eq "each advised range starts at a table" 0 "$stray"
	# Warm: every table was just read, and is read once more first, so
	# that other work on the machine cannot have taken pages back (a CI
	# run beside heavy work once found 111 ranges to advise here).
	"$Q2E" check big.qcow2 >/dev/null
	advice
	assert_eq "a warm check gives no advice" 0 "$(wc -l <advice)"
else
	skip "needs strace and readelf to check the advice"
fi

if command -v valgrind >/dev/null; then
	evict big.qcow2
	valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		"$Q2E" check big.qcow2 >/dev/null 2>vg.err
	rc=$?
	[ $rc = 0 ] && pass "a cold check under valgrind" ||
		fail "a cold check under valgrind" "exit status $rc (99: valgrind's errors)" \
			"$(head -20 vg.err)"
else
	skip "needs valgrind"
fi
finish
