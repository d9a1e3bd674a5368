#!/usr/bin/env bats
# vt-enrich: indicators, verdicts, dedup, the cache, quota, retries, errors,
# keys and every failure path, against the simulated VirusTotal API
# (tests/sim/simlib/vendors/virustotal.py; its docstring lists the
# settings used here).  Each test checks stdout, stderr, the exit status and
# the requests the simulator received.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

# One simulator for the file (starting one takes a good second on a loaded
# machine); sim_reset gives every test a fresh one.
setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	sim_reset
	export VT_URL=$SIM_URL VT_API_KEY=test-vt-key
	CACHE=$BATS_TEST_TMPDIR/cache.db
	cd "$BATS_TEST_TMPDIR"
}

# enrich [ARGS...]: vt-enrich without a rate limit, on the test's own cache.
enrich() {
	vt-enrich --rate 0 --cache "$CACHE" "$@"
}

# paths: the paths of the recorded VirusTotal requests, sorted, one a line.
paths() {
	sim_requests path=/api/v3/ | jq -r '.[].path' | sort
}

# paths_in_order: the same, in the order they arrived.
paths_in_order() {
	sim_requests path=/api/v3/ | jq -r '.[].path'
}

# want_paths PATH...: the arguments sorted, as paths prints them.
want_paths() {
	printf '%s\n' "$@" | sort
}

# url_id URL: VirusTotal's URL identifier, unpadded base64url.
url_id() {
	printf '%s' "$1" | basenc --base64url -w0 | tr -d '='
}

# summary: one line per output event: id, vt.malicious, vt.score,
# vt.verdict and [type, value, malicious, suspicious] per indicator.
summary() {
	jq -c '[.alert.id, .vt.malicious, .vt.score, .vt.verdict,
		[.vt.indicators[] | [.type, .value, .malicious, .suspicious]]]' \
		<<<"$output"
}

# now_ms: the time in milliseconds.
now_ms() {
	date +%s%3N
}

# ips N FIRST: N events a1..aN whose related.ip are 8.8.8.FIRST, ...
ips() {
	local i
	for ((i = 0; i < $1; i++)); do
		printf '{"alert":{"id":"a%d"},"related":{"ip":["8.8.8.%d"]}}\n' \
			$((i + 1)) $(($2 + i))
	done
}

@test "vt-enrich: looks up ips, hashes, domains and urls and scores them as documented" {
	local url='https://example.net/a?q=>>>&r=??'
	# The id of this URL uses the base64url alphabet and needs padding.
	[[ $(url_id "$url") == *-* ]]
	sim_set vt_verdicts '{"8.8.4.4": {"malicious": 1, "suspicious": 10},
		"9.9.9.9": {"malicious": 3},
		"d41d8cd98f00b204e9800998ecf8427e": {"suspicious": 2},
		"www.example.net": {"malicious": 2},
		"1.0.0.1": {"malicious": 2}}'
	cat >in.ndjson <<-EOF
	{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4","10.0.0.1","9.9.9.9"]}}
	{"alert":{"id":"a2"},"related":{"hash":["D41D8CD98F00B204E9800998ECF8427E","da39a3ee5e6b4b0d3255bfef95601890afd80709","e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}
	{"alert":{"id":"a3"},"url":{"domain":"Example.ORG"},"destination":{"domain":"evil.example"},"dns":{"question":{"name":"WWW.Example.Net."}}}
	{"alert":{"id":"a4"},"url":{"full":"$url"}}
	{"alert":{"id":"a5"},"related":{"ip":["1.0.0.1"]}}
	EOF
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "${#lines[@]}" 5
	# a1: the worst indicator gives the score (1*10 + 10*3 = 40, not
	# 40 + 30), the most malicious engines the verdict (3: malicious).
	# a2: suspicious engines only. a3: capped at 100. a4: clean. a5: one
	# or two malicious engines are only suspicious.
	run summary
	assert_line --index 0 '["a1",3,40,"malicious",[["ip","8.8.4.4",1,10],["ip","9.9.9.9",3,0]]]'
	assert_line --index 1 '["a2",0,6,"suspicious",[["hash","d41d8cd98f00b204e9800998ecf8427e",0,2],["hash","da39a3ee5e6b4b0d3255bfef95601890afd80709",0,0],["hash","e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",0,0]]]'
	assert_line --index 2 '["a3",11,100,"malicious",[["domain","example.org",0,0],["domain","evil.example",11,3],["domain","www.example.net",2,0]]]'
	assert_line --index 3 "[\"a4\",0,0,\"clean\",[[\"url\",\"$url\",0,0]]]"
	assert_line --index 4 '["a5",2,20,"suspicious",[["ip","1.0.0.1",2,0]]]'
	run --separate-stderr enrich <in.ndjson
	assert_success
	# Every indicator entry has the documented members.
	jq -e -s --arg id "$(url_id "$url")" '[.[].vt.indicators[]
		| (keys == (["found", "harmless", "last_analysis_date", "link",
			"malicious", "reputation", "suspicious", "type",
			"undetected", "value"]))
		and .found == true and (.last_analysis_date | type == "number")
		and (.link | startswith("https://www.virustotal.com/gui/"))
		and (if .type == "url" then .link | endswith("/url/" + $id)
			else true end)] | length == 10 and all' <<<"$output"
	jq -e '.vt.indicators[0]
		| .harmless == 49 and .undetected == 20 and .reputation == -13
		and .link == "https://www.virustotal.com/gui/ip-address/8.8.4.4"' \
		<<<"${lines[0]}"
	# One request per indicator, in VirusTotal's form; the second run
	# was served by the cache.
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/9.9.9.9 /api/v3/ip_addresses/1.0.0.1 \
		/api/v3/files/d41d8cd98f00b204e9800998ecf8427e \
		/api/v3/files/da39a3ee5e6b4b0d3255bfef95601890afd80709 \
		/api/v3/files/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 \
		/api/v3/domains/example.org /api/v3/domains/evil.example \
		/api/v3/domains/www.example.net "/api/v3/urls/$(url_id "$url")")"
	run sim_requests path=/api/v3/
	jq -e 'all(.[]; .method == "GET" and .headers["x-apikey"] == "test-vt-key")' \
		<<<"$output"
}

@test "vt-enrich: --malicious-threshold and --suspicious-threshold move the verdicts" {
	sim_set vt_verdicts '{"8.8.4.4": {"malicious": 2}, "9.9.9.9": {"suspicious": 2},
		"1.0.0.1": {"suspicious": 3}}'
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}' \
		'{"alert":{"id":"a2"},"related":{"ip":["9.9.9.9"]}}' \
		'{"alert":{"id":"a3"},"related":{"ip":["1.0.0.1"]}}' >in.ndjson
	run --separate-stderr enrich --malicious-threshold 2 --suspicious-threshold 3 <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	run summary
	assert_output - <<-'EOF'
	["a1",2,20,"malicious",[["ip","8.8.4.4",2,0]]]
	["a2",0,6,"clean",[["ip","9.9.9.9",0,2]]]
	["a3",0,9,"suspicious",[["ip","1.0.0.1",0,3]]]
	EOF
	assert_equal "$(sim_count path=/api/v3/)" 3
}

