#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Reading from a cold page cache, where the byte source has the planned
# regions fetched ahead by a thread of its own (src/source/readahead.c),
# gives the same reports and dumps as reading from a warm one; and the
# advice is given only when the cache is cold.
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
# TAG.*, each after running BEFORE IMAGE.
reads() {
	local b=${3:-:}
	$b "$1"; "$Q2E" check --output=json "$1" >"$2.check.json"
	echo "$?" >>"$2.check.json"
	$b "$1"; "$Q2E" check -M --output=json "$1" >"$2.viscera.json"
	$b "$1"; "$Q2E" map --output=json "$1" >"$2.map.json"
	$b "$1"; "$Q2E" dump "$1" -o "$2.elf"
}

for img in big.qcow2 small.qcow2; do
	reads "$img" "warm-$img"
	evict "$img"
	assert_eq "$img is out of the page cache" 0 "$(cached "$img")"
	reads "$img" "cold-$img" evict
	for what in check.json viscera.json map.json elf; do
		assert_same_file "$img: $what from a cold cache, as from a warm one" \
			"warm-$img.$what" "cold-$img.$what"
	done
done

if command -v strace >/dev/null; then
	# fadvise64 is the system call behind posix_fadvise.
	advice() {
		strace -f -qq -e trace=fadvise64 -o trace "$Q2E" check big.qcow2 >/dev/null
		grep -c WILLNEED trace
	}
	evict big.qcow2
	n=$(advice)
	[ "$n" -gt 100 ] && pass "a cold check advises the kernel of the tables ahead" ||
		fail "a cold check advises the kernel of the tables ahead" "$n fadvise64 calls"
	assert_eq "a warm check gives no advice" 0 "$(advice)"
else
	skip "needs strace to count the advice"
fi

if command -v valgrind >/dev/null; then
	evict big.qcow2
	valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		"$Q2E" check big.qcow2 >/dev/null 2>vg.err
	[ $? != 99 ] && pass "a cold check under valgrind" ||
		fail "a cold check under valgrind" "$(head -20 vg.err)"
else
	skip "needs valgrind"
fi
finish
