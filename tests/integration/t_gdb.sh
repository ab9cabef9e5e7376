#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The gdb helpers (contrib/gdb/qcow2elf.py) on dumps of real images, and
# what gdb prints without them: each answer is checked against qemu-img
# or against the image's bytes, decoded here on their own.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/patch.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io gdb jq python3 readelf

SCRIPT=$TOP/contrib/gdb/qcow2elf.py
cd "$T_TMP" || finish

# gdb_helpers DUMP CMDFILE: gdb with the helpers auto-loaded from the dump,
# running each line of CMDFILE (an error in one does not stop the rest).
gdb_helpers() {
	local args=() l
	while IFS= read -r l; do args+=(-ex "$l"); done <"$2"
	gdb -nx -batch -iex "add-auto-load-safe-path $PWD/$1" "${args[@]}" "$1" 2>&1
}
# gdb_plain DUMP ARGS...: what gdb prints from the DWARF alone.
gdb_plain() {
	local f=$1
	shift
	gdb -nx -batch -iex 'set auto-load python-scripts off' "$@" "$f" 2>&1
}

# --- The image of the issue: snapshots, bitmaps, compressed, zero. -------
qemu-img create -q -f qcow2 -o lazy_refcounts=on img.qcow2 64M
qemu-io -c 'write -P 0x11 0 128k' -c 'write -z 1M 64k' -c 'write -c 2M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c "first snap" img.qcow2
qemu-io -c 'write -P 0x22 4M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c second img.qcow2
qemu-img bitmap --add img.qcow2 b0
qemu-io -c 'write -P 0x33 8M 64k' img.qcow2 >/dev/null
qemu-img bitmap --add -g 128k img.qcow2 b1
qemu-img snapshot -c third-x img.qcow2	# shares the active L2 table
"$Q2E" dump img.qcow2 -o img.elf

# Auto-loaded from the dump, or not without the safe-path, as gdb says.
out=$(gdb -nx -batch -ex 'help qcow2' img.elf 2>&1)
assert_match "plain gdb says how to allow the dump's script" "add-auto-load-safe-path $PWD/img.elf" "$out"
printf '%s\n' 'help qcow2' 'help qcow2 translate' >help.gdb
out=$(gdb_helpers img.elf help.gdb)
assert_match "auto-loaded: 'help qcow2' lists the commands" "qcow2 bitmap NAME GUEST" "$out"
assert_match "each command has its help" "Usage: qcow2 translate GUEST_OFFSET \[SNAPSHOT\]" "$out"
"$Q2E" dump --no-gdb-script img.qcow2 -o noscript.elf
assert_eq "--no-gdb-script: no .debug_gdb_scripts section" "0" "$(readelf -SW noscript.elf | grep -c debug_gdb_scripts)"
assert_eq "and otherwise the same sections" "$(readelf -SW img.elf | grep -c '\.qcow2\.')" "$(readelf -SW noscript.elf | grep -c '\.qcow2\.')"
out=$(gdb -nx -batch -ex 'help qcow2' noscript.elf 2>&1)
assert_match "a dump without the script defines no command" 'Undefined command: "qcow2"' "$out"
printf '%s\n' "source $SCRIPT" 'qcow2 translate 0' >src.gdb
out=$(gdb -nx -batch -x src.gdb noscript.elf 2>&1)
assert_match "sourced: qcow2 translate works on a dump without the script" "^host offset 0x" "$(tail -1 <<<"$out")"

# Errors are clear.
printf '%s\n' 'qcow2 translate' 'qcow2 translate 0x10000000000' 'qcow2 translate 0 nosuch' 'qcow2 bitmap nosuch 0' 'qcow2 refcount foo' >err.gdb
out=$(gdb_helpers img.elf err.gdb)
assert_match "a missing argument says the usage" "usage: qcow2 translate GUEST_OFFSET \[SNAPSHOT\]" "$out"
assert_match "an offset past the disk says so" "guest offset 0x10000000000 is past the virtual size 0x4000000" "$out"
assert_match "an unknown snapshot is named" "no snapshot 'nosuch'" "$out"
assert_match "an unknown bitmap is named" "no bitmap 'nosuch'" "$out"
assert_match "a bad number is quoted" "cannot read 'foo'" "$out"

# Flags by name, 8-bit numbers as numbers, every entry its symbol.
out=$(gdb_plain img.elf -ex 'p qcow2_header.compatible_features' -ex 'p qcow2_header.autoclear_features' \
	-ex 'p qcow2_header.compression_type' -ex 'p bitmap_1.flags' -ex 'p bitmap_1.type' \
	-ex 'p bitmap_1.granularity_bits' -ex 'p ext_feature_table.features[0].type')
mapfile -t g < <(sed 's/^\$[0-9]* = //' <<<"$out")
assert_eq "lazy refcounts by name" "{names = QCOW2_COMPAT_LAZY_REFCOUNTS, raw = 1}" "${g[0]}"
assert_eq "the bitmaps autoclear bit by name" "{names = QCOW2_AUTOCLEAR_BITMAPS, raw = 1}" "${g[1]}"
assert_eq "compression type by name" "QCOW2_COMPRESSION_TYPE_ZLIB" "${g[2]}"
assert_eq "bitmap flags by name" "{names = BME_FLAG_AUTO, raw = 2}" "${g[3]}"
assert_eq "bitmap type by name" "BT_DIRTY_TRACKING_BITMAP" "${g[4]}"
assert_eq "granularity_bits is a number, not a character" "17" "${g[5]}"
assert_eq "a feature's type by name" "QCOW2_FEAT_TYPE_INCOMPATIBLE" "${g[6]}"
cmds=() want= n=0
while IFS= read -r name; do
	cmds+=(-ex "p snapshot_$((n++)).name")
	want+="\"$name\""$'\n'
done < <(qemu-img info --output=json img.qcow2 | jq -r '.snapshots[].name')
out=$(gdb_plain img.elf "${cmds[@]}" -ex 'p bitmap_0.name' -ex 'p bitmap_1.name' | sed 's/^\$[0-9]* = //')
assert_eq "every snapshot entry's symbol prints its name, the last one too" "${want}\"b0\""$'\n'"\"b1\"" "$out"

