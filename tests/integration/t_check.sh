#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `check`: on images qemu-img and qemu-io make, healthy and then damaged by
# editing bytes, the counters, exit status and summary lines equal
# `qemu-img check`'s, and the findings name the damaged structures.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io jq od dd python3
. "$TOP/tests/lib/patch.sh"

T=$T_TMP
QEMU_KEYS='{"image-end-offset", "compressed-clusters", "total-clusters",
	    "corruptions", "check-errors", "leaks", "allocated-clusters",
	    "fragmented-clusters"} | with_entries(select(.value != null))'

# u64 FILE OFFSET: the big-endian 64-bit value at OFFSET, in decimal.
u64() { echo $((16#$(od -An -tx1 -j "$2" -N8 "$1" | tr -d ' \n'))); }
# put FILE OFFSET BYTES HEX: writes the big-endian value HEX in BYTES bytes.
put() {
	local hex
	hex=$(printf "%0$(($3 * 2))x" "$4")
	printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# hdr FILE FIELD: a 64-bit field of the header, read from its bytes.
hdr() {
	case $2 in
	l1_table_offset) u64 "$1" 40 ;;
	refcount_table_offset) u64 "$1" 48 ;;
	snapshots_offset) u64 "$1" 64 ;;
	*) echo "hdr: no field $2" >&2; return 1 ;;
	esac
}
# host offset of guest offset GUEST, as qemu-img map gives it
host_of() {
	qemu-img map --output=json "$1" | jq --argjson g "$2" \
		'[.[] | select(.start <= $g and $g < .start + .length)][0] | .offset + ($g - .start)'
}

