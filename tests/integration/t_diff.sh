#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `diff`: pairs of images made with qemu-img and qemu-io, one change each;
# the diff must name exactly that change by the dump's symbols and entry
# indexes, with its old and new values, and exit as cmp does.  The values
# are what Debian's qemu-utils 7.2 writes; host offsets are checked against
# `qemu-img map`.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io jq gdb
. "$TOP/tests/lib/patch.sh"

cd "$T_TMP" || finish

# One line per named change, then the tables that appeared or moved.
cat >summary.jq <<'JQ'
(.changes | to_entries[] | .key as $g | .value[] |
	"\($g) \(.name) \(.change)" + (if .old then " \(.old)" else "" end) +
	(if .new then " -> \(.new)" else "" end)),
(.tables | to_entries[] | .key as $c | .value[] | "tables.\($c) \(.name)")
JQ

# changes OLD NEW: the summary, then "exit N"; every JSON integer must be
# one jq reads back exactly (below 2^53).
changes() {
	"$Q2E" diff --output=json "$1" "$2" >diff.json 2>diff.err
	local rc=$?
	jq -r -f summary.jq diff.json
	jq -e '[.. | numbers | select(. > 9007199254740992)] | length == 0' diff.json >/dev/null ||
		echo "a JSON integer above 2^53"
	echo "exit $rc"
}

# assert_changes DESCRIPTION OLD NEW EXPECTED-LINES...
assert_changes() {
	local desc=$1 a=$2 b=$3
	shift 3
	assert_eq "$desc" "$(printf '%s\n' "$@")" "$(changes "$a" "$b")"
}

# host_of IMAGE GUEST-OFFSET: where qemu-img map says the guest byte lives.
host_of() {
	printf '0x%x' "$(qemu-img map --output=json "$1" |
		jq --argjson g "$2" '.[] | select(.start <= $g and $g < .start + .length) | .offset + ($g - .start)')"
}

K=65536
qemu-img create -q -f qcow2 base.qcow2 1G
qemu-io -c 'write -P 1 0 128k' base.qcow2 >/dev/null

# Identical copies, and an image against its own dump.
cp base.qcow2 copy.qcow2
assert_status "identical copies: exit 0" 0 "$Q2E" diff base.qcow2 copy.qcow2
assert_match "and say so" "same-metadata +true" "$(cat "$T_TMP/.out")"
"$Q2E" dump base.qcow2 -o base.elf
assert_status "an image and its own dump: exit 0" 0 "$Q2E" diff base.qcow2 base.elf
assert_eq "JSON says same-metadata" "true 0" "$("$Q2E" diff --output=json base.elf base.qcow2 | jq -r '"\(."same-metadata") \(.differences)"')"

# A write to new clusters, as in the issue: two L2 entries and two refcounts.
cp base.qcow2 new.qcow2
qemu-io -c 'write 150M 128k' new.qcow2 >/dev/null
h=$(host_of new.qcow2 $((150 << 20)))
assert_eq "qemu put the write at 0x70000" 0x70000 "$h"
assert_changes "a write to new clusters" base.qcow2 new.qcow2 \
	"file file.size changed 0x70000 -> 0x90000" \
	"l2 l2_table_0[2400..2401] allocated 0x0 -> 0x8000000000070000" \
	"refcount-blocks refcount_block_0[7..8] rose 0 -> 1" "exit 1"
assert_eq "the L2 change, decoded" \
	"l2_table_0 2400 2 unallocated data at 0x70000, COPIED 0x9600000 0x20000" \
	"$(jq -r '.changes.l2[0] | "\(.symbol) \(.index) \(.count) \(."old-meaning") \(."new-meaning") \(."guest-start") \(."guest-length")"' diff.json)"
assert_eq "the guest range view of the same change" "allocated 0x9600000+0x20000" \
	"$(jq -r '."guest-ranges" | to_entries[] | select(.value.clusters > 0) | "\(.key) \(.value.ranges[0].start)+\(.value.ranges[0].length)"' diff.json)"
assert_eq "the host range view" "refcount-rose 0x70000+0x20000" \
	"$(jq -r '."host-ranges" | to_entries[] | select(.value.clusters > 0) | "\(.key) \(.value.ranges[0].start)+\(.value.ranges[0].length)"' diff.json)"
"$Q2E" dump new.qcow2 -o new.elf
if command -v gdb >/dev/null; then
	assert_match "gdb shows the new value by the diff's name" "raw = 9223372036855234560" \
		"$(gdb -batch -ex 'p l2_table_0[2400].entry' new.elf 2>&1 || gdb -batch -ex 'p l2_table_0[2400]' new.elf 2>&1)"
fi

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
	"file file.size changed 0x80043 -> 0xb0000" \
	"l1 l1_table[0] moved-table 0x40000 -> 0x8000000000090000" \
	"l2 l2_table_0[0] remapped 0x50000 -> 0x80000000000a0000" \
	"refcount-blocks refcount_block_0[4..5] fell 2 -> 1" \
	"refcount-blocks refcount_block_0[9..10] rose 0 -> 1" \
	"tables.moved l2_table_0" "exit 1"
assert_eq "the moved table, with both offsets" "l2_table_0 0x40000 0x90000" \
	"$(jq -r '.tables.moved[] | "\(.name) \(."old-offset") \(."new-offset")"' diff.json)"

