#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# libdwarf is loaded only when `dump` needs it (src/emit/dwarf_lib.c), so
# that a cold start of every other command does not read it: on a host
# where it cannot be loaded, info, map, check, diff and restore give the
# same output as with it, and dump fails with a message that names the
# library, leaving no output behind and an older one as it was.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
need qemu-img qemu-io unshare mount ldconfig


# Every libdwarf the dynamic loader knows of, as the files they lead to.
mapfile -t libs < <(ldconfig -p | sed -n 's/^[[:space:]]*libdwarf[^ ]* (.*) => //p' |
	xargs -r realpath -e | sort -u)
[ ${#libs[@]} -gt 0 ] || { skip "finds no libdwarf in ldconfig -p"; finish; }
unshare -m true 2>/dev/null || { skip "needs a mount namespace (root)"; finish; }

# nodwarf CMD...: CMD where every libdwarf reads as an empty file.
nodwarf() {
	unshare -m sh -c 'cmd=$1; shift
		for l in "$@"; do
			[ "$l" = -- ] && break
			mount --bind /dev/null "$l" || exit 125
		done
		while [ "$1" != -- ]; do shift; done; shift
		exec "$cmd" "$@"' sh "$1" "${libs[@]}" -- "${@:2}"
}

mkdir "$T_TMP/c" && cd "$T_TMP/c" || finish
corpus_snapshots "$PWD" >/dev/null 2>&1 || fail "the snapshots image builds"
img=snapshots.qcow2
"$Q2E" dump "$img" -o with.elf 2>dump.err ||
	fail "dump with libdwarf" "$(cat dump.err)"

# same DESCRIPTION ARGS...: qcow2elf ARGS gives the same output and status
# with libdwarf hidden as with it.
same() {
	local desc=$1 a b
	shift
	"$Q2E" "$@" >with.out 2>&1
	a=$?
	nodwarf "$Q2E" "$@" >without.out 2>&1
	b=$?
	if [ "$a" != "$b" ]; then
		fail "$desc" "exit status $b without libdwarf, $a with it" \
		     "$(head -3 without.out)"
	else
		assert_same_file "$desc" with.out without.out
	fi
}

same "info without libdwarf" info --output=json "$img"
same "map without libdwarf" map --output=json "$img"
same "check without libdwarf" check "$img"
same "check -M without libdwarf" check -M --output=json "$img"
same "info of a dump without libdwarf" info with.elf
same "diff without libdwarf" diff "$img" with.elf

t_case "restore without libdwarf" eval '
	nodwarf "$Q2E" restore with.elf -o restored.qcow2 2>restore.err ||
		fail "restore without libdwarf" "$(cat restore.err)"
	same "the restored image checks alike" check restored.qcow2'

t_case "dump without libdwarf fails and says why" eval '
	nodwarf "$Q2E" dump "$img" -o new.elf 2>err
	assert_eq "dump exits 1" 1 "$?"
	assert_match "the message names the library" \
		"^qcow2elf: cannot load '\''libdwarf[^'\'']*'\'', which dump needs to describe the types: " \
		"$(cat err)"
	assert_eq "one line" 1 "$(wc -l <err)"
	[ ! -e new.elf ] && pass "no output file" ||
		fail "no output file" "$(ls -l new.elf)"'

t_case "dump --no-data over an older dump leaves it as it was" eval '
	cp with.elf old.elf
	nodwarf "$Q2E" dump --no-data "$img" -o old.elf 2>/dev/null
	assert_eq "dump --no-data exits 1" 1 "$?"
	assert_same_file "the older dump is untouched" with.elf old.elf
	assert_eq "no temporary file left" "" "$(ls -A | grep "^\.old\.elf" || true)"'

finish
