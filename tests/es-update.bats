#!/usr/bin/env bats
# es-update: workflow status pushed back to the simulated Kibana detection
# engine (tests/sim/simlib/vendors/elastic.py): batches of signal_ids per
# space, per-event results, version conflicts read back, --when, --dry-run,
# skipped and bad events, and the failure paths.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

APIKEY=c2ltaWQ6c2lta2V5 # base64 of simid:simkey, the simulator's key
STATUS=/api/detection_engine/signals/status
SEARCH=/api/detection_engine/signals/search

setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	sim_reset
	export ES_URL=$SIM_URL ES_API_KEY=$APIKEY
	unset ES_USER ES_PASSWORD ES_API_KEY_FILE KIBANA_PUBLIC_URL
}

# seed JSON: seed alerts through the control route.
seed() {
	_sim_call POST /__elastic/seed "$1" >/dev/null
}

# alerts [SPACE]: the space's alerts as es-fetch writes them (the _source,
# elastic.{id,index}, alert.id), oldest first.  Read with curl, so these
# tests do not depend on es-fetch; the request log is cleared afterwards.
alerts() {
	local prefix=
	[ "${1:-default}" = default ] || prefix=/s/$1
	curl --silent --show-error --fail -X POST -H "Authorization: ApiKey $APIKEY" \
		-H 'kbn-xsrf: true' -H 'Content-Type: application/json' \
		--data-binary '{"size": 1000, "sort": [{"@timestamp": "asc"}]}' \
		"$SIM_URL$prefix$SEARCH" |
		jq -c '.hits.hits[] | ._source + {elastic: {id: ._id, index: ._index},
			alert: {id: ._id}}'
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
}

# stored ID [SPACE]: [workflow_status, workflow_reason] of an alert as the
# simulator holds it.
stored() {
	curl --silent --fail "$SIM_URL/__elastic/alerts/$1?space=${2:-default}" |
		jq -c '[.workflow_status, .workflow_reason]'
}

# requests PATH-REGEX: {method, path, body (parsed)} of each request the
# simulator received on a matching path, one per line.
requests() {
	sim_requests | jq -c --arg p "$1" \
		'.[] | select(.path | test($p)) | {method, path, body: (.body | fromjson? // .)}'
}

# nreq PATH-REGEX: how many such requests came.
nreq() {
	requests "$1" | wc -l
}

# conflict ID...: the next status update touching each id conflicts.
conflict() {
	_sim_call POST /__elastic/conflicts \
		"$(jq -nc '{ids: $ARGS.positional, count: 1}' --args "$@")" >/dev/null
}

# results: the es_update of each output event, compact, one per line.
results() {
	jq -c '.es_update' <<<"$output"
}

id_at() {
	sed -n "${1}p" in.ndjson | jq -r .elastic.id
}