# Zero writes with and without a host cluster; a discard.
cp base.qcow2 zero.qcow2
qemu-io -c 'write -z 0 64k' -c 'write -z 1M 64k' zero.qcow2 >/dev/null
assert_changes "zero writes" base.qcow2 zero.qcow2 \
	"l2 l2_table_0[0] zeroed 0x8000000000050000 -> 0x8000000000050001" \
	"l2 l2_table_0[16] zeroed 0x0 -> 0x1" "exit 1"
assert_eq "decoded" "data at 0x50000, COPIED -> zero, host cluster 0x50000, COPIED" \
	"$(jq -r '.changes.l2[0] | "\(."old-meaning") -> \(."new-meaning")"' diff.json)"
cp base.qcow2 discard.qcow2
qemu-io -c "discard $K $K" discard.qcow2 >/dev/null
assert_changes "a discard frees the host cluster" base.qcow2 discard.qcow2 \
	"l2 l2_table_0[1] freed 0x8000000000060000 -> 0x1" \
	"refcount-blocks refcount_block_0[6] fell 1 -> 0" "exit 1"
# The same of a compressed cluster: its host bytes are freed too.
qemu-img convert -c -O qcow2 base.qcow2 comp.qcow2
cp comp.qcow2 comp-discard.qcow2
qemu-io -c "write -z -u 0 $K" comp-discard.qcow2 >/dev/null
assert_eq "a discard of a compressed cluster frees it" "freed" \
	"$("$Q2E" diff --output=json comp.qcow2 comp-discard.qcow2 |
	   jq -r '[.changes.l2[].change] | unique | join(" ")')"

# A compat=0.10 amend of an image with zero clusters: the plain zero
# cluster had no host cluster, so nothing is freed.
cp zero.qcow2 v2.qcow2
qemu-img amend -o compat=0.10 v2.qcow2
assert_changes "a compat=0.10 amend" zero.qcow2 v2.qcow2 \
	"header qcow2_header.version changed 3 -> 2" \
	"header qcow2_header.header_length changed 112 -> 72" \
	"extensions ext_feature_table removed incompatible bit 0: dirty bit; incompatible bit 1: corrupt bit; incompatible bit 2: external data file; incompatible bit 3: compression type; incompatible bit 4: extended L2 entries; compatible bit 0: lazy refcounts; autoclear bit 0: bitmaps; autoclear bit 1: raw external data" \
	"l2 l2_table_0[0] zero-cleared 0x8000000000050001 -> 0x8000000000050000" \
	"l2 l2_table_0[16] zero-cleared 0x1 -> 0x0" "exit 1"

# A snapshot taken, reverted to, and deleted.  Its L1 table appears and
# disappears; its L2 table, the active L1's too, does neither (its
# refcount rises and falls).
assert_changes "a snapshot taken" base.qcow2 snap.qcow2 \
	"file file.size changed 0x70000 -> 0x80043" \
	"header qcow2_header.nb_snapshots changed 0 -> 1" \
	"header qcow2_header.snapshots_offset changed 0x0 -> 0x80000" \
	"snapshots snapshot_0 added -> s1" \
	"l1 l1_table[0] copied-flipped 0x8000000000040000 -> 0x40000" \
	"l2 l2_table_0[0..1] copied-flipped 0x8000000000050000 -> 0x50000" \
	"refcount-blocks refcount_block_0[4..6] rose 1 -> 2" \
	"refcount-blocks refcount_block_0[7..8] rose 0 -> 1" \
	"tables.appeared snapshot_0_l1_table" "tables.appeared snapshot_table" \
	"exit 1"
assert_eq "the added snapshot has its ID" "id 1" "$(jq -r '.changes.snapshots[0]."new-meaning"' diff.json)"
cp cow.qcow2 revert.qcow2
qemu-img snapshot -a s1 revert.qcow2
assert_changes "a snapshot reverted to" cow.qcow2 revert.qcow2 \
	"l1 l1_table[0] moved-table 0x8000000000090000 -> 0x40000" \
	"l2 l2_table_0[0] remapped 0x80000000000a0000 -> 0x50000" \
	"refcount-blocks refcount_block_0[4..5] rose 1 -> 2" \
	"refcount-blocks refcount_block_0[9..10] fell 1 -> 0" \
	"tables.moved l2_table_0" "exit 1"
cp snap.qcow2 unsnap.qcow2
qemu-img snapshot -d s1 unsnap.qcow2
assert_changes "a snapshot deleted" snap.qcow2 unsnap.qcow2 \
	"header qcow2_header.nb_snapshots changed 1 -> 0" \
	"header qcow2_header.snapshots_offset changed 0x80000 -> 0x0" \
	"snapshots snapshot_0 removed s1" \
	"l1 l1_table[0] copied-flipped 0x40000 -> 0x8000000000040000" \
	"l2 l2_table_0[0..1] copied-flipped 0x50000 -> 0x8000000000050000" \
	"refcount-blocks refcount_block_0[4..6] fell 2 -> 1" \
	"refcount-blocks refcount_block_0[7..8] fell 1 -> 0" \
	"tables.disappeared snapshot_0_l1_table" "tables.disappeared snapshot_table" \
	"exit 1"

