#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A dump survives the tools users trim files with (issue 13): after
# objcopy -R of a region's section, strip, strip --strip-debug or objcopy
# --remove-section of the debug sections, readelf reads it without a
# warning, the header stays a PROGBITS section, and qcow2elf reads it.
# What a trimmed dump lacks is reported, as a truncated image's end is.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io readelf objcopy strip

cd "$T_TMP" || finish

qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 0x11 0 128k' -c 'write -P 0x22 8M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c first img.qcow2
qemu-img bitmap --add img.qcow2 b0
"$Q2E" dump img.qcow2 -o img.elf || fail "dump of the test image"
"$Q2E" check img.qcow2 >img.check 2>&1

# trimmed NAME: the dump NAME.elf reads as one, without readelf warnings.
trimmed() {
	local name=$1

	readelf -aW "$name.elf" >"$name.readelf" 2>"$name.readelf.err"
	assert_eq "$name: readelf -a gives no warning" "" \
		"$(cat "$name.readelf.err"; grep -i warning "$name.readelf")"
	assert_match "$name: the header is still a PROGBITS section" \
		'\.qcow2\.header +PROGBITS +0000000000000000' \
		"$(readelf -SW "$name.elf")"
	assert_status "$name: info reads it" 0 "$Q2E" info "$name.elf"
	assert_match "$name: as the dump of img.qcow2" \
		"image-filename +img.qcow2" "$(cat "$T_TMP/.out")"
}

# The debug information and symbols go; every region stays: the dump
# reads exactly as before.
untouched_regions() {
	local name=$1

	trimmed "$name"
	"$Q2E" check "$name.elf" >"$name.check" 2>&1
	assert_same_file "$name: check prints what it prints for the image" \
		img.check "$name.check"
	assert_status "$name: diff with the image finds nothing" 0 \
		"$Q2E" diff img.qcow2 "$name.elf"
}

strip_case() {
	strip img.elf -o strip.elf
	untouched_regions strip
}
strip_debug_case() {
	strip --strip-debug img.elf -o strip-debug.elf
	untouched_regions strip-debug
}
remove_debug_case() {
	objcopy --remove-section '.debug_*' img.elf remove-debug.elf
	untouched_regions remove-debug
}

# One region's section removed: the L2 table at 0x40000 is reported as
# missing (an error, as past the end of a truncated image), and not read
# as a table of zeros without a word.
remove_l2_case() {
	objcopy -R .qcow2.l2.0 img.elf remove-l2.elf 2>/dev/null
	trimmed remove-l2
	"$Q2E" check remove-l2.elf >remove-l2.check 2>&1
	rc=$?
	assert_match "remove-l2: check reports the missing table" \
		"^error past-end-of-file: l2_table_0: l2_table_0 at 0x40000 \(65536 bytes\) is missing from the dump" \
		"$(cat remove-l2.check)"
	[ "$rc" -ne 0 ] && pass "remove-l2: check exits non-zero ($rc)" ||
		fail "remove-l2: check exits non-zero" "exit 0"
	assert_status "remove-l2: dump of it works" 0 \
		"$Q2E" dump remove-l2.elf -o again.elf
	assert_eq "remove-l2: and holds no l2 section" "" \
		"$(readelf -SW again.elf | grep '\.qcow2\.l2\.0')"
	# Its own dump still lacks the table, and says so: it does not read
	# as whole (fuzz_dump: found/oracle-redump-removed-section).
	"$Q2E" check again.elf >again.check 2>&1
	assert_match "remove-l2: the dump of it still reports the table missing" \
		"^error past-end-of-file: l2_table_0: l2_table_0 at 0x40000 \(65536 bytes\) is missing from the dump" \
		"$(cat again.check)"
	assert_eq "remove-l2: and checks as the trimmed dump does" \
		"$(grep -v "^qcow2elf: warning: 'remove-l2.elf'" remove-l2.check)" \
		"$(grep -v "^qcow2elf: warning: 'again.elf'" again.check)"
	assert_status "remove-l2: restore of it works" 0 \
		"$Q2E" restore remove-l2.elf -o remove-l2.img
	assert_match "remove-l2: what stays is restored (the snapshot table)" \
		"first" "$(qemu-img snapshot -l remove-l2.img)"
}

