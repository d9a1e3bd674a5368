#!/usr/bin/env bats
# options.bats: keeps every tool's --help, manual page and shell completions
# in step with the options[] table of its cmd/TOOL.c (STYLE.md, "Docs and
# tests").  The tools are found by listing cmd/*.c, so a new tool is covered
# as soon as its source exists.  Each test checks all tools and reports every
# mismatch at once, naming the tool, the option and the file.

load helpers/common

bats_require_minimum_version 1.5.0

# The sections STYLE.md asks of every tool's page, in this order; others
# may come between them.
MAN_SECTIONS=(NAME SYNOPSIS DESCRIPTION OPTIONS OUTPUT ENVIRONMENT FILES
	"EXIT STATUS" EXAMPLES "SEE ALSO")

setup() {
	problems=()
}

# tools: the name of every tool, one per line.
tools() {
	local f
	for f in "$TOP_DIR"/cmd/*.c; do
		basename "$f" .c
	done
}

# table_options TOOL: the long option names in the struct cli_opt table of
# cmd/TOOL.c, one per line, then "verbose", which cli.c gives every tool.
# Entries are either {"name", KEY, ARG, HELP} or a CLI_OPT_NAME macro of
# lib/cli.h, whose option is the macro's name in lower case with '-' for
# '_' (CLI_OPT_LOG_FORMAT: log-format).
table_options() {
	awk '
	/struct cli_opt [A-Za-z0-9_]+\[\][[:space:]]*=/ { t = 1; next }
	t && /^[[:space:]]*\};/ { t = 0 }
	!t { next }
	match($0, /^[[:space:]]*\{[[:space:]]*"[^"]+"/) {
		s = substr($0, RSTART, RLENGTH)
		sub(/^[^"]*"/, "", s)
		sub(/"$/, "", s)
		print s
		next
	}
	match($0, /^[[:space:]]*(AWS_)?CLI_OPT_[A-Z0-9_]+/) {
		s = substr($0, RSTART, RLENGTH)
		sub(/^[[:space:]]*(AWS_)?CLI_OPT_/, "", s)
		s = tolower(s)
		gsub(/_/, "-", s)
		print s
	}
	' "$TOP_DIR/cmd/$1.c"
	echo verbose
}

# help_options TOOL: the long options that TOOL --help lists, one per line.
help_options() {
	"$1" --help | sed -nE 's/^ +(-[A-Za-z0-9], )?--([A-Za-z0-9-]+).*/\2/p'
}

# help_shorts TOOL: "x name" for each option that has a short form -x.
help_shorts() {
	"$1" --help | sed -nE 's/^ +-([A-Za-z0-9]), --([A-Za-z0-9-]+).*/\1 \2/p'
}

# help_arg TOOL NAME: the argument of --NAME as --help shows it ("EXPR",
# "NAME VALUE"), empty for a flag.
help_arg() {
	"$1" --help | sed -nE "s/^ +(-[A-Za-z0-9], )?--$2 ([^ ]+( [A-Z][A-Z]+)?)( .*)?\$/\2/p"
}

# usage_line TOOL: what follows "usage: " in TOOL --help.
usage_line() {
	"$1" --help | sed -n '1s/^usage: //p'
}

# man_section FILE NAME: the mdoc source of section NAME of FILE.
man_section() {
	awk -v sec="$2" '
	/^\.Sh / { f = (substr($0, 5) == sec || substr($0, 5) == "\"" sec "\"") ; next }
	f' "$1"
}

# problem TEXT: records a mismatch; check_problems fails with all of them.
problem() {
	problems+=("$1")
}

check_problems() {
	if [ "${#problems[@]}" -gt 0 ]; then
		fail "$(printf '%s\n' "${problems[@]}")"
	fi
}

# have_tool TOOL: true when TOOL is built; else records why not.
have_tool() {
	command -v "$1" >/dev/null && return 0
	problem "$1: cmd/$1.c exists but $SOAR_BIN/$1 does not (is it in TOOLS of the Makefile?)"
	return 1
}

need_mandoc() {
	command -v mandoc >/dev/null || skip_or_fail "mandoc is not installed (make deps)"
}

@test "options: every tool's option table is read and matches its --help" {
	local tool table help
	for tool in $(tools); do
		have_tool "$tool" || continue
		table=$(table_options "$tool" | sort)
		help=$(help_options "$tool" | sort)
		[ "$(wc -l <<<"$table")" -ge 5 ] ||
			problem "$tool: found only $(wc -l <<<"$table") options in cmd/$tool.c"
		[ "$table" = "$help" ] ||
			problem "$tool: options[] and --help differ:
$(diff <(echo "$table") <(echo "$help"))"
	done
	check_problems
}

@test "options: every tool's --help lists every option" {
	local tool name out
	for tool in $(tools); do
		have_tool "$tool" || continue
		run --separate-stderr "$tool" --help
		[ "$status" -eq 0 ] || problem "$tool --help: status $status"
		[ -z "$stderr" ] || problem "$tool --help: wrote on stderr: $stderr"
		out=$output
		for name in $(table_options "$tool"); do
			grep -Eq -- "(^|[^[:alnum:]-])--$name([^[:alnum:]-]|$)" <<<"$out" ||
				problem "$tool --help: --$name missing"
		done
	done
	check_problems
}