# A snapshot's own L2 table freed with it, and the cluster reused for a
# new active L2 table: one disappeared and one appeared, though a table
# of that kind, offset and size is in both images.
qemu-img create -q -f qcow2 reuse.qcow2 1G
qemu-io -c 'write 0 64k' reuse.qcow2 >/dev/null
qemu-img snapshot -c s1 reuse.qcow2
qemu-io -c 'write 0 64k' reuse.qcow2 >/dev/null
cp reuse.qcow2 reuse0.qcow2
qemu-img snapshot -d s1 reuse.qcow2
qemu-io -c 'write 512M 64k' reuse.qcow2 >/dev/null
"$Q2E" diff --output=json reuse0.qcow2 reuse.qcow2 >reuse.json
assert_eq "a table freed and its cluster reused for another: both listed" \
	"appeared l2_table_1 0x40000|disappeared snapshot_0_l2_table_0 0x40000" \
	"$(jq -r '.tables | to_entries[] | .key as $k | .value[] |
		select(.name | test("l2_table")) | "\($k) \(.name) \(.offset)"' reuse.json | paste -sd'|')"

# Twenty snapshots name one L2 table the active L1 no longer names; with
# sixteen deleted, the four left name it still: only the deleted
# snapshots' L1 tables disappear, however far down the owners those four
# come.
qemu-img create -q -f qcow2 s20.qcow2 1G
qemu-io -c 'write 0 64k' s20.qcow2 >/dev/null
for n in $(seq 20); do qemu-img snapshot -c "S$n" s20.qcow2; done
qemu-io -c 'write 0 64k' s20.qcow2 >/dev/null
cp s20.qcow2 s4.qcow2
for n in $(seq 16); do qemu-img snapshot -d "S$n" s4.qcow2; done
"$Q2E" diff --output=json s20.qcow2 s4.qcow2 >s4.json
assert_eq "sixteen of twenty snapshots deleted: their L1 tables disappeared, no L2 table" \
	"16 0" "$(jq -r '[(.tables.disappeared // [] | map(select(.name | test("l1_table"))) | length),
		(.tables.disappeared // [] | map(select(.name | test("l2_table"))) | length)] | join(" ")' s4.json)"

# A snapshot deleted and another taken: both have ID 1, and the names
# tell them apart (paired by ID alone, the new one read as the old one
# with another date).
qemu-img create -q -f qcow2 sid0.qcow2 16M
qemu-io -c 'write -P 1 0 64k' sid0.qcow2 >/dev/null
qemu-img snapshot -c before sid0.qcow2
cp sid0.qcow2 sid1.qcow2
qemu-img snapshot -d before sid1.qcow2
qemu-img snapshot -c after sid1.qcow2
assert_eq "a snapshot deleted, another taken with its ID: one added, one removed" \
	"snapshot_0 added after id 1|snapshot_0 removed before id 1" \
	"$("$Q2E" diff --output=json sid0.qcow2 sid1.qcow2 |
	   jq -r '.changes.snapshots[] | "\(.name) \(.change) \(.new // .old) \(."new-meaning" // ."old-meaning")"' |
	   paste -sd'|')"

# A bitmap added, written through, and cleared.
cp base.qcow2 bm.qcow2
qemu-img bitmap --add bm.qcow2 b0
assert_changes "a bitmap added" base.qcow2 bm.qcow2 \
	"file file.size changed 0x70000 -> 0x80020" \
	"header qcow2_header.autoclear_features changed 0x0 -> 0x1" \
	"extensions ext_bitmaps added -> nb_bitmaps 1, bitmap_directory_size 32, bitmap_directory_offset 0x80000" \
	"bitmaps bitmap_0 added -> b0" \
	"refcount-blocks refcount_block_0[7..8] rose 0 -> 1" \
	"tables.appeared bitmap_directory" "tables.appeared bitmap_0_table" "exit 1"
cp bm.qcow2 bmw.qcow2
qemu-io -c 'write -P 5 8M 64k' bmw.qcow2 >/dev/null
assert_changes "a write that dirties the bitmap" bm.qcow2 bmw.qcow2 \
	"file file.size changed 0x80020 -> 0xc0020" \
	"extensions ext_bitmaps.bitmap_directory_offset changed 0x80000 -> 0xc0000" \
	"bitmaps bitmap_0.bitmap_table_offset changed 0x70000 -> 0xb0000" \
	"bitmap-tables bitmap_0_table[0] allocated 0x0 -> 0xa0000" \
	"bitmap-data bitmap_0_data_0 bits-changed 0x0 -> 0xa0000" \
	"l2 l2_table_0[128] allocated 0x0 -> 0x8000000000090000" \
	"refcount-blocks refcount_block_0[7..8] fell 1 -> 0" \
	"refcount-blocks refcount_block_0[9..12] rose 0 -> 1" \
	"tables.appeared bitmap_0_data_0" "tables.moved bitmap_directory" \
	"tables.moved bitmap_0_table" "exit 1"
# The first data cluster is compared with the zeros its entry stood for:
# one bit (64 KiB granularity) set, at 8M.
assert_eq "the bitmap's first data: its bits against all zeros" \
	"all zeros -> data at 0xa0000: set 1 cleared 0 at 0x800000 0x10000" \
	"$(jq -r '.changes."bitmap-data"[] | "\(."old-meaning") -> \(."new-meaning"): set \(."bits-set") cleared \(."bits-cleared") at \(."guest-start") \(."guest-length")"' diff.json)"
