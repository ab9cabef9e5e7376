#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Names from an image are safe to print: a backing file, data file,
# snapshot, bitmap or feature name holding ESC ]0;... (which retitles a
# terminal), other control bytes, a C1 control or bad UTF-8 reaches no
# terminal raw.  Human output and error messages escape them as ls -b and
# git do (\xHH); JSON escapes them as JSON does, and jq reads the exact
# name back.  The images are made by qemu-img, which takes such names.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/patch.sh"
need qemu-img jq python3

cd "$T_TMP" || finish

OSC=$'\e]0;pwned\a'
SNAP="snap${OSC}"$'\x01\t'"é"$'\xc2\x9b'	# valid UTF-8, C0 and C1 inside
BITMAP="bm${OSC}"$'\x7f'
BASE="$T_TMP/base${OSC}"$'\xff'".qcow2"	# a bad UTF-8 byte
DATA="data${OSC}.raw"

# raw FILE: says where FILE holds a byte a terminal would act on (a C0
# control but newline and tab, DEL, a C1 control) or bad UTF-8; fails then.
raw() {
	python3 - "$1" <<'PY'
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", b)
if m:
    sys.exit("raw byte 0x%02x at %d: %r" % (b[m.start()], m.start(),
             b[max(0, m.start() - 20):m.start() + 20]))
try:
    b.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("bad UTF-8 at %d: %r" % (e.start, b[max(0, e.start - 20):e.start + 20]))
PY
}

# safe DESCRIPTION CMD...: neither standard output nor standard error of
# CMD holds a raw control byte; keeps them in out and err.
safe() {
	local desc=$1 why
	shift
	"$@" >out 2>err
	for f in out err; do
		if why=$(raw "$f" 2>&1); then
			pass "$desc: standard ${f/err/error}${f/out/put} is safe"
		else
			fail "$desc: raw bytes on $f" "$why"
		fi
	done
}
each_call_a_case safe

qemu-img create -q -f qcow2 "$BASE" 1M &&
	qemu-img create -q -f qcow2 -F qcow2 -b "$BASE" img.qcow2 1M &&
	qemu-img create -q -f qcow2 -o data_file="$DATA" data.qcow2 1M &&
	qemu-img snapshot -c "$SNAP" img.qcow2 &&
	qemu-img bitmap --add img.qcow2 "$BITMAP" &&
	qemu-img create -q -f qcow2 plain.qcow2 1M ||
	{ fail "qemu-img makes images with hostile names"; finish; }

# The feature name table: 48-byte entries, type, bit, then a 46-byte name.
off=$(grep -obUaP 'dirty bit\x00' img.qcow2 | head -n 1 | cut -d: -f1)
if [ -n "$off" ]; then
	printf 'dirty%s\0\0\0\0' "$OSC" |
		dd of=img.qcow2 bs=1 seek="$off" conv=notrunc status=none
	pass "feature name patched"
else
	fail "the image has a feature name table"
fi

for cmd in info map check; do
	safe "$cmd" "$Q2E" "$cmd" img.qcow2
done
# QEMU takes no snapshot of an image with an external data file.
safe "info of an image with a data file" "$Q2E" info data.qcow2
assert_match "info shows the data file name escaped" \
	'data\\x1b\]0;pwned\\x07\.raw' "$(cat out)"
"$Q2E" info --output=json data.qcow2 >data.json
assert_eq "JSON data file name round-trips" "$DATA" \
	"$(jq -j '.["data-file"]' data.json)"
safe "info shows the escaped snapshot name" "$Q2E" info img.qcow2
assert_match "info shows the snapshot name escaped" \
	'snap\\x1b\]0;pwned\\x07\\x01\\x09é\\xc2\\x9b' "$(cat out)"
assert_match "info shows the bitmap name escaped" \
	'bm\\x1b\]0;pwned\\x07\\x7f' "$(cat out)"
assert_match "info shows the backing file name escaped" \
	'base\\x1b\]0;pwned\\x07\\xff\.qcow2' "$(cat out)"
assert_match "info shows the feature name escaped" \
	'dirty\\x1b\]0;pwned\\x07' "$(cat out)"
safe "check -M" "$Q2E" check -M img.qcow2
assert_match "check -M shows the snapshot name escaped" \
	'snap\\x1b\]0;pwned' "$(cat out)"
safe "diff" "$Q2E" diff plain.qcow2 img.qcow2
assert_match "diff shows the bitmap name escaped" \
	'bm\\x1b\]0;pwned\\x07\\x7f' "$(cat out)"
safe "diff -v --color=never" "$Q2E" diff -v --color=never plain.qcow2 img.qcow2
safe "dump" "$Q2E" dump img.qcow2 -o img.elf
safe "restore" "$Q2E" restore img.elf -o restored.qcow2
safe "info of the dump" "$Q2E" info img.elf

# JSON: parsed by jq, which gives back the exact names.
"$Q2E" info --output=json img.qcow2 >info.json
assert_eq "JSON snapshot name round-trips" "$SNAP" \
	"$(jq -j '.snapshots[0].name' info.json)"
