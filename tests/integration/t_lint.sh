#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/lint.sh, the size and include limits `make check` enforces, on small
# trees made here: it passes a tree within the limits and names each file,
# function and include that breaks one.
. "$(dirname "$0")/../lib/common.sh"
need awk realpath

lint() { "$TOP/tests/lint.sh" "$1" >"$T_TMP/lint.out" 2>&1; }

# tree DIR: within every limit, a model file that may reach the source.
tree() {
	mkdir -p "$1"/src/source "$1"/src/model "$1"/src/view "$1"/include/qcow2elf
	printf '#define SOURCE_H\n' >"$1"/src/source/source.h
	printf '#include "source/source.h"\n' >"$1"/src/model/walk.h
	printf '#include "walk.h"\n' >"$1"/src/model/image.c
	{
		echo 'int f(int x)'
		echo '{'
		for i in $(seq 118); do echo "	x += $i;"; done
		echo '}'
	} >"$1"/src/view/ok.c
	seq 1000 | sed 's,^,// ,' >"$1"/src/view/long-enough.c
}

tree "$T_TMP/good"
lint "$T_TMP/good"
assert_eq "a tree within the limits passes" "0" "$?"
assert_eq "and lint says nothing" "" "$(cat "$T_TMP/lint.out")"

tree "$T_TMP/bad"
seq 1001 | sed 's,^,// ,' >"$T_TMP/bad/src/view/long-enough.c"
sed -i 's/x += 1;/x += 1;\n\tx++;/' "$T_TMP/bad/src/view/ok.c"
printf '#include "model/walk.h"\n' >"$T_TMP/bad/src/view/peek.c"
printf '#include "../../src/source/source.h"\n' >"$T_TMP/bad/include/qcow2elf/leak.h"
lint "$T_TMP/bad"
assert_eq "a tree over the limits fails" "1" "$?"
out=$(cat "$T_TMP/lint.out")
assert_match "names the file over 1,000 lines" "'src/view/long-enough.c' has 1001 lines" "$out"
assert_match "names the function over 120 lines" "function f\(\) in 'src/view/ok.c' has 121 lines" "$out"
assert_match "finds the source header reached through a model header" \
	"'src/view/peek.c' includes 'src/source/source.h'" "$out"
assert_match "and included by a relative path" \
	"'include/qcow2elf/leak.h' includes 'src/source/source.h'" "$out"
assert_eq "one line per finding" 4 "$(wc -l <"$T_TMP/lint.out")"
finish
