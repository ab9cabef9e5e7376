#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `dump --redact` (issue 13): a dump to attach to a bug report.  On a LUKS
# image with a backing file, a snapshot and a bitmap made by qemu-img, the
# names, file names, LUKS key material and digests and bitmap contents are
# absent from the redacted dump, whose layout is the plain dump's, and
# check, map, info, restore, readelf and gdb still read it.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io readelf jq python3 gdb

cd "$T_TMP" || finish

img=vm-private-disk.qcow2
secret=(--object secret,id=sec0,data=hunter2)
opts="driver=qcow2,file.filename=$img,encrypt.key-secret=sec0"
qemu-img create -q -f qcow2 base-private-name.qcow2 64M
# On a loaded machine QEMU's PBKDF timing can fail ("Unable to get
# accurate CPU usage", half the tries on a fast processor): up to 50 tries half a second apart,
# as tests/lib/corpus.sh makes its LUKS images.
for try in $(seq 50); do
	qemu-img create -q -f qcow2 "${secret[@]}" -b base-private-name.qcow2 \
		-F qcow2 -o encrypt.format=luks,encrypt.key-secret=sec0 \
		"$img" 64M && break
	rm -f "$img"
	sleep 0.5
done
qemu-io "${secret[@]}" --image-opts "$opts" -c 'write -P 0x55 0 64k' >/dev/null
qemu-img snapshot "${secret[@]}" --image-opts "$opts" -c private-snapshot-name
qemu-img bitmap "${secret[@]}" --image-opts "$opts" --add private-bitmap-name
# A write after the bitmap: its data cluster has a bit set.
qemu-io "${secret[@]}" --image-opts "$opts" -c 'write -P 0x66 1M 64k' >/dev/null

"$Q2E" dump "$img" -o plain.elf || fail "plain dump"
assert_status "dump --redact exits 0" 0 "$Q2E" dump --redact "$img" -o red.elf

# in FILE HEX: whether the bytes (hex) occur in FILE: "yes" or "no".
in_file() {
	python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
print("yes" if bytes.fromhex(sys.argv[2]) in d else "no")' "$1" "$2"
}
# hex_at FILE OFFSET LEN: the bytes there, in hex.
hex_at() { od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

secret_strings_case() {
	local s
	for s in private-snapshot-name private-bitmap-name base-private-name \
		 vm-private-disk; do
		# Against the plain dump too, so that the test cannot pass
		# by looking for something no dump holds.
		assert_eq "the plain dump holds '$s'" yes \
			"$(in_file plain.elf "$(printf %s "$s" | od -An -tx1 | tr -d ' \n')")"
		assert_eq "the redacted dump does not hold '$s'" no \
			"$(in_file red.elf "$(printf %s "$s" | od -An -tx1 | tr -d ' \n')")"
	done
}

luks_case() {
	local crypt key_off digest salt key
	# Where the LUKS header is: the full disk encryption header
	# extension's offset; where slot 0's key is: qemu-img info's.
	crypt=$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(65536)
off = struct.unpack(">I", b[100:104])[0]
while off + 8 <= len(b):
    magic, n = struct.unpack(">II", b[off:off + 8])
    if magic in (0, 0x0537be77):
        break
    off += 8 + (n + 7) // 8 * 8
print(struct.unpack(">Q", b[off + 8:off + 16])[0] if magic else "none")' "$img")
	key_off=$(qemu-img info --output=json "$img" |
		  jq '.["format-specific"].data.encrypt.slots[0]."key-offset"')
	digest=$(hex_at "$img" $((crypt + 112)) 20)	# mk_digest
	salt=$(hex_at "$img" $((crypt + 208 + 8)) 32)	# slot 0's salt
	key=$(hex_at "$img" $((crypt + key_off)) 64)	# slot 0's key material
	assert_eq "the LUKS header is at its extension's offset" "4c554b53babe" \
		"$(hex_at "$img" "$crypt" 6)"
	# Each against the plain dump too, so that the test cannot pass by
	# looking for bytes no dump holds.
	assert_eq "the plain dump holds slot 0's key material" yes "$(in_file plain.elf "$key")"
	assert_eq "the redacted dump does not" no "$(in_file red.elf "$key")"
	assert_eq "the plain dump holds the master key digest" yes "$(in_file plain.elf "$digest")"
	assert_eq "the redacted dump does not" no "$(in_file red.elf "$digest")"
	assert_eq "the plain dump holds slot 0's salt" yes "$(in_file plain.elf "$salt")"
	assert_eq "the redacted dump does not" no "$(in_file red.elf "$salt")"
	assert_eq "the LUKS header's fields are kept" \
		"$("$Q2E" info --output=json plain.elf | jq -c .encrypt)" \
		"$("$Q2E" info --output=json red.elf | jq -c .encrypt)"
}

# Sections of a dump: "name addr size" per line, from readelf.
layout() {
	readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] \(\.qcow2\.[^ ]*\) *[A-Z]* *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2 \3/p'
}