@test "vt-enrich: never sends private, loopback, link-local, CGNAT, documentation, multicast or reserved addresses" {
	local internal='"10.0.0.1","10.255.255.255","172.16.5.4","172.31.255.254",
		"192.168.1.1","127.0.0.1","169.254.169.254","100.64.0.1",
		"100.127.255.254","192.0.2.10","198.51.100.7","203.0.113.66",
		"198.18.0.1","192.0.0.9","224.0.0.251","239.255.255.250","0.0.0.0",
		"240.0.0.1","255.255.255.255","::1","::","fe80::1","fd00::1",
		"fc00::1","2001:db8::1","3fff::1","ff02::1","::ffff:10.0.0.1",
		"::ffff:127.0.0.1","not-an-ip","1.2.3","8.8.8.8:53"'
	# Their neighbours just outside those ranges are public.
	local public='"100.63.255.255","100.128.0.1","172.15.255.255",
		"172.32.0.1","192.169.0.1","223.255.255.254","2606:4700::6810:84e5"'
	printf '{"alert":{"id":"int"},"related":{"ip":[%s]}}\n{"alert":{"id":"pub"},"related":{"ip":[%s]}}\n' \
		"$(tr -d '\n\t' <<<"$internal")" "$(tr -d '\n\t' <<<"$public")" >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	# The internal-only event has nothing to look up: it passes as it was.
	assert_equal "${lines[0]}" "$(head -n 1 in.ndjson)"
	jq -e '.vt.verdict == "clean" and ([.vt.indicators[].value] == ["100.63.255.255",
		"100.128.0.1", "172.15.255.255", "172.32.0.1", "192.169.0.1",
		"223.255.255.254", "2606:4700::6810:84e5"])' <<<"${lines[1]}"
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/100.63.255.255 \
		/api/v3/ip_addresses/100.128.0.1 /api/v3/ip_addresses/172.15.255.255 \
		/api/v3/ip_addresses/172.32.0.1 /api/v3/ip_addresses/192.169.0.1 \
		/api/v3/ip_addresses/223.255.255.254 \
		/api/v3/ip_addresses/2606:4700::6810:84e5)"
}

@test "vt-enrich: asks once per indicator in a run (50 events, 3 ips, 3 requests)" {
	local i
	for ((i = 0; i < 50; i++)); do
		printf '{"alert":{"id":"a%d"},"related":{"ip":["8.8.8.%d","8.8.8.%d"]}}\n' \
			"$i" $((i % 3 + 1)) $(((i + 1) % 3 + 1))
	done >in.ndjson
	run --separate-stderr enrich -v <in.ndjson
	assert_success
	assert_equal "$stderr" 'vt-enrich: info: 50 events, 0 failed, 3 requests, 0 cache hits'
	assert_equal "${#lines[@]}" 50
	# In input order, each with its own two indicators.
	jq -e -s '[to_entries[] | .key as $i | .value
		| .alert.id == "a\($i)" and .vt.verdict == "clean"
		and [.vt.indicators[].value] == ["8.8.8.\($i % 3 + 1)",
			"8.8.8.\(($i + 1) % 3 + 1)"]] | length == 50 and all' <<<"$output"
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.8.1 \
		/api/v3/ip_addresses/8.8.8.2 /api/v3/ip_addresses/8.8.8.3)"
}

@test "vt-enrich: answers a second run from the cache, and asks again without it or after --ttl" {
	ips 3 1 >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	printf '%s\n' "$output" >first.out
	assert_equal "$(sim_count path=/api/v3/)" 3
	# Second run: nothing sent, the same bytes out.
	run --separate-stderr enrich -v <in.ndjson
	assert_success
	assert_equal "$stderr" 'vt-enrich: info: 3 events, 0 failed, 0 requests, 3 cache hits'
	assert_equal "$output" "$(cat first.out)"
	assert_equal "$(sim_count path=/api/v3/)" 3
	# Without the cache: asked again.
	run --separate-stderr vt-enrich --rate 0 --cache none <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$output" "$(cat first.out)"
	assert_equal "$(sim_count path=/api/v3/)" 6
	# Answers kept for one second are asked again two seconds later.
	run --separate-stderr vt-enrich --rate 0 --cache ttl.db --ttl 1 <in.ndjson
	assert_success
	assert_equal "$(sim_count path=/api/v3/)" 9
	sleep 2
	run --separate-stderr vt-enrich --rate 0 --cache ttl.db <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$output" "$(cat first.out)"
	assert_equal "$(sim_count path=/api/v3/)" 12
}

@test "vt-enrich: keeps its default cache in XDG_CACHE_HOME, mode 0600" {
	ips 2 1 >in.ndjson
	run --separate-stderr vt-enrich --rate 0 <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	[ -f "$XDG_CACHE_HOME/soarutils/cache.db" ]
	assert_equal "$(stat -c %a "$XDG_CACHE_HOME/soarutils/cache.db")" 600
	assert_equal "$(stat -c %a "$XDG_CACHE_HOME/soarutils")" 700
	run --separate-stderr vt-enrich --rate 0 <in.ndjson
	assert_success
	assert_equal "$(sim_count path=/api/v3/)" 2
}

@test "vt-enrich: an indicator VirusTotal does not know is found false, verdict unknown, and cached" {
	sim_set vt_unknown '["8.8.4.4"]'
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}' \
		'{"alert":{"id":"a2"},"related":{"ip":["8.8.4.4","9.9.9.9"]}}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt == {"indicators": [{"type": "ip", "value": "8.8.4.4",
		"found": false, "link": "https://www.virustotal.com/gui/ip-address/8.8.4.4"}],
		"malicious": 0, "score": 0, "verdict": "unknown"}' <<<"${lines[0]}"
	# One known indicator is enough for a verdict.
	jq -e '.vt.verdict == "clean" and .vt.indicators[0].found == false
		and .vt.indicators[1].found == true' <<<"${lines[1]}"
	printf '%s\n' "$output" >first.out
	assert_equal "$(sim_count path=/api/v3/)" 2
	# The "not found" is cached (with --negative-ttl).
	run --separate-stderr enrich --negative-ttl 10m <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$output" "$(cat first.out)"
	assert_equal "$(sim_count path=/api/v3/)" 2
}

@test "vt-enrich: a 404 that is not VirusTotal's NotFoundError is an error, not a cached 'not found'" {
	# What a proxy or a wrong VT_URL answers.
	sim_fault '{"path": "^/api/v3/ip_addresses/", "status": 404, "count": 1,
		"body": "<html>Not Found</html>", "headers": {"Content-Type": "text/html"}}'
	ips 1 1 >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_failure 1
	jq -e '.vt.error.status == 404 and .vt.verdict == "unknown"
		and (.vt.indicators[0] | has("found") | not)' <<<"$output"
	assert_equal "$(sim_count path=/api/v3/)" 1
	# Not cached: the next run asks again.
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$(sim_count path=/api/v3/)" 2
}

