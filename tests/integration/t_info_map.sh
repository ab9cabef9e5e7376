#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Parity with the real qemu-img on a corpus built at test time
# (tests/lib/corpus.sh): for every image, `map --output=json` must be
# byte-identical to qemu-img's, and `info --output=json` must agree with
# qemu-img's on every fact both show.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
. "$TOP/tests/lib/patch.sh"
need qemu-img qemu-io jq

C=$T_TMP/corpus
if corpus_build "$C" 2>"$T_TMP/corpus.err"; then
	pass "corpus built"
else
	fail "corpus built" "$(cat "$T_TMP/corpus.err")"
fi
cd "$C" || finish

# The facts both show, in one flat object; absent facts and empty lists
# are left out.  qemu-img keeps the qcow2 ones under format-specific.data.
FACTS='"virtual-size", "cluster-size", "backing-filename",
	"backing-filename-format", "dirty-flag", "compat", "compression-type",
	"lazy-refcounts", "refcount-bits", "corrupt", "extended-l2",
	"data-file", "data-file-raw", "bitmaps", "encrypted", "encrypt",
	"snapshots"'
NORMALISE='
	def pick(keys): . as $o | reduce keys[] as $k ({};
		if $o | has($k) then .[$k] = $o[$k] else . end);
	(pick(['"$FACTS"'])
	 | if .bitmaps then .bitmaps |= map(pick(["name", "flags",
			"granularity"])) else . end
	 | if .encrypt then .encrypt |= pick(["format", "cipher-alg",
			"cipher-mode", "ivgen-alg", "ivgen-hash-alg",
			"hash-alg", "uuid", "payload-offset",
			"master-key-iters", "slots"]) else . end
	 | if .snapshots then .snapshots |= map(pick(["id", "name",
			"date-sec", "date-nsec", "vm-clock-sec",
			"vm-clock-nsec", "vm-state-size", "icount"])) else . end
	 | with_entries(select(.value != null and .value != [])))'
# qemu-img: the top level, and format-specific.data over it.
QEMU_FLAT='. + (.["format-specific"].data // {})'

compare_info() {	# compare_info IMAGE
	local img=$1 q=$T_TMP/info.qemu o=$T_TMP/info.ours

	if ! qemu-img info --output=json "$img" >"$T_TMP/q.json" 2>"$T_TMP/q.err"; then
		fail "info $img: qemu-img info fails" "$(head -3 "$T_TMP/q.err")"
		return
	fi
	if ! "$Q2E" info --output=json "$img" >"$T_TMP/o.json" 2>"$T_TMP/o.err"; then
		fail "info $img: exits non-zero" "$(head -3 "$T_TMP/o.err")"
		return
	fi
	jq -S "$QEMU_FLAT | $NORMALISE" "$T_TMP/q.json" >"$q" &&
		jq -S "$NORMALISE" "$T_TMP/o.json" >"$o" ||
		{ fail "info $img: output is not JSON"; return; }
	if cmp -s "$q" "$o"; then
		pass "info $img agrees with qemu-img"
	else
		fail "info $img agrees with qemu-img (- qemu-img, + qcow2elf)" \
		     "$(diff -u "$q" "$o" | tail -n +3 | head -40)"
	fi
}

compare_map() {		# compare_map IMAGE KIND
	local img=$1 kind=$2 opts=("$1")

	[ "$kind" = luks ] && mapfile -t opts < <(corpus_luks_opts "$img")
	if ! qemu-img map --output=json "${opts[@]}" >"$T_TMP/map.qemu" 2>"$T_TMP/q.err"; then
		fail "map $img: qemu-img map fails" "$(head -3 "$T_TMP/q.err")"
		return
	fi
	if ! "$Q2E" map --output=json "$img" >"$T_TMP/map.ours" 2>"$T_TMP/o.err"; then
		fail "map $img: exits non-zero" "$(head -3 "$T_TMP/o.err")"
		return
	fi
	if cmp -s "$T_TMP/map.qemu" "$T_TMP/map.ours"; then
		pass "map $img is byte-identical to qemu-img's"
	else
		fail "map $img is byte-identical to qemu-img's (- qemu-img, + qcow2elf)" \
		     "$(diff -u "$T_TMP/map.qemu" "$T_TMP/map.ours" | tail -n +3 | head -30)"
	fi
	compare_human_map "$img"
}

# The human map lists the same ranges as the JSON one (qemu-img's), one
# line each under a header, offsets in hex, no trailing blanks; but where
# qemu-img gives no offset, compressed and encrypted clusters, it splits
# the range where the host offsets do and gives them: such lines are
# joined again for the comparison.
compare_human_map() {
	local img=$1 hidden=0 hs=0 hl=0 hd=0

	if ! "$Q2E" map "$img" >"$T_TMP/map.human" 2>"$T_TMP/o.err"; then
		fail "human map $img: exits 0" "$(head -3 "$T_TMP/o.err")"
		return
	fi
	# The kind qemu-img's flags make (README: map): a zero range that
	# is not present is unallocated.
	jq -r '.[] | "\(.start) \(.length) \(.depth) \(.offset // "-") \(
		if .data and (.zero | not) then "data"
		elif .zero and .present then "zero"
		elif .data then "data" else "unallocated" end)"' \
		"$T_TMP/map.qemu" >"$T_TMP/h.want"
	{ tail -n +2 "$T_TMP/map.human"; echo 0 0 0 end; } |
	while read -r start len depth kind rest; do
		set -- $rest
		start=$((start)) len=$((len))
		if [ "$hidden" = 1 ] && { [ "$kind" != compressed ] &&
			[ "$kind" != encrypted ] || [ "$depth" != "$hd" ] ||
			[ $((hs + hl)) != "$start" ]; }; then
			echo "$hs $hl $hd - data"
			hidden=0
		fi
		case $kind in
		end) ;;
		compressed|encrypted)
			if [ "$hidden" = 1 ]; then
				hl=$((hl + len))
			else
				hidden=1 hs=$start hl=$len hd=$depth
			fi ;;
		*)
			[ "$kind" = data ] && [ "${1:-}" = "(no" ] && shift 2
			off=${1:--}
			[ "$off" = - ] || off=$((off))
			echo "$start $len $depth $off $kind" ;;
		esac
	done >"$T_TMP/h.got"
	if cmp -s "$T_TMP/h.want" "$T_TMP/h.got" &&
		! grep -q '[[:space:]]$' "$T_TMP/map.human"; then
		pass "human map $img lists qemu-img's ranges, of the kinds its flags make"
	else
		fail "human map $img lists qemu-img's ranges, of the kinds its flags make (- json, + human)" \
		     "$(diff -u "$T_TMP/h.want" "$T_TMP/h.got" | tail -n +3 | head -10)"
	fi
}