@test "es-update: closes alerts in batches of signal_ids; events in order, only the key added" {
	seed '{"count": 250, "seed": 1, "status": "open"}'
	alerts >in.ndjson
	run --separate-stderr es-update -s closed -r false_positive --jobs 2 <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 250
	assert_equal "$(results | sort -u)" \
		'{"status":"closed","reason":"false_positive","updated":true}'
	assert_equal "$(jq -c 'del(.es_update)' <<<"$output")" "$(cat in.ndjson)"
	# The key is spliced in: every other byte of the event is kept.
	assert_equal "$(head -1 <<<"$output")" \
		"$(head -1 in.ndjson | sed 's/}$//'),\"es_update\":{\"status\":\"closed\",\"reason\":\"false_positive\",\"updated\":true}}"
	# Requests of 100, 100 and 50 ids, each id once, with Kibana's headers.
	assert_equal "$(requests "$STATUS\$" | jq -c '[.method, .path, (.body.signal_ids | length),
		.body.status, .body.reason, (.body | keys)]' | sort)" \
		"$(printf '%s\n' \
			'["POST","/api/detection_engine/signals/status",100,"closed","false_positive",["reason","signal_ids","status"]]' \
			'["POST","/api/detection_engine/signals/status",100,"closed","false_positive",["reason","signal_ids","status"]]' \
			'["POST","/api/detection_engine/signals/status",50,"closed","false_positive",["reason","signal_ids","status"]]')"
	assert_equal "$(requests "$STATUS\$" | jq -r '.body.signal_ids[]' | sort)" \
		"$(jq -r .elastic.id in.ndjson | sort)"
	assert_equal "$(sim_requests | jq -c '[.[].headers | {authorization, "kbn-xsrf",
		"elastic-api-version", "content-type"}] | unique')" \
		"[{\"authorization\":\"ApiKey $APIKEY\",\"kbn-xsrf\":\"true\",\"elastic-api-version\":\"2023-10-31\",\"content-type\":\"application/json\"}]"
	# Nothing was read back: the counts covered every batch.
	assert_equal "$(nreq "$SEARCH")" 0
	assert_equal "$(stored "$(id_at 250)")" '["closed","false_positive"]'
	assert_equal "$(curl -s "$SIM_URL/__elastic/docs?index=.alerts-security.alerts-default" |
		jq -c '[.docs[]._source["kibana.alert.workflow_status"]] | unique')" '["closed"]'
}

@test "es-update: Basic credentials; --status acknowledged sends no reason" {
	seed '{"count": 3, "seed": 2, "status": "open"}'
	alerts >in.ndjson
	unset ES_API_KEY
	export ES_USER=elastic ES_PASSWORD=changeme
	run --separate-stderr es-update --status acknowledged <in.ndjson
	assert_success
	assert_equal "$(results | sort -u)" '{"status":"acknowledged","updated":true}'
	assert_equal "$(requests "$STATUS\$" | jq -c '.body | del(.signal_ids)')" '{"status":"acknowledged"}'
	assert_equal "$(sim_requests | jq -r '.[0].headers.authorization')" \
		"Basic $(printf elastic:changeme | base64)"
	assert_equal "$(stored "$(id_at 2)")" '["acknowledged",null]'
}

@test "es-update: each alert goes to the space of its index; --space overrides" {
	_sim_call POST /__elastic/spaces '{"id": "soc"}' >/dev/null
	seed '{"count": 2, "seed": 3, "status": "open"}'
	seed '{"space": "soc", "count": 2, "seed": 4, "status": "open"}'
	{
		alerts default | head -1
		alerts soc
		alerts default | tail -1
	} >in.ndjson
	# The alias name and 7.x's index name give the space too.
	assert_equal "$(sed -n 2p in.ndjson | jq -r .elastic.index)" \
		.internal.alerts-security.alerts-soc-000001
	run --separate-stderr es-update -s closed -r duplicate <in.ndjson
	assert_success
	assert_equal "$(results | sort -u)" '{"status":"closed","reason":"duplicate","updated":true}'
	assert_equal "$(requests "$STATUS\$" | jq -c '[.path, (.body.signal_ids | length)]' | sort)" \
		"$(printf '%s\n' '["/api/detection_engine/signals/status",2]' \
			'["/s/soc/api/detection_engine/signals/status",2]')"
	assert_equal "$(stored "$(id_at 2)" soc)" '["closed","duplicate"]'
	assert_equal "$(stored "$(id_at 4)")" '["closed","duplicate"]'

	# --space soc sends everything there: the default space's alerts are
	# not found in it.
	sim_requests >/dev/null
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
	jq -c '.elastic.index = ".alerts-security.alerts-soc"' in.ndjson | head -2 >alias.ndjson
	run --separate-stderr es-update -s open --space soc <alias.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.updated // .error.code' | paste -sd' ')" '"not_found" true'
	assert_equal "$(requests "$STATUS\$" | jq -r .path | sort -u)" "/s/soc$STATUS"
	[[ $stderr == *"line 1: alert $(id_at 1): no alert with this id in soc"* ]]
	# --space default: no prefix.
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
	run --separate-stderr es-update -s open --space default <alias.ndjson
	assert_failure 1
	assert_equal "$(results | jq -c '.updated // .error.code' | paste -sd' ')" 'true "not_found"'
	assert_equal "$(requests "$STATUS\$" | jq -r .path | sort -u)" "$STATUS"
	# 7.x index names.
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
	sed -n 2p in.ndjson | jq -c '.elastic.index = ".siem-signals-soc-000002"' >old.ndjson
	run --separate-stderr es-update -s acknowledged <old.ndjson
	assert_success
	assert_equal "$(requests "$STATUS\$" | jq -r .path)" "/s/soc$STATUS"
}

