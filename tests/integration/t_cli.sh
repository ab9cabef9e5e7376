#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The command line: help, version, usage errors, and bad inputs, each with
# one line naming the file and exit status 1.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io jq

assert_status "--help exits 0" 0 "$Q2E" --help
assert_match "--help lists info" "info \[--output" "$("$Q2E" --help)"
assert_match "--version prints the version" "^qcow2elf [0-9]+\.[0-9]+" "$("$Q2E" --version)"
assert_status "no command is a usage error" 1 "$Q2E"
assert_status "unknown command is a usage error" 1 "$Q2E" frobnicate x
assert_status "bad --output is a usage error" 1 "$Q2E" info --output=xml x
assert_match "bad --output says what is allowed" "human.*json" "$("$Q2E" info --output=xml x 2>&1)"
assert_status "info --help exits 0" 0 "$Q2E" info --help
assert_status "check --output=xml is a usage error" 1 "$Q2E" check --output=xml x
assert_match "which names json-lines too" "'human', 'json' or 'json-lines', not 'xml'" \
	"$(cat "$T_TMP/.err")"
# qemu-img users will try check -r: say where to repair.
for args in "-r all" "-rleaks" "--repair=all" "--repair"; do
	assert_status "check $args is a usage error" 1 "$Q2E" check $args x
	assert_match "check $args: qcow2elf does not repair, qemu-img check -r does" \
		"does not repair images: use 'qemu-img check -r" "$(cat "$T_TMP/.err")"
done
assert_match "check --help says so" "qemu-img check -r" "$("$Q2E" check --help)"

# qemu-img check's -T: its cache modes run as qemu-img runs them, with
# the same report; another is refused in qemu-img's words, once the last
# -T is known.  (none, off and directsync make qemu-img use O_DIRECT,
# which some file systems refuse: they are compared with plain check.)
qemu-img create -q -f qcow2 "$T_TMP/t.qcow2" 16M
qemu-img check "$T_TMP/t.qcow2" >"$T_TMP/plain.out" 2>&1
for mode in writeback unsafe writethrough bogus "bogus -T unsafe" "unsafe -T bogus"; do
	qemu-img check -T $mode "$T_TMP/t.qcow2" >"$T_TMP/q.out" 2>"$T_TMP/q.err"
	q=$?
	assert_status "check -T $mode exits as qemu-img check ($q)" "$q" \
		"$Q2E" check -T $mode "$T_TMP/t.qcow2"
	if [ "$q" = 0 ]; then
		assert_same_file "...with its report" "$T_TMP/q.out" "$T_TMP/.out"
	else
		assert_contains "...saying why, as qemu-img does" \
			"$(sed 's/^qemu-img: //' "$T_TMP/q.err")" "$(cat "$T_TMP/.err")"
	fi
done
for mode in none off directsync; do
	assert_status "check -T $mode exits 0" 0 "$Q2E" check -T $mode "$T_TMP/t.qcow2"
	assert_same_file "...with plain qemu-img check's report" "$T_TMP/plain.out" "$T_TMP/.out"
done

# qemu-img's -f (and compare's -F): command lines written for qemu-img
# run ("invalid option -- 'f'").  qcow2 gives what no -f gives; another
# format is a usage error; a file that is not qcow2 then exits as
# qemu-img -f qcow2 makes it (check: 1, where it is 63 without).
qemu-img create -q -f qcow2 "$T_TMP/f.qcow2" 16M
qemu-io -c 'write 1M 64k' "$T_TMP/f.qcow2" >/dev/null
cp "$T_TMP/f.qcow2" "$T_TMP/g.qcow2"
qemu-io -c 'write 4M 64k' "$T_TMP/g.qcow2" >/dev/null
for args in "info" "map --output=json" "check --output=json" "check --output=json-lines" "diff"; do
	(
	cd "$T_TMP" || exit 1
	files=f.qcow2; [ "$args" = diff ] && files="f.qcow2 g.qcow2"
	fmt="-f qcow2"; [ "$args" = diff ] && fmt="-f qcow2 -F qcow2"
	want=$("$Q2E" $args $files; echo "exit $?")
	assert_eq "$args $fmt: what it gives without" "$want" "$("$Q2E" $args $fmt $files; echo "exit $?")"
	)
done
"$Q2E" dump "$T_TMP/f.qcow2" -o "$T_TMP/f1.elf"
"$Q2E" dump -f qcow2 "$T_TMP/f.qcow2" -o "$T_TMP/f2.elf"
assert_eq "dump -f qcow2: the same dump" "" "$(cmp "$T_TMP/f1.elf" "$T_TMP/f2.elf" 2>&1)"
for cmd in info map check dump diff; do
	want=1; [ $cmd = diff ] && want=2
	assert_status "$cmd -f raw is a usage error" $want "$Q2E" $cmd -f raw x y
	assert_match "$cmd -f raw: says qcow2 is read" "reads qcow2 images and their dumps only, not the format 'raw'" \
		"$(cat "$T_TMP/.err")"
