#!/usr/bin/env bats
# Tests of the simulated VirusTotal API v3 (tests/sim/simlib/vendors/
# virustotal.py): the tools' VirusTotal tests rely on these behaviours, so
# they are pinned here. The module's docstring is the reference for every
# setting and built-in indicator used below.

load helpers/common
load helpers/sim

VT_KEY=test-vt-key
VT_CORPUS="$SHARED/corpus/vendor/virustotal"

setup() {
	sim_start
}

teardown() {
	sim_stop
}

# vt PATH [CURL-ARGS...]: GET /api/v3PATH with the key in VT_KEY (none when
# it is empty); prints the body whatever the status.
vt() {
	local path=$1 auth=()
	shift
	[ -z "$VT_KEY" ] || auth=(-H "x-apikey: $VT_KEY")
	curl --silent --show-error "${auth[@]}" "$@" "$SIM_URL/api/v3$path"
}

# vt_answer PATH [CURL-ARGS...]: the same GET; sets code and body (the
# answers are indented JSON, too many lines to share one with the code).
vt_answer() {
	code=$(vt "$@" --output "$BATS_TEST_TMPDIR/body" --write-out '%{http_code}')
	body=$(<"$BATS_TEST_TMPDIR/body")
}

# vt_code PATH [CURL-ARGS...]: print only the status code of that GET.
vt_code() {
	vt "$@" --output /dev/null --write-out '%{http_code}\n'
}

# vt_codes N PATH: GET PATH N times in a row; print the codes on one line.
vt_codes() {
	local i codes=()
	for ((i = 0; i < $1; i++)); do
		codes+=("$(vt_code "$2")")
	done
	echo "${codes[*]}"
}

# url_id URL: VirusTotal's URL identifier, unpadded base64url.
url_id() {
	printf '%s' "$1" | basenc --base64url -w0 | tr -d '='
}

