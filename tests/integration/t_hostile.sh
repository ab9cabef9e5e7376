#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile inputs cost little: small or sparse files whose headers claim
# huge tables are built here (not committed), and every command must finish
# on each under a time limit (10 s), a memory limit (300 MB of address
# space) and an output limit (50 MB), whatever its exit status.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/patch.sh"
need qemu-img jq dd truncate timeout python3

# limited DESCRIPTION CMD...: the command finishes within the limits.
limited() {
	local desc=$1 rc bytes
	shift
	( ulimit -v 300000; timeout 10 "$@" ) 2>"$T_TMP/.err" |
		head -c 52428800 | wc -c >"$T_TMP/.bytes"
	rc=${PIPESTATUS[0]}
	bytes=$(cat "$T_TMP/.bytes")
	if [ "$rc" -eq 124 ]; then
		fail "$desc: finishes in 10 s" "timed out"
	elif [ "$rc" -gt 128 ]; then
		fail "$desc: finishes in 10 s" "killed by signal $((rc - 128))"
	elif grep -q 'out of memory' "$T_TMP/.err"; then
		fail "$desc: runs in 300 MB" "$(head -3 "$T_TMP/.err")"
	elif [ "$bytes" -ge 52428800 ]; then
		fail "$desc: prints under 50 MB" "printed $bytes bytes or more"
	else
		pass "$desc"
	fi
}

# each_limited NAME FILE CMD...: each command finishes on FILE within the
# limits.
each_limited() {
	local name=$1 f=$2 cmd
	shift 2
	for cmd in "$@"; do
		# shellcheck disable=SC2086 # CMD is a command and its options
		limited "$name: $cmd" "$Q2E" $cmd "$f"
	done
}

# one_problem NAME FILE PREFIX EXPECTED: info names the structures whose
# symbols start with PREFIX in one problem, whose message up to " (" is
# EXPECTED.
one_problem() {
	assert_eq "$1: info names them in one problem" "1|$4" \
		"$("$Q2E" info --output=json "$2" | jq -r --arg p "$3" '[.problems[] | select(.structure | startswith($p))] | "\(length)|\(.[0].message | split(" (")[0])"')"
}

# like_qemu LABEL FILE [--check-only]: check's lines on standard error and
# its exit status are qemu-img check's, and map --output=json is qemu-img
# map's, byte for byte.
like_qemu() {
	assert_status "$1: check's lines and status are qemu-img's" 0 \
		cmp <("$Q2E" check "$2" 2>&1 >/dev/null; echo "exit $?") \
		<(qemu-img check "$2" 2>&1 >/dev/null; echo "exit $?")
	[ "${3:-}" = --check-only ] && return
	assert_status "$1: map --output=json is qemu-img's" 0 \
		cmp <("$Q2E" map --output=json "$2") \
		<(qemu-img map --output=json "$2")
}

# with_64 GENERATOR: $T_TMP/GENERATOR.qcow2, a 32 PiB image of 2 MiB
# clusters made hostile with its default count, and GENERATOR-64.qcow2
# with a count of 64, which qemu-img checks in a moment.
with_64() {
	qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/$1.qcow2" 32P
	cp "$T_TMP/$1.qcow2" "$T_TMP/$1-64.qcow2"
	python3 "$TOP/tests/lib/hostile.py" "$1" "$T_TMP/$1.qcow2"
	python3 "$TOP/tests/lib/hostile.py" "$1" "$T_TMP/$1-64.qcow2" 64
}

# same_numbers LABEL FILE: check --output=json gives qemu-img check's
# numbers.
same_numbers() {
	local numbers='[.corruptions, .leaks, ."check-errors", ."image-end-offset", ."total-clusters"]'
	assert_eq "$1: check's numbers are qemu-img's" \
		"$(qemu-img check --output=json "$2" 2>/dev/null | jq -c "$numbers")" \
		"$("$Q2E" check --output=json "$2" 2>/dev/null | jq -c "$numbers")"
}

# every_command NAME FILE [--no-readback|--as-qemu-img]: --as-qemu-img
# leaves out map and check's human output, which print what qemu-img does,
# however long (the caller compares them with qemu-img's).
every_command() {
	local name=$1 f=$2 readback=${3:-} bytes

	limited "$name: info" "$Q2E" info "$f"
	limited "$name: info --output=json" "$Q2E" info --output=json "$f"
	if [ "$readback" != --as-qemu-img ]; then
		limited "$name: map --output=json" "$Q2E" map --output=json "$f"
		limited "$name: map" "$Q2E" map "$f"
		limited "$name: check" "$Q2E" check "$f"
	fi
	limited "$name: check -M --output=json" "$Q2E" check -M --output=json "$f"
	limited "$name: dump" "$Q2E" dump "$f" -o "$T_TMP/$name.elf"
	limited "$name: dump to a pipe" "$Q2E" dump "$f" -o -
	if [ -f "$T_TMP/$name.elf" ]; then
		bytes=$(stat -c %s "$T_TMP/$name.elf")
		[ "$bytes" -lt 52428800 ] && pass "$name: the dump is under 50 MB" ||
			fail "$name: the dump is under 50 MB" "$bytes bytes"
	fi
	limited "$name: diff with itself" "$Q2E" diff "$f" "$f"
	if [ -s "$T_TMP/$name.elf" ] && [ "$readback" != --no-readback ]; then
		limited "$name: info of its dump" "$Q2E" info "$T_TMP/$name.elf"
		limited "$name: check of its dump" "$Q2E" check "$T_TMP/$name.elf"
		limited "$name: restore of its dump" "$Q2E" restore \
			"$T_TMP/$name.elf" -o "$T_TMP/$name.restored" --force
	fi
}

# A 1 GiB sparse image whose two bitmaps each claim a table of 2^27
# entries (1 GiB) in the file's hole: bitmap tables were read whole.
f=$T_TMP/bitmaps.qcow2
qemu-img create -q -f qcow2 "$f" 1G
qemu-img bitmap --add "$f" b0
qemu-img bitmap --add "$f" b1
for b in 0 1; do
	entry=$("$Q2E" info --output=json "$f" | jq ".bitmaps[$b].\"entry-offset\"")
	put64 "$f" "$entry" $((512 << 20))
	put_be "$f" $((entry + 8)) 4 $((1 << 27))
done
truncate -s 1G "$f"
# The tables are all zeros (a hole): their dump holds no bytes of them,
# so that reading it back costs no more than reading the image.
every_command bitmaps "$f"
assert_eq "bitmaps: the dump holds no bytes of the tables in the hole" \
	"NOBITS" \
	"$(readelf -SW "$T_TMP/bitmaps.elf" | grep -o '\.qcow2\.bitmap\.0\.table *[A-Z]*' | awk '{ print $2 }')"
size=$(stat -c %s "$T_TMP/bitmaps.elf")
[ "$size" -lt 1048576 ] && pass "bitmaps: the dump is small ($size bytes)" ||
	fail "bitmaps: the dump is small" "$size bytes"

# A 16 MiB image with 512-byte clusters, truncated up to 4 TiB: QEMU's
# metadata-preallocation guess walked every cluster of the file.
f=$T_TMP/sparse4t.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" 16M
truncate -s 4T "$f"
every_command sparse4t "$f"

# The same truncated to 256 GiB: 2^29 clusters, which check counts in one
# byte a cluster of address space (512 MiB, past the limit above), of
# which only the pages it touches may cost memory: a counter array
# written whole took 512 MiB (and at 1000 GiB, 2 GB and 31 s).
f=$T_TMP/sparse256g.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" 16M
truncate -s 256G "$f"
if [ -x /usr/bin/time ] && ! readelf -sW "$Q2E" 2>/dev/null | grep -q __asan_init; then
	rc=0
	timeout 10 /usr/bin/time -o "$T_TMP/sparse256g.rss" -f %M \
		"$Q2E" check "$f" >/dev/null 2>&1 || rc=$?
	assert_eq "sparse256g: check finishes in 10 s, exit 0" 0 "$rc"
	rss=$(tail -n 1 "$T_TMP/sparse256g.rss")
	[ "${rss:-999999}" -lt 307200 ] && pass "sparse256g: check runs in 300 MB ($rss KiB)" ||
		fail "sparse256g: check runs in 300 MB" "peak RSS ${rss:-?} KiB"
else
	skip "sparse256g: check's memory (needs GNU time, a build without ASan)"
fi

