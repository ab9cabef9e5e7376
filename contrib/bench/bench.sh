#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The benchmark behind README's "Performance" section (`make bench`).
#
# usage: contrib/bench/bench.sh [--runs=N] [--images=LIST] [--dir=DIR]
#                               [--commands=LIST] [--out=FILE]
#   --runs=N      runs of each command and mode; medians are shown (3)
#   --images=LIST comma-separated, from: 1T,1G-512,256G-snap,everyday (all)
#   --commands=LIST comma-separated, from: check,check-M,map,dump,diff,
#                 qemu-img (all); the read baselines and the copies that are
#                 references of the commands chosen always run
#   --dir=DIR     where the images go; kept, and reused by the next run
#                 (default: a temporary directory, removed at the end)
#   --out=FILE    the results file (default: bench-results.txt;
#                 `make bench` writes build/bench-results.txt)
# Q2E selects the qcow2elf binary (./qcow2elf), READRANGES the read
# baseline helper built from contrib/bench/readranges.c.
#
# Each image is made with qemu-img, then changed by qemu-io (a discard and
# a zero write), with a dump taken before and after for `diff`.  Every
# command runs warm (page cache filled by a run before) and, as root, cold
# (`echo 3 > /proc/sys/vm/drop_caches` before each run).  The baselines
# read the same byte ranges as the dump's sections, merged, in offset
# order: one pread after another (read seq), after posix_fadvise WILLNEED
# on all of them (read advise), and by eight threads (read threads); "best
# read" is the fastest of the three medians.  "x" is a row's median over
# its reference row's median, in the same mode: for check, check -M and
# map, "read seq" warm and "best read" cold; for dump, a copy of the same
# bytes warm and "best read" cold.  "dump" replaces the last run's dump,
# which ext4 makes write the new file out inside the rename, and "cat of
# the dump" the last run's copy, synced ("cat + fsync"): both free a file
# written out before.  "dump, new file" writes to a name that does not
# exist yet, as a first dump does, and "cat, new file" too.  "cat + fsync"
# is the copy made durable, for reference (dump does not sync).  "copy
# of the regions" reads the dump's ranges from the image as "read seq"
# does and writes their bytes to a file, over its last copy or to a new
# name ("copy, new file"): the least any dump must do, with the same
# references as the dump's rows, so that its x is the floor of theirs.  Where
# DAMON pages out memory left idle (as on the virtual machine the README
# quotes), the header says so: a warm run may then find a few pages gone.
set -eu

runs=3 images=1T,1G-512,256G-snap,everyday dir= out=bench-results.txt
commands=check,check-M,map,dump,diff,qemu-img
for a in "$@"; do
	case $a in
	--runs=*) runs=${a#--runs=} ;;
	--images=*) images=${a#--images=} ;;
	--commands=*) commands=${a#--commands=} ;;
	--dir=*) dir=${a#--dir=} ;;
	--out=*) out=${a#--out=} ;;
	-h|--help) sed -n '3,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument '$a'" >&2; exit 2 ;;
	esac
done
for c in ${commands//,/ }; do
	case $c in
	check|check-M|map|dump|diff|qemu-img) ;;
	*) echo "bench: unknown command '$c'" >&2; exit 2 ;;
	esac
done
Q2E=${Q2E:-./qcow2elf}
READRANGES=${READRANGES:-./readranges}
for t in qemu-img qemu-io readelf perl awk "$Q2E" "$READRANGES"; do
	command -v "$t" >/dev/null ||
		{ echo "bench: needs '$t'" >&2; exit 1; }
done
timer=
[ -x /usr/bin/time ] && timer=/usr/bin/time	# GNU time, for peak RSS
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/q2e-bench.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
raw=$dir/times
: >"$raw"

cold=yes
if ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
	cold=no
	echo "bench: cold runs skipped: cannot drop the page cache (echo 3 > /proc/sys/vm/drop_caches needs root)" >&2
fi