# qemu-img made these images and they are sound: info may add notes (a
# dirty image) but finds no problem.
healthy() {
	local img=$1 bad

	bad=$("$Q2E" info --output=json "$img" |
		jq -c '[.problems[]? | select(.severity != "note") | .message]')
	assert_eq "info $img finds no problem in a sound image" "[]" "$bad"
}

image_case() {	# image_case IMAGE KIND
	healthy "$1"
	compare_info "$1"
	compare_map "$1" "$2"
}

n=0
while read -r img kind; do
	t_case "$img" image_case "$img" "$kind"
	n=$((n + 1))
done <corpus.list
# An image of virtual size 0: qemu-img map still prints one empty range.
qemu-img create -q -f qcow2 "$T_TMP/empty.qcow2" 0
t_case "map of an empty image" compare_map "$T_TMP/empty.qcow2" plain

# Preallocated metadata (qemu-img create -o preallocation=metadata): QEMU
# guesses it from clusters in use against blocks on disk, and then asks
# the file which preallocated clusters are holes.  map must give the same
# entries as qemu-img map, whichever way the guess goes.
_prealloc_map() {
	local f=$T_TMP/prealloc/$1-${2//[=,]/-}.qcow2 size=$1 opts=$2
	shift 2
	mkdir -p "${f%/*}"
	qemu-img create -q -f qcow2 -o "preallocation=metadata,$opts" "$f" "$size"
	for c in "$@"; do qemu-io -c "$c" "$f" >/dev/null; done
	qemu-img map --output=json "$f" >"$T_TMP/pm.qemu"
	"$Q2E" map --output=json "$f" >"$T_TMP/pm.ours"
	assert_eq "map of $size with preallocated metadata ($opts): qemu-img's entries" \
		"$(jq -cS '.[]' "$T_TMP/pm.qemu")" "$(jq -cS '.[]' "$T_TMP/pm.ours")"
	assert_same_file "and its bytes" "$T_TMP/pm.qemu" "$T_TMP/pm.ours"
}
# prealloc_map SIZE CREATE-OPTIONS QEMU-IO-COMMANDS...: one case.
prealloc_map() {
	t_case "map of $1 with preallocated metadata ($2)" _prealloc_map "$@"
}
prealloc_map 64M cluster_size=65536 'write -P 1 1M 192k' 'write -z 8M 64k' \
	'discard 16M 64k'
prealloc_map 16M cluster_size=4096 'write -P 2 0 12k' 'write -P 3 15M 4k'
prealloc_map 8M extended_l2=on 'write -P 4 4k 8k' 'write -P 5 1M 64k'
prealloc_map 1G cluster_size=2M 'write -P 6 3M 1M'
# 512-byte clusters: an L2 table between each 64 clusters and the next, so
# a file block holds the end of one run of clusters and the start of the
# next, and each run's data ends inside its L2 table's range.
prealloc_map 32M cluster_size=512 'write -P 8 1M 4k' 'write -P 9 1030k 1k' \
	'write -z 2M 8k' 'discard 3M 32k' 'write -P 10 31M 1M'
# Written all over: as many clusters on disk as in use, so QEMU does not
# take it for preallocated.
prealloc_map 1M cluster_size=65536 'write -P 7 0 1M'

# What file-posix asks of the file changes with the page cache: an
# unwritten (fallocated) extent is a hole to SEEK_DATA until its pages are
# read, and a block written but not yet allocated (delayed allocation) is
# data.  map reads ext4's extent map instead of asking lseek() for each
# run (src/source/seek_map.c) but for such extents: in each state its
# entries are the ones qemu-img map gives then.
file_states() {
	local f=$T_TMP/states.qcow2 at
	host_at() {
		qemu-img map --output=json "$f" |
			jq --argjson g "$1" '.[] | select(.start <= $g and .start + .length > $g) | .offset + $g - .start'
	}
	same_now() {
		qemu-img map --output=json "$f" >"$T_TMP/st.qemu"
		"$Q2E" map --output=json "$f" >"$T_TMP/st.ours"
		assert_same_file "map of a preallocated image, $1: qemu-img map's entries" \
			"$T_TMP/st.qemu" "$T_TMP/st.ours"
	}
	qemu-img create -q -f qcow2 -o preallocation=metadata,cluster_size=4096 "$f" 16M
	qemu-io -c 'write -P 1 1M 64k' "$f" >/dev/null
	sync
	same_now "written back"
	at=$(host_at 8388608)
	fallocate -o "$at" -l 65536 "$f"
	same_now "64 KiB of data clusters fallocated"
	assert_match "and qemu-img map takes them for zeros" '"zero": ?true' \
		"$(qemu-img map --output=json "$f" | jq -c --argjson g 8388608 '.[] | select(.start == $g)')"
	dd if="$f" of=/dev/null bs=4096 skip=$((at / 4096)) count=4 2>/dev/null
	same_now "fallocated clusters read into the page cache"
	assert_match "and qemu-img map takes them for data" '"zero": ?false' \
		"$(qemu-img map --output=json "$f" | jq -c --argjson g 8388608 '.[] | select(.start == $g)')"
	at=$(host_at 12582912)
	head -c 8192 /dev/zero | tr '\0' x |
		dd of="$f" bs=4096 seek=$((at / 4096)) conv=notrunc 2>/dev/null
	same_now "a hole written to, not yet written back"
	sync
	same_now "and written back"
}
t_case "map as the file's extents change" file_states

# With the bitmaps autoclear bit clear, a program without bitmap support
# wrote the image: QEMU ignores the bitmaps, qemu-img info lists none, and
# neither info nor check -M lists them as live ones.
ignored_bitmaps() {
	local f=$T_TMP/ignored-bitmaps.qcow2

	qemu-img create -q -f qcow2 "$f" 64M
	qemu-img bitmap --add "$f" b0
	qemu-img bitmap --add "$f" b1
	printf '\0' | dd of="$f" bs=1 seek=95 conv=notrunc status=none
	compare_info "$f"
	assert_eq "info: the bitmaps QEMU ignores are listed as ignored" \
		'{"bitmaps":[],"ignored":["b0","b1"]}' \
		"$("$Q2E" info --output=json "$f" 2>/dev/null | jq -c '{bitmaps, ignored: [."ignored-bitmaps"[].name]}')"
	assert_match "human info too" $'bitmaps:\n  \\(none\\)\nignored-bitmaps:\n  \\[0\\]:\n    name +b0' \
		"$("$Q2E" info "$f" 2>/dev/null)"
	assert_eq "check -M: under ignored-bitmaps, not bitmaps" \
		'[false,["b0","b1"]]' \
		"$("$Q2E" check -M --output=json "$f" 2>/dev/null |
			jq -c '[.viscera | has("bitmaps"), [."ignored-bitmaps"."bitmap-dir"."dir-entries"[]."bitmap-name"]]')"
}
t_case "bitmaps with their autoclear bit clear" ignored_bitmaps