# 4,096 snapshots sharing one L1 table whose 8,192 entries all point past
# the end of a 600 KB file: the model recorded 33 million regions and
# problems.  (check still counts each snapshot's references one by one,
# as qemu-img does, which takes far longer: not bounded yet.)
f=$T_TMP/shared-l1.qcow2
qemu-img create -q -f qcow2 "$f" 4T
python3 "$TOP/tests/lib/hostile.py" shared-snapshot-l1 "$f"
limited "shared-l1: info --output=json" "$Q2E" info --output=json "$f"
limited "shared-l1: map --output=json" "$Q2E" map --output=json "$f"
limited "shared-l1: dump" "$Q2E" dump "$f" -o "$T_TMP/shared-l1.elf"
limited "shared-l1: info of its dump" "$Q2E" info "$T_TMP/shared-l1.elf"
limited "shared-l1: diff with its dump" "$Q2E" diff "$f" "$T_TMP/shared-l1.elf"
# check counts the shared table once, for all 4,096 snapshots.
limited "shared-l1: check" "$Q2E" check "$f"
limited "shared-l1: check --output=json" "$Q2E" check --output=json "$f"
# qemu-img takes minutes here: t_parity compares 3 such snapshots with
# it.  Each of the 8,192 entries is a corruption in each snapshot, plus
# the snapshot table's clusters, which no refcount block covers.
c=$("$Q2E" check --output=json "$f" 2>"$T_TMP/shared-l1.err" | jq .corruptions)
assert_eq "shared-l1: check counts every snapshot's references" \
	$((4096 * 8192 + $(grep -c '^ERROR cluster [0-9]* refcount=0' "$T_TMP/shared-l1.err"))) "$c"
n=$("$Q2E" info --output=json "$f" | jq '.snapshots | length')
assert_eq "shared-l1: every snapshot is read" 4096 "$n"

# The same 4,096 snapshots, but the L1 table's 8,192 entries name one L2
# table (of zeros) inside the 680 KB file: the model gave each snapshot's
# entries their own owners (33 million, 530 MB; a dump a symbol each, 15
# s), and check printed qemu-img's 33 million refcount overflows of the
# table (2.5 GB, 15 s).  The table's L2 owners are the first snapshot's
# now, and past 131,072 overflow lines one line counts the rest.
f=$T_TMP/shared-l1-l2.qcow2
qemu-img create -q -f qcow2 "$f" 4T
cp "$f" "$T_TMP/shared-l1-l2-before.qcow2"
python3 "$TOP/tests/lib/hostile.py" shared-snapshot-l2 "$f"
every_command shared-l1-l2 "$f"
# Against the image it was made from, without the snapshots: 4,095 of
# them listed their leader's 8,192 L2 tables as gone (33 million items,
# 3.1 GB; found by review).
limited "shared-l1-l2: diff with the image without its snapshots" \
	"$Q2E" diff "$T_TMP/shared-l1-l2-before.qcow2" "$f"
assert_eq "shared-l1-l2: diff lists the first snapshot's L2 tables as gone" \
	8192 "$("$Q2E" diff --output=json "$f" "$T_TMP/shared-l1-l2-before.qcow2" | jq '[.tables.disappeared[] | select(.name | test("_l2_table_"))] | length')"
"$Q2E" check --output=json "$f" 2>"$T_TMP/shared-l1-l2.err" >"$T_TMP/shared-l1-l2.json"
assert_eq "shared-l1-l2: check counts every snapshot's references to the table past 65,535 as qemu-img does" \
	$((4096 * 8192 - 65535 + $(grep -c '^ERROR cluster [0-9]* refcount=0' "$T_TMP/shared-l1-l2.err"))) \
	"$(jq .corruptions "$T_TMP/shared-l1-l2.json")"
assert_eq "shared-l1-l2: check prints 131,072 overflow lines and one for the rest" \
	"131072 $((4096 * 8192 - 65535 - 131072))" \
	"$(awk '/^ERROR: overflow cluster offset=0x/ { n++ }
		/more refcount overflows of cluster/ { m = $2 }
		END { print n, m }' "$T_TMP/shared-l1-l2.err")"
assert_eq "shared-l1-l2: the dump has each snapshot's L1 symbol, and the shared L2 table's 8,192 symbols once" \
	"4096 8192" \
	"$(readelf -sW "$T_TMP/shared-l1-l2.elf" | awk '
		$8 ~ /^snapshot_[0-9]+_l1_table$/ { l1++ }
		$8 ~ /^snapshot_[0-9]+_l2_table_[0-9]+$/ { l2++ }
		END { print l1, l2 }')"

# A 72-byte header claiming 65,536 snapshots past the end of the file, all
# with the same empty ID and name: diff paired each by searching the other
# table (56 s).
f=$T_TMP/many-snapshots.qcow2
python3 "$TOP/tests/lib/hostile.py" many-snapshots "$f"
every_command many-snapshots "$f"
assert_eq "many-snapshots: the entries past the end are counted, not listed" \
	"0 65536" \
	"$("$Q2E" info --output=json "$f" | jq -r '"\(.snapshots | length) \(."snapshots-past-end")"')"

# A qemu-img image with two snapshots whose header then claims 65,536, the
# file ending with the table (found by fuzzing: `info` printed 38 MB).  In
# version 3 each entry past the end is one corruption for qemu-img check,
# but one problem for the model, and nothing to list.
f=$T_TMP/phantom.qcow2
qemu-img create -q -f qcow2 "$f" 64M
qemu-img snapshot -c a "$f"
qemu-img snapshot -c b "$f"
python3 "$TOP/tests/lib/hostile.py" phantom-snapshots "$f"
every_command phantom "$f"
assert_eq "phantom: the two real snapshots are listed, the others counted" \
	"2 65534" \
	"$("$Q2E" info --output=json "$f" | jq -r '"\(.snapshots | length) \(."snapshots-past-end")"')"
assert_eq "phantom: one problem for the entries past the end" 1 \
	"$("$Q2E" info --output=json "$f" | jq '[.problems[] | select(.message | test("entries 2 to 65535 lie past the end"))] | length')"
# qemu-img prints "ERROR snapshot table entry N is incomplete" for each
# of the 65,534 (4 s); check prints one line for them (past 4,096 of them),
# and counts them as qemu-img does: the same counters, exit status and
# other lines.
qemu-img check --output=json "$f" >"$T_TMP/phantom.q.json" 2>"$T_TMP/phantom.q.err"
qrc=$?
"$Q2E" check --output=json "$f" >"$T_TMP/phantom.o.json" 2>"$T_TMP/phantom.o.err"
orc=$?
assert_eq "phantom: qemu-img prints a line for each entry past the end" \
	65534 "$(grep -c '^ERROR snapshot table entry [0-9]* is incomplete$' "$T_TMP/phantom.q.err")"
assert_eq "phantom: check prints one line for the entries past the end" \
	"ERROR snapshot table entries 2 to 65535 are incomplete" \
	"$(grep 'snapshot table entr' "$T_TMP/phantom.o.err")"
assert_eq "phantom: check's exit status is qemu-img's" "$qrc" "$orc"
keys='{corruptions, leaks, "check-errors", "image-end-offset", "total-clusters"}'
assert_eq "phantom: check counts each entry past the end as qemu-img does" \
	"$(jq -cS "$keys" "$T_TMP/phantom.q.json")" \
	"$(jq -cS "$keys" "$T_TMP/phantom.o.json")"
assert_eq "phantom: check's other lines are qemu-img's" \
	"$(grep -v 'snapshot table entr' "$T_TMP/phantom.q.err")" \
	"$(grep -v 'snapshot table entr' "$T_TMP/phantom.o.err")"
# Up to 4,096 entries past the end: qemu-img's lines, word for word; more:
# one line.
for n in 4098 4099; do
	f=$T_TMP/phantom$n.qcow2
	qemu-img create -q -f qcow2 "$f" 64M
	qemu-img snapshot -c a "$f"
	qemu-img snapshot -c b "$f"
	python3 "$TOP/tests/lib/hostile.py" phantom-snapshots "$f" $n
	qemu-img check --output=json "$f" >"$T_TMP/q.json" 2>"$T_TMP/q.err"
	qrc=$?
	"$Q2E" check --output=json "$f" >"$T_TMP/o.json" 2>"$T_TMP/o.err"
	assert_eq "phantom$n: check's exit status is qemu-img's" "$qrc" "$?"
	assert_eq "phantom$n: check's counters are qemu-img's" \
		"$(jq -cS "$keys" "$T_TMP/q.json")" "$(jq -cS "$keys" "$T_TMP/o.json")"
	if [ $n = 4098 ]; then
		assert_eq "phantom4098: check's lines are qemu-img's" \
			"$(cat "$T_TMP/q.err")" "$(cat "$T_TMP/o.err")"
	else
		assert_eq "phantom4099: one line for entries 2 to 4098" \
			"$(echo 'ERROR snapshot table entries 2 to 4098 are incomplete'
			   grep -v '^ERROR snapshot table entry [0-9]* is incomplete$' "$T_TMP/q.err")" \
			"$(cat "$T_TMP/o.err")"
	fi
done
f=$T_TMP/phantom.qcow2
size=$("$Q2E" info "$f" | wc -c)
[ "$size" -lt 65536 ] && pass "phantom: info prints little ($size bytes)" ||
	fail "phantom: info prints little" "$size bytes"

