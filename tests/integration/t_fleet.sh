#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A fleet scan: `check --output=json-lines IMAGE...` gives one JSON object
# per line and per image, with the status `check IMAGE` exits with and
# qemu-img check's counts, and exits with the worst status; run by
# xargs -P, the lines of parallel checks stay whole.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/patch.sh"
need qemu-img qemu-io jq xargs

T=$T_TMP
cs=65536

qemu-img create -q -f qcow2 "$T/clean.qcow2" 64M
qemu-io -c 'write 0 1M' -c 'write 20M 64k' "$T/clean.qcow2" >/dev/null
l1=$(get64 "$T/clean.qcow2" 40)
rt=$(get64 "$T/clean.qcow2" 48)
l2=$(( $(get64 "$T/clean.qcow2" "$l1") & 0x00fffffffffffe00 ))
rb=$(get64 "$T/clean.qcow2" "$rt")
e20=$((l2 + (20 << 20) / cs * 8))
d20=$(( $(get64 "$T/clean.qcow2" "$e20") & 0x00fffffffffffe00 ))

# Leaked: the L2 entry of guest 20M cleared, its cluster's refcount kept.
cp "$T/clean.qcow2" "$T/leaky.qcow2"
put64 "$T/leaky.qcow2" "$e20" 0
# Corrupt: the data cluster of guest 20M has refcount 0 (16-bit refcounts).
cp "$T/clean.qcow2" "$T/corrupt.qcow2"
put_be "$T/corrupt.qcow2" $((rb + d20 / cs * 2)) 2 0
qemu-img create -q -f raw "$T/raw.img" 1M
# A name JSON must escape.
cp "$T/clean.qcow2" "$T/odd \"name\".qcow2"
"$Q2E" dump "$T/clean.qcow2" -o "$T/clean.elf" 2>/dev/null

# The status each image's own check exits with.
declare -A want=([clean.qcow2]=0 [leaky.qcow2]=3 [corrupt.qcow2]=2
		 [raw.img]=63 [missing.qcow2]=1)
for f in "${!want[@]}"; do
	assert_status "$f: check alone exits ${want[$f]}" "${want[$f]}" \
		"$Q2E" check "$T/$f"
done

all=(clean.qcow2 leaky.qcow2 corrupt.qcow2 raw.img missing.qcow2)
lines() { (cd "$T" && "$Q2E" check --output=json-lines "$@" 2>/dev/null); }
line_of() { jq -c --arg f "$2" 'select(.filename == $f)' <<<"$1"; }

