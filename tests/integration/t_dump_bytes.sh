#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `dump`: each region section holds the image's bytes, byte for byte, where
# the file is laid out twice (a region of zeros found while copying) and
# where the regions are copied on threads while the rest of the file is
# made: to a new name, over an old dump, to standard output, with
# --redact.  A second layout once kept bytes of the first in a hole of
# its own (--redact of bitmaps.qcow2).
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io readelf python3

cd "$T_TMP" || finish

# check_bytes DUMP IMAGE [KINDS]: every PROGBITS .qcow2.* section (only
# those whose name matches the regular expression KINDS, if given) holds
# the image's bytes at its address, and every NOBITS one stands for zeros;
# a dump with no such section to compare fails.
check_bytes() {
	readelf -SW "$1" >sections.txt || return 1
	python3 - "$1" "$2" "${3:-.}" <<'EOF'
import re, sys
dump, image, kinds = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
bad = compared = 0
with open(dump, 'rb') as d, open(image, 'rb') as i:
    for line in open('sections.txt'):
        m = re.match(r'\s*\[\s*\d+\]\s+(\.qcow2\.\S+)\s+(\w+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)', line)
        if not m or not kinds.search(m.group(1)):
            continue
        name, typ = m.group(1), m.group(2)
        compared += 1
        addr, off, size = (int(m.group(k), 16) for k in (3, 4, 5))
        i.seek(addr)
        want = i.read(size)
        if typ == 'NOBITS':
            got = bytes(size)
        else:
            d.seek(off)
            got = d.read(size)
        if got != want:
            k = next(j for j in range(size) if got[j:j + 1] != want[j:j + 1])
            print(f'{name}: byte {k} (image 0x{addr + k:x}) is {got[k]} in the dump, {want[k]} in the image')
            bad += 1
if not compared:
    print(f'{dump}: no .qcow2.* section to compare')
sys.exit(1 if bad or not compared else 0)
EOF
}

# Bitmaps whose data are all zeros: sections of zeros, so the regions are
# laid out and written twice.  Redacted, the bitmap data and names are
# patched over, the tables are not.
corpus_bitmaps . || finish
for opts in "" --redact; do
	kinds=.
	[ -n "$opts" ] && kinds='^\.qcow2\.(l1|l2\.|refcount-)'
	rm -f bm.elf
	assert_status "dump $opts of an image with bitmaps of zeros" 0 \
		"$Q2E" dump $opts bitmaps.qcow2 -o bm.elf
	assert_status "dump $opts: NOBITS sections, so laid out twice" 0 \
		grep -q NOBITS <(readelf -SW bm.elf)
	assert_status "dump $opts: every section holds the image's bytes" 0 \
		check_bytes bm.elf bitmaps.qcow2 "$kinds"
done

# 512-byte clusters, an L2 table every 32 KiB, one written every 64 KiB:
# 400 tables are copied by one thread, 2,200 by two; each image has L2
# tables discarded to zeros.
# many N: the image of N tables, many.N.qcow2, and its first dump,
# many.N.elf.
many() {
	local n=$1 cmds=() opts

	qemu-img create -q -f qcow2 -o cluster_size=512 "many.$n.qcow2" \
		"$((n / 16 + 1))M"
	for i in $(seq 0 $((n - 1))); do
		cmds+=(-c "write -P $((i % 250 + 1)) $((i * 65536)) 512")
	done
	qemu-io -f qcow2 "${cmds[@]}" -c 'discard 1M 64k' -c 'discard 8M 32k' \
		"many.$n.qcow2" >/dev/null
	for opts in --no-data --redact ""; do
		t_case "dump $opts of $n L2 tables" many_dumps "$n" "$opts"
	done
	assert_status "dump of $n tables: the discarded L2 tables are NOBITS" 0 \
		grep -q 'l2.*NOBITS' <(readelf -SW "many.$n.elf")
}

# many_dumps N OPTS: dump OPTS of many.N.qcow2 to a new name, over the old
# dump and to standard output, the same file each time (the last one made
# is many.N.elf).
many_dumps() {
	local n=$1 opts=$2

	rm -f out.elf
	assert_status "dump $opts of $n L2 tables, to a new name" 0 \
		"$Q2E" dump $opts "many.$n.qcow2" -o out.elf
	[ "$opts" = --no-data ] ||
		assert_status "dump $opts of $n tables: every section holds the image's bytes" 0 \
			check_bytes out.elf "many.$n.qcow2"
	cp out.elf "many.$n.elf"
	assert_status "dump $opts of $n tables over the old dump" 0 \
		"$Q2E" dump $opts "many.$n.qcow2" -o out.elf
	assert_status "dump $opts of $n tables over the old dump: the same file" 0 \
		cmp "many.$n.elf" out.elf
	"$Q2E" dump $opts "many.$n.qcow2" -o - >stdout.elf 2>/dev/null
	assert_status "dump $opts of $n tables to standard output: the same file" 0 \
		cmp "many.$n.elf" stdout.elf
}

many 400
many 2200

# evict FILE OFFSET...: the page of each offset out of the page cache.
# The file is read again first a page at a time, without readahead: the
# pages qemu-io wrote may be parts of larger folios, which stay whole.
evict() {
	sync "$1" 2>/dev/null || sync
	python3 - "$@" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for off in range(0, os.fstat(fd).st_size, 4096):
    os.pread(fd, 4096, off)
for off in sys.argv[2:]:
    os.posix_fadvise(fd, int(off) & ~4095, 4096, os.POSIX_FADV_DONTNEED)
EOF
}

# A cache a few pages short: a thread leaves such a table to the main
# thread and goes on; with 24 in a row it may stop there (at the fourth
# miss in a row), and the main thread reads the rest of its half.  The
# kernel may have some pages back before a thread comes to them: either
# way, the dump is the same.
for n in 400 2200; do
	l2=($(readelf -SW "many.$n.elf" | sed -n 's/.* \.qcow2\.l2\.[0-9]* *PROGBITS *\([0-9a-f]*\) .*/\1/p'))
	few=() row=()
	for k in 3 100 250 380; do few+=($((16#${l2[k]}))); done
	for k in $(seq 200 223); do row+=($((16#${l2[k]}))); done
	for pages in "${few[*]}" "${row[*]}"; do
		evict "many.$n.qcow2" $pages
		rm -f out.elf
		assert_status "dump of $n L2 tables, a few not cached" 0 \
			"$Q2E" dump "many.$n.qcow2" -o out.elf
		assert_status "dump of $n tables, a few not cached: the same file" 0 \
			cmp "many.$n.elf" out.elf
	done
done

finish