# 256 snapshots, each with its own L1 table of 4 Mi entries (32 MiB), all
# in one hole of a 300 MB sparse file but for their last 4 KiB: each table
# was read whole and kept (out of memory at 6 GiB).  They are read a chunk
# at a time, and a chunk in a hole is not read at all.  dump wrote each
# table's 32 MiB (8.6 GB in 22 s): the tables now share one copy of their
# bytes, whose zeros are a hole.
f=$T_TMP/sparse-l1s.qcow2
qemu-img create -q -f qcow2 "$f" 1M
python3 "$TOP/tests/lib/hostile.py" sparse-snapshot-l1s "$f"
every_command sparse-l1s "$f"
e=$T_TMP/sparse-l1s.elf
assert_eq "sparse-l1s: the 256 tables share one copy of their bytes" 1 \
	"$(readelf -SW "$e" | sed -n 's/^ *\[ *[0-9]*\] \.qcow2\.snapshot\.[0-9]*\.l1 *PROGBITS *[0-9a-f]* \([0-9a-f]*\) .*/\1/p' | sort -u | wc -l)"
blocks=$(du -k "$e" | cut -f1)
[ "$blocks" -lt 16384 ] && pass "sparse-l1s: the zeros of the tables are a hole ($blocks KiB on disk)" ||
	fail "sparse-l1s: the zeros of the tables are a hole" "$blocks KiB on disk"
"$Q2E" dump "$f" -o "$T_TMP/sparse-l1s.2.elf"
assert_status "sparse-l1s: dumped again, the same bytes" 0 \
	cmp "$e" "$T_TMP/sparse-l1s.2.elf"
assert_status "sparse-l1s: through a pipe, the same bytes" 0 \
	cmp "$e" <("$Q2E" dump "$f" -o -)
assert_eq "sparse-l1s: its dump reads like the image" 0 \
	"$("$Q2E" diff --output=json "$f" "$e" | jq .differences)"
limited "sparse-l1s: map of its dump" "$Q2E" map "$e"
limited "sparse-l1s: check -M of its dump" "$Q2E" check -M --output=json "$e"
# Snapshot N's table ends N entries before the first's: its last 512 - N
# entries name one L2 table, in the hole.
assert_eq "sparse-l1s: every snapshot's entries are read" \
	"$((256 * 512 - 255 * 256 / 2))" \
	"$("$Q2E" check -M --output=json "$f" 2>/dev/null | jq '[.viscera."snapshot-table"."l1-list"[]."l2-list" | length] | add')"

# One L2 table named by all 2,048 entries of the active L1, each of its
# 2,048 entries mapping the table's own cluster: qemu-img walks the table
# once per L1 entry, as check must to count as it does, and reports 4
# million refcount overflows, a line each (740 MB; and one refcount
# mismatch).  check kept each line (a gigabyte, 7 s); alike lines in a row
# of one walk are now one, counted, and past the cluster's 131,072nd
# overflow one line counts the rest (23 MB printed), as for one-l2 below.
f=$T_TMP/shared-l2.qcow2
qemu-img create -q -f qcow2 "$f" 1T
cp "$f" "$T_TMP/shared-l2-before.qcow2"
python3 "$TOP/tests/lib/hostile.py" shared-l2 "$f"
every_command shared-l2 "$f" --as-qemu-img
# Its map is 4 million guest clusters, each at the table's cluster: 500 MB
# of JSON, as qemu-img map prints it (in 7 s), streamed in bounded memory.
( ulimit -v 300000; timeout 10 "$Q2E" map --output=json "$f" >/dev/null )
assert_eq "shared-l2: map finishes in 10 s and 300 MB" 0 "$?"
assert_status "shared-l2: map --output=json is qemu-img's, byte for byte" 0 \
	cmp <("$Q2E" map --output=json "$f") <(qemu-img map --output=json "$f")
( ulimit -v 300000; timeout 10 "$Q2E" check "$f" >/dev/null 2>&1 )
assert_eq "shared-l2: check finishes in 10 s and 300 MB, exit 2" 2 "$?"
assert_status "shared-l2: check's lines are qemu-img's, those past the cluster's 131,072nd overflow in one" 0 \
	cmp <("$Q2E" check "$f" 2>&1 >/dev/null) \
	<(qemu-img check "$f" 2>&1 >/dev/null |
	  python3 "$TOP/tests/lib/quiet_overflows.py")
qerrors=$(qemu-img check "$f" 2>/dev/null | sed -n 's/^\([0-9]*\) errors were found.*/\1/p')
assert_eq "shared-l2: check counts qemu-img's errors" "$qerrors" \
	"$("$Q2E" check --output=json "$f" 2>/dev/null | jq .corruptions)"
# Against the image it came from: 4 million L2 entries changed, the one
# table's 2,048 in each of 2,048 L1 entries.  diff kept each (1.1 GB); it
# now keeps the pair of tables once.
limited "shared-l2: diff with the image it came from" \
	"$Q2E" diff "$T_TMP/shared-l2-before.qcow2" "$f"
assert_eq "shared-l2: diff counts the entries of every L1 entry's table" \
	"l2 4194304 entries in 2048 structures" \
	"$("$Q2E" diff "$T_TMP/shared-l2-before.qcow2" "$f" |
	awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"
( ulimit -v 300000; timeout 60 "$Q2E" diff -v "$T_TMP/shared-l2-before.qcow2" \
	"$f" ) | tail -n 2 >"$T_TMP/.tail"
assert_eq "shared-l2: diff -v lists every guest range, to the last" \
	"start 0xffe0000000 length 0x8000000" "$(echo $(cat "$T_TMP/.tail"))"
# 1,024 snapshots whose L1 tables each overlap the next, in two files of
# 630 KB: diff compared each pair of L1 tables, a million pairs of L2
# tables (978 MB, 15.8 GB of JSON).  A table that overlaps another is
# not compared entry by entry (QEMU never writes one; check says so).
for s in 1 2; do
	qemu-img create -q -f qcow2 -o cluster_size=512 "$T_TMP/overlap-$s.qcow2" 64M
	python3 "$TOP/tests/lib/hostile.py" overlapping-snapshot-l1s "$T_TMP/overlap-$s.qcow2" "$s"
done
limited "overlapping-snapshot-l1s: diff" \
	"$Q2E" diff "$T_TMP/overlap-1.qcow2" "$T_TMP/overlap-2.qcow2"
assert_eq "overlapping-snapshot-l1s: no snapshot's L2 tables compared" "" \
	"$("$Q2E" diff "$T_TMP/overlap-1.qcow2" "$T_TMP/overlap-2.qcow2" | awk '$1 == "snapshot-l2"')"

# 4,096 snapshots whose L1 tables of 4 Mi entries start 4 KiB apart, in
# a hole but for the snapshot table inside them all: the walk recorded
# each table's entries there (100 million owners: 10 s and 1.5 GB for
# info).  Each byte of the tables is now walked once.  check counts each
# table's references, as qemu-img does: 1.8 million of their entries have
# flags but no offset, and each made it read the file's first cluster as
# an L2 table and walk its 8,192 entries (15 s).  That cluster is now read
# once and walked over the entries that are not zero.
o=$T_TMP/overlapping-sparse-l1s.qcow2
qemu-img create -q -f qcow2 "$o" 64M
python3 "$TOP/tests/lib/hostile.py" overlapping-sparse-l1s "$o"
each_limited overlapping-sparse-l1s "$o" "info" "map --output=json" \
	"dump -o $T_TMP/overlapping-sparse-l1s.elf" "check" \
	"check --output=json"

