#!/usr/bin/env bats
# Tests of the vendor API simulator itself: every tool test relies on these
# behaviours, so they are pinned here rather than discovered through a tool.

load helpers/common
load helpers/sim

setup() {
	sim_start
}

teardown() {
	sim_stop
}

# now_ms: wall clock in milliseconds.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# http_code URL...: print the status code of each request, one per line.
http_code() {
	local url
	for url in "$@"; do
		curl --silent --output /dev/null --write-out '%{http_code}\n' "$url"
	done
}

@test "sim: is ready in under a second" {
	# The best of three starts: a loaded machine (the suite runs in
	# parallel) can stall any single start, which says nothing of the sim.
	local t0 t1 best=999999 i
	for i in 1 2 3; do
		sim_stop
		t0=$(now_ms)
		sim_start
		t1=$(now_ms)
		(( t1 - t0 < best )) && best=$((t1 - t0))
	done
	run curl --silent --fail "$SIM_URL/_sim/health"
	assert_success
	assert_output '{"ok": true}'
	(( best < 1000 )) || fail "ready after $best ms at best"
}

@test "sim: echo describes the request and it is recorded with headers and body" {
	run curl --silent --fail -X POST -H 'X-Api-Key: k1' \
		--data-binary '{"a": 1}' "$SIM_URL/echo/one?x=2&y=z"
	assert_success
	jq -e '.method == "POST" and .path == "/echo/one" and .query.x == "2"
		and .headers["x-api-key"] == "k1" and .body == "{\"a\": 1}"' \
		<<<"$output"
	run sim_requests
	assert_success
	jq -e 'length == 1 and .[0].seq == 1 and .[0].method == "POST"
		and .[0].path == "/echo/one" and .[0].query == "x=2&y=z"
		and .[0].headers["x-api-key"] == "k1" and .[0].body == "{\"a\": 1}"
		and (.[0] | has("fault") | not)' <<<"$output"
}

@test "sim: records a body that is not UTF-8 as body_b64" {
	printf '\377\376' | curl --silent --fail --data-binary @- "$SIM_URL/echo" >/dev/null
	run sim_requests
	jq -e '.[0].body_b64 == "//4=" and (.[0] | has("body") | not)' <<<"$output"
}

@test "sim: control routes are not recorded" {
	curl --silent --fail "$SIM_URL/_sim/health" >/dev/null
	curl --silent --fail "$SIM_URL/_sim/faults" >/dev/null
	sim_requests >/dev/null
	run sim_count
	assert_output 0
	curl --silent --fail "$SIM_URL/echo" >/dev/null
	run sim_count
	assert_output 1
}

@test "sim: filters recorded requests by path prefix and method" {
	curl --silent "$SIM_URL/echo/a" "$SIM_URL/other" >/dev/null
	curl --silent -X POST -d x "$SIM_URL/echo/b" >/dev/null
	run sim_count "path=/echo"
	assert_output 2
	run sim_count "method=post"
	assert_output 1
	run sim_count "path=/echo&method=GET"
	assert_output 1
}

@test "sim: answers 429 twice then 200 for a fault with count 2" {
	sim_fault '{"path": "^/echo", "status": 429, "count": 2,
		"headers": {"Retry-After": "1"}}'
	for _ in 1 2; do
		run curl --silent --include "$SIM_URL/echo"
		assert_line --index 0 --regexp '^HTTP/1.1 429 '
		assert_line --regexp '^Retry-After: 1'
	done
	run curl --silent --include "$SIM_URL/echo"
	assert_line --index 0 --regexp '^HTTP/1.1 200 '
	refute_line --regexp '^Retry-After'
	run sim_count
	assert_output 3
	run jq -c '[.[].fault]' <<<"$(sim_requests)"
	assert_output '[0,0,null]'
}

@test "sim: skip lets the first matching requests through" {
	sim_fault '{"path": "^/echo", "status": 503, "skip": 1, "count": 1}'
	run http_code "$SIM_URL/echo" "$SIM_URL/echo" "$SIM_URL/echo"
	assert_output "$(printf '200\n503\n200')"
}

@test "sim: a fault applies only to its method and path" {
	sim_fault '{"method": "POST", "path": "^/echo/x", "status": 500}'
	run http_code "$SIM_URL/echo/y" "$SIM_URL/echo/x"
	assert_output "$(printf '200\n200')"
	run curl --silent --output /dev/null --write-out '%{http_code}' \
		-X POST "$SIM_URL/echo/x"
	assert_output 500
}