# same_as_qemu NAME IMAGE [QEMU-IMG-ARGS...]: counters, exit status and
# summary lines agree (qemu-img is given IMAGE, or the arguments for it).
same_as_qemu() {
	local name=$1 img=$2 qrc orc
	shift 2
	local qargs=("$@")
	[ ${#qargs[@]} -gt 0 ] || qargs=("$img")
	qemu-img check --output=json "${qargs[@]}" >"$T/q.json" 2>"$T/q.err"
	qrc=$?
	"$Q2E" check --output=json "$img" >"$T/o.json" 2>"$T/o.err"
	orc=$?
	assert_eq "$name: exit status as qemu-img's" "$qrc" "$orc"
	# Where qemu-img will not open the image, we say we could not check.
	if grep -q "^qemu-img: Could not open" "$T/q.err"; then
		assert_match "$name: says the check could not complete" \
			"^qcow2elf: '$img': check could not complete: " "$(cat "$T/o.err")"
	fi
	if [ -s "$T/q.json" ]; then
		assert_eq "$name: counters as qemu-img's" \
			"$(jq -cS "$QEMU_KEYS" "$T/q.json")" \
			"$(jq -cS "$QEMU_KEYS" "$T/o.json" 2>&1)"
		assert_eq "$name: per-cluster lines as qemu-img's" \
			"$(grep -v '^qemu-img:' "$T/q.err")" "$(grep -v '^qcow2elf:' "$T/o.err")"
	fi
	qemu-img check "${qargs[@]}" >"$T/q.txt" 2>"$T/q.terr"
	"$Q2E" check "$img" >"$T/o.txt" 2>"$T/o.terr"
	if [ -s "$T/q.txt" ]; then
		# As qemu-img: the summary on standard output, the per-cluster
		# lines on standard error; the findings follow the summary.
		assert_eq "$name: human summary as qemu-img's, on standard output" \
			"$(cat "$T/q.txt")" \
			"$(sed '/^[0-9]* findings* beyond qemu-img/,$d' "$T/o.txt")"
		assert_eq "$name: human per-cluster lines as qemu-img's, on standard error" \
			"$(grep -v '^qemu-img:' "$T/q.terr")" \
			"$(grep -v '^qcow2elf:' "$T/o.terr")"
	fi
}
each_call_a_case same_as_qemu

# finding NAME IMAGE TYPE REGEX: a finding of TYPE whose names match REGEX.
finding() {
	local got
	got=$("$Q2E" check --output=json "$2" 2>/dev/null |
	      jq -r --arg t "$3" '.findings[] | select(.type == $t) |
		[.structure // empty, .message, (.structures[]?.owners[]?)] | join(" ")')
	assert_match "$1: $3 finding names $4" "$4" "$got"
}

# --- healthy images ---------------------------------------------------
mk() { qemu-img create -q -f qcow2 "$@"; }

mk -o compat=0.10 "$T/v2.qcow2" 64M
qemu-io -c 'write 0 1M' -c 'write 10M 64k' "$T/v2.qcow2" >/dev/null
mk "$T/v3.qcow2" 64M
qemu-io -c 'write 0 1M' -c 'write 20M 64k' -c 'write 5M 64k' "$T/v3.qcow2" >/dev/null
cp "$T/v3.qcow2" "$T/snap.qcow2"
qemu-img snapshot -c s1 "$T/snap.qcow2"
qemu-io -c 'write 0 128k' -c 'write 30M 64k' "$T/snap.qcow2" >/dev/null
qemu-img snapshot -c s2 "$T/snap.qcow2"
qemu-io -c 'write 64k 64k' "$T/snap.qcow2" >/dev/null
mk "$T/bitmaps.qcow2" 8G
qemu-img bitmap --add -g 4k "$T/bitmaps.qcow2" b1
qemu-io -c 'write 0 64k' -c 'write 32M 1M' "$T/bitmaps.qcow2" >/dev/null
qemu-img bitmap --add -g 128k "$T/bitmaps.qcow2" b2
qemu-io -c 'write 40M 64k' "$T/bitmaps.qcow2" >/dev/null
mk "$T/compressed.qcow2" 64M
qemu-io -c 'write -c 0 256k' -c 'write 1M 64k' -c 'write -c 2M 64k' "$T/compressed.qcow2" >/dev/null
mk -o extended_l2=on,cluster_size=128k "$T/extl2.qcow2" 64M
qemu-io -c 'write 0 4k' -c 'write 1M 200k' -c 'write -z 8M 64k' "$T/extl2.qcow2" >/dev/null
mk -o refcount_bits=1 "$T/rc1.qcow2" 64M
qemu-io -c 'write 0 1M' "$T/rc1.qcow2" >/dev/null
mk -o refcount_bits=64 "$T/rc64.qcow2" 64M
qemu-io -c 'write 0 1M' "$T/rc64.qcow2" >/dev/null
qemu-img snapshot -c s1 "$T/rc64.qcow2"
mk -o cluster_size=512 "$T/c512.qcow2" 16M
qemu-io -c 'write 0 300k' -c 'write 8M 4k' "$T/c512.qcow2" >/dev/null
mk "$T/base.qcow2" 64M
qemu-io -c 'write 0 2M' "$T/base.qcow2" >/dev/null
mk -b "$T/base.qcow2" -F qcow2 "$T/overlay.qcow2"
qemu-io -c 'write 1M 64k' "$T/overlay.qcow2" >/dev/null
mk -o preallocation=metadata "$T/prealloc.qcow2" 256M
mk "$T/empty.qcow2" 1G
mk -o lazy_refcounts=on "$T/lazy.qcow2" 64M
qemu-io -c 'write 0 64k' "$T/lazy.qcow2" >/dev/null
cp "$T/lazy.qcow2" "$T/dirty.qcow2"
# A crash with lazy refcounts leaves the dirty bit and stale refcounts.
sh -c 'qemu-io -c "write 1M 192k" -c abort "$1"' sh "$T/dirty.qcow2" >/dev/null 2>&1

for f in v2 v3 snap bitmaps compressed extl2 rc1 rc64 c512 base overlay \
	 prealloc empty lazy dirty; do
	same_as_qemu "$f" "$T/$f.qcow2"
done
assert_status "healthy image: exit status 0" 0 "$Q2E" check "$T/snap.qcow2"
assert_eq "healthy image: no findings" 0 \
	"$("$Q2E" check --output=json "$T/snap.qcow2" | jq '.findings | length')"
assert_match "dirty image: the dirty bit is a finding" "dirty" \
	"$("$Q2E" check --output=json "$T/dirty.qcow2" 2>/dev/null | jq -r '.findings[].message')"

# --- damaged images ---------------------------------------------------
# Offsets come from our own info and map, and from the tables themselves.
src=$T/v3.qcow2
cs=65536
l1=$(hdr "$src" l1_table_offset)
rt=$(hdr "$src" refcount_table_offset)
l2=$(( $(u64 "$src" "$l1") & 0x00fffffffffffe00 ))
rb=$(u64 "$src" "$rt")
d20=$(host_of "$src" $((20 << 20)))

# A leaked cluster: the L2 entry of guest 20M cleared, its refcount kept.
cp "$src" "$T/leak.qcow2"
put "$T/leak.qcow2" $((l2 + (20 << 20) / cs * 8)) 8 0
same_as_qemu "leaked cluster" "$T/leak.qcow2"
assert_status "leaked cluster: exit status 3" 3 "$Q2E" check "$T/leak.qcow2"
assert_match "leaked cluster: the line names it, on standard error" \
	"^Leaked cluster $((d20 / cs)) refcount=1 reference=0" \
	"$("$Q2E" check "$T/leak.qcow2" 2>&1 >/dev/null)"
# qemu-img check -q: no report on standard output, the lines on standard
# error and the exit status as without it (-q was an invalid option).
for img in "$src" "$T/leak.qcow2"; do
	assert_eq "check -q $(basename "$img"): qemu-img check -q's output and status" \
		"$(qemu-img check -q "$img" 2>&1; echo "exit $?")" "$("$Q2E" check -q "$img" 2>&1; echo "exit $?")"
done
assert_eq "check -q --output=json: nothing on standard output either" "" \
	"$("$Q2E" check -q --output=json "$T/leak.qcow2" 2>/dev/null)"
assert_status "check -q --output=json-lines is a usage error" 1 "$Q2E" check -q --output=json-lines "$src"

# A refcount too low: the data cluster of guest 20M has refcount 0.
cp "$src" "$T/low.qcow2"
put "$T/low.qcow2" $((rb + d20 / cs * 2)) 2 0
same_as_qemu "refcount too low" "$T/low.qcow2"
assert_match "refcount too low: the line names it, on standard error" \
	"ERROR cluster $((d20 / cs)) refcount=0 reference=1" \
	"$("$Q2E" check "$T/low.qcow2" 2>&1 >/dev/null)"

# COPIED wrong: the entry of guest 5M loses bit 63.
cp "$src" "$T/copied.qcow2"
e=$((l2 + (5 << 20) / cs * 8))
put "$T/copied.qcow2" "$e" 8 $(( $(u64 "$src" "$e") & 0x7fffffffffffffff ))
same_as_qemu "COPIED wrong" "$T/copied.qcow2"
assert_match "COPIED wrong: the line names it, on standard error" "ERROR OFLAG_COPIED data cluster" \
	"$("$Q2E" check "$T/copied.qcow2" 2>&1 >/dev/null)"

# An L2 table that is also a refcount block: L1[0] points at block 0.
cp "$src" "$T/l2rb.qcow2"
put "$T/l2rb.qcow2" "$l1" 8 $(( rb | 0x8000000000000000 ))
same_as_qemu "L2 table is a refcount block" "$T/l2rb.qcow2"
finding "L2 table is a refcount block" "$T/l2rb.qcow2" overlap \
	"l2_table_0.*refcount_block_0|refcount_block_0.*l2_table_0"
assert_status "L2 table is a refcount block: exit status 2" 2 \
	"$Q2E" check "$T/l2rb.qcow2"

# One L2 table in several L1 entries: one finding that names them all.
mk "$T/shared.qcow2" 2G
qemu-io -c 'write 0 64k' -c 'write 512M 64k' -c 'write 1G 64k' \
	-c 'write 1536M 64k' "$T/shared.qcow2" >/dev/null
sl1=$(hdr "$T/shared.qcow2" l1_table_offset)
put "$T/shared.qcow2" $((sl1 + 8)) 8 "$(u64 "$T/shared.qcow2" "$sl1")"
same_as_qemu "one L2 table in two L1 entries" "$T/shared.qcow2"
finding "one L2 table in two L1 entries" "$T/shared.qcow2" shared-table \
	"^l2_table_0 and l2_table_1 are the same L2 table"
put "$T/shared.qcow2" $((sl1 + 16)) 8 "$(u64 "$T/shared.qcow2" "$sl1")"
put "$T/shared.qcow2" $((sl1 + 24)) 8 "$(u64 "$T/shared.qcow2" "$sl1")"
assert_eq "one L2 table in four L1 entries: one finding" 1 \
	"$("$Q2E" check --output=json "$T/shared.qcow2" 2>/dev/null |
	   jq '[.findings[] | select(.type == "shared-table")] | length')"
finding "one L2 table in four L1 entries" "$T/shared.qcow2" shared-table \
	"^l2_table_0, l2_table_1 and 2 more are the same L2 table.* l2_table_3"

# A reference past the end of the file: guest 5M maps to 1 GiB.
cp "$src" "$T/pasteof.qcow2"
put "$T/pasteof.qcow2" "$e" 8 $(( (1 << 30) | 0x8000000000000000 ))
same_as_qemu "reference past EOF" "$T/pasteof.qcow2"
finding "reference past EOF" "$T/pasteof.qcow2" past-end-of-file "l2_table_0\[80\]"

# A truncated file: the last two data clusters cut off.
cp "$src" "$T/trunc.qcow2"
truncate -s $(( $(stat -c %s "$src") - 2 * cs )) "$T/trunc.qcow2"
same_as_qemu "truncated file" "$T/trunc.qcow2"
finding "truncated file" "$T/trunc.qcow2" past-end-of-file "l2_table_0"

# A refcount block missing: refcount table entry 0 cleared.
cp "$src" "$T/norb.qcow2"
put "$T/norb.qcow2" "$rt" 8 0
same_as_qemu "refcount block missing" "$T/norb.qcow2"

# A refcount block misaligned: qemu-img says so, then when it compares,
# once that the image is corrupt and for each cluster of the block that
# it cannot get its refcount.
cp "$src" "$T/rbmis.qcow2"
put "$T/rbmis.qcow2" "$rt" 8 $(( $(u64 "$src" "$rt") + 512 ))
same_as_qemu "refcount block misaligned" "$T/rbmis.qcow2"
assert_match "refcount block misaligned: qemu-img's corruption line" \
	"^qcow2: Image is corrupt: Refblock offset 0x[0-9a-f]*200 unaligned" \
	"$("$Q2E" check "$T/rbmis.qcow2" 2>&1 >/dev/null | grep -m 1 '^qcow2:')"

# A data cluster inside the refcount table: guest 5M maps onto it.
cp "$src" "$T/inrt.qcow2"
put "$T/inrt.qcow2" "$e" 8 $(( rt | 0x8000000000000000 ))
same_as_qemu "data cluster in the refcount table" "$T/inrt.qcow2"
finding "data cluster in the refcount table" "$T/inrt.qcow2" data-in-metadata \
	"l2_table_0\[80\].*refcount_table"

# 512-byte clusters with preallocated metadata: a refcount block right
# before an L2 table, read with it and kept as bits (0 or 1 each) until
# the comparison.  Damaged there: a leak (a discarded cluster back at 1), a
# refcount too low, and a block with a refcount of 2 (not kept: read again).
mk -o preallocation=metadata,cluster_size=512 "$T/p512.qcow2" 8M
qemu-io -c 'discard 4M 16k' "$T/p512.qcow2" >/dev/null
same_as_qemu "512-byte clusters, preallocated, 16 KiB discarded" "$T/p512.qcow2"
prt=$(hdr "$T/p512.qcow2" refcount_table_offset)
p4=$(( $(host_of "$T/p512.qcow2" $(((4 << 20) + (32 << 10)))) - (32 << 10) ))
p6=$(host_of "$T/p512.qcow2" $((6 << 20)))
p2=$(host_of "$T/p512.qcow2" $((2 << 20)))
pblock() { u64 "$T/p512.qcow2" $((prt + $1 / 512 / 256 * 8)); }
pslot() { echo $(( $(pblock "$1") + $1 / 512 % 256 * 2 )); }
pl1=$(hdr "$T/p512.qcow2" l1_table_offset)
assert_eq "512-byte clusters: an L2 table right after the damaged block" 1 \
	"$(od -An -v -tx1 -j "$pl1" -N $((256 * 8)) "$T/p512.qcow2" | tr -d ' \n' |
	   fold -w 16 | grep -c "^80*$(printf '%x' $(( $(pblock "$p4") + 512 )))$")"
cp "$T/p512.qcow2" "$T/p512dmg.qcow2"
put "$T/p512dmg.qcow2" "$(pslot "$p4")" 2 1
put "$T/p512dmg.qcow2" "$(pslot "$p6")" 2 0
put "$T/p512dmg.qcow2" "$(pslot "$p2")" 2 2
same_as_qemu "512-byte clusters: refcounts wrong beside L2 tables" "$T/p512dmg.qcow2"
"$Q2E" check "$T/p512dmg.qcow2" >/dev/null 2>"$T/p512.lines"
for line in "Leaked cluster $((p4 / 512)) refcount=1 reference=0" \
	    "ERROR cluster $((p6 / 512)) refcount=0 reference=1" \
	    "Leaked cluster $((p2 / 512)) refcount=2 reference=1"; do
	assert_eq "512-byte clusters: '$line'" 1 "$(grep -cx "$line" "$T/p512.lines")"
done

# Snapshot damage: an L2 shared with a snapshot loses its refcount of 2.
cp "$T/snap.qcow2" "$T/snapdmg.qcow2"
srt=$(hdr "$T/snapdmg.qcow2" refcount_table_offset)
srb=$(u64 "$T/snapdmg.qcow2" "$srt")
sd=$(host_of "$T/snapdmg.qcow2" $((20 << 20)))
put "$T/snapdmg.qcow2" $((srb + sd / cs * 2)) 2 1
same_as_qemu "snapshot-shared cluster with refcount 1" "$T/snapdmg.qcow2"

# Snapshot table damage: a version 3 entry with too little extra data, and
# a table past the end of the file, which QEMU reads as zero entries.
cp "$T/snap.qcow2" "$T/snapextra.qcow2"
put "$T/snapextra.qcow2" $(($(hdr "$T/snapextra.qcow2" snapshots_offset) + 36)) 4 8
same_as_qemu "two snapshots, the first with 8 bytes of extra data" "$T/snapextra.qcow2"
cp "$T/v3.qcow2" "$T/snapextra1.qcow2"
qemu-img snapshot -c s1 "$T/snapextra1.qcow2"
put "$T/snapextra1.qcow2" $(($(hdr "$T/snapextra1.qcow2" snapshots_offset) + 36)) 4 8
same_as_qemu "one snapshot with 8 bytes of extra data" "$T/snapextra1.qcow2"
for v in v3 v2; do
	mk -o compat=$([ $v = v3 ] && echo 1.1 || echo 0.10) "$T/snapeof-$v.qcow2" 1M
	put "$T/snapeof-$v.qcow2" 60 4 2
	put "$T/snapeof-$v.qcow2" 64 8 $((0x10000000))
	same_as_qemu "$v: snapshot table past the end of the file" "$T/snapeof-$v.qcow2"
done

# L2 tables shared by many snapshots with L1 tables of their own, the
# usual case (`qemu-img snapshot -c` copies the L1 table): each table is
# walked once for all of them, and counts for each.  Ten snapshots made by
# qemu-img, of an image with preallocated metadata and data between them.
mk -o preallocation=metadata "$T/ten.qcow2" 1G
for i in 0 1 2 3 4 5 6 7 8 9; do
	qemu-io -c "write -P $i $((i * 3))M 1M" "$T/ten.qcow2" >/dev/null
	qemu-img snapshot -c "s$i" "$T/ten.qcow2"
done
same_as_qemu "ten snapshots with L1 tables of their own" "$T/ten.qcow2"
# 500 (hostile.py makes them as qemu-img would, in far less time); the
# refcounts set by qemu-img's repair, then left at two, as before it.
mk -o preallocation=metadata "$T/many.qcow2" 4G
qemu-io -c 'write -P 1 0 8M' "$T/many.qcow2" >/dev/null
qemu-img snapshot -c s "$T/many.qcow2"
cp "$T/many.qcow2" "$T/many-wrong.qcow2"
python3 "$TOP/tests/lib/hostile.py" copied-snapshots "$T/many.qcow2" 500
python3 "$TOP/tests/lib/hostile.py" copied-snapshots "$T/many-wrong.qcow2" 500
qemu-img check -q -r all "$T/many.qcow2" >/dev/null 2>&1
same_as_qemu "500 snapshots with L1 tables of their own" "$T/many.qcow2"
same_as_qemu "500 snapshots, refcounts of 2" "$T/many-wrong.qcow2"
# The first L2 table of 20 such snapshots, damaged: an entry with reserved
# bits, one not aligned, one past the end of the file, one compressed.
# Each is a corruption for each L1 table that reaches it, with its line.
mk -o preallocation=metadata "$T/many-bad.qcow2" 64M
qemu-io -c 'write -P 1 0 1M' "$T/many-bad.qcow2" >/dev/null
qemu-img snapshot -c s "$T/many-bad.qcow2"
python3 "$TOP/tests/lib/hostile.py" copied-snapshots "$T/many-bad.qcow2" 20
qemu-img check -q -r all "$T/many-bad.qcow2" >/dev/null 2>&1
l1=$(hdr "$T/many-bad.qcow2" l1_table_offset)
l2=$(( $(od -An -tx1 -j "$((l1))" -N8 "$T/many-bad.qcow2" | tr -d ' \n' |
	sed 's/^/0x/') & 0x00fffffffffffe00 ))
put "$T/many-bad.qcow2" $((l2 + 3 * 8)) 8 $((0x0000000000090000 | 0x2))
put "$T/many-bad.qcow2" $((l2 + 4 * 8)) 8 $((0x0000000000090200))
put "$T/many-bad.qcow2" $((l2 + 5 * 8)) 8 $((0x0000100000000000))
put "$T/many-bad.qcow2" $((l2 + 6 * 8)) 8 $((0x4000000000090000))
same_as_qemu "20 snapshots sharing a damaged L2 table" "$T/many-bad.qcow2"

# Refcounts of 4 bits overflow: 20 snapshots, the last ten sharing the
# second one's L1 table; each overflow has its line, in its snapshot.
mk -o preallocation=metadata,refcount_bits=4 "$T/many-rc4.qcow2" 64M
qemu-io -c 'write -P 1 0 1M' "$T/many-rc4.qcow2" >/dev/null
qemu-img snapshot -c s "$T/many-rc4.qcow2"
python3 "$TOP/tests/lib/hostile.py" copied-snapshots "$T/many-rc4.qcow2" 20
l1=$("$Q2E" info --output=json "$T/many-rc4.qcow2" | jq -r '.snapshots[1]."l1-table-offset"')
for e in $(seq 10 19); do
	eo=$("$Q2E" info --output=json "$T/many-rc4.qcow2" | jq -r ".snapshots[$e].\"entry-offset\"")
	put "$T/many-rc4.qcow2" "$((eo))" 8 "$((l1))"
done
same_as_qemu "20 snapshots overflowing 4-bit refcounts, ten sharing an L1" "$T/many-rc4.qcow2"

# Preallocated zero clusters (zero flag and a host offset, as `write -z`
# leaves preallocated clusters) are counted a run at a time: shared by
# five snapshots under 2-bit refcounts, each overflows for every snapshot
# past the third reference, each with its line.
mk -o preallocation=metadata,refcount_bits=2 "$T/zero-rc2.qcow2" 16M
qemu-io -c 'write -z 0 8M' -c 'write -P 3 8M 64k' "$T/zero-rc2.qcow2" >/dev/null
qemu-img snapshot -c s "$T/zero-rc2.qcow2"
python3 "$TOP/tests/lib/hostile.py" copied-snapshots "$T/zero-rc2.qcow2" 4
same_as_qemu "preallocated zero clusters overflowing 2-bit refcounts" "$T/zero-rc2.qcow2"
assert_match "preallocated zero clusters: overflow lines" "ERROR: overflow cluster offset=" \
	"$("$Q2E" check "$T/zero-rc2.qcow2" 2>&1 >/dev/null)"

# An L2 table whose refcount is 2: its refcount block disagrees with the
# counts, so the COPIED stage reads the stored refcount, not the count.
cp "$src" "$T/l2rc2.qcow2"
l2v3=$(( $(u64 "$src" "$(hdr "$src" l1_table_offset)") & 0x00fffffffffffe00 ))
put "$T/l2rc2.qcow2" $((rb + l2v3 / cs * 2)) 2 2
same_as_qemu "L2 table with refcount 2" "$T/l2rc2.qcow2"
assert_match "L2 table with refcount 2: its COPIED line" \
	"ERROR OFLAG_COPIED L2 cluster: l1_index=0 .* refcount=2" \
	"$("$Q2E" check "$T/l2rc2.qcow2" 2>&1 >/dev/null)"

# Two real snapshots and 4,094 more entries past the end of the file: the
# model counts them without keeping them, qemu-img reads each as zeros.
for v in v3 v2; do
	mk -o compat=$([ $v = v3 ] && echo 1.1 || echo 0.10) "$T/phantom-$v.qcow2" 1M
	qemu-img snapshot -c a "$T/phantom-$v.qcow2"
	qemu-img snapshot -c b "$T/phantom-$v.qcow2"
	python3 "$TOP/tests/lib/hostile.py" phantom-snapshots "$T/phantom-$v.qcow2" 4096
	same_as_qemu "$v: snapshot entries past the end of the file" "$T/phantom-$v.qcow2"
done

# Tables cut by the end of the file read on as zeros in QEMU: a snapshot
# taken last (the file ends with its name), whose entry then claims 280
# bytes of extra data, and an active L1 table of 2^21 + 1 entries whose
# entry at the end of the file holds the last two bytes of that name.
mk "$T/snaplast.qcow2" 1M
qemu-io -c 'write 0 64k' "$T/snaplast.qcow2" >/dev/null
qemu-img snapshot -c a "$T/snaplast.qcow2"
cp "$T/snaplast.qcow2" "$T/snaplast-extra.qcow2"
put "$T/snaplast-extra.qcow2" $(($(hdr "$T/snaplast.qcow2" snapshots_offset) + 36)) 4 280
same_as_qemu "snapshot entry running past the end of the file" "$T/snaplast-extra.qcow2"
cp "$T/snaplast.qcow2" "$T/snaplast-l1.qcow2"
put "$T/snaplast-l1.qcow2" 36 4 $(((1 << 21) + 1))
same_as_qemu "L1 entry cut by the end of the file" "$T/snaplast-l1.qcow2"
# The same for a snapshot's L1 table: aimed at the snapshot table itself,
# 9 entries, the last of them cut by the end of the file.
cp "$T/snaplast.qcow2" "$T/snaplast-sl1.qcow2"
so=$(hdr "$T/snaplast.qcow2" snapshots_offset)
put "$T/snaplast-sl1.qcow2" "$so" 8 "$so"
put "$T/snaplast-sl1.qcow2" $((so + 8)) 4 9
same_as_qemu "snapshot L1 entry cut by the end of the file" "$T/snaplast-sl1.qcow2"
# No snapshots, but a snapshot table offset that is not cluster aligned.
mk "$T/snapoff.qcow2" 1M
put "$T/snapoff.qcow2" 64 8 0x800
same_as_qemu "no snapshots, misaligned snapshots_offset" "$T/snapoff.qcow2"

# What QEMU refuses to open, or gives up checking: exit 1, as qemu-img.
while read -r what off bytes value; do
	mk "$T/unopen.qcow2" 1M
	put "$T/unopen.qcow2" "$off" "$bytes" "$value"
	same_as_qemu "$what" "$T/unopen.qcow2"
	assert_status "$what: exits 1" 1 "$Q2E" check "$T/unopen.qcow2"
done <<EOF2
refcount-table-offset-past-INT64_MAX 48 8 0x7fffffffffff0000
L1-table-past-the-readable-range 40 8 0x7fffffffc0000000
L1-table-too-small 36 4 0
virtual-size-2^62 24 8 0x4000000000000000
more-than-65536-snapshots 60 4 65537
unknown-incompatible-feature 72 8 0x100000
backing-file-offset-past-the-header-cluster 8 8 0x20000
unknown-encryption-method 32 4 3
data-file-raw-without-a-data-file 88 8 2
header-extension-past-the-header-cluster 116 4 0xffff
EOF2
mk "$T/unopen.qcow2" 1M
put "$T/unopen.qcow2" 60 4 1
put "$T/unopen.qcow2" 64 8 512
same_as_qemu "snapshot table not cluster aligned" "$T/unopen.qcow2"
mk "$T/unopen.qcow2" 1M
put "$T/unopen.qcow2" 8 8 512
put "$T/unopen.qcow2" 16 4 1024
same_as_qemu "backing file name of 1024 bytes" "$T/unopen.qcow2"
assert_status "backing file name of 1024 bytes: exits 1" 1 "$Q2E" check "$T/unopen.qcow2"
# A bitmaps extension QEMU refuses: each field it validates, in turn
# (offsets from the extension's 8-byte header).
# refused_like_qemu LABEL IMAGE BASE: for each line "WHAT OFFSET BYTES
# VALUE" on stdin, a copy of IMAGE with VALUE at BASE + OFFSET, which
# qemu-img refuses: check agrees with it and exits 1.
refused_like_qemu() {
	local what off bytes value

	while read -r what off bytes value; do
		cp "$2" "$T/refused.qcow2"
		put "$T/refused.qcow2" $(($3 + off)) "$bytes" "$value"
		same_as_qemu "$1: $what" "$T/refused.qcow2"
		assert_status "$1: $what: exits 1" 1 "$Q2E" check "$T/refused.qcow2"
	done
}
bx=$("$Q2E" info --output=json "$T/bitmaps.qcow2" |
     jq '.extensions[] | select(.magic == "0x23852875") | .offset')
refused_like_qemu "bitmaps extension" "$T/bitmaps.qcow2" "$bx" <<EOF2
length-16 4 4 16
reserved-field-set 12 4 1
no-bitmaps 8 4 0
65536-bitmaps 8 4 65536
directory-not-cluster-aligned 24 8 0x10800
directory-of-64-MiB 16 8 0x4000000
directory-of-2^63-bytes 16 8 0x8000000000000048
EOF2

# Snapshot L1 tables QEMU cannot read or count: its check fails (exit 1).
for l1off in 0x7fffffffffff0000 0xffffffffffff0000; do
	cp "$T/snapextra1.qcow2" "$T/snapl1.qcow2"
	so=$(hdr "$T/snapl1.qcow2" snapshots_offset)
	python3 -c 'import sys,struct; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(struct.pack(">QI", int(sys.argv[3], 16), 1)); f.seek(int(sys.argv[2]) + 36); f.write(struct.pack(">I", 16))' \
		"$T/snapl1.qcow2" "$so" "$l1off"
	same_as_qemu "snapshot L1 table at $l1off" "$T/snapl1.qcow2"
	assert_status "snapshot L1 table at $l1off: exits 1" 1 "$Q2E" check "$T/snapl1.qcow2"
done
# No refcount table, at an offset QEMU could not read: it reads nothing.
mk "$T/rt0.qcow2" 1M
put "$T/rt0.qcow2" 56 4 0
put "$T/rt0.qcow2" 48 8 0x7fffffffc0010000
same_as_qemu "no refcount table, at an unreadable offset" "$T/rt0.qcow2"
# More header fields QEMU validates when it opens an image.
mk -o compat=0.10 "$T/v2end.qcow2" 1M
put "$T/v2end.qcow2" 76 4 0x20000
same_as_qemu "v2: end marker longer than the header cluster" "$T/v2end.qcow2"
while read -r what off bytes value; do
	mk "$T/hdr.qcow2" 1M
	put "$T/hdr.qcow2" "$off" "$bytes" "$value"
	same_as_qemu "$what" "$T/hdr.qcow2"
	assert_status "$what: exits 1" 1 "$Q2E" check "$T/hdr.qcow2"
done <<EOF2
data-file-bit-without-a-data-file-name 72 8 4
compression-type-without-its-bit 104 1 1
unknown-compression-type 104 1 2
EOF2
mk -o cluster_size=8k "$T/extl2small.qcow2" 1M
put "$T/extl2small.qcow2" 72 8 16
same_as_qemu "extended L2 with 8 KiB clusters" "$T/extl2small.qcow2"
# The file ends inside the end marker: QEMU reads the rest as zeros.
mk "$T/cutend.qcow2" 1M
truncate -s $((112 + 8 + 384 + 4)) "$T/cutend.qcow2"
same_as_qemu "file ending inside the end marker" "$T/cutend.qcow2"
# A snapshot table of more than 64 MiB (1100 entries with 64 KiB names,
# a sparse file): QEMU gives up on it.
mk "$T/bigsnap.qcow2" 1M
python3 - "$T/bigsnap.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
off = 1 << 20
f.seek(60)
f.write(struct.pack(">IQ", 1100, off))
pos = off
for i in range(1100):
    f.seek(pos)
    f.write(struct.pack(">QIHHIIQII", 0, 0, 0, 65535, 0, 0, 0, 0, 16))
    pos = (pos + 40 + 16 + 65535 + 7) & ~7
f.truncate(pos)
PY
same_as_qemu "snapshot table of more than 64 MiB" "$T/bigsnap.qcow2"
assert_status "snapshot table of more than 64 MiB: exits 1" 1 "$Q2E" check "$T/bigsnap.qcow2"

# A bitmap directory entry QEMU refuses (check_dir_entry()): each field.
bd=$("$Q2E" info --output=json "$T/bitmaps.qcow2" | jq '.bitmaps[0]."entry-offset"')
refused_like_qemu "bitmap entry" "$T/bitmaps.qcow2" "$bd" <<EOF2
no-table 8 4 0
misaligned-table 0 8 0x10200
reserved-flag 12 4 4
type-2 16 1 2
granularity-below-512 17 1 8
granularity-above-2^31 17 1 32
extra-data 20 4 8
EOF2
# A bitmap table QEMU cannot load when it opens the image (load_bitmap()):
# one of another size than the virtual size needs, or an entry with a
# reserved bit set.  check went on where qemu-img gives up.  A bitmap in
# use is not loaded, and the image opens.
bt=$("$Q2E" info --output=json "$T/bitmaps.qcow2" | jq '.bitmaps[0]."table-offset"')
nt=$("$Q2E" info --output=json "$T/bitmaps.qcow2" | jq '.bitmaps[0]."table-size"')
refused_like_qemu "bitmap table" "$T/bitmaps.qcow2" 0 <<EOF2
one-entry-more $((bd + 8)) 4 $((nt + 1))
reserved-bit-in-an-entry $bt 8 2
EOF2
cp "$T/bitmaps.qcow2" "$T/inuse.qcow2"
put "$T/inuse.qcow2" $((bd + 8)) 4 $((nt + 1))
put "$T/inuse.qcow2" $((bd + 12)) 4 3
same_as_qemu "bitmap in use, its table of another size" "$T/inuse.qcow2"

# Not QCOW2: qemu-img takes it for raw, which has no check (exit 63).
printf 'not an image at all%.0s' {1..100} >"$T/text.img"
same_as_qemu "not a QCOW2 image" "$T/text.img"
assert_status "not a QCOW2 image: exit 63" 63 "$Q2E" check "$T/text.img"
# A refcount block QEMU cannot read: internal errors, not corruptions.
mk "$T/rbhigh.qcow2" 1M
qemu-io -c 'write 0 64k' "$T/rbhigh.qcow2" >/dev/null
put "$T/rbhigh.qcow2" "$(hdr "$T/rbhigh.qcow2" refcount_table_offset)" 8 0x7fffffffffff0000
same_as_qemu "refcount block past the readable range" "$T/rbhigh.qcow2"
# No refcount table at all: QEMU opens it for a check, every refcount 0.
mk "$T/noreftable.qcow2" 1M
qemu-io -c 'write 0 64k' "$T/noreftable.qcow2" >/dev/null
put "$T/noreftable.qcow2" 56 4 0
same_as_qemu "refcount_table_clusters 0" "$T/noreftable.qcow2"

# Compressed and 512-byte-cluster images damaged the same way.
cp "$T/compressed.qcow2" "$T/cdmg.qcow2"
crt=$(hdr "$T/cdmg.qcow2" refcount_table_offset)
put "$T/cdmg.qcow2" "$(u64 "$T/cdmg.qcow2" "$crt")" 8 0
same_as_qemu "compressed image, refcounts zeroed" "$T/cdmg.qcow2"
cp "$T/c512.qcow2" "$T/c512dmg.qcow2"
truncate -s -1024 "$T/c512dmg.qcow2"
same_as_qemu "512-byte clusters, truncated" "$T/c512dmg.qcow2"

# --- -M: the viscera object --------------------------------------------
v=$("$Q2E" check --output=json -M "$T/snap.qcow2")
assert_eq "-M: qcow2-header" '{"offset":0,"size":65536}|3' \
	"$(printf '%s' "$v" | jq -c '.viscera."qcow2-header" | "\(.location|tojson)|\(.version)"' -r)"
snap_l2=$(( $(u64 "$T/snap.qcow2" "$(hdr "$T/snap.qcow2" l1_table_offset)") & 0x00fffffffffffe00 ))
assert_eq "-M: active-l1 name and L2 list" "L1 active table $snap_l2" \
	"$(printf '%s' "$v" | jq -r '.viscera."active-l1" | "\(.name) \(."l2-list"[0].offset)"')"
assert_eq "-M: active-l1 location" "$(hdr "$T/snap.qcow2" l1_table_offset) 8" \
	"$(printf '%s' "$v" | jq -r '.viscera."active-l1".location | "\(.offset) \(.size)"')"
assert_eq "-M: refcount-table location" "$(hdr "$T/snap.qcow2" refcount_table_offset) 65536" \
	"$(printf '%s' "$v" | jq -r '.viscera."refcount-table".location | "\(.offset) \(.size)"')"
assert_eq "-M: snapshot l1-list names and ids" "s1 1 1,s2 2 1" \
	"$(printf '%s' "$v" | jq -r '[.viscera."snapshot-table"."l1-list"[] | "\(.name) \(."snapshot-id") \(."l2-list" | length)"] | join(",")')"
assert_eq "-M: refcount blocks" "1" \
	"$(printf '%s' "$v" | jq '.viscera."refcount-blocks" | length')"
assert_eq "-M: no bitmaps section without bitmaps" "null" \
	"$(printf '%s' "$v" | jq '.viscera.bitmaps')"
v=$("$Q2E" check --output=json -M "$T/bitmaps.qcow2")
assert_eq "-M: bitmaps" "2 b1,b2" \
	"$(printf '%s' "$v" | jq -r '.viscera.bitmaps | "\(."nb-bitmaps") \([."bitmap-dir"."dir-entries"[]."bitmap-name"] | join(","))"')"
assert_match "-M: bitmap table entries" '"all-zeros".*"serialized"|"serialized".*"all-zeros"' \
	"$(printf '%s' "$v" | jq -c '[.viscera.bitmaps."bitmap-dir"."dir-entries"[0]."bitmap-table"."table-entries"[].type] | unique')"
assert_match "-M: serialized entries have a cluster" '^[1-9][0-9]* 65536$' \
	"$(printf '%s' "$v" | jq -r '[.viscera.bitmaps."bitmap-dir"."dir-entries"[0]."bitmap-table"."table-entries"[] | select(.type == "serialized")][0].cluster | "\(.offset) \(.size)"')"
v=$("$Q2E" check --output=json -M "$T/overlay.qcow2")
assert_eq "-M: backing file" "$T/base.qcow2" \
	"$(printf '%s' "$v" | jq -r '.viscera."backing-file".name')"
assert_match "-M: header extensions" "backing-format" \
	"$(printf '%s' "$v" | jq -r '.viscera."header-extensions"[].name')"
assert_match "-M human: a tree" "active-l1:" "$("$Q2E" check -M "$T/v3.qcow2")"

# Every image of the shared corpus (tests/lib/corpus.sh), LUKS included.
. "$TOP/tests/lib/corpus.sh"
if corpus_build "$T/corpus" 2>"$T/corpus.err"; then
	pushd "$T/corpus" >/dev/null || finish
	while read -r img kind; do
		args=()
		[ "$kind" = luks ] && mapfile -t args < <(corpus_luks_opts "$img")
		same_as_qemu "corpus $img" "$img" "${args[@]}"
		# Healthy images: nothing beyond qemu-img, but a dirty
		# image's note.
		want='[]'; [ "$img" = dirty.qcow2 ] && want='["image"]'
		assert_eq "corpus $img: no finding beyond qemu-img's" "$want" \
			"$("$Q2E" check --output=json "$img" 2>/dev/null |
			   jq -c '[.findings[].type] | unique')"
	done <corpus.list
	# LUKS without its encryption header extension, or with one of the
	# wrong length: QEMU will not open either.
	cx=$("$Q2E" info --output=json luks.qcow2 |
	     jq '.extensions[] | select(.magic == "0x0537be77") | .offset')
	luksoff=$(u64 luks.qcow2 $((cx + 8)))
	for what in "magic $cx 4 1" "length $((cx + 4)) 4 24" \
		    "offset $((cx + 8)) 8 $((luksoff + 512))" "crypt_method 32 4 0"; do
		set -- $what
		cp luks.qcow2 luksdmg.qcow2
		put luksdmg.qcow2 "$2" "$3" "$4"
		mapfile -t args < <(corpus_luks_opts luksdmg.qcow2)
		same_as_qemu "LUKS, crypto extension $1 damaged" luksdmg.qcow2 "${args[@]}"
		assert_status "LUKS, crypto extension $1 damaged: exits 1" 1 \
			"$Q2E" check luksdmg.qcow2
	done
	popd >/dev/null || finish
else
	fail "corpus built" "$(cat "$T/corpus.err")"
fi

# -p: progress on stderr, nothing more on stdout.
"$Q2E" check -p "$T/prealloc.qcow2" >"$T/p.out" 2>"$T/p.err"
assert_match "-p: progress on stderr" "100\.00/100%" "$(cat "$T/p.err")"
assert_eq "-p: stdout unchanged" "$("$Q2E" check "$T/prealloc.qcow2")" "$(cat "$T/p.out")"
assert_status "usage: no IMAGE" 1 "$Q2E" check
assert_status "check --help" 0 "$Q2E" check --help
# --- counts past the counters' byte and its 16-bit tier -----------------
# One L2 table whose first N entries all map the same data cluster (and,
# shared by S snapshots, N * (S + 1) references to it): counts on each side
# of 63, 255 and 65,535, under 16-bit refcounts (which overflow past
# 65,535) and 32-bit ones.  qemu-img check says what they say.
same_cluster() {	# IMAGE N SNAPSHOTS
	python3 - "$@" <<'PY'
import struct, sys
path, n, snaps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    hdr = bytearray(f.read(112))
    cl = 1 << struct.unpack_from(">I", hdr, 20)[0]
    l1_size, l1_off = struct.unpack_from(">IQ", hdr, 36)
    f.seek(l1_off)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2)
    e = f.read(8)
    f.seek(l2)
    f.write(e * n)
    f.seek(0, 2)
    end = (f.tell() + cl - 1) // cl * cl
    table = bytearray()
    for i in range(snaps):
        sid, name = str(i + 1).encode(), b"s%d" % i
        t = struct.pack(">QIHHIIQII", l1_off, l1_size, len(sid), len(name),
                        0, 0, 0, 0, 16)
        t += struct.pack(">QQ", 0, struct.unpack_from(">Q", hdr, 24)[0])
        t += sid + name
        table += t + b"\0" * (-len(t) % 8)
    if snaps:
        f.seek(end)
        f.write(table)
        struct.pack_into(">IQ", hdr, 60, snaps, end)
        f.seek(0)
        f.write(hdr)
PY
}
for c in "16 62 0" "16 63 0" "16 64 0" "16 255 0" "16 256 0" "16 300 2" \
	 "16 8192 7" "16 8192 8" "64 4096 20" "32 8192 8"; do
	set -- $c
	mk -o refcount_bits=$1 "$T/same.qcow2" 64M
	qemu-io -c 'write -P 7 0 64k' -c 'write -P 8 64k 64k' "$T/same.qcow2" >/dev/null
	same_cluster "$T/same.qcow2" "$2" "$3"
	same_as_qemu "$1-bit refcounts, $2 entries mapping one cluster, $3 snapshots" \
		"$T/same.qcow2"