# check -M lists the L2 tables that each snapshot's L1 table names: it kept
# every one until it wrote them (4,096 snapshots of the image above: 45 s
# and 3.3 GB for 6.4 GB of JSON).  It reads each table again as it writes
# its list, in the memory plain check takes.  512 snapshots: a million
# references, 156 MB of JSON (it took 71 MB, plain check 23).
o=$T_TMP/overlapping-sparse-512.qcow2
qemu-img create -q -f qcow2 "$o" 64M
python3 "$TOP/tests/lib/hostile.py" overlapping-sparse-l1s "$o" 512
want=$(python3 - "$o" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
n, off = struct.unpack(">IQ", d[60:72])
refs = 0
for _ in range(n):  # each table's entries that name an L2 table
    l1, size = struct.unpack(">QI", d[off:off + 12])
    idl, namel, extra = struct.unpack(">HH20xI", d[off + 12:off + 40])
    t = d[l1:l1 + size * 8]
    refs += sum(1 for (e,) in struct.iter_unpack(">Q", t[:len(t) // 8 * 8])
                if e & 0x00fffffffffffe00)
    off += (40 + extra + idl + namel + 7) & ~7
print(refs)
PY
)
if [ -x /usr/bin/time ] && ! readelf -sW "$Q2E" 2>/dev/null | grep -q __asan_init; then
	timeout 60 /usr/bin/time -o "$T_TMP/os512.rss" -f %M \
		"$Q2E" check "$o" >/dev/null 2>&1
	plain=$(tail -n 1 "$T_TMP/os512.rss")
	rc=0
	timeout 60 /usr/bin/time -o "$T_TMP/os512-m.rss" -f %M \
		"$Q2E" check -M --output=json "$o" 2>/dev/null |
		grep -c '^ \{28\}"size": 65536$' >"$T_TMP/os512.n" || rc=$?
	assert_eq "overlapping-sparse-l1s: check -M lists each snapshot's L2 tables" \
		"0 $want" "$rc $(cat "$T_TMP/os512.n")"
	rss=$(tail -n 1 "$T_TMP/os512-m.rss")
	[ "${rss:-999999}" -lt $((${plain:-0} + 8192)) ] &&
		pass "overlapping-sparse-l1s: check -M in plain check's memory ($rss KiB, $plain)" ||
		fail "overlapping-sparse-l1s: check -M in plain check's memory" \
			"peak RSS ${rss:-?} KiB, plain check ${plain:-?} KiB"
else
	skip "overlapping-sparse-l1s: check -M's memory (needs GNU time, a build without ASan)"
fi

# 128 snapshots whose L1 tables of 16,384 entries start one entry apart,
# every entry naming one L2 table: check -M --output=json lists each
# snapshot's 16,384 references (300 MB of JSON), as QEMU's proposal did,
# and kept 24 bytes for each until it wrote them (128 snapshots of 65,536
# entries: 300 MB).  It now lists them as it reads each L1 table again.
o=$T_TMP/overlapping-one-l2.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$o" 32P
python3 "$TOP/tests/lib/hostile.py" overlapping-one-l2 "$o"
if [ -x /usr/bin/time ] && ! readelf -sW "$Q2E" 2>/dev/null | grep -q __asan_init; then
	rc=0
	timeout 30 /usr/bin/time -o "$T_TMP/overlapping-one-l2.rss" -f %M \
		"$Q2E" check -M --output=json "$o" 2>/dev/null |
		grep -c '^ \{28\}"size": 2097152$' >"$T_TMP/overlapping-one-l2.n" ||
		rc=$?
	assert_eq "overlapping-one-l2: check -M --output=json lists every reference" \
		"0 $((128 * 16384))" "$rc $(cat "$T_TMP/overlapping-one-l2.n")"
	rss=$(tail -n 1 "$T_TMP/overlapping-one-l2.rss")
	[ "${rss:-999999}" -lt 32768 ] &&
		pass "overlapping-one-l2: check -M keeps the references in 32 MB ($rss KiB)" ||
		fail "overlapping-one-l2: check -M keeps the references in 32 MB" "peak RSS ${rss:-?} KiB"
else
	skip "overlapping-one-l2: check -M's memory (needs GNU time, a build without ASan)"
fi

# Against an image of 32 KiB clusters the tables cannot pair: diff walks
# both images range by range, and kept each of the 4 million changes
# (1.1 GB); it now walks them again as it renders.
g=$T_TMP/other-clusters.qcow2
qemu-img create -q -f qcow2 -o cluster_size=32k "$g" 1T
limited "shared-l2: diff with an image of 32 KiB clusters" "$Q2E" diff "$g" "$f"
assert_eq "shared-l2: diff with 32 KiB clusters counts every entry" \
	"l2 4194304 entries in 2048 structures" \
	"$("$Q2E" diff "$g" "$f" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"
assert_eq "shared-l2: diff -v with 32 KiB clusters lists every change" 4194304 \
	"$( ( ulimit -v 300000; timeout 60 "$Q2E" diff -v "$g" "$f" ) |
	grep -c '^ *name *l2_table_[0-9]*\[')"
assert_eq "shared-l2: check -M lists 64 of the shared table's 2,048 owners" \
	"2048 64" "$("$Q2E" check -M --output=json "$f" 2>/dev/null |
	jq -r '[.findings[].structures[] | select(.name == "l2_table_0")][0] | "\(."owner-count") \(.owners | length)"')"

# Two 8.5 MB images whose L1 tables pair each of 500 L2 tables with each
# of 499 others: 249,001 pairs that differ.  diff kept both tables for
# each pair (330 MB); it now keeps each table once per image.
qemu-img create -q -f qcow2 -o cluster_size=512 "$T_TMP/crossed-a.qcow2" 32G
cp "$T_TMP/crossed-a.qcow2" "$T_TMP/crossed-b.qcow2"
python3 "$TOP/tests/lib/hostile.py" crossed-l2 "$T_TMP/crossed-a.qcow2" 500
python3 "$TOP/tests/lib/hostile.py" crossed-l2 "$T_TMP/crossed-b.qcow2" 499
limited "crossed-l2: diff" "$Q2E" diff "$T_TMP/crossed-a.qcow2" "$T_TMP/crossed-b.qcow2"
assert_eq "crossed-l2: diff counts the changed entry of each pair" \
	"l2 249001 entries in 249001 structures" \
	"$("$Q2E" diff "$T_TMP/crossed-a.qcow2" "$T_TMP/crossed-b.qcow2" |
	awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"

# A sparse file whose refcount table names one block 512 times, with
# every other refcount 1: qemu-img check prints 8 million "Leaked cluster"
# lines (350 MB) from 16 KB on disk.  check kept each line until it had
# them all (850 MB); it now makes them as it writes them.
f=$T_TMP/leaky-sparse.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=1 "$f" 1G
python3 "$TOP/tests/lib/hostile.py" leaky-sparse "$f"
( ulimit -v 300000; timeout 10 "$Q2E" check "$f" >/dev/null 2>&1 )
assert_eq "leaky-sparse: check finishes in 10 s and 300 MB, exit 2" 2 "$?"
assert_status "leaky-sparse: check's lines are qemu-img's, byte for byte" 0 \
	cmp <("$Q2E" check "$f" 2>&1 >/dev/null) <(qemu-img check "$f" 2>&1 >/dev/null)
assert_eq "leaky-sparse: check counts qemu-img's leaks" \
	"$(qemu-img check --output=json "$f" 2>/dev/null | jq '."leaks"')" \
	"$("$Q2E" check --output=json "$f" 2>/dev/null | jq '."leaks"')"
limited "leaky-sparse: check -M --output=json" "$Q2E" check -M --output=json "$f"
# Against the same file with every refcount at its highest (BITS wide):
# COUNT refcounts changed, LAST the end of -v's list of ranges.
leaky_diff() {
	local what=$1 bits=$2 count=$3 last=$4 g=$T_TMP/leaky-sparse-$2.qcow2

	qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=$bits "$g" 1G
	python3 "$TOP/tests/lib/hostile.py" leaky-sparse "$g" 255
	limited "leaky-sparse: diff with $what" "$Q2E" diff "$g" "$f"
	assert_eq "leaky-sparse: diff with $what counts every refcount" \
		"refcount-blocks $count entries in 512 structures" \
		"$("$Q2E" diff "$g" "$f" | awk '$1 == "refcount-blocks" && NF > 2 { $1 = $1; print }')"
	( ulimit -v 300000; timeout 60 "$Q2E" diff -v "$g" "$f" ) | tail -n 2 >"$T_TMP/.tail"
	assert_eq "leaky-sparse: diff -v with $what lists every range, to the last" \
		"$last" "$(echo $(cat "$T_TMP/.tail"))"
}
# 1-bit, all ones: 8 million refcounts fell.  diff kept each change (1.9
# GB); it now keeps the two blocks.
leaky_diff "all ones" 1 8388608 "start 0xffffff000 length 0x1000"
# 2-bit, all threes: another width, so no blocks pair, and diff walks both
# files range by range: it kept each of the 12 million changes (2.7 GB, 9
# s).  The last range is the one that fell, over the whole 32 GiB file.
leaky_diff "2-bit refcounts" 2 12582912 "start 0x0 length 0x800000000"

# 131,072 pairs of L2 tables whose offsets differ only in their high bits:
# the pairs diff keeps fell in one slot of its hash table (22 s).
f=$T_TMP/far-l1.qcow2
g=$T_TMP/one-l2.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" 4G
cp "$f" "$g"
qemu-io -c "write -P 7 0 512" "$g" >/dev/null
python3 "$TOP/tests/lib/hostile.py" far-l1 "$f"
python3 "$TOP/tests/lib/hostile.py" one-l2 "$g"
limited "far-l1: diff with one-l2" "$Q2E" diff "$f" "$g"
assert_eq "far-l1: diff counts a change in each L1 entry's table" \
	"l2 131072 entries in 131072 structures" \
	"$("$Q2E" diff "$f" "$g" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"

