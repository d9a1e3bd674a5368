#!/usr/bin/env bats
# es-index: events bulk-indexed into the simulated Elasticsearch
# (tests/sim/simlib/vendors/elastic.py), read back with /__elastic/docs;
# batches by count, bytes and time; idempotent --id; item failures marked on
# their own event and only the retryable ones sent again; whole-request
# failures; --metrics; and the usage and I/O failure paths.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	sim_reset
	export ES_URL=$SIM_URL
	export ES_API_KEY=$(printf simid:simkey | base64)
	unset ES_USER ES_PASSWORD ES_API_KEY_FILE
}

# events N [PREFIX]: N small events with alert.id PREFIXn (default d).
events() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf '{"alert":{"id":"%s%d","severity":"high"},"n":%d,"big":12345678901234567890}\n' \
			"${2:-d}" "$i" "$i"
	done
}

# docs INDEX: the stored documents of INDEX, as [_id, _source] lines.
docs() {
	curl --silent --fail "$SIM_URL/__elastic/docs?index=$1" |
		jq -c '.docs[] | [._id, ._source]'
}

# bodies: the bodies of the _bulk requests received, one JSON string each.
bodies() {
	sim_requests path=/soar-audit/_bulk | jq -c '.[].body'
}

# sent_ids: per _bulk request, the alert ids of the documents it carried.
sent_ids() {
	sim_requests path=/soar-audit/_bulk | jq -c '.[] | [.body | split("\n")[] |
		select(length > 0) | fromjson | .alert.id // empty]'
}

@test "es-index: indexes events as they are, in order, one request, body ends in a newline" {
	events 3 >in.ndjson
	run --separate-stderr es-index -i soar-audit <in.ndjson
	assert_success
	assert_equal "$stderr" ""
	# Every event out, in order, unchanged but for es_index.
	assert_equal "$(jq -c 'del(.es_index)' <<<"$output")" "$(jq -c . in.ndjson)"
	assert_equal "$(jq -c '[.es_index.index, .es_index.result, .es_index.status]' \
		<<<"$output" | sort -u)" '["soar-audit","created",201]'
	# The documents read back are the events; ids are the ones reported.
	assert_equal "$(docs soar-audit | jq -c '.[1]')" "$(jq -c . in.ndjson)"
	assert_equal "$(docs soar-audit | jq -r '.[0]')" "$(jq -r .es_index.id <<<"$output")"
	# One request: create actions, the event bytes untouched (the 20-digit
	# number too), a final newline.
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 1
	local body want
	body=$(bodies | jq -r .)
	want=$(while read -r l; do printf '{"create":{}}\n%s\n' "$l"; done <in.ndjson)
	assert_equal "$body" "$want"
	assert_equal "$(bodies | jq 'endswith("\n")')" true
	run sim_requests path=/soar-audit/_bulk
	assert_equal "$(jq -r '.[0].headers | to_entries[] |
		select(.key | ascii_downcase == "content-type") | .value' <<<"$output")" \
		application/x-ndjson
}

@test "es-index --id: a second run creates no duplicates (create: exists, index: updated)" {
	events 3 >in.ndjson
	run --separate-stderr es-index -i soar-audit --id .alert.id <in.ndjson
	assert_success
	assert_equal "$(jq -c '[.es_index.id, .es_index.result]' <<<"$output" | paste -sd' ')" \
		'["d1","created"] ["d2","created"] ["d3","created"]'
	run --separate-stderr es-index -i soar-audit --id .alert.id <in.ndjson
	assert_success
	assert_equal "$(jq -c '[.es_index.id, .es_index.result, .es_index.status]' <<<"$output" |
		paste -sd' ')" '["d1","exists",409] ["d2","exists",409] ["d3","exists",409]'
	run --separate-stderr es-index -i soar-audit --id .alert.id --op index <in.ndjson
	assert_success
	assert_equal "$(jq -r .es_index.result <<<"$output" | sort -u)" updated
	assert_equal "$(docs soar-audit | jq -r '.[0]' | paste -sd' ')" 'd1 d2 d3'
	# The action lines carry the ids.
	assert_equal "$(bodies | jq -r 'split("\n")[0]')" \
		"$(printf '%s\n' '{"create":{"_id":"d1"}}' '{"create":{"_id":"d1"}}' '{"index":{"_id":"d1"}}')"
}