@test "vt-enrich: two pipelines at once share one cache file" {
	local i
	for ((i = 0; i < 60; i++)); do
		printf '{"alert":{"id":"p%d"},"related":{"ip":["8.8.%d.%d"]}}\n' \
			"$i" $((i / 40)) $((i % 40 + 1))
	done >all.ndjson
	head -n 40 all.ndjson >one.ndjson
	tail -n 40 all.ndjson >two.ndjson
	enrich -j 8 <one.ndjson >one.out 2>one.err &
	local p1=$!
	enrich -j 8 <two.ndjson >two.out 2>two.err &
	local p2=$!
	wait "$p1" || fail "first pipeline: status $?: $(cat one.err)"
	wait "$p2" || fail "second pipeline: status $?: $(cat two.err)"
	assert_equal "$(cat one.err two.err)" ''
	assert_equal "$(jq -r .alert.id one.out)" "$(jq -r .alert.id one.ndjson)"
	assert_equal "$(jq -r .alert.id two.out)" "$(jq -r .alert.id two.ndjson)"
	assert_equal "$(jq -r .vt.verdict one.out two.out | sort -u)" clean
	# Each asked for its own indicators at most once.
	run sim_count path=/api/v3/
	[ "$output" -ge 60 ] && [ "$output" -le 80 ]
	# Both stored theirs: all 60 come from the cache now.
	run --separate-stderr enrich -v <all.ndjson
	assert_success
	assert_equal "$stderr" 'vt-enrich: info: 60 events, 0 failed, 0 requests, 60 cache hits'
	assert_equal "${#lines[@]}" 60
	run sim_count path=/api/v3/
	[ "$output" -ge 60 ] && [ "$output" -le 80 ]
}

@test "vt-enrich: a cache file of garbage or a directory is reported and bypassed" {
	ips 2 1 >in.ndjson
	head -c 8192 /dev/urandom >garbage.db
	cp garbage.db garbage.orig
	run --separate-stderr vt-enrich --rate 0 --cache garbage.db <in.ndjson
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -r .vt.verdict <<<"$output" | sort -u)" clean
	assert_equal "$(sim_count path=/api/v3/)" 2
	cmp garbage.db garbage.orig
	assert_equal "$stderr" 'vt-enrich: warning: garbage.db: open: file is not a database; going on without the cache'
	mkdir dir.db
	run --separate-stderr vt-enrich --rate 0 --cache dir.db <in.ndjson
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -r .vt.verdict <<<"$output" | sort -u)" clean
	assert_equal "$(sim_count path=/api/v3/)" 4
	assert_equal "$stderr" 'vt-enrich: warning: dir.db: not a regular file; going on without the cache'
}

@test "vt-enrich: a cache file corrupted inside is reported and bypassed" {
	local i
	for ((i = 1; i <= 150; i++)); do
		printf '{"alert":{"id":"a%d"},"related":{"ip":["8.8.%d.%d"]}}\n' \
			"$i" $((i / 100)) $((i % 100 + 1))
	done >in.ndjson
	enrich -j 8 <in.ndjson >first.out
	assert_equal "$(sim_count path=/api/v3/)" 150
	# Overwrite the pages after the first two: the header still reads.
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(8192); f.write(b"\xff" * 16384)' "$CACHE"
	run --separate-stderr enrich -j 8 <in.ndjson
	refute_crash
	assert_success
	assert_equal "$output" "$(cat first.out)"
	assert_equal "$(sim_count path=/api/v3/)" 300
	assert_output --partial '"verdict":"clean"'
	[[ $stderr == "vt-enrich: warning: cache.db: "*"malformed; going on without the cache" ]] ||
		[[ $stderr == "vt-enrich: warning: $CACHE: "*"; going on without the cache" ]] ||
		fail "stderr: $stderr"
	assert_equal "$(grep -c . <<<"$stderr")" 1
}

@test "vt-enrich: events without indicators pass byte for byte, and the vt key is spliced at the end" {
	printf '%s\n' '{ "a" :  1 , "n": 18446744073709551615 }' \
		'{"alert":{"id":"x"}, "n": 18446744073709551615, "related" : {"ip": ["8.8.4.4"]}, "f": 1.50e+2 }' \
		'{"related":{"ip":["10.1.1.1","127.0.0.1"],"hash":["not-a-hash"]},"n":18446744073709551615}' \
		'{"url":{"domain":"localhost"},"dns":{"question":{"name":"192.0.2.1"}},"x":[1,2.0,-0]}' \
		'{}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "${#lines[@]}" 5
	assert_equal "${lines[0]}" '{ "a" :  1 , "n": 18446744073709551615 }'
	[[ ${lines[1]} == '{"alert":{"id":"x"}, "n": 18446744073709551615, "related" : {"ip": ["8.8.4.4"]}, "f": 1.50e+2 ,"vt":{"indicators":[{'* ]] ||
		fail "not spliced: ${lines[1]}"
	jq -e '.vt.verdict == "clean"' <<<"${lines[1]}"
	assert_equal "${lines[2]}" "$(sed -n 3p in.ndjson)"
	assert_equal "${lines[3]}" "$(sed -n 4p in.ndjson)"
	assert_equal "${lines[4]}" '{}'
	assert_equal "$(paths)" /api/v3/ip_addresses/8.8.4.4
}

@test "vt-enrich: replaces the vt key of an earlier run in place" {
	printf '%s\n' '{"n":18446744073709551615,"related":{"ip":["8.8.4.4"]},"vt":{"old":1},"z":1}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	[[ $output == '{"n":18446744073709551615,"related":{"ip":["8.8.4.4"]},"vt":{"indicators":'*'},"z":1}' ]] ||
		fail "$output"
	refute_output --partial '"old"'
	assert_equal "$(sim_count path=/api/v3/)" 1
}

@test "vt-enrich: retries a 429 storm, then succeeds" {
	sim_fault '{"path": "^/api/v3/ip_addresses/8\\.8\\.4\\.4$", "status": 429, "count": 2,
		"body": "{\"error\": {\"code\": \"QuotaExceededError\", \"message\": \"Quota exceeded\"}}"}'
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4","9.9.9.9"]}}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean" and (.vt | has("error") | not)
		and ([.vt.indicators[].found] == [true, true])' <<<"$output"
	run sim_requests path=/api/v3/ip_addresses/8.8.4.4
	jq -e 'length == 3 and .[0].fault == 0 and .[1].fault == 0
		and (.[2] | has("fault") | not)' <<<"$output"
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/8.8.4.4 /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/9.9.9.9)"
}

@test "vt-enrich: waits as long as a 429's Retry-After says" {
	# The second request finds the one-second window full; its retry must
	# wait the 1 s Retry-After asks, not the shorter jittered backoff.
	sim_set vt_quota '{"per_minute": 1, "window_seconds": 1}'
	sim_set vt_retry_after 1
	ips 2 1 >in.ndjson
	run --separate-stderr enrich -j 1 <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$(jq -r .vt.verdict <<<"$output" | sort -u)" clean
	run sim_requests path=/api/v3/
	jq -e 'length == 3 and .[1].path == .[2].path
		and (.[2].time - .[1].time) >= 0.95' <<<"$output" ||
		fail "requests: $(jq -c 'map([.path, .time])' <<<"$output")"
}

