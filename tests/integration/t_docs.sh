#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The documents against the binary: every option the command line accepts
# is in --help and the man page, and every option they name is accepted;
# the usage lines of --help, the README and the man page's SYNOPSIS are
# the same; the man page renders without warnings; the exit statuses are
# the documented ones (qemu-img check's for check); and the README's and
# the man page's examples run as written and print what the text shows.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/patch.sh"
need qemu-img qemu-io jq readelf man

T=$T_TMP
README=$TOP/README.md
MAN=$TOP/contrib/man/qcow2elf.1
CMDS="info map dump check diff restore"
# `qcow2elf` on PATH, as the examples call it.
mkdir -p "$T/bin" && ln -s "$Q2E" "$T/bin/qcow2elf"
export PATH=$T/bin:$PATH
page=$(MANWIDTH=200 man -l "$MAN" 2>/dev/null | col -b)
# section NAME: the rendered man page's section NAME, without its title.
section() { printf '%s\n' "$page" | sed -n "/^$1\$/,/^[A-Z]/p" | sed '1d;$d'; }
# block MARK: the README's fenced code block holding the line MARK.
block() {
	awk -v mark="$1" '/^```/ { if (inb) { if (hit) { printf "%s", b; exit }
					      inb = 0; next }
				   inb = 1; b = ""; hit = 0; next }
			  inb { b = b $0 "\n"; if (index($0, mark)) hit = 1 }' "$README"
}
squeeze() { tr -s ' \t' '  ' | sed 's/^ //; s/ $//'; }

# --- options: the getopt tables, --help and the man page -----------------
options_case() {
	local opts help o
	opts=$(grep -ho '{ "[a-z-]*", *[a-z]*_argument' "$TOP"/src/cli/*.c |
	       sed 's/{ "\([a-z-]*\)".*/\1/' | sort -u)
	[ -n "$opts" ] || { fail "the getopt tables are found" "none"; return; }
	help=$(for c in $CMDS; do "$Q2E" "$c" --help; done)
	for o in $opts; do
		assert_match "--$o is in a command's --help" "--$o([=[ ,]|$)" "$help"
		assert_match "--$o is in the man page's OPTIONS" "--$o([=[ ,]|$)" \
			"$(section OPTIONS)"
	done
}
t_case "every option of the getopt tables is documented" options_case

# Each option a command's --help lists, the command accepts.
accepted_case() {
	local c line o arg err
	for c in $CMDS; do
		"$Q2E" "$c" --help | sed -n 's/^ \{1,\}\(-[^ ].*\)/\1/p' |
		sed 's/  .*//; s/,//g' | tr ' ' '\n' | grep '^-' >"$T/opts.$c"
		[ -s "$T/opts.$c" ] || fail "$c --help lists options" "none"
		while read -r o; do
			case $o in
			--output=*) arg=--output=json ;;
			--output-file=*) arg=--output-file=$T/none.out ;;
			--color'[=WHEN]') arg=--color=never ;;
			-o) arg="-o $T/none.out" ;;
			*) arg=$o ;;
			esac
			err=$("$Q2E" "$c" $arg "$T/missing.qcow2" "$T/missing.qcow2" 2>&1 >/dev/null)
			if printf '%s' "$err" | grep -q 'invalid option\|unrecognized option\|requires an argument'; then
				fail "$c accepts $o, which its --help lists" "$err"
			else
				pass "$c accepts $o, which its --help lists"
			fi
		done <"$T/opts.$c"
	done
}
t_case "every option --help lists is accepted" accepted_case

