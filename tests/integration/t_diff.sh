#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `diff`: pairs of images made with qemu-img and qemu-io, one change each;
# the diff must name exactly that change, and exit as cmp does.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io jq

case $Q2E in
*/*) [ "${Q2E#/}" != "$Q2E" ] || Q2E=$PWD/$Q2E ;;
esac
cd "$T_TMP" || finish

# One line per change the JSON lists.  Refcounts only by direction: which
# host clusters qemu picks is its business, that they rose or fell is not.
cat >summary.jq <<'JQ'
def items(s): .[s] | to_entries[] | .key as $c | .value[] |
	"\(s).\($c) \(.name)" +
	(if .changes then " " + (.changes | keys_unsorted | join(",")) else "" end) +
	(if .["data-clusters-changed"] then " data:\(.["data-clusters-changed"])" else "" end);
(.file | keys_unsorted[] | "file.\(.)"),
(.header | keys_unsorted[] | "header.\(.)"),
items("extensions"), items("snapshots"), items("bitmaps"),
(.tables | to_entries[] | .key as $c | .value[] | "tables.\($c) \(.name)"),
(.l1[] | "l1 \(.index)"),
(.l2 | to_entries[] | .key as $c | .value.ranges[] | "l2.\($c) \(.start)+\(.length)"),
(.refcounts | to_entries[] | select(.value.clusters > 0) | "refcounts.\(.key)")
JQ

# changes OLD NEW: the summary, then "exit N".
changes() {
	"$Q2E" diff --output=json "$1" "$2" >diff.json 2>diff.err
	local rc=$?
	jq -r -f summary.jq diff.json
	echo "exit $rc"
}

# assert_changes DESCRIPTION OLD NEW EXPECTED-LINES...
assert_changes() {
	local desc=$1 a=$2 b=$3
	shift 3
	assert_eq "$desc" "$(printf '%s\n' "$@")" "$(changes "$a" "$b")"
}

K=65536
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -c 'write -P 1 0 128k' base.qcow2 >/dev/null

# Identical copies, and an image against its own dump.
cp base.qcow2 copy.qcow2
assert_status "identical copies: exit 0" 0 "$Q2E" diff base.qcow2 copy.qcow2
assert_match "and say so" "same-metadata +true" "$(cat "$T_TMP/.out")"
assert_match "with no difference" "differences +0" "$(cat "$T_TMP/.out")"
"$Q2E" dump base.qcow2 -o base.elf
assert_status "an image and its own dump: exit 0" 0 "$Q2E" diff base.qcow2 base.elf
assert_status "a dump and its image: exit 0" 0 "$Q2E" diff base.elf base.qcow2
assert_eq "JSON says same-metadata" "true 0" "$("$Q2E" diff --output=json base.elf base.qcow2 | jq -r '"\(."same-metadata") \(.differences)"')"

# Writes to new clusters: one L2 entry allocated, the file grows.
cp base.qcow2 new.qcow2
qemu-io -c 'write -P 2 1M 64k' new.qcow2 >/dev/null
assert_changes "a write to a new cluster" base.qcow2 new.qcow2 \
	file.file-size "l2.allocated $((1 << 20))+$K" refcounts.rose "exit 1"

# Writes to existing clusters change no metadata...
cp base.qcow2 over.qcow2
qemu-io -c 'write -P 3 0 64k' over.qcow2 >/dev/null
assert_changes "a write to an allocated cluster changes no metadata" base.qcow2 over.qcow2 "exit 0"
# ...unless a snapshot shares them: copy on write of the L2 table and data.
cp base.qcow2 snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
cp snap.qcow2 cow.qcow2
qemu-io -c 'write -P 3 0 64k' cow.qcow2 >/dev/null
assert_changes "a write to a cluster shared with a snapshot" snap.qcow2 cow.qcow2 \
	file.file-size "tables.moved l2_table_0" "l1 0" "l2.remapped 0+$K" \
	refcounts.rose refcounts.fell "exit 1"
assert_match "the moved table is named with both offsets" \
	'^l2_table_0 [0-9]+ [0-9]+$' "$(jq -r '.tables.moved[] | "\(.name) \(."old-offset") \(."new-offset")"' diff.json)"
"$Q2E" diff snap.qcow2 cow.qcow2 >human.out
assert_match "human output says l2_table_0 moved" "moved:" "$(cat human.out)"
assert_match "with its name" "name +l2_table_0" "$(cat human.out)"

# Zero writes keep the cluster; discards give it back.
cp base.qcow2 zero.qcow2
qemu-io -c 'write -z 0 64k' zero.qcow2 >/dev/null
assert_changes "a zero write" base.qcow2 zero.qcow2 "l2.zeroed 0+$K" "exit 1"
cp base.qcow2 discard.qcow2
qemu-io -c "discard $K $K" discard.qcow2 >/dev/null
assert_changes "a discard" base.qcow2 discard.qcow2 "l2.freed $K+$K" refcounts.fell "exit 1"

# A snapshot taken, then deleted.
assert_changes "a snapshot taken" base.qcow2 snap.qcow2 \
	file.file-size header.nb_snapshots header.snapshots_offset \
	"snapshots.added s1" "tables.appeared snapshot_0_l1_table" \
	"tables.appeared snapshot_table" "tables.appeared snapshot_0_l2_table_0" \
	"l1 0" "l2.copied-flipped 0+$((2 * K))" refcounts.rose "exit 1"
assert_eq "the added snapshot has its ID" "1" "$(jq -r '.snapshots.added[0].id' diff.json)"
cp snap.qcow2 unsnap.qcow2
qemu-img snapshot -d s1 unsnap.qcow2
assert_changes "a snapshot deleted" snap.qcow2 unsnap.qcow2 \
	header.nb_snapshots header.snapshots_offset \
	"snapshots.removed s1" "tables.disappeared snapshot_0_l1_table" \
	"tables.disappeared snapshot_table" "tables.disappeared snapshot_0_l2_table_0" \
	"l1 0" "l2.copied-flipped 0+$((2 * K))" refcounts.fell "exit 1"

# A bitmap added, dirtied by a write, and cleared.
cp base.qcow2 bm.qcow2
qemu-img bitmap --add bm.qcow2 b0
assert_changes "a bitmap added" base.qcow2 bm.qcow2 \
	file.file-size header.autoclear_features "extensions.added bitmaps" \
	"bitmaps.added b0" "tables.appeared bitmap_directory" \
	"tables.appeared bitmap_0_table" refcounts.rose "exit 1"
cp bm.qcow2 bmw.qcow2
qemu-io -c 'write -P 5 8M 64k' bmw.qcow2 >/dev/null
assert_changes "a write that dirties the bitmap" bm.qcow2 bmw.qcow2 \
	file.file-size "extensions.changed bitmaps data" \
	"bitmaps.changed b0 table-offset data:1" "tables.appeared bitmap_0_data_0" \
	"tables.moved bitmap_directory" "tables.moved bitmap_0_table" \
	"l2.allocated $((8 << 20))+$K" refcounts.rose refcounts.fell "exit 1"
cp bmw.qcow2 bmc.qcow2
qemu-img bitmap --clear bmc.qcow2 b0
assert_changes "a bitmap cleared" bmw.qcow2 bmc.qcow2 \
	"extensions.changed bitmaps data" "bitmaps.changed b0 table-offset data:1" \
	"tables.disappeared bitmap_0_data_0" "tables.moved bitmap_directory" \
	"tables.moved bitmap_0_table" refcounts.rose refcounts.fell "exit 1"
# The same bitmap, marked in use by hand (bit 0 of the entry's flags).
cp bm.qcow2 inuse.qcow2
dir=$(jq '.bitmaps[0]."entry-offset"' <("$Q2E" info --output=json inuse.qcow2))
printf '\001' | dd of=inuse.qcow2 bs=1 seek=$((dir + 15)) conv=notrunc status=none
assert_changes "a bitmap marked in use" bm.qcow2 inuse.qcow2 \
	"bitmaps.changed b0 in-use,flags" "exit 1"

# A compressed rewrite.
qemu-img convert -c -O qcow2 base.qcow2 comp.qcow2
assert_changes "a compressed rewrite" base.qcow2 comp.qcow2 \
	file.file-size "l2.compressed 0+$((2 * K))" refcounts.rose refcounts.fell "exit 1"

# Dumps diff like their images, in any mix.
"$Q2E" dump snap.qcow2 -o snap.elf 2>/dev/null	# warns: qemu leaves the table's last padding unwritten
"$Q2E" dump cow.qcow2 -o cow.elf
"$Q2E" diff --output=json snap.qcow2 cow.qcow2 | jq 'del(.old, .new)' >a.json
for pair in "snap.elf cow.elf" "snap.qcow2 cow.elf" "snap.elf cow.qcow2"; do
	"$Q2E" diff --output=json $pair | jq 'del(.old, .new)' >b.json
	assert_same_file "diff $pair says what the images' diff says" a.json b.json
done

# Human output: the first five ranges of a kind, all with --verbose.
cp base.qcow2 many.qcow2
args=()
for i in 0 2 4 6 8 10 12 14; do args+=(-c "write -P 7 $((4 + i))M 64k"); done
qemu-io "${args[@]}" many.qcow2 >/dev/null
"$Q2E" diff base.qcow2 many.qcow2 >short.out
assert_eq "human output lists 5 of 8 ranges" "5" "$(sed -n '/^l2:/,/^refcounts:/p' short.out | grep -c '^ *start ')"
assert_match "and says how many more" "more +3" "$(cat short.out)"
assert_match "and counts the clusters" "clusters +8" "$(cat short.out)"
"$Q2E" diff --verbose base.qcow2 many.qcow2 >long.out
assert_eq "--verbose lists all 8" "8" "$(sed -n '/^l2:/,/^refcounts:/p' long.out | grep -c '^ *start ')"
assert_eq "JSON lists all 8" "8" "$("$Q2E" diff --output=json base.qcow2 many.qcow2 | jq '.l2.allocated.ranges | length')"

# Errors exit 2, as with cmp.
assert_status "a missing file: exit 2" 2 "$Q2E" diff base.qcow2 missing.qcow2
assert_match "naming it" "missing.qcow2" "$(cat "$T_TMP/.err")"
printf 'not an image' >bad.img
assert_status "a file that is not QCOW2: exit 2" 2 "$Q2E" diff bad.img base.qcow2
"$Q2E" dump --no-data base.qcow2 -o nodata.elf
assert_status "a --no-data dump: exit 2" 2 "$Q2E" diff base.qcow2 nodata.elf
assert_status "one input only: exit 2" 2 "$Q2E" diff base.qcow2
assert_status "a bad --output: exit 2" 2 "$Q2E" diff --output=xml base.qcow2 copy.qcow2
assert_status "--help: exit 0" 0 "$Q2E" diff --help
finish