@test "vt-enrich: marks vt.error quota after 429 retries run out, and stops calling" {
	sim_set vt_quota '{"per_minute": 2}'
	ips 3 1 >first.ndjson
	printf '%s\n' '{"alert":{"id":"b4"},"related":{"ip":["8.8.8.4"]}}' \
		'{"alert":{"id":"b5"},"related":{"ip":["8.8.8.5","8.8.8.6"]}}' \
		'{"alert":{"id":"b1"},"related":{"ip":["8.8.8.1"]}}' \
		'{"alert":{"id":"b0"}}' >second.ndjson
	# The second part arrives after the quota was reported exhausted.
	run --separate-stderr bash -c '{ cat first.ndjson; sleep 2; cat second.ndjson; } |
		vt-enrich --rate 0 --cache none -j 1 --retries 1 --timeout 2'
	assert_failure 1
	assert_equal "${#lines[@]}" 7
	jq -e '.alert.id == "a1" and .vt.verdict == "clean"' <<<"${lines[0]}"
	jq -e '.alert.id == "a2" and .vt.verdict == "clean"' <<<"${lines[1]}"
	jq -e '.alert.id == "a3" and .vt.verdict == "unknown"
		and .vt.error == {"code": "quota", "status": 429, "attempts": 2,
			"message": "VirusTotal quota exhausted: QuotaExceededError"}
		and .vt.indicators[0].error == .vt.error' <<<"${lines[2]}"
	local i
	for i in 3 4; do
		jq -e '.vt.error == {"code": "quota",
			"message": "not sent: the VirusTotal quota is exhausted"}
			and all(.vt.indicators[]; .error.code == "quota")' <<<"${lines[$i]}"
	done
	# Answers already in hand still serve; no indicator, no key.
	jq -e '.alert.id == "b1" and .vt.verdict == "clean"' <<<"${lines[5]}"
	assert_equal "${lines[6]}" '{"alert":{"id":"b0"}}'
	assert_equal "$stderr" "vt-enrich: error: line 3: alert a3: vt: VirusTotal quota exhausted: QuotaExceededError
vt-enrich: error: line 4: alert b4: vt: not sent: the VirusTotal quota is exhausted
vt-enrich: error: line 5: alert b5: vt: not sent: the VirusTotal quota is exhausted"
	# 8.8.8.3 twice (one retry), and nothing for 8.8.8.4-6.
	assert_equal "$(paths_in_order)" "$(printf '/api/v3/ip_addresses/8.8.8.%s\n' 1 2 3 3)"
}

@test "vt-enrich: sends none of the lookups still queued once the quota is reported exhausted" {
	sim_set vt_quota '{"per_minute": 2}'
	ips 6 1 >in.ndjson
	run --separate-stderr enrich -j 1 --retries 0 <in.ndjson
	assert_failure 1
	assert_equal "${#lines[@]}" 6
	assert_equal "$(jq -r '.vt.error.code // "ok"' <<<"$output" | tr '\n' ' ')" \
		'ok ok quota quota quota quota '
	assert_line --index 0 --partial '"verdict":"clean"'
	# One request at a time: the third answer stops the run's calls, so
	# the three lookups behind it must never leave.
	assert_equal "$(paths_in_order)" "$(printf '/api/v3/ip_addresses/8.8.8.%s\n' 1 2 3)"
	assert_equal "$(jq -r '.vt.error.message' <<<"$output" | sed -n '4,$p' | sort -u)" \
		'not sent: the VirusTotal quota is exhausted'
}

@test "vt-enrich: retries a 503, then succeeds" {
	sim_fault '{"path": "^/api/v3/domains/", "status": 503, "count": 1}'
	printf '%s\n' '{"alert":{"id":"a1"},"url":{"domain":"example.org"}}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean" and (.vt | has("error") | not)' <<<"$output"
	assert_equal "$(paths)" "$(want_paths /api/v3/domains/example.org /api/v3/domains/example.org)"
}

@test "vt-enrich: marks vt.error http after a permanent 500, keeping the other answers" {
	sim_fault '{"path": "^/api/v3/ip_addresses/8\\.8\\.4\\.4$", "status": 500}'
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4","9.9.9.9"]}}' \
		'{"alert":{"id":"a2"},"related":{"ip":["9.9.9.9"]}}' >in.ndjson
	run --separate-stderr enrich --retries 2 <in.ndjson
	assert_failure 1
	jq -e --arg u "$SIM_URL" '.vt.error == {"code": "http", "status": 500, "attempts": 3,
			"message": "GET \($u)/api/v3/ip_addresses/8.8.4.4: HTTP 500 after 3 attempts"}
		and .vt.indicators[0] == {"type": "ip", "value": "8.8.4.4", "error": .vt.error}
		and .vt.indicators[1].found == true
		and .vt.verdict == "clean"' <<<"${lines[0]}"
	jq -e '.vt.verdict == "clean" and (.vt | has("error") | not)' <<<"${lines[1]}"
	assert_equal "$stderr" "vt-enrich: error: line 1: alert a1: vt: GET $SIM_URL/api/v3/ip_addresses/8.8.4.4: HTTP 500 after 3 attempts"
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/8.8.4.4 /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/9.9.9.9)"
	# A failure is not cached.
	run --separate-stderr enrich --retries 0 <in.ndjson
	assert_failure 1
	assert_equal "$(sim_count path=/api/v3/ip_addresses/8.8.4.4)" 4
	assert_equal "$(sim_count path=/api/v3/ip_addresses/9.9.9.9)" 1
}