# Every option the man page's SYNOPSIS and OPTIONS name is in --help.
man_options_case() {
	local help o
	help=$("$Q2E" --help; for c in $CMDS; do "$Q2E" "$c" --help; done)
	for o in $( (section SYNOPSIS; section OPTIONS) |
		   grep -o -- '--[a-z][a-z-]*' | sort -u); do
		assert_match "the man page's $o is in --help" "$o([=[ ,|]|$)" "$help"
	done
	for o in $(block 'qcow2elf info  [' | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		assert_match "the README's Usage $o is in --help" "$o([=[ ,|]|$)" "$help"
	done
}
t_case "every option the documents name exists" man_options_case

# The usage lines: each command's forms, in --help, the README's Usage
# block and the man page's SYNOPSIS.
usage_case() {
	local c forms
	forms=$(for c in $CMDS; do "$Q2E" "$c" --help |
		sed -n 's/^\(Usage\|   or\): //p'; done | squeeze)
	assert_eq "README Usage: the forms --help gives" "$forms" \
		"$(block 'qcow2elf info  [' | squeeze)"
	assert_eq "man SYNOPSIS: the forms --help gives" \
		"$forms
qcow2elf --help|--version" "$(section SYNOPSIS | squeeze | grep .)"
}
t_case "the usage lines agree" usage_case

# --- the man page renders cleanly ----------------------------------------
if command -v groff >/dev/null; then
	assert_eq "groff -man -ww: no warnings" "" "$(groff -man -ww -z "$MAN" 2>&1)"
else
	skip "groff -man -ww (no groff)"
fi
if command -v mandoc >/dev/null; then
	assert_eq "mandoc -T lint: nothing at warning level" "" \
		"$(mandoc -T lint -W warning "$MAN" 2>&1)"
else
	skip "mandoc -T lint (no mandoc)"
fi

# --- exit statuses, as documented ------------------------------------------
cd "$T" || finish
qemu-img create -q -f qcow2 clean.qcow2 64M
qemu-io -c 'write 0 1M' -c 'write 20M 64k' clean.qcow2 >/dev/null
l2=$(( $(get64 clean.qcow2 "$(get64 clean.qcow2 40)") & 0x00fffffffffffe00 ))
e20=$((l2 + 320 * 8))			# guest 20M's L2 entry
cp clean.qcow2 leaky.qcow2 && put64 leaky.qcow2 "$e20" 0
cp clean.qcow2 corrupt.qcow2		# 20M's cluster with refcount 0
d20=$(( $(get64 clean.qcow2 "$e20") & 0x00fffffffffffe00 ))
put_be corrupt.qcow2 $(( $(get64 clean.qcow2 "$(get64 clean.qcow2 48)") +
			 d20 / 65536 * 2 )) 2 0
qemu-img create -q -f raw raw.img 1M
qemu-img create -q -f qcow v1.qcow2 1M	# QEMU's QCOW, version 1

status_case() {
	local f want q
	for f in clean.qcow2:0 leaky.qcow2:3 corrupt.qcow2:2 raw.img:63 \
		 v1.qcow2:63 missing.qcow2:1; do
		want=${f#*:} f=${f%%:*}
		assert_status "check $f exits $want" "$want" "$Q2E" check "$f"
		qemu-img check "$f" >/dev/null 2>&1
		q=$?
		assert_eq "check $f exits as qemu-img check" "$q" "$want"
	done
	assert_status "check: a bad option exits 1" 1 "$Q2E" check --bogus clean.qcow2
	assert_status "check: json-lines exits with the worst, 2" 2 \
		"$Q2E" check --output=json-lines clean.qcow2 corrupt.qcow2 leaky.qcow2
	assert_status "check: json-lines exits with the worst, 3 over 63" 3 \
		"$Q2E" check --output=json-lines raw.img leaky.qcow2
	assert_status "diff: the same metadata exits 0" 0 "$Q2E" diff clean.qcow2 clean.qcow2
	assert_status "diff: different metadata exits 1" 1 "$Q2E" diff clean.qcow2 leaky.qcow2
	assert_status "diff: a missing input exits 2" 2 "$Q2E" diff clean.qcow2 missing.qcow2
	assert_status "diff: a bad option exits 2" 2 "$Q2E" diff --bogus clean.qcow2 leaky.qcow2
	assert_status "diff: a bad --color exits 2" 2 "$Q2E" diff --color=sometimes clean.qcow2 leaky.qcow2
	for c in info map; do
		assert_status "$c: success exits 0" 0 "$Q2E" "$c" clean.qcow2
		assert_status "$c: an error exits 1" 1 "$Q2E" "$c" raw.img
		assert_status "$c: a bad option exits 1" 1 "$Q2E" "$c" -x clean.qcow2
	done
	assert_status "dump: no -o exits 1" 1 "$Q2E" dump clean.qcow2
	assert_status "restore: an image, not a dump, exits 1" 1 "$Q2E" restore clean.qcow2 -o r.qcow2
	assert_status "no command exits 1" 1 "$Q2E"
	for c in "" $CMDS; do
		assert_status "${c:-qcow2elf} --help exits 0" 0 "$Q2E" $c --help
	done
}
t_case "exit statuses" status_case

# --- the README's examples --------------------------------------------------
json_lines_case() {
	local want
	want=$(block '$ qcow2elf check --output=json-lines' | grep '^{')
	assert_eq "README: check --output=json-lines, as shown" "$want" \
		"$(qcow2elf check --output=json-lines clean.qcow2 leaky.qcow2 raw.img 2>/dev/null)"
}
t_case "README: the json-lines example" json_lines_case

fleet_case() {
	local script out
	mkdir -p images/sub
	cp clean.qcow2 leaky.qcow2 corrupt.qcow2 images/
	cp clean.qcow2 "images/sub/a name.qcow2"
	printf 'not an image' >images/raw.qcow2
	script=$(block 'xargs -0 -n 16' | sed "s|/srv/images|$T/images|")
	bash -c "$script" >fleet.out 2>fleet.err
	assert_eq "README xargs -P: one line per image" 5 "$(wc -l <checks.jsonl)"
	assert_eq "README xargs -P: the images that are not clean" \
		"2 $T/images/corrupt.qcow2
3 $T/images/leaky.qcow2
63 $T/images/raw.qcow2" "$(sort fleet.out)"
	script=$(block 'xargs -0 -n 16' | sed "s|/srv/images|$T/images|; /^jq/d")
	assert_status "README xargs -P: xargs exits 123" 123 bash -c "set -o pipefail; $script"
	script=$(block 'xargs -0 -n 1 ' | sed "s|/srv/images|$T/images|")
	out=$(bash -c "$script" | sort)
	assert_eq "README xargs without JSON: each status beside its name" \
		"0 $T/images/clean.qcow2
0 $T/images/sub/a name.qcow2
2 $T/images/corrupt.qcow2
3 $T/images/leaky.qcow2
63 $T/images/raw.qcow2" "$out"
	if command -v parallel >/dev/null; then
		(cd images && bash -c "$(block 'parallel -X')") 2>/dev/null
		assert_eq "README parallel -X: a line per image" 4 "$(wc -l <images/checks.jsonl)"
		(cd images && bash -c "$(block "parallel --joblog checks.tsv \\")") 2>/dev/null
		assert_eq "README parallel: a report per image" 4 \
			"$(ls images/*.check.json | wc -l)"
		assert_eq "README parallel: the leaky image's status in Exitval" 3 \
			"$(awk -F'\t' '/leaky/ { print $7 }' images/checks.tsv)"
	else
		skip "README's parallel examples (no GNU parallel)"
	fi
}
t_case "README: the fleet examples" fleet_case

diff_case() {
	local shown line
	qemu-img create -q -f qcow2 disk.qcow2 1G
	qemu-io -c 'write 0 128k' disk.qcow2 >/dev/null
	qcow2elf dump disk.qcow2 -o before.elf
	qcow2elf dump disk.qcow2 -o a.elf
	shown=$(block '$ qcow2elf diff before.elf after.elf')
	bash -c "$(printf '%s\n' "$shown" | sed -n 's/^\$ //p')" >diff.out 2>&1
	while IFS= read -r line; do
		case $line in '$ '*|...|'  ...') continue ;; esac
		if grep -qxF -- "$line" diff.out; then
			pass "README diff example prints '$line'"
		else
			fail "README diff example prints '$line'" "$(head -20 diff.out)"
		fi
	done <<<"$shown"
	# The readelf listing compared by name, address and size.
	qemu-img snapshot -c snap disk.qcow2
	qcow2elf dump disk.qcow2 -o b.elf
	out=$(bash -c "$(block 'sections() {')")
	assert_match "README sections(): the snapshot table appeared" \
		'^> \.qcow2\.snapshot-table 0+[0-9a-f]+ 0+45$' "$out"
	assert_eq "README sections(): only what changed" 4 "$(wc -l <<<"$out")"
}
t_case "README: the diff examples" diff_case

# The demo's image, made by contrib/demo.sh's own commands.
mkdir -p demo && cd demo || finish
sed -n '/^qemu-img create/,/^qemu-img bitmap/p' "$TOP/contrib/demo.sh" >make.sh
bash -e make.sh && qcow2elf dump sample.qcow2 -o sample.elf || fail "the demo's image and dump"

demo_case() {
	local shown line
	shown=$(block '$ readelf -SW sample.elf')
	readelf -SW sample.elf >readelf.out
	while IFS= read -r line; do
		case $line in *'] .qcow2'*) ;; *) continue ;; esac
		if grep -qxF -- "$line" readelf.out; then
			pass "README set-up: readelf shows '${line:0:30}...'"
		else
			fail "README set-up: readelf shows the line" "$line" \
			     "actual: $(grep -F "${line:0:30}" readelf.out)"
		fi
	done <<<"$shown"
	if command -v gdb >/dev/null; then
		HOME=$T/home bash -c "$(printf '%s\n' "$shown" | sed -n 's/^\$ \(gdb .*\)/\1/p')" \
			>gdb.out 2>/dev/null
		assert_eq "README set-up: gdb prints what is shown" \
			"$(printf '%s\n' "$shown" | grep '^\$[0-9]')" "$(grep '^\$[0-9]' gdb.out)"
	fi
}
t_case "README: the set-up's output" demo_case