@test "es-update: events without elastic.id are marked skipped; bad ids and indices fail alone" {
	seed '{"count": 2, "seed": 5, "status": "open"}'
	alerts >in.ndjson
	{
		echo '{"alert": {"id": "finding-1"}, "aws": {"finding": {"Id": "x"}}}'
		head -1 in.ndjson
		echo '{"elastic": {"id": 42}}'
		echo '{"elastic": {"id": ""}}'
		head -1 in.ndjson | jq -c '.elastic.index = "logs-endpoint"'
		tail -1 in.ndjson
	} >mixed.ndjson
	run --separate-stderr es-update -s closed <mixed.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.updated // .skipped // .error.code' | paste -sd' ')" \
		'"no elastic.id" true "input" "input" "input" true'
	# The skipped event keeps every byte but for the key.
	assert_equal "$(head -1 <<<"$output")" \
		'{"alert": {"id": "finding-1"}, "aws": {"finding": {"Id": "x"}},"es_update":{"skipped":"no elastic.id"}}'
	[[ $stderr == *"line 3: elastic.id is not an alert id"* ]]
	[[ $stderr == *"line 5: alert $(id_at 1): elastic.index 'logs-endpoint' is not a Kibana alerts index: give --space"* ]]
	assert_equal "$(requests "$STATUS\$" | jq -c '.body.signal_ids | length')" 2
	# Skipped events alone are no failure.
	run --separate-stderr es-update -s closed < <(head -1 mixed.ndjson)
	assert_success
	assert_equal "$(results)" '{"skipped":"no elastic.id"}'
	assert_equal "$(nreq "$STATUS\$")" 1
}

@test "es-update: --when acts on matching events only; the rest pass byte for byte" {
	seed '{"count": 20, "seed": 6, "status": "open"}'
	alerts >in.ndjson
	run --separate-stderr es-update -s closed -r low_severity \
		--when '.["kibana.alert.severity"] == "low"' <in.ndjson
	assert_success
	local want
	want=$(jq -r 'select(.["kibana.alert.severity"] == "low") | .elastic.id' in.ndjson | sort)
	[ -n "$want" ]
	assert_equal "$(requests "$STATUS\$" | jq -r '.body.signal_ids[]' | sort)" "$want"
	assert_equal "$(jq -c 'select(.["kibana.alert.severity"] != "low")' in.ndjson)" \
		"$(grep -v '"es_update"' <<<"$output")"
	assert_equal "$(jq -r 'select(.es_update.updated) | .elastic.id' <<<"$output" | sort)" "$want"
	# A --when that fails at run time fails its event only.
	run --separate-stderr es-update -s closed --when '.alert.id | test(1)' <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -r '.error.code' | sort -u)" jq
}

@test "es-update --dry-run: says what it would send, sends nothing, needs no credentials" {
	seed '{"count": 3, "seed": 7, "status": "open"}'
	alerts >in.ndjson
	unset ES_API_KEY ES_URL
	run --separate-stderr es-update -v --dry-run -s closed -r false_positive --batch 2 <in.ndjson
	assert_success
	assert_equal "$(results | sort -u)" '{"status":"closed","reason":"false_positive","dry_run":true}'
	[[ $stderr == *"dry run: POST $STATUS {\"signal_ids\":[\"$(id_at 1)\",\"$(id_at 2)\"],\"status\":\"closed\",\"reason\":\"false_positive\"}"* ]]
	[[ $stderr == *"dry run: POST $STATUS {\"signal_ids\":[\"$(id_at 3)\"]"* ]]
	assert_equal "$(sim_count)" 0
	assert_equal "$(stored "$(id_at 1)")" '["open",null]'
}