layout_case() {
	layout plain.elf >plain.layout
	layout red.elf >red.layout
	[ -s plain.layout ] || { fail "the plain dump has sections"; return; }
	assert_same_file "the layout (sections, addresses, sizes) is the plain dump's" \
		plain.layout red.layout
	assert_match "the note says what was removed" \
		"qcow2elf:redacted=luks-key-material,luks-digests,snapshot-names,bitmap-names,file-names,bitmap-data" \
		"$(readelf -nW red.elf)"
	assert_match "the bitmap data cluster holds no bytes" \
		'\.qcow2\.bitmap\.0\.data\.0 +NOBITS' "$(readelf -SW red.elf)"
	assert_match "which it does in the plain dump" \
		'\.qcow2\.bitmap\.0\.data\.0 +PROGBITS' "$(readelf -SW plain.elf)"
	readelf -aW red.elf >/dev/null 2>readelf.err
	assert_eq "readelf reads it without a warning" "" "$(cat readelf.err)"
}

commands_case() {
	"$Q2E" check plain.elf >plain.check 2>&1
	assert_status "check reads it" 0 "$Q2E" check red.elf
	"$Q2E" check red.elf >red.check 2>&1
	assert_same_file "and finds what it finds in the plain dump" plain.check red.check
	assert_status "map reads it" 0 "$Q2E" map --output=json red.elf
	assert_match "and shows the data written" '"start": 1048576' "$(cat "$T_TMP/.out")"
	assert_status "info reads it" 0 "$Q2E" info --output=json red.elf
	# As long as private-snapshot-name, private-bitmap-name and
	# base-private-name.qcow2: 21, 19 and 23 bytes.
	assert_eq "with placeholders of the same length for the names" \
		"snapshot-1___________ bitmap-0___________ backing-file-0_________" \
		"$(jq -r '[.snapshots[0].name, .bitmaps[0].name, ."backing-filename"] | join(" ")' "$T_TMP/.out")"
	assert_status "restore writes an image from it" 0 \
		"$Q2E" restore red.elf -o restored.qcow2
	# Its backing file name is the placeholder, which names no file:
	# check exits 1 as qemu-img check does on a missing backing file.
	assert_status "whose check says its backing file is missing" 1 \
		"$Q2E" check restored.qcow2
	assert_match "naming the placeholder" "backing-file-0_*'" \
		"$(cat "$T_TMP/.out" "$T_TMP/.err" 2>/dev/null)"
	# (gdb writes the padding as '_' <repeats 11 times>)
	assert_match "gdb prints a snapshot's placeholder name" \
		'name = "snapshot-1"' \
		"$(gdb -nx -batch -ex 'p snapshot_0' red.elf 2>/dev/null)"
}