sha256() {
	printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

@test "sim vt: ip_addresses answers an ip_address object with clean stats" {
	run vt /ip_addresses/8.8.4.4 --dump-header "$BATS_TEST_TMPDIR/h"
	assert_success
	jq -e '.data.type == "ip_address" and .data.id == "8.8.4.4"
		and .data.links.self == "https://www.virustotal.com/api/v3/ip_addresses/8.8.4.4"
		and .data.attributes.last_analysis_stats == {"harmless": 60,
			"malicious": 0, "suspicious": 0, "undetected": 20, "timeout": 0}
		and (.data.attributes.last_analysis_date | type == "number")
		and .data.attributes.reputation == 0
		and (.data.attributes.as_owner | type == "string")
		and (.data.attributes.asn | type == "number")
		and (.data.attributes.country | test("^[A-Z]{2}$"))
		and .data.attributes.network == "8.8.4.0/24"
		and (.data.attributes.last_analysis_results | length == 80)' \
		<<<"$output"
	grep -qi '^content-type: application/json; charset=utf-8' "$BATS_TEST_TMPDIR/h"
	grep -qi '^x-cloud-trace-context: [0-9a-f]\{32\}' "$BATS_TEST_TMPDIR/h"
}

@test "sim vt: answers IPv6 addresses, percent-encoded or not" {
	run vt /ip_addresses/2606:4700::6810:84e5
	jq -e '.data.id == "2606:4700::6810:84e5"
		and .data.attributes.network == "2606:4700::/48"' <<<"$output"
	run vt /ip_addresses/2606%3A4700%3A%3A6810%3A84e5
	jq -e '.data.id == "2606:4700::6810:84e5"' <<<"$output"
}

@test "sim vt: domains answers a domain object with categories" {
	run vt /domains/Example.ORG
	assert_success
	jq -e '.data.type == "domain" and .data.id == "example.org"
		and .data.links.self == "https://www.virustotal.com/api/v3/domains/example.org"
		and (.data.attributes.last_analysis_stats | keys
			== ["harmless", "malicious", "suspicious", "timeout", "undetected"])
		and .data.attributes.last_analysis_stats.malicious == 0
		and (.data.attributes.categories | type == "object" and length > 0)
		and (.data.attributes.creation_date | type == "number")
		and .data.attributes.tld == "org"' <<<"$output"
}

@test "sim vt: files answers one object by md5, sha1 and sha256" {
	local md5 by_md5 by_sha1 by_sha256 sha1 sha256
	md5=$(printf 'hello\n' | md5sum | cut -d' ' -f1)
	by_md5=$(vt "/files/$md5")
	jq -e --arg md5 "$md5" '.data.type == "file" and .data.attributes.md5 == $md5
		and .data.id == .data.attributes.sha256
		and (.data.id | test("^[0-9a-f]{64}$"))
		and (.data.attributes.sha1 | test("^[0-9a-f]{40}$"))
		and .data.links.self == "https://www.virustotal.com/api/v3/files/\(.data.id)"
		and (.data.attributes.last_analysis_stats | keys == ["confirmed-timeout",
			"failure", "harmless", "malicious", "suspicious", "timeout",
			"type-unsupported", "undetected"])
		and .data.attributes.last_analysis_stats.malicious == 0
		and .data.attributes.last_analysis_stats.undetected == 58
		and (.data.attributes.names | type == "array" and length > 0)
		and (.data.attributes.size | type == "number")
		and (.data.attributes.meaningful_name | type == "string")
		and (.data.attributes.type_description | type == "string")' \
		<<<"$by_md5"
	sha1=$(jq -r .data.attributes.sha1 <<<"$by_md5")
	sha256=$(jq -r .data.id <<<"$by_md5")
	by_sha1=$(vt "/files/$sha1")
	by_sha256=$(vt "/files/${sha256^^}")
	[ "$by_sha1" = "$by_md5" ] || fail "by sha1: $by_sha1"
	[ "$by_sha256" = "$by_md5" ] || fail "by upper-case sha256: $by_sha256"
}

@test "sim vt: urls decodes the unpadded base64url id and answers the SHA-256 id" {
	local url id
	for url in 'https://example.net/a?q=>>>&r=??' 'https://example.net/a?q=>>>&r=???'; do
		id=$(url_id "$url")
		# These ids exercise the base64url alphabet and the padding.
		[[ $id == *[-_]* ]] || fail "no base64url character in $id"
		run vt "/urls/$id"
		assert_success
		jq -e --arg url "$url" --arg sha "$(sha256 "$url")" '
			.data.type == "url" and .data.id == $sha
			and .data.links.self == "https://www.virustotal.com/api/v3/urls/\($sha)"
			and .data.attributes.url == $url
			and .data.attributes.last_final_url == $url
			and .data.attributes.last_analysis_stats.harmless == 60' \
			<<<"$output"
		# Once met, the URL answers to its SHA-256 id too.
		[ "$(vt "/urls/$(sha256 "$url")")" = "$output" ] ||
			fail "SHA-256 id answers differently"
	done
	[ "$(printf 'https://example.net/a?q=>>>&r=??' | basenc --base64url)" != \
		"$(url_id 'https://example.net/a?q=>>>&r=??')" ] ||
		fail "the first URL was meant to need padding"
}

@test "sim vt: urls makes a bare host http://host/ and knows no unmet SHA-256 id" {
	# The recorded id of http://example.com/ is its SHA-256.
	run vt "/urls/$(url_id example.com)"
	jq -e '.data.id == "2a1b402420ef46577471cdc7409b0fa2c6a204db316e59ade2d805435489a067"
		and .data.attributes.url == "http://example.com/"' <<<"$output"
	run vt "/urls/$(sha256 'https://never-looked-up.example/')"
	jq -e '.error.code == "NotFoundError"' <<<"$output"
}

@test "sim vt: 1.1.1.1 and github.com answer the recorded bodies byte for byte" {
	[ -d "$VT_CORPUS" ] || skip_or_fail "no corpus at $VT_CORPUS"
	vt /ip_addresses/1.1.1.1 >"$BATS_TEST_TMPDIR/ip"
	cmp "$BATS_TEST_TMPDIR/ip" "$VT_CORPUS/vt3-ip_addresses-1.1.1.1.json"
	vt /domains/github.com >"$BATS_TEST_TMPDIR/domain"
	cmp "$BATS_TEST_TMPDIR/domain" "$VT_CORPUS/vt3-domains-github.com.json"
	# Those 2019 objects predate last_analysis_stats.
	jq -e '.data.attributes | has("last_analysis_stats") | not' "$BATS_TEST_TMPDIR/ip"
}

@test "sim vt: error answers are laid out like the recorded NotFoundError" {
	[ -d "$VT_CORPUS" ] || skip_or_fail "no corpus at $VT_CORPUS"
	# The recorded body names a votes item; the layout is what must match.
	vt "/urls/$(url_id http://unknown.example/)" |
		sed 's/"message": .*/"message": M/' >"$BATS_TEST_TMPDIR/mine"
	sed 's/"message": .*/"message": M/' \
		"$VT_CORPUS/vt3-error-404-NotFoundError.json" >"$BATS_TEST_TMPDIR/real"
	diff "$BATS_TEST_TMPDIR/real" "$BATS_TEST_TMPDIR/mine"
}

@test "sim vt: answers 401 AuthenticationRequiredError without x-apikey" {
	VT_KEY='' vt_answer /ip_addresses/8.8.4.4
	assert_equal "$code" 401
	jq -e '. == {"error": {"code": "AuthenticationRequiredError",
		"message": "X-Apikey header is missing"}}' <<<"$body"
}