# 65,536 L1 entries of 2 MiB clusters, each naming its own table past the
# end of the file: diff cleared, read and compared 2 MiB for each (24 s;
# 2^20 entries took 7 minutes), and against 1 MiB clusters its walk
# cleared and scanned each (14 s).  A table the file does not hold reads
# as zeros, once.
f=$T_TMP/far-l1-2m.qcow2
g=$T_TMP/far-l1-2m-clean.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$g" 32P
qemu-img create -q -f qcow2 -o cluster_size=1M "$T_TMP/far-l1-1m.qcow2" 32P
cp "$g" "$f"
python3 "$TOP/tests/lib/hostile.py" far-l1 "$f"
limited "far-l1, 2 MiB clusters: diff with the clean image" "$Q2E" diff "$g" "$f"
limited "far-l1, 2 MiB clusters: diff with an image of 1 MiB clusters" \
	"$Q2E" diff "$T_TMP/far-l1-1m.qcow2" "$f"
limited "far-l1, 2 MiB clusters: map --output=json" "$Q2E" map --output=json "$f"
# check cleared and scanned each of those tables (24 s): it has nothing to
# count, as in qemu-img, which the 4,096 entries of a 2 PiB image compare.
limited "far-l1, 2 MiB clusters: check" "$Q2E" check "$f"
# Each of those tables was a problem of its own, and check -M's JSON named
# each (52.8 MB): tables of a kind in a row that are wrong alike are one.
limited "far-l1, 2 MiB clusters: check -M --output=json" "$Q2E" check -M --output=json "$f"
one_problem "far-l1, 2 MiB clusters: 65,536 tables past the end" "$f" l2_table \
	"l2_table_0 to l2_table_65535: 65536 entries name L2 tables past the end of the file"
qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/far-l1-2p.qcow2" 2P
python3 "$TOP/tests/lib/hostile.py" far-l1 "$T_TMP/far-l1-2p.qcow2"
like_qemu "far-l1, 2 MiB clusters, 4,096 entries" "$T_TMP/far-l1-2p.qcow2" --check-only

# 4,096 L1 entries (2 MiB clusters) naming one table whose entries map
# data and read as zeros in turn, against an image of 1 MiB clusters:
# diff walked both by ranges, the table once for each entry (512 entries
# took 6.9 to 9.4 s; 4,096 past a minute).  A window of an L1 entry whose
# tables came before is given the digest of the first one's steps.  Each
# entry's table is 262,144 changes; each of the other image's tables,
# a quarter of one, 131,072.
f=$T_TMP/alternating.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$f" 2P
qemu-img create -q -f qcow2 -o cluster_size=1M "$T_TMP/alternating-1m.qcow2" 2P
python3 "$TOP/tests/lib/hostile.py" alternating-l2 "$f" 4096
limited "alternating-l2, 2 MiB clusters: diff from an image of 1 MiB clusters" \
	"$Q2E" diff "$T_TMP/alternating-1m.qcow2" "$f"
limited "alternating-l2, 2 MiB clusters: diff to an image of 1 MiB clusters" \
	"$Q2E" diff "$f" "$T_TMP/alternating-1m.qcow2"
assert_eq "alternating-l2: each entry's table counted whole, both ways" \
	"l2 1073741824 entries in 4096 structures;l2 2147483648 entries in 16384 structures" \
	"$(for p in "$T_TMP/alternating-1m.qcow2 $f" "$f $T_TMP/alternating-1m.qcow2"; do
		# shellcheck disable=SC2086
		"$Q2E" diff $p | awk '$1 == "l2" && NF > 2 { $1 = $1; print }'
	done | paste -sd';')"

# The same walk between a 2 PiB image of 2 MiB clusters whose 4,096 L1
# entries name one table with one data entry, and a 1 GiB image of
# 512-byte clusters: the steps over each table's unallocated entries
# were cut at each 32 KiB window, 16 million steps a table (a fix's
# first form: past a minute); those steps end where the table changes.
f=$T_TMP/lone-data.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$f" 2P
qemu-img create -q -f qcow2 -o cluster_size=512 "$T_TMP/lone-data-512.qcow2" 1G
python3 "$TOP/tests/lib/hostile.py" lone-data-l2 "$f"
limited "lone-data-l2, 2 MiB clusters: diff to an image of 512-byte clusters" \
	"$Q2E" diff "$f" "$T_TMP/lone-data-512.qcow2"
assert_eq "lone-data-l2: each table's data cluster is 64 windows of 512-byte clusters" \
	"l2 16777216 entries in 262144 structures" \
	"$("$Q2E" diff "$f" "$T_TMP/lone-data-512.qcow2" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"

# QEMU's largest L1 table (4,194,304 entries, a 32 MB file of 512-byte
# clusters), each entry naming its own table past the end of the file,
# most with reserved bits set: each table was a region (info, map and dump
# 360 MB, diff 1.6 GB), and each entry two problems (info printed 1 GB).
# Such a table is no region now, and each kind of problem is one.  check
# kept qemu-img's 8 million lines to write them in order (1.4 GB): past
# the 65,536th entry each kind is one line.
f=$T_TMP/far-l1-4m.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" 128G
cp "$f" "$T_TMP/far-l1-4m-clean.qcow2"
python3 "$TOP/tests/lib/hostile.py" far-l1 "$f"
each_limited "far-l1, 4 million entries" "$f" "info" "info --output=json" \
	"map --output=json" "dump -o $T_TMP/far-l1-4m.elf" \
	"diff $T_TMP/far-l1-4m-clean.qcow2" "check" "check --output=json"
assert_eq "far-l1, 4 million entries: no L2 table the file does not hold is a region; one problem of each kind" \
	"0 1 1" \
	"$("$Q2E" info --output=json "$f" | jq -r '[([.regions[] | select(.kind == "L2 table")] | length), ([.problems[] | select(.structure == "l1_table")] | length), ([.problems[] | select(.structure | startswith("l2_table"))] | length)] | join(" ")')"

# 70,000 entries naming tables past the end: qemu-img's line for each of
# the first 65,536, then one line for the rest, counted as qemu-img counts
# them; the expected lines are made from qemu-img's (far-l1 names table
# (I + 1) << 39 in entry I).
f=$T_TMP/far-l1-70k.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" $((70000 * 32768))
python3 "$TOP/tests/lib/hostile.py" far-l1 "$f"
assert_status "far-l1, 70,000 entries: check's lines are qemu-img's, those past the 65,536th entry in one" 0 \
	cmp <("$Q2E" check "$f" 2>&1 >/dev/null; echo "exit $?") \
	<(qemu-img check "$f" 2>&1 >/dev/null | python3 -c '
import re, sys
past = re.compile(r"ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x([0-9a-f]+) size 0x200$")
lines, quiet, n = [], [], 0
for line in sys.stdin:
    m = past.match(line)
    n += bool(m)
    if m and n > 65536:
        if not quiet:
            lines.append(None)
        quiet.append((int(m.group(1), 16) >> 39) - 1)
    else:
        lines.append(line)
for line in lines:
    sys.stdout.write(line or "ERROR %d more L1 entries name L2 tables exceeding the end of the file by one cluster or more, the first at index %d and the last at %d (qemu-img prints a line for each)\n" % (len(quiet), quiet[0], quiet[-1]))
'; echo "exit ${PIPESTATUS[0]}")
assert_status "far-l1, 70,000 entries: check's counts are qemu-img's" 0 \
	cmp <("$Q2E" check "$f" 2>/dev/null | head -4) \
	<(qemu-img check "$f" 2>/dev/null)

# 16,384 L2 tables of 2 MiB at each 512 bytes of a 6.4 MB file, over its
# L1 table: each entry of each is wrong, a finding each (24 GB; qemu-img
# counts 252 million errors and prints 29 GB of lines, in 290 s).  A
# table's alike findings are one; past 128 MiB of them check's lines are
# counted, not kept.  Its time follows the 4 billion entries it walks, as
# qemu-img's does; the tables, which overlap, are read together (the
# kernel's copy of each table's 2 MiB was a quarter of it).
f=$T_TMP/l2-windows.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$f" 8P
python3 "$TOP/tests/lib/hostile.py" l2-windows "$f"
rc=0
( ulimit -v 300000; timeout 120 "$Q2E" check "$f" ) >"$T_TMP/l2w.out" \
	2>"$T_TMP/l2w.err" || rc=$?
assert_eq "l2-windows: check runs in 300 MB and finds the corruptions (status 2)" \
	2 "$rc"
assert_eq "l2-windows: a table's alike findings are one, and the lines left out are said" \
	"yes yes" \
	"$([ "$(grep -c 'entries, the first: ' "$T_TMP/l2w.out")" -gt 1000 ] && [ "$(wc -l <"$T_TMP/l2w.out")" -lt 100000 ] && echo yes) $(grep -q '^qcow2elf: qemu-img prints more lines than check keeps' "$T_TMP/l2w.err" && echo yes)"

# Tables that overlap are read together, 8 MiB at a time (a quarter of
# the check above was the kernel copying each table's 2 MiB): 2,048 tables
# of 64 KiB at each 32 KiB of a 64 MiB file, the last past its end.
f=$T_TMP/l2-windows-64k.qcow2
qemu-img create -q -f qcow2 "$f" 1T
python3 "$TOP/tests/lib/hostile.py" l2-windows "$f" 32768
truncate -s $((64 * 1024 * 1024 + 32768)) "$f"
like_qemu "l2-windows, 2,048 tables 32 KiB apart" "$f" --check-only
# Two L1 entries whose tables overlap, the first wholly past nothing but
# misaligned below the L1 table: the COPIED pass read the pair together
# through a buffer the count had never made (a crash).
f=$T_TMP/l2-pair.qcow2
qemu-img create -q -f qcow2 "$f" 1G
python3 - "$f" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0x30000)
    f.write(struct.pack(">QQ", 0x2fe00, 0x8000000000030200))
