#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `restore`: every image of the corpus dumped and restored; qemu-img check
# and info agree on the original and the restored image, and the restored
# image dumps to the same region sections.  Refusals and failures leave
# nothing behind.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io jq readelf objcopy

cd "$T_TMP" || finish

# Sections of a dump: "name addr size type" per line, from readelf.
sections() {
	readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] \(\.qcow2\.[^ ]*\) *\([A-Z]*\) *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2 \3 \4/p'
}

# same_region_bytes A.elf B.elf: every .qcow2.* section holds the same
# bytes (a section of zeros is NOBITS in both: sections() compares types).
same_region_bytes() {
	local a=() b=() k=0 n t bad=
	while read -r n t _; do
		[ "$t" = NOBITS ] && continue
		a+=(--dump-section "$n=sa.$k") b+=(--dump-section "$n=sb.$k")
		k=$((k + 1))
	done < <(sections "$1")
	rm -f sa.* sb.*
	objcopy "${a[@]}" "$1" tmp.elf && objcopy "${b[@]}" "$2" tmp.elf || return 1
	for ((i = 0; i < k; i++)); do cmp -s "sa.$i" "sb.$i" || bad="$bad $i"; done
	rm -f sa.* sb.* tmp.elf
	[ -z "$bad" ]
}

# qemu-img's JSON without what belongs to the file rather than the image.
strip_file_keys() {
	jq -S 'walk(if type == "object" then del(.filename, ."actual-size") else . end)'
}

# qimg KIND FILE SUBCOMMAND: qemu-img SUBCOMMAND --output=json, run in the
# file's directory (QEMU resolves an external data file name from there),
# then "exit N" and what it said on standard error.
qimg() {
	local opts=("$2") rc
	[ "$1" = luks ] && mapfile -t opts < <(corpus_luks_opts "${2##*/}")
	(cd "${2%/*}" && qemu-img "$3" --output=json "${opts[@]##*/}") >qimg.out 2>qimg.err
	rc=$?
	if jq -e . qimg.out >/dev/null 2>&1; then strip_file_keys <qimg.out; else echo "not JSON: $(head -c 200 qimg.out)"; fi
	echo "exit $rc"
	cat qimg.err
}

# The small cases first.
qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 1 0 128k' -c 'write -z 1M 64k' -c 'write -c 2M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c snap img.qcow2
qemu-img bitmap --add img.qcow2 b0
"$Q2E" dump img.qcow2 -o img.elf 2>/dev/null
assert_status "restore exits 0" 0 "$Q2E" restore img.elf -o out.qcow2
assert_eq "and prints nothing" "" "$(cat "$T_TMP/.out" "$T_TMP/.err")"
assert_eq "the restored image has the original's size" "$(stat -c %s img.qcow2)" "$(stat -c %s out.qcow2)"
assert_status "the restored image has the dump's metadata (diff exits 0)" 0 "$Q2E" diff img.qcow2 out.qcow2
assert_eq "the restored image is sparse: it takes fewer blocks" "1" \
	"$([ "$(stat -c %b out.qcow2)" -lt "$(stat -c %b img.qcow2)" ] && echo 1)"
data0=$(qemu-img map --output=json img.qcow2 | jq '.[0].offset')
assert_eq "data clusters are holes that read as zeros" "0 0 0 0" \
	"$(od -An -tu1 -j "$data0" -N 4 out.qcow2 | xargs)"
assert_eq "while the original holds the data there" "1 1 1 1" \
	"$(od -An -tu1 -j "$data0" -N 4 img.qcow2 | xargs)"

echo precious >exists.qcow2
assert_status "an existing file is not overwritten" 1 "$Q2E" restore img.elf -o exists.qcow2
assert_match "and says so" "'exists.qcow2' already exists; use --force" "$(cat "$T_TMP/.err")"
assert_eq "it keeps its content" "precious" "$(cat exists.qcow2)"
assert_status "--force replaces it" 0 "$Q2E" restore img.elf -o exists.qcow2 --force
assert_status "with the restored image" 0 cmp exists.qcow2 out.qcow2