@test "vt-enrich: marks vt.error timeout when the server is slower than --timeout" {
	sim_fault '{"path": "^/api/v3/ip_addresses/", "latency_ms": 3000}'
	ips 1 1 >in.ndjson
	local t0
	t0=$(now_ms)
	run --separate-stderr enrich --timeout 1 --retries 0 <in.ndjson
	assert_failure 1
	[ $(($(now_ms) - t0)) -lt 2500 ] || fail "took $(($(now_ms) - t0)) ms"
	jq -e '.vt.error.code == "timeout" and .vt.error.attempts == 1
		and (.vt.error.message | contains("/api/v3/ip_addresses/8.8.8.1"))
		and .vt.verdict == "unknown"' <<<"$output"
	[[ $stderr == "vt-enrich: error: line 1: alert a1: vt: GET $SIM_URL/api/v3/ip_addresses/8.8.8.1: "*"timed out"* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(sim_count path=/api/v3/)" 1
}

@test "vt-enrich: marks vt.error malformed for a broken body and does not cache it" {
	sim_fault '{"path": "^/api/v3/ip_addresses/", "malformed": true, "count": 1}'
	ips 1 1 >in.ndjson
	run --separate-stderr enrich <in.ndjson
	assert_failure 1
	jq -e '.vt.error == {"code": "malformed", "status": 200, "attempts": 1,
		"message": "VirusTotal answered HTTP 200 with a body that is not a VirusTotal object"}
		and .vt.verdict == "unknown"' <<<"$output"
	assert_equal "$stderr" 'vt-enrich: error: line 1: alert a1: vt: VirusTotal answered HTTP 200 with a body that is not a VirusTotal object'
	assert_equal "$(sim_count path=/api/v3/)" 1
	run --separate-stderr enrich <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean"' <<<"$output"
	assert_equal "$(sim_count path=/api/v3/)" 2
}

@test "vt-enrich: a refused key writes every event read with vt.error auth and exits 3" {
	ips 3 1 >in.ndjson
	printf '%s\n' '{"alert":{"id":"a4"}}' >>in.ndjson
	VT_API_KEY=wrong-key run --separate-stderr enrich <in.ndjson
	assert_failure 3
	assert_equal "${#lines[@]}" 4
	local i
	for i in 0 1 2; do
		jq -e '.vt.error == {"code": "auth", "status": 401, "attempts": 1,
			"message": "VirusTotal refused the API key: WrongCredentialsError"}' \
			<<<"${lines[$i]}"
	done
	assert_equal "${lines[3]}" '{"alert":{"id":"a4"}}'
	assert_line --index 0 --partial '"id":"a1"'
	assert_equal "$stderr" 'vt-enrich: error: VirusTotal refused the API key (HTTP 401 WrongCredentialsError): check VT_API_KEY
vt-enrich: error: line 1: alert a1: vt: VirusTotal refused the API key: WrongCredentialsError
vt-enrich: error: line 2: alert a2: vt: VirusTotal refused the API key: WrongCredentialsError
vt-enrich: error: line 3: alert a3: vt: VirusTotal refused the API key: WrongCredentialsError'
	[[ $stderr$output != *wrong-key* ]] || fail "the key was printed"
	run sim_requests path=/api/v3/
	jq -e 'length >= 1 and all(.[]; .headers["x-apikey"] == "wrong-key")' <<<"$output"
}

@test "vt-enrich: sends nothing more once the key is refused" {
	ips 3 1 >in.ndjson
	VT_API_KEY=wrong-key run --separate-stderr enrich -j 1 <in.ndjson
	assert_failure 3
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -r .vt.error.code <<<"$output" | sort -u)" auth
	assert_output --partial 'refused the API key'
	# One request at a time: the first 401 must be the last request.
	assert_equal "$(paths_in_order)" /api/v3/ip_addresses/8.8.8.1
}

@test "vt-enrich: no API key is a usage error that names VT_API_KEY" {
	ips 1 1 >in.ndjson
	run --separate-stderr env -u VT_API_KEY vt-enrich --rate 0 --cache none <in.ndjson
	assert_failure 2
	assert_equal "$output" ''
	assert_equal "$stderr" 'vt-enrich: error: no API key: set VT_API_KEY, VT_API_KEY_FILE or VT_API_KEY in the config file'
	VT_API_KEY= run --separate-stderr vt-enrich --rate 0 --cache none <in.ndjson
	assert_failure 2
	assert_equal "$output" ''
	assert_equal "$(sim_count path=/api/v3/)" 0
}

@test "vt-enrich: reads the key from VT_API_KEY_FILE" {
	sim_set vt_api_key '"k-from-file"'
	printf 'k-from-file\n' >key
	ips 1 1 >in.ndjson
	run --separate-stderr env -u VT_API_KEY VT_API_KEY_FILE="$PWD/key" \
		vt-enrich --rate 0 --cache none <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean"' <<<"$output"
	run sim_requests path=/api/v3/
	jq -e 'length == 1 and .[0].headers["x-apikey"] == "k-from-file"' <<<"$output"
	# A file that is not there is a configuration error.
	run --separate-stderr env -u VT_API_KEY VT_API_KEY_FILE="$PWD/nokey" \
		vt-enrich --rate 0 --cache none <in.ndjson
	assert_failure 2
	assert_equal "$output" ''
	[[ $stderr == *VT_API_KEY_FILE* ]] || fail "stderr: $stderr"
	assert_equal "$(sim_count path=/api/v3/)" 1
}

@test "vt-enrich: refuses a config file open to others and accepts a 0600 one" {
	local conf=$XDG_CONFIG_HOME/soarutils/config
	mkdir -p "${conf%/*}"
	printf '# soarutils\nVT_API_KEY = "test-vt-key"\n' >"$conf"
	chmod 644 "$conf"
	ips 1 1 >in.ndjson
	run --separate-stderr env -u VT_API_KEY vt-enrich --rate 0 --cache none <in.ndjson
	assert_failure 2
	assert_equal "$output" ''
	assert_equal "$stderr" "vt-enrich: error: $conf: group or others can access it (mode 644); refusing it: run chmod 600 $conf"
	assert_equal "$(sim_count path=/api/v3/)" 0
	chmod 600 "$conf"
	run --separate-stderr env -u VT_API_KEY vt-enrich --rate 0 --cache none <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean"' <<<"$output"
	assert_equal "$(sim_count path=/api/v3/)" 1
}

@test "vt-enrich: looks up a long URL by its id" {
	# Phishing URLs with long query strings are common; 2,000 bytes is
	# well within what the tool accepts (8 KiB) and what HTTP carries.
	local url
	url="https://login.example.net/oauth?state=$(printf 'a%.0s' {1..1960})"
	printf '{"alert":{"id":"a1"},"url":{"full":"%s"}}\n' "$url" >in.ndjson
	run --separate-stderr enrich <in.ndjson
	jq -c '.vt.error' <<<"$output"
	jq -e --arg url "$url" '.vt.verdict == "clean"
		and .vt.indicators[0].value == $url' <<<"$output"
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$(paths)" "/api/v3/urls/$(url_id "$url")"
}

@test "vt-enrich: --types ip sends only ip lookups" {
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"],"hash":["44d88612fea8a8f36de82e1278abb02f"]},"url":{"domain":"example.org","full":"http://example.org/"}}' \
		'{"alert":{"id":"a2"},"url":{"domain":"example.org"}}' >in.ndjson
	run --separate-stderr enrich --types ip <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '[.vt.indicators[] | [.type, .value]] == [["ip", "8.8.4.4"]]' <<<"${lines[0]}"
	assert_equal "${lines[1]}" '{"alert":{"id":"a2"},"url":{"domain":"example.org"}}'
	assert_equal "$(paths)" /api/v3/ip_addresses/8.8.4.4
	run --separate-stderr enrich -t hash,domain <in.ndjson
	assert_success
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/files/44d88612fea8a8f36de82e1278abb02f /api/v3/domains/example.org)"
}