# A dump whose recorded extents of the image say "hole" where its sections
# hold bytes (edited with objcopy --update-section) reads those bytes: the
# extents may spare reading zeros only where the dump file has a hole too
# (fuzz_dump: corpus-dump/oracle-restore-data-in-recorded-hole).
extents_disagree_case() {
	python3 -c 'import struct, sys
sys.stdout.buffer.write(struct.pack("<QQ", 1 << 40, 4096))' >ext.bin
	objcopy --update-section .qcow2elf.extents=ext.bin img.elf holes.elf ||
		fail "objcopy --update-section .qcow2elf.extents"
	"$Q2E" check holes.elf >holes.check 2>&1
	assert_eq "holes: check reads the tables' bytes, as on the image" \
		"$(cat img.check)" "$(cat holes.check)"
	assert_status "holes: diff with the image finds nothing" 0 \
		"$Q2E" diff --output=json img.qcow2 holes.elf
	assert_match "holes: same metadata" '"same-metadata": true' \
		"$(cat "$T_TMP/.out")"
	assert_status "holes: restore of it works" 0 \
		"$Q2E" restore holes.elf -o holes.img
	assert_status "holes: its restored image reads as the image" 0 \
		"$Q2E" diff --output=json img.qcow2 holes.img
}

# Extents that are not whole pairs of words: an error that names the
# section, where it is and what is wrong with it.
extents_odd_case() {
	head -c 17 /dev/zero >odd.bin
	objcopy --update-section .qcow2elf.extents=odd.bin img.elf odd.elf ||
		fail "objcopy --update-section .qcow2elf.extents"
	assert_status "odd extents: map fails" 1 "$Q2E" map odd.elf
	assert_match "and says where and why" \
		"^qcow2elf: 'odd.elf': section .qcow2elf.extents at file offset 0x[0-9a-f]+ is damaged: its 17 bytes are not whole pairs of 64-bit words" \
		"$(cat "$T_TMP/.err")"
}

# A bitmap table of zeros (b0: nothing written since it was added) is a
# NOBITS section of the dump.  Its entry is still there, as in the image.
# Made PROGBITS and cut to 4 bytes of zeros (objcopy --update-section),
# its entry is cut and kept; the dump of that dump holds the 4 bytes as
# NOBITS, and reads the same: a NOBITS section's zeros are held as the
# image's were.
zero_table_case() {
	"$Q2E" check -M --output=json img.qcow2 | grep -v '"filename"' >zt.img.json
	"$Q2E" check -M --output=json img.elf | grep -v '"filename"' >zt.elf.json
	assert_match "zero table: the dump holds the bitmap table as NOBITS" \
		'\.qcow2\.bitmap\.0\.table +NOBITS' "$(readelf -SW img.elf)"
	assert_same_file "zero table: check -M of the dump lists the table's entry, as of the image" \
		zt.img.json zt.elf.json
	printf '\0\0\0\0' >half.bin
	objcopy --set-section-flags .qcow2.bitmap.0.table=alloc,load,contents \
		img.elf progbits.elf &&
		objcopy --update-section .qcow2.bitmap.0.table=half.bin \
			progbits.elf half-table.elf ||
		fail "objcopy --update-section .qcow2.bitmap.0.table"
	"$Q2E" dump half-table.elf -o half-again.elf ||
		fail "zero table: dump of the dump with half the table"
	"$Q2E" check -M --output=json half-table.elf |
		grep -v '"filename"' >zt.half.json
	"$Q2E" check -M --output=json half-again.elf |
		grep -v '"filename"' >zt.again.json
	assert_match "zero table: half the table, its entry cut and kept" \
		'"all-zeros"' "$(cat zt.half.json)"
	assert_same_file "zero table: its dump checks as it does" \
		zt.half.json zt.again.json
}