# A bitmap's table entries by kind: a written range's data cluster is
# serialized; an entry of value 1 is a cluster of all ones, without one.
bitmap_counts() {
	local f=$T_TMP/bm-counts.qcow2 t counts
	counts='.bitmaps[0] | "\(."serialized-clusters") \(."all-ones-clusters")"'
	qemu-img create -q -f qcow2 "$f" 64M
	qemu-img bitmap --add "$f" b0
	qemu-io -c 'write -P 5 8M 64k' "$f" >/dev/null
	assert_eq "bitmap counts: a written range's cluster is serialized" "1 0" \
		"$("$Q2E" info --output=json "$f" | jq -r "$counts")"
	t=$("$Q2E" info --output=json "$f" | jq '.bitmaps[0]."table-offset"')
	put64 "$f" "$t" 1
	assert_eq "bitmap counts: an entry of all ones" "0 1" \
		"$("$Q2E" info --output=json "$f" | jq -r "$counts")"
}
t_case "bitmap table entries by kind" bitmap_counts

# data-file-raw follows the external data file bit, as qemu-img shows it,
# named or not; data-file the name, bit or not.
data_file_bits() {
	local f=$T_TMP/df-bit.qcow2 g=$T_TMP/df-name.qcow2 raw

	qemu-img create -q -f qcow2 "$f" 1M
	printf '\4' | dd of="$f" bs=1 seek=79 conv=notrunc status=none
	for raw in 0 2; do	# autoclear bit 1: raw external data
		printf "\\$raw" | dd of="$f" bs=1 seek=95 conv=notrunc status=none
		compare_info "$f"
	done
	assert_eq "the bit without a name: data-file-raw, no data-file" \
		'{"data-file":null,"data-file-raw":true}' \
		"$("$Q2E" info --output=json "$f" | jq -c '{"data-file", "data-file-raw"}')"
	qemu-img create -q -f qcow2 -o data_file="$T_TMP/df-name.data" "$g" 1M
	printf '\0' | dd of="$g" bs=1 seek=79 conv=notrunc status=none
	compare_info "$g"
	assert_eq "a name without the bit: data-file, no data-file-raw" \
		"{\"data-file\":\"$T_TMP/df-name.data\",\"data-file-raw\":null}" \
		"$("$Q2E" info --output=json "$g" | jq -c '{"data-file", "data-file-raw"}')"
}
t_case "the external data file bit and name, apart" data_file_bits