@test "es-update: a version conflict (409) is read back: each event marked by what its alert holds" {
	seed '{"count": 5, "seed": 8, "status": "open", "layout": "mixed"}'
	alerts >in.ndjson
	conflict "$(id_at 2)"
	# The third event names an alert that does not exist.
	jq -c 'if input_line_number == 3 then .elastic.id = "no-such-alert" else . end' \
		in.ndjson >mixed.ndjson
	run --separate-stderr es-update -s acknowledged <mixed.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '[.updated, .verified, .error.code]' | paste -sd' ')" \
		'[true,true,null] [null,null,"conflict"] [null,null,"not_found"] [true,true,null] [true,true,null]'
	assert_equal "$(sed -n 2p <<<"$output" | jq -r .es_update.error.message)" \
		"the alert's status is 'open' after the update (signals status: HTTP 409, a version conflict)"
	# What the events say is what the alerts hold, flat and nested alike.
	assert_equal "$(stored "$(id_at 1)")" '["acknowledged",null]'
	assert_equal "$(stored "$(id_at 2)")" '["open",null]'
	assert_equal "$(stored "$(id_at 4)")" '["acknowledged",null]'
	# One update, one read-back of exactly the batch's ids.
	assert_equal "$(nreq "$STATUS\$")" 1
	assert_equal "$(requests "$SEARCH\$" | jq -c '.body | [.query.ids.values == ($ids | split(" ")), .size]' \
		--arg ids "$(jq -r .elastic.id mixed.ndjson | paste -sd' ')")" '[true,5]'
	[[ $stderr == *"line 2: alert $(id_at 2): the alert's status is 'open'"* ]]
	# A re-run of the failed events replaces the key and succeeds.
	run --separate-stderr es-update -s acknowledged --when '.es_update.error.code == "conflict"' \
		< <(sed -n 2p <<<"$output")
	assert_success
	assert_equal "$(jq -c .es_update <<<"$output")" '{"status":"acknowledged","updated":true}'
	assert_equal "$(grep -o '"es_update"' <<<"$output" | wc -l)" 1
	assert_equal "$(stored "$(id_at 2)")" '["acknowledged",null]'
}

@test "es-update: counts short of the batch are read back; version conflicts marked per event" {
	seed '{"count": 3, "seed": 9, "status": "open"}'
	alerts >in.ndjson
	# Only the first alert gets closed; the answer then counts one update
	# and two conflicts without naming them.
	curl --silent --fail -X POST -H "Authorization: ApiKey $APIKEY" -H 'kbn-xsrf: true' \
		-H 'Content-Type: application/json' \
		--data-binary "{\"signal_ids\": [\"$(id_at 1)\"], \"status\": \"closed\"}" \
		"$SIM_URL$STATUS" >/dev/null
	curl --silent --fail -X DELETE "$SIM_URL/_sim/requests" >/dev/null
	sim_fault "{\"path\": \"signals/status\$\", \"status\": 200, \"count\": 1,
		\"body\": \"{\\\"total\\\":3,\\\"updated\\\":1,\\\"version_conflicts\\\":2,\\\"failures\\\":[]}\"}"
	run --separate-stderr es-update -s closed <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.updated // .error.code' | paste -sd' ')" 'true "conflict" "conflict"'
	assert_equal "$(sed -n 3p <<<"$output" | jq -r .es_update.error.message)" \
		"the alert's status is 'open' after the update (signals status: 1 of 3 updated, 2 version conflicts)"
	assert_equal "$(nreq "$SEARCH\$")" 1
}