"$Q2E" dump --no-data img.qcow2 -o nodata.elf 2>/dev/null
assert_status "a --no-data dump is refused" 1 "$Q2E" restore nodata.elf -o nd.qcow2
assert_match "with a clear message" "'nodata.elf' was written with --no-data and holds no metadata bytes to restore" "$(cat "$T_TMP/.err")"
assert_status "an image is refused" 1 "$Q2E" restore img.qcow2 -o nd.qcow2
assert_match "as not a dump" "'img.qcow2' is not a dump written by 'qcow2elf dump'" "$(cat "$T_TMP/.err")"
assert_status "a missing dump is an error" 1 "$Q2E" restore missing.elf -o nd.qcow2
assert_status "into a missing directory is an error" 1 "$Q2E" restore img.elf -o nodir/nd.qcow2
assert_status "without -o is a usage error" 1 "$Q2E" restore img.elf
cp img.elf self.elf
assert_status "restore --force onto its own dump is refused" 1 "$Q2E" restore --force self.elf -o ../"$(basename "$PWD")"/self.elf
assert_match "naming the file" "is the input file; refusing to write over it" "$(cat "$T_TMP/.err")"
assert_status "the dump is untouched" 0 cmp img.elf self.elf
# A write that fails half-way (the file size limit, with SIGXFSZ ignored).
assert_status "a failed write is an error" 1 bash -c "trap '' XFSZ; ulimit -f 64; exec \"\$0\" restore img.elf -o big.qcow2" "$Q2E"
assert_match "naming the file" "'big.qcow2'" "$(cat "$T_TMP/.err")"
assert_eq "no output and no temporary file are left behind" "" "$(ls | grep -E 'nd\.qcow2|big\.qcow2|\.tmp')"

# One corpus image: restored from its dump, it agrees with the original
# under qemu-img and dumps the same.  One case: a failed step fails it.
restore_case() {
	local name=$1 kind=$2 f r
	f=corpus/$name r=corpus/$name.restored
	"$Q2E" dump "$f" -o "$f.elf" 2>/dev/null || { fail "$name: dump exits 0"; return 1; }
	"$Q2E" restore "$f.elf" -o "$r" 2>restore.err || { fail "$name: restore exits 0" "$(cat restore.err)"; return 1; }
	[ "$(stat -c %s "$f")" = "$(stat -c %s "$r")" ] || fail "$name: restored file size"
	for sub in check info; do
		qimg "$kind" "$f" $sub >a.json
		qimg "$kind" "$r" $sub >b.json
		grep -q '^not JSON' a.json && fail "$name: qemu-img $sub of the original" "$(head -3 a.json)"
		cmp -s a.json b.json || fail "$name: qemu-img $sub differs" "$(diff a.json b.json | head -6)"
	done
	# Dump both under the same name: the note then differs only in
	# the allocated size and the data extents, not in any region.
	cp "$r" "rest/$name"
	(cd corpus && "$Q2E" dump "$name" -o "../orig/$name.elf" 2>/dev/null)
	(cd rest && "$Q2E" dump "$name" -o "../rest/$name.elf" 2>/dev/null)
	sections "orig/$name.elf" >a.secs
	sections "rest/$name.elf" >b.secs
	cmp -s a.secs b.secs || fail "$name: region sections differ (readelf -SW)" "$(diff a.secs b.secs | head -4)"
	same_region_bytes "orig/$name.elf" "rest/$name.elf" || fail "$name: region section bytes differ (objcopy)"
	"$Q2E" diff "$f" "$r" >/dev/null || fail "$name: diff of original and restored is not 0"
	rm -f "rest/$name"
	pass "$name: restored image agrees with qemu-img check/info and dumps the same"
}

