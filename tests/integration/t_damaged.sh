#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Damaged images, made by patching good ones that qemu-img built: `info`
# still reports them, with a problem naming the structure and its offset,
# and `map` does what qemu-img map does: the same JSON where qemu-img
# copes (a table past the end of the file reads as zeros), an error naming
# the file where qemu-img gives up.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/patch.sh"
need qemu-img qemu-io jq od dd

good() {	# good FILE: 2 MiB, data in the first two clusters
	qemu-img create -q -f qcow2 "$1" 2M &&
		qemu-io -f qcow2 -c 'write -P 1 0 128k' -c 'write -P 2 1M 64k' \
			"$1" >/dev/null
}

# has_problem DESCRIPTION FILE STRUCTURE OFFSET MESSAGE_REGEX
has_problem() {
	local desc=$1 f=$2 json

	if ! json=$("$Q2E" info --output=json "$f" 2>"$T_TMP/err"); then
		fail "$desc: info exits 0" "$(head -3 "$T_TMP/err")"
		return
	fi
	pass "$desc: info exits 0"
	if printf '%s' "$json" | jq -e --arg s "$3" --argjson o "$4" --arg m "$5" \
		'.problems | any(.structure == $s and .offset == $o and (.message | test($m)))' \
		>/dev/null; then
		pass "$desc: info names $3 at $4"
	else
		fail "$desc: info names $3 at $4" \
		     "$(printf '%s' "$json" | jq -c '.problems')"
	fi
}
each_call_a_case has_problem

# map_like_qemu DESCRIPTION FILE REGEX: the same JSON as qemu-img map, or,
# where qemu-img map fails, exit 1 and one line naming the file and REGEX.
map_like_qemu() {
	local desc=$1 f=$2 rc

	"$Q2E" map --output=json "$f" >"$T_TMP/ours" 2>"$T_TMP/err"
	rc=$?
	if qemu-img map --output=json "$f" >"$T_TMP/qemu" 2>/dev/null; then
		assert_eq "$desc: map exits 0, as qemu-img map" 0 "$rc"
		assert_same_file "$desc: map as qemu-img's" "$T_TMP/qemu" "$T_TMP/ours"
	else
		assert_eq "$desc: map fails, as qemu-img map" 1 "$rc"
		assert_eq "$desc: map says why in one line" 1 "$(wc -l <"$T_TMP/err")"
		assert_match "$desc: map names the file and the cause" \
			"'$f'.*$3" "$(cat "$T_TMP/err")"
	fi
}
each_call_a_case map_like_qemu

cd "$T_TMP" || finish

# Each case damages its own copy of a good image, and fails alone.

# The active L1 table's first entry pointing past the end of the file.
l2_past_eof() {
	local f=l2-past-eof.qcow2 l1

	good $f
	l1=$(get64 $f 40)
	put64 $f "$l1" $(((1 << 63) | 0x10000000))
	has_problem "L2 table past EOF" $f l2_table_0 $((0x10000000)) \
		'0x10000000.*past the end of the file'
	map_like_qemu "L2 table past EOF" $f l2_table_0
}

# ... pointing inside a cluster.
l2_unaligned() {
	local f=l2-unaligned.qcow2 l1 l2

	good $f
	l1=$(get64 $f 40)
	l2=$(($(get64 $f "$l1") & 0x00fffffffffffe00))
	put64 $f "$l1" $(((1 << 63) | (l2 + 512)))
	has_problem "unaligned L2 table" $f l2_table_0 $((l2 + 512)) 'not cluster aligned'
	map_like_qemu "unaligned L2 table" $f 'l2_table_0.*not cluster aligned'
}

# An L2 entry mapping a data cluster at an unaligned host offset.
data_unaligned() {
	local f=data-unaligned.qcow2 l1 l2 data

	good $f
	l1=$(get64 $f 40)
	l2=$(($(get64 $f "$l1") & 0x00fffffffffffe00))
	data=$(($(get64 $f "$l2") & 0x00fffffffffffe00))
	put64 $f "$l2" $(((1 << 63) | (data + 512)))
	map_like_qemu "unaligned data cluster" $f 'not cluster aligned'
	assert_status "unaligned data cluster: info exits 0" 0 "$Q2E" info $f
}

# The refcount table past the end of the file.
reftable_past_eof() {
	local f=reftable-past-eof.qcow2

	good $f
	put64 $f 48 $((0x40000000))
	has_problem "refcount table past EOF" $f refcount_table $((0x40000000)) \
		'past the end of the file'
	map_like_qemu "refcount table past EOF" $f refcount_table
}

# The file cut short: data clusters past its end read as zeros in QEMU,
# but stay mapped.
truncated_data() {
	local f=truncated-data.qcow2 l2 data

	good $f
	l2=$(($(get64 $f "$(get64 $f 40)") & 0x00fffffffffffe00))
	data=$(($(get64 $f "$l2") & 0x00fffffffffffe00))
	truncate -s $((data + 4096)) $f
	assert_status "truncated data: info exits 0" 0 "$Q2E" info $f
	map_like_qemu "truncated data" $f 'past the end'
	# Cut at a data cluster's first byte (a copy stopped at a cluster
	# boundary): that cluster lies wholly past the end, and check says
	# so beyond qemu-img's lines.
	good cut.qcow2
	l2=$(($(get64 cut.qcow2 "$(get64 cut.qcow2 40)") & 0x00fffffffffffe00))
	data=$(($(get64 cut.qcow2 $((l2 + 16 * 8))) & 0x00fffffffffffe00))
	truncate -s $data cut.qcow2
	assert_eq "cut at a data cluster: check finds it past the end" \
		"past-end-of-file l2_table_0[16]: data at $(printf 0x%x $data) lies past the end of the file" \
		"$("$Q2E" check --output=json cut.qcow2 2>/dev/null |
		   jq -r '.findings[] | select(.type == "past-end-of-file") | "\(.type) \(.message | split(" (")[0])"')"
}

