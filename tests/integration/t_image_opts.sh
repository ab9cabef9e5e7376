#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qemu-img's --object and --image-opts: the command line qemu-img needs
# for a LUKS image (it cannot check or map one without the secret) runs
# unchanged, gives qemu-img's output and exit status, and keeps the
# secret out of every message; option strings are read as QEMU reads
# them, and what qcow2elf does not take is refused, never ignored.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/hold.sh"
need qemu-img qemu-io jq
T=$T_TMP

OBJ="secret,id=sec0,data=s3cr3t-passphrase"
qimg() { qemu-img "$@" >"$T/q.out" 2>"$T/q.err"; echo $?; }
ours() { "$Q2E" "$@" >"$T/o.out" 2>"$T/o.err"; echo $?; }

# On a loaded machine QEMU's PBKDF timing can fail ("Unable to get
# accurate CPU usage"): up to 50 tries half a second apart, as t_redact makes its image.
for try in $(seq 50); do
	qemu-img create -q -f qcow2 --object "$OBJ" \
		-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
		"$T/enc.qcow2" 64M 2>/dev/null && break
	rm -f "$T/enc.qcow2"
	sleep 0.5
done
qemu-io --object "$OBJ" --image-opts \
	"driver=qcow2,file.filename=$T/enc.qcow2,encrypt.key-secret=sec0" \
	-c 'write -P 0x5a 1M 2M' >/dev/null
LUKS="driver=qcow2,file.filename=$T/enc.qcow2,encrypt.key-secret=sec0"

luks_case() {
	local cmd q o
	q=$(qimg check "$T/enc.qcow2")
	assert_eq "qemu-img check needs the secret of a LUKS image" 1 "$q"
	for cmd in "check" "check --output=json" "map --output=json" \
		   "info --output=json"; do
		q=$(qimg $cmd --object "$OBJ" --image-opts "$LUKS")
		o=$(ours $cmd --object "$OBJ" --image-opts "$LUKS")
		assert_eq "LUKS image, qemu-img's command line: $cmd exits as qemu-img ($q)" \
			"$q" "$o"
		case $cmd in
		check) assert_same_file "LUKS image: check prints qemu-img check's report" \
				"$T/q.out" "$T/o.out" ;;
		"check --output=json")
			# qemu-img names the option string; qcow2elf the file
			assert_eq "LUKS image: check --output=json gives qemu-img's counts" \
				"$(jq -cS 'del(.filename)' "$T/q.out")" \
				"$(jq -cS 'del(.filename, .findings)' "$T/o.out")"
			assert_eq "...and names the file" "$T/enc.qcow2" \
				"$(jq -r .filename "$T/o.out")" ;;
		"map --output=json")
			assert_eq "LUKS image: map --output=json gives qemu-img's JSON" \
				"$(jq -cS . "$T/q.out")" "$(jq -cS . "$T/o.out")" ;;
		info*)
			assert_eq "LUKS image: info --output=json names the file" \
				"$T/enc.qcow2" "$(jq -r .filename "$T/o.out")"
			assert_eq "LUKS image: ... and its virtual size, as qemu-img" \
				"$(jq -r '."virtual-size"' "$T/q.out")" \
				"$(jq -r '."virtual-size"' "$T/o.out")" ;;
		esac
	done
	o=$(ours dump --object "$OBJ" --image-opts "$LUKS" -o "$T/enc.elf")
	assert_eq "LUKS image: dump with qemu-img's options exits 0" 0 "$o"
	"$Q2E" dump "$T/enc.qcow2" -o "$T/plain.elf"
	assert_same_file "...and writes the dump the image's name gives" \
		"$T/plain.elf" "$T/enc.elf"
	o=$(ours diff --object "$OBJ" --image-opts "$LUKS" "$LUKS")
	assert_eq "LUKS image: diff of it with itself, as option strings, exits 0" 0 "$o"
	q=$(qimg compare --object "$OBJ" --image-opts "$LUKS" "$LUKS")
	assert_eq "...as qemu-img compare does" "$q" "$o"
	o=$(ours check --output=json-lines --image-opts "$LUKS" "$LUKS")
	assert_eq "json-lines: each option string is an image" 2 "$(wc -l <"$T/o.out")"
	assert_eq "...named by its file" "$T/enc.qcow2" \
		"$(head -n 1 "$T/o.out" | jq -r .filename)"
}
t_case "a LUKS image, with qemu-img's command line" luks_case