done
head -c 1M /dev/zero >"$T_TMP/f.raw"
for cmd in info map check; do
	qemu-img $cmd -f qcow2 "$T_TMP/f.raw" >/dev/null 2>&1
	assert_status "$cmd -f qcow2 of a raw file: qemu-img's status" $? "$Q2E" $cmd -f qcow2 "$T_TMP/f.raw"
done
qemu-img check "$T_TMP/f.raw" >/dev/null 2>&1
assert_status "check of a raw file without -f: qemu-img's status" $? "$Q2E" check "$T_TMP/f.raw"
assert_eq "check --output=json-lines -f qcow2: the raw file's line says 1" "1" \
	"$("$Q2E" check --output=json-lines -f qcow2 "$T_TMP/f.raw" 2>/dev/null | jq '."exit-status"')"

# Help that cannot be written is an error, not a success (diff's is 2).
if [ -w /dev/full ]; then
	for cmd in "" info map dump check diff restore; do
		want=1; [ "$cmd" = diff ] && want=2
		"$Q2E" $cmd --help >/dev/full 2>"$T_TMP/full.err"
		assert_eq "${cmd:-qcow2elf} --help to a full disk fails" "$want" "$?"
		assert_match "${cmd:-qcow2elf} --help to a full disk says so" \
			"cannot write to standard output" "$(cat "$T_TMP/full.err")"
	done
	"$Q2E" --version >/dev/full 2>/dev/null
	assert_eq "--version to a full disk fails" 1 "$?"
	qemu-img create -q -f qcow2 "$T_TMP/full.qcow2" 1M
	for args in "info" "info --output=json" "map" "map --output=json" \
		"check" "check --output=json" "check -M --output=json" \
		"check --output=json-lines"; do
		"$Q2E" $args "$T_TMP/full.qcow2" >/dev/full 2>"$T_TMP/full.err"
		assert_eq "$args to a full disk fails" 1 "$?"
		assert_eq "$args to a full disk says so, in one line" \
			"qcow2elf: cannot write to standard output" "$(cat "$T_TMP/full.err")"
	done
	# diff's error is 2: 1 says the images differ.
	"$Q2E" dump "$T_TMP/full.qcow2" -o "$T_TMP/full.elf"
	for args in "diff" "diff --output=json"; do
		"$Q2E" $args "$T_TMP/full.qcow2" "$T_TMP/full.elf" >/dev/full 2>"$T_TMP/full.err"
		assert_eq "$args to a full disk fails with 2, not 'they differ'" \
			"2 qcow2elf: cannot write to standard output" "$? $(cat "$T_TMP/full.err")"
	done
	"$Q2E" dump -o - "$T_TMP/full.qcow2" >/dev/full 2>"$T_TMP/full.err"
	assert_eq "dump -o - to a full disk fails and says so" \
		"1 qcow2elf: '-': cannot write: No space left on device" "$? $(cat "$T_TMP/full.err")"
	"$Q2E" restore -o - "$T_TMP/full.elf" >/dev/full 2>"$T_TMP/full.err"
	assert_eq "restore -o - to a full disk fails and says so" \
		"1 qcow2elf: '-': cannot write: No space left on device" "$? $(cat "$T_TMP/full.err")"
else
	skip "no writable /dev/full"
fi

