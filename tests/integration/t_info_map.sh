#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Parity with the real qemu-img on a corpus built at test time
# (tests/lib/corpus.sh): for every image, `map --output=json` must be
# byte-identical to qemu-img's, and `info --output=json` must agree with
# qemu-img's on every fact both show.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io jq

C=$T_TMP/corpus
if corpus_build "$C" 2>"$T_TMP/corpus.err"; then
	pass "corpus built"
else
	fail "corpus built" "$(cat "$T_TMP/corpus.err")"
fi
case $Q2E in	# the images are read from their directory
*/*) [ "${Q2E#/}" != "$Q2E" ] || Q2E=$PWD/$Q2E ;;
esac
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
# line each under a header, offsets in hex, no trailing blanks.
compare_human_map() {
	local img=$1

	if ! "$Q2E" map "$img" >"$T_TMP/map.human" 2>"$T_TMP/o.err"; then
		fail "human map $img: exits 0" "$(head -3 "$T_TMP/o.err")"
		return
	fi
	jq -r '.[] | "\(.start) \(.length) \(.depth) \(.offset // "-")"' \
		"$T_TMP/map.qemu" >"$T_TMP/h.want"
	tail -n +2 "$T_TMP/map.human" | while read -r start len depth kind rest; do
		set -- $rest
		[ "$kind" = data ] && [ "${1:-}" = "(no" ] && shift 2
		off=${1:--}
		[ "$off" = - ] || off=$((off))
		echo "$((start)) $((len)) $depth $off"
	done >"$T_TMP/h.got"
	if cmp -s "$T_TMP/h.want" "$T_TMP/h.got" &&
		! grep -q '[[:space:]]$' "$T_TMP/map.human"; then
		pass "human map $img lists qemu-img's ranges"
	else
		fail "human map $img lists qemu-img's ranges (- json, + human)" \
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
[ "$n" -ge 30 ] && pass "corpus has $n images" ||
	fail "corpus has $n images" "expected at least 30"
finish