case_lines() {
	local out n
	out=$(lines "${all[@]}")
	assert_eq "one line per image" ${#all[@]} "$(wc -l <<<"$out")"
	n=0
	while IFS= read -r l; do
		jq -e 'type == "object"' <<<"$l" >/dev/null && n=$((n + 1))
	done <<<"$out"
	assert_eq "each line is a JSON object of its own" ${#all[@]} "$n"
	assert_eq "lines in the order of the arguments" "${all[*]}" \
		"$(jq -r .filename <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
	for f in "${all[@]}"; do
		assert_eq "$f: the line's exit-status is check's" "${want[$f]}" \
			"$(line_of "$out" "$f" | jq .\"exit-status\")"
	done
}
t_case "lines and their statuses" case_lines

# The counts are qemu-img check's, each present even when 0.
same_counts() {
	local f=$1 ours theirs k
	ours=$(line_of "$(lines "$f")" "$f")
	theirs=$(qemu-img check --output=json "$T/$f" 2>/dev/null)
	for k in image-end-offset total-clusters allocated-clusters \
		 fragmented-clusters corruptions leaks check-errors; do
		assert_eq "$f: $k as qemu-img check" \
			"$(jq ".\"$k\" // 0" <<<"$theirs")" \
			"$(jq ".\"$k\"" <<<"$ours")"
	done
}
t_case "clean: qemu-img's counts" same_counts clean.qcow2
t_case "leaky: qemu-img's counts" same_counts leaky.qcow2
t_case "corrupt: qemu-img's counts" same_counts corrupt.qcow2

case_values() {
	local out
	out=$(lines "${all[@]}")
	assert_eq "leaky: one leak" 1 \
		"$(line_of "$out" leaky.qcow2 | jq .leaks)"
	assert_eq "corrupt: corruptions counted" true \
		"$(line_of "$out" corrupt.qcow2 | jq '.corruptions > 0')"
	assert_eq "clean: no findings, no error" "0 null" \
		"$(line_of "$out" clean.qcow2 | jq -r '"\(.findings) \(.error)"')"
	assert_match "raw: the error says why, no counts" \
		"^not a QCOW2 image .* null$" \
		"$(line_of "$out" raw.img | jq -r '"\(.error | sub("^.*: not"; "not")) \(.leaks)"')"
	assert_match "missing: the error names the file" \
		"^'missing.qcow2': cannot open" \
		"$(line_of "$out" missing.qcow2 | jq -r .error)"
}
t_case "what each line says" case_values

case_odd_name() {
	local out
	out=$(lines "odd \"name\".qcow2" clean.elf)
	assert_eq "a name with quotes and blanks comes back whole" \
		"odd \"name\".qcow2" "$(head -n 1 <<<"$out" | jq -r .filename)"
	assert_eq "a dump is checked as its image" \
		"$(head -n 1 <<<"$out" | jq -c 'del(.filename)')" \
		"$(tail -n 1 <<<"$out" | jq -c 'del(.filename)')"
}
t_case "names and dumps" case_odd_name

# An image that qemu-img cannot open (its backing or data file missing) is
# checked, exits 1, and says why: in its line and on stderr, as check does.
case_unopenable() {
	local f out
	(cd "$T" &&
	 qemu-img create -q -f qcow2 gone-base.qcow2 1M &&
	 qemu-img create -q -f qcow2 -b gone-base.qcow2 -F qcow2 no-backing.qcow2 &&
	 qemu-img create -q -f qcow2 -o data_file=gone.raw no-data.qcow2 1M &&
	 rm gone-base.qcow2 gone.raw) || return 1
	for f in no-backing.qcow2:gone-base.qcow2 no-data.qcow2:gone.raw; do
		out=$(cd "$T" && "$Q2E" check --output=json-lines "${f%:*}" 2>"$T/unopen.err")
		assert_eq "${f%:*}: exit-status 1, as check's" 1 "$(jq '."exit-status"' <<<"$out")"
		assert_match "${f%:*}: the line's error names the missing file" "'${f#*:}'" \
			"$(jq -r .error <<<"$out")"
		assert_eq "${f%:*}: and the counts" 0 "$(jq .corruptions <<<"$out")"
		assert_eq "${f%:*}: stderr says it as check does" \
			"$(cd "$T" && "$Q2E" check "${f%:*}" 2>&1 >/dev/null)" "$(cat "$T/unopen.err")"
	done
}
t_case "a missing backing or data file" case_unopenable

# The exit status of one run is its worst image's: 2, then 1, 3, 63, 0.
worst() {
	local desc=$1 st=$2
	shift 2
	(cd "$T" && assert_status "worst of $desc: $st" "$st" \
		"$Q2E" check --output=json-lines "$@")
}
worst "clean, clean" 0 clean.qcow2 clean.qcow2
worst "clean, raw" 63 clean.qcow2 raw.img
worst "raw, leaky, clean" 3 raw.img leaky.qcow2 clean.qcow2
worst "leaky, missing, raw" 1 leaky.qcow2 missing.qcow2 raw.img
worst "missing, corrupt, leaky" 2 missing.qcow2 corrupt.qcow2 leaky.qcow2
worst "corrupt, clean" 2 corrupt.qcow2 clean.qcow2

assert_status "json-lines refuses -M" 1 \
	"$Q2E" check --output=json-lines -M "$T/clean.qcow2"
assert_status "json-lines needs an IMAGE" 1 "$Q2E" check --output=json-lines
assert_status "other outputs still take one IMAGE" 1 \
	"$Q2E" check --output=json "$T/clean.qcow2" "$T/clean.qcow2"

# xargs -P: one process per image (or per batch), lines whole, and xargs's
# own status: 123 when some check exited 1 to 125, 0 when all exited 0.
case_xargs() {
	local out st
	for i in $(seq 1 24); do ln -s clean.qcow2 "$T/fleet-$i.qcow2"; done
	out=$(cd "$T" && printf '%s\0' fleet-*.qcow2 "${all[@]}" |
		xargs -0 -n 1 -P 4 "$Q2E" check --output=json-lines 2>/dev/null)
	st=$?
	assert_eq "xargs -P: status 123 when an image is not clean" 123 "$st"
	assert_eq "xargs -P: a line per image" $((24 + ${#all[@]})) \
		"$(jq -c . <<<"$out" | wc -l)"
	assert_eq "xargs -P: every line whole" $((24 + ${#all[@]})) \
		"$(grep -c '^{"filename":.*}$' <<<"$out")"
	assert_eq "xargs -P: the statuses to act on are in the lines" \
		"corrupt.qcow2 leaky.qcow2 missing.qcow2 raw.img" \
		"$(jq -r 'select(."exit-status" != 0) | .filename' <<<"$out" |
			sort | tr '\n' ' ' | sed 's/ $//')"
	(cd "$T" && printf '%s\0' fleet-*.qcow2 |
		xargs -0 -n 5 -P 2 "$Q2E" check --output=json-lines >"$T/batch.out")
	assert_eq "xargs -P in batches: status 0 when all are clean" 0 "$?"
	assert_eq "xargs -P in batches: a line per image" 24 \
		"$(jq -r 'select(."exit-status" == 0) | .filename' "$T/batch.out" | wc -l)"
}
t_case "xargs -P" case_xargs

finish