@test "vt-enrich: --field picks the indicators and guesses their types" {
	local sha=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f
	printf '%s\n' "{\"alert\":{\"id\":\"a1\"},\"source\":{\"ip\":\"8.8.4.4\"},\"file\":{\"hash\":{\"sha256\":\"$sha\"}},\"related\":{\"ip\":[\"9.9.9.9\"]}}" \
		'{"alert":{"id":"a2"},"source":{"ip":"10.0.0.1"}}' >in.ndjson
	run --separate-stderr enrich --field '.source.ip, .file.hash.sha256' <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e --arg sha "$sha" '[.vt.indicators[] | [.type, .value]]
		== [["ip", "8.8.4.4"], ["hash", $sha]]
		and .vt.verdict == "malicious"' <<<"${lines[0]}"
	assert_equal "${lines[1]}" "$(sed -n 2p in.ndjson)"
	# related.ip is not read when --field is given.
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 "/api/v3/files/$sha")"
	# Arrays of strings, other values ignored; domains made of hex letters
	# are still domains.
	printf '%s\n' '{"alert":{"id":"a3"},"iocs":["Cafe.Be","http://evil.example/payload.exe",7,null,"d41d8cd98f00b204e9800998ecf8427e"]}' >in2.ndjson
	run --separate-stderr enrich --field '.iocs' <in2.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '[.vt.indicators[] | [.type, .value]] == [["domain", "cafe.be"],
		["url", "http://evil.example/payload.exe"],
		["hash", "d41d8cd98f00b204e9800998ecf8427e"]]' <<<"$output"
}

@test "vt-enrich: --when looks up only matching events and passes the others byte for byte" {
	printf '%s\n' '{"alert":{"id":"a1","severity":"high"},"related":{"ip":["8.8.4.4"]}}' \
		'{"alert":{"id":"a2","severity":"low"} , "related":{"ip":["9.9.9.9"]}}' \
		'{"alert":{"id":"a3"},"related":{"ip":["1.0.0.1"]}}' >in.ndjson
	run --separate-stderr enrich --when '.alert.severity == "high"' <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.verdict == "clean"' <<<"${lines[0]}"
	assert_equal "${lines[1]}" "$(sed -n 2p in.ndjson)"
	assert_equal "${lines[2]}" "$(sed -n 3p in.ndjson)"
	assert_equal "$(paths)" /api/v3/ip_addresses/8.8.4.4
}

@test "vt-enrich: --as renames the added key" {
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}' >in.ndjson
	run --separate-stderr enrich --as virustotal <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	[[ $output == '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]},"virustotal":{"indicators":'* ]] ||
		fail "$output"
	refute_output --partial '"vt":'
	jq -e '.virustotal.verdict == "clean"' <<<"$output"
	assert_equal "$(paths)" /api/v3/ip_addresses/8.8.4.4
}

@test "vt-enrich: --unordered still writes every event once" {
	local i
	# A slow indicator first: in order, it would hold every other event.
	sim_fault '{"path": "^/api/v3/ip_addresses/8\\.8\\.8\\.1$", "latency_ms": 800}'
	for ((i = 0; i < 40; i++)); do
		printf '{"alert":{"id":"a%02d"},"related":{"ip":["8.8.8.%d"]}}\n' "$i" $((i % 5 + 1))
	done >in.ndjson
	enrich <in.ndjson >ordered.out
	run --separate-stderr vt-enrich --rate 0 --cache none --unordered <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "${#lines[@]}" 40
	assert_equal "$(sort <<<"$output")" "$(sort ordered.out)"
	# The events of the slow indicator came last.
	assert_equal "$(jq -r '.related.ip[0]' <<<"$output" | tail -n 8 | sort -u)" 8.8.8.1
	assert_equal "$(sim_count path=/api/v3/)" 10
}

@test "vt-enrich: -vvv traces the headers with x-apikey redacted" {
	sim_set vt_api_key '"sEcReT-vt-key-31337"'
	ips 1 1 >in.ndjson
	VT_API_KEY=sEcReT-vt-key-31337 run --separate-stderr enrich -vvv <in.ndjson
	assert_success
	jq -e '.vt.verdict == "clean"' <<<"$output"
	grep -qx 'vt-enrich: trace: > GET /api/v3/ip_addresses/8.8.8.1 HTTP/1.1' <<<"$stderr" ||
		fail "no request line: $stderr"
	grep -qix 'vt-enrich: trace: > x-apikey: \[redacted\]' <<<"$stderr" ||
		fail "no redacted x-apikey: $stderr"
	grep -qx 'vt-enrich: trace: < HTTP/1.1 200 OK' <<<"$stderr" ||
		fail "no status line: $stderr"
	grep -qix 'vt-enrich: trace: < content-type: application/json; charset=utf-8' <<<"$stderr"
	[[ $stderr$output != *sEcReT* ]] || fail "the key was printed"
	run sim_requests path=/api/v3/
	jq -e 'length == 1 and .[0].headers["x-apikey"] == "sEcReT-vt-key-31337"' <<<"$output"
}

@test "vt-enrich: rejects a line that is not JSON with its number, and goes on" {
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}' 'not json' \
		'{"a":1} {"b":2}' '{"alert":{"id":"a4"},"related":{"ip":["9.9.9.9"]}}' >in.ndjson
	run --separate-stderr enrich --reject rej.txt <in.ndjson
	assert_failure 1
	assert_equal "${#lines[@]}" 2
	jq -e '.alert.id == "a1" and .vt.verdict == "clean"' <<<"${lines[0]}"
	jq -e '.alert.id == "a4" and .vt.verdict == "clean"' <<<"${lines[1]}"
	assert_equal "$stderr" 'vt-enrich: error: line 2: column 1: not a JSON object; rejected
vt-enrich: error: line 3: column 9: unexpected data after the object; rejected'
	assert_equal "$(cat rej.txt)" $'not json\n{"a":1} {"b":2}'
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 /api/v3/ip_addresses/9.9.9.9)"
}

@test "vt-enrich: CRLF, blank lines, a truncated last line and a line over --max-line" {
	local long
	long=$(printf '{"pad":"%0200d"}' 0)
	printf '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}\r\n\n   \n%s\n{"alert":{"id":"a5"}}\n{"a":' "$long" >in.ndjson
	run --separate-stderr enrich --max-line 100 --reject rej.txt <in.ndjson
	assert_failure 1
	assert_equal "${#lines[@]}" 2
	[[ ${lines[0]} == '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]},"vt":{'* ]] ||
		fail "${lines[0]}"
	assert_equal "${lines[1]}" '{"alert":{"id":"a5"}}'
	assert_equal "$stderr" 'vt-enrich: error: line 4: line longer than --max-line; rejected
vt-enrich: error: line 6: column 6: unexpected end of line (truncated value?); rejected'
	assert_equal "$(cat rej.txt)" "$long"$'\n{"a":'
	assert_equal "$(paths)" /api/v3/ip_addresses/8.8.4.4
}