cp bmw.qcow2 bmc.qcow2
qemu-img bitmap --clear bmc.qcow2 b0
assert_changes "a bitmap cleared" bmw.qcow2 bmc.qcow2 \
	"extensions ext_bitmaps.bitmap_directory_offset changed 0xc0000 -> 0x80000" \
	"bitmaps bitmap_0.bitmap_table_offset changed 0xb0000 -> 0x70000" \
	"bitmap-tables bitmap_0_table[0] freed 0xa0000 -> 0x0" \
	"bitmap-data bitmap_0_data_0 bits-changed 0xa0000 -> 0x0" \
	"refcount-blocks refcount_block_0[7..8] rose 0 -> 1" \
	"refcount-blocks refcount_block_0[10..12] fell 1 -> 0" \
	"tables.disappeared bitmap_0_data_0" "tables.moved bitmap_directory" \
	"tables.moved bitmap_0_table" "exit 1"

# Writes that dirty an existing bitmap data cluster: which bits became set
# and the guest bytes they span, from the writes and qemu-img info's
# granularity (the change said only that the cluster's bits differ).
cp bmw.qcow2 bmw2.qcow2
qemu-io -c 'write -P 6 30M 64k' -c 'write -P 7 50M 128k' bmw2.qcow2 >/dev/null
gran=$(qemu-img info --output=json bmw2.qcow2 | jq '."format-specific".data.bitmaps[0].granularity')
bits_of() {
	"$Q2E" diff --output=json "$1" "$2" >bits.json
	jq -r '.changes."bitmap-data"[] | "\(.name) \(.change) set \(."bits-set") cleared \(."bits-cleared") \(."guest-start") \(."guest-length")"' bits.json
}
assert_eq "bits-changed: the bits set and the guest range from the first to the last" \
	"bitmap_0_data_0 bits-changed set $((K / gran + 2 * K / gran)) cleared 0 $(printf '0x%x 0x%x' $((30 << 20)) $(((50 << 20) + 2 * K - (30 << 20))))" \
	"$(bits_of bmw.qcow2 bmw2.qcow2)"
# Two images from one: 8M and 30M dirty in one, 30M and 50M in the
# other: 8M's bit cleared, 50M's set.
cp bm.qcow2 bmx.qcow2
cp bm.qcow2 bmy.qcow2
qemu-io -c 'write -P 6 8M 64k' -c 'write -P 6 30M 64k' bmx.qcow2 >/dev/null
qemu-io -c 'write -P 6 30M 64k' -c 'write -P 6 50M 64k' bmy.qcow2 >/dev/null
assert_eq "bits-changed: bits cleared too" \
	"bitmap_0_data_0 bits-changed set $((K / gran)) cleared $((K / gran)) $(printf '0x%x 0x%x' $((8 << 20)) $(((50 << 20) + K - (8 << 20))))" \
	"$(bits_of bmx.qcow2 bmy.qcow2)"
# An "all ones" entry (QEMU reads them, never writes them) stands for
# ones up to the bitmap's end, and its data cluster holds zeros past it:
# a 16 MiB disk fully written has 256 bits set, as many as all ones.
qemu-img create -q -f qcow2 ones.qcow2 16M
qemu-img bitmap --add ones.qcow2 b0
qemu-io -c 'write 0 16M' ones.qcow2 >/dev/null
cp ones.qcow2 ones1.qcow2
python3 "$TOP/tests/lib/hostile.py" ones-bitmap ones1.qcow2
assert_eq "all ones against a data cluster of the same bits: no bits changed" "" \
	"$(bits_of ones.qcow2 ones1.qcow2)"
# Of two granularities, bit k is other guest bytes in each: no counts.
cp base.qcow2 g64.qcow2
cp base.qcow2 g128.qcow2
qemu-img bitmap --add -g 64k g64.qcow2 b0
qemu-img bitmap --add -g 128k g128.qcow2 b0
qemu-io -c 'write -P 6 0 64k' -c 'write -P 6 1M 64k' g64.qcow2 >/dev/null
qemu-io -c 'write -P 6 0 64k' -c 'write -P 6 1M 64k' g128.qcow2 >/dev/null
"$Q2E" diff --output=json g64.qcow2 g128.qcow2 >gran.json
assert_eq "two granularities: the granularity changed, the bits not counted" \
	"bitmap_0.granularity_bits 16 -> 17|bitmap_0_data_0 bits-changed null null null" \
	"$(jq -r '(.changes.bitmaps[] | select(.name | endswith("granularity_bits")) | "\(.name) \(.old) -> \(.new)"), (.changes."bitmap-data"[] | "\(.name) \(.change) \(."bits-set") \(."bits-cleared") \(."guest-start")")' gran.json | paste -sd'|')"

# refcount_bits changed by amend: the refcount structures are rewritten.
# A refcount table entry spans other host bytes in each (a block of 8-bit
# counts covers twice the clusters), so entries are not compared one by
# one: the block moved, and the refcounts, compared by host cluster, say
# what changed.
cp base.qcow2 rc8.qcow2
qemu-img amend -o refcount_bits=8 rc8.qcow2
assert_changes "refcount_bits=8 by amend" base.qcow2 rc8.qcow2 \
	"file file.size changed 0x70000 -> 0x90000" \
	"header qcow2_header.refcount_table_offset changed 0x10000 -> 0x80000" \
	"header qcow2_header.refcount_order changed 4 -> 3" \
	"refcount-blocks refcount_block_0[1..2] fell 1 -> 0" \
	"refcount-blocks refcount_block_0[7..8] rose 0 -> 1" \
	"tables.moved refcount_table" "tables.moved refcount_block_0" "exit 1"