@test "sim vt: answers 401 WrongCredentialsError for a wrong key and ignores header case" {
	VT_KEY=nope vt_answer /domains/example.org
	assert_equal "$code" 401
	jq -e '. == {"error": {"code": "WrongCredentialsError",
		"message": "Wrong API key"}}' <<<"$body"
	VT_KEY='' run vt_code /domains/example.org -H 'X-APIKEY: test-vt-key'
	assert_output 200
	sim_set vt_api_key '["k1", "k2"]'
	VT_KEY=k2 run vt_code /domains/example.org
	assert_output 200
	run vt_code /domains/example.org
	assert_output 401
}

@test "sim vt: answers 404 NotFoundError for unknown indicators" {
	sim_set vt_unknown '["8.8.8.8", "Listed.Example", "http://listed.example/x"]'
	run vt_code /ip_addresses/8.8.8.8
	assert_output 404
	run vt /ip_addresses/8.8.8.8
	jq -e '. == {"error": {"code": "NotFoundError",
		"message": "IP address \"8.8.8.8\" not found"}}' <<<"$output"
	run vt /domains/listed.example
	jq -e '.error.message == "Domain \"listed.example\" not found"' <<<"$output"
	run vt "/urls/$(url_id 'http://listed.example/x')"
	jq -e '.error.code == "NotFoundError"' <<<"$output"
	# Built-in unknowns: the "unknown" prefix, TEST-NET-1 and .invalid.
	run vt /domains/unknown-host.example
	jq -e '.error.message == "Domain \"unknown-host.example\" not found"' <<<"$output"
	run vt /files/unknown-sample
	jq -e '.error.message == "File \"unknown-sample\" not found"' <<<"$output"
	run vt_code /ip_addresses/192.0.2.10
	assert_output 404
	run vt_code /domains/nothing.invalid
	assert_output 404
	run vt_code "/urls/$(url_id 'https://unknown.example/')"
	assert_output 404
	run vt_code /ip_addresses/8.8.4.4
	assert_output 200
}

@test "sim vt: answers 400 InvalidArgumentError for malformed identifiers" {
	local path
	for path in /ip_addresses/300.1.1.1 /domains/bad_domain%21 /files/abc123 \
		/urls/aHR0cDovL2V4YW1wbGUuY29tLw== /urls/a+b; do
		vt_answer "$path"
		[ "$code" = 400 ] || fail "$path: $code $body"
		jq -e '.error.code == "InvalidArgumentError"' <<<"$body" ||
			fail "$path: $body"
	done
}

@test "sim vt: answers 404 NotFoundError on unknown paths and 405 on other methods" {
	vt_answer /nowhere
	assert_equal "$code" 404
	jq -e '.error.code == "NotFoundError"' <<<"$body"
	run vt_code /ip_addresses/8.8.4.4/comments
	assert_output 404
	vt_answer /ip_addresses/8.8.4.4 -X POST --dump-header "$BATS_TEST_TMPDIR/h"
	assert_equal "$code" 405
	grep -qi '^allow: GET' "$BATS_TEST_TMPDIR/h"
}