@test "sim: latency_ms delays the answer" {
	sim_fault '{"path": "^/echo", "latency_ms": 300}'
	local t0 t1
	t0=$(now_ms)
	run curl --silent --fail "$SIM_URL/echo"
	t1=$(now_ms)
	assert_success
	jq -e '.path == "/echo"' <<<"$output"
	(( t1 - t0 >= 300 )) || fail "answered after $((t1 - t0)) ms"
}

@test "sim: idle_ms stalls between the headers and the body" {
	sim_fault '{"path": "^/echo", "idle_ms": 300}'
	run curl --silent --fail --output /dev/null \
		--write-out '%{time_starttransfer} %{time_total}' "$SIM_URL/echo"
	assert_success
	awk '{ exit !($2 - $1 >= 0.3) }' <<<"$output" || fail "timings: $output"
}

@test "sim: drip_ms sends the body slowly but completely" {
	sim_fault '{"path": "^/echo", "status": 200, "body": "0123456789",
		"drip_ms": 30}'
	local t0 t1
	t0=$(now_ms)
	run curl --silent --fail "$SIM_URL/echo"
	t1=$(now_ms)
	assert_output 0123456789
	(( t1 - t0 >= 300 )) || fail "answered after $((t1 - t0)) ms"
}

@test "sim: reset closes the connection without an answer" {
	sim_fault '{"path": "^/echo", "reset": true}'
	run curl --silent "$SIM_URL/echo"
	[[ $status == 52 || $status == 56 ]] || fail "curl exit $status"
	assert_output ''
	run jq -c '[.[].fault]' <<<"$(sim_requests)"
	assert_output '[0]'
}

@test "sim: malformed answers 200 with a body that is not JSON" {
	sim_fault '{"path": "^/echo", "malformed": true}'
	run curl --silent --fail "$SIM_URL/echo"
	assert_success
	refute_output ''
	run jq -e . <<<"$output"
	assert_failure
}

@test "sim: short_body makes curl report a partial file" {
	sim_fault '{"path": "^/echo", "short_body": true}'
	run curl --silent --output /dev/null "$SIM_URL/echo"
	assert_equal "$status" 18
}

@test "sim: keeps the connection open between requests" {
	run curl --silent --output /dev/null --output /dev/null \
		--write-out '%{num_connects}\n' "$SIM_URL/echo" "$SIM_URL/nope"
	assert_output "$(printf '1\n0')"
}

@test "sim: refuses a fault rule with an unknown field" {
	run sim_fault '{"path": "^/echo", "stauts": 500}'
	assert_failure
	assert_output --partial 'unknown fault field: stauts'
	run curl --silent --fail "$SIM_URL/_sim/faults"
	assert_output '[]'
}

@test "sim: DELETE clears the request log and the fault rules" {
	sim_fault '{"path": "^/echo", "status": 500}'
	curl --silent "$SIM_URL/echo" "$SIM_URL/echo" >/dev/null
	run sim_count
	assert_output 2
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
	curl --silent --fail -X DELETE "$SIM_URL/_sim/faults" >/dev/null
	run sim_count
	assert_output 0
	run curl --silent --fail "$SIM_URL/_sim/faults"
	assert_output '[]'
	run http_code "$SIM_URL/echo"
	assert_output 200
}

@test "sim: stores settings and POST /_sim/reset clears everything" {
	sim_set api_key '"k1"'
	sim_fault '{"path": "^/echo", "status": 500}'
	curl --silent "$SIM_URL/echo" >/dev/null
	run curl --silent --fail "$SIM_URL/_sim/state"
	assert_output '{"api_key": "k1"}'
	sim_reset
	run sim_count
	assert_output 0
	run curl --silent --fail "$SIM_URL/_sim/faults"
	assert_output '[]'
	run curl --silent --fail "$SIM_URL/_sim/state"
	assert_output '{}'
	run http_code "$SIM_URL/echo"
	assert_output 200
}

@test "sim: answers 404 with a JSON error for an unknown route" {
	run curl --silent --write-out '\n%{http_code}' "$SIM_URL/no/such/thing"
	assert_line --index 1 404
	jq -e '.error == "no such route" and .path == "/no/such/thing"' \
		<<<"${lines[0]}"
}

@test "sim: stays quiet and exits cleanly on SIGTERM" {
	curl --silent "$SIM_URL/echo" "$SIM_URL/nope" >/dev/null
	local st=0
	kill -TERM "$SIM_PID"
	wait "$SIM_PID" || st=$?
	SIM_PID=
	assert_equal "$st" 0
	run cat "$SIM_LOG"
	assert_output ''
}