PY
like_qemu "two overlapping tables, the second COPIED" "$f" --check-only

# The same 65,536 entries naming one table of zeros inside the file: check
# walked it for each (17 s), map scanned it for each (13 s), and diff read
# and compared it for each (30 s, with itself 63 s); with one entry of
# that table changed, diff compared the whole pair for each.
f=$T_TMP/zero-l2.qcow2
cp "$g" "$f"
cp "$g" "$T_TMP/zero-l2-1.qcow2"
python3 "$TOP/tests/lib/hostile.py" zero-l2 "$f"
python3 "$TOP/tests/lib/hostile.py" zero-l2 "$T_TMP/zero-l2-1.qcow2" 1
each_limited zero-l2 "$f" "check" "check -M --output=json" "map --output=json" \
	"diff $g" "diff $f" "diff $T_TMP/far-l1-1m.qcow2" \
	"diff -v $T_TMP/zero-l2-1.qcow2"
assert_eq "zero-l2: diff with a changed entry counts it for each L1 entry" \
	"l2 65536 entries in 65536 structures" \
	"$("$Q2E" diff "$f" "$T_TMP/zero-l2-1.qcow2" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"
qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/zero-l2-2p.qcow2" 2P
python3 "$TOP/tests/lib/hostile.py" zero-l2 "$T_TMP/zero-l2-2p.qcow2"
like_qemu "zero-l2, 4,096 entries" "$T_TMP/zero-l2-2p.qcow2"

# The same 65,536 entries naming their own tables in a hole that the file
# ends with (128 GiB of zeros, 6.6 MB on disk): check, map, diff and dump
# read each 2 MiB (over 30 s; dump 100 s).  They now ask the file system
# first, for tables of 1 MiB or more, and dump leaves them as a hole.
f=$T_TMP/hole-l2.qcow2
cp "$g" "$f"
python3 "$TOP/tests/lib/hostile.py" hole-l2 "$f"
each_limited hole-l2 "$f" "check" "map --output=json" "diff $g" "diff $f" \
	"dump -o $T_TMP/hole-l2.elf"
# With a name to redact (the backing file's), dump --redact read them all
# still (over 20 s): a megabyte that no placeholder is written into is
# left as a hole all the same.
f=$T_TMP/hole-l2-backed.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M -b "$g" -F qcow2 "$f" 32P
python3 "$TOP/tests/lib/hostile.py" hole-l2 "$f"
limited "hole-l2 with a backing file: dump --redact" \
	"$Q2E" dump --redact "$f" -o "$T_TMP/hole-l2-redacted.elf"
assert_status "hole-l2 with a backing file: the redacted dump holds no file name" 1 \
	grep -q far-l1-2m-clean "$T_TMP/hole-l2-redacted.elf"
qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/hole-l2-64.qcow2" 32T
python3 "$TOP/tests/lib/hostile.py" hole-l2 "$T_TMP/hole-l2-64.qcow2"
like_qemu "hole-l2, 64 entries" "$T_TMP/hole-l2-64.qcow2"
assert_eq "far-l1, 2 MiB clusters: diff counts each L1 entry, and no L2 entry" \
	"l1 65536 entries in 1 structure|" \
	"$("$Q2E" diff "$g" "$f" | awk '$1 == "l1" && NF > 2 { $1 = $1; printf "%s", $0 } $1 == "l2" && NF > 2 { print "l2:", $0 } END { print "|" }')"

# Extended L2 entries whose tables lie past the end of the file (zeros):
# map went a 64 KiB subcluster at a time, 4 billion lookups for 256 TiB
# (a fuzz finding, timeout-map-extended-l2-subclusters).
f=$T_TMP/far-l1-extended.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on "$f" 256T
python3 "$TOP/tests/lib/hostile.py" far-l1 "$f"
limited "far-l1, extended L2: map --output=json" "$Q2E" map --output=json "$f"
assert_status "far-l1, extended L2: map --output=json is qemu-img's" 0 \
	cmp <("$Q2E" map --output=json "$f" 2>/dev/null) \
	<(qemu-img map --output=json "$f")

# 65,536 active L1 entries naming one L2 table of 262,144 entries that are
# all 0x1 (zero, no offset), 2 MiB clusters, 10 MB on disk: qemu-img walks
# the table for each and prints nothing (96 s), and so did check (more
# than a minute).  A walk after the first is recorded and stands for the
# rest (src/check/walk_replay.c).  With 64 of them, check's lines and
# numbers are qemu-img's.
f=$T_TMP/silent-l2.qcow2
with_64 silent-l2
each_limited silent-l2 "$f" check "check --output=json" \
	"check -M --output=json" info "map --output=json" \
	"dump -o $T_TMP/silent-l2.elf"
like_qemu "silent-l2, 64 entries" "$T_TMP/silent-l2-64.qcow2" --check-only
same_numbers "silent-l2, 64 entries" "$T_TMP/silent-l2-64.qcow2"

# 16,384 active L1 entries with flags but no offset, for each of which
# qemu-img reads the file's first cluster (2 MiB, 0x1 entries past the
# header) as an L2 table: check walked its 253,952 entries for each (25
# s); the first walk now stands for the others.  With 64, its lines and
# numbers are qemu-img's.
f=$T_TMP/silent-cluster0.qcow2
with_64 silent-cluster0
each_limited silent-cluster0 "$f" check "check --output=json" \
	"check -M --output=json"
like_qemu "silent-cluster0, 64 entries" "$T_TMP/silent-cluster0-64.qcow2" \
	--check-only
same_numbers "silent-cluster0, 64 entries" "$T_TMP/silent-cluster0-64.qcow2"

# The same with three of cluster 0's entries naming clusters 1 to 3 of the
# file: after 21,843 walks at once (walk_replay.c), the counts overflow,
# and each walk after that was made in full, over the 253,952 entries of
# 0x1 (100 s; qemu-img check more than a minute), or 100,000 of them with
# COPIED too (40 s), which do nothing.  A walk made again now passes over
# them (l2_nonzero_spans()).  With 1-bit
# refcounts, 64 entries overflow at the second walk: check's lines and
# numbers are qemu-img's.
f=$T_TMP/counted-cluster0.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$f" 32P
python3 "$TOP/tests/lib/hostile.py" counted-cluster0 "$f"
rc=0
( ulimit -v 300000; timeout 10 "$Q2E" check --output=json "$f" 2>/dev/null ) \
	>"$T_TMP/counted-cluster0.json" || rc=$?
assert_eq "counted-cluster0: check --output=json finishes in 10 s and 300 MB, exit 2" \
	2 "$rc"
qemu-img create -q -f qcow2 -o cluster_size=2M,refcount_bits=1 \
	"$T_TMP/counted-cluster0-64.qcow2" 32P
python3 "$TOP/tests/lib/hostile.py" counted-cluster0 "$T_TMP/counted-cluster0-64.qcow2" 64
like_qemu "counted-cluster0, 1-bit refcounts, 64 entries" \
	"$T_TMP/counted-cluster0-64.qcow2" --check-only
same_numbers "counted-cluster0, 1-bit refcounts, 64 entries" \
	"$T_TMP/counted-cluster0-64.qcow2"

# map of L1 entries that name one L2 table, 2 MiB clusters: 4,096 naming
# a table of compressed clusters, and all 131,072 of an image with
# extended L2 entries naming a table that gives every subcluster the zero
# flag.  qemu-img map prints two ranges for each after asking a question
# for each cluster (the first) or each gigabyte (the second), and so did
# map (33 s and 13 s).  A table's run of compressed clusters is now found
# once, and the one answer to a question of the whole run stands for its
# questions of a gigabyte, which map merges (src/view/map.c).  With 4 and
# 16 L1 entries, map is qemu-img's.
qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/compressed-l2.qcow2" 32P
qemu-img create -q -f qcow2 -o cluster_size=2M "$T_TMP/compressed-l2-4.qcow2" 2T
python3 "$TOP/tests/lib/hostile.py" compressed-l2 "$T_TMP/compressed-l2-4.qcow2" 4
qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on \
	"$T_TMP/zero-subclusters.qcow2" 32P
qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on \
	"$T_TMP/zero-subclusters-16.qcow2" 4T
for g in compressed-l2 zero-subclusters; do
	python3 "$TOP/tests/lib/hostile.py" $g "$T_TMP/$g.qcow2"
	limited "$g: map --output=json" "$Q2E" map --output=json "$T_TMP/$g.qcow2"