@test "es-index --id: an event without an id fails alone and is not sent" {
	{
		events 1
		echo '{"other":1}'
		events 1 x
	} >in.ndjson
	run --separate-stderr es-index -i soar-audit --id '.alert.id' <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -c '.es_index.result // .es_index.error.code' <<<"$output" | paste -sd' ')" \
		'"created" "input" "created"'
	[[ $stderr == *"line 2: --id gave no string"* ]]
	assert_equal "$(sent_ids)" '["d1","x1"]'
}

@test "es-index: item failures are marked on their own event; only retryable ones are sent again" {
	events 6 >in.ndjson
	# Every third item is refused for good (400); d2 is rejected (429)
	# once, d5 finds no shard (503) once.
	_sim_call POST /__elastic/bulk_failures \
		'{"every": 3, "error": "mapper_parsing_exception"}' >/dev/null
	_sim_call POST /__elastic/bulk_failures \
		'{"ids": ["d2"], "error": "es_rejected_execution_exception", "count": 1}' >/dev/null
	_sim_call POST /__elastic/bulk_failures \
		'{"ids": ["d5"], "error": "unavailable_shards_exception", "count": 1}' >/dev/null
	run --separate-stderr es-index -i soar-audit --id .alert.id <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -c '[.alert.id, (.es_index.result // .es_index.error.code),
		.es_index.status // .es_index.error.status]' <<<"$output" | paste -sd' ')" \
		'["d1","created",201] ["d2","created",201] ["d3","mapper_parsing_exception",400] ["d4","created",201] ["d5","created",201] ["d6","mapper_parsing_exception",400]'
	assert_equal "$(sed -n 3p <<<"$output" | jq -c '.es_index.error | [.index, .id, .attempts]')" \
		'["soar-audit","d3",1]'
	# The retry carried d2 and d5 alone; the 400s were never sent again.
	assert_equal "$(sent_ids)" "$(printf '%s\n' '["d1","d2","d3","d4","d5","d6"]' '["d2","d5"]')"
	assert_equal "$(bodies | jq 'endswith("\n")' | sort -u)" true
	assert_equal "$(docs soar-audit | jq -r '.[0]' | paste -sd' ')" 'd1 d4 d2 d5'
	[[ $stderr == *"line 3: "*"alert d3: "*"failed to parse"* ]]
	[[ $stderr == *"line 6: "* ]]
	[[ $stderr != *"line 2: "* ]]
}

@test "es-index: a retryable item failure that persists ends after --retries" {
	events 3 >in.ndjson
	_sim_call POST /__elastic/bulk_failures '{"ids": ["d2"]}' >/dev/null
	run --separate-stderr es-index -i soar-audit --id .alert.id --retries 2 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(sed -n 2p <<<"$output" | jq -c '.es_index.error |
		[.code, .status, .attempts]')" '["es_rejected_execution_exception",429,3]'
	# The event's own bytes are kept (jq would round the 20-digit number).
	assert_equal "$(sed -n 2p <<<"$output" | sed 's/,"es_index":.*}$/}/')" "$(sed -n 2p in.ndjson)"
	assert_equal "$(sent_ids)" "$(printf '%s\n' '["d1","d2","d3"]' '["d2"]' '["d2"]')"
	assert_equal "$(docs soar-audit | jq -c '.[1].alert.id' | paste -sd' ')" '"d1" "d3"'
}

@test "es-index: a whole-request 429 is retried after Retry-After" {
	events 2 >in.ndjson
	sim_fault '{"path": "^/soar-audit/_bulk$", "status": 429,
		"headers": {"Retry-After": "1"}, "count": 1}'
	local t0=$SECONDS
	run --separate-stderr es-index -i soar-audit <in.ndjson
	assert_success
	[ $((SECONDS - t0)) -ge 1 ]
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 2
	assert_equal "$(sim_requests path=/soar-audit/_bulk | jq -c '[.[].fault]')" '[0,null]'
	assert_equal "$(docs soar-audit | wc -l)" 2
	assert_equal "$(jq -r .es_index.result <<<"$output" | paste -sd' ')" 'created created'
}