# make_image NAME PATH: the images of issue 12.
make_image() {
	local p=$2
	case $1 in
	1T) qemu-img create -q -f qcow2 -o preallocation=metadata "$p" 1T ;;
	1G-512) qemu-img create -q -f qcow2 \
		-o preallocation=metadata,cluster_size=512 "$p" 1G ;;
	256G-snap)
		qemu-img create -q -f qcow2 -o preallocation=metadata "$p" 256G
		for i in 0 1 2 3 4 5 6 7 8 9; do
			qemu-img snapshot -c "snap$i" "$p"
		done ;;
	everyday)
		# 2,000 writes of 64 KiB scattered over 20 GiB, and a snapshot
		# between the two halves, as a guest's life leaves an image.
		qemu-img create -q -f qcow2 "$p" 20G
		local cmds=()
		for i in $(seq 0 999); do
			cmds+=(-c "write -P $((i % 250 + 1)) $(((i * 2654435761 % 327680) * 65536)) 64k")
		done
		qemu-io -f qcow2 "${cmds[@]}" "$p" >/dev/null
		qemu-img snapshot -c half "$p"
		cmds=()
		for i in $(seq 1000 1999); do
			cmds+=(-c "write -P $((i % 250 + 1)) $(((i * 2654435761 % 327680) * 65536)) 64k")
		done
		qemu-io -f qcow2 "${cmds[@]}" "$p" >/dev/null ;;
	*) echo "bench: unknown image '$1'" >&2; exit 2 ;;
	esac
}

# The byte ranges of every section of dump $1, in decimal, merged.
section_ranges() {
	readelf -SW "$1" |
		sed -n 's/^ *\[ *[0-9]*\] \.qcow2\.[^ ]* *[A-Z]* *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\).*/\1 \2/p' |
		perl -ne '($a, $s) = split; printf "%d %d\n", hex($a), hex($s)' |
		sort -n | awk '
		NR > 1 && $1 <= off + len { if ($1 + $2 > off + len) len = $1 + $2 - off; next }
		NR > 1 { print off, len }
		{ off = $1; len = $2 }
		END { if (NR) print off, len }'
}

chosen() { case ,$commands, in *,"$1",*) return 0 ;; esac; return 1; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# measure IMAGE LABEL MODE STATUSES CMD...: one run; STATUSES lists the
# exit statuses the command may give (any other stops the benchmark).
measure() {
	local image=$1 label=$2 mode=$3 ok=$4 s e st=0 rss=-
	shift 4
	[ "$mode" = cold ] && drop_caches
	s=$(date +%s%N)
	if [ -n "$timer" ]; then
		$timer -f %M -o "$dir/rss" "$@" >/dev/null 2>"$dir/err" || st=$?
	else
		"$@" >/dev/null 2>"$dir/err" || st=$?
	fi
	e=$(date +%s%N)
	case " $ok " in
	*" $st "*) ;;
	*) echo "bench: '$*' exited $st:" >&2; cat "$dir/err" >&2; exit 1 ;;
	esac
	[ -n "$timer" ] && rss=$(tail -n 1 "$dir/rss")
	echo "$image|$label|$mode|$(((e - s) / 1000))|$rss" >>"$raw"
}