# Bad inputs: one line on stderr naming the file, exit 1, nothing on stdout.
printf 'hello, world\n%.0s' {1..100} >"$T_TMP/text"
head -c 50 "$T_TMP/text" >"$T_TMP/short"
qemu-img create -q -f qcow2 "$T_TMP/good.qcow2" 1M
head -c 40 "$T_TMP/good.qcow2" >"$T_TMP/truncated.qcow2"
mkdir "$T_TMP/dir"
cp "$T_TMP/good.qcow2" "$T_TMP/unreadable.qcow2"; chmod 000 "$T_TMP/unreadable.qcow2"
for case in "text:not a QCOW2 image" "truncated.qcow2:truncated" \
	    "dir:is a directory" "missing:No such file" \
	    "unreadable.qcow2:Permission denied"; do
	f=${case%%:*} why=${case#*:} as=()
	# Root reads any file: the unreadable one is read as nobody, who
	# may pass through the scratch directory but not read the file.
	if [ "$f" = unreadable.qcow2 ] && [ "$(id -u)" = 0 ]; then
		as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		chmod 711 "$T_TMP"
		if ! command -v setpriv >/dev/null; then
			skip "unreadable file (root, and no setpriv)"
			continue
		elif ! "${as[@]}" "$Q2E" --version >/dev/null 2>&1; then
			skip "unreadable file (root, and nobody cannot run $Q2E)"
			continue
		fi
	fi
	for cmd in info map; do
		"${as[@]}" "$Q2E" $cmd "$T_TMP/$f" >"$T_TMP/out" 2>"$T_TMP/err"
		rc=$?
		assert_eq "$cmd $f: exit status 1" 1 "$rc"
		assert_eq "$cmd $f: one line on stderr" 1 "$(wc -l <"$T_TMP/err")"
		assert_match "$cmd $f: names the file and the cause" "'$T_TMP/$f'.*$why" "$(cat "$T_TMP/err")"
		assert_eq "$cmd $f: nothing on stdout" 0 "$(wc -c <"$T_TMP/out")"
	done
done
# --output of dump and restore is no abbreviation of --output-file: it
# wrote a dump to a file named json.
output_case() {
	cd "$T_TMP" || return 1
	"$Q2E" dump good.qcow2 -o good.elf
	assert_status "dump --output=json is a usage error" 1 "$Q2E" dump good.qcow2 --output=json
	assert_match "saying dump writes ELF to -o FILE" "not an option of dump, which writes ELF to -o FILE" \
		"$(cat "$T_TMP/.err")"
	assert_status "restore --output json is a usage error" 1 "$Q2E" restore good.elf --output json
	assert_match "saying restore writes to -o IMAGE" "not an option of restore, .* -o IMAGE" \
		"$(cat "$T_TMP/.err")"
	assert_status "and no file named json is made" 1 test -e json
	# An empty name was found out only at the rename, after the work.
	assert_status "dump -o '' is a usage error" 1 "$Q2E" dump good.qcow2 -o ''
	assert_match "saying -o names no file" "^qcow2elf: dump: -o names no file" \
		"$(cat "$T_TMP/.err")"
	assert_status "restore -o '' is a usage error" 1 "$Q2E" restore good.elf -o ''
	assert_match "saying -o names no file" "^qcow2elf: restore: -o names no file" \
		"$(cat "$T_TMP/.err")"
}
t_case "dump and restore refuse --output" output_case

# Bash completion (contrib/completion) of a value given after a space.
completion_case() {
	complete_words() {
		bash --norc --noprofile -c '
			. "$1"; shift
			COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
			_qcow2elf; printf "%s\n" "${COMPREPLY[@]}" | sort' \
			sh "$TOP/contrib/completion/qcow2elf.bash" "$@"
	}
	command -v compgen >/dev/null || { skip "no bash completion builtins"; return 0; }
	mkdir -p "$T_TMP/comp" && cd "$T_TMP/comp" || return 1
	touch disk.qcow2
	assert_eq "check --output <TAB>: the formats, not files" "human
json
json-lines" "$(complete_words "$Q2E" check --output '')"
	assert_eq "info --output j<TAB>" "json" "$(complete_words "$Q2E" info --output j)"
	assert_eq "check --output=<TAB> as before" "human
json
json-lines" "$(complete_words "$Q2E" check --output = '')"
	assert_eq "dump --output <TAB>: nothing, dump has no --output" "" \
		"$(complete_words "$Q2E" dump disk.qcow2 --output '')"
	assert_eq "check --output json <TAB>: files again" "disk.qcow2" \
		"$(complete_words "$Q2E" check --output json d)"
}
t_case "completion of option values" completion_case

# Each message line is one write(): the stderr of checks run in parallel
# into one file has whole lines only.  Names that must be escaped made a
# message many writes, and the lines of parallel runs mixed.
parallel_case() {
	local c i bad
	mkdir "$T_TMP/many" && cd "$T_TMP/many" || return 1
	c=$(printf '\001%.0s' $(seq 40))
	for i in $(seq 400); do echo x >"r$i$c.qcow2"; done
	for i in 1 2 3; do	# mixing takes runs that overlap: three tries
		printf '%s\0' r* |
			xargs -0 -n 20 -P 8 "$Q2E" check --output=json-lines >/dev/null
	done 2>"$T_TMP/many.err"
	assert_eq "3 x 400 failing checks in parallel: 1200 lines on stderr" 1200 \
		"$(wc -l <"$T_TMP/many.err")"
	bad=$(grep -cvE "^qcow2elf: 'r[0-9]+(\\\\x01){40}\.qcow2': not a QCOW2 image \(no QFI\\\\xfb magic at offset 0\)$" \
		"$T_TMP/many.err")
	assert_eq "each of them whole" 0 "$bad"
}
t_case "messages of parallel runs" parallel_case
finish