done
python3 "$TOP/tests/lib/hostile.py" zero-subclusters "$T_TMP/zero-subclusters-16.qcow2"
for f in "$T_TMP/compressed-l2-4.qcow2" "$T_TMP/zero-subclusters-16.qcow2"; do
	assert_status "${f##*/}: map --output=json is qemu-img's" 0 \
		cmp <("$Q2E" map --output=json "$f") <(qemu-img map --output=json "$f")
done

# check of compressed-l2: past the first walk, each reference of a walk
# overflows the cluster's count, and once the lines kept are used up
# (131,072) the overflows are only counted; such a walk was not recorded,
# and each of the 4,096 was made again (35 s).  One whose overflows are
# only counted now stands for the ones after it.  With 4 L1 entries,
# whose last two it stands for, check's numbers are qemu-img's.
limited "compressed-l2: check" "$Q2E" check "$T_TMP/compressed-l2.qcow2"
assert_eq "compressed-l2: check counts each overflow past the lines it prints" \
	"1073545218" \
	"$("$Q2E" check "$T_TMP/compressed-l2.qcow2" 2>&1 >/dev/null |
	   sed -n 's/^ERROR \([0-9]*\) more refcount overflows of cluster offset=0x200000,.*/\1/p')"
same_numbers "compressed-l2, 4 L1 entries" "$T_TMP/compressed-l2-4.qcow2"

# One L2 table that 2,048 active L1 entries name, whose 8,192 entries map
# distinct clusters past the end of the file: qemu-img check prints each
# walk's 8,192 lines again, then as many for each L1 entry in its check of
# the COPIED flags, 33 million lines (3.3 GB, 46 s) from a 320 KB file.
# check kept each line (5.3 GB, 44 s); a walk whose lines are an earlier
# walk's is now one record, and its lines are written again from that
# walk's.  64 entries make a million lines, compared with qemu-img's.
f=$T_TMP/distant-data.qcow2
qemu-img create -q -f qcow2 "$f" 1T
cp "$f" "$T_TMP/distant-data-64.qcow2"
python3 "$TOP/tests/lib/hostile.py" distant-data "$f"
python3 "$TOP/tests/lib/hostile.py" distant-data "$T_TMP/distant-data-64.qcow2" 64
# (every_command keeps standard error, here gigabytes of qemu-img's lines)
limited "distant-data: info --output=json" "$Q2E" info --output=json "$f"
limited "distant-data: dump" "$Q2E" dump "$f" -o "$T_TMP/distant-data.elf"
limited "distant-data: diff with itself" "$Q2E" diff "$f" "$f"
limited "distant-data: diff with its dump" "$Q2E" diff "$f" "$T_TMP/distant-data.elf"
for input in "$f" "$T_TMP/distant-data.elf"; do
	for form in "" "-M --output=json"; do
		# shellcheck disable=SC2086 # FORM is options
		( ulimit -v 300000; timeout 10 "$Q2E" check $form "$input" 2>/dev/null ) |
			head -c 52428800 | wc -c >"$T_TMP/.bytes"
		rc=${PIPESTATUS[0]}
		assert_eq "distant-data: check $form of ${input##*/} finishes in 10 s and 300 MB, exit 2, under 50 MB" \
			"2 yes" "$rc $([ "$(cat "$T_TMP/.bytes")" -lt 52428800 ] && echo yes)"
	done
done
assert_eq "distant-data: check prints every walk's lines" \
	"$((2 * 2048 * 8192 + 2048 + 1))" \
	"$( ( ulimit -v 300000; timeout 60 "$Q2E" check "$f" 2>&1 >/dev/null ) | wc -l)"
assert_eq "distant-data: check counts each as an error" \
	"$((2 * 2048 * 8192 + 2048 + 1))" \
	"$("$Q2E" check --output=json "$f" 2>/dev/null | jq .corruptions)"
assert_status "distant-data, 64 entries: check's lines are qemu-img's, byte for byte" 0 \
	cmp <("$Q2E" check "$T_TMP/distant-data-64.qcow2" 2>&1 >/dev/null) \
	<(qemu-img check "$T_TMP/distant-data-64.qcow2" 2>&1 >/dev/null)

# The same with every other entry mapping the active L1 table's cluster:
# its 16-bit refcount overflows in the 17th walk, and each walk's lines
# from then on are the 17th's, not the first's (kept each: 3.7 GB).
f=$T_TMP/distant-overflow.qcow2
qemu-img create -q -f qcow2 "$f" 1T
cp "$f" "$T_TMP/distant-overflow-64.qcow2"
python3 "$TOP/tests/lib/hostile.py" distant-overflow "$f"
python3 "$TOP/tests/lib/hostile.py" distant-overflow "$T_TMP/distant-overflow-64.qcow2" 64
( ulimit -v 300000; timeout 10 "$Q2E" check "$f" >/dev/null 2>&1 )
assert_eq "distant-overflow: check finishes in 10 s and 300 MB, exit 2" 2 "$?"
assert_status "distant-overflow, 64 entries: check's lines are qemu-img's, those past the cluster's 131,072nd overflow in one" 0 \
	cmp <("$Q2E" check "$T_TMP/distant-overflow-64.qcow2" 2>&1 >/dev/null) \
	<(qemu-img check "$T_TMP/distant-overflow-64.qcow2" 2>&1 >/dev/null |
	  python3 "$TOP/tests/lib/quiet_overflows.py")

# One L2 table named by every entry of an L1 table of 512-byte clusters
# with 1-bit refcounts: each entry after the first overflows the table's
# refcount, and each walk of the table its data cluster's; qemu-img
# prints two lines for each (16 million for QEMU's largest L1 table, 4
# million entries, which check kept: 17 s and 2.2 GB).  A cluster's lines
# are kept for 131,072 overflows at most; one line says how many more
# qemu-img prints.  With 1 million entries.
f=$T_TMP/one-l2-1m.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 "$f" 32G
qemu-io -c "write 0 512" "$f" >/dev/null
python3 "$TOP/tests/lib/hostile.py" one-l2 "$f"
each_limited "one-l2 overflows, 1 million entries" "$f" "check" \
	"check --output=json"
assert_eq "one-l2 overflows, 1 million entries: check counts each overflow, as qemu-img" \
	"2097150 2" "$("$Q2E" check --output=json "$f" 2>/dev/null | jq .corruptions) $(
	"$Q2E" check "$f" >/dev/null 2>&1; echo $?)"
assert_eq "one-l2 overflows, 1 million entries: check keeps 131,072 overflows of each cluster, and a line for the rest" \
	"524288 2" "$("$Q2E" check "$f" 2>&1 >/dev/null | awk '
	/^(ERROR: overflow cluster|Use qemu-img amend)/ { n++ }
	/^ERROR 917503 more refcount overflows of cluster offset=0x80(0e|10)00, the first here/ { m++ }
	END { print n, m }')"

# 4 million L1 entries naming one L2 table in a sparse file of 2 GiB: one
# record, as the walk makes it, not 4 million expected (256 MB of room
# made before the walk, after which the owners found none; a review).
f=$T_TMP/one-l2-2g.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 "$f" 128G
qemu-io -c "write -P 7 0 512" "$f" >/dev/null
python3 "$TOP/tests/lib/hostile.py" one-l2 "$f"
truncate -s 2G "$f"
each_limited "one-l2 in a sparse 2 GiB file" "$f" info check "dump -o /dev/null"
assert_status "one-l2 in a sparse 2 GiB file: info within 300 MB exits 0" 0 \
	bash -c 'ulimit -v 300000; "$1" info "$2" >/dev/null' sh "$Q2E" "$f"

# 262,144 entries: qemu-img's lines, the first 131,072 overflows of each
# cluster, then one line for each cluster's others, made from qemu-img's.
f=$T_TMP/one-l2-256k.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 "$f" 8G
qemu-io -c "write 0 512" "$f" >/dev/null
python3 "$TOP/tests/lib/hostile.py" one-l2 "$f"
assert_status "one-l2 overflows, 262,144 entries: check's lines are qemu-img's, those past a cluster's 131,072nd overflow in one" 0 \
	cmp <("$Q2E" check "$f" 2>&1 >/dev/null; echo "exit $?") \
	<(qemu-img check "$f" 2>&1 >/dev/null |
	  python3 "$TOP/tests/lib/quiet_overflows.py"; echo "exit ${PIPESTATUS[0]}")
assert_status "one-l2 overflows, 262,144 entries: check's counts are qemu-img's" 0 \
	cmp <("$Q2E" check "$f" 2>/dev/null | head -5) \
	<(qemu-img check "$f" 2>/dev/null)