@test "sim vt: vt_verdicts overrides the stats and fills up the rest" {
	sim_set vt_verdicts '{"8.8.4.4": {"malicious": 12, "suspicious": 3, "reputation": -40},
		"b1946ac92492d2347c6235b4d2611184": {"malicious": 5, "country": "RU"}}'
	run vt /ip_addresses/8.8.4.4
	jq -e '.data.attributes.last_analysis_stats == {"harmless": 45,
			"malicious": 12, "suspicious": 3, "undetected": 20, "timeout": 0}
		and .data.attributes.reputation == -40
		and ([.data.attributes.last_analysis_results[]
			| select(.category == "malicious")] | length == 12)' <<<"$output"
	run vt /files/b1946ac92492d2347c6235b4d2611184
	jq -e '.data.attributes.last_analysis_stats.malicious == 5
		and .data.attributes.last_analysis_stats.undetected == 53
		and .data.attributes.reputation == -15
		and .data.attributes.country == "RU"' <<<"$output"
	# An override on a recorded indicator gets a simulated object.
	sim_set vt_verdicts '{"1.1.1.1": {"malicious": 1}}'
	run vt /ip_addresses/1.1.1.1
	jq -e '.data.attributes.last_analysis_stats.malicious == 1' <<<"$output"
}

@test "sim vt: the built-in examples answer as documented" {
	run vt /ip_addresses/203.0.113.66
	jq -e '.data.attributes.last_analysis_stats.malicious == 14
		and .data.attributes.reputation == -62' <<<"$output"
	run vt /ip_addresses/198.51.100.7
	jq -e '.data.attributes.last_analysis_stats
		| .malicious == 1 and .suspicious == 4' <<<"$output"
	run vt /domains/evil.example
	jq -e '.data.attributes.last_analysis_stats.malicious == 11' <<<"$output"
	run vt "/urls/$(url_id 'http://evil.example/payload.exe')"
	jq -e '.data.attributes.last_analysis_stats.malicious == 9' <<<"$output"
	run vt /files/44d88612fea8a8f36de82e1278abb02f
	jq -e '.data.id == "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
		and .data.attributes.last_analysis_stats.malicious == 62
		and .data.attributes.meaningful_name == "eicar.com"
		and .data.attributes.size == 68' <<<"$output"
}

@test "sim vt: answers are the same in every simulator run" {
	local first
	first=$(vt /domains/example.org)
	sim_stop
	sim_start
	[ "$(vt /domains/example.org)" = "$first" ] || fail "answers differ"
}

@test "sim vt: vt_no_stats answers a 2019-style object without last_analysis_stats" {
	sim_set vt_no_stats '["example.org"]'
	run vt /domains/example.org
	jq -e '.data.type == "domain" and (.data.attributes
		| has("last_analysis_stats") or has("last_analysis_results")
		| not)' <<<"$output"
}

@test "sim vt: vt_ctrl puts raw control characters in a string attribute" {
	sim_set vt_ctrl '["8.8.4.4", "example.org"]'
	run vt /ip_addresses/8.8.4.4
	jq -e '.data.attributes.as_owner | test("\u0001\u0001") and test("\u001b")' \
		<<<"$output"
	# On the wire they are JSON escapes, as in the recorded 1.1.1.1 answer.
	grep -qF '\u0001\u0001' <<<"$output"
	run vt /domains/example.org
	jq -e '.data.attributes.registrar | test("\u0001")' <<<"$output"
}

@test "sim vt: answers 429 QuotaExceededError past the per-minute quota" {
	sim_set vt_quota '{"per_minute": 4}'
	run vt_codes 4 /ip_addresses/8.8.4.4
	assert_output '200 200 200 200'
	vt_answer /ip_addresses/8.8.4.4 --dump-header "$BATS_TEST_TMPDIR/h"
	assert_equal "$code" 429
	jq -e '. == {"error": {"code": "QuotaExceededError",
		"message": "Quota exceeded"}}' <<<"$body"
	# Like the real service: no Retry-After.
	run grep -ci '^retry-after:' "$BATS_TEST_TMPDIR/h"
	assert_output 0
	run sim_count path=/api/v3/ip_addresses
	assert_output 5
}