# A comma in a file name is ",," in an option string.
comma_case() {
	local q o
	qemu-img create -q -f qcow2 "$T/a,b.qcow2" 16M
	qemu-io -c 'write 0 64k' "$T/a,b.qcow2" >/dev/null
	q=$(qimg check --image-opts "driver=qcow2,file.filename=$T/a,,b.qcow2")
	o=$(ours check --image-opts "driver=qcow2,file.filename=$T/a,,b.qcow2")
	assert_eq "a comma in the file name: check exits as qemu-img ($q)" "$q" "$o"
	assert_same_file "...with its report" "$T/q.out" "$T/o.out"
	q=$(qimg map --output=json --image-opts "file.driver=file,file.filename=$T/a,,b.qcow2")
	o=$(ours map --output=json --image-opts "file.driver=file,file.filename=$T/a,,b.qcow2")
	assert_eq "file.driver=file, no driver: map exits as qemu-img ($q)" "$q" "$o"
	assert_eq "...with its JSON" "$(jq -cS . "$T/q.out")" "$(jq -cS . "$T/o.out")"
}
t_case "a comma in the file name" comma_case

# What qemu-img refuses, qcow2elf refuses, with exit status 1 (diff 2).
refused_case() {
	local spec q o img="$T/a,,b.qcow2"
	for spec in "driver=qcow2,file.filename=$img,backing=null" \
		    "driver=qcow2,file.filename=$img,bogus=1" \
		    "driver=qcow2,filename=$img" \
		    "driver=qcow2,file.filename=" \
		    "$T/enc.qcow2"; do
		q=$(qimg check --image-opts "$spec")
		o=$(ours check --image-opts "$spec")
		assert_eq "check --image-opts '${spec#driver=qcow2,}' fails as in qemu-img ($q)" \
			"$q" "$o"
		assert_eq "...with nothing on standard output" 0 "$(wc -c <"$T/o.out")"
		assert_match "...saying why, with --help's hint" \
			"^qcow2elf: check: .*"$'\n'"Try 'qcow2elf check --help'" "$(cat "$T/o.err")"
	done
	# As -f raw: a usage error, where qemu-img check says raw has no
	# check (63).
	assert_status "driver=raw is a usage error, as -f raw" 1 \
		"$Q2E" check --image-opts "driver=raw,file.filename=$img"
	assert_match "...saying qcow2 is the format read" \
		"reads qcow2 images and their dumps only, not driver=raw" \
		"$(cat "$T_TMP/.err")"
	assert_match "an option not taken is named" "does not take the option 'backing'" \
		"$("$Q2E" check --image-opts "driver=qcow2,file.filename=$img,backing=null" 2>&1)"
	assert_match "a plain file name says what --image-opts wants" \
		"with --image-opts, IMAGE is driver=qcow2,file.filename=PATH" \
		"$("$Q2E" info --image-opts "$T/enc.qcow2" 2>&1)"
	for args in "-f qcow2 --image-opts" "--image-opts -f qcow2"; do
		q=$(qimg check $args "driver=qcow2,file.filename=$img")
		o=$(ours check $args "driver=qcow2,file.filename=$img")
		assert_eq "check $args: mutually exclusive, as in qemu-img ($q)" "$q" "$o"
		assert_match "...and says so" "--image-opts and -f are mutually exclusive" \
			"$(cat "$T/o.err")"
	done
	o=$(ours diff --image-opts "driver=qcow2,file.filename=$img,bogus=1" \
		"driver=qcow2,file.filename=$img")
	assert_eq "diff: a bad option string exits 2, as diff's usage errors" 2 "$o"
}
t_case "option strings qemu-img refuses" refused_case