# A damaged image where structures share bytes (issue 14, found by the fuzz
# target: tests/fuzz/corpus/redact-overlap-*): the snapshot's L1 table moved
# onto the snapshot table, so that its entries are the snapshot entry's
# bytes, name included; and the bitmap's data cluster is the active L2
# table.  Replacing those names or zeroing that cluster would change the
# tables the dump reads with: the redacted dump must read as the image
# does, with the names nothing else holds still replaced.
overlap_case() {
	local v=overlap.json
	qemu-img create -q -f qcow2 -o cluster_size=4096 overlap.qcow2 16M
	qemu-io -c 'write -P 0x55 0 8k' overlap.qcow2 >/dev/null
	qemu-img snapshot -c private-snapshot-name overlap.qcow2
	qemu-img bitmap --add overlap.qcow2 private-bitmap-name
	qemu-io -c 'write -P 0x66 1M 4k' overlap.qcow2 >/dev/null
	"$Q2E" check -M --output=json overlap.qcow2 >"$v"
	python3 - overlap.qcow2 "$v" <<'PY' || return 1
import json, struct, sys
v = json.load(open(sys.argv[2]))["viscera"]
table = v["snapshot-table"]["location"]["offset"]
l2 = v["active-l1"]["l2-list"][0]["offset"]
bt = v["bitmaps"]["bitmap-dir"]["dir-entries"][0]["bitmap-table"]["location"]["offset"]
with open(sys.argv[1], "r+b") as f:
    f.seek(table)    # entry 0: l1_table_offset, l1_size (a cluster's worth)
    f.write(struct.pack(">QI", table, 4096 // 8))
    f.seek(bt)       # the bitmap table's one entry: its data cluster
    f.write(struct.pack(">Q", l2))
PY
	assert_match "the image has the overlaps" \
		"snapshot_0_l1_table .* and snapshot_table .* share cluster" \
		"$("$Q2E" check overlap.qcow2 2>/dev/null)"
	assert_match "and the bitmap's data is the L2 table" \
		"l2_table_0 .* and bitmap_0_data_0 .* share cluster" \
		"$("$Q2E" check overlap.qcow2 2>/dev/null)"
	assert_status "dump --redact exits 0" 0 \
		"$Q2E" dump --redact overlap.qcow2 -o overlap.elf
	"$Q2E" check overlap.qcow2 >img.check 2>/dev/null
	local st=$?
	assert_status "check of the redacted dump exits as the image's ($st)" \
		"$st" "$Q2E" check overlap.elf
	"$Q2E" check overlap.elf >red.check 2>/dev/null
	assert_same_file "and prints the same report" img.check red.check
	# Names aside (the bitmap's is replaced), the same structures at the
	# same offsets with the same findings.
	local names='del(.filename) | (.. | objects | select(has("bitmap-name")) | ."bitmap-name") |= "N"'
	"$Q2E" check -M --output=json overlap.qcow2 2>/dev/null | jq -S "$names" >img.json
	"$Q2E" check -M --output=json overlap.elf 2>/dev/null | jq -S "$names" >red.json
	assert_same_file "check -M --output=json reads the same tables" \
		img.json red.json
	"$Q2E" map --output=json overlap.qcow2 >img.map 2>/dev/null
	"$Q2E" map --output=json overlap.elf >red.map 2>/dev/null
	assert_same_file "map --output=json maps the same clusters" \
		img.map red.map
	assert_match "the data at 0 among them (the L2 table kept)" \
		'"start": 0, "length": 8192, .*"data": true' "$(cat red.map)"
	local hex
	hex=$(printf %s private-bitmap-name | od -An -tx1 | tr -d ' \n')
	assert_eq "the bitmap name, in no other structure, is replaced" \
		"yes no" "$(in_file overlap.qcow2 "$hex") $(in_file overlap.elf "$hex")"
	# Its bytes are L1 entries too: they are the L1 table's metadata.
	hex=$(printf %s private-snapshot-name | od -An -tx1 | tr -d ' \n')
	assert_eq "the snapshot name, read as L1 entries too, is kept" \
		yes "$(in_file overlap.elf "$hex")"
}

# Dumped again without --redact, a redacted dump stays one.
again_case() {
	"$Q2E" dump red.elf -o again.elf || return 1
	assert_match "a dump of a redacted dump says it is redacted" \
		"qcow2elf:redacted=" "$(readelf -nW again.elf)"
}

# The external data file's name: in an extension of its own, which the
# end marker's bytes kept after it must not keep too.
data_file_case() {
	local hex
	qemu-img create -q -f qcow2 -o data_file=private-data-file.raw \
		df.qcow2 64M
	qemu-io -c 'write -P 0x77 0 64k' df.qcow2 >/dev/null
	"$Q2E" dump df.qcow2 -o df.elf || return 1
	assert_status "dump --redact of an image with a data file exits 0" 0 \
		"$Q2E" dump --redact df.qcow2 -o dfr.elf
	hex=$(printf %s private-data-file | od -An -tx1 | tr -d ' \n')
	assert_eq "the plain dump holds the data file's name" yes "$(in_file df.elf "$hex")"
	assert_eq "the redacted dump does not" no "$(in_file dfr.elf "$hex")"
	assert_eq "info gives a placeholder of the same length" \
		"data-file-0__________" \
		"$("$Q2E" info --output=json dfr.elf | jq -r '."data-file"')"
	assert_eq "and the same extensions as the plain dump's" \
		"$("$Q2E" info --output=json df.elf | jq -c '[.extensions[].name]')" \
		"$("$Q2E" info --output=json dfr.elf | jq -c '[.extensions[].name]')"
}

# Short names stay as many names: twelve snapshots named by one letter
# each get twelve different placeholders of one byte (the last digit of
# "s10" and "s0" were both "0").
short_names_case() {
	local n
	qemu-img create -q -f qcow2 short.qcow2 16M
	for n in a b c d e f g h i j k l; do
		qemu-img snapshot -c "$n" short.qcow2
	done
	"$Q2E" dump --redact short.qcow2 -o short.elf || return 1
	assert_eq "twelve snapshot names, of one byte each, all different" \
		"12 12 1" "$("$Q2E" info --output=json short.elf |
			jq -r '[.snapshots | length, (map(.name) | unique | length),
				(map(.name | length) | max)] | join(" ")')"
	# Numbered by ID, one-letter names of IDs 1 and 53 would both be "B"
	# (53 = 52 + 1): the higher takes a letter no name has.  After the
	# first is deleted, diff of the redacted dumps pairs the others by
	# ID, as diff of the images does.
	qemu-img create -q -f qcow2 wrap.qcow2 16M
	qemu-img snapshot -c a wrap.qcow2
	qemu-img snapshot -c b wrap.qcow2
	for n in $(seq 3 52); do qemu-img snapshot -c "t$n" wrap.qcow2; done
	qemu-img snapshot -c c wrap.qcow2
	for n in $(seq 3 52); do qemu-img snapshot -d "t$n" wrap.qcow2; done
	"$Q2E" dump --redact wrap.qcow2 -o wrap.elf || return 1
	assert_eq "IDs 1, 2 and 53, names of one byte: three names still" "1:B 2:C 53:A" \
		"$("$Q2E" info --output=json wrap.elf |
			jq -r '[.snapshots[] | "\(.id):\(.name)"] | join(" ")')"
	cp wrap.qcow2 wrap1.qcow2
	qemu-img snapshot -d a wrap1.qcow2
	"$Q2E" dump --redact wrap1.qcow2 -o wrap1.elf || return 1
	assert_eq "...and with the first deleted, diff pairs them as the images'" \
		"$("$Q2E" diff --output=json wrap.qcow2 wrap1.qcow2 | jq -c '.changes.snapshots | map({name, change})')" \
		"$("$Q2E" diff --output=json wrap.elf wrap1.elf | jq -c '.changes.snapshots | map({name, change})')"
	# Bitmaps pair by place where either side's names are placeholders:
	# a plain dump and a redacted one of one image do not differ.
	qemu-img create -q -f qcow2 bb.qcow2 16M
	qemu-img bitmap --add bb.qcow2 b1
	qemu-img bitmap --add bb.qcow2 b2
	"$Q2E" dump bb.qcow2 -o bbp.elf && "$Q2E" dump --redact bb.qcow2 -o bbr.elf ||
		return 1
	assert_status "a plain and a redacted dump of two bitmaps: the same metadata" 0 \
		"$Q2E" diff bbp.elf bbr.elf
	# A dump redacted: the image's placeholder is as long as the name of
	# the image its note names (short.qcow2), not the dump's (s.elf).
	"$Q2E" dump short.qcow2 -o s.elf && "$Q2E" dump --redact s.elf -o sr.elf ||
		return 1
	assert_eq "a redacted dump of a dump: the image's name as long as the image's" \
		"qcow2elf:image=image-0____" \
		"$(readelf -nW sr.elf | grep -o 'qcow2elf:image=[^ ]*')"
}