done
assert_match "one cluster with 73,728 references: its count, exact" \
	"reference=73728" "$(cat "$T/o.terr")"

# The L2 table of L1 entry 0 named again by entry 2, and reserved bits in
# entry 0 of it and of entry 1's table: qemu-img's three lines come in L1
# order.  Merging alike lines across tables put entry 2's copy before
# entry 1's line (found by review of 45edf90).
f=$T/order.qcow2
qemu-img create -q -f qcow2 "$f" 2G
for o in 0 512M 1G; do qemu-io -c "write -P 1 $o 64k" "$f" >/dev/null; done
ol1=$(hdr "$f" l1_table_offset)
e0=$(u64 "$f" "$ol1") e1=$(u64 "$f" $((ol1 + 8)))
put "$f" $((ol1 + 16)) 8 "$e0"
for t in $((e0 & 0x00fffffffffffe00)) $((e1 & 0x00fffffffffffe00)); do
	put "$f" "$t" 8 $(($(u64 "$f" "$t") | 2))
done
same_as_qemu "one L2 table in two L1 entries, a bad entry in two tables" "$f"
assert_eq "and qemu-img's lines are three, in L1 order" 3 \
	"$(grep -c 'reserved bits set' "$T/o.terr")"

# A walk whose lines repeat an earlier walk's is kept as one record
# (tests/lib/echo_cases.py says how each of these once came out wrong).
for c in copied-merge snap-group snap-partial; do
	python3 "$TOP/tests/lib/echo_cases.py" "$c" "$T/$c.qcow2"
	same_as_qemu "lines of a walk again, $c" "$T/$c.qcow2"
