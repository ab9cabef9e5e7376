#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Times `qemu-img check`, `qcow2elf check` and a plain read of the metadata
# bytes the check must read (every L1, L2, refcount table and refcount block
# region, adjacent ones merged, read by one perl process) on an image with
# preallocated metadata, and prints the ratios.  Not run by `make check`.
#
# usage: contrib/bench-check.sh [--1t] [--size=SIZE] [--runs=N] [DIR]
#   --1t       a 1 TiB image, as issue 4 asks (default 100G)
#   DIR        where the image goes (default: a temporary directory)
# Q2E selects the qcow2elf binary (default ./qcow2elf).
# The page cache is warmed first, so all three read from memory.
set -eu

size=100G runs=3 dir=
for a in "$@"; do
	case $a in
	--1t) size=1T ;;
	--size=*) size=${a#--size=} ;;
	--runs=*) runs=${a#--runs=} ;;
	-h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) dir=$a ;;
	esac
done
Q2E=${Q2E:-./qcow2elf}
for t in qemu-img jq perl bc "$Q2E"; do
	command -v "$t" >/dev/null || { echo "bench-check: needs $t" >&2; exit 1; }
done
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-check.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
fi
img=$dir/bench-$size.qcow2

echo "creating $img ($size, preallocation=metadata)"
qemu-img create -q -f qcow2 -o preallocation=metadata "$img" "$size"

# Metadata regions as offset/size pairs, merged when adjacent.
"$Q2E" check --output=json -M "$img" |
	jq -r '.viscera | [
		.["qcow2-header"].location, .["refcount-table"].location,
		(.["active-l1"] | .location, .["l2-list"][]?),
		(.["refcount-blocks"][]?.location)
	] | map(select(. != null)) | sort_by(.offset) |
	reduce .[] as $r ([]; if length > 0 and (.[-1].offset + .[-1].size) == $r.offset
		then .[-1].size += $r.size else . + [$r] end) |
	.[] | "\(.offset) \(.size)"' >"$dir/ranges"
bytes=$(awk '{ s += $2 } END { print s }' "$dir/ranges")
echo "metadata: $(wc -l <"$dir/ranges") runs, $bytes bytes"

# One process reads every run with pread-sized chunks, as a tool would.
read_metadata() {
	perl -e 'open(my $f, "<", $ARGV[0]) or die; my $buf;
		open(my $r, "<", $ARGV[1]) or die;
		while (<$r>) { my ($off, $len) = split;
			sysseek($f, $off, 0);
			while ($len > 0) { my $n = sysread($f, $buf, $len > 1048576 ? 1048576 : $len);
				last unless $n; $len -= $n; } }' "$img" "$dir/ranges"
}

# best of N wall-clock seconds of "$@"
best() {
	local b= s e t
	for _ in $(seq "$runs"); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}

read_metadata	# warm the page cache
t_raw=$(best read_metadata)
t_ours=$(best "$Q2E" check "$img")
t_qemu=$(best qemu-img check "$img")

printf 'raw read of the metadata  %8.3f s\n' "$t_raw"
printf 'qcow2elf check            %8.3f s\n' "$t_ours"
printf 'qemu-img check            %8.3f s\n' "$t_qemu"
printf 'qemu-img / qcow2elf       %8.1fx  (issue 4 asks > 10)\n' \
	"$(echo "$t_qemu / $t_ours" | bc -l)"
printf 'qcow2elf / raw read       %8.1fx  (issue 4 asks < 3)\n' \
	"$(echo "$t_ours / $t_raw" | bc -l)"