# A snapshot's placeholder follows its ID: after a snapshot is deleted,
# diff of two redacted dumps pairs the others as diff of plain ones does.
deleted_snapshot_case() {
	local v
	qemu-img create -q -f qcow2 del.qcow2 64M
	for v in alpha beta gamma; do
		qemu-img snapshot -c "$v" del.qcow2
		qemu-io -c 'write 0 64k' del.qcow2 >/dev/null
	done
	"$Q2E" dump del.qcow2 -o del0.elf && "$Q2E" dump --redact del.qcow2 -o delr0.elf ||
		return 1
	qemu-img snapshot -d alpha del.qcow2
	"$Q2E" dump del.qcow2 -o del1.elf && "$Q2E" dump --redact del.qcow2 -o delr1.elf ||
		return 1
	"$Q2E" diff --output=json del0.elf del1.elf | jq -S 'del(.old, .new) | .changes.snapshots' >plain.diff
	"$Q2E" diff --output=json delr0.elf delr1.elf | jq -S 'del(.old, .new) | .changes.snapshots' >red.diff
	assert_eq "a deleted snapshot: one snapshot removed, in either diff" 1 \
		"$(jq length red.diff)"
	assert_eq "...and the redacted diff's snapshot changes are the plain one's, names aside" \
		"$(jq -c 'map(del(.old, .new))' plain.diff)" "$(jq -c 'map(del(.old, .new))' red.diff)"
}