# Human map: compressed and encrypted clusters by kind, at their host
# offsets (qemu-img map has none to give).  Each compressed offset must
# hold the raw deflate stream of its cluster; an encrypted range starts
# where the L2 entry, read here independently, says.
cat >"$T_TMP/host.py" <<'PY'
import struct, sys, zlib
path, guest = sys.argv[1], int(sys.argv[2], 0)
with open(path, "rb") as f:
    h = f.read(48)
    bits = struct.unpack_from(">I", h, 20)[0]
    l1 = struct.unpack_from(">Q", h, 40)[0]
    cs = 1 << bits
    f.seek(l1 + guest // (cs * cs // 8) * 8)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2 + guest // cs % (cs // 8) * 8)
    e = struct.unpack(">Q", f.read(8))[0]
    if len(sys.argv) > 3:       # compressed: inflate from the map's offset
        f.seek(int(sys.argv[3], 0))
        d = zlib.decompressobj(-15).decompress(f.read(2 * cs))[:cs]
        print("pattern %d" % d[0] if d == d[:1] * cs else "not the cluster")
    else:
        print(hex(e & 0x00fffffffffffe00))
PY
human_map_hidden() {
	local d=$T_TMP/hidden got want

	mkdir -p "$d" && cd "$d" || return 1
	qemu-img create -q -f qcow2 src.qcow2 1M
	qemu-io -c 'write -P 7 0 128k' -c 'write -P 9 512k 64k' src.qcow2 >/dev/null
	qemu-img convert -c -O qcow2 src.qcow2 comp.qcow2
	"$Q2E" map comp.qcow2 >map.txt
	assert_eq "human map: compressed clusters by kind, one line each" \
		"0x0 compressed comp.qcow2
0x10000 compressed comp.qcow2
0x80000 compressed comp.qcow2" \
		"$(awk '$4 == "compressed" { print $1, $4, $6 }' map.txt)"
	got=$(awk '$4 == "compressed" { print $1, $5 }' map.txt |
		while read -r g h; do python3 "$T_TMP/host.py" comp.qcow2 "$g" "$h"; done)
	assert_eq "at offsets that hold their compressed data" \
		"pattern 7
pattern 7
pattern 9" "$got"
	# The corpus's LUKS image has 128 KiB of data at 64 KiB.
	cd "$C" || return 1
	want=$(python3 "$T_TMP/host.py" luks.qcow2 0x10000)
	assert_eq "human map: encrypted clusters by kind, at their host offset" \
		"0x10000 0x20000 encrypted $want luks.qcow2" \
		"$("$Q2E" map luks.qcow2 | awk '$4 == "encrypted" { print $1, $2, $4, $5, $6 }')"
}
t_case "human map of compressed and encrypted clusters" human_map_hidden

# A map that stops at an L1 entry it cannot follow (an L2 table not
# cluster aligned): qemu-img asks a table at a time, so it prints every
# range before that entry's, the last with its comma, and exits 1.  map
# looked past the range it was asked into the bad entry, and dropped the
# range before it.
map_cut_short() {
	local f=$T_TMP/cut-short.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=4k "$f" 64M
	qemu-io -c "write 0 4k" -c "write 4M 4k" "$f" >/dev/null
	put64 "$f" $(($(get64 "$f" 40) + 5 * 8)) $((0x10000000200))
	assert_same_file "map --output=json and its exit status: qemu-img's" \
		<(qemu-img map --output=json "$f" 2>/dev/null; echo "exit $?") \
		<("$Q2E" map --output=json "$f" 2>/dev/null; echo "exit $?")
}
t_case "map cut short by an L2 table not cluster aligned" map_cut_short

# Extended L2 entries whose subcluster bitmap is invalid (a subcluster both
# allocated and zero): qemu-img map fails the whole question that reaches
# such an entry of the table it reads, so it never prints the range
# before it, and its "[" stays alone.  map printed that range, and "[\n".
map_invalid_subcluster() {
	local f=$T_TMP/bad-bitmap.qcow2 at l2
	for at in "16 0" "16 5" "1 0" "15 0" "17 3"; do
		qemu-img create -q -f qcow2 -o extended_l2=on "$f" 1G
		qemu-io -c "write 0 64k" -c "write 1M 64k" -c "write 600M 64k" "$f" >/dev/null
		l2=$(($(get64 "$f" "$(get64 "$f" 40)") & 0x00fffffffffffe00))
		set -- $at
		put64 "$f" $((l2 + 16 * $1 + 8)) \
			$(($(get64 "$f" $((l2 + 16 * $1 + 8))) | (1 << $2) | (1 << (32 + $2))))
		assert_same_file "invalid subcluster $2 of entry $1: map --output=json and its exit status are qemu-img's" \
			<(qemu-img map --output=json "$f" 2>/dev/null; echo "exit $?") \
			<("$Q2E" map --output=json "$f" 2>/dev/null; echo "exit $?")
	done
	# After a compressed cluster QEMU looks no further: it is answered,
	# and the question from the invalid entry fails.
	qemu-img create -q -f qcow2 -o extended_l2=on "$f" 64M
	qemu-io -c "write -P 1 0 64k" -c "write -c -P 2 64k 64k" \
		-c "write -P 3 128k 64k" "$f" >/dev/null
	l2=$(($(get64 "$f" "$(get64 "$f" 40)") & 0x00fffffffffffe00))
	put64 "$f" $((l2 + 16 * 2 + 8)) $((0x100000001))
	assert_same_file "invalid entry after a compressed cluster: map --output=json is qemu-img's" \
		<(qemu-img map --output=json "$f" 2>/dev/null; echo "exit $?") \
		<("$Q2E" map --output=json "$f" 2>/dev/null; echo "exit $?")
	# Metadata preallocation: QEMU scans the whole question before the
	# file's extent shortens the answer, so an invalid entry past the
	# extent fails it.
	qemu-img create -q -f qcow2 -o extended_l2=on,preallocation=metadata "$f" 64M
	qemu-io -c "write -P 7 128k 64k" "$f" >/dev/null
	l2=$(($(get64 "$f" "$(get64 "$f" 40)") & 0x00fffffffffffe00))
	for at in 3 4 5; do put64 "$f" $((l2 + 16 * at + 8)) $((0xffffffff)); done
	put64 "$f" $((l2 + 16 * 6 + 8)) $((0x100000001))
	assert_same_file "preallocated, an invalid entry past the file's extent: map --output=json is qemu-img's" \
		<(qemu-img map --output=json "$f" 2>/dev/null; echo "exit $?") \
		<("$Q2E" map --output=json "$f" 2>/dev/null; echo "exit $?")
}
t_case "map of extended L2 entries with an invalid subcluster bitmap" map_invalid_subcluster

# Images QEMU will not open (an L1 table not cluster aligned, an unknown
# incompatible feature, which may change what an entry means): qemu-img
# map exits 1 and prints nothing; map printed a whole map and exited 0.
map_refused() {
	local f=$T_TMP/refused.qcow2 c why fmt so
	for c in l1 feature zlib-bit snapshots snapshot-offset snapshot-extra no-reftable; do
		qemu-img create -q -f qcow2 "$f" 1G
		qemu-io -c "write 0 1M" "$f" >/dev/null
		case $c in snapshot*) qemu-img snapshot -c s1 "$f" ;; esac
		so=$("$Q2E" info --output=json "$f" | jq '.header.snapshots_offset')
		case $c in
		l1) put64 "$f" 40 $((0x30008))
		    why="the active L1 table is not cluster aligned" ;;
		feature) put64 "$f" 72 $((0x100))
		    why="the image has unknown incompatible features" ;;
		zlib-bit) put64 "$f" 72 8
		    why="the compression type incompatible bit is set for zlib" ;;
		# Only check's open skips the snapshot table.
		snapshots) put32 "$f" 60 65537
		    why="the snapshot table has more than 65536 entries" ;;
		snapshot-offset) put64 "$f" 64 $((0x200))
		    why="the snapshot table offset is invalid" ;;
		snapshot-extra) truncate -s +1M "$f"
		    put32 "$f" $((so + 36)) 1100
		    why="a snapshot table entry has more than 1024 bytes of extra data" ;;
		# Only check's open takes an image without a refcount table.
		no-reftable) put32 "$f" 56 0
		    why="the image has no refcount table (QEMU opens it only for a check)" ;;
		esac
		for fmt in human json; do
			assert_same_file "refused, $why: map --output=$fmt prints what qemu-img map prints, and exits 1" \
				<(qemu-img map --output="$fmt" "$f" 2>/dev/null; echo "exit $?") \
				<("$Q2E" map --output="$fmt" "$f" 2>/dev/null; echo "exit $?")
		done
		assert_eq "refused, $why: map says why" \
			"qcow2elf: '$f': qemu-img would not open it: $why (info and dump show its structures)" \
			"$("$Q2E" map "$f" 2>&1 >/dev/null)"
		assert_eq "refused, $why: check exits as qemu-img check does" \
			"$(qemu-img check "$f" >/dev/null 2>&1; echo $?)" \
			"$("$Q2E" check "$f" >/dev/null 2>&1; echo $?)"
		assert_eq "refused, $why: info says qemu-img info refuses it, and why" \
			"$(qemu-img info "$f" >/dev/null 2>&1 || echo false) $why" \
			"$("$Q2E" info --output=json "$f" | jq -r '"\(."qemu-opens") \(."qemu-refuses")"')"
	done
}
t_case "map of an image QEMU will not open" map_refused