done

# A missing backing file of a format check does not read (vmdk) fails
# qemu-img's open all the same: exit 1, with its reason as qemu-img words
# it.
mkdir -p "$T/vmdk" && cd "$T/vmdk" || finish
qemu-img create -q -f vmdk base.vmdk 1M
qemu-img create -q -f qcow2 -F vmdk -b base.vmdk top.qcow2
assert_status "a vmdk backing file that is there: check exits 0" 0 "$Q2E" check top.qcow2
rm base.vmdk
assert_status "a vmdk backing file gone: check exits 1, as qemu-img check" \
	"$(qemu-img check top.qcow2 >/dev/null 2>&1; echo $?)" "$Q2E" check top.qcow2
assert_match "...saying what qemu-img says" \
	"could not open 'top.qcow2': could not open backing file: 'base.vmdk': cannot open: No such file" \
	"$(cat "$T_TMP/.err")"
assert_status "map of an image whose backing file is gone fails" 1 "$Q2E" map top.qcow2
assert_match "...naming the image and its backing file" \
	"^qcow2elf: 'top.qcow2': backing_file: could not open backing file: 'base.vmdk'" \
	"$(cat "$T_TMP/.err")"
cd "$T_TMP" || finish

# A bitmap table past what the block layer reads (2^63 - 2^30 on): QEMU
# fails its open for a bitmap it loads, and qemu-img check for one in use,
# which the check reads all the same.  Both exit 1.
mkdir -p "$T/bmfar" && cd "$T/bmfar" || finish
qemu-img create -q -f qcow2 bm.qcow2 16M && qemu-img bitmap --add bm.qcow2 b0
ent=$("$Q2E" info --output=json bm.qcow2 | jq '.bitmaps[0]."entry-offset"')
for flags in 2 3; do
	cp bm.qcow2 "t$flags.qcow2"
	put64 "t$flags.qcow2" "$ent" $((0x7fffffffc0000000))
	put32 "t$flags.qcow2" $((ent + 12)) "$flags"
	assert_status "a bitmap table QEMU cannot read (flags $flags): check exits as qemu-img check" \
		"$(qemu-img check "t$flags.qcow2" >/dev/null 2>&1; echo $?)" "$Q2E" check "t$flags.qcow2"