# Bitmap data is left out: gdb and diff say the bits are unknown, rather
# than read the missing cluster as zeros.
bitmap_bits_case() {
	local bit
	printf '%s\n' 'qcow2 bitmap private-bitmap-name 1M' >plain.gdb
	printf '%s\n' 'qcow2 bitmap bitmap-0___________ 1M' >red.gdb
	bit=$(gdb -nx -batch -iex "add-auto-load-safe-path $PWD" -x plain.gdb plain.elf 2>&1 | grep '^bit ')
	assert_match "gdb: the bit of the write after the bitmap is set in the plain dump" \
		': set$' "$bit"
	bit=$(gdb -nx -batch -iex "add-auto-load-safe-path $PWD" -x red.gdb red.elf 2>&1 | grep '^bit ')
	assert_match "gdb: in the redacted dump it is unknown, not clear" \
		': unknown: the dump holds no bytes of its data cluster' "$bit"
	# A plain dump writes a data cluster of zeros without bytes too: its
	# bits are known, and clear.
	qemu-img create -q -f qcow2 zeros.qcow2 64M
	qemu-img bitmap --add zeros.qcow2 z
	qemu-io -c 'write 0 64k' zeros.qcow2 >/dev/null
	"$Q2E" check -M --output=json zeros.qcow2 |
		jq -r '.viscera.bitmaps."bitmap-dir"."dir-entries"[0]."bitmap-table"."table-entries"[0].cluster.offset' >zoff ||
		return 1
	dd if=/dev/zero of=zeros.qcow2 bs=65536 seek=$(($(cat zoff) / 65536)) count=1 conv=notrunc status=none
	"$Q2E" dump zeros.qcow2 -o zeros.elf || return 1
	assert_match "the all-zero data cluster is a section without bytes" \
		'\.qcow2\.bitmap\.0\.data\.0 +NOBITS' "$(readelf -SW zeros.elf)"
	printf '%s\n' 'qcow2 bitmap z 0' >zeros.gdb
	assert_match "gdb: its bit is clear, not unknown" '^bit 0 \(guest 0x0-0xffff\): clear$' \
		"$(gdb -nx -batch -iex "add-auto-load-safe-path $PWD" -x zeros.gdb zeros.elf 2>&1)"
	cp "$img" more.qcow2
	qemu-io "${secret[@]}" --image-opts "driver=qcow2,file.filename=more.qcow2,encrypt.key-secret=sec0" \
		-c 'write -P 0x67 8M 64k' >/dev/null
	"$Q2E" dump more.qcow2 -o more.elf && "$Q2E" dump --redact more.qcow2 -o more-red.elf ||
		return 1
	assert_match "diff of the plain dumps: the bitmap's data changed" \
		'"bits-changed"' "$("$Q2E" diff --output=json plain.elf more.elf | jq -c '[.changes."bitmap-data"[]?.change]')"
	"$Q2E" diff --output=json red.elf more-red.elf >red-diff.json
	assert_eq "diff of the redacted dumps: no bitmap data compared, and it says why" \
		'[[],"the bits of the bitmaps: a dump written with --redact holds no bitmap data"]' \
		"$(jq -c '[[.changes."bitmap-data"[]?], ."not-compared"]' red-diff.json)"
}

t_case "names and file names are absent" secret_strings_case
t_case "bitmap bits are unknown, not clear" bitmap_bits_case
t_case "the external data file's name is absent" data_file_case
t_case "LUKS key material and digests are absent" luks_case
t_case "the layout is kept" layout_case
t_case "check, map, info, restore and gdb read it" commands_case
t_case "a redacted dump dumped again" again_case
t_case "short names get placeholders that differ" short_names_case
t_case "a deleted snapshot renames no other" deleted_snapshot_case
t_case "structures that share bytes read the same after --redact" overlap_case
finish