# A compressed rewrite.
qemu-img convert -c -O qcow2 base.qcow2 comp.qcow2
assert_changes "a compressed rewrite" base.qcow2 comp.qcow2 \
	"file file.size changed 0x70000 -> 0x50200" \
	"l2 l2_table_0[0] compressed 0x8000000000050000 -> 0x4000000000050000" \
	"l2 l2_table_0[1] compressed 0x8000000000060000 -> 0x400000000005004f" \
	"refcount-blocks refcount_block_0[5] rose 1 -> 2" \
	"refcount-blocks refcount_block_0[6] fell 1 -> 0" "exit 1"
assert_eq "with its compressed range" "compressed at 0x5004f+0x1b1" \
	"$(jq -r '.changes.l2[1]."new-meaning"' diff.json)"

# An extended-L2 partial write: one subcluster allocated.
qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 64M
cp ext.qcow2 extw.qcow2
qemu-io -c 'write -P 6 4k 4k' extw.qcow2 >/dev/null
assert_changes "an extended-L2 partial write" ext.qcow2 extw.qcow2 \
	"file file.size changed 0x30008 -> 0x52000" \
	"l1 l1_table[0] allocated 0x0 -> 0x8000000000040000" \
	"l2 l2_table_0[0] allocated 0x0 -> 0x8000000000050000" \
	"refcount-blocks refcount_block_0[4..5] rose 0 -> 1" \
	"tables.appeared l2_table_0" "exit 1"
assert_eq "with its subcluster masks" "0x0 -> 0xc: data at 0x50000, COPIED, alloc 0x0000000c zero 0x00000000" \
	"$(jq -r '.changes.l2[0] | "\(."old-bitmap") -> \(."new-bitmap"): \(."new-meaning")"' diff.json)"

# A commit of an overlay into its base.
qemu-img create -q -f qcow2 cbase.qcow2 64M
qemu-io -c 'write -P 1 0 64k' cbase.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b cbase.qcow2 -F qcow2 over2.qcow2
qemu-io -c 'write -P 2 1M 64k' over2.qcow2 >/dev/null
cp cbase.qcow2 cbase0.qcow2
qemu-img commit -q over2.qcow2
assert_changes "an overlay committed into its base" cbase0.qcow2 cbase.qcow2 \
	"file file.size changed 0x60000 -> 0x70000" \
	"l2 l2_table_0[16] allocated 0x0 -> 0x8000000000060000" \
	"refcount-blocks refcount_block_0[6] rose 0 -> 1" "exit 1"

# Human output: a summary first, then the first five changes of a kind.
cp base.qcow2 many.qcow2
args=()
for i in 0 2 4 6 8 10 12 14; do args+=(-c "write -P 7 $((4 + i))M 64k"); done
qemu-io "${args[@]}" many.qcow2 >/dev/null
"$Q2E" diff base.qcow2 many.qcow2 >short.out
assert_eq "the summary comes first" "summary:" "$(sed -n 6p short.out)"
assert_match "and counts the entries" "l2 +8 entries in 1 structure" "$(cat short.out)"
assert_eq "human output lists 5 of 8 L2 changes" "5" "$(sed -n '/^  l2:/,/^  [a-z]/p' short.out | grep -c 'name .*l2_table_0')"
assert_match "and says how many more" "more +3" "$(cat short.out)"
assert_eq "the guest ranges too: 5 of 8, and 3 more" "5 3" \
	"$(sed -n '/^guest-ranges:/,/^host-ranges:/p' short.out |
	   awk '/^ +start / { n++ } /^ +more / { m = $2 } END { print n, m }')"
"$Q2E" diff --verbose base.qcow2 many.qcow2 >long.out
assert_eq "--verbose lists all 8" "8" "$(grep -c 'name .*l2_table_0\[' long.out)"
assert_eq "JSON lists all 8" "8" "$("$Q2E" diff --output=json base.qcow2 many.qcow2 | jq '.changes.l2 | length')"
assert_eq "no colour when not a terminal" "0" "$(grep -c $'\033' short.out)"
"$Q2E" diff --color=always base.qcow2 many.qcow2 >color.out
assert_match "--color=always: old in red" $'old +\033\\[31m0x0\033\\[m' "$(cat color.out)"
assert_match "new in green" $'new +\033\\[32m0x8' "$(cat color.out)"
assert_eq "--color=never" "0" "$("$Q2E" diff --color=never base.qcow2 many.qcow2 | grep -c $'\033')"
assert_eq "JSON is never coloured" "0" "$("$Q2E" diff --color=always --output=json base.qcow2 many.qcow2 | grep -c $'\033')"
assert_status "a bad --color: exit 2" 2 "$Q2E" diff --color=sometimes base.qcow2 many.qcow2

# Dumps diff like their images, in any mix.
"$Q2E" dump snap.qcow2 -o snap.elf 2>/dev/null	# warns: qemu leaves the table's last padding unwritten
"$Q2E" dump cow.qcow2 -o cow.elf
"$Q2E" diff --output=json snap.qcow2 cow.qcow2 | jq 'del(.old, .new)' >a.json
for pair in "snap.elf cow.elf" "snap.qcow2 cow.elf" "snap.elf cow.qcow2"; do
	"$Q2E" diff --output=json $pair | jq 'del(.old, .new)' >b.json
	assert_same_file "diff $pair says what the images' diff says" a.json b.json
done

