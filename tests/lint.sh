#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The limits the layout promises, checked on every `make check`:
#   - no file under src/ over 1,000 lines;
#   - no function under src/ over 120 lines, from its opening brace to its
#     closing one (the kernel style of this tree puts both in column 0);
#   - the byte source is private to the model: no file under src/ or
#     include/ outside src/model and src/source reaches src/source/*.h,
#     directly or through another header (the compiler's -MM says).
# Usage: tests/lint.sh [TREE]; prints one line per finding, exits 1 if any.
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2
MAX_FILE_LINES=1000
MAX_FUNCTION_LINES=120
bad=0

mapfile -t files < <(find src include -name '*.[ch]' | LC_ALL=C sort)

for f in "${files[@]}"; do
	case $f in src/*) ;; *) continue ;; esac
	n=$(wc -l <"$f")
	if [ "$n" -gt "$MAX_FILE_LINES" ]; then
		echo "lint: '$f' has $n lines, more than $MAX_FILE_LINES"
		bad=1
	fi
	awk -v file="$f" -v max="$MAX_FUNCTION_LINES" '
		/^[A-Za-z_].*\(/ { sig = $0 }
		/^\{/ { start = NR; name = sig }
		/^\}/ && start {
			len = NR - start + 1
			if (len > max) {
				sub(/\(.*/, "", name)
				sub(/.*[ *]/, "", name)
				printf "lint: function %s() in '\''%s'\'' has %d lines, more than %d\n", name, file, len, max
				found = 1
			}
			start = 0
		}
		END { exit found }' "$f" || bad=1
done

for f in "${files[@]}"; do
	case $f in src/model/* | src/source/*) continue ;; esac
	deps=$(${CC:-cc} -MM -MG -Iinclude -Isrc -x c "$f" 2>&1) || {
		echo "lint: cannot list the headers of '$f': $deps"
		bad=1
		continue
	}
	for d in $deps; do
		[ "$d" = '\\' ] || d=$(realpath -m --relative-to=. "$d")
		case $d in
		src/source/*.h)
			echo "lint: '$f' includes '$d', which is private to src/model and src/source"
			bad=1 ;;
		esac
	done
done
exit $bad