# A dump whose note claims what its sections contradict, made by
# rewriting the note of a real dump (tests/lib/dump_note.py; the long image
# name leaves it room): restore refuses it and creates nothing.
claimed_size_case() {
	local long=image-with-a-long-name-that-leaves-room-in-the-note.qcow2

	qemu-img create -q -f qcow2 "$long" 64M
	"$Q2E" dump "$long" -o claim.elf || return 1
	cp claim.elf huge.elf
	python3 "$TOP/tests/lib/dump_note.py" huge.elf file-size 9223372036854775807
	assert_match "the patched dump claims an 8 EiB file" \
		"file-size=9223372036854775807" "$(readelf -nW huge.elf)"
	assert_status "restore of a dump claiming 8 EiB fails" 1 \
		"$Q2E" restore huge.elf -o huge.img
	assert_match "and says the size is beyond what QCOW2 addresses" \
		"^qcow2elf: 'huge.elf' claims an image file of 9223372036854775807 bytes, more than the 2\\^56" \
		"$(cat "$T_TMP/.err")"
	assert_eq "and creates nothing" "" "$(ls huge.img* 2>/dev/null)"
	# 0x30000 is where qemu-img puts the L1 table of a new 64M image.
	cp claim.elf small.elf
	python3 "$TOP/tests/lib/dump_note.py" small.elf file-size 1000
	assert_status "restore of a dump claiming less than its sections hold fails" 1 \
		"$Q2E" restore small.elf -o small.img
	assert_match "and names the section past the claimed end" \
		"section .qcow2.l1 at 0x30000 ends past the end of the image file \\(1000 bytes\\)" \
		"$(cat "$T_TMP/.err")"
	assert_eq "and creates nothing" "" "$(ls small.img* 2>/dev/null)"
	# A size that is not a number was read as one: -1 as 2^64 - 1,
	# 852000junk as 852000.
	for v in -1 852000junk; do
		cp claim.elf bad.elf
		python3 "$TOP/tests/lib/dump_note.py" bad.elf file-size "$v"
		assert_status "restore of a dump claiming file-size=$v fails" 1 \
			"$Q2E" restore bad.elf -o bad.img
		assert_eq "and says the note's file-size is not a number" \
			"qcow2elf: 'bad.elf': the note's qcow2elf:file-size=$v is not a decimal number that fits" \
			"$(cat "$T_TMP/.err")"
		assert_eq "and creates nothing" "" "$(ls bad.img* 2>/dev/null)"
	done
	# 2^56 - 1 bytes: a size QCOW2 addresses, more than ext4 holds (16
	# TiB): the error says which size the dump claims.
	cp claim.elf max.elf
	python3 "$TOP/tests/lib/dump_note.py" max.elf file-size 72057594037927935
	if "$Q2E" restore max.elf -o max.img 2>max.err; then
		rm -f max.img
		skip "a claimed size the file system cannot hold (this one holds it)"
	else
		assert_eq "a claimed size the file system cannot hold: the error names it" \
			"qcow2elf: 'max.img': cannot make it the 72057594037927935 bytes of the image file 'max.elf' claims: File too large" \
			"$(cat max.err)"
		assert_eq "and creates nothing" "" "$(ls max.img* 2>/dev/null)"
	fi
}
t_case "a dump's claimed file size is checked" claimed_size_case

# Regions that overlap (256 L2 tables of 64 KiB at each 512 bytes, over the
# header, the L1 and refcount tables): each byte is written once, from the
# region that reaches it first.  The image holds metadata only, so the
# restored file is the original, byte for byte.
overlap_case() {
	qemu-img create -q -f qcow2 windows.qcow2 128G
	python3 "$TOP/tests/lib/hostile.py" l2-windows windows.qcow2
	"$Q2E" dump windows.qcow2 -o windows.elf 2>/dev/null || return 1
	assert_status "overlapping regions: restore exits 0" 0 \
		"$Q2E" restore windows.elf -o windows.restored
	assert_status "overlapping regions: the restored file is the original" 0 \
		cmp windows.qcow2 windows.restored
}
t_case "regions that overlap" overlap_case

# The whole corpus.  Restored images stay beside their originals, so that
# backing files and external data files resolve the same way (restore only
# writes metadata: those files are not part of a dump).
if corpus_build "$T_TMP/corpus" 2>corpus.err; then
	mkdir -p orig rest
	while read -r name kind; do
		t_case "$name: restore" restore_case "$name" "$kind"
	done <corpus/corpus.list
else
	fail "corpus built" "$(cat corpus.err)"
fi
finish