@test "options: every tool's man page documents every option" {
	local tool man name s opts
	for tool in $(tools); do
		have_tool "$tool" || continue
		man=$TOP_DIR/man/man1/$tool.1
		if [ ! -f "$man" ]; then
			problem "$tool: man/man1/$tool.1 is missing"
			continue
		fi
		opts=$(man_section "$man" OPTIONS | grep '^\.It ')
		for name in $(table_options "$tool"); do
			grep -Eq -- "Fl -$name([[:space:]]|$)" <<<"$opts" ||
				problem "$tool.1: no '.It ... Fl -$name' in OPTIONS"
		done
		while read -r s name; do
			grep -Eq -- "Fl $s([[:space:]].*)?Fl -$name([[:space:]]|$)" <<<"$opts" ||
				problem "$tool.1: the OPTIONS entry of --$name lacks 'Fl $s'"
		done < <(help_shorts "$tool")
	done
	check_problems
}

@test "options: every tool's man page has the sections and exit codes of STYLE.md" {
	local tool man got want i=0 code
	for tool in $(tools); do
		have_tool "$tool" || continue
		man=$TOP_DIR/man/man1/$tool.1
		[ -f "$man" ] || { problem "$tool: man/man1/$tool.1 is missing"; continue; }
		mapfile -t got < <(sed -nE 's/^\.Sh "?([^"]*)"?$/\1/p' "$man")
		i=0
		for want in "${MAN_SECTIONS[@]}"; do
			while [ "$i" -lt "${#got[@]}" ] && [ "${got[$i]}" != "$want" ]; do
				i=$((i + 1))
			done
			if [ "$i" -ge "${#got[@]}" ]; then
				problem "$tool.1: section '$want' missing or out of order (has: ${got[*]})"
				break
			fi
		done
		for code in 0 1 2 3; do
			man_section "$man" "EXIT STATUS" | grep -q "^\.It $code\$" ||
				problem "$tool.1: EXIT STATUS does not list $code"
		done
	done
	check_problems
}

@test "options: every tool's man SYNOPSIS has every flag of its usage line" {
	local tool man syn flag
	for tool in $(tools); do
		have_tool "$tool" || continue
		man=$TOP_DIR/man/man1/$tool.1
		[ -f "$man" ] || { problem "$tool: man/man1/$tool.1 is missing"; continue; }
		syn=$(man_section "$man" SYNOPSIS)
		for flag in $(usage_line "$tool" | grep -oE '(^|[[ |])--?[A-Za-z0-9][A-Za-z0-9-]*' |
			sed -E 's/^[[ |]//'); do
			grep -Eq -- "Fl ${flag#-}([[:space:]]|$)" <<<"$syn" ||
				problem "$tool.1: SYNOPSIS lacks 'Fl ${flag#-}' (usage: $(usage_line "$tool"))"
		done
	done
	check_problems
}

@test "options: every tool's man SYNOPSIS renders every part of its usage line" {
	need_mandoc
	local tool man syn part
	for tool in $(tools); do
		have_tool "$tool" || continue
		man=$TOP_DIR/man/man1/$tool.1
		[ -f "$man" ] || { problem "$tool: man/man1/$tool.1 is missing"; continue; }
		# The SYNOPSIS as a reader sees it, on one line.
		syn=$(mandoc -Tascii -Owidth=400 "$man" | sed 's/.\x08//g' |
			awk '/^SYNOPSIS/ { f = 1; next } /^[^ ]/ { f = 0 } f' |
			tr -s ' \n' '  ')
		while read -r part; do
			[[ $syn == *"$part"* ]] ||
				problem "$tool.1: SYNOPSIS does not show '$part' (it shows:$syn)"
		done < <(usage_line "$tool" | grep -oE '\[[^]]*\]|[^][ ]+')
	done
	check_problems
}

@test "options: every man page passes mandoc -Tlint" {
	need_mandoc
	local tool man out
	for man in $(for tool in $(tools); do echo "$TOP_DIR/man/man1/$tool.1"; done) \
		"$TOP_DIR/man/man7/soarutils.7"; do
		[ -f "$man" ] || { problem "${man#"$TOP_DIR"/} is missing"; continue; }
		# mandoc exits non-zero on findings; its output tells them.
		out=$(mandoc -Tlint -Wwarning "$man" 2>&1) || true
		[ -z "$out" ] || problem "$out"
	done
	check_problems
}