done
# With the bitmaps autoclear bit clear QEMU ignores the bitmaps: their
# tables are not read, and the check goes on (the leaks it finds).
cp t2.qcow2 ignored.qcow2
put64 ignored.qcow2 88 0
assert_status "a bitmap table out of reach, the bitmaps ignored: check exits as qemu-img check" \
	"$(qemu-img check ignored.qcow2 >/dev/null 2>&1; echo $?)" "$Q2E" check ignored.qcow2
assert_eq "...and info says QEMU opens the image only where the bitmap is in use" \
	"false true" \
	"$("$Q2E" info --output=json t2.qcow2 | jq '."qemu-opens"') $("$Q2E" info --output=json t3.qcow2 | jq '."qemu-opens"')"
# What qemu-img says as it opens such an image, before its own output:
# QEMU's warning and its line on leaks (which qemu-img ends with no
# newline, so that the first per-cluster line follows on it).
open_warning() {
	local cmd want
	qemu-img check ignored.qcow2 >/dev/null 2>q.err
	want=$(sed 's/^qemu-img: warning: /warning: /; s/to fix\.Leaked/to fix.\nLeaked/' q.err)
	"$Q2E" check ignored.qcow2 >/dev/null 2>o.err
	assert_eq "bitmaps ignored: check's standard error is qemu-img check's" \
		"$want" "$(sed "s/^qcow2elf: warning: 'ignored.qcow2': /warning: /" o.err)"
	for cmd in info map; do
		qemu-img $cmd ignored.qcow2 2>&1 >/dev/null |
			sed 's/^qemu-img: warning: /warning: /' >q.err
		echo >>q.err
		"$Q2E" $cmd ignored.qcow2 2>&1 >/dev/null |
			sed "s/^qcow2elf: warning: 'ignored.qcow2': /warning: /" >o.err
		assert_same_file "bitmaps ignored: $cmd says what qemu-img $cmd says on opening it" \
			q.err o.err
	done
	# And of a backing file, as qemu-img opens it for check, map and
	# info --backing-chain.
	qemu-img create -q -f qcow2 -b ignored.qcow2 -F qcow2 over-ignored.qcow2 2>/dev/null
	for cmd in check map "info --backing-chain"; do
		qemu-img $cmd over-ignored.qcow2 2>&1 >/dev/null |
			sed 's/^qemu-img: warning: /warning: /; s/to fix\.Leaked/to fix.\nLeaked/' >q.err
		echo >>q.err
		"$Q2E" $cmd over-ignored.qcow2 2>&1 >/dev/null |
			sed "s/^qcow2elf: warning: 'ignored.qcow2': /warning: /" >o.err
		assert_same_file "its backing file's bitmaps ignored: $cmd says what qemu-img $cmd says" \
			q.err o.err
	done
}
t_case "what qemu-img says as it opens an image whose bitmaps are ignored" open_warning