@test "sim vt: vt_retry_after adds Retry-After to 429 answers" {
	sim_set vt_quota '{"per_minute": 1}'
	sim_set vt_retry_after 7
	vt_code /ip_addresses/8.8.4.4 >/dev/null
	run vt_code /ip_addresses/8.8.4.4 --dump-header "$BATS_TEST_TMPDIR/h"
	assert_output 429
	grep -qi '^retry-after: 7' "$BATS_TEST_TMPDIR/h"
}

@test "sim vt: a 429 does not consume quota" {
	# Two requests fill a 3 s window. A 429 a second later would keep it
	# full for another second if it counted, so the request made once the
	# first two have left the window must pass.
	sim_set vt_quota '{"per_minute": 2, "window_seconds": 3}'
	run vt_codes 2 /domains/example.org
	assert_output '200 200'
	sleep 1
	run vt_code /domains/example.org
	assert_output 429
	sleep 2.3
	run vt_code /domains/example.org
	assert_output 200
}

@test "sim vt: 401 answers do not consume quota" {
	sim_set vt_quota '{"per_minute": 1}'
	VT_KEY=wrong run vt_codes 3 /domains/example.org
	assert_output '401 401 401'
	run vt_codes 2 /domains/example.org
	assert_output '200 429'
}

@test "sim vt: a spent daily quota stays spent until /_sim/reset" {
	sim_set vt_quota '{"per_day": 2, "window_seconds": 0.2}'
	run vt_codes 3 /files/b1946ac92492d2347c6235b4d2611184
	assert_output '200 200 429'
	sleep 0.3
	run vt_code /files/b1946ac92492d2347c6235b4d2611184
	assert_output 429
	sim_reset
	sim_set vt_quota '{"per_day": 2}'
	run vt_code /files/b1946ac92492d2347c6235b4d2611184
	assert_output 200
}

@test "sim vt: a fault on /api/v3/ip_addresses applies before auth and quota" {
	sim_set vt_quota '{"per_minute": 1}'
	sim_fault '{"path": "^/api/v3/ip_addresses/", "status": 503, "count": 1}'
	VT_KEY='' run vt_codes 2 /ip_addresses/8.8.4.4
	assert_output '503 401'
	# The faulted request used no quota.
	run vt_codes 2 /ip_addresses/8.8.4.4
	assert_output '200 429'
	run sim_requests path=/api/v3/ip_addresses
	jq -e 'length == 4 and .[0].fault == 0 and (.[1] | has("fault") | not)' \
		<<<"$output"
}

@test "sim vt: 32 concurrent requests all succeed" {
	seq 1 32 | xargs -P 32 -I{} curl --silent --show-error \
		-H "x-apikey: $VT_KEY" --output "$BATS_TEST_TMPDIR/{}.json" \
		--write-out '%{http_code}\n' "$SIM_URL/api/v3/ip_addresses/10.0.0.{}" \
		>"$BATS_TEST_TMPDIR/codes"
	run sort "$BATS_TEST_TMPDIR/codes"
	assert_output "$(printf '200\n%.0s' {1..32})"
	local i
	for i in $(seq 1 32); do
		jq -e --arg ip "10.0.0.$i" '.data.id == $ip' "$BATS_TEST_TMPDIR/$i.json" \
			>/dev/null || fail "wrong answer for 10.0.0.$i"
	done
}

@test "sim vt: 32 concurrent requests against a quota of 10 let exactly 10 through" {
	sim_set vt_quota '{"per_minute": 10}'
	seq 1 32 | xargs -P 32 -I{} curl --silent --output /dev/null \
		-H "x-apikey: $VT_KEY" --write-out '%{http_code}\n' \
		"$SIM_URL/api/v3/domains/host{}.example" >"$BATS_TEST_TMPDIR/codes"
	run grep -c '^200$' "$BATS_TEST_TMPDIR/codes"
	assert_output 10
	run grep -c '^429$' "$BATS_TEST_TMPDIR/codes"
	assert_output 22
}
