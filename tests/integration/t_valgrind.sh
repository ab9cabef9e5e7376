#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every command under valgrind on images with each kind of structure: the
# exit status expected, no crash, no invalid access, no use of
# uninitialised memory, no leak.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io valgrind

mkdir "$T_TMP/c" && cd "$T_TMP/c" || finish
for b in corpus_snapshots corpus_bitmaps corpus_extended_l2_backing \
	 corpus_refcount_bits corpus_compressed_zstd corpus_luks corpus_data_file; do
	$b "$PWD" >/dev/null 2>&1 || fail "$b builds"
done

# vg DESCRIPTION STATUS ARGS...: qcow2elf ARGS under valgrind exits with
# STATUS, without a crash and without an error valgrind finds.
vg() {
	local desc=$1 want=$2 rc
	shift 2
	valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect "$Q2E" "$@" \
		>/dev/null 2>vg.err
	rc=$?
	if [ "$rc" = 99 ]; then
		fail "$desc" "valgrind found errors:" "$(head -20 vg.err)"
	elif [ "$rc" -gt 128 ]; then
		fail "$desc" "killed by signal $((rc - 128))" "$(head -20 vg.err)"
	elif [ "$rc" != "$want" ]; then
		fail "$desc" "exit status $rc, expected $want" "$(head -5 vg.err)"
	else
		pass "$desc"
	fi
}

# The images are sound: every command succeeds and check finds nothing.
for f in *.qcow2; do
	vg "info $f" 0 info "$f"
	vg "info --output=json $f" 0 info --output=json "$f"
	vg "map $f" 0 map "$f"
	vg "map --output=json $f" 0 map --output=json "$f"
	vg "check -M --output=json $f" 0 check -M --output=json "$f"
	vg "dump $f" 0 dump "$f" -o "$f.elf"
	vg "info of the dump of $f" 0 info "$f.elf"
	vg "check of the dump of $f" 0 check "$f.elf"
done
first=$(ls *.qcow2 | head -1) last=$(ls *.qcow2 | tail -1)
vg "diff of two images" 1 diff "$first" "$last"
vg "diff --output=json --verbose of an image and a dump" 1 diff --output=json --verbose "$first" "$last.elf"
vg "restore" 0 restore "$first.elf" -o restored.qcow2
vg "an error path: restore over an existing file" 1 restore "$first.elf" -o restored.qcow2
vg "dump --no-data" 0 dump --no-data "$first" -o nodata.elf
vg "an error path: info of a --no-data dump" 1 info nodata.elf
vg "an error path: a missing file" 1 map missing.qcow2

# More structures than the walk expected (1,024 bitmaps sharing one
# table): the region array grows by moving onto an aligned mapping, whose
# grown part valgrind once took to be unaddressable.  check finds the
# shared table (2).
qemu-img create -q -f qcow2 many.qcow2 4T &&
	qemu-img bitmap --add -g 8192 many.qcow2 b0 &&
	python3 "$TOP/tests/lib/hostile.py" bitmaps-one-table many.qcow2 1024 ||
	fail "an image of 1,024 bitmaps builds"
vg "info of 1,024 bitmaps" 0 info many.qcow2
vg "map --output=json of 1,024 bitmaps" 0 map --output=json many.qcow2
vg "check -M --output=json of 1,024 bitmaps" 2 check -M --output=json many.qcow2
vg "dump of 1,024 bitmaps" 0 dump many.qcow2 -o many.elf
vg "diff of 1,024 bitmaps and their dump" 0 diff many.qcow2 many.elf
finish