@test "es-update: an answer that cannot be read is checked by reading the alerts back" {
	seed '{"count": 2, "seed": 10, "status": "open"}'
	alerts >in.ndjson
	# The simulator answers for the handler: nothing was updated.
	sim_fault '{"path": "signals/status$", "malformed": true, "status": 200}'
	run --separate-stderr es-update -s closed <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.error.code' | paste -sd' ')" '"not_updated" "not_updated"'
	assert_equal "$(head -1 <<<"$output" | jq -r .es_update.error.message)" \
		"the alert's status is 'open' after the update (signals status: an answer without the counts)"
	# A failed read-back leaves the outcome unknown, and says so.
	sim_fault '{"path": "signals/search$", "status": 500, "body": "{\"status_code\":500,\"message\":\"boom\"}"}'
	run --separate-stderr es-update -s closed --retries 0 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '[.error.code, .error.status]' | sort -u)" '["unverified",500]'
	assert_equal "$(head -1 <<<"$output" | jq -r .es_update.error.message)" \
		"signals status: an answer without the counts; reading the alerts back failed: signals search: HTTP 500: boom"
	# So does a read-back answer without hits: never "not_found".
	sim_reset
	seed '{"count": 2, "seed": 10, "status": "open"}'
	sim_fault '{"path": "signals/status$", "status": 409, "body": "{\"message\":\"Response Error\",\"status_code\":409}"}'
	sim_fault '{"path": "signals/search$", "status": 200, "body": "{\"took\":1}"}'
	run --separate-stderr es-update -s closed <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -r '.error.message' | sort -u)" \
		"signals status: HTTP 409, a version conflict; reading the alerts back failed: the answer holds no hits"
}

@test "es-update: refused credentials end the run: exit 3, later batches marked and not sent" {
	seed '{"count": 3, "seed": 11, "status": "open"}'
	alerts >in.ndjson
	export ES_API_KEY=$(printf simid:wrong-s3cret | base64)
	run --separate-stderr es-update -s closed --batch 1 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 3
	# Every event read is written, each with why it was not updated.
	assert_equal "$(results | jq -c '[.error.code, .error.status]' | paste -sd' ')" \
		'["auth",401] ["auth",null] ["auth",null]'
	assert_equal "$(sed -n 2p <<<"$output" | jq -r .es_update.error.message)" \
		'not sent: Kibana refused the credentials'
	assert_equal "$(nreq "$STATUS\$")" 1
	[[ $stderr == *"Kibana refused the credentials (HTTP 401): nothing more is sent"* ]]
	[[ $stderr != *wrong-s3cret* && $stderr != *"$ES_API_KEY"* ]]
	assert_equal "$(stored "$(id_at 1)")" '["open",null]'
	# 403 (no privilege to update alerts) is the same.
	sim_fault '{"path": "signals/status$", "status": 403, "body": "{\"status_code\":403,\"message\":\"missing privileges\"}"}'
	export ES_API_KEY=$APIKEY
	run --separate-stderr es-update -s closed --batch 2 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 3
	assert_equal "$(results | jq -c '.error.code' | sort -u)" '"auth"'
	assert_equal "$(head -1 <<<"$output" | jq -c '.es_update.error | [.status, .message]')" \
		'[403,"signals status: HTTP 403: missing privileges"]'
}

@test "es-update: a 4xx on one batch fails its events; the other batches are updated" {
	seed '{"count": 4, "seed": 12, "status": "open"}'
	alerts >in.ndjson
	sim_fault '{"path": "signals/status$", "status": 400, "count": 1, "skip": 1,
		"body": "{\"status_code\":400,\"message\":\"[request body]: reason: Invalid enum value\"}"}'
	run --separate-stderr es-update -s closed -r false_positive --batch 2 --jobs 1 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.updated // [.error.code, .error.status, .error.message]' | paste -sd' ')" \
		'true true ["http",400,"signals status: HTTP 400: [request body]: reason: Invalid enum value"] ["http",400,"signals status: HTTP 400: [request body]: reason: Invalid enum value"]'
	assert_equal "$(nreq "$STATUS\$")" 2
	assert_equal "$(stored "$(id_at 1)")" '["closed","false_positive"]'
	assert_equal "$(stored "$(id_at 3)")" '["open",null]'
	[[ $stderr == *"line 3: alert $(id_at 3): signals status: HTTP 400"* ]]
}

