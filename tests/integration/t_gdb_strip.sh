#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The gdb helpers (contrib/gdb/qcow2elf.py, sourced: strip removes the
# dump's copy with its symbols) on a stripped dump.  They found the L1
# table, the snapshots and the bitmaps by their symbols only, and answered
# wrong without an error: "l1_table has 0 entries", "no snapshots", "no
# bitmaps", "no snapshot 'snap1'".  Now they find each structure from the
# header, as QEMU does, and read it through its section: every answer on
# the stripped dump is the one on the dump itself.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io gdb python3 readelf strip

SCRIPT=$TOP/contrib/gdb/qcow2elf.py
cd "$T_TMP" || finish

# helpers DUMP CMDFILE: each line of CMDFILE in gdb (-ex=LINE: an error
# in one does not stop the rest, as it would with -x), the helpers sourced.
helpers() {
	local lines
	mapfile -t lines <"$2"
	gdb -nx -batch -iex 'set auto-load python-scripts off' \
		-ex "source $SCRIPT" "${lines[@]/#/-ex=}" "$1" 2>&1
}

# Two snapshots of different data, two bitmaps, a compressed and a zero
# cluster.
qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 1 0 128k' -c 'write -z 1M 64k' -c 'write -c 2M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c snap1 img.qcow2
qemu-io -c 'write -P 2 0 64k' -c 'write -P 2 4M 64k' img.qcow2 >/dev/null
qemu-img bitmap --add img.qcow2 b0
qemu-io -c 'write -P 3 8M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c snap2 img.qcow2
qemu-img bitmap --add -g 128k img.qcow2 b1
"$Q2E" dump img.qcow2 -o img.elf
strip -o s.elf img.elf
assert_eq "strip removes the symbol table and the dump's copy of the helpers" "0" \
	"$(readelf -SW s.elf | grep -c '\.symtab\|\.debug_gdb_scripts')"

# The same commands on both dumps, each after a marker line.
{
	for snap in '' snap1 snap2 1 2; do
		for off in 0 64k 1M 2M 4M 8M 16M 0x3ffffff; do
			echo "echo @translate $off $snap\\n"
			echo "qcow2 translate $off $snap"
		done
	done
	for c in 'qcow2 snapshots' 'qcow2 bitmaps' 'qcow2 bitmap b0 0' \
		'qcow2 bitmap b0 8M' 'qcow2 bitmap b1 8M' 'qcow2 info'; do
		echo "echo @$c\\n"
		echo "$c"
	done
	size=$(stat -c %s img.qcow2)
	for ((off = 0; off < size; off += 65536)); do
		echo "echo @refcount $off\\n"
		echo "qcow2 refcount $off"
	done
} >cmds.gdb
helpers img.elf cmds.gdb >full.out
helpers s.elf cmds.gdb >stripped.out
# A table is named by its symbol, or in the stripped dump by its offset:
# the rest of each line is the same.
unname() { sed 's/^.*\(\[[0-9]*\] = \)/\1/; s/^.* has \([0-9]* entries: \)/\1/' "$1"; }
if cmp -s <(unname full.out) <(unname stripped.out); then
	pass "every answer on the stripped dump is the one on the dump ($(grep -c '^@' full.out) commands)"
else
	fail "every answer on the stripped dump is the one on the dump" \
		"$(diff <(unname full.out) <(unname stripped.out) | head -8)"
fi
# And those answers are right (t_gdb checks the dump's against qemu-img).
want=$(qemu-img map --output=json img.qcow2 | python3 -c 'import json,sys; print("host offset 0x%x" % json.load(sys.stdin)[0]["offset"])')
assert_eq "stripped: qcow2 translate 0 finds the cluster" "$want" \
	"$(sed -n '/^@translate 0 $/,/^@/p' stripped.out | grep '^host offset')"
addr() { readelf -SW s.elf | sed -n "s/.*] $1 *[A-Z]* *0*\([0-9a-f][0-9a-f]*\) .*/0x\1/p"; }
assert_eq "stripped: the L1 and L2 tables named by their offsets (their sections')" \
	"L1 table at $(addr .qcow2.l1)[0]|L2 table at $(addr .qcow2.l2.0)[0]" \
	"$(sed -n '/^@translate 0 $/,/^@/s/ = .*//p' stripped.out | paste -sd'|')"
assert_eq "stripped: qcow2 snapshots lists both" \
	"snapshot_0 id 1 name 'snap1'|snapshot_1 id 2 name 'snap2'" \
	"$(grep '^snapshot_' stripped.out | sed 's/ l1_table.*//' | paste -sd'|')"
assert_eq "stripped: qcow2 bitmaps lists both" "bitmap_0 'b0' flags auto granularity 65536|bitmap_1 'b1' flags auto granularity 131072" \
	"$(grep '^bitmap_[0-9] ' stripped.out | sed 's/ table.*//' | paste -sd'|')"
assert_match "stripped: a snapshot's own L1 table (snap1 has the first data)" \
	"^L1 table at 0x[0-9a-f]+\[0\] = 0x80000000000[0-9a-f]{5}  L2 table at " \
	"$(sed -n '/^@translate 0 snap1$/,/^@/p' stripped.out)"
assert_match "stripped: a bitmap's bit" "^bit 128 \(guest 0x800000-0x80ffff\): set$" "$(cat stripped.out)"
assert_eq "stripped: no error anywhere" "" \
	"$(grep -i 'no symbol\|no snapshot\|no bitmap\|has 0 entries\|error\|cannot\|Traceback' stripped.out)"

# A stripped dump's counts are the header's, within QEMU's limits.
# patch DUMP SECTION OFFSET VALUE: a big-endian 32-bit field of the image
# in the dump's section.
patch() {
	python3 - "$@" <<'PY'
import struct, subprocess, sys
elf, sec, off, v = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for l in subprocess.run(["readelf", "-SW", elf], capture_output=True,
                        text=True).stdout.splitlines():
    f = l.replace("[ ", "[").split()
    if len(f) > 4 and f[1] == sec:
        at = int(f[4], 16) + off
with open(elf, "r+b") as f:
    f.seek(at)
    f.write(struct.pack(">I", v))
PY
}
cp s.elf many.elf
patch many.elf .qcow2.header 60 70000
printf '%s\n' 'qcow2 snapshots' 'qcow2 translate 0 snap1' >many.gdb
out=$(helpers many.elf many.gdb)
assert_eq "stripped, nb_snapshots 70000: each command names the field" \
	"$(printf "%s\n%s" "'$PWD/many.elf': qcow2_header.nb_snapshots (offset 0x3c) is 70000, over QEMU's 65536" \
		"'$PWD/many.elf': qcow2_header.nb_snapshots (offset 0x3c) is 70000, over QEMU's 65536")" "$out"
cp s.elf bm.elf
patch bm.elf .qcow2.ext.bitmaps 8 70000
printf '%s\n' 'qcow2 bitmaps' >bm.gdb
assert_eq "stripped, nb_bitmaps 70000: the field named" \
	"'$PWD/bm.elf': ext_bitmaps.nb_bitmaps is 70000, over QEMU's 65535" "$(helpers bm.elf bm.gdb)"
finish