# A virtual size of 2^62 with a two-entry L1 table: qemu-img refuses to
# open it ("Image is too big"); info reports the short L1 table, map
# refuses it as qemu-img map does (it mapped 2^62 bytes, everything past
# the table one range), and diff finishes at once.
huge_size() {
	local f=huge-size.qcow2 rc

	good $f
	put64 $f 24 $((1 << 62))
	has_problem "virtual size 2^62" $f l1_table 36 'l1_size 1 is too small'
	timeout 20 "$Q2E" map --output=json $f >"$T_TMP/out" 2>"$T_TMP/err"
	rc=$?
	assert_eq "virtual size 2^62: map refuses it, as qemu-img map, and prints nothing" \
		"1 1 0" "$rc $(qemu-img map --output=json $f >/dev/null 2>&1
			echo $?) $(wc -c <"$T_TMP/out")"
	assert_match "virtual size 2^62: map says why" \
		"qemu-img would not open it: the image is too big" "$(cat "$T_TMP/err")"
	good huge-copy.qcow2
	qemu-io -f qcow2 -c 'write -P 3 1536k 64k' huge-copy.qcow2 >/dev/null
	put64 huge-copy.qcow2 24 $((1 << 62))
	assert_status "virtual size 2^62: diff finishes and finds the change" 1 \
		timeout 20 "$Q2E" diff $f huge-copy.qcow2
}

# 20,000 empty header extensions of two unknown kinds, in a 2 MiB cluster:
# each becomes a region with a name of its own, in linear time.
many_extensions() {
	local f=many-ext.qcow2 hl

	qemu-img create -q -f qcow2 -o cluster_size=2M $f 10M
	hl=$(get_be $f 100 4)
	for i in $(seq 10000); do printf '\x12\x34\x56\x78\0\0\0\0\x12\x34\x56\x7a\0\0\0\0'; done |
		dd of=$f bs=1 seek="$hl" conv=notrunc status=none
	assert_eq "20,000 extensions: info lists them all" 20000 \
		"$(timeout 20 "$Q2E" info --output=json $f | jq '[.extensions[] | select(.magic == "0x12345678" or .magic == "0x1234567a")] | length')"
	assert_status "20,000 extensions: dump" 0 timeout 30 "$Q2E" dump $f -o many-ext.elf
	assert_eq "20,000 extensions: every section name is unique" "" \
		"$(readelf -SW many-ext.elf | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\).*/\1/p' | sort | uniq -d | head -3)"
	assert_status "20,000 extensions: the dump reads like the image" 0 \
		timeout 30 "$Q2E" diff $f many-ext.elf
}

# The feature table's magic turned into a second backing format extension:
# a warning at the second one, which info still lists.
extension_twice() {
	local f=twice.qcow2 second

	qemu-img create -q -f qcow2 base.qcow2 1M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 $f 1M
	second=$("$Q2E" info --output=json $f | jq '.extensions[1].offset')
	put_be $f "$second" 4 0xe2792aca
	has_problem "backing format extension twice" $f ext_backing_format "$second" \
		'extension 0xe2792aca appears more than once'
	assert_eq "backing format extension twice: info lists both" 2 \
		"$("$Q2E" info --output=json $f | jq '[.extensions[] | select(.magic == "0xe2792aca")] | length')"
}

# QEMU's open rules are one function: info says what check's status says.
qemu_refuses() {
	local f=refuses.qcow2 json

	good $f
	put64 $f 72 $((1 << 40))	# an unknown incompatible feature bit
	json=$("$Q2E" info --output=json $f)
	assert_eq "unknown feature: info says QEMU will not open it" false \
		"$(jq '."qemu-opens"' <<<"$json")"
	assert_match "unknown feature: info says why" "unknown incompatible features" \
		"$(jq -r '."qemu-refuses"' <<<"$json")"
	qemu-img info $f >/dev/null 2>&1
	assert_eq "unknown feature: qemu-img info refuses it indeed" 1 "$?"
	assert_status "unknown feature: check gives up as qemu-img check" 1 "$Q2E" check $f
	good ok.qcow2
	assert_eq "a good image: info says QEMU opens it" true \
		"$("$Q2E" info --output=json ok.qcow2 | jq '."qemu-opens"')"
}

t_case "QEMU refuses to open" qemu_refuses
t_case "L2 table past EOF" l2_past_eof
t_case "unaligned L2 table" l2_unaligned
t_case "unaligned data cluster" data_unaligned
t_case "refcount table past EOF" reftable_past_eof
t_case "truncated data" truncated_data
t_case "virtual size 2^62" huge_size
t_case "20,000 extensions" many_extensions
t_case "backing format extension twice" extension_twice
finish