printf '%s\n' 'qcow2 snapshots' 'qcow2 bitmaps' 'qcow2 info' 'qcow2 bitmap b0 8M' \
	'qcow2 bitmap b0 0' 'qcow2 bitmap b1 8M' 'qcow2 whatis 0x28' 'p l2_table_0[32]' \
	'p l2_table_0[0]' 'p refcount_block_0[0]' 'p snapshot_1' >misc.gdb
out=$(gdb_helpers img.elf misc.gdb)
assert_match "qcow2 snapshots: one line each, id and name" "^snapshot_0 id 1 name 'first snap' l1_table 0x" "$out"
assert_match "qcow2 snapshots: the last one" "^snapshot_2 id 3 name 'third-x'" "$out"
assert_match "qcow2 bitmaps: flags and granularity" "^bitmap_1 'b1' flags auto granularity 131072 table 0x" "$out"
assert_match "qcow2 info: feature names from the image's table" "^compatible features +lazy refcounts$" "$out"
assert_match "qcow2 info: refcount width" "^refcount bits +16$" "$out"
assert_match "qcow2 bitmap: a bit written after the bitmap was added is set" "^bit 128 \(guest 0x800000-0x80ffff\): set$" "$out"
assert_match "qcow2 bitmap: one written before is clear" "^bit 0 \(guest 0x0-0xffff\): clear$" "$out"
assert_match "qcow2 bitmap: b1 has its own granularity, and was added after that write" "^bit 64 \(guest 0x800000-0x81ffff\): clear$" "$out"
assert_match "qcow2 whatis: a header field" "^0x28: qcow2_header.l1_table_offset " "$out"
assert_match "pretty-printer: a compressed L2 entry shows its host range" '= 0x4[0-9a-f]{15}  compressed: host 0x[0-9a-f]+-0x[0-9a-f]+, [0-9]+ sectors' "$out"
assert_match "pretty-printer: a standard L2 entry, raw and host offset" '= 0x00000000000[0-9a-f]{5}  host 0x[0-9a-f]+$' "$out"
assert_match "pretty-printer: a snapshot entry shows its id and name first" "= snapshot id 2 'second' = \{l1_table_offset" "$out"

# whatis on a shared L2 table names both owners, the active one first.
l2=$(readelf -sW img.elf | awk '$8 == "l2_table_0" {print $2}')
printf '%s\n' "qcow2 whatis 0x$l2+8*417" >w.gdb
out=$(gdb_helpers img.elf w.gdb)
assert_match "qcow2 whatis: l2_table_0[417]" "^0x[0-9a-f]+: l2_table_0\[417\] \(L2 table at 0x$(sed 's/^0*//' <<<"$l2")" "$out"
assert_match "and the snapshot sharing it" "^  also snapshot_2_l2_table_0\[417\]$" "$out"

# A reserved bit of an L2 entry: its own field, as check reports it.
cp img.qcow2 rsv.qcow2
l2off=$((16#$l2))
python3 - rsv.qcow2 "$l2off" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) + 7)
    b = f.read(1)[0]
    f.seek(int(sys.argv[2]) + 7)
    f.write(bytes([b | 8]))
PY
"$Q2E" dump rsv.qcow2 -o rsv.elf 2>/dev/null
out=$(gdb_plain rsv.elf -ex 'p l2_table_0[0].standard.reserved' -ex 'p l2_table_0[1].standard.reserved')
assert_eq "an L2 entry with bit 3 set prints reserved = 4, its neighbour 0" $'$1 = 4\n$2 = 0' "$out"
"$Q2E" check rsv.qcow2 >chk.out 2>&1
assert_match "as check reports it" "reserved bits set" "$(cat chk.out)"