bench_image() {
	local name=$1 img=$dir/$1.qcow2 modes=warm
	[ "$cold" = yes ] && modes="warm cold"
	if [ ! -f "$img" ] || [ ! -f "$dir/$name.b.elf" ]; then
		echo "bench: making the $name image" >&2
		rm -f "$img"
		make_image "$name" "$img"
		# Quiet unless they fail: dumps of 41,000 sections warn about gdb.
		"$Q2E" dump "$img" -o "$dir/$name.a.elf" 2>"$dir/err" ||
			{ cat "$dir/err" >&2; exit 1; }
		qemu-io -f qcow2 -c 'discard 0 1M' -c 'write -z 64M 64k' "$img" >/dev/null
		"$Q2E" dump "$img" -o "$dir/$name.b.elf" 2>"$dir/err" ||
			{ cat "$dir/err" >&2; exit 1; }
	fi
	section_ranges "$dir/$name.b.elf" >"$dir/$name.ranges"
	echo "bench: $name: $(wc -l <"$dir/$name.ranges") ranges, $(awk '{ s += $2 } END { print s }' "$dir/$name.ranges") bytes" >&2
	local o=$dir/$name.out.elf
	for mode in $modes; do
		# The first warm run of each command only fills the cache.
		local r0=1
		[ "$mode" = warm ] && r0=0
		for r in $(seq "$r0" "$runs"); do
			local m=$mode
			[ "$r" = 0 ] && m=fill
			for how in seq advise threads; do
				measure "$name" "read $how" "$m" 0 "$READRANGES" "$how" "$img" "$dir/$name.ranges"
			done
			if chosen check; then
				measure "$name" "check" "$m" 0 "$Q2E" check "$img"
				chosen qemu-img &&
					measure "$name" "qemu-img check" "$m" 0 qemu-img check "$img"
			fi
			chosen check-M &&
				measure "$name" "check -M json" "$m" 0 "$Q2E" check -M --output=json "$img"
			if chosen map; then
				measure "$name" "map json" "$m" 0 "$Q2E" map --output=json "$img"
				chosen qemu-img &&
					measure "$name" "qemu-img map json" "$m" 0 qemu-img map --output=json "$img"
			fi
			if chosen dump; then
				# Over the last run's dump: ext4 writes the new file
				# out inside the rename (auto_da_alloc).
				measure "$name" "dump" "$m" 0 "$Q2E" dump "$img" -o "$o"
				# To a name that does not exist, as a first dump is.
				rm -f "$o.new"
				measure "$name" "dump, new file" "$m" 0 "$Q2E" dump "$img" -o "$o.new"
				measure "$name" "cat of the dump" "$m" 0 sh -c 'cat "$1" >"$2"' sh "$o" "$o.copy"
				rm -f "$o.copy.new"
				measure "$name" "cat, new file" "$m" 0 sh -c 'cat "$1" >"$2"' sh "$o" "$o.copy.new"
				measure "$name" "cat + fsync" "$m" 0 sh -c 'cat "$1" >"$2" && sync "$2"' sh "$o" "$o.copy"
				measure "$name" "copy of the regions" "$m" 0 "$READRANGES" copy "$img" "$dir/$name.ranges" "$o.rcopy"
				rm -f "$o.rcopy.new"
				measure "$name" "copy, new file" "$m" 0 "$READRANGES" copy "$img" "$dir/$name.ranges" "$o.rcopy.new"
				measure "$name" "dump --no-data" "$m" 0 "$Q2E" dump --no-data "$img" -o "$o.nodata"
			fi
			if chosen diff; then
				measure "$name" "diff of two dumps" "$m" 1 "$Q2E" diff "$dir/$name.a.elf" "$dir/$name.b.elf"
				measure "$name" "cat of both dumps" "$m" 0 cat "$dir/$name.a.elf" "$dir/$name.b.elf"
			fi
		done
	done
	rm -f "$o" "$o.new" "$o.copy" "$o.nodata" "$o.rcopy" "$o.rcopy.new"
}

machine() {
	local cpu fs
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	fs=$(df -PT "$dir" | awk 'NR == 2 { print $2 " on " $1 }')
	echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
	# Page table isolation makes each system call dearer: it weighs on
	# the warm runs of commands that make many small reads.
	local pti
	pti=$(cat /sys/devices/system/cpu/vulnerabilities/meltdown 2>/dev/null || echo unknown)
	echo "machine:   ${cpu:-unknown CPU}, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
	echo "kernel:    meltdown: $pti; io_uring_disabled: $(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo -)"
	echo "disk:      $dir ($fs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "tools:     $("$Q2E" --version | head -n 1), $(qemu-img --version | head -n 1)"
	damon_pageout
	echo "runs:      $runs each, medians; cold runs: $cold; commands: $commands"
}