# A damaged table may repeat an ID and name: the k-th snapshot with them
# pairs with the k-th, in table order.  repeat_ids IMAGE DATE...: every
# snapshot gets ID "1" and the next date_sec.
repeat_ids() {
	local img=$1 n=0 off extra
	shift
	for date in "$@"; do
		off=$("$Q2E" info --output=json "$img" | jq ".snapshots[$n].\"entry-offset\"")
		extra=$(get_be "$img" $((off + 36)) 4)
		put_be "$img" $((off + 16)) 4 "$date"
		put_be "$img" $((off + 40 + extra)) 1 0x31	# "1", 1 byte long
		n=$((n + 1))
	done
}
qemu-img create -q -f qcow2 rep-old.qcow2 64M
for i in 1 2 3; do qemu-img snapshot -c s rep-old.qcow2; done
cp rep-old.qcow2 rep-new.qcow2
qemu-img snapshot -c s rep-new.qcow2
repeat_ids rep-old.qcow2 10 20 30
repeat_ids rep-new.qcow2 10 21 30 40
assert_eq "repeated snapshot IDs and names pair by occurrence" \
	"snapshots snapshot_1.date_sec changed 20 -> 21
snapshots snapshot_3 added -> s" \
	"$(changes rep-old.qcow2 rep-new.qcow2 | grep '^snapshots ')"
assert_eq "and the other way round" \
	"snapshots snapshot_1.date_sec changed 21 -> 20
snapshots snapshot_3 removed s" \
	"$(changes rep-new.qcow2 rep-old.qcow2 | grep '^snapshots ')"

# Other cluster sizes: compared range by range, named by the new image's
# tables.  One 2 MiB-cluster table maps 512 GiB; stepping through it by the
# 512-byte unit was 2^31 steps for this pair (minutes; found by fuzz_image
# in CI).  Work and the changes listed follow the entries in the tables.
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 1G
qemu-img create -q -f qcow2 -o cluster_size=2M big.qcow2 2T
qemu-io -c 'write -P 1 0 64k' small.qcow2 >/dev/null
qemu-io -c 'write -P 3 0 4k' -c 'write -P 3 1536G 4k' big.qcow2 >/dev/null
raw_of() { printf '0x8%015x' "$(host_of "$1" "$2")"; }
l2_changes() {
	timeout 10 "$Q2E" diff --output=json "$1" "$2" >geo.json
	echo "exit $?"
	jq -r '.changes.l2[] | "\(.name) \(.change) \(.old) -> \(.new) \(."guest-start")+\(."guest-length")"' geo.json
}
far=$((1536 << 30))
assert_eq "512-byte against 2 MiB clusters" "exit 1
l2_table_0[0] remapped $(raw_of small.qcow2 0) -> $(raw_of big.qcow2 0) 0x0+0x10000
l2_table_0[0] allocated 0x0 -> $(raw_of big.qcow2 0) 0x10000+0x1f0000
l2_table_3[0] allocated 0x0 -> $(raw_of big.qcow2 $far) $(printf 0x%x $far)+0x200000" \
	"$(l2_changes small.qcow2 big.qcow2)"
l2_changes big.qcow2 small.qcow2 >geo.txt
assert_eq "the other way: 128 entries remapped, each L1 entry's worth freed at once" \
	"exit 1
254
l2_table_0[0] remapped $(raw_of big.qcow2 0) -> $(raw_of small.qcow2 0) 0x0+0x200
l2_table_1[63] remapped $(raw_of big.qcow2 0) -> $(raw_of small.qcow2 65024) 0xfe00+0x200
l2_table_2[0..63] freed $(raw_of big.qcow2 0) -> 0x0 0x10000+0x8000
l2_table_63[0..63] freed $(raw_of big.qcow2 0) -> 0x0 0x1f8000+0x8000
l2_table_50331648[0..63] freed $(raw_of big.qcow2 $far) -> 0x0 $(printf 0x%x $far)+0x8000" \
	"$(sed -n 1p geo.txt; echo $(($(wc -l <geo.txt) - 1)); sed -n '2p;129p;130p;191p;192p' geo.txt)"
assert_eq "counting every entry of the smaller clusters" \
	"8192 entries in 128 tables; 8064 clusters freed, 128 remapped" \
	"$(jq -r '"\(.summary.l2.entries) entries in \(.summary.l2.structures) tables; \(."guest-ranges".freed.clusters) clusters freed, \(."guest-ranges".remapped.clusters) remapped"' geo.json)"

# Between cluster sizes, entry i of the two L1 tables spans other guest
# bytes (32 KiB against 2 MiB here): l1_table[1] and [3] read "freed"
# where their guest ranges were still allocated, under l1_table[0] of the
# new image (found by a new user).  The L1 table is listed as resized, and
# the L2 entries, compared by guest range, are the changes.
qemu-img create -q -f qcow2 -o cluster_size=512 c512.qcow2 16M
qemu-io -c 'write -P 1 0 100k' -c 'write -z 1M 4k' -c 'write 5M 3k' c512.qcow2 >/dev/null
qemu-img convert -O qcow2 -o cluster_size=4k c512.qcow2 c4k.qcow2
"$Q2E" diff --output=json c512.qcow2 c4k.qcow2 >geo1.json
assert_eq "512-byte against 4 KiB clusters: no L1 entry compared, the table moved and resized" \
	"0 [] 4096 64" \
	"$(jq -r '[.summary.l1.entries, .changes.l1, (.tables.moved[] | select(.name == "l1_table") | ."old-size", ."new-size")] | map(tostring) | join(" ")' geo1.json)"
