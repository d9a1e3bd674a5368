#!/usr/bin/env bats
# decide: filtering, field setting, rules, routes, and every failure path.

load helpers/common

setup() {
	cd "$BATS_TEST_TMPDIR"
	A1='{"alert":{"id":"a1","severity":"critical","score":99},"vt":{"score":80},"n":18446744073709551615}'
	A2='{"alert":{"id":"a2","severity":"low","score":21},"kibana.alert.rule.name":"Port Scan"}'
	A3='{ "alert" : {"id":"a3","severity":"high","score":73} , "x": 1.50e+2 }'
	printf '%s\n' "$A1" "$A2" "$A3" >alerts.ndjson
}

@test "decide: --where keeps matching events byte for byte" {
	run decide -w '.alert.score >= 70' <alerts.ndjson
	assert_success
	assert_equal "${lines[0]}" "$A1"
	assert_equal "${lines[1]}" "$A3"
	assert_equal "${#lines[@]}" 2
}

@test "decide: --invert keeps the events --where drops" {
	run decide -v -w '.alert.score >= 70' <alerts.ndjson
	assert_success
	assert_output "$A2"
}

@test "decide: several --where must all hold" {
	run decide -w '.alert.score >= 70' -w '.vt.score > 50' <alerts.ndjson
	assert_success
	assert_output "$A1"
}

@test "decide: --where reads flat dotted keys with the bracket form" {
	run decide -w '.["kibana.alert.rule.name"] == "Port Scan"' <alerts.ndjson
	assert_success
	assert_output "$A2"
}

@test "decide: --set adds a nested field and keeps the other bytes" {
	run decide -s 'triage.priority=.alert.score / 25 | floor' <alerts.ndjson
	assert_success
	assert_equal "${lines[0]}" "${A1%\}},\"triage\":{\"priority\":3}}"
	assert_equal "${lines[2]}" '{ "alert" : {"id":"a3","severity":"high","score":73} , "x": 1.50e+2 ,"triage":{"priority":2}}'
}

@test "decide: --set replaces an existing value in place" {
	run decide -s 'alert.severity="medium"' <<<"$A3"
	assert_success
	assert_output '{ "alert" : {"id":"a3","severity":"medium","score":73} , "x": 1.50e+2 }'
}

@test "decide: --set writes to a flat dotted key when it exists" {
	run decide -s 'kibana.alert.rule.name=(.["kibana.alert.rule.name"] | ascii_upcase)' <<<"$A2"
	assert_success
	assert_output '{"alert":{"id":"a2","severity":"low","score":21},"kibana.alert.rule.name":"PORT SCAN"}'
}

@test "decide: --set applies in order and each sees the last" {
	run decide -s 'a=1' -s 'b=.a + 1' <<<'{}'
	assert_success
	assert_output '{"a":1,"b":2}'
}

@test "decide: --set with no output leaves the field alone" {
	run decide -s 'alert.id=empty' <<<"$A3"
	assert_success
	assert_output "$A3"
}

@test "decide: --set through a non-object marks the event and exits 1" {
	run decide -s 'alert.id.x=1' <<<"$A2"
	assert_failure 1
	assert_line --index 0 --partial 'decide: error: line 1: alert a2: alert.id.x: a step of the path is not an object'
	assert_line --index 1 --partial '"decision":{"error":{"code":"path"'
}

@test "decide: the first true rule wins and names itself" {
	run decide -r 'contain=.alert.score >= 90' -r 'escalate=.alert.score >= 70' <alerts.ndjson
	assert_success
	assert_line --index 0 --partial '"decision":{"outcome":"contain","rule":"--rule 1"}}'
	assert_line --index 1 --partial '"decision":{"outcome":null,"rule":null}}'
	assert_line --index 2 --partial '"decision":{"outcome":"escalate","rule":"--rule 2"}}'
}