# A NOBITS section costs a hostile dump nothing: made 1 GiB and named as
# a bitmap table of 2^27 entries, with the image's extents removed (so
# nothing says the image had a hole there), its zeros are held only as
# far as the dump file's size: each command within 10 s and 300 MB.
# An ASan build cannot start under `ulimit -v` (its shadow memory): there
# only the time is limited.
if readelf -sW "$Q2E" 2>/dev/null | grep -q __asan_init; then
	limits="10 s"
	limited() { timeout 10 "$@"; }
else
	limits="10 s and 300 MB"
	limited() { ( ulimit -v 300000; timeout 10 "$@" ); }
fi

big_zeros_case() {
	local rc

	cp img.qcow2 big.qcow2 && truncate -s 2G big.qcow2
	"$Q2E" dump big.qcow2 -o big.elf || fail "dump of big.qcow2"
	objcopy -R .qcow2elf.extents big.elf big-noext.elf
	python3 - big-noext.elf <<'PY' || fail "big zeros: editing the dump"
import struct, sys
f = sys.argv[1]
d = bytearray(open(f, 'rb').read())
shoff, = struct.unpack_from('<Q', d, 0x28)
size, n, strndx = struct.unpack_from('<HHH', d, 0x3a)
names, = struct.unpack_from('<Q', d, shoff + strndx * size + 0x18)
for i in range(n):
    h = shoff + i * size
    at = names + struct.unpack_from('<I', d, h)[0]
    name = d[at:d.index(b'\0', at)]
    if name == b'.qcow2.bitmap.0.table':	# NOBITS: a bitmap table of zeros
        struct.pack_into('<Q', d, h + 0x20, 1 << 30)
    if name == b'.qcow2.bitmap-directory':	# bitmap_table_size
        struct.pack_into('>I', d, struct.unpack_from('<Q', d, h + 0x18)[0] + 8, 1 << 27)
open(f, 'wb').write(d)
PY
	for c in info "check -M --output=json" "map --output=json"; do
		limited "$Q2E" $c big-noext.elf >/dev/null 2>big.err
		rc=$?
		[ "$rc" -lt 4 ] && ! grep -q 'out of memory' big.err &&
			pass "big zeros: $c within $limits" ||
			fail "big zeros: $c within $limits" \
				"exit $rc: $(head -2 big.err)"
	done
	limited "$Q2E" dump big-noext.elf -o big-again.elf 2>big.err
	assert_eq "big zeros: dump within $limits" "0" "$?"
}

# The header's section removed: the dump lacks its header, and says so;
# it is not "not a QCOW2 image" (63), which a fleet check files as
# nothing to check.
remove_header_case() {
	objcopy -R .qcow2.header img.elf remove-header.elf 2>/dev/null
	"$Q2E" check remove-header.elf >/dev/null 2>remove-header.err
	assert_eq "remove-header: check exits 1" 1 "$?"
	assert_eq "remove-header: and names the missing header" \
		"qcow2elf: 'remove-header.elf': qcow2_header at 0x0 is missing: the dump was written with it, and its section was removed" \
		"$(cat remove-header.err)"
}

# A header section made empty (NOBITS), or section names made unreadable
# (e_shstrndx past the sections): a damaged dump, exit 1 for check, not
# "not a QCOW2 image" (63).
damaged_header_case() {
	python3 - img.elf <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
(shoff,) = struct.unpack_from("<Q", b, 0x28)
shnum, shstrndx = struct.unpack_from("<HH", b, 0x3c)
names = struct.unpack_from("<QQ", b, shoff + shstrndx * 64 + 0x18)[0]
nobits = bytearray(b)
for i in range(shnum):
    at = names + struct.unpack_from("<I", b, shoff + i * 64)[0]
    if b[at:b.index(b"\0", at)] == b".qcow2.header":
        struct.pack_into("<I", nobits, shoff + i * 64 + 4, 8)  # SHT_NOBITS
open("nobits-header.elf", "wb").write(nobits)
struct.pack_into("<H", b, 0x3e, shnum + 5)
open("bad-shstrndx.elf", "wb").write(b)
PY
	local f

	for f in nobits-header bad-shstrndx; do
		"$Q2E" check "$f.elf" >/dev/null 2>"$f.err"
		assert_eq "$f: check exits 1" 1 "$?"
		assert_eq "$f: and says the dump's header is damaged" \
			"qcow2elf: '$f.elf': a qcow2elf dump whose qcow2_header at 0x0 has no QFI\\xfb magic: its .qcow2.header section is empty, unnamed or damaged" \
			"$(cat "$f.err")"
	done
}