# Where QEMU reads the header and the L2 entries its own way (found by a
# review against QEMU's block/qcow2*.c): each map --output=json and exit
# status as qemu-img map's, info as qemu-img info's.
same_map() {	# same_map DESCRIPTION IMAGE
	assert_same_file "$1: map --output=json and its exit status are qemu-img's" \
		<(qemu-img map --output=json "$2" 2>/dev/null; echo "exit $?") \
		<("$Q2E" map --output=json "$2" 2>/dev/null; echo "exit $?")
}
qemu_reads() {
	local f=$T_TMP/reads.qcow2 b=$T_TMP/reads-base.qcow2 l2
	# qcow2_get_host_offset() refuses a data cluster of an external data
	# file away from its guest offset, and a zero flag in a v2 image.
	qemu-img create -q -f qcow2 -o data_file="$T_TMP/reads.data" "$f" 4M
	qemu-io -c 'write -P 1 0 128k' "$f" >/dev/null
	l2=$(($(get64 "$f" "$(get64 "$f" 40)") & 0x00fffffffffffe00))
	put64 "$f" $((l2 + 8)) $((0x8000000000200000))
	same_map "an external data file's cluster away from its guest offset" "$f"
	for e in $((0x1)) "+1"; do
		qemu-img create -q -f qcow2 -o compat=0.10 "$f" 4M
		qemu-io -c 'write -P 1 0 128k' "$f" >/dev/null
		l2=$(($(get64 "$f" "$(get64 "$f" 40)") & 0x00fffffffffffe00))
		if [ "$e" = "+1" ]; then
			put64 "$f" $((l2 + 8)) $(($(get64 "$f" $((l2 + 8))) | 1))
		else
			put64 "$f" $((l2 + 16)) "$e"
		fi
		same_map "a version 2 image with a zero flag ($e)" "$f"
	done
	# QEMU's guess of metadata preallocation fails at a refcount block
	# not cluster aligned, and is then no.
	qemu-img create -q -f qcow2 -o preallocation=metadata "$f" 64M
	qemu-io -c 'write -P 1 1M 64k' "$f" >/dev/null
	put64 "$f" "$(get64 "$f" 48)" $(($(get64 "$f" "$(get64 "$f" 48)") + 512))
	same_map "preallocated metadata, a refcount block not cluster aligned" "$f"
	# QEMU's virtual size is whole sectors: the header's, rounded down,
	# in the image and as a backing file.
	qemu-img create -q -f qcow2 "$b" 2M
	qemu-io -c 'write -P 1 0 2M' "$b" >/dev/null
	put64 "$b" 24 $((1048576 + 700))
	same_map "a virtual size not a multiple of 512" "$b"
	compare_info "$b"
	qemu-img create -q -f qcow2 -b "$b" -F qcow2 "$f" 4M
	same_map "a backing file whose virtual size is not a multiple of 512" "$f"
	# A backing file name of no bytes is no backing file.
	qemu-img create -q -f qcow2 "$f" 4M
	put64 "$f" 8 512
	put32 "$f" 16 0
	same_map "backing_file_offset set, backing_file_size 0" "$f"
	compare_info "$f"
	assert_same_file "backing_file_size 0: check prints what qemu-img check prints" \
		<(qemu-img check "$f" 2>&1; echo "exit $?") \
		<("$Q2E" check "$f" 2>&1; echo "exit $?")
	# ...at the offset of the cluster after the header, where the
	# refcount table starts: no overlap with a name of no bytes.
	put64 "$f" 8 65536
	assert_same_file "backing_file_size 0 at the next cluster: check as qemu-img check" \
		<(qemu-img check "$f" 2>&1; echo "exit $?") \
		<("$Q2E" check "$f" 2>&1; echo "exit $?")
	# The backing file as QEMU opens it: refused where QEMU refuses it
	# (and then still kept from being written over), or named with the
	# file: protocol, or with a backing format extension that names no
	# format (QEMU probes) or a format QEMU has no driver for.
	qemu-img create -q -f qcow2 "$b" 4M
	qemu-io -c 'write -P 1 0 64k' "$b" >/dev/null
	qemu-img create -q -f qcow2 -b "$b" -F qcow2 "$f"
	put64 "$b" 72 $((0x100))
	same_map "a backing file QEMU refuses" "$f"
	assert_eq "a backing file QEMU refuses: check exits as qemu-img check does" \
		"$(qemu-img check "$f" >/dev/null 2>&1; echo $?)" \
		"$("$Q2E" check "$f" >/dev/null 2>&1; echo $?)"
	cp "$b" "$T_TMP/reads-base.copy"
	"$Q2E" dump "$f" -o "$b" 2>/dev/null
	assert_same_file "a backing file QEMU refuses is still no output of dump" \
		"$T_TMP/reads-base.copy" "$b"
	put64 "$b" 72 0
	(cd "$T_TMP" && qemu-img create -q -f qcow2 -b file:reads-base.qcow2 -F qcow2 reads.qcow2)
	(cd "$T_TMP" && same_map "a backing file named file:NAME" reads.qcow2)
	(cd "$T_TMP" && assert_same_file "a backing file named file:NAME: check prints what qemu-img check prints" \
		<(qemu-img check reads.qcow2 2>&1; echo "exit $?") \
		<("$Q2E" check reads.qcow2 2>&1; echo "exit $?"))
	qemu-img create -q -f qcow2 -b "$b" -F qcow2 "$f"
	printf '\0' | dd of="$f" bs=1 seek=120 conv=notrunc status=none
	same_map "a backing format extension naming no format" "$f"
	compare_info "$f"
	printf 'qcow3' | dd of="$f" bs=1 seek=120 conv=notrunc status=none
	assert_eq "a backing format QEMU has no driver for: check exits as qemu-img check does" \
		"$(qemu-img check "$f" >/dev/null 2>&1; echo $?)" \
		"$("$Q2E" check "$f" >/dev/null 2>&1; echo $?)"
	# A check opens the backing file as it opens the image: without a
	# refcount table, or with more snapshots than QEMU takes, it opens
	# for qemu-img check (exit 0) and not for qemu-img map.
	for c in "56 0 4" "60 70000 4"; do
		set -- $c
		qemu-img create -q -f qcow2 "$b" 1M
		qemu-io -c 'write -P 5 0 128k' "$b" >/dev/null
		put_be "$b" "$1" "$3" "$2"
		qemu-img create -q -f qcow2 -u -b "$b" -F qcow2 "$f" 1M
		same_map "a backing file with $2 at $1" "$f"
		assert_eq "a backing file with $2 at $1: check exits as qemu-img check does" \
			"$(qemu-img check "$f" >/dev/null 2>&1; echo $?)" \
			"$("$Q2E" check "$f" >/dev/null 2>&1; echo $?)"
	done
	# The backing format is shown only with a backing file.
	qemu-img create -q -f qcow2 "$b" 1M
	qemu-img create -q -f qcow2 -b "$b" -F qcow2 "$f" 1M
	put32 "$f" 16 0
	compare_info "$f"
	# QEMU's bitmap rules take the virtual size in whole sectors too.
	qemu-img create -q -f qcow2 -o cluster_size=512 "$b" 4M
	qemu-img resize -q --shrink "$b" 2M
	qemu-img bitmap --add -g 512 "$b" b0
	put64 "$b" 24 $((2097152 + 100))
	same_map "a bitmap, the virtual size not a multiple of 512" "$b"
	compare_info "$b"
	assert_eq "a bitmap, the virtual size not a multiple of 512: check exits as qemu-img check does" \
		"$(qemu-img check "$b" >/dev/null 2>&1; echo $?)" \
		"$("$Q2E" check "$b" >/dev/null 2>&1; echo $?)"
	# qemu-img info holds an ID of 127 bytes and a name of 255 at most.
	qemu-img create -q -f qcow2 "$f" 4M
	qemu-img snapshot -c s "$f"
	python3 - "$f" "$("$Q2E" info --output=json "$f" | jq '.snapshots[0]."entry-offset"')" <<'PY'
import struct, sys
# The entry's ID becomes 200 bytes and its name 300 (qemu-img snapshot
# -c cuts a name at 255): the table is written again past the end.
f = open(sys.argv[1], "r+b")
off = int(sys.argv[2])
f.seek(off)
fixed = bytearray(f.read(40))
extra = struct.unpack_from(">I", fixed, 36)[0]
f.seek(off + 40)
extra_b = f.read(extra)
struct.pack_into(">HH", fixed, 12, 200, 300)
entry = bytes(fixed) + extra_b + b"7" * 200 + b"n" * 300
entry += b"\0" * (-len(entry) % 8)
end = (f.seek(0, 2) + 65535) // 65536 * 65536
f.seek(end)
f.write(entry + b"\0" * (65536 - len(entry)))
f.seek(64)
f.write(struct.pack(">Q", end))
PY
	compare_info "$f"
}
t_case "map and info where QEMU reads the image its own way" qemu_reads