@test "options: every tool's bash completion offers every option" {
	local tool file name s out
	for tool in $(tools); do
		have_tool "$tool" || continue
		file=$TOP_DIR/completions/bash/$tool
		[ -f "$file" ] || { problem "$tool: completions/bash/$tool is missing"; continue; }
		# Ask the completion function what it offers after "TOOL -".
		out=$(bash -c '
			source "$1" || exit 3
			spec=$(complete -p "$2") || exit 4
			fn=$(sed -nE "s/.* -F ([^ ]+) .*/\1/p" <<<"$spec")
			[ -n "$fn" ] || exit 5
			COMP_WORDS=("$2" -); COMP_CWORD=1
			COMP_LINE="$2 -"; COMP_POINT=${#COMP_LINE}
			"$fn" "$2" - "$2"
			printf "%s\n" "${COMPREPLY[@]}"' _ "$file" "$tool" 2>&1) ||
			{ problem "$tool: bash completion failed ($?): $out"; continue; }
		for name in $(table_options "$tool"); do
			grep -qx -- "--$name" <<<"$out" ||
				problem "completions/bash/$tool: does not offer --$name"
		done
		while read -r s name; do
			grep -qx -- "-$s" <<<"$out" ||
				problem "completions/bash/$tool: does not offer -$s"
		done < <(help_shorts "$tool")
	done
	check_problems
}

@test "options: every tool's zsh completion describes every option" {
	local tool file name s
	for tool in $(tools); do
		have_tool "$tool" || continue
		file=$TOP_DIR/completions/zsh/_$tool
		[ -f "$file" ] || { problem "$tool: completions/zsh/_$tool is missing"; continue; }
		[ "$(head -n 1 "$file")" = "#compdef $tool" ] ||
			problem "completions/zsh/_$tool: first line is not '#compdef $tool'"
		for name in $(table_options "$tool"); do
			# As _arguments spells it: --name[...], --name=, --name}, ...
			grep -Eq -- "--$name([]=+[,}'\"]|$)" "$file" ||
				problem "completions/zsh/_$tool: no spec for --$name"
		done
		while read -r s name; do
			grep -Eq -- "(^|[^-])-$s([]+[,}'\"]|$)" "$file" ||
				problem "completions/zsh/_$tool: no spec for -$s"
		done < <(help_shorts "$tool")
		if command -v zsh >/dev/null; then
			zsh -n "$file" 2>&1 || problem "completions/zsh/_$tool: zsh -n failed"
		fi
	done
	check_problems
}

@test "options: every tool accepts every option its --help lists" {
	local tool name arg words i
	# Should an argument count be wrong and the tool run, it must not reach
	# a real service.
	export ES_URL=http://127.0.0.1:9 VT_URL=http://127.0.0.1:9 \
		FALCON_URL=http://127.0.0.1:9 SLACK_URL=http://127.0.0.1:9 \
		JIRA_URL=http://127.0.0.1:9 AWS_ENDPOINT_URL=http://127.0.0.1:9
	cd "$BATS_TEST_TMPDIR"
	for tool in $(tools); do
		have_tool "$tool" || continue
		for name in $(help_options "$tool"); do
			arg=$(help_arg "$tool" "$name")
			# One dummy word "1" per word of the argument ("NAME VALUE").
			read -ra words <<<"$arg"
			for ((i = 0; i < ${#words[@]}; i++)); do words[i]=1; done
			# --help after the option ends the run before any input is
			# read; it is only reached when the option took exactly as
			# many words as --help says.
			run --separate-stderr timeout 10 "$tool" "--$name" "${words[@]}" --help </dev/null
			refute_crash
			if grep -Eq 'unknown option|needs an argument|needs NAME|unexpected argument' <<<"$stderr"; then
				problem "$tool --$name ${words[*]}: $(head -n 1 <<<"$stderr")"
			fi
		done
	done
	check_problems
}

@test "options: every tool's --version prints TOOL (soarutils) VERSION" {
	local tool version
	version=$(sed -nE 's/^VERSION[[:space:]]*=[[:space:]]*//p' "$TOP_DIR/Makefile")
	[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "Makefile VERSION '$version' is not X.Y.Z"
	for tool in $(tools); do
		have_tool "$tool" || continue
		run --separate-stderr "$tool" --version
		[ "$status" -eq 0 ] || problem "$tool --version: status $status"
		[ "$output" = "$tool (soarutils) $version" ] ||
			problem "$tool --version: printed '$output', want '$tool (soarutils) $version'"
		[ -z "$stderr" ] || problem "$tool --version: wrote on stderr: $stderr"
	done
	check_problems
}

@test "options: every tool exits 2 with its usage line on an unknown option" {
	local tool usage
	for tool in $(tools); do
		have_tool "$tool" || continue
		usage=$(usage_line "$tool")
		run --separate-stderr "$tool" --soar-no-such-option </dev/null
		refute_crash
		[ "$status" -eq 2 ] || problem "$tool --soar-no-such-option: status $status, want 2"
		[ -z "$output" ] || problem "$tool --soar-no-such-option: wrote on stdout: $output"
		grep -qxF -- "usage: $usage" <<<"$stderr" ||
			problem "$tool --soar-no-such-option: no usage line on stderr: $stderr"
		grep -q -- '--soar-no-such-option' <<<"$stderr" ||
			problem "$tool --soar-no-such-option: the message does not name the option"
	done
	check_problems
}
