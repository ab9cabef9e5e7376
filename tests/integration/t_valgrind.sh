#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every command under valgrind on images with each kind of structure: no
# invalid access, no use of uninitialised memory, no leak.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io valgrind

case $Q2E in
*/*) [ "${Q2E#/}" != "$Q2E" ] || Q2E=$PWD/$Q2E ;;
esac
mkdir "$T_TMP/c" && cd "$T_TMP/c" || finish
for b in corpus_snapshots corpus_bitmaps corpus_extended_l2_backing \
	 corpus_refcount_bits corpus_compressed_zstd corpus_luks corpus_data_file; do
	$b "$PWD" >/dev/null 2>&1 || fail "$b builds"
done

vg() {	# vg DESCRIPTION ARGS...: qcow2elf ARGS under valgrind
	local desc=$1
	shift
	valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect "$Q2E" "$@" \
		>/dev/null 2>vg.err
	if [ $? = 99 ]; then fail "$desc" "$(head -20 vg.err)"; else pass "$desc"; fi
}

for f in *.qcow2; do
	vg "info $f" info "$f"
	vg "info --output=json $f" info --output=json "$f"
	vg "map --output=json $f" map --output=json "$f"
	vg "check -M --output=json $f" check -M --output=json "$f"
	vg "dump $f" dump "$f" -o "$f.elf"
	vg "info of the dump of $f" info "$f.elf"
	vg "check of the dump of $f" check "$f.elf"
done
first=$(ls *.qcow2 | head -1) last=$(ls *.qcow2 | tail -1)
vg "diff of two images" diff "$first" "$last"
vg "diff --output=json --verbose of an image and a dump" diff --output=json --verbose "$first" "$last.elf"
vg "restore" restore "$first.elf" -o restored.qcow2
vg "an error path: restore over an existing file" restore "$first.elf" -o restored.qcow2
vg "dump --no-data" dump --no-data "$(ls *.qcow2 | head -1)" -o nodata.elf
vg "an error path: info of a --no-data dump" info nodata.elf
vg "an error path: a missing file" map missing.qcow2
finish