# --- translate and refcount against qemu-img and the bytes. ---------------
# Python lists the guest offsets to try (starts, ends and middles of
# every range qemu-img map reports), then checks gdb's answers.
cat >cmp.py <<'PY'
import json, sys
mode, mapfile = sys.argv[1], sys.argv[2]
ranges = json.load(open(mapfile))
def pick():
    offs = []
    for r in ranges:
        for o in (r["start"], r["start"] + r["length"] // 2, r["start"] + r["length"] - 1):
            offs.append(o)
    step = max(1, len(offs) // 150)
    return sorted(set(offs[::step] + offs[-3:]))
def expect(o):
    for r in ranges:
        if r["start"] <= o < r["start"] + r["length"]:
            if r.get("depth", 0) > 0:
                return "unallocated (read from the backing file)"
            if r["data"] and "offset" not in r:
                return "compressed"   # QEMU 7.2 gives no offset for those
            if r["data"] and "offset" in r:
                return "host offset 0x%x" % (r["offset"] + o - r["start"])
            if r["zero"] and r["present"]:
                return "zero"
            return "unallocated"
if mode == "offsets":
    for o in pick():
        print("echo @%d\\n" % o)
        print("qcow2 translate %d" % o)
else:
    got, cur, bad, n = {}, None, 0, 0
    for line in open(sys.argv[3]):
        line = line.rstrip("\n")
        if line.startswith("@"):
            cur = int(line[1:])
        elif cur is not None:
            got[cur] = line
    for o in pick():
        want, have = expect(o), got.get(o, "(nothing)")
        n += 1
        if not have.startswith(want):
            bad += 1
            if bad <= 3:
                print("guest %#x: gdb '%s', qemu-img map '%s'" % (o, have, want))
    print("checked %d" % n)
PY
# Refcounts decoded from the image file, for every cluster of it.
cat >refs.py <<'PY'
import struct, sys
f = open(sys.argv[1], "rb").read()
cb, = struct.unpack_from(">I", f, 20)
order = struct.unpack_from(">I", f, 96)[0] if struct.unpack_from(">I", f, 4)[0] >= 3 else 4
rt, = struct.unpack_from(">Q", f, 48)
w, cs = 1 << order, 1 << cb
per = cs * 8 // w
n = (len(f) + cs - 1) // cs
step = max(1, n // 200)
for c in list(range(0, n, step)) + [n - 1]:
    i, j = divmod(c, per)
    blk = struct.unpack_from(">Q", f, rt + 8 * i)[0] & ~511 if rt + 8 * i + 8 <= len(f) else 0
    if not blk:
        v = 0
    elif w >= 8:
        v = int.from_bytes(f[blk + j * w // 8: blk + (j + 1) * w // 8], "big")
    else:
        v = f[blk + j * w // 8] >> (j * w % 8) & ((1 << w) - 1)
    print(c * cs + cs // 2, v)
PY
# check_image DIR NAME: translate and refcount of one image's dump.
check_image() {
	local dir=$1 name=$2
	(cd "$dir" && qemu-img map --output=json "$name") >m.json 2>/dev/null || { fail "$name: qemu-img map"; return; }
	"$Q2E" dump "$dir/$name" -o d.elf 2>/dev/null || { fail "$name: dump"; return; }
	python3 cmp.py offsets m.json >t.gdb
	python3 refs.py "$dir/$name" >refs.txt
	awk '{print "qcow2 refcount " $1}' refs.txt >>t.gdb
	gdb_helpers d.elf t.gdb >t.out
	grep -v '^refcount\|^cluster .* past' t.out | grep -v '_table.*\[\|^subcluster' >t.last
	res=$(python3 cmp.py check m.json t.last)
	if [ "$(grep -c '^guest' <<<"$res")" = 0 ]; then
		pass "$name: qcow2 translate agrees with qemu-img map ($(tail -1 <<<"$res") offsets)"
	else
		fail "$name: qcow2 translate agrees with qemu-img map" "$res"
	fi
	paste -d' ' <(awk '{print $2}' refs.txt) <(grep -E '^(refcount_block_[0-9]+\[[0-9]+\] = |refcount_table\[|cluster [0-9]+ is past)' t.out |
		sed 's/.* = \([0-9]*\)$/\1/; s/.*refcount 0$/0/') | awk '$1 != $2 {bad++} END {exit bad > 0}' &&
		pass "$name: qcow2 refcount agrees with the image's bytes ($(wc -l <refs.txt) clusters)" ||
		fail "$name: qcow2 refcount agrees with the image's bytes" "$(paste -d' ' refs.txt <(grep -E '^(refcount_|cluster )' t.out) | awk '$2 != $NF' | head -3)"
}

check_image . img.qcow2
for bits in 1 2 4 8 32 64; do
	qemu-img create -q -f qcow2 -o refcount_bits=$bits,cluster_size=4096 rc$bits.qcow2 8M
	qemu-io -c 'write -P 1 0 300k' -c 'write -P 2 2M 64k' rc$bits.qcow2 >/dev/null
	[ $bits = 1 ] || qemu-img snapshot -c s rc$bits.qcow2	# needs refcount 2
	qemu-io -c 'write -P 3 0 8k' rc$bits.qcow2 >/dev/null
	check_image . rc$bits.qcow2
done
# Refcounts print as numbers at every width: 8-bit ones too, which gdb
# prints as characters ("1 '\001'") where the helpers are not loaded.
refcounts_as_numbers() {
	local bits want got
	for bits in 8 32; do
		"$Q2E" dump rc$bits.qcow2 -o rcn.elf || return 1
		want=$(python3 - rc$bits.qcow2 "$bits" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
bits = int(sys.argv[2])
rt, = struct.unpack_from(">Q", d, 48)
rb, = struct.unpack_from(">Q", d, rt)
blk = d[rb:rb + 4096]
vals = [int.from_bytes(blk[i * bits // 8:(i + 1) * bits // 8], "big")
        for i in range(6)]
print(vals[3]); print(", ".join(map(str, vals)))
PY
)
		printf '%s\n' 'p refcount_block_0[3]' 'p refcount_block_0[0]@6' >rcn.gdb
		got=$(gdb_helpers rcn.elf rcn.gdb | sed 's/^\$[0-9]* = //; s/.*{\([0-9]*, [0-9]*, [0-9]*, [0-9]*, [0-9]*, [0-9]*\).*/\1/')
		assert_eq "$bits-bit refcounts: p refcount_block_0[3] and p refcount_block_0[0]@6 print the image's numbers" \
			"$want" "$got"
	done
}
t_case "refcounts print as numbers" refcounts_as_numbers
# A snapshot entry without a name (qemu-img snapshot -c ''): its type
# has no name member, and the entry prints all the same.
empty_name() {
	qemu-img create -q -f qcow2 noname.qcow2 16M
	qemu-img snapshot -c '' noname.qcow2
	"$Q2E" dump noname.qcow2 -o noname.elf || return 1
	printf '%s\n' 'p snapshot_0' >noname.gdb
	assert_match "p snapshot_0 of an unnamed snapshot: its ID and empty name" \
		"^\\\$1 = snapshot id 1 '' = \\{l1_table_offset = " "$(gdb_helpers noname.elf noname.gdb)"
}
t_case "a snapshot without a name in gdb" empty_name
# An image QEMU will not open: translate says so before what the tables
# say, as qemu-img map fails on it.
refused_image() {
	local out
	qemu-img create -q -f qcow2 refused.qcow2 16M
	qemu-io -c 'write 0 64k' refused.qcow2 >/dev/null
	put64 refused.qcow2 40 $(($(get64 refused.qcow2 40) + 8))	# l1_table_offset
	assert_status "qemu-img map fails on an L1 table not cluster aligned" 1 \
		qemu-img map refused.qcow2
	"$Q2E" dump refused.qcow2 -o refused.elf 2>/dev/null || return 1
	printf '%s\n' 'qcow2 translate 0' 'qcow2 info' >refused.gdb
	out=$(gdb_helpers refused.elf refused.gdb)
	assert_match "qcow2 translate says QEMU would not open it, and why, as info does" \
		"^QEMU would not open the image \($("$Q2E" info --output=json refused.qcow2 | jq -r '."qemu-refuses"')\), so qemu-img map fails; what the tables say:"$'\n'"l1_table\[0\] = " \
		"$out"
	assert_match "qcow2 info too" "QEMU opens it +no: the active L1 table is not cluster aligned" "$out"
	printf '%s\n' 'qcow2 info' >ok.gdb
	assert_match "and of an image it opens, that it does" "QEMU opens it +yes" \
		"$(gdb_helpers img.elf ok.gdb)"
}
t_case "an image QEMU will not open, in gdb" refused_image
# Extended L2 entries: valid ones as qemu-img maps them; a subcluster both
# allocated and zero, or allocated in a cluster without a host offset, is
# one QEMU refuses to read (qcow2_get_subcluster_type()), and so does the
# helper, as map does.
qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 8M
qemu-io -c 'write -P 1 0 4k' -c 'write -z 8k 2k' -c 'write -P 2 1M 64k' ext.qcow2 >/dev/null
check_image . ext.qcow2
for bad in both:0 alloc-unallocated:64k; do
	cp ext.qcow2 "ext-${bad%%:*}.qcow2"
	python3 - "ext-${bad%%:*}.qcow2" "${bad%%:*}" <<'PY'
import struct, sys
f, how = sys.argv[1], sys.argv[2]
d = bytearray(open(f, "rb").read())
l1, = struct.unpack_from(">Q", d, 40)
l2 = struct.unpack_from(">Q", d, l1)[0] & 0x00fffffffffffe00
j = 0 if how == "both" else 1		# guest 0, or 64k (never written)
at = l2 + 16 * j + 8
bm, = struct.unpack_from(">Q", d, at)
struct.pack_into(">Q", d, at, bm | (1 << 32) | 1 if how == "both" else bm | 1)
open(f, "wb").write(d)
PY
	guest=${bad#*:}
	"$Q2E" dump "ext-${bad%%:*}.qcow2" -o ext-bad.elf 2>/dev/null || fail "ext-${bad%%:*}: dump"
	printf '%s\n' "qcow2 translate $guest" >ext.gdb
	assert_match "extended L2, ${bad%%:*}: qcow2 translate refuses the subcluster, as QEMU does" \
		"qcow2 translate: l2_table_0\[$([ "${bad%%:*}" = both ] && echo 0 || echo 1)\] has an invalid subcluster bitmap 0x[0-9a-f]{16}: QEMU refuses to read it" \
		"$(gdb_helpers ext-bad.elf ext.gdb)"
	assert_match "extended L2, ${bad%%:*}: qemu-io cannot read it" \
		"Input/output error" \
		"$(qemu-io -r -c "read $guest 512" "ext-${bad%%:*}.qcow2" 2>&1)"
	assert_status "extended L2, ${bad%%:*}: qcow2elf map of the dump exits 1, as qemu-img map of the image" \
		1 "$Q2E" map ext-bad.elf
	assert_status "extended L2, ${bad%%:*}: qemu-img map exits 1" 1 \
		qemu-img map "ext-${bad%%:*}.qcow2"
done

# qcow2_get_host_offset() refuses (EIO) an entry whose host cluster is not
# cluster aligned, standard or extended, or, with an external data file,
# is not the guest cluster: so do the helper and map.
cat >host.py <<'PY'
import struct, sys
f, delta = sys.argv[1], int(sys.argv[2], 0)
d = bytearray(open(f, "rb").read())
l1, = struct.unpack_from(">Q", d, 40)
l2 = struct.unpack_from(">Q", d, l1)[0] & 0x00fffffffffffe00
e, = struct.unpack_from(">Q", d, l2)
struct.pack_into(">Q", d, l2, e + delta)
open(f, "wb").write(d)
PY
for bad in unaligned::0x200:"not cluster aligned" \
	unaligned-extended:extended_l2=on:0x200:"not cluster aligned" \
	data-file:data_file=host.raw:0x10000:"names data file offset 0x10000 for guest cluster 0x0"; do
	IFS=: read -r name opts delta why <<<"$bad"
	rm -f host.raw
	qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "host-$name.qcow2" 8M
	qemu-io -c 'write -P 1 0 128k' "host-$name.qcow2" >/dev/null
	python3 host.py "host-$name.qcow2" "$delta"
	"$Q2E" dump "host-$name.qcow2" -o host-bad.elf 2>/dev/null || fail "host-$name: dump"
	printf '%s\n' "qcow2 translate 0" >host.gdb
	assert_match "$name host offset: qcow2 translate refuses it, as QEMU does" \
		"qcow2 translate: l2_table_0\[0\] (names host offset 0x[0-9a-f]+, )?$why.*: QEMU refuses to read it \(EIO\)" \
		"$(gdb_helpers host-bad.elf host.gdb)"
	assert_match "$name host offset: qemu-io cannot read it" \
		"Input/output error" \
		"$(qemu-io -r -c "read 0 512" "host-$name.qcow2" 2>&1)"
	assert_status "$name host offset: qcow2elf map of the dump exits 1, as qemu-img map of the image" \
		1 "$Q2E" map host-bad.elf
	assert_status "$name host offset: qemu-img map exits 1" 1 \
		qemu-img map "host-$name.qcow2"
done

if corpus_build "$T_TMP/corpus" 2>corpus.err && sync; then
	while read -r name kind; do
		[ "$kind" = plain ] && check_image corpus "$name"
	done <corpus/corpus.list
else
	fail "corpus built" "$(cat corpus.err)"
fi

# --- The LUKS image: the extension's own length and the area's are two
# names (both were "length": gdb printed the area's for ext_crypto.length),
# and with the helpers gdb prints the 2 MiB area, over its 64 KiB
# max-value-size.
if [ -f corpus/luks.qcow2 ] && "$Q2E" dump corpus/luks.qcow2 -o luks.elf; then
	printf '%s\n' 'p ext_crypto.length' \
		'p ext_crypto.crypto_header_length == sizeof(crypto_header)' \
		'p sizeof(crypto_header) > 65536' \
		'p crypto_header.luks.magic' >luks.gdb
	assert_eq "LUKS: ext_crypto.length is the extension's, crypto_header_length the area's, printed whole" \
		"$(printf '%s\n' '$1 = 16' '$2 = 1' '$3 = 1' '$4 = "LUKS\272\276"')" \
		"$(gdb_helpers luks.elf luks.gdb)"
	# The LUKS1 header and key slot, field by field, at the offsets and
	# sizes of cryptsetup's on-disk format (LUKS1 specification 1.2.3).
	assert_eq "LUKS: the header's fields at the specification's offsets and sizes" \
		"0 6 magic|6 2 version|8 32 cipher_name|40 32 cipher_mode|72 32 hash_spec|104 4 payload_offset|108 4 key_bytes|112 20 mk_digest|132 32 mk_digest_salt|164 4 mk_digest_iterations|168 40 uuid|208 384 key_slots|0 4 active|4 4 iterations|8 32 salt|40 4 key_material_offset|44 4 stripes" \
		"$(gdb_plain luks.elf -ex 'ptype/o struct luks_header' \
			-ex 'ptype/o struct luks_key_slot' |
		   sed -n 's#^/\* *\([0-9]*\) *| *\([0-9]*\) \*/ .* \**\([a-z_]*\)\(\[[0-9]*\]\)\{0,1\};$#\1 \2 \3#p' |
		   paste -sd'|')"
	# Where the guest's first data cluster lies (qemu-img map's first data
	# range, looked up in the image's own L1 and L2 tables here), and
	# that its bytes there are encrypted: translate said only "host
	# offset".
	mapfile -t lk_args < <(corpus_luks_opts corpus/luks.qcow2)
	lk_guest=$(qemu-img map --output=json "${lk_args[@]}" | jq -r '[.[] | select(.data)][0].start')
	lk_host=$(python3 - corpus/luks.qcow2 "$lk_guest" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
hdr = f.read(104)
bits = struct.unpack(">I", hdr[20:24])[0]
l1 = struct.unpack(">Q", hdr[40:48])[0]
esize = 16 if struct.unpack(">Q", hdr[72:80])[0] & 16 else 8
per = (1 << bits) // esize
cluster = int(sys.argv[2]) >> bits
f.seek(l1 + 8 * (cluster // per))
l2 = struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00
f.seek(l2 + esize * (cluster % per))
print(struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00)
PY
)
	printf 'qcow2 translate %s\n' "$lk_guest" >luksmap.gdb
	assert_eq "LUKS: translate says the host bytes are encrypted, at the L2 entry's offset" \
		"$(printf 'host offset 0x%x (LUKS-encrypted: the guest reads these bytes decrypted)' "$lk_host")" \
		"$(gdb_helpers luks.elf luksmap.gdb | tail -1)"
else
	fail "LUKS: dump of corpus/luks.qcow2"
fi

# --- Nothing to list says so (it printed nothing), and offsets take
# qemu-img's suffixes in sums ("1M+4k" was an invalid number).
"$Q2E" dump rc1.qcow2 -o rc1.elf
printf '%s\n' 'qcow2 snapshots' 'qcow2 bitmaps' 'qcow2 regions bitmap data' \
	'qcow2 regions bogus' 'qcow2 translate -1' >none.gdb
out=$(gdb_helpers rc1.elf none.gdb)
assert_eq "empty answers: said, and a bad kind or offset is an error" \
	"no snapshots|no bitmaps|no regions of kind 'bitmap data'|qcow2 regions: no kind 'bogus'; kinds: header,|qcow2 translate: guest offset -1 is negative" \
	"$(sed 's/\(kinds: header,\).*/\1/' <<<"$out" | paste -sd'|')"
printf '%s\n' 'qcow2 translate 1052672' 'qcow2 translate 8' >num.gdb
printf '%s\n' 'qcow2 translate 1M+4k' 'qcow2 translate 010' >sum.gdb
assert_eq "qcow2 translate 1M+4k is 1052672, and 010 is 8 as gdb reads it" \
	"$(gdb_helpers rc1.elf num.gdb)" "$(gdb_helpers rc1.elf sum.gdb)"
printf '%s\n' 'qcow2 translate 0x100000+4k' >hexsum.gdb
assert_eq "qcow2 translate 0x100000+4k is 1052672" \
	"$(printf '%s\n' 'qcow2 translate 1052672' >one.gdb; gdb_helpers rc1.elf one.gdb)" \
	"$(gdb_helpers rc1.elf hexsum.gdb)"

# --- Sizes as qemu-img reads them (1m was an invalid number, only k took
# either case), and an expression with spaces ("0x100000 + 4096" printed
# the usage).  qemu-img create reads each size; whatis echoes the offset.
: >sizes.gdb
want=
# 0x10k: hex with a suffix, which QEMU 7.2 takes with a warning; the
# fraction rounds half up (1025, where 1024.5 truncated would be 1024).
for sz in 1m 1.5M 512B 1g 3k 2.25m 0x10k 1.0B 1.00048828125k; do
	# create rounds the file up to 512 bytes: the size it was asked is
	# the one it prints.
	want+="$(qemu-img create -f raw sz.raw "$sz" 2>/dev/null | sed -n 's/.* size=\([0-9]*\).*/\1/p' | xargs printf '0x%x')|"
	printf 'qcow2 whatis %s\n' "$sz" >>sizes.gdb
done
printf '%s\n' 'qcow2 whatis 64M-1' 'qcow2 whatis 0x100000 + 4096' \
	'qcow2 whatis 1M - 4k + 1' 'qcow2 whatis 0x1e+4k' 'qcow2 whatis 1M+1e+3' >>sizes.gdb
assert_eq "qcow2 whatis reads sizes as qemu-img create does, sums with spaces, hex ending in e, gdb's floats" \
	"${want}0x3ffffff|0x101000|0xff001|0x101e|0x1003e8" \
	"$(gdb_helpers rc1.elf sizes.gdb | sed 's/:.*//' | paste -sd'|')"
printf '%s\n' 'qcow2 whatis -5' 'qcow2 bitmap b0 -1' 'qcow2 whatis 16E' 'qcow2 whatis 1.5' 'qcow2 whatis 1e+3' \
	'qcow2 whatis 7E+7E' 'qcow2 whatis 1e999' >neg.gdb
assert_eq "a negative offset, a size or sum past 2^63 - 1, a fraction of a byte and infinity are errors; 1e+3 is gdb's 1000" \
	"qcow2 whatis: offset -5 is negative|qcow2 bitmap: guest offset -1 is negative|qcow2 whatis: cannot read '16E': past 2^63 - 1, the largest size qemu-img takes|qcow2 whatis: cannot read '1.5': not a whole number|0x3e8|qcow2 whatis: cannot read '7E+7E': past 2^63 - 1, the largest size qemu-img takes|qcow2 whatis: cannot read '1e999': not a whole number" \
	"$(gdb_helpers img.elf neg.gdb | sed 's/^\(0x[0-9a-f]*\):.*/\1/' | paste -sd'|')"
for sz in 16E 1.5; do
	assert_status "qemu-img refuses $sz too" 1 qemu-img create -q -f raw sz.raw "$sz"
done
printf '%s\n' "qcow2 translate 4M + 4k 'first snap'" "qcow2 translate 4M+4k 'first snap'" >snapsum.gdb
out=$(gdb_helpers img.elf snapsum.gdb)
assert_match "an expression with spaces, then a snapshot" "^snapshot_0_l1_table\[0\]" "$out"
assert_eq "reads as the same without the spaces" "$(sed -n '1,3p' <<<"$out")" "$(sed -n '4,6p' <<<"$out")"

# --- A bitmap QEMU did not store (it died with the bitmap in use): its
# bits may be out of date, which the answer says, as qemu-img info's flag.
qemu-img create -q -f qcow2 inuse.qcow2 64M
qemu-img bitmap --add inuse.qcow2 b0
qemu-io -c 'write 0 1M' inuse.qcow2 >/dev/null
(qemu-io -c 'write 40M 64k' -c abort inuse.qcow2) >/dev/null 2>&1
assert_eq "qemu-img info: the bitmap is in use" '["in-use","auto"]' \
	"$(qemu-img info -U --output=json inuse.qcow2 | jq -c '."format-specific".data.bitmaps[0].flags')"
"$Q2E" dump inuse.qcow2 -o inuse.elf
printf '%s\n' 'qcow2 bitmap b0 40M' >inuse.gdb
assert_match "qcow2 bitmap warns that an in_use bitmap's bits may be out of date" \
	"^bitmap_0 'b0' is in_use: .* may be out of date" "$(gdb_helpers inuse.elf inuse.gdb)"
printf '%s\n' 'qcow2 bitmap b0 8M' >stored.gdb
assert_eq "and not for a bitmap QEMU stored" "0" "$(gdb_helpers img.elf stored.gdb | grep -c in_use)"
"$Q2E" dump --no-data inuse.qcow2 -o nodata.elf
printf '%s\n' 'qcow2 info' >nodata.gdb
assert_match "a --no-data dump: the helpers say why they read no header" \
	"nodata.elf': its header section holds no bytes \(a dump written with --no-data" \
	"$(gdb_helpers nodata.elf nodata.gdb)"

# --- A snapshot is found by its ID before its name, as qemu-img snapshot
# -a finds it: here ID 1 is named "2" and ID 2 is named "1" (both named
# snapshot_0, the first entry that matched either).
qemu-img create -q -f qcow2 idname.qcow2 16M
qemu-io -c 'write -P 1 0 64k' idname.qcow2 >/dev/null
qemu-img snapshot -c 2 idname.qcow2
qemu-io -c 'write -P 2 0 64k' idname.qcow2 >/dev/null
qemu-img snapshot -c 1 idname.qcow2
"$Q2E" dump idname.qcow2 -o idname.elf
printf '%s\n' 'qcow2 translate 0 1' 'qcow2 translate 0 2' >idname.gdb
assert_eq "qcow2 translate: SNAPSHOT is an ID before it is a name" \
	"snapshot_0_l1_table snapshot_1_l1_table" \
	"$(gdb_helpers idname.elf idname.gdb | sed -n 's/^\(snapshot_[0-9]*_l1_table\)\[.*/\1/p' | paste -sd' ')"

# --- A snapshot whose name could end the offset ("+4096"): translate
# added it to the offset and used the active table (found by review).
# Quoted, it is the snapshot; unquoted, which was meant cannot be told.
qemu-img create -q -f qcow2 sign.qcow2 16M
qemu-io -c 'write -P 1 0 128k' sign.qcow2 >/dev/null
qemu-img snapshot -c '+4096' sign.qcow2
qemu-io -c 'write -P 2 0 128k' sign.qcow2 >/dev/null
"$Q2E" dump sign.qcow2 -o sign.elf
printf '%s\n' "qcow2 translate 0x10000 '+4096'" 'qcow2 translate 0x10000 +4096' 'qcow2 translate 0x10000+4096' >sign.gdb
out=$(gdb_helpers sign.elf sign.gdb)
assert_match "quoted, +4096 is the snapshot" "^snapshot_0_l1_table\[0\]" "$out"
assert_match "unquoted, an error says to quote it" "'\+4096' ends an offset and names a snapshot: quote the snapshot" "$out"
assert_eq "without spaces, the offset 0x11000 in the active table, where qemu-img map has it" \
	"host offset $(qemu-img map --output=json sign.qcow2 | jq -r '.[] | select(.start <= 69632 and 69632 < .start + .length) | .offset + 69632 - .start' | xargs printf '0x%x')" \
	"$(tail -1 <<<"$out")"

# --- Names from the image reach the terminal escaped, as the CLI writes them.
# An OSC sequence retitles a terminal; C1 CSI (U+009B) starts a sequence on
# some; a bad byte (0xff) is not text.
snap=$(printf 'evil\033]0;pwned\007 \302\233 \377x')
bm=$(printf 'bm\033[31mred')
qemu-img create -q -f qcow2 names.qcow2 64M
qemu-img snapshot -c "$snap" names.qcow2
qemu-img bitmap --add names.qcow2 "$bm"
"$Q2E" dump names.qcow2 -o names.elf
printf '%s\n' 'qcow2 snapshots' 'qcow2 bitmaps' 'qcow2 bitmap bm\\x1b[31mred 0' \
	'qcow2 translate 0 "evil\\x1b]0;pwned\\x07 \\xc2\\x9b \\xffx"' 'p snapshot_0' 'p bitmap_0' >names.gdb
out=$(gdb_helpers names.elf names.gdb)
case $out in
*$'\033'* | *$'\007'* | *$'\302\233'* | *$'\377'*)
	fail "gdb helpers: no control character or bad byte from a name reaches the terminal" "$(printf '%s' "$out" | cat -v | head -5)" ;;
*) pass "gdb helpers: no control character or bad byte from a name reaches the terminal" ;;
esac
cli=$("$Q2E" info names.qcow2 | sed -n 's/^ *name  *\(evil.*\)$/\1/p')
assert_eq "the CLI escapes the snapshot name as the tests expect" 'evil\x1b]0;pwned\x07 \xc2\x9b \xffx' "$cli"
line=$(printf '%s\n' "$out" | grep '^snapshot_0 ')
case $line in
"snapshot_0 id 1 name '$cli' l1_table 0x"*) pass "qcow2 snapshots: the name escaped as the CLI escapes it" ;;
*) fail "qcow2 snapshots: the name escaped as the CLI escapes it" "$line" ;;
esac
assert_match "qcow2 bitmaps: the name escaped" "^bitmap_0 'bm\\\\x1b\[31mred' flags auto" "$out"
assert_match "qcow2 bitmap: found by its name as printed" "^bit 0 \(guest 0x0-0xffff\): clear$" "$out"
assert_match "qcow2 translate: a snapshot found by its name as printed" "^snapshot_0_l1_table\[0\]" "$out"
assert_match "pretty-printer: a bitmap entry's name escaped" "= bitmap 'bm\\\\x1b\[31mred' = \{" "$out"
line=$(printf '%s\n' "$out" | grep '= snapshot id 1 ')
case $line in
*"= snapshot id 1 '$cli' = {"*) pass "pretty-printer: a snapshot entry's name escaped as the CLI escapes it" ;;
*) fail "pretty-printer: a snapshot entry's name escaped as the CLI escapes it" "$line" ;;
esac

# --- A literal backslash in a name prints as \\ (as qcow2elf prints it):
# the snapshot named with the four characters s\x1b and the one named s
# and ESC both printed 's\x1b', and the first could not be reached.  Each
# is given as printed, gdb's quoting doubling each backslash.
qemu-img create -q -f qcow2 bs.qcow2 4M
qemu-io -c 'write -P 1 0 64k' bs.qcow2 >/dev/null
qemu-img snapshot -c 's\x1b' bs.qcow2
qemu-io -c 'write -P 2 64k 64k' bs.qcow2 >/dev/null
qemu-img snapshot -c "$(printf 's\033')" bs.qcow2
qemu-img bitmap --add bs.qcow2 'b\x1b'
qemu-io -c 'write -P 3 128k 64k' bs.qcow2 >/dev/null
qemu-img bitmap --add bs.qcow2 "$(printf 'b\033')"
"$Q2E" dump bs.qcow2 -o bs.elf
cat >bs.gdb <<'GDB'
qcow2 snapshots
qcow2 bitmaps
qcow2 translate 64k 's\\\\x1b'
qcow2 translate 64k 's\\x1b'
qcow2 bitmap 'b\\\\x1b' 128k
qcow2 bitmap 'b\\x1b' 128k
p snapshot_0
p bitmap_0
qcow2 bitmap 'b\\q' 0
GDB
out=$(gdb_helpers bs.elf bs.gdb)
assert_eq "qcow2 snapshots: a backslash as \\\\, ESC as \\x1b" "snapshot_0 id 1 name 's\\\\x1b'|snapshot_1 id 2 name 's\\x1b'" \
	"$(grep '^snapshot_[0-9] ' <<<"$out" | sed 's/ l1_table.*//' | paste -sd'|')"
assert_eq "qcow2 bitmaps: a backslash as \\\\, ESC as \\x1b" "bitmap_0 'b\\\\x1b'|bitmap_1 'b\\x1b'" \
	"$(grep '^bitmap_[0-9] ' <<<"$out" | sed 's/ flags.*//' | paste -sd'|')"
assert_eq "qcow2 translate: each snapshot reached by its name as printed" "snapshot_0_l1_table snapshot_1_l1_table" \
	"$(sed -n 's/^\(snapshot_[0-9]*_l1_table\)\[.*/\1/p' <<<"$out" | paste -sd' ')"
assert_eq "qcow2 bitmap: each bitmap reached by its name as printed (b\\x1b was added before the write)" \
	"bitmap_0_table set bitmap_1_table clear" \
	"$(sed -n 's/^\(bitmap_[0-9]_table\)\[.*/\1/p; s/^bit .*: \(set\|clear\)$/\1/p' <<<"$out" | paste -sd' ')"
assert_match "pretty-printer: a snapshot entry's name as the commands print it" "= snapshot id 1 's\\\\\\\\x1b' = \{" "$out"
assert_match "pretty-printer: a bitmap entry's name as the commands print it" "= bitmap 'b\\\\\\\\x1b' = \{" "$out"
assert_match "a name with a backslash that is not as printed: said" "qcow2 bitmap: 'b\\\\q' is not a name as printed" "$out"

# --- qcow2 translate SNAPSHOT checks the snapshot's own size (its
# disk_size), not the image's: past a 1 MiB snapshot of a 64 MiB image it
# said "unallocated".
qemu-img create -q -f qcow2 grown.qcow2 1M
qemu-img snapshot -c small grown.qcow2
qemu-img resize -q grown.qcow2 64M
"$Q2E" dump grown.qcow2 -o grown.elf
printf '%s\n' 'qcow2 translate 32M small' 'qcow2 translate 1M small' 'qcow2 translate 1048575 small' 'qcow2 translate 32M' >grown.gdb
out=$(gdb_helpers grown.elf grown.gdb)
assert_eq "qcow2 translate: past a snapshot's own size is an error; within it, and the active image's, answers" \
	"qcow2 translate: guest offset 0x2000000 is past the virtual size of snapshot_0 (ID 1, name 'small'), 0x100000|qcow2 translate: guest offset 0x100000 is past the virtual size of snapshot_0 (ID 1, name 'small'), 0x100000|unallocated (reads as zeros)|unallocated (reads as zeros)" \
	"$(grep '^qcow2 translate\|^unallocated\|^host' <<<"$out" | paste -sd'|')"

# --- The zero flag in a version 2 image: QEMU fails the read (EIO, "Zero
# cluster entry found in pre-v3 image") and map refuses; translate said
# "zero".
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M
qemu-io -c 'write -P 1 0 128k' v2.qcow2 >/dev/null
python3 - v2.qcow2 <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(40)
    l1, = struct.unpack(">Q", f.read(8))
    f.seek(l1)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00
    f.seek(l2 + 8 + 7)              # L2 entry 1: the zero flag
    b = f.read(1)[0]
    f.seek(l2 + 8 + 7)
    f.write(bytes([b | 1]))
PY
"$Q2E" dump v2.qcow2 -o v2.elf 2>/dev/null
printf '%s\n' 'qcow2 translate 64k' 'p l2_table_0[1]' 'qcow2 translate 0' >v2.gdb
out=$(gdb_helpers v2.elf v2.gdb)
assert_match "version 2, zero flag: qcow2 translate says QEMU refuses it" \
	"^qcow2 translate: l2_table_0\[1\] has the zero flag, which a version 2 image does not have: QEMU refuses to read it \(EIO\)$" "$out"
assert_eq "and says no 'zero' result" "" "$(grep -x zero <<<"$out")"
assert_match "the entry's view says so too" "^\\\$1 = 0x8000000000[0-9a-f]{5}1  host 0x[0-9a-f]+, zero flag \(QEMU refuses it in a version 2 image\), copied$" "$out"
"$Q2E" map v2.qcow2 >/dev/null 2>v2.err
assert_match "as qcow2elf map refuses it" "has the zero flag, which a version 2 image does not have" "$(cat v2.err)"
assert_match "its neighbour still translates" "^host offset 0x[0-9a-f]+$" "$(tail -1 <<<"$out")"

# --- With an external data file, COPIED and offset 0 is the data file's
# first cluster: the entry read "unallocated, copied" above "host offset 0x0".
qemu-img create -q -f qcow2 -o data_file=ext.raw ext.qcow2 4M
qemu-io -c 'write -P 1 0 128k' ext.qcow2 >/dev/null
"$Q2E" dump ext.qcow2 -o ext.elf
printf '%s\n' 'qcow2 translate 0' 'p l2_table_0[0]' 'p l2_table_0[2]' >ext.gdb
assert_eq "external data file: the entry of offset 0 reads as its result" \
	"$(printf '%s\n' 'l2_table_0[0] = 0x8000000000000000  host 0x0, copied' "host offset 0x0 (in the external data file '$(qemu-img map ext.qcow2 | awk 'NR == 2 { print $4 }')')" \
		'$1 = 0x8000000000000000  host 0x0, copied' '$2 = 0x0000000000000000  unallocated')" \
	"$(gdb_helpers ext.elf ext.gdb | grep -v '^l1_table')"
assert_eq "as qemu-img map maps it" "0 0" "$(qemu-img map --output=json ext.qcow2 | jq -r '.[0] | "\(.start) \(.offset)"')"

# --- qcow2 regions takes a quoted kind, as the other commands take their
# arguments ("no kind '\"L1 table\"'").
printf '%s\n' 'qcow2 regions L1 table' >kind1.gdb
printf '%s\n' 'qcow2 regions "L1 table"' >kind2.gdb
printf '%s\n' "qcow2 regions 'l1 table'" >kind3.gdb
want=$(gdb_helpers img.elf kind1.gdb)
assert_match "qcow2 regions L1 table lists the L1 tables" "^l1_table +L1 table " "$want"
assert_eq "qcow2 regions \"L1 table\": the same" "$want" "$(gdb_helpers img.elf kind2.gdb)"
assert_eq "qcow2 regions 'l1 table': the same" "$want" "$(gdb_helpers img.elf kind3.gdb)"

# --- Past gdb 13's 32767 sections: 1 GiB, 512-byte clusters. --------------
qemu-img create -q -f qcow2 -o cluster_size=512,preallocation=metadata big.qcow2 1G
"$Q2E" dump big.qcow2 -o big.elf 2>dump.err
nsec=$(readelf -hW big.elf | sed -n 's/.*Number of section headers: *\([0-9]*\).*/\1/p')
[ "${nsec:-0}" -gt 40000 ] && pass "the 1 GiB dump has more than 40,000 sections ($nsec)" || fail "more than 40,000 sections" "$nsec"
last_l2=$(readelf -sW big.elf | awk '$8 ~ /^l2_table_[0-9]+$/ {sub("l2_table_", "", $8); if ($8 > m) m = $8} END {print m + 0}')
last_rb=$(readelf -sW big.elf | awk '$8 ~ /^refcount_block_[0-9]+$/ {sub("refcount_block_", "", $8); if ($8 > m) m = $8} END {print m + 0}')
l2a=$((16#$(readelf -sW big.elf | awk -v s="l2_table_$last_l2" '$8 == s {print $2}')))
rba=$((16#$(readelf -sW big.elf | awk -v s="refcount_block_$last_rb" '$8 == s {print $2}')))
be8() { od -An -v -tx1 -j "$2" -N 8 "$1" | tr -d ' \n' | sed 's/^0*//; s/^$/0/'; }
be2() { echo $((16#$(od -An -v -tx1 -j "$2" -N 2 "$1" | tr -d ' \n'))); }
printf '%s\n' "p/x l2_table_$last_l2[63].raw" "p refcount_block_$last_rb[0]" "p/x &refcount_block_$last_rb" \
	"qcow2 translate 0x3fffffff" "qcow2 refcount $l2a" "qcow2 whatis $((l2a + 8 * 5))" >big.gdb
out=$(gdb_helpers big.elf big.gdb)
mapfile -t g <<<"$out"
assert_eq "the last L2 table (l2_table_$last_l2) prints its last entry" "\$1 = 0x$(be8 big.qcow2 $((l2a + 8 * 63)))" "${g[0]}"
assert_eq "the last refcount block prints its first refcount" "\$2 = $(be2 big.qcow2 "$rba")" "${g[1]}"
assert_eq "at its address" "\$3 = $(printf 0x%x "$rba")" "${g[2]}"
last=$(qemu-img map --output=json big.qcow2 | jq -r 'last | .offset + .length - 1')
assert_eq "qcow2 translate: the last guest byte" "host offset $(printf 0x%x "$last")" "${g[5]}"
assert_eq "qcow2 refcount: the last L2 table's cluster" "refcount_block_$(((l2a / 512) / 256))[$(((l2a / 512) % 256))] = 1" "${g[6]}"
assert_match "qcow2 whatis past gdb's symbol limit" "^$(printf 0x%x $((l2a + 40))): l2_table_$last_l2\[5\] " "${g[7]}"

# A snapshot that shares an earlier snapshot's L1 table: its L2 tables
# have that snapshot's symbols, which translate names (it named the
# active L1's table at the same address: found by review).
three_snapshots sh.qcow2
python3 "$TOP/tests/lib/hostile.py" share-snapshot-l1 sh.qcow2 2
"$Q2E" dump sh.qcow2 -o sh.elf
printf '%s\n' 'qcow2 translate 0 3' >sh.gdb
out=$(gdb_helpers sh.elf sh.gdb)
assert_match "qcow2 translate in a snapshot sharing another's L1 table names that snapshot's L2 table" \
	"^snapshot_1_l2_table_0\[0\] = " "$(tail -2 <<<"$out" | head -1)"
finish