# QEMU's largest L1 table, 4 million entries: check takes 0.9 s.  Opening
# the image took 360 MB, a record for each of the table's 4 million owners;
# the walk records a run of owners now (100 MB, the owners' array), and
# diff matches the tables by runs of owners (it took 300 MB).  map
# --output=json is left out: it prints what qemu-img map prints, 920 MB,
# an extent for each L1 entry.
f=$T_TMP/one-l2-4m.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 "$f" 128G
qemu-io -c "write 0 512" "$f" >/dev/null
python3 "$TOP/tests/lib/hostile.py" one-l2 "$f"
each_limited "one-l2, 4 million entries" "$f" "info" "info --output=json" \
	"check --output=json" "dump -o /dev/null" "dump --no-data -o /dev/null" \
	"diff $f"
( timeout 10 "$Q2E" check "$f" 2>&1 >/dev/null | wc -l >"$T_TMP/.n" )
assert_eq "one-l2 overflows, 4 million entries: check prints 131,072 overflows of each cluster and a line for the rest in 10 s" \
	524290 "$(cat "$T_TMP/.n")"

# QEMU's largest refcount table (8 MiB, 1,048,576 entries), each entry
# naming its own block past the end of an 8 MB file: a problem each (check
# took 1 GB; info printed 290 MB).  One problem for the run now; check
# prints qemu-img's million lines.  (check -M's JSON lists each block of
# the table, 200 MB: not bounded yet.)
f=$T_TMP/far-refcount.qcow2
qemu-img create -q -f qcow2 "$f" 1G
python3 "$TOP/tests/lib/hostile.py" far-refcount "$f"
each_limited far-refcount "$f" "info" "info --output=json" "check" \
	"map --output=json" "diff $f" "dump -o $T_TMP/far-refcount.elf"
limited "far-refcount: check of its dump" "$Q2E" check "$T_TMP/far-refcount.elf"
like_qemu "far-refcount" "$f"
one_problem "far-refcount: 1,048,575 blocks past the end" "$f" refcount_block \
	"refcount_block_1 to refcount_block_1048575: 1048575 entries name refcount blocks past the end of the file"

# A bitmap whose table of 1,048,576 entries names as many data clusters
# past the end of the file: diff cleared and compared 64 KiB for each
# (8.5 s); now such a cluster costs nothing, and a pair of clusters is
# compared once however many entries name it.
f=$T_TMP/far-bitmap.qcow2
qemu-img create -q -f qcow2 "$f" 1G
qemu-img bitmap --add "$f" b0
cp "$f" "$T_TMP/far-bitmap-before.qcow2"
python3 "$TOP/tests/lib/hostile.py" far-bitmap "$f"
each_limited far-bitmap "$f" "info" "check" "map --output=json" "diff $f" \
	"dump -o $T_TMP/far-bitmap.elf"
limited "far-bitmap: diff with its dump" "$Q2E" diff "$f" "$T_TMP/far-bitmap.elf"
# Against the image before, whose table was "all zeros": each entry's
# cluster, which the file does not hold, reads as zeros too, and costs
# nothing (compared with the zeros, each took a 64 KiB clear and compare:
# 60 s).  Its 1,048,576 changed entries take more than limited's memory.
( timeout 30 "$Q2E" diff "$T_TMP/far-bitmap-before.qcow2" "$f" >/dev/null 2>&1 )
assert_eq "far-bitmap: diff with the image before its table ends, with differences" \
	1 $?
one_problem "far-bitmap: 1,048,576 data clusters past the end" "$f" bitmap_0_data \
	"bitmap_0_data_0 to bitmap_0_data_1048575: 1048576 entries name bitmap data clusters past the end of the file"

# Two images whose only L2 table is named by one snapshot each, of other
# IDs, through each of 524,288 entries of its L1 table (a run of as many
# owners): deciding whether a table an owner gone named is kept walked
# the owners again for each (29 s for 65,536); it is now one pass.
f=$T_TMP/one-run-a.qcow2
qemu-img create -q -f qcow2 "$f" 256T
qemu-io -c 'write 0 64k' "$f" >/dev/null
cp "$f" "$T_TMP/one-run-b.qcow2"
python3 "$TOP/tests/lib/hostile.py" one-run-l1 "$f" 1
python3 "$TOP/tests/lib/hostile.py" one-run-l1 "$T_TMP/one-run-b.qcow2" 2
limited "one-run-l1: diff of two images whose snapshots do not pair" \
	"$Q2E" diff "$f" "$T_TMP/one-run-b.qcow2"

# Likewise 65,535 bitmaps, all named "b", sharing one table.  dump made a
# DWARF structure type for each directory entry (444 MB); one for each
# shape now.
f=$T_TMP/many-bitmaps.qcow2
qemu-img create -q -f qcow2 "$f" 1M
qemu-img bitmap --add "$f" b0
python3 "$TOP/tests/lib/hostile.py" many-bitmaps "$f"
limited "many-bitmaps: info --output=json" "$Q2E" info --output=json "$f"
limited "many-bitmaps: check" "$Q2E" check "$f"
limited "many-bitmaps: diff with itself" "$Q2E" diff "$f" "$f"
limited "many-bitmaps: dump" "$Q2E" dump "$f" -o "$T_TMP/many-bitmaps.elf"
assert_eq "many-bitmaps: gdb prints the last bitmap's name from the dump" '$1 = "b"' \
	"$(gdb -nx -batch -iex 'set auto-load python-scripts off' -ex 'p bitmap_65534.name' "$T_TMP/many-bitmaps.elf" 2>/dev/null)"
n=$("$Q2E" info --output=json "$f" | jq '.bitmaps | length')
assert_eq "many-bitmaps: every bitmap is read" 65535 "$n"

# 16,384 bitmaps sharing one table of 1,024 entries, each naming one data
# cluster: each bitmap had its own copy of the table, and the data
# cluster 16 million owners (info, map, check 400 MB from a 1 MB file,
# dump 6 s and 417 MB, diff with the dump 800 MB).  The table is the
# first bitmap's, and its data clusters too; check still counts each
# bitmap's references, as qemu-img does.
f=$T_TMP/bitmaps-one-table.qcow2
qemu-img create -q -f qcow2 "$f" 4T
qemu-img bitmap --add -g 8192 "$f" b0
python3 "$TOP/tests/lib/hostile.py" bitmaps-one-table "$f"
each_limited bitmaps-one-table "$f" "info" "map --output=json" "check" \
	"dump -o $T_TMP/bitmaps-one-table.elf"
limited "bitmaps-one-table: diff with its dump" "$Q2E" diff "$f" \
	"$T_TMP/bitmaps-one-table.elf"
# The table (cluster 6) has a reference from each bitmap; its entries'
# 16,777,216 references overflow the data cluster's 16-bit count past
# 65,535: qemu-img's line for each of the first 131,072, then one count.
assert_eq "bitmaps-one-table: check counts each bitmap's references to the table and the data" \
	"16580609 reference=16384" \
	"$("$Q2E" check "$f" 2>&1 >/dev/null | sed -n -e 's/^ERROR cluster 6 refcount=0 \(reference=[0-9]*\)$/\1/p' \
		-e 's/^ERROR \([0-9]*\) more refcount overflows of cluster offset=0x70000.*/\1/p' | paste -sd' ')"
assert_match "bitmaps-one-table: the table is each bitmap's" \
	"bitmap_0_table, bitmap_1_table and 16382 more are the same bitmap table" \
	"$("$Q2E" check "$f" 2>/dev/null)"

# diff of a fresh 32 PiB image (2 MiB clusters) against silent-l2, whose
# 65,536 L1 entries name one table of 262,144 entries "zero", and of a
# fresh one with extended L2 entries against zero-subclusters, whose
# 131,072 name one table of 131,072 entries that give every subcluster
# the zero flag: the pair of tables is one, but diff stepped through its
# entries again for each L1 entry (28 s for 4,096 of silent-l2's, 731 s
# for all; over 60 s for zero-subclusters).  The pair is stepped through
# once, into a digest that each entry is given in place of its steps
# (src/view/diff_runs.c); the counts are still each entry's.
g=$T_TMP/fresh-32p.qcow2
f=$T_TMP/silent-l2.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M "$g" 32P
each_limited "silent-l2 against a fresh image" "$f" "diff $g"
limited "silent-l2 against a fresh image: diff the other way" "$Q2E" diff "$f" "$g"
limited "silent-l2 against a fresh image: diff of its dump" \
	"$Q2E" diff "$g" "$T_TMP/silent-l2.elf"
assert_eq "silent-l2 against a fresh image: diff counts the table's entries for each L1 entry" \
	"l2 17179869184 entries in 65536 structures" \
	"$("$Q2E" diff "$g" "$f" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"
g=$T_TMP/fresh-32p-extended.qcow2
f=$T_TMP/zero-subclusters.qcow2
qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on "$g" 32P
each_limited zero-subclusters "$f" "diff $g"
limited "zero-subclusters: diff the other way" "$Q2E" diff "$f" "$g"
assert_eq "zero-subclusters: diff counts the table's entries for each L1 entry" \
	"l2 17179869184 entries in 131072 structures" \
	"$("$Q2E" diff "$g" "$f" | awk '$1 == "l2" && NF > 2 { $1 = $1; print }')"

finish
