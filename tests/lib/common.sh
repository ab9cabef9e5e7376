# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the integration tests: a scratch directory, assertions that say
# what a user would have seen, and skips when a tool is missing.
# Each test script sources this file, calls `check NAME CMD...` or the
# assert_* helpers, and ends with `finish`.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
Q2E=${Q2E:-$TOP/qcow2elf}
T_NAME=$(basename "$0" .sh)
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/q2e-$T_NAME.XXXXXX")
T_PASS=0
T_FAIL=0
T_SKIP=0
trap 'rm -rf "$T_TMP"' EXIT

pass() { T_PASS=$((T_PASS + 1)); [ -n "${VERBOSE:-}" ] && echo "ok   $T_NAME: $1"; return 0; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $T_NAME: $1"; shift; for l in "$@"; do echo "     $l"; done; return 0; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "skip $T_NAME: $1"; }

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

finish() {
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}