@test "es-index: a whole-request 400 marks that batch's events; the next batch goes on" {
	events 4 >in.ndjson
	sim_fault '{"path": "^/soar-audit/_bulk$", "status": 400, "count": 1,
		"body": "{\"error\":{\"type\":\"illegal_argument_exception\",\"reason\":\"bad bulk\"},\"status\":400}"}'
	run --separate-stderr es-index -i soar-audit --batch 2 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -c '.es_index.result // .es_index.error.status' <<<"$output" | paste -sd' ')" \
		'400 400 "created" "created"'
	assert_equal "$(head -1 <<<"$output" | jq -r .es_index.error.message)" \
		'bulk: HTTP 400: illegal_argument_exception: bad bulk'
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 2
	assert_equal "$(docs soar-audit | jq -c '.[1].alert.id' | paste -sd' ')" '"d3" "d4"'
}

@test "es-index: refused credentials (401): exit 3, every event written, nothing more sent" {
	events 3 >in.ndjson
	export ES_API_KEY=$(printf simid:wrong | base64)
	run --separate-stderr es-index -i soar-audit --batch 1 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 3
	assert_equal "$(jq -c '[.es_index.error.code, .es_index.error.status]' <<<"$output" |
		paste -sd' ')" '["auth",401] ["auth",null] ["auth",null]'
	assert_equal "$(jq -c 'del(.es_index)' <<<"$output")" "$(jq -c . in.ndjson)"
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 1
	[[ $stderr == *"HTTP 401: security_exception"* ]]
	[[ $stderr != *"$ES_API_KEY"* ]]
}

@test "es-index: 403 is refused credentials too" {
	events 2 >in.ndjson
	sim_fault '{"path": "^/soar-audit/_bulk$", "status": 403,
		"body": "{\"error\":{\"type\":\"security_exception\",\"reason\":\"action [indices:data/write/bulk] is unauthorized\"},\"status\":403}"}'
	run --separate-stderr es-index -i soar-audit --batch 1 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 3
	assert_equal "$(jq -c '.es_index.error.code' <<<"$output" | paste -sd' ')" '"auth" "auth"'
	assert_equal "$(head -1 <<<"$output" | jq -r .es_index.error.message)" \
		'bulk: HTTP 403: security_exception: action [indices:data/write/bulk] is unauthorized'
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 1
}

@test "es-index: batches close by count and by bytes" {
	events 5 >in.ndjson
	run --separate-stderr es-index -i soar-audit --batch 2 --jobs 1 <in.ndjson
	assert_success
	assert_equal "$(sent_ids)" "$(printf '%s\n' '["d1","d2"]' '["d3","d4"]' '["d5"]')"
	sim_reset
	# 100 events of about 100 bytes with their action lines: 2K batches
	# hold 20 of them; each but the last is as full as it can be.
	events 100 >in.ndjson
	run --separate-stderr es-index -i soar-audit --batch-bytes 2K --jobs 1 <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 100
	run sim_requests path=/soar-audit/_bulk
	jq -e 'length == 5 and all(.[]; (.body | utf8bytelength) <= 2048)
		and all(.[:-1][]; (.body | utf8bytelength) > 2048 - 105)
		and ([.[].body | split("\n") | length - 1] | add) == 200' <<<"$output"
	assert_equal "$(docs soar-audit | wc -l)" 100
}

@test "es-index: --flush-interval sends a waiting batch of a slow stream" {
	run --separate-stderr bash -c '{ printf "%s\n" "{\"alert\":{\"id\":\"s1\"}}"; sleep 1.5
		printf "%s\n" "{\"alert\":{\"id\":\"s2\"}}"; } |
		es-index -i soar-audit --flush-interval 200ms --line-buffered'
	assert_success
	assert_equal "$(sent_ids)" "$(printf '%s\n' '["s1"]' '["s2"]')"
	# The first was sent long before the second arrived.
	run sim_requests path=/soar-audit/_bulk
	jq -e '.[1].time - .[0].time > 1' <<<"$output"
	# With a longer interval the two go together.
	sim_reset
	run --separate-stderr bash -c '{ printf "%s\n" "{\"alert\":{\"id\":\"s1\"}}"; sleep 0.3
		printf "%s\n" "{\"alert\":{\"id\":\"s2\"}}"; } |
		es-index -i soar-audit --flush-interval 5s'
	assert_success
	assert_equal "$(sent_ids)" '["s1","s2"]'
}

