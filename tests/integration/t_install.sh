#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make install` places the binary, the man page, the gdb helpers and the
# bash completion under DESTDIR and PREFIX, and `make uninstall` removes
# them; the completion completes commands, options and files; the
# documents say what the program does (the man page renders cleanly,
# --help names each command's input, the README names every note of a
# dump).
. "$(dirname "$0")/../lib/common.sh"
need make bash man readelf qemu-img

# The installed files are the tree's: install from TOP, and never remake
# its binary there (-o), which a test run may have built with other flags.
[ -x "$TOP/qcow2elf" ] || { skip "needs $TOP/qcow2elf built"; finish; }
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$TOP" -o qcow2elf "$@"; }

D=$T_TMP/root P=/opt/q2e
R=$D$P
assert_status "make install DESTDIR=... PREFIX=/opt/q2e" 0 \
	mk install DESTDIR="$D" PREFIX="$P"
for f in bin/qcow2elf share/man/man1/qcow2elf.1 \
	 share/qcow2elf/gdb/qcow2elf.py \
	 share/bash-completion/completions/qcow2elf; do
	if [ -f "$R/$f" ]; then pass "installs $P/$f"; else
		fail "installs $P/$f" "$(cd "$D" && find . -type f)"
	fi
done
assert_eq "nothing outside DESTDIR/PREFIX" "" \
	"$(cd "$D" && find . -type f ! -path ".$P/*")"
assert_status "the completion is bash" 0 bash -n "$R/share/bash-completion/completions/qcow2elf"

# complete WORD...: what the installed completion replies for the command
# line WORD... (the last word is the one being completed), one a line.
mkdir -p "$T_TMP/files" && cd "$T_TMP/files" || finish
touch disk.qcow2 disk.elf other.img
mkdir dumps
complete() {
	PATH=$R/bin:$PATH bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_qcow2elf; printf "%s\n" "${COMPREPLY[@]}" | sort' \
		sh "$R/share/bash-completion/completions/qcow2elf" "$@"
}
assert_eq "completion: the commands" \
	"$(printf '%s\n' --help --version -V -h check diff dump info map restore | sort)" \
	"$(complete qcow2elf '')"
assert_eq "completion: a command by its first letters" "diff
dump" "$(complete qcow2elf d)"
assert_eq "completion: dump's long options" "--force-share
--help
--image-opts
--no-data
--no-gdb-script
--object
--output-file=
--redact" "$(complete qcow2elf dump disk.qcow2 --)"
assert_eq "completion: diff's long options, each once" "--color
--color=
--force-share
--help
--image-opts
--no-color
--object
--output=
--verbose" "$(complete qcow2elf diff a.elf --)"
assert_eq "completion: check's options, short ones too" "-M
-T
-U
-f
-h
-p
-q" "$(complete qcow2elf check - | grep -v -- '^--')"
assert_eq "completion: check -T's cache modes" "writeback
writethrough" "$(complete qcow2elf check -T w)"
assert_eq "completion: diff's -F" "-F" "$(complete qcow2elf diff -F)"
assert_eq "completion: -f's value" "qcow2" "$(complete qcow2elf map -f '')"
assert_eq "completion: --output's values, split at =" "human
json" "$(complete qcow2elf info --output =)"
assert_eq "completion: --output=j, not split" "--output=json" \
	"$(complete qcow2elf map --output=j)"
assert_eq "completion: check's --output values, json-lines too" "human
json
json-lines" "$(complete qcow2elf check --output =)"
assert_eq "completion: --color's values" "always
auto" "$(complete qcow2elf diff --color = a)"
assert_eq "completion: files for an image" "disk.elf
disk.qcow2
dumps" "$(complete qcow2elf info d)"
assert_eq "completion: files after -o" "other.img" \
	"$(complete qcow2elf restore disk.elf -o o)"
assert_eq "completion: restore has --force, not --no-data" "--force" \
	"$(complete qcow2elf restore disk.elf --f)$(complete qcow2elf restore disk.elf --no)"
cd "$T_TMP" || finish

# The installed man page: no words run together after a macro.
page=$(MANWIDTH=80 man -l "$R/share/man/man1/qcow2elf.1" 2>"$T_TMP/man.err" | tr -s ' \n' '  ')
assert_match "man page: restore's --force, then a space" \
	'--force\. +Backing files' "$page"
assert_eq "man page: no warnings from man" "" "$(cat "$T_TMP/man.err")"

# --help: restore reads a dump, never an image.
help=$("$R/bin/qcow2elf" restore --help)
assert_no_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then fail "$1" "matches '$2'"; else pass "$1"; fi
}
assert_no_match "restore --help does not say its input may be an image" \
	'is a QCOW2 image or a dump' "$help"
assert_match "restore --help: DUMP is a dump" "DUMP is a dump written by" "$help"
assert_match "dump --help: IMAGE is an image or a dump" \
	"IMAGE is a QCOW2 image or a dump" "$("$R/bin/qcow2elf" dump --help)"

# The README names every note a dump carries, plain and --no-data.
qemu-img create -q -f qcow2 img.qcow2 1M
"$R/bin/qcow2elf" dump img.qcow2 -o img.elf
"$R/bin/qcow2elf" dump --no-data img.qcow2 -o nodata.elf
keys=$(readelf -nW img.elf nodata.elf | sed -n 's/^ *qcow2elf:\([a-z0-9-]*\)=.*/\1/p' | sort -u)
[ -n "$keys" ] || fail "the dumps have notes" "readelf -nW shows none"
for k in $keys; do
	assert_match "README names the note '$k'" "\| \`$k\` \|" "$(cat "$TOP/README.md")"
done

assert_status "make uninstall DESTDIR=... PREFIX=/opt/q2e" 0 \
	mk uninstall DESTDIR="$D" PREFIX="$P"
assert_eq "uninstall removes every file install placed" "" \
	"$(cd "$D" && find . -type f)"
finish