@test "decide: a rules file names rules by file and line" {
	cat >rules.jq <<-'EOF'
	# contain what VirusTotal confirms
	contain: .alert.severity == "critical"
	    and (.vt.score // 0) >= 70

	escalate: .alert.severity == "high"
	EOF
	run decide -f rules.jq --default monitor <alerts.ndjson
	assert_success
	assert_line --index 0 --partial '"decision":{"outcome":"contain","rule":"rules.jq:2"}}'
	assert_line --index 1 --partial '"decision":{"outcome":"monitor","rule":"default"}}'
	assert_line --index 2 --partial '"decision":{"outcome":"escalate","rule":"rules.jq:5"}}'
}

@test "decide: a broken rules file is a usage error with its line" {
	printf 'contain .a\n' >bad.jq
	run decide -f bad.jq <alerts.ndjson
	assert_failure 2
	assert_output --partial "bad.jq:1: expected 'OUTCOME: EXPR'"
}

@test "decide: --as renames the decision key and replaces it on a re-run" {
	run bash -c "decide --default a --as triage <alerts.ndjson | decide --default b --as triage"
	assert_success
	assert_line --index 0 "${A1%\}},\"triage\":{\"outcome\":\"b\",\"rule\":\"default\"}}"
	refute_output --partial '"outcome":"a"'
}

@test "decide: --route sends outcomes to files and the rest to stdout" {
	run decide -r 'contain=.alert.score >= 90' -r 'escalate=.alert.score >= 70' \
		--route contain=c.ndjson --route escalate=c.ndjson <alerts.ndjson
	assert_success
	assert_output --partial '"id":"a2"'
	assert_equal "$(wc -l <c.ndjson)" 2
	run cat c.ndjson
	assert_line --index 0 --partial '"outcome":"contain"'
	assert_line --index 1 --partial '"outcome":"escalate"'
}

@test "decide: --route writes to a file descriptor for Bash branching" {
	run bash -c 'decide -r "hot=.alert.score >= 90" --route hot=/dev/fd/3 <alerts.ndjson 3>hot.ndjson >rest.ndjson'
	assert_success
	assert_equal "$(wc -l <hot.ndjson)" 1
	assert_equal "$(wc -l <rest.ndjson)" 2
	grep -q '"id":"a1"' hot.ndjson
}

@test "decide: --when passes other events through untouched" {
	run decide --when '.alert.severity != "low"' -w '.alert.score > 90' --default x <alerts.ndjson
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --partial '"decision":{"outcome":"x"'
	assert_equal "${lines[1]}" "$A2"
}

@test "decide: --arg, --argjson and \$ENV reach the expressions" {
	export SOAR_TEST_MIN=70
	run decide -w '.alert.severity == $sev and .alert.score >= $min and .alert.score >= ($ENV.SOAR_TEST_MIN | tonumber)' \
		--arg sev high --argjson min 50 <alerts.ndjson
	assert_success
	assert_output "$A3"
}

@test "decide: a runtime error passes the event on with decision.error" {
	run decide -r 'bad=.alert.id + 1' <alerts.ndjson
	assert_failure 1
	assert_equal "$(grep -c '"decision":{"error":{"code":"jq"' <<<"$output")" 3
	assert_output --partial 'decide: error: line 2: alert a2: --rule 1: string ("a2") and number (1) cannot be added'
	assert_output --partial '"rule":"--rule 1"'
}

@test "decide: a compile error exits 2 naming the expression, before reading" {
	run decide -w '.a ==' -r 'ok=true' </dev/null
	assert_failure 2
	assert_output --partial '--where: cannot compile'
	assert_output --partial 'in: .a =='
	refute_output --partial 'ok=true'
}

@test "decide: empty input gives no output and exit 0" {
	run decide -w true </dev/null
	assert_success
	assert_output ''
}

@test "decide: CRLF, a BOM, RS and blank lines are tolerated" {
	printf '\xef\xbb\xbf{"a":1}\r\n\n   \n\x1e{"a":2}\r\n{"a":3}' >odd.ndjson
	run decide -w '.a > 1' <odd.ndjson
	assert_success
	assert_equal "$output" $'{"a":2}\n{"a":3}'
}

@test "decide: a truncated last line is rejected, the rest processed" {
	printf '{"a":1}\n{"a":' >trunc.ndjson
	run decide -w true --reject rej.ndjson <trunc.ndjson
	assert_failure 1
	assert_line --index 0 --partial 'line 2: column 6: unexpected end of line (truncated value?); rejected'
	assert_line --index 1 '{"a":1}'
	assert_equal "$(cat rej.ndjson)" '{"a":'
}

@test "decide: every n_ file of JSONTestSuite is rejected with its line number" {
	dir="$SHARED/corpus/json/test_parsing"
	[ -d "$dir" ] || skip_or_fail "no corpus at $dir"
	# One input: a valid line, then each n_ file as one line.  Files with
	# a newline inside would be several lines and are left out; files of
	# only whitespace (after a BOM) are blank lines, skipped by contract.
	python3 - "$dir" <<-'PY'
	import os, sys
	d = sys.argv[1]
	inp, rej, nums, blank = [], [], [], []
	for name in sorted(os.listdir(d)):
	    if not name.startswith("n_"):
	        continue
	    data = open(os.path.join(d, name), "rb").read()
	    if b"\n" in data:
	        continue
	    inp.append(b'{"k":%d}' % len(inp))
	    inp.append(data)
	    if data.lstrip(b"\xef\xbb\xbf").strip(b" \t\r") == b"":
	        blank.append(name)
	    else:
	        rej.append(data)
	        nums.append("%d %s" % (len(inp), name))
	open("in.ndjson", "wb").write(b"\n".join(inp) + b"\n")
	open("want.rej", "wb").write(b"".join(r + b"\n" for r in rej))
	open("want.lines", "w").write("\n".join(nums) + "\n")
	open("blank.names", "w").write("\n".join(blank) + "\n")
	PY
	# No expression: only the line checks run.
	run decide --reject rej.ndjson <in.ndjson
	refute_crash
	assert_failure 1
	[ "$(wc -l <want.lines)" -gt 150 ]
	# Every valid line went through, in order.
	valid=$(grep -c '^{"k":[0-9]*}$' <<<"$output")
	[ "$valid" -eq $(( $(wc -l <want.lines) + $(wc -l <blank.names) - 1 )) ] ||
		[ "$valid" -eq $(( $(wc -l <want.lines) + $(wc -l <blank.names) )) ]
	# Every n_ line was reported with its own line number ...
	while read -r num name; do
		grep -q "^decide: error: line $num: " <<<"$output" || fail "$name: line $num not reported"
	done <want.lines
	[ "$(grep -c '; rejected$' <<<"$output")" -eq "$(wc -l <want.lines)" ]
	# ... and kept, byte for byte, in the reject file.
	cmp rej.ndjson want.rej
}

@test "decide: a line over --max-line is rejected and copied whole" {
	long=$(printf '{"pad":"%0200d"}' 0)
	printf '%s\n' '{"a":1}' "$long" '{"a":2}' >big.ndjson
	run decide --max-line 100 -w true --reject rej.ndjson <big.ndjson
	assert_failure 1
	assert_output --partial 'line 2: line longer than --max-line; rejected'
	assert_line '{"a":1}'
	assert_line '{"a":2}'
	assert_equal "$(cat rej.ndjson)" "$long"
}

@test "decide: a 10 MB line stays within bounded memory" {
	python3 -c 'import sys; sys.stdout.write("{\"a\":\"" + "x" * 10_000_000 + "\"}\n{\"b\":1}\n")' >huge.ndjson
	run decide --max-line 1M -w '.b' <huge.ndjson
	assert_failure 1
	assert_output --partial 'line 1: line longer than --max-line'
	assert_line '{"b":1}'
}

@test "decide: byte-at-a-time input gives the same result" {
	expected=$(decide -w '.alert.score > 50' <alerts.ndjson)
	run bash -c 'while IFS= read -r -n1 -d "" c; do printf "%s" "$c"; sleep 0; done <alerts.ndjson | decide -w ".alert.score > 50"'
	assert_success
	assert_equal "$output" "$expected"
}

@test "decide: writing to /dev/full exits 3 with a message" {
	run bash -c 'decide -w true <alerts.ndjson >/dev/full'
	assert_failure 3
	assert_output --partial 'decide: error: standard output: No space left on device'
}

@test "decide: | head -1 ends quietly" {
	python3 -c 'import sys
for i in range(200000): sys.stdout.write("{\"i\":%d}\n" % i)' >many.ndjson
	run bash -c 'set -o pipefail; decide -w true <many.ndjson | head -1; echo "st=${PIPESTATUS[0]}"'
	assert_success
	assert_line --index 0 '{"i":0}'
	assert_line --index 1 'st=0'
	refute_output --partial 'error'
}

@test "decide: standard input that is a directory is a usage error" {
	run decide -w true <.
	assert_failure 2
	assert_output --partial 'standard input is a directory'
}

@test "decide: usage errors exit 2" {
	run decide -s 'nopath'
	assert_failure 2
	assert_output --partial "expected PATH=EXPR"
	run decide --invert
	assert_failure 2
	run decide --jobs 0
	assert_failure 2
	run decide -w true extra-arg
	assert_failure 2
	assert_output --partial "unexpected argument 'extra-arg'"
	run decide --route 'bad name=x'
	assert_failure 2
	run decide --argjson x '{bad'
	assert_failure 2
}

@test "decide: threads and projection change nothing in the output" {
	python3 - >gen.ndjson <<-'EOF'
	import json, random
	r = random.Random(7)
	for i in range(15000):
	    e = {"alert": {"id": "a%d" % i, "score": r.randint(0, 100),
	                   "severity": r.choice(["low", "high", "critical"])},
	         "related": {"ip": ["10.0.0.%d" % r.randint(0, 9)]},
	         "kibana.alert.rule.name": r.choice(["x", "y"]), "pad": "p" * r.randint(0, 300)}
	    if i % 1000 == 7: print("{broken")
	    print(json.dumps(e, separators=(",", ":")))
	EOF
	prog=(-w '.alert.score > 30 or any(.related.ip[]; . == "10.0.0.1")' -s 'tag=.["kibana.alert.rule.name"] + .alert.severity' -r 'hot=.alert.score > 90' --default cold)
	decide -j 1 "${prog[@]}" <gen.ndjson >one.out 2>one.err || true
	SOARUTILS_PROJECTION=0 decide -j 2 "${prog[@]}" <gen.ndjson >full.out 2>full.err || true
	run decide -j 2 "${prog[@]}" <gen.ndjson
	assert_failure 1
	[ "$(wc -l <one.out)" -gt 7000 ]
	cmp one.out full.out
	decide -j 2 "${prog[@]}" <gen.ndjson 2>two.err | cmp - one.out
	cmp one.err two.err
	[ "$(grep -c rejected one.err)" -eq 15 ]
}

@test "decide: every i_ and y_ file of JSONTestSuite is handled without a crash" {
	dir="$SHARED/corpus/json/test_parsing"
	[ -d "$dir" ] || skip_or_fail "no corpus at $dir"
	python3 - "$dir" <<-'PY'
	import os, sys
	d = sys.argv[1]
	lines, objects = [], 0
	for name in sorted(os.listdir(d)):
	    if name[:2] in ("i_", "y_"):
	        data = open(os.path.join(d, name), "rb").read()
	        lines.append(data.replace(b"\n", b" "))
	        objects += name[0] == "y" and data.lstrip().startswith(b"{")
	open("in.ndjson", "wb").write(b"\n".join(lines) + b"\n")
	open("objects", "w").write("%d\n" % objects)
	PY
	# With an expression, so the projected and the full parse both run.
	run decide -w '.a // true' -s 'seen=true' <in.ndjson
	refute_crash
	[ "$status" -le 1 ]
	run env SOARUTILS_PROJECTION=0 decide -w '.a // true' -s 'seen=true' <in.ndjson
	refute_crash
	[ "$status" -le 1 ]
	# Every y_ object is accepted and passed on.
	[ "$(cat objects)" -ge 10 ]
	[ "$(grep -c '"seen":true' <<<"$output")" -ge "$(cat objects)" ]
}

@test "decide: a slow stream is written as it comes, without --line-buffered" {
	# The second line comes 3 s later: the first must not wait for it.
	run bash -c '{ echo "{\"a\":1}"; sleep 3; echo "{\"a\":2}"; } |
		decide -w true | { IFS= read -r -t 2 line; echo "first:$line"; cat; }'
	assert_success
	assert_line --index 0 'first:{"a":1}'
	assert_line --index 1 '{"a":2}'
}
