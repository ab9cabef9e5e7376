# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the integration tests: a scratch directory, assertions that say
# what a user would have seen, and skips when a tool is missing.
# Each test script sources this file, calls the assert_* helpers (or pass
# and fail), runs each case that has several steps with t_case, and ends
# with `finish`.
#
# A case is counted once: an assertion outside a t_case is a case of its
# own, and a t_case is one result however many assertions it makes (a case
# that failed is not also passed); a case that stops early (an unbound
# variable under set -u, a command not found) fails itself, not the whole
# file.  A file
# that stops before `finish` says so and fails.  A file that could only
# skip (a missing tool) exits 77, which run.sh reports as skipped, by name.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
Q2E=${Q2E:-$TOP/qcow2elf}
case $Q2E in	# a relative path made absolute: the tests change directory
*/*) [ "${Q2E#/}" != "$Q2E" ] || Q2E=$PWD/$Q2E ;;
esac
T_NAME=$(basename "$0" .sh)
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/q2e-$T_NAME.XXXXXX")
# One line per result, "pass", "fail" or "skip": a file, so that results
# recorded in a subshell (t_case, a pipeline) count too.
T_RESULTS=$T_TMP/.results
: >"$T_RESULTS"
T_IN_CASE=0		# 1 inside a t_case
T_CASE_FAILED=0		# 1 inside a t_case once one of its steps failed
T_FINISHED=
trap '_t_exit' EXIT

pass() {
	[ "$T_CASE_FAILED" = 1 ] && return 0	# its case already failed
	echo pass >>"$T_RESULTS"
	[ -n "${VERBOSE:-}" ] && echo "ok   $T_NAME: $1"
	return 0
}
fail() {
	echo fail >>"$T_RESULTS"
	T_CASE_FAILED=$T_IN_CASE
	echo "FAIL $T_NAME: $1"
	shift
	for l in "$@"; do echo "     $l"; done
	return 0
}
skip() { echo skip >>"$T_RESULTS"; echo "skip $T_NAME: $1"; }

_t_count() { grep -c "^$1\$" "$T_RESULTS"; }

# t_case DESCRIPTION CMD...: runs CMD (a function, usually) as one case, in
# a subshell, and counts it once: failed if any of its assertions failed
# (each says why) or it stopped with a failure status before one did (with
# what it said on standard error), else passed, or skipped if all it did
# was skip.  Cases may nest: the inner one is one result of the outer.
t_case() {
	local desc=$1 results rc
	shift
	results=$(mktemp "$T_TMP/.case.XXXXXX")
	# stdin: not the list a calling loop reads its cases from
	(T_RESULTS=$results T_IN_CASE=1 T_CASE_FAILED=0; "$@") </dev/null \
		2>"$results.err"
	rc=$?
	if grep -q '^fail$' "$results"; then
		echo fail >>"$T_RESULTS"
	elif [ "$rc" = 77 ] && ! grep -q '^pass$' "$results"; then
		echo skip >>"$T_RESULTS"	# need, finish: it could only skip
	elif [ "$rc" -ne 0 ]; then
		if [ -s "$results.err" ]; then
			fail "$desc" "stopped with exit status $rc" \
			     "$(tail -n 5 "$results.err")"
		else
			fail "$desc" "stopped with exit status $rc"
		fi
	elif grep -q '^pass$' "$results" || [ ! -s "$results" ]; then
		pass "$desc"
	else
		echo skip >>"$T_RESULTS"
	fi
	cat "$results.err" >&2
	rm -f "$results" "$results.err"
	return 0
}

# each_call_a_case FUNC...: from now on each call of FUNC, whose first
# argument names what it tests, is one case (t_case), however many
# assertions it makes: one check of one image, seen from several sides.
# As a case, FUNC runs in a subshell with stdin from /dev/null: what it
# leaves for its caller must be in files, not variables.
each_call_a_case() {
	local f
	for f in "$@"; do
		if declare -F "_case_$f" >/dev/null; then
			echo "each_call_a_case: $f is a case already" >&2
			continue
		fi
		eval "$(declare -f "$f" | sed "1s/^$f /_case_$f /")"
		eval "$f() { t_case \"\$1\" _case_$f \"\$@\"; }"
	done
}

need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || { skip "needs $tool"; finish; }
	done
}

# assert_eq DESCRIPTION EXPECTED ACTUAL
assert_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $2" "actual:   $3"; fi
}

# assert_same_file DESCRIPTION EXPECTED_FILE ACTUAL_FILE
assert_same_file() {
	if cmp -s "$2" "$3"; then pass "$1"; else
		fail "$1" "$(diff -u "$2" "$3" | head -20)"
	fi
}

# assert_status DESCRIPTION EXPECTED_STATUS CMD...
assert_status() {
	local desc=$1 want=$2 got
	shift 2
	"$@" >"$T_TMP/.out" 2>"$T_TMP/.err"
	got=$?
	if [ "$got" = "$want" ]; then pass "$desc"; else
		fail "$desc" "exit status $got, expected $want" "$(head -5 "$T_TMP/.err")"
	fi
}

# assert_match DESCRIPTION REGEX TEXT
assert_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else
		fail "$1" "no match for /$2/ in:" "$(printf '%s' "$3" | head -5)"
	fi
}

# assert_contains DESCRIPTION TEXT STRING: STRING holds TEXT, as it is.
assert_contains() {
	case $3 in
	*"$2"*) pass "$1" ;;
	*) fail "$1" "no '$2' in:" "$(printf '%s' "$3" | head -5)" ;;
	esac
}

# three_snapshots FILE: a 64 MiB image with snapshots s1, s2 and s3, the
# last two of the same data, each with its own copy of the L1 table, as
# qemu-img makes them.
three_snapshots() {
	qemu-img create -q -f qcow2 "$1" 64M
	qemu-io -c 'write -P 1 0 64k' "$1" >/dev/null
	qemu-img snapshot -c s1 "$1"
	qemu-io -c 'write -P 3 0 4k' "$1" >/dev/null
	qemu-img snapshot -c s2 "$1"
	qemu-img snapshot -c s3 "$1"
}

# The closing line run.sh reads: "NAME: P passed, F failed, S skipped".
_t_summary() {
	echo "$T_NAME: $(_t_count pass) passed, $(_t_count fail) failed, $(_t_count skip) skipped"
}

# Exit status: 0, 1 if anything failed, 77 if all there was to do skipped.
# Inside a case (t_case), it ends the case: skipped if all it did was
# skip (need), else failed, as stopped before its end.
finish() {
	if [ "$T_IN_CASE" = 1 ]; then
		if grep -q '^skip$' "$T_RESULTS" &&
		   ! grep -q '^pass$\|^fail$' "$T_RESULTS"; then
			exit 77
		fi
		echo "stopped by finish before the case's end" >&2
		exit 1
	fi
	T_FINISHED=1
	_t_summary
	if [ "$(_t_count fail)" -ne 0 ]; then
		exit 1
	elif [ "$(_t_count pass)" -eq 0 ] && [ "$(_t_count skip)" -ne 0 ]; then
		exit 77
	fi
	exit 0
}

_t_exit() {
	local rc=$?

	if [ -z "$T_FINISHED" ]; then
		fail "stopped before its end, exit status $rc"
		_t_summary
		rc=1
	fi
	rm -rf "$T_TMP"
	exit "$rc"
}