# A dump cut short (a download that stopped) at each of its parts: an
# error naming the part it ends in, exit 1, for every command; not an
# ELF file of another kind (63), nor a dump whose regions all went.
cut_short_case() {
	local size cut part rc cmd

	size=$(stat -c %s img.elf)
	for cut in 10 100 700 4096 $((size / 2)) $((size - 1)); do
		head -c "$cut" img.elf >cut.elf
		case $cut in
		10) part="less than its ELF header" ;;
		100) part="its program header table ends at" ;;
		700) part="its note ends at" ;;
		*) part="its section header table ends at $size bytes" ;;
		esac
		for cmd in info check map "dump -o cut-again.elf"; do
			# shellcheck disable=SC2086 # CMD is a command and its options
			"$Q2E" $cmd cut.elf >/dev/null 2>cut.err
			rc=$?
			assert_eq "cut at $cut bytes: $cmd exits 1, saying where it ends" \
				"1 yes" "$rc $(grep -q "^qcow2elf: 'cut.elf': an ELF file cut short: .*$part" cut.err && echo yes)"
		done
	done
	assert_eq "cut short: no dump of it was written" "" "$(ls cut-again.elf* 2>/dev/null)"
}

# Tables that overlap, the first one's section removed: the others are
# read from their own sections, as in the whole dump.  Read together, the
# read stopped at the removed bytes and the rest read as zeros.
remove_overlapped_case() {
	local l1 q='[.findings[] | select(.structures[0].name | test("^l2_table_[1-7]$|^l2_table_[1-7]\\[")) | .type + " " + .message] | sort'
	qemu-img create -q -f qcow2 ov.qcow2 4G
	qemu-io -c "write -P 1 0 1M" -c "write -P 2 100M 64k" ov.qcow2 >/dev/null
	l1=$("$Q2E" info --output=json ov.qcow2 | jq '.header.l1_table_offset')
	python3 - ov.qcow2 "$l1" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(int(sys.argv[2]))
    f.write(b"".join(struct.pack(">Q", (l2 + i * 512) | 1 << 63)
                     for i in range(8)))
PY
	"$Q2E" dump ov.qcow2 -o ov.elf || return 1
	objcopy -R .qcow2.l2.0 ov.elf ov-trim.elf
	"$Q2E" check --output=json ov.elf 2>/dev/null | jq -c "$q" >ov.want
	"$Q2E" check --output=json ov-trim.elf 2>/dev/null | jq -c "$q" >ov.got
	assert_eq "overlapping tables, one removed: the others' findings are the whole dump's" \
		"$(cat ov.want)" "$(cat ov.got)"
	assert_eq "and there are some" yes "$(jq -e 'length > 3' ov.got >/dev/null && echo yes)"
}

t_case "strip" strip_case
t_case "strip --strip-debug" strip_debug_case
t_case "objcopy --remove-section .debug_*" remove_debug_case
t_case "objcopy -R .qcow2.l2.0" remove_l2_case
t_case "extents that disagree with the sections" extents_disagree_case
t_case "extents that are not whole pairs" extents_odd_case
t_case "a bitmap table of zeros (NOBITS)" zero_table_case
t_case "a NOBITS section of 1 GiB" big_zeros_case
t_case "objcopy -R .qcow2.header" remove_header_case
t_case "a header section empty or unnamed" damaged_header_case
t_case "a dump cut short" cut_short_case
t_case "objcopy -R of a table others overlap" remove_overlapped_case
finish