@test "vt-enrich: across many batches, events, rejects and messages keep the input's order" {
	# About 3 MB: dozens of the readers' batches, prepared on two threads.
	# Every 97th line is not JSON, every 389th is over --max-line.
	awk 'BEGIN {
		pad = sprintf("%0600d", 0)
		for (i = 1; i <= 5000; i++)
			if (i % 389 == 0) printf "{\"n\":%d,\"pad\":\"%s%s\"}\n", i, pad, pad
			else if (i % 97 == 0) printf "bad %d\n", i
			else printf "{\"n\":%d,\"pad\":\"%s\",\"related\":{\"ip\":[\"8.8.%d.%d\"]}}\n", i, pad, i % 3, 1
	}' >in.ndjson
	run --separate-stderr enrich --max-line 1000 --reject rej.txt <in.ndjson
	assert_failure 1
	# Events out in input order, each once, each enriched.
	awk '!/^bad/ && length($0) <= 1000 { sub(/^\{"n":/, ""); sub(/,.*/, ""); print }' \
		in.ndjson >want.txt
	jq -r '.n' <<<"$output" >got.txt
	assert_equal "$(cmp want.txt got.txt && echo same)" same
	assert_equal "$(jq -r 'select(.vt.verdict != "clean") | .n' <<<"$output")" ''
	# The reject file and the messages in input order.
	awk '/^bad/ || length($0) > 1000' in.ndjson >want-rej.txt
	assert_equal "$(cmp want-rej.txt rej.txt && echo same)" same
	awk '/^bad/ { print NR ": column 1" } length($0) > 1000 { print NR ": line longer" }' \
		in.ndjson >want-err.txt
	sed -E 's/^vt-enrich: error: line ([0-9]+: (column 1|line longer)).*/\1/' <<<"$stderr" >got-err.txt
	assert_equal "$(cmp want-err.txt got-err.txt && echo same)" same
	assert_equal "$(paths | wc -l)" 3
}
# spread N: N events of about 300 bytes whose related.ip are 300 public
# addresses, each first seen all along the input (8.8.K.J, K = i % 300).
spread() {
	awk -v n="$1" 'BEGIN {
		pad = sprintf("%0200d", 0)
		for (i = 1; i <= n; i++)
			printf "{\"n\":%d,\"pad\":\"%s\",\"related\":{\"ip\":[\"8.8.%d.%d\"]}}\n",
				i, pad, (i * 7919) % 300 % 250, (i * 7919) % 300 / 250 + 1
	}'
}

@test "vt-enrich: reads ahead through a spool file, lookups started early, output unchanged" {
	# 14000 events: more than the window and the batches kept in memory,
	# while the head waits on answers 200 ms away.
	spread 14000 >in.ndjson
	sim_fault '{"path": "^/api/v3/", "latency_ms": 200}'
	run --separate-stderr enrich --cache none --jobs 32 -v <in.ndjson
	assert_success
	echo "$output" >spooled.out
	[[ $stderr =~ "read ahead: "([0-9]+)" batches through the spool file" ]]
	[ "${BASH_REMATCH[1]}" -gt 5 ]
	# Each address once.
	assert_equal "$(paths)" \
		"$(jq -r '.related.ip[0]' in.ndjson | sort -u | sed 's|^|/api/v3/ip_addresses/|' | sort)"
	# Every event once, in input order, the same bytes as without reading
	# ahead.
	assert_equal "$(jq -r .n spooled.out | cmp - <(seq 14000) && echo same)" same
	_sim_call DELETE /_sim/requests >/dev/null
	run --separate-stderr enrich --cache none --jobs 32 -v --read-ahead 0 <in.ndjson
	assert_success
	[[ $stderr != *"spool file"* ]]
	assert_equal "$(cmp spooled.out - <<<"$output" && echo same)" same
	assert_equal "$(paths | wc -l)" "$(jq -r '.related.ip[0]' in.ndjson | sort -u | wc -l)"
}

@test "vt-enrich: a key refused mid-run still writes every event read ahead, in order, then exits 3" {
	spread 14000 >in.ndjson
	# The first 40 lookups answered in 100 ms, then the key is refused.
	sim_fault '{"path": "^/api/v3/", "skip": 40, "status": 401, "body": "{\"error\": {\"code\": \"WrongCredentialsError\", \"message\": \"Wrong API key\"}}"}'
	sim_fault '{"path": "^/api/v3/", "latency_ms": 100}'
	run --separate-stderr enrich --cache none --jobs 8 -v <in.ndjson
	assert_failure 3
	[[ $stderr == *"VirusTotal refused the API key"* ]]
	# Far more than the window and the batches held in memory (about
	# 7,500 events): what was read ahead through the spool is written too,
	# each event once and in order.
	[[ $stderr =~ "read ahead: "[0-9]+" batches through the spool file" ]]
	local n
	n=$(jq -s length <<<"$output")
	[ "$n" -gt 8000 ]
	assert_equal "$(jq -r .n <<<"$output" | cmp - <(seq "$n") && echo same)" same
	# Each carries its answer or the refusal, nothing else.
	assert_equal "$(jq -r 'select(.vt.error != null and .vt.error.code != "auth") | .n' <<<"$output")" ''
	[ "$(jq -r 'select(.vt.error.code == "auth") | .n' <<<"$output" | wc -l)" -gt 1000 ]
}

@test "vt-enrich: a spool file that cannot be made or written: read ahead in memory only, nothing lost" {
	spread 14000 >in.ndjson
	sim_fault '{"path": "^/api/v3/", "latency_ms": 200}'
	TMPDIR=$BATS_TEST_TMPDIR/none run --separate-stderr enrich --cache none --jobs 32 -v <in.ndjson
	assert_success
	[[ $stderr == *"no spool file in $BATS_TEST_TMPDIR/none (No such file or directory): reading ahead in memory only"* ]]
	assert_equal "$(jq -r .n <<<"$output" | cmp - <(seq 14000) && echo same)" same
	# Writes past a file size limit (128 KB) fail: said once, and the run
	# goes on without the spool.
	mkdir spool
	run --separate-stderr bash -c '(ulimit -f 128; TMPDIR=$PWD/spool exec vt-enrich --rate 0 --cache none --jobs 32 -v <in.ndjson) | cat >out.ndjson'
	assert_success
	assert_equal "$(grep -c 'spool file: File too large; reading ahead in memory only' <<<"$stderr")" 1
	assert_equal "$(jq -r .n out.ndjson | cmp - <(seq 14000) && echo same)" same
	# Unlinked: nothing is left behind.
	assert_equal "$(ls -A spool)" ''
	run vt-enrich --read-ahead lots </dev/null
	assert_failure 2
	[[ $output == *"--read-ahead: 'lots' is not a size"* ]]
}

@test "vt-enrich: standard input that is a directory is a usage error" {
	run --separate-stderr enrich <.
	refute_crash
	assert_failure 2
	assert_equal "$output" ''
	assert_equal "$stderr" 'vt-enrich: error: standard input is a directory'
	assert_equal "$(sim_count path=/api/v3/)" 0
}