# Bit 0 of an L2 entry, the zero flag of version 3, is reserved in a
# version 2 image and with extended L2 entries, and qemu-img check passes
# it. In a version 2 image QEMU fails to read such a cluster (EIO) and
# marks the image corrupt: a finding, beyond qemu-img's counts.
reserved_bit0() {
	local img l2 st
	for img in v2bit0 extbit0; do
		case $img in
		v2bit0) mk -o compat=0.10 $img.qcow2 16M ;;
		extbit0) mk -o extended_l2=on $img.qcow2 16M ;;
		esac
		qemu-io -c 'write 0 64k' $img.qcow2 >/dev/null
		l2=$(($(get64 $img.qcow2 $(($(get64 $img.qcow2 40)))) & 0x00fffffffffffe00))
		if [ $img = v2bit0 ]; then	# an allocated entry, and an empty one
			put64 $img.qcow2 $l2 $(($(get64 $img.qcow2 $l2) | 1))
			put64 $img.qcow2 $((l2 + 8 * 5)) 1
		else
			put64 $img.qcow2 $((l2 + 16 * 5)) 1
		fi
		qemu-img check $img.qcow2 >q.out 2>&1
		st=$?
		"$Q2E" check $img.qcow2 >o.out 2>&1
		assert_eq "$img: check exits as qemu-img check ($st)" "$st" "$?"
		assert_eq "$img: with qemu-img check's report" "$(cat q.out)" \
			"$(sed '/^[0-9]* findings* beyond qemu-img/,$d' o.out | sed '$d')"
	done
	assert_match "version 2: the zero flag of both entries is a finding" \
		"^error reserved-bits: l2_table_0\[0\] to \[5\]: 2 entries, the first: entry 0x8[0-9a-f]{14}1 has the zero flag \(bit 0\), which a version 2 image does not have: QEMU fails to read the cluster and marks the image corrupt$" \
		"$("$Q2E" check v2bit0.qcow2 2>&1)"
	assert_match "...as QEMU fails to read it" "Input/output error" \
		"$(qemu-io -r -c 'read 0 4k' v2bit0.qcow2 2>&1)"
	assert_match "extended L2: bit 0 is a finding" \
		"reserved-bits: l2_table_0\[5\]: entry 0x0000000000000001 has bit 0 set, which is reserved with extended L2 entries" \
		"$("$Q2E" check extbit0.qcow2 2>&1)"
}
t_case "bit 0 of an L2 entry where it is reserved" reserved_bit0
cd "$T_TMP" || finish

finish