@test "es-update: 503 is retried; retries used up fail the batch with the attempts" {
	seed '{"count": 2, "seed": 13, "status": "open"}'
	alerts >in.ndjson
	sim_fault '{"path": "signals/status$", "status": 503, "count": 2}'
	run --separate-stderr es-update -s closed --retries 2 <in.ndjson
	assert_success
	assert_equal "$(results | sort -u)" '{"status":"closed","updated":true}'
	assert_equal "$(nreq "$STATUS\$")" 3
	sim_reset
	seed '{"count": 2, "seed": 13, "status": "open"}'
	sim_fault '{"path": "signals/status$", "status": 503}'
	run --separate-stderr es-update -s closed --retries 1 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.error | [.code, .status, .attempts]' | sort -u)" '["http",503,2]'
	assert_equal "$(nreq "$STATUS\$")" 2
}

@test "es-update: a connection refused fails every event with a network error" {
	seed '{"count": 2, "seed": 14}'
	alerts >in.ndjson
	export ES_URL=http://127.0.0.1:9
	run --separate-stderr es-update -s closed --retries 0 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(results | jq -c '.error.code' | sort -u)" '"network"'
	assert_equal "$(wc -l <<<"$output")" 2
}

@test "es-update: an alert twice goes once; batches in flight keep the input order" {
	seed '{"count": 9, "seed": 15, "status": "open"}'
	alerts >in.ndjson
	{
		cat in.ndjson
		head -1 in.ndjson
	} >twice.ndjson
	# The first request answers last.
	sim_fault '{"path": "signals/status$", "latency_ms": 400, "count": 1}'
	run --separate-stderr es-update -s closed --batch 3 --jobs 4 <twice.ndjson
	assert_success
	assert_equal "$(jq -c 'del(.es_update)' <<<"$output")" "$(cat twice.ndjson)"
	assert_equal "$(results | sort -u)" '{"status":"closed","updated":true}'
	assert_equal "$(requests "$STATUS\$" | jq -r '.body.signal_ids[]' | sort | uniq -d)" ""
	assert_equal "$(nreq "$STATUS\$")" 3
	# Requests overlapped: all were received before the slow one answered.
	assert_equal "$(sim_requests | jq '[.[].time] | max - min < 0.3')" true
}

@test "es-update: --as renames the key; a re-run replaces its own key" {
	seed '{"count": 1, "seed": 16, "status": "open"}'
	alerts >in.ndjson
	run --separate-stderr es-update -s closed --as elastic_status <in.ndjson
	assert_success
	assert_equal "$(jq -c .elastic_status <<<"$output")" '{"status":"closed","updated":true}'
	assert_equal "$(jq 'has("es_update")' <<<"$output")" false
	printf '%s\n' "$output" >once.ndjson
	run --separate-stderr es-update -s open --as elastic_status <once.ndjson
	assert_success
	assert_equal "$(grep -o '"elastic_status"' <<<"$output" | wc -l)" 1
	assert_equal "$(jq -c .elastic_status <<<"$output")" '{"status":"open","updated":true}'
}

@test "es-update: lines that are not objects are rejected; the rest is updated" {
	seed '{"count": 2, "seed": 17, "status": "open"}'
	alerts >in.ndjson
	{
		head -1 in.ndjson
		echo 'not json'
		echo '[1]'
		echo
		tail -1 in.ndjson
	} >mixed.ndjson
	run --separate-stderr es-update -s closed --reject rej.ndjson <mixed.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(results | sort -u)" '{"status":"closed","updated":true}'
	assert_equal "$(cat rej.ndjson)" "$(printf 'not json\n[1]')"
	[[ $stderr == *"line 2: column 1:"*"rejected"* ]]
	[[ $stderr == *"line 3: column 1:"*"rejected"* ]]
}