# --object: QEMU's form is checked; the secret is never repeated.
object_case() {
	local spec q o img="$T/a,b.qcow2"
	for spec in "secret,data=TOPSECRET" "id=x,data=TOPSECRET" "" \
		    "secret,id=1x,data=TOPSECRET" "secret,id=x" \
		    '{"qom-type":"secret","data":"TOPSECRET"}' '{"TOPSECRET'; do
		q=$(qimg check --object "$spec" "$img")
		o=$(ours check --object "$spec" "$img")
		assert_eq "--object '$spec' fails as in qemu-img ($q)" "$q" "$o"
		assert_eq "...and does not check the image" 0 "$(wc -c <"$T/o.out")"
		assert_eq "...nor repeat the secret" "" \
			"$(grep -o TOPSECRET "$T/o.err")"
	done
	assert_match "no id: said as qemu-img says it" "Parameter 'id' is missing" \
		"$("$Q2E" map --object secret,data=x "$img" 2>&1)"
	o=$(ours check --object "secret,id=s0,data=a,,b" --object \
		'{"qom-type":"secret","id":"s1","data":"x"} ' "$img")
	assert_eq "two --object, one in JSON form (white space after it): accepted" 0 "$o"
}
t_case "--object" object_case

# --object as qemu-img 7.2 checks it: the type, the id, a secret's
# properties; each failure exits as qemu-img's, in its words.
object_checks_case() {
	local line mode specs spec q o img="$T/a,b.qcow2" words args
	printf 'key' >"$T/key.txt"
	printf '0123456789abcdef0123456789abcdef' >"$T/key32.txt"
	# MODE, then the --object specs separated by " ;; ".  words: exits
	# as qemu-img, saying what it says; status: exits as qemu-img, its
	# words left out as they may hold a secret's.
	while IFS='	' read -r mode specs; do
		args=()
		while [ -n "$specs" ]; do
			spec=${specs%% ;; *}
			args+=(--object "${spec//@T@/$T}")
			[ "$spec" = "$specs" ] && specs= || specs=${specs#* ;; }
		done
		q=$(qimg check "${args[@]}" "$img")
		o=$(ours check "${args[@]}" "$img")
		assert_eq "${args[*]}: exits as qemu-img check ($q)" "$q" "$o"
		words=$(sed -n 's/^qemu-img: //p' "$T/q.err" | head -n 1)
		[ "$mode" = words ] && [ -n "$words" ] &&
			assert_contains "...and says what qemu-img says" \
				"--object: $words" "$(cat "$T/o.err")"
		assert_eq "...and repeats no secret" "" \
			"$(grep -o 'TOP\|SECRET' "$T/o.err" "$T/o.out")"
	done <<'EOF2'
words	foo,id=x
words	iothread,id=x
words	{"qom-type":"foo","id":"x"}
words	{"qom-type":"iothread","id":"x"}
words	qom-type=help
words	secret_keyring,id=k
words	secret_keyring,id=k,serial=abc
words	secret_keyring,id=k,serial=99999999999
words	secret_keyring,id=k,serial=1
words	secret,id=s,data=x,loaded=on
status	secret,id=s,file=@T@/none.txt
status	secret,id=s,file=@T@
status	secret,id=s,data=x,keyid=k0
words	,secret,id=s,data=x
words	secret,,id=s,data=x
words	secret,=x
words	secret,id=s,file=@T@/key.txt
words	secret,id=s,data=x,id=t
words	secret,id=s,data=x,format=base64
words	secret,id=s,data=!!,format=base64
words	secret,id=s,data=x,file=@T@/key.txt
words	secret,id=s,data=x,format=hex,format=raw
words	secret,id=1x
words	throttle-group,id=t
words	secret,id=s,data=x,
words	{}
words	{"qom-type":"secret"}
words	{"qom-type":1,"id":"s"}
words	{"qom-type":"secret","id":"s"}
words	{"qom-type":"secret","id":"s","data":1}
status	{"qom-type":"secret","id":"s","data":"x","keyid":"k0"}
words	{"qom-type":"secret","id":"s","data":"x",}
words	{"qom-type":"secret","id":"s","data":"x","data":"y"}
words	{"qom-type":"secret","data":"id","id":"s"}
words	{'qom-type':'secret','id':'s','data':'x'}
words	{"qom-type":"sec\u0072et","id":"s","data":"x"}
words	{"qom-type":"throttle-group","id":"t","limits":{"iops-total":10}}
status	secret,id=s,data=x,keyid=s
status	secret,id=s,data=y,keyid=k0 ;; secret,id=k0,data=x
words	secret,id=k0,data=x ;; secret,id=s,data=x,keyid=k0
status	throttle-group,id=t ;; secret,id=s,data=x,keyid=t
words	secret,id=k,file=@T@/key32.txt ;; secret,id=s,data=x,keyid=k
words	secret,id=k,file=@T@/key32.txt ;; secret,id=s,data=x,keyid=k,iv=AAAA
words	secret,id=s,data=x ;; secret,id=s,data=y
words	main-loop,id=m ;; main-loop,id=m2
status	secret,id=s,data=TOP,SECRET
status	secret,id=s,data=TOP,SEC=RET
status	secret,id=s,data=x,bogus=1
status	secret,id=s,data=x,format=hex
status	{"qom-type":"secret","id":"s","data":"TOP","SECRET":1}
status	secret,id=s,file=@T@/TOPSECRET
status	secret,id=s,data=TOP,keyid=SECRET
words	{"qom-type":"secret_keyring","id":"k","serial":"5"}
words	{"qom-type":"secret_keyring","id":"k","serial":1.5}
words	{"qom-type":"secret_keyring","id":"k","serial":99999999999}
words	{"qom-type":"secret_keyring","id":"k","serial":5}
words	{"qom-type":"secret","id":"s","data":5}
words	{"qom-type":"secret_keyring","id":"k","serial":0}
words	secret_keyring,id=k,serial=0
status	{"qom-type":"secret_keyring","id":"k","serial":05}
status	{"qom-type":"throttle-group","id":"t","limits":{"iops-total":010}}
status	{"qom-type":"throttle-group","id":"t","limits":{"iops-total" 1}}
status	{"qom-type":"throttle-group","id":"t","limits":[1,]}
words	{"qom-type":"throttle-group","id":"t","limits":{"iops-total":10}}
words	secret_keyring,id=k,serial=0,loaded=on
EOF2
}
t_case "--object: types, ids and secrets as qemu-img checks them" object_checks_case

# --object help, alone or after a type: what qemu-img prints, exit 0,
# before the image is looked at.
object_help_case() {
	local spec cmd
	for spec in help "?" "help,id=x" "secret,help" "secret_keyring,help" \
		    "iothread,help" "foo,help"; do
		for cmd in info map check dump diff; do
			"$Q2E" $cmd --object "$spec" >"$T/o.out" 2>"$T/o.err"
			assert_eq "$cmd --object '$spec': exit 0, as qemu-img" 0 $?
			qemu-img info --object "$spec" >"$T/q.out" 2>&1
			assert_eq "...printing what qemu-img prints" \
				"$(cat "$T/q.out")" "$(cat "$T/o.out")"
		done
	done
	assert_eq "throttle-group,help: refused (qcow2elf keeps no list of its properties)" 1 \
		"$(ours info --object throttle-group,help)"
}
t_case "--object help" object_help_case

# QEMU's checks across options, and against the image it opens: each
# string exits as qemu-img's, the plain image and the LUKS one.
combined_case() {
	local spec cmd img q o words plain="driver=qcow2,file.filename=$T/a,,b.qcow2"
	local v2="driver=qcow2,file.filename=$T/v2.qcow2"
	qemu-img create -q -f qcow2 -o compat=0.10 "$T/v2.qcow2" 64M
	while IFS= read -r spec; do
		for cmd in info check; do
			for img in "$plain" "$LUKS" "$v2"; do
				q=$(qimg $cmd --object "$OBJ" --image-opts "$img$spec")
				o=$(ours $cmd --object "$OBJ" --image-opts "$img$spec")
				assert_eq "$cmd '${img##*/}$spec' exits as qemu-img $cmd ($q)" "$q" "$o"
				words=$(sed -n "s/^qemu-img: Could not open '[^']*': //p" "$T/q.err")
				words=${words%.}
				[ -z "$words" ] || assert_contains "...saying why, as qemu-img does" \
					"$words, as QEMU says" "$(cat "$T/o.err")"
			done
		done
	done <<'EOF2'
,detect-zeroes=unmap
,detect-zeroes=unmap,discard=on
,detect-zeroes=unmap,file.aio=native
,file.aio=native
,file.aio=native,cache.direct=on
,file.aio=native,cache.direct=on,file.cache.direct=off
,cache-size=1M,l2-cache-size=1M,refcount-cache-size=1M
,cache-size=1M,l2-cache-size=2M
,cache-size=1M,l2-cache-size=1M
,cache-size=1M,refcount-cache-size=2M
,cache-size=1M,refcount-cache-size=1M
,cache-size=2M,l2-cache-size=1M
,l2-cache-entry-size=1000
,l2-cache-entry-size=256
,l2-cache-entry-size=512
,l2-cache-entry-size=64k
,l2-cache-entry-size=128k
,refcount-cache-size=200T
,cache-size=200T
,cache-size=200T,l2-cache-size=190T
,cache-clean-interval=4294967295
,cache-clean-interval=4294967296
,lazy-refcounts=on
,lazy-refcounts=on,encrypt.format=aes
,encrypt.format=luks
,encrypt.format=aes
,encrypt.key-secret=nosuch
EOF2
	# Each image by its own string: diff's second, json-lines' later ones.
	q=$(qimg compare --image-opts "$plain" "$plain,encrypt.format=luks")
	o=$(ours diff --image-opts "$plain" "$plain,encrypt.format=luks")
	assert_eq "diff: the second image's string checked, exit as compare's ($q)" "$q" "$o"
	o=$(ours check --output=json-lines --image-opts "$plain" "$v2,lazy-refcounts=on" "$plain")
	assert_eq "json-lines: a line for each image, the refused one with its error" \
		"0 1 0" "$(jq -r '."exit-status"' "$T/o.out" | tr '\n' ' ' | sed 's/ $//')"
	assert_match "...saying why" "Lazy refcounts require" \
		"$(jq -r '.error // empty' "$T/o.out")"
}
t_case "option strings QEMU refuses as it opens the image" combined_case

# Option strings as QEMU reads them, each compared with qemu-img check's
# exit status: the last of a key given twice counts, a bare word after
# the first is KEY=on (noKEY: off), the options that tune QEMU's caches
# and I/O are taken with the values QEMU takes.
parsing_case() {
	local spec q o img="$T/a,,b.qcow2"
	while IFS= read -r spec; do
		q=$(qimg check --image-opts "driver=qcow2,file.filename=$img$spec")
		o=$(ours check --image-opts "driver=qcow2,file.filename=$img$spec")
		assert_eq "check --image-opts '...$spec' exits as qemu-img check ($q)" "$q" "$o"
	done <<'EOF2'
,driver=raw,driver=qcow2
,discard
,noforce-share
,discard=unmap,detect-zeroes=on,file.aio=threads
,l2-cache-size=1M,cache-clean-interval=0,node-name=n0
,file.x-check-cache-dropped=on,read-only=on
,file.cache.direct=on,file.cache.no-flush=on
,cache-clean-interval=1k
,file.aio-max-batch=1k
,node-name=1abc
,node-name
,detect-zeroes=bogus
,discard=bogus
,file.aio=bogus
,l2-cache-size=lots
,read-only=maybe
EOF2
	spec=$(printf ',cache-size=1M%.0s' $(seq 70))
	q=$(qimg check --image-opts "driver=qcow2,file.filename=$img$spec")
	o=$(ours check --image-opts "driver=qcow2,file.filename=$img$spec")
	assert_eq "70 options: exits as qemu-img check ($q)" "$q" "$o"
	q=$(qimg check --image-opts "force-share,driver=qcow2,file.filename=$img")
	o=$(ours check --image-opts "force-share,driver=qcow2,file.filename=$img")
	assert_eq "a bare first word (QEMU's implied file=) is refused ($q)" "$q" "$o"
	# A raw file named driver=qcow2 fails to open, as with -f qcow2:
	# exit 1, not raw's 63.
	truncate -s 1M "$T/raw.img"
	q=$(qimg check --image-opts "driver=qcow2,file.filename=$T/raw.img")
	o=$(ours check --image-opts "driver=qcow2,file.filename=$T/raw.img")
	assert_eq "driver=qcow2 on a raw file: check exits as qemu-img check ($q)" "$q" "$o"
	o=$(ours check --output=json-lines --image-opts "file.filename=$T/raw.img" \
		"driver=qcow2,file.filename=$T/raw.img")
	assert_eq "json-lines: each string's driver for its own image (63, then 1)" \
		"63 1" "$(jq -r '."exit-status"' "$T/o.out" | tr '\n' ' ' | sed 's/ $//')"
}
t_case "option strings read as QEMU reads them" parsing_case

# force-share=on and file.locking=off read an image a VM writes, as -U.
force_share_case() {
	local spec q o
	qemu-img create -q -f qcow2 "$T/live.qcow2" 16M
	hold "" "$T/live.qcow2"
	for spec in "" ",force-share=on" ",file.locking=off" ",force-share=off"; do
		q=$(qimg map --output=json --image-opts "driver=qcow2,file.filename=$T/live.qcow2$spec")
		o=$(ours map --output=json --image-opts "driver=qcow2,file.filename=$T/live.qcow2$spec")
		assert_eq "written by a VM, '${spec#,}': map exits as qemu-img ($q)" "$q" "$o"
	done
	assert_match "...and without, says qemu-img's reason" \
		'Failed to get shared "write" lock' "$(cat "$T/o.err")"
	# Each image by its own string: force-share=on of one is not the
	# other's.
	qemu-img create -q -f qcow2 "$T/free.qcow2" 16M
	o=$(ours check --output=json-lines --image-opts "driver=qcow2,file.filename=$T/live.qcow2" \
		"driver=qcow2,file.filename=$T/free.qcow2,force-share=on")
	assert_eq "json-lines: the VM's image without force-share is refused, the other read" \
		"1 0" "$(jq -r '."exit-status"' "$T/o.out" | tr '\n' ' ' | sed 's/ $//')"
	q=$(qimg compare --image-opts "driver=qcow2,file.filename=$T/live.qcow2" \
		"driver=qcow2,file.filename=$T/free.qcow2,force-share=on")
	o=$(ours diff --image-opts "driver=qcow2,file.filename=$T/live.qcow2" \
		"driver=qcow2,file.filename=$T/free.qcow2,force-share=on")
	assert_eq "diff: the same, as qemu-img compare ($q)" "$q" "$o"
	# The backing file: force-share is QEMU's for it too (but for info
	# --backing-chain, which opens each by its name), file.locking=off
	# the top file's alone.
	qemu-img create -q -f qcow2 -u -b "$T/live.qcow2" -F qcow2 "$T/top.qcow2" 16M
	for cmd in check map "info --backing-chain"; do
		for spec in ",force-share=on" ",file.locking=off"; do
			q=$(qimg $cmd --image-opts "driver=qcow2,file.filename=$T/top.qcow2$spec")
			o=$(ours $cmd --image-opts "driver=qcow2,file.filename=$T/top.qcow2$spec")
			assert_eq "its backing file written by a VM, $cmd '${spec#,}': exits as qemu-img ($q)" \
				"$q" "$o"
		done
	done
	# qemu-img's rules for -U with image options.
	for spec in ",force-share=off" ",force-share=yes" ",force-share=on,read-only=off" ""; do
		q=$(qimg check -U --image-opts "driver=qcow2,file.filename=$T/live.qcow2$spec")
		o=$(ours check -U --image-opts "driver=qcow2,file.filename=$T/live.qcow2$spec")
		assert_eq "check -U --image-opts '...$spec' exits as qemu-img ($q)" "$q" "$o"
	done
	release
}
t_case "force-share and file.locking" force_share_case

finish