gdb_helpers_case() {
	local cmds c out
	mkdir -p "$T/home"
	# The README's gdbinit lines, for a user who has no gdb directory.
	HOME=$T/home bash -e -c "$(block "add-auto-load-safe-path disk.elf" |
		sed -n 's/^\$ \(mkdir\|echo\)/\1/p')" ||
		fail "README: the gdbinit lines run"
	mkdir -p "$T/home/dumps" && cp sample.elf "$T/home/dumps/"
	out=$(cd "$T/home/dumps" && HOME=$T/home gdb -batch -ex 'p l1_table[0]' sample.elf 2>&1)
	assert_match "README gdbinit: a dump under ~/dumps loads its helpers" \
		'L2 table at 0xb0000' "$out"
	# Each helper command the README shows, on the demo's dump.
	cmds=$(block '(gdb) qcow2 translate 2M' | sed 's/^(gdb) //; s/ *#.*//' |
	       sed 's/^qcow2 info | regions \[KIND\] | snapshots | bitmaps$/qcow2 info\nqcow2 regions l2\nqcow2 snapshots\nqcow2 bitmaps/')
	[ "$(wc -l <<<"$cmds")" -ge 8 ] || fail "README shows the helper commands" "$cmds"
	while IFS= read -r c; do
		out=$(HOME=$T/home gdb -batch -iex 'add-auto-load-safe-path sample.elf' \
			-ex "$c" sample.elf 2>&1)
		if [ -n "$out" ] && ! grep -qi 'error\|undefined command\|usage:' <<<"$out"; then
			pass "README gdb helper: $c"
		else
			fail "README gdb helper: $c" "$out"
		fi
	done <<<"$cmds"
	# For dumps from elsewhere: the helpers sourced, not auto-loaded.
	qcow2elf dump --no-gdb-script sample.qcow2 -o plain.elf
	assert_match "README gdb helpers: sourced into a --no-gdb-script dump" \
		'^0x30000: l1_table\[0\]' "$(gdb -batch -ex "source $TOP/contrib/gdb/qcow2elf.py" \
			-ex 'qcow2 whatis 0x30000' plain.elf 2>&1)"
	assert_match "README gdb helper: whatis names l2_table_0[417]" '^0xb0d08: l2_table_0\[417\]' \
		"$(gdb -batch -iex 'add-auto-load-safe-path sample.elf' -ex 'qcow2 whatis 0xb0d08' sample.elf 2>&1)"
}
if command -v gdb >/dev/null; then
	t_case "README: the gdb helpers" gdb_helpers_case