@test "es-update: empty input exits 0 without a request" {
	run --separate-stderr es-update -s closed </dev/null
	assert_success
	assert_output ''
	assert_equal "$(sim_count)" 0
}

@test "es-update: writing to /dev/full exits 3; a closed pipe ends quietly" {
	seed '{"count": 300, "seed": 18, "status": "open"}'
	alerts >in.ndjson
	run --separate-stderr bash -c 'es-update -s closed <in.ndjson >/dev/full'
	refute_crash
	assert_failure 3
	[[ $stderr == *"standard output: No space left on device"* ]]
	run --separate-stderr bash -c 'es-update -s closed --batch 10 --jobs 1 <in.ndjson | head -1; exit ${PIPESTATUS[0]}'
	refute_crash
	[ "$status" -eq 0 ] || [ "$status" -eq 141 ]
	assert_equal "$(jq -c .es_update <<<"$output")" '{"status":"closed","updated":true}'
	[ -z "$stderr" ]
}

@test "es-update: usage and configuration errors exit 2 before reading" {
	local bad
	for bad in '' '-s in-progress' '-s CLOSED' '-s closed -r bogus' \
		'-s acknowledged -r false_positive' '-s closed --space Soc' \
		'-s closed --space a/b' '-s closed --batch 0' '-s closed --batch 1001' \
		'-s closed --jobs 0' '-s closed --jobs 17' '-s closed --as' \
		'-s closed --when .a==' '-s closed extra'; do
		# shellcheck disable=SC2086 # the words are the arguments
		run --separate-stderr es-update $bad </dev/null
		refute_crash
		[ "$status" -eq 2 ] || fail "es-update $bad: status $status: $stderr"
		[ -z "$output" ] || fail "es-update $bad: wrote $output"
	done
	run --separate-stderr es-update -s closed -r bogus </dev/null
	[[ $stderr == *"--reason: false_positive, issue_resolved,"* ]]
	run --separate-stderr es-update </dev/null
	[[ $stderr == *"give --status open, acknowledged or closed"* ]]
	# Configuration: no ES_URL, a bad one, no credentials, an unreadable
	# key file; standard input a directory.
	echo '{"elastic": {"id": "x"}}' >one.ndjson
	run --separate-stderr env -u ES_URL es-update -s closed <one.ndjson
	assert_failure 2
	[[ $stderr == *"ES_URL is not set"* ]]
	run --separate-stderr env ES_URL=kibana:5601 es-update -s closed <one.ndjson
	assert_failure 2
	run --separate-stderr env -u ES_API_KEY es-update -s closed <one.ndjson
	assert_failure 2
	[[ $stderr == *"no Elastic credentials"* ]]
	run --separate-stderr env -u ES_API_KEY ES_API_KEY_FILE=/nonexistent es-update -s closed <one.ndjson
	assert_failure 2
	[[ $stderr == *ES_API_KEY_FILE* ]]
	run --separate-stderr es-update -s closed <.
	assert_failure 2
	assert_output ''
	assert_equal "$(sim_count)" 0
}

@test "es-update: a reject file that cannot be written stops reading, but every event read is sent and written" {
	seed '{"count": 4, "seed": 23, "status": "open"}'
	alerts >in.ndjson
	{ head -2 in.ndjson; echo 'not json'; tail -2 in.ndjson; } >mixed.ndjson
	run --separate-stderr es-update -s acknowledged --reject /dev/full <mixed.ndjson
	refute_crash
	assert_failure 3
	[[ $stderr == *"--reject /dev/full: No space left on device"* ]]
	# The two events before the bad line were updated and written.
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(results | sort -u)" '{"status":"acknowledged","updated":true}'
}