@test "es-index: --jobs runs bulk requests at once and keeps the order" {
	events 12 >in.ndjson
	sim_fault '{"path": "^/soar-audit/_bulk$", "latency_ms": 400}'
	local t0 t1
	t0=$(date +%s%N)
	run --separate-stderr es-index -i soar-audit --batch 2 --jobs 6 <in.ndjson
	t1=$(date +%s%N)
	assert_success
	assert_equal "$(jq -r .alert.id <<<"$output" | paste -sd' ')" 'd1 d2 d3 d4 d5 d6 d7 d8 d9 d10 d11 d12'
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 6
	# Six requests of 400 ms one after the other would take 2.4 s.
	[ $(((t1 - t0) / 1000000)) -lt 1800 ]
}

@test "es-index --metrics: the documents get soar.*, the events only es_index" {
	local created
	created=$(date -u -d '-60 seconds' +%Y-%m-%dT%H:%M:%S.000Z)
	# m2 first: its alert.created, not a date, maps the field as keyword.
	jq -nc --arg c "$created" '
		{alert: {id: "m2", created: "yesterday"}, vt: {error: {code: "quota"}},
		 soar: {old: true}},
		{alert: {id: "m1", created: $c}, decision: {outcome: "contain", rule: "rules.jq:3"},
		 ec2: {status: "isolated"}, jira: {key: "SEC-42"}, vt: {verdict: "malicious"}},
		{"alert.id": "m3", "alert.created": "2026-01-01T10:00:00+02:00"}' >in.ndjson
	run --separate-stderr es-index -i soar-audit --metrics --pipeline triage <in.ndjson
	assert_success
	assert_equal "$(jq -c 'del(.es_index)' <<<"$output")" "$(cat in.ndjson)"
	run docs soar-audit
	local d1 d2 d3
	d2=$(sed -n 1p <<<"$output" | jq -c '.[1]')
	d1=$(sed -n 2p <<<"$output" | jq -c '.[1]')
	d3=$(sed -n 3p <<<"$output" | jq -c '.[1]')
	assert_equal "$(jq -c 'del(.soar)' <<<"$d1")" "$(sed -n 2p in.ndjson)"
	assert_equal "$(jq -c '.soar | del(.indexed_at, .response_time_ms)' <<<"$d1")" \
		'{"pipeline":"triage","outcome":"contain","rule":"rules.jq:3","containment":"isolated","ticket":"SEC-42","vt_verdict":"malicious","failed":[]}'
	jq -e '.soar.response_time_ms >= 60000 and .soar.response_time_ms < 70000' <<<"$d1"
	jq -e '.soar.indexed_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")' <<<"$d1"
	# An unparseable time gives no response time; soar is replaced.
	assert_equal "$(jq -c '.soar | del(.indexed_at)' <<<"$d2")" '{"pipeline":"triage","failed":["vt"]}'
	# Flat dotted keys and an offset: 08:00 UTC, long before now.
	jq -e '.soar.response_time_ms > 1000 and
		(.soar.response_time_ms - ((now * 1000) - (("2026-01-01T08:00:00Z" | fromdate) * 1000)) | fabs) < 10000' \
		<<<"$d3"
}

@test "es-index: lines that are not objects are rejected, never indexed; --when passes others untouched" {
	{
		events 1
		echo 'not json'
		echo '[1,2]'
		printf '{"alert":{"id":"low"},"alert.severity":"low" , "x" : 1}\n'
		events 1 z
	} >in.ndjson
	run --separate-stderr es-index -i soar-audit --reject rej.ndjson \
		--when '.alert.severity == "high"' <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(cat rej.ndjson)" "$(printf '%s\n' 'not json' '[1,2]')"
	assert_equal "$(wc -l <<<"$output")" 3
	# The event left out by --when keeps its bytes.
	assert_equal "$(sed -n 2p <<<"$output")" "$(sed -n 4p in.ndjson)"
	assert_equal "$(sent_ids)" '["d1","z1"]'
	[[ $stderr == *"line 2: column 1: "*"rejected"* ]]
	[[ $stderr == *"line 3: "*"rejected"* ]]
}

