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

t_case "strip" strip_case
t_case "strip --strip-debug" strip_debug_case
t_case "objcopy --remove-section .debug_*" remove_debug_case
t_case "objcopy -R .qcow2.l2.0" remove_l2_case
t_case "extents that disagree with the sections" extents_disagree_case
finish