# QEMU opens an external data file with the image: map fails where it is
# missing, as qemu-img map does, naming the image and the structure.
mkdir -p "$T_TMP/df" && cd "$T_TMP/df" || finish
qemu-img create -q -f qcow2 -o data_file=d.raw x.qcow2 4M
qemu-io -c 'write -P 1 0 64k' x.qcow2 >/dev/null
assert_eq "map with its data file: qemu-img's JSON" \
	"$(qemu-img map --output=json x.qcow2)" "$("$Q2E" map --output=json x.qcow2)"
mv d.raw d.away
assert_status "map without its data file fails, as qemu-img map does" 1 \
	"$Q2E" map --output=json x.qcow2
assert_match "...naming the image and the data file" \
	"'x.qcow2': ext_data_file: .*'d.raw'.*No such file" "$(cat "$T_TMP/.err")"
assert_eq "...and printing nothing" "" "$("$Q2E" map --output=json x.qcow2 2>/dev/null)"
# Without the incompatible bit QEMU ignores the name, and so do map and
# check.
put_be x.qcow2 72 8 0
assert_eq "a data file named without its bit: map as qemu-img's" \
	"$(qemu-img map --output=json x.qcow2)" "$("$Q2E" map --output=json x.qcow2)"
assert_status "...and check as qemu-img check's status" \
	"$(qemu-img check x.qcow2 >/dev/null 2>&1; echo $?)" "$Q2E" check x.qcow2