# Every range with data in the old image has data in the new one.
assert_eq "qemu-img map: the new image maps each old data range" "true" \
	"$(jq -s '(.[1] | map(select(.data))) as $n | .[0] | map(select(.data)) | all(. as $o | $n | any(.start <= $o.start and $o.start + $o.length <= .start + .length))' \
		<(qemu-img map --output=json c512.qcow2) <(qemu-img map --output=json c4k.qcow2))"
assert_eq "so no L2 change frees one" \
	"0" "$(jq '[.changes.l2[] | select(.change == "freed")] | length' geo1.json)"

# Extended L2 against standard entries, 2 MiB clusters each: the extended
# image steps a cluster at a time, and the other's run of 262,143
# unallocated entries was scanned again at each of its 131,072 steps (12 s;
# found by review).  One change: the subcluster bitmap.
qemu-img create -q -f qcow2 -o cluster_size=2M std2m.qcow2 512G
qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on ext2m.qcow2 512G
qemu-io -c 'write -P 1 0 64k' std2m.qcow2 >/dev/null
qemu-io -c 'write -P 1 0 64k' ext2m.qcow2 >/dev/null
assert_eq "2 MiB clusters, standard against extended L2" "exit 1
l2_table_0[0] subclusters $(raw_of std2m.qcow2 0) -> $(raw_of ext2m.qcow2 0) 0x0+0x200000" \
	"$(l2_changes std2m.qcow2 ext2m.qcow2)"

# A snapshot that comes to share an earlier snapshot's L1 table (its entry
# pointed at the other's copy): the model gives the shared table's L2
# tables to the first snapshot only, and diff said snapshot 2's L2 table
# disappeared, though the new image's snapshot 2 reaches the same table
# (found by review).  One change: the L1 pointer, and the table it names.
three_snapshots sa.qcow2
cp sa.qcow2 sb.qcow2
python3 "$TOP/tests/lib/hostile.py" share-snapshot-l1 sb.qcow2 2
for pair in "sa.qcow2 sb.qcow2" "sb.qcow2 sa.qcow2"; do
	# shellcheck disable=SC2086 # two file names
	assert_eq "snapshots that come to share an L1 table: $pair" \
		"snapshot_2.l1_table_offset changed|snapshot_2_l1_table moved" \
		"$("$Q2E" diff --output=json $pair | jq -r '[(.changes[][] | "\(.name) \(.change)"), (.tables | to_entries[] | .key as $k | .value[] | "\(.name) \($k)")] | join("|")')"
done

# The middle one of three snapshots deleted: the third's tables are
# snapshot_2_* in one and snapshot_1_* in the other, and did not move.
# Tables pair as the snapshots do (by ID and name), bitmaps' by name: by
# position, s3's live L1 table was listed as gone and s2's as moved to it.
qemu-img create -q -f qcow2 mid.qcow2 32M
for i in 1 2 3; do
	qemu-io -c "write -P $i $((i * 64))k 64k" mid.qcow2 >/dev/null
	qemu-img snapshot -c "s$i" mid.qcow2
	qemu-img bitmap --add mid.qcow2 "b$i"
done
"$Q2E" dump mid.qcow2 -o mid0.elf
cp mid.qcow2 mid-before.qcow2
s2=$("$Q2E" info --output=json mid0.elf | jq '.snapshots[1]."l1-table-offset"')
qemu-img snapshot -d s2 mid.qcow2
qemu-img bitmap --remove mid.qcow2 b2
"$Q2E" dump mid.qcow2 -o mid1.elf
"$Q2E" diff --output=json mid0.elf mid1.elf >mid.json
assert_eq "the middle snapshot deleted: its tables are gone, the third's did not move" \
	"snapshot_1_l1_table $(printf 0x%x "$s2")|snapshot_1_l2_table_0" \
	"$(jq -r '[.tables.disappeared[] | select(.name | startswith("snapshot_")) | if .name == "snapshot_1_l1_table" then "\(.name) \(.offset)" else .name end] | join("|")' mid.json)"
assert_eq "...and no snapshot table moved" "" \
	"$(jq -r '[.tables.moved[] | select(.name | test("^snapshot_[0-9]")) | .name] | join("|")' mid.json)"
# QEMU writes the bitmaps it keeps again: a table moved is the one its
# bitmap's entry says moved, and the one gone is b2's.
b2=$("$Q2E" info --output=json mid0.elf | jq '.bitmaps[1]."table-offset"')
# bitmap_tables BEFORE AFTER: "bitmap_K_table OLD NEW" for each bitmap of
# AFTER (the K-th of its directory) whose table moved, from the images'
# bitmap directories.
bitmap_tables() {
	python3 - "$@" <<'EOF'
import struct, sys

def tables(path):
    b = open(path, 'rb').read()
    off = struct.unpack('>I', b[100:104])[0]	# header_length: v3
    while off + 8 <= len(b):
        magic, n = struct.unpack('>II', b[off:off + 8])
        if magic == 0:
            break
        if magic == 0x23852875:
            nb, _, _, d = struct.unpack('>IIQQ', b[off + 8:off + 32])
            out = []
            for _ in range(nb):
                t, _, _, _, _, ns, ex = struct.unpack('>QIIBBHI', b[d:d + 24])
                name = b[d + 24 + ex:d + 24 + ex + ns]
                out.append((name, t))
                d += (24 + ex + ns + 7) // 8 * 8
            return out
        off += 8 + (n + 7) // 8 * 8
    return []

old = dict(tables(sys.argv[1]))
moved = ['bitmap_%d_table 0x%x 0x%x' % (k, old[name], t)
         for k, (name, t) in enumerate(tables(sys.argv[2]))
         if name in old and old[name] != t]
print('|'.join(sorted(moved)))
EOF
}
moved=$(bitmap_tables mid-before.qcow2 mid.qcow2)
assert_match "the middle bitmap removed: QEMU moved the tables it kept" \
	'^bitmap_' "$moved"