else
	skip "README's gdb examples (no gdb)"
fi
cd "$T" || finish

# --- the man page's EXAMPLES, each as written --------------------------------
man_examples_case() {
	local line rc want
	mkdir -p ex && cd ex || return 1
	qemu-img create -q -f qcow2 disk.qcow2 1G
	qemu-io -c 'write 0 64k' disk.qcow2 >/dev/null
	qcow2elf dump disk.qcow2 -o old.elf && qcow2elf dump disk.qcow2 -o before.elf
	cp disk.qcow2 old.qcow2
	qemu-io -c 'write 1M 64k' disk.qcow2 >/dev/null
	cp disk.qcow2 new.qcow2 && cp disk.qcow2 after.qcow2
	qcow2elf dump disk.qcow2 -o new.elf
	sed -n '/^\.SH EXAMPLES/,/^\.fi/p' "$MAN" | sed '1,2d;$d' | sed 's/\\-/-/g' >examples
	[ -s examples ] || fail "the man page has EXAMPLES"
	while IFS= read -r line; do
		case $line in
		'qcow2elf diff '*|'diff '*) want="0 1" ;;	# the same or not
		*) want=0 ;;
		esac
		bash -c "set -o pipefail; $line" >ex.out 2>ex.err </dev/null
		rc=$?
		if [[ " $want " == *" $rc "* ]] && { [ -s ex.out ] || [ "$line" = "${line#*|}" ]; }; then
			pass "man EXAMPLES: $line"
		else
			fail "man EXAMPLES: $line" "exit status $rc (documented: $want)" "$(head -3 ex.err)"
		fi
	done <examples
	assert_status "man EXAMPLES: the restored image passes qemu-img check" 0 \
		qemu-img check disk-restored.qcow2
}
t_case "the man page's EXAMPLES" man_examples_case
finish