assert_eq "JSON bitmap name round-trips" "$BITMAP" \
	"$(jq -j '.bitmaps[0].name' info.json)"
# Bad UTF-8 is U+FFFD, as qemu-img's JSON writer gives it; a C1 control
# is escaped too, so the JSON holds no byte a terminal acts on.
assert_eq "JSON backing file name: the bad byte as U+FFFD" \
	"${BASE%$'\xff'.qcow2}"$'\xef\xbf\xbd'.qcow2 "$(jq -j '.["backing-filename"]' info.json)"
qemu-img info --output=json img.qcow2 >qinfo.json
assert_eq "JSON names: the values qemu-img info --output=json gives" \
	"$(jq -c '[.["backing-filename"], .snapshots[0].name, .["format-specific"].data.bitmaps[0].name]' qinfo.json)" \
	"$(jq -c '[.["backing-filename"], .snapshots[0].name, .bitmaps[0].name]' info.json)"
safe "info --output=json" "$Q2E" info --output=json img.qcow2
"$Q2E" diff --output=json plain.qcow2 img.qcow2 >diff.json
assert_eq "JSON diff: the snapshot name round-trips" "$SNAP" \
	"$(jq -j '.changes.snapshots[0].new' diff.json)"

# Error messages: the names they quote are escaped too.  A damaged image
# (L1[0] past the end of the file) under a hostile name: dump warns.
BAD="bad${OSC}.qcow2"
cp plain.qcow2 "$BAD" && put64 "$BAD" "$(get64 "$BAD" 40)" $((1 << 40))
safe "dump warning about a damaged image" "$Q2E" dump "$BAD" -o bad.elf
assert_match "the warning names the image, escaped" \
	"warning: 'bad\\\\x1b\\]0;pwned\\\\x07\\.qcow2'" "$(cat err)"
rm -- "$BASE"
safe "map without its backing file" "$Q2E" map img.qcow2
assert_match "the error names the backing file, escaped" \
	"base\\\\x1b\\]0;pwned\\\\x07\\\\xff\\.qcow2" "$(cat err)"
safe "info of a missing file with a hostile name" "$Q2E" info "$BASE"
assert_match "the error names the missing file, escaped" \
	"base\\\\x1b" "$(cat err)"
safe "a usage error quoting a hostile argument" "$Q2E" "$OSC" img.qcow2
assert_match "the usage error names the command, escaped" \
	"unknown command '\\\\x1b\\]0;pwned\\\\x07'" "$(cat err)"
# Plain characters are found eight bytes at a time (src/out/output.c): a
# byte to escape at either end of a group of eight, or just past one, is
# still escaped, in JSON and for people (a backslash doubled), and the
# rest of the name kept.
qemu-img create -q -f qcow2 runs.qcow2 1M || fail "qemu-img makes runs.qcow2"
names=()
for c in '"' '\' $'\x01' $'\x7f' 'é'; do
	for at in 0 7 8 9 15 16; do
		name=$(printf '%*s' "$at" '' | tr ' ' a)"$c"bcdefghijklmnop
		names+=("$name")
		qemu-img snapshot -c "$name" runs.qcow2 || fail "snapshot '$name'"
	done
done
"$Q2E" info --output=json runs.qcow2 >runs.json
"$Q2E" info runs.qcow2 >runs.txt
bad=
for i in "${!names[@]}"; do
	name=${names[$i]}
	[ "$(jq -j ".snapshots[$i].name" runs.json)" = "$name" ] ||
		bad+=" json:$i"
	want=${name//\\/\\\\}
	want=${want//$'\x01'/\\x01}
	want=${want//$'\x7f'/\\x7f}
	grep -qF -- "$want" runs.txt || bad+=" human:$i"
done
assert_eq "names escaped at each end of an 8-byte group (${#names[@]})" "" "$bad"

# A name of the four characters \x1b and one holding ESC print apart.
qemu-img create -q -f qcow2 twins.qcow2 1M
qemu-img snapshot -c 's\x1b' twins.qcow2
qemu-img snapshot -c $'s\x1b' twins.qcow2
assert_eq "a literal \\x1b and an ESC in names print apart" \
	's\\x1b|s\x1b' \
	"$("$Q2E" info twins.qcow2 | awk '$1 == "name" && $2 ~ /^s/ { printf "%s%s", s, $2; s = "|" }')"

# check copies qemu-img's lines, which name a snapshot whose L1 table it
# skips: its ID and name escaped too.
qemu-img create -q -f qcow2 skipped.qcow2 64M
qemu-img snapshot -c "$OSC" skipped.qcow2
put64 skipped.qcow2 "$(($(get64 skipped.qcow2 64)))" \
	"$(($(get64 skipped.qcow2 "$(get64 skipped.qcow2 64)") + 0x200))"
safe "check of a snapshot whose L1 table is misaligned" "$Q2E" check skipped.qcow2
assert_match "...whose line names it escaped" \
	'ERROR snapshot 1 \(\\x1b\]0;pwned\\x07\) l1_offset=0x[0-9a-f]+200: L1 table is not cluster aligned' \
	"$(cat err)"
finish