assert_eq "...and diff names those tables as moved, from where to where" \
	"$moved" \
	"$(jq -r '[.tables.moved[] | select(.name | test("^bitmap_[0-9]*_table$")) | "\(.name) \(."old-offset") \(."new-offset")"] | sort | join("|")' mid.json)"
assert_eq "...and as their entries' changes" "$moved" \
	"$(jq -r '[.changes.bitmaps[] | select(.member == "bitmap_table_offset") | "\(.symbol)_table \(.old) \(.new)"] | sort | join("|")' mid.json)"
assert_eq "...and the table gone is b2's" "bitmap_1_table $(printf 0x%x "$b2")" \
	"$(jq -r '[.tables.disappeared[] | select(.name | test("^bitmap_[0-9]*_table$")) | "\(.name) \(.offset)"] | join("|")' mid.json)"

# A snapshot's own L2 table changed in place: qemu-img amend to compat=0.10
# makes its zero cluster allocated.  Named by the snapshot's symbol, as gdb
# prints it, and not counted in the active image's guest ranges.
qemu-img create -q -f qcow2 sbase.qcow2 16M
qemu-io -c 'write -P 9 0 4M' sbase.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b sbase.qcow2 -F qcow2 samend.qcow2
qemu-io -c 'write -z 1M 64k' samend.qcow2 >/dev/null
qemu-img snapshot -c s samend.qcow2
qemu-io -c 'write -P 3 1M 64k' samend.qcow2 >/dev/null
"$Q2E" dump samend.qcow2 -o samend0.elf
qemu-img amend -o compat=0.10 samend.qcow2
"$Q2E" dump samend.qcow2 -o samend1.elf
"$Q2E" diff --output=json samend0.elf samend1.elf >samend.json
# gdb_raw SYMBOL FILE: the raw value gdb prints for SYMBOL.
gdb_raw() { gdb -nx -batch -ex "p/x $1.raw" "$2" 2>/dev/null | sed -n 's/^\$1 = //p'; }
assert_eq "a snapshot's L2 entry changed by amend: named, with gdb's old and new values" \
	"snapshot_0_l2_table_0[16] allocated 0x100000 $(gdb_raw 'snapshot_0_l2_table_0[16]' samend0.elf) $(gdb_raw 'snapshot_0_l2_table_0[16]' samend1.elf)" \
	"$(jq -r '.changes["snapshot-l2"][] | "\(.name) \(.change) \(.["guest-start"]) \(.old) \(.new)"' samend.json)"
assert_eq "...not counted in the active image's guest ranges" "0" \
	"$(jq '[.["guest-ranges"][]?.clusters] | add // 0' samend.json)"

# The same past the active image's virtual size: the snapshot's own (16
# MiB, kept in its extra data) bounds its entries.  amend refuses a
# downgrade while a snapshot's size differs, so the header says 8 MiB
# only around the dumps.
qemu-img create -q -f qcow2 -b sbase.qcow2 -F qcow2 spast.qcow2
qemu-io -c 'write -z 12M 64k' spast.qcow2 >/dev/null
qemu-img snapshot -c s spast.qcow2
qemu-io -c 'write -P 3 12M 64k' spast.qcow2 >/dev/null
put64 spast.qcow2 24 $((8 << 20))
"$Q2E" dump spast.qcow2 -o spast0.elf
put64 spast.qcow2 24 $((16 << 20))
qemu-img amend -o compat=0.10 spast.qcow2
put64 spast.qcow2 24 $((8 << 20))
"$Q2E" dump spast.qcow2 -o spast1.elf
assert_eq "a snapshot's entry past the active virtual size: listed, with gdb's new value" \
	"snapshot_0_l2_table_0[192] allocated 0xc00000 $(gdb_raw 'snapshot_0_l2_table_0[192]' spast1.elf)" \
	"$("$Q2E" diff --output=json spast0.elf spast1.elf | jq -r '.changes["snapshot-l2"][]? | "\(.name) \(.change) \(.["guest-start"]) \(.new)"')"

# A snapshot taken last shares the active L2 table: its change is listed
# once, under the active table's name.
qemu-img create -q -f qcow2 -b sbase.qcow2 -F qcow2 sshared.qcow2
qemu-io -c 'write -z 1M 64k' sshared.qcow2 >/dev/null
qemu-img snapshot -c s sshared.qcow2
"$Q2E" dump sshared.qcow2 -o sshared0.elf
qemu-img amend -o compat=0.10 sshared.qcow2
"$Q2E" dump sshared.qcow2 -o sshared1.elf
"$Q2E" diff --output=json sshared0.elf sshared1.elf >sshared.json
assert_eq "a table the snapshot and the active L1 share: listed once, as l2_table_0" \
	"l2_table_0[16] allocated|" \
	"$(jq -r '[.changes.l2[]? | "\(.name) \(.change)"] | join(",")' sshared.json)|$(jq -r '[.changes["snapshot-l2"][]? | .name] | join(",")' sshared.json)"

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