# A line on DAMON if it pages out memory idle for a while (the page cache
# included): warm runs then find pages of files left idle gone.
damon_pageout() {
	local k s aggr age
	for s in /sys/kernel/mm/damon/admin/kdamonds/[0-9]*/contexts/[0-9]*/schemes/[0-9]*; do
		[ -r "$s/action" ] && [ "$(cat "$s/action")" = pageout ] || continue
		k=${s%/schemes/*}
		[ "$(cat "${k%/contexts/*}/state" 2>/dev/null)" = on ] || continue
		aggr=$(cat "$k/monitoring_attrs/intervals/aggr_us" 2>/dev/null || echo 0)
		age=$(cat "$s/access_pattern/age/min" 2>/dev/null || echo 0)
		echo "memory:    DAMON pages out memory idle for $((aggr * age / 1000000)) s or more"
		return
	done
}

# The table: medians per image, command and mode, and the ratios.
table() {
	awk -F'|' -v cold="$cold" '
	$3 == "fill" { next }
	{
		k = $1 SUBSEP $2 SUBSEP $3
		t[k] = t[k] " " $4
		if ($5 != "-" && $5 + 0 > rss[$1 SUBSEP $2]) rss[$1 SUBSEP $2] = $5 + 0
		if (!(($1, $2) in seen)) { seen[$1, $2] = 1; order[++n] = $1 SUBSEP $2 }
	}
	function median(s,   a, m, i, j, x) {
		m = split(s, a, " ")
		for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
		return m ? (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) : ""
	}
	function med(img, label, mode) { return median(t[img, label, mode]) }
	function best(img, mode,   b, h, v, hs) {
		split("seq advise threads", hs, " ")
		for (h in hs) { v = med(img, "read " hs[h], mode); if (v != "" && (b == "" || v < b)) b = v }
		return b
	}
	# The reference of each row, warm and cold, as issue 12 sets them.
	function ref(label, mode) {
		if (label ~ /^(check|check -M json|map json)$/)
			return mode == "warm" ? "read seq" : "best read"
		if (label == "dump" || label == "copy of the regions")
			return mode == "warm" ? "cat of the dump" : "best read"
		if (label == "dump, new file" || label == "copy, new file")
			return mode == "warm" ? "cat, new file" : "best read"
		if (label == "qemu-img check") return "check"
		if (label == "qemu-img map json") return "map json"
		if (label == "diff of two dumps") return "cat of both dumps"
		return ""
	}
	function refs(label,   w, c) {
		w = ref(label, "warm"); c = ref(label, "cold")
		return w == "" ? "-" : w == c ? w : w " / " c
	}
	function ratio(img, label, mode,   r, a, b) {
		r = ref(label, mode)
		if (r == "") return "-"
		a = med(img, label, mode)
		b = r == "best read" ? best(img, mode) : med(img, r, mode)
		return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b)
	}
	function sec(v) { return v == "" ? "-" : sprintf("%.3f", v / 1e6) }
	END {
		fmt = "%-10s %-19s %7s %7s %7s %6s %6s  %s\n"
		printf fmt, "image", "command", "warm s", "cold s", "RSS MiB", "warm x", "cold x", "x: over (warm / cold)"
		for (i = 1; i <= n; i++) {
			split(order[i], p, SUBSEP)
			printf fmt, p[1], p[2], sec(med(p[1], p[2], "warm")),
				sec(med(p[1], p[2], "cold")),
				(p[1], p[2]) in rss ? sprintf("%.1f", rss[p[1], p[2]] / 1024) : "-",
				ratio(p[1], p[2], "warm"), ratio(p[1], p[2], "cold"),
				refs(p[2])
			if (p[2] == "read threads")
				printf fmt, p[1], "best read", sec(best(p[1], "warm")), sec(best(p[1], "cold")), "-", "-", "-", "fastest of the three"
		}
	}' "$raw"
}

for name in ${images//,/ }; do
	bench_image "$name"
done
{
	machine
	echo
	table
} | tee "$out"
echo "bench: results written to $out" >&2