@test "es-index: a malformed bulk answer fails the batch, not the run" {
	events 2 >in.ndjson
	sim_fault '{"path": "^/soar-audit/_bulk$", "status": 200, "body": "{\"items\":[]}", "count": 1}'
	run --separate-stderr es-index -i soar-audit <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -r .es_index.error.code <<<"$output" | paste -sd' ')" 'malformed malformed'
	assert_equal "$(sim_count path=/soar-audit/_bulk)" 1
}

@test "es-index: --as renames the key; a re-run replaces it" {
	events 1 >in.ndjson
	es-index -i soar-audit --as audit <in.ndjson >once.ndjson
	run --separate-stderr es-index -i soar-audit --as audit <once.ndjson
	assert_success
	assert_equal "$(jq -c 'keys' <<<"$output")" '["alert","audit","big","n"]'
	assert_equal "$(jq -r .audit.result <<<"$output")" created
	[ "$(jq -r .audit.id <<<"$output")" != "$(jq -r .audit.id once.ndjson)" ]
}

@test "es-index: writing to /dev/full exits 3; a closed pipe ends quietly" {
	events 3 >in.ndjson
	run --separate-stderr bash -c 'es-index -i soar-audit <in.ndjson >/dev/full'
	refute_crash
	assert_failure 3
	[[ $stderr == *"standard output: No space left on device"* ]]
	events 3000 >big.ndjson
	run --separate-stderr bash -c 'es-index -i soar-audit --batch 10 <big.ndjson | head -1'
	refute_crash
	assert_success
	assert_equal "$(jq -r .alert.id <<<"$output")" d1
	assert_equal "$stderr" ""
}

@test "es-index: empty input sends nothing and exits 0" {
	run --separate-stderr es-index -i soar-audit </dev/null
	assert_success
	assert_equal "$output" ""
	assert_equal "$(sim_count)" 0
}

@test "es-index: usage and configuration errors exit 2 before reading" {
	run --separate-stderr es-index </dev/null
	assert_failure 2
	[[ $stderr == *"--index is required"* ]]
	run --separate-stderr es-index -i Bad/Name </dev/null
	assert_failure 2
	run --separate-stderr es-index -i _x </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --op update </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --batch 0 </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --batch-bytes 10 </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --flush-interval soon </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --jobs 65 </dev/null
	assert_failure 2
	run --separate-stderr es-index -i x --pipeline p </dev/null
	assert_failure 2
	[[ $stderr == *"--pipeline needs --metrics"* ]]
	run --separate-stderr es-index -i x --id '.a ==' </dev/null
	assert_failure 2
	[[ $stderr == *"--id"* ]]
	run --separate-stderr es-index -i x extra </dev/null
	assert_failure 2
	run --separate-stderr env -u ES_URL es-index -i x </dev/null
	assert_failure 2
	[[ $stderr == *"ES_URL is not set"* ]]
	run --separate-stderr env -u ES_API_KEY es-index -i x </dev/null
	assert_failure 2
	[[ $stderr == *"no Elastic credentials"* ]]
	assert_equal "$(sim_count)" 0
}

@test "es-index: Basic credentials from ES_USER and ES_PASSWORD_FILE" {
	unset ES_API_KEY
	printf changeme >pw
	export ES_USER=elastic ES_PASSWORD_FILE=$PWD/pw
	events 1 >in.ndjson
	run --separate-stderr es-index -i soar-audit <in.ndjson
	assert_success
	assert_equal "$(sim_requests path=/soar-audit/_bulk | jq -r '.[0].headers | to_entries[] |
		select(.key | ascii_downcase == "authorization") | .value')" \
		"Basic $(printf elastic:changeme | base64)"
	[[ $stderr != *changeme* ]]
}

@test "es-index: a reject file that cannot be written stops reading, but every event read is indexed and written" {
	events 3 >in.ndjson
	{ head -2 in.ndjson; echo 'not json'; tail -1 in.ndjson; } >mixed.ndjson
	run --separate-stderr es-index -i soar-audit --reject /dev/full <mixed.ndjson
	refute_crash
	assert_failure 3
	[[ $stderr == *"--reject: No space left on device"* ]]
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(jq -r .es_index.result <<<"$output" | sort -u)" created
}