@test "vt-enrich: --log-format json writes one object per message" {
	printf '%s\n' '{"alert":{"id":"z9"},"related":{"ip":["8.8.4.4"]}}' >in.ndjson
	VT_API_KEY=bad-key run --separate-stderr enrich --log-format json <in.ndjson
	assert_failure 3
	jq -e '.vt.error.code == "auth"' <<<"$output"
	assert_equal "$(grep -c . <<<"$stderr")" 2
	jq -e -s '.[0].tool == "vt-enrich" and .[0].level == "error"
		and (.[0].message | startswith("VirusTotal refused the API key"))
		and .[1].line == 1 and .[1].alert_id == "z9"
		and .[1].message == "vt: VirusTotal refused the API key: WrongCredentialsError"
		and all(.[]; .time | test("^[0-9-]+T[0-9:.]+Z$"))' <<<"$stderr"
	assert_equal "$(sim_count path=/api/v3/)" 1
}

@test "vt-enrich: writing to /dev/full exits 3 with a message" {
	ips 3 1 >in.ndjson
	printf '%s\n' '{"a":1}' '{"b":2}' >plain.ndjson
	local i
	# Lookups, cached answers and events without indicators: the error is
	# reported whichever write meets it.
	for i in 1 2 3; do
		run --separate-stderr bash -c 'vt-enrich --rate 0 --cache "$1" <in.ndjson >/dev/full' _ "$CACHE"
		assert_failure 3
		assert_equal "$stderr" 'vt-enrich: error: standard output: No space left on device'
		run --separate-stderr bash -c 'vt-enrich --rate 0 --cache none <plain.ndjson >/dev/full'
		assert_failure 3
		assert_equal "$stderr" 'vt-enrich: error: standard output: No space left on device'
	done
	assert_equal "$(sim_count path=/api/v3/)" 3
}

@test "vt-enrich: | head -1 ends quietly" {
	python3 -c 'import sys
for i in range(20000):
    sys.stdout.write("{\"i\":%d,\"related\":{\"ip\":[\"8.8.8.%d\"]}}\n" % (i, i % 3 + 1))' >many.ndjson
	run --separate-stderr bash -c 'set -o pipefail; vt-enrich --rate 0 --cache none <many.ndjson | head -1; echo "st=${PIPESTATUS[0]}"'
	assert_success
	assert_equal "$stderr" ''
	assert_equal "${#lines[@]}" 2
	jq -e '.i == 0 and .vt.verdict == "clean"' <<<"${lines[0]}"
	assert_equal "${lines[1]}" 'st=0'
	assert_equal "$(sim_count path=/api/v3/)" 3
}

@test "vt-enrich: objects without last_analysis_stats give null counts, no crash" {
	sim_set vt_no_stats '["8.8.4.4"]'
	printf '%s\n' '{"alert":{"id":"a1"},"related":{"ip":["8.8.4.4"]}}' \
		'{"alert":{"id":"a2"},"related":{"ip":["1.1.1.1"]},"dns":{"question":{"name":"github.com"}}}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	refute_crash
	assert_success
	assert_equal "$stderr" ''
	jq -e '.vt.indicators[0] | .found == true and .malicious == null
		and .suspicious == null and .harmless == null and .undetected == null
		and .last_analysis_date == null and (.reputation | type == "number")' \
		<<<"${lines[0]}"
	jq -e '.vt.malicious == 0 and .vt.score == 0 and .vt.verdict == "clean"' <<<"${lines[0]}"
	# The answers recorded from the real service in 2019.
	jq -e '[.vt.indicators[] | [.value, .found, .malicious]]
		== [["1.1.1.1", true, null], ["github.com", true, null]]' <<<"${lines[1]}"
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/ip_addresses/1.1.1.1 /api/v3/domains/github.com)"
}

@test "vt-enrich: control characters in answers and events still give valid JSON" {
	sim_set vt_ctrl '["8.8.4.4", "example.org", "44d88612fea8a8f36de82e1278abb02f"]'
	local url=$'http://example.org/red\x7f\xc3\xa9'
	printf '%s\n' '{"alert":{"id":"a1"},"msg":"\u0001\u001b[31m\t","related":{"ip":["8.8.4.4"],"hash":["44d88612fea8a8f36de82e1278abb02f"]},"url":{"domain":"example.org","full":"http://example.org/red\u007f\u00e9"}}' >in.ndjson
	run --separate-stderr enrich <in.ndjson
	refute_crash
	assert_success
	assert_equal "$stderr" ''
	jq -c . <<<"$output" >/dev/null
	jq -e --arg url "$url" '.msg == "\u0001\u001b[31m\t"
		and ([.vt.indicators[] | [.type, .found]] == [["ip", true],
			["hash", true], ["domain", true], ["url", true]])
		and .vt.indicators[3].value == $url' <<<"$output"
	# No raw C0 control character reaches the output.
	run --separate-stderr bash -c 'LC_ALL=C grep -c "[[:cntrl:]]" <<<"$(tr -d "\177" <<<"$1")"' _ "$output"
	assert_output 0
	assert_equal "$(paths)" "$(want_paths /api/v3/ip_addresses/8.8.4.4 \
		/api/v3/files/44d88612fea8a8f36de82e1278abb02f /api/v3/domains/example.org \
		"/api/v3/urls/$(url_id "$url")")"
}

@test "vt-enrich: --rate spaces the requests" {
	ips 3 1 >in.ndjson
	run --separate-stderr vt-enrich --rate 2/s --cache none <in.ndjson
	assert_success
	assert_equal "$stderr" ''
	assert_equal "${#lines[@]}" 3
	run sim_requests path=/api/v3/
	jq -e 'length == 3 and (.[1].time - .[0].time) >= 0.45
		and (.[2].time - .[1].time) >= 0.45' <<<"$output" ||
		fail "requests: $(jq -c 'map([.path, .time])' <<<"$output")"
}

@test "vt-enrich: usage errors exit 2 before reading or sending anything" {
	ips 1 1 >in.ndjson
	local args
	for args in "--types ip,foo" "--types ," "--jobs 0" "--rate fast" \
		"--timeout 0" "--retries 99" "--ttl 0" "--negative-ttl x" \
		"--malicious-threshold 0" "--suspicious-threshold -1" \
		"--field .a==" "--when (" "extra"; do
		# shellcheck disable=SC2086
		run --separate-stderr vt-enrich $args <in.ndjson
		refute_crash
		[ "$status" -eq 2 ] || fail "$args: status $status"
		[ -z "$output" ] || fail "$args: wrote $output"
		[ -n "$stderr" ] || fail "$args: no message"
	done
	run --separate-stderr vt-enrich --types ip,foo <in.ndjson
	assert_equal "$(head -n 2 <<<"$stderr")" "vt-enrich: --types: unknown type 'foo'
usage: vt-enrich [-t TYPES] [--field EXPR] [options]"
	assert_equal "$(sim_count path=/api/v3/)" 0
}

@test "vt-enrich: empty input gives no output, no request, exit 0" {
	run --separate-stderr enrich </dev/null
	assert_success
	assert_equal "$output" ''
	assert_equal "$stderr" ''
	assert_equal "$(sim_count path=/api/v3/)" 0
}
