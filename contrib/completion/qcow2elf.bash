# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for qcow2elf: commands, their options and files.
#
# `make install` puts it where bash-completion loads it on demand,
# $(PREFIX)/share/bash-completion/completions/qcow2elf; or source it from
# ~/.bashrc.  Commands and options are read from `qcow2elf --help` and
# `qcow2elf COMMAND --help`, so they follow the qcow2elf being completed.

# The commands `qcow2elf --help` lists, one a line, each once (a command
# of two forms is listed twice).
_qcow2elf_commands()
{
	"$1" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' |
		awk '!seen[$0]++'
}

# The options `qcow2elf COMMAND --help` lists, one a line: "--output=" for
# one that takes a value, both "--color" and "--color=" for an optional one.
_qcow2elf_options()
{
	local line opt opts

	"$1" "$2" --help 2>/dev/null | while IFS= read -r line; do
		[[ $line =~ ^\ +(-.*)$ ]] || continue
		line=${BASH_REMATCH[1]}
		line=${line%%  *}
		IFS=', ' read -ra opts <<<"$line"
		for opt in "${opts[@]}"; do
			case $opt in
			*'[='*) printf '%s\n' "${opt%%\[*}" "${opt%%\[*}=" ;;
			--*=*) printf '%s\n' "${opt%%=*}=" ;;
			-*) printf '%s\n' "$opt" ;;
			esac
		done
	done
}

_qcow2elf_files()
{
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_qcow2elf()
{
	local prog=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
	local prev= opt= prefix= cmd

	COMPREPLY=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	if ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W \
			"$(_qcow2elf_commands "$prog") -h --help -V --version" \
			-- "$cur")
		return
	fi
	cmd=${COMP_WORDS[1]}

	# OPTION=VALUE: bash splits it at "=" when "=" is in COMP_WORDBREAKS
	# (its default), and the value is the word; otherwise the word is all
	# of it and each reply must carry "OPTION=".
	if [[ $cur == = ]]; then
		opt=$prev cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		opt=${COMP_WORDS[COMP_CWORD - 2]}
	elif [[ $cur == --*=* ]]; then
		opt=${cur%%=*} prefix=${cur%%=*}= cur=${cur#*=}
	elif [[ $prev == --output ]]; then
		# OPTION VALUE, for the options whose value is required; an
		# optional one (--color) takes its value only after "=".
		opt=$prev
	elif [[ $prev == -o ]]; then
		_qcow2elf_files "$cur"
		return
	elif [[ $prev == -T && $cmd == check ]]; then
		# qemu-img check's source cache modes
		mapfile -t COMPREPLY < <(compgen -W \
			'none writeback unsafe directsync writethrough' -- "$cur")
		return
	elif [[ $prev == -[fF] && $cmd != restore ]]; then
		# qemu-img's image format: qcow2, the one read
		mapfile -t COMPREPLY < <(compgen -W qcow2 -- "$cur")
		return
	fi
	case $opt in
	--output)
		local outs='human json'
		# dump and restore have no --output: they write to -o FILE
		[[ $cmd == dump || $cmd == restore ]] && return
		[[ $cmd == check ]] && outs+=' json-lines'
		mapfile -t COMPREPLY < <(compgen -P "$prefix" -W "$outs" -- "$cur")
		return ;;
	--color)
		mapfile -t COMPREPLY < <(compgen -P "$prefix" -W 'auto always never' -- "$cur")
		return ;;
	--output-file)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -P "$prefix" -f -- "$cur")
		return ;;
	?*)
		return ;;
	esac

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W \
			"$(_qcow2elf_options "$prog" "$cmd")" -- "$cur")
		# An option that takes a value goes on without a space.
		[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] &&
			compopt -o nospace 2>/dev/null
		return
	fi
	_qcow2elf_files "$cur"
}

complete -F _qcow2elf qcow2elf
