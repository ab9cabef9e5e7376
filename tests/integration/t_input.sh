#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inputs that are not files to read: a FIFO, a character device, or a
# backing file that is a FIFO.  Each command refuses them at once, naming
# the file and what it is, instead of blocking until a writer comes.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img timeout mkfifo

fifo=$T_TMP/fifo
mkfifo "$fifo"

for cmd in info map check dump; do
	args=("$cmd" "$fifo")
	[ "$cmd" = dump ] && args+=(-o "$T_TMP/out.elf")
	timeout 10 "$Q2E" "${args[@]}" >"$T_TMP/out" 2>"$T_TMP/err"
	rc=$?
	if [ "$rc" -eq 124 ]; then
		fail "$cmd of a FIFO returns at once" "timed out after 10 s"
		continue
	fi
	assert_eq "$cmd of a FIFO fails with status 1" 1 "$rc"
	assert_match "$cmd of a FIFO says it is one" "'$fifo': is a FIFO" \
		"$(cat "$T_TMP/err")"
done
[ -e "$T_TMP/out.elf" ] && fail "dump of a FIFO leaves no output" "$T_TMP/out.elf exists" ||
	pass "dump of a FIFO leaves no output"

timeout 10 "$Q2E" info /dev/null >/dev/null 2>"$T_TMP/err"
assert_eq "info of a character device fails with status 1" 1 "$?"
assert_match "info of a character device says what it is" \
	"'/dev/null': is a character device" "$(cat "$T_TMP/err")"

# An overlay whose backing file is a FIFO: map would read the backing file.
qemu-img create -q -f qcow2 "$T_TMP/base.qcow2" 1M
qemu-img create -q -f qcow2 -b "$T_TMP/base.qcow2" -F qcow2 \
	"$T_TMP/overlay.qcow2"
rm "$T_TMP/base.qcow2"
mkfifo "$T_TMP/base.qcow2"
timeout 10 "$Q2E" map "$T_TMP/overlay.qcow2" >/dev/null 2>"$T_TMP/err"
rc=$?
if [ "$rc" -eq 124 ]; then
	fail "map with a FIFO backing file returns at once" "timed out after 10 s"
else
	assert_eq "map with a FIFO backing file fails with status 1" 1 "$rc"
	assert_match "map names the FIFO backing file" \
		"base.qcow2': is a FIFO" "$(cat "$T_TMP/err")"
fi
# info reads only the overlay itself: it still works.
timeout 10 "$Q2E" info "$T_TMP/overlay.qcow2" >/dev/null 2>&1
assert_eq "info of an overlay with a FIFO backing file works" 0 "$?"

finish