cd "$T_TMP" || finish

# QEMU's LUKS driver reads the header without a key too, and qemu-img
# info fails where it refuses it: info's qemu-opens says the same for
# each field changed (crypto/block-luks.c's checks), and check then
# counts a check error and exits 1, as qemu-img check with the key does.
mkdir -p "$T_TMP/luks" && cd "$T_TMP/luks" || finish
# qemu-img's timing of the key derivation fails now and then on a busy
# machine ("Unable to get accurate CPU usage"): a few tries.
for try in 1 2 3 4 5 6 7 8 9 10; do
	qemu-img create -q -f qcow2 --object secret,id=s,data=x \
		-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=100 \
		l.qcow2 4M 2>/dev/null && break
done
area=$(python3 -c "print(open('l.qcow2','rb').read(1 << 20).find(b'LUKS\xba\xbe'))")
ext=$(python3 -c "import struct; print(open('l.qcow2','rb').read(65536).find(struct.pack('>I', 0x0537be77)))")
# luks_case NAME OFFSET BYTES VALUE: the area's field at OFFSET set to
# VALUE (a number of BYTES bytes, or text when BYTES is 32).
luks_case() {
	cp l.qcow2 m.qcow2
	if [ "$3" = 32 ]; then
		printf '%s' "$4" | head -c 32 | dd of=m.qcow2 bs=1 seek=$((area + $2)) conv=notrunc status=none
		dd if=/dev/zero of=m.qcow2 bs=1 seek=$((area + $2 + ${#4})) count=$((32 - ${#4})) conv=notrunc status=none
	else
		put_be m.qcow2 $((area + $2)) "$3" "$4"
	fi
	qemu-img info m.qcow2 >/dev/null 2>&1 && q=true || q=false
	luks_got+=" $1:$("$Q2E" info --output=json m.qcow2 | jq '."qemu-opens"')"
	luks_want+=" $1:$q"
}
luks_got= luks_want=
luks_case as-made 6 2 1
luks_case magic 0 1 0
luks_case version 6 2 2
luks_case cipher-zzz 8 32 zzz
luks_case serpent 8 32 serpent
luks_case cast5 8 32 cast5
luks_case mode-no-ivgen 40 32 xts
luks_case cbc-key-64 40 32 cbc-plain64
luks_case essiv-no-hash 40 32 xts-essiv
luks_case essiv-sha256 40 32 xts-essiv:sha256
luks_case essiv-sha1 40 32 xts-essiv:sha1
luks_case plain64-md5 40 32 xts-plain64:md5
luks_case plain64-zzz 40 32 xts-plain64:zzz
luks_case ivgen-zzz 40 32 xts-zzz
luks_case lrw 40 32 lrw-plain64
luks_case hash-zzz 72 32 zzz
luks_case ripemd160 72 32 ripemd160
luks_case key-48 108 4 48
luks_case key-0 108 4 0
luks_case mk-iterations-0 164 4 0
luks_case stripes 252 4 3999
luks_case stripes-disabled 300 4 3999
luks_case state 208 4 7
luks_case iterations-0 212 4 0
luks_case in-header 248 4 7
luks_case payload 104 4 4039
luks_case overlap 296 4 300
# QEMU sums a slot's start and length in 32 bits: near 2^32 they wrap.
luks_case wraps 584 4 $((0xFFFFFFFF - 100))
luks_case wraps-not 584 4 $((0xFFFFFFFF - 600))
luks_case area-length-591 $((ext + 16 - area)) 8 591
luks_case area-past-eof $((ext + 8 - area)) 8 $((0x10000000))
assert_eq "qemu-opens as qemu-img info opens, for each LUKS header field changed" \
	"$luks_want" "$luks_got"
luks_case version 6 2 2
assert_status "check of a LUKS header QEMU refuses exits 1" 1 "$Q2E" check m.qcow2
assert_match "...saying why" "the LUKS version is not 1" "$(cat "$T_TMP/.err")"
cd "$T_TMP" || finish

# info --backing-chain: each image of the chain in qemu-img's order, with
# the facts qemu-img gives of each (a raw file at the bottom: its format
# and size); the first is plain info's; a missing backing file fails as
# qemu-img's does, printing nothing; map has no such option.
mkdir -p chain && cd chain || finish
qemu-img create -q -f raw bottom.raw 3000000
qemu-img create -q -f qcow2 -b bottom.raw -F raw mid.qcow2 4M
qemu-io -c 'write -P 1 1M 64k' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 top.qcow2 8M
qemu-img info --backing-chain --output=json top.qcow2 |
	jq -c 'map({file: (.filename | sub(".*/"; "")), format, "virtual-size", "cluster-size"})' >want.json
"$Q2E" info --backing-chain --output=json top.qcow2 >chain.json
assert_eq "info --backing-chain: the images, formats and sizes qemu-img lists" "$(cat want.json)" \
	"$(jq -c 'map({file: (.filename | sub(".*/"; "")), format, "virtual-size", "cluster-size"})' chain.json)"
assert_eq "its first element is plain info's" "$("$Q2E" info --output=json top.qcow2 | jq -cS .)" \
	"$(jq -cS '.[0]' chain.json)"
assert_eq "its second is plain info's of the backing file" "$("$Q2E" info --output=json mid.qcow2 | jq -cS .)" \
	"$(jq -cS '.[1]' chain.json)"
assert_eq "the raw file's size is the file's" "$(stat -c %s bottom.raw)" "$(jq '.[2]."file-size"' chain.json)"
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 1M
qemu-img info --backing-chain orphan.qcow2 >/dev/null 2>&1
assert_status "a missing backing file: qemu-img's status" $? "$Q2E" info --backing-chain orphan.qcow2
assert_eq "and nothing on standard output" "" "$(cat "$T_TMP/.out")"
assert_match "naming the file" "could not open backing file: 'gone.qcow2'" "$(cat "$T_TMP/.err")"
hints=$(grep -c "beside the dump" "$T_TMP/.err")
assert_eq "an image's error says nothing of dumps" 0 "$hints"
# A dump written to another directory looks for its backing file beside
# itself, as QEMU does for the image: the error says where it looked.
mkdir -p dumps
"$Q2E" dump top.qcow2 -o dumps/top.elf
assert_status "map of a dump away from its backing file fails" 1 \
	"$Q2E" map --output=json dumps/top.elf
assert_match "saying it looked beside the dump" \
	"'dumps/mid.qcow2': cannot open.*looked for beside the dump" "$(cat "$T_TMP/.err")"
assert_status "map --backing-chain is a usage error" 1 "$Q2E" map --backing-chain top.qcow2
# As qemu-img info opens the chain (no I/O): a missing external data file
# is not opened, and a backing file of a format not read (vmdk) ends the
# list with its name and format; map and check still refuse them (found
# by review).
qemu-img create -q -f qcow2 -o data_file=gone.raw dfi.qcow2 1M
rm gone.raw
qemu-img create -q -f vmdk vb.vmdk 1M
qemu-img create -q -f qcow2 -b vb.vmdk -F vmdk onvmdk.qcow2 1M
for img in dfi.qcow2 onvmdk.qcow2; do
	want=$(qemu-img info --backing-chain --output=json "$img" | jq -c 'map([(.filename | sub(".*/"; "")), .format])'; echo "exit ${PIPESTATUS[0]}")
	assert_eq "info --backing-chain of $img: qemu-img's list and status" "$want" \
		"$("$Q2E" info --backing-chain --output=json "$img" | jq -c 'map([(.filename | sub(".*/"; "")), .format])'; echo "exit ${PIPESTATUS[0]}")"
done
assert_status "map of the image on vmdk still says it reads no vmdk" 1 "$Q2E" map onvmdk.qcow2

# map --start-offset and --max-length, as qemu-img map's: the same JSON
# and status for each, the sizes read as qemu-img reads them (fractions
# through a double, hex with a suffix, a leading +, past 2^63 - 1, ...),
# windows past the end, empty, inside one range, and whose end overflows.
qemu-io -c 'write -P 2 5M 64k' -c 'write -c 6M 64k' top.qcow2 >/dev/null
"$Q2E" dump top.qcow2 -o top.elf
bad=
for st in 0 1 5M 5.5M 1.5m 0x500000 0x10k " 1k" +4k 1.k 1.0 1.5 1e3 -1 8M 9M 100M \
	7.99999E 8E 9223372036854775807 9223372036854775808 1.00048828125k 0x 0x1.5 "" \
	1.0B 1.5B 3.14159k 1.9999999999999999999k 4m; do
	# start + 2^63 - 1 overflows qemu-img's sum: one empty range
	for len in "" 0 1 4k 1M 3.5M 1E 9223372036854775807; do
		args=(--output=json "--start-offset=$st")
		[ -n "$len" ] && args+=("--max-length=$len")
		want=$(qemu-img map "${args[@]}" top.qcow2 2>/dev/null; echo "exit $?")
		got=$("$Q2E" map "${args[@]}" top.qcow2 2>/dev/null; echo "exit $?")
		dump=$("$Q2E" map "${args[@]}" top.elf 2>/dev/null; echo "exit $?")
		[ "$want" = "$got" ] && [ "$want" = "$dump" ] || bad+="'$st' '$len'; "
	done
done
assert_eq "map --start-offset/--max-length: qemu-img map's output and status, of the image and its dump (232 windows)" "" "$bad"
assert_eq "the human form maps the same window, range after range" \
	"$((5 << 20)) $(((5 << 20) + 1081344)) contiguous" \
	"$("$Q2E" map --start-offset=5M --max-length=1.03125M top.qcow2 | {
		read -r _; first= end= gap=contiguous
		while read -r s l _; do
			[ -z "$first" ] && first=$((s)) end=$((s))
			[ $((s)) = "$end" ] || gap=gap
			end=$((s + l))
		done
		echo "$first $end $gap"; })"
assert_status "--start-offset of info is a usage error" 1 "$Q2E" info --start-offset=0 top.qcow2
cd "$T_TMP" || finish

[ "$n" -ge 30 ] && pass "corpus has $n images" ||
	fail "corpus has $n images" "expected at least 30"
finish
