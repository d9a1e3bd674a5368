#!/usr/bin/env bats
# Tests of the simulated Elastic Security (Kibana detection engine) and
# Elasticsearch APIs (tests/sim/simlib/vendors/elastic*.py). es-fetch,
# es-update and es-index rely on these behaviours, so they are pinned here;
# elastic.py's docstring is the reference for every route and setting used.

load helpers/common
load helpers/sim

APIKEY="ApiKey $(printf simid:simkey | base64)"
ALERTS=.alerts-security.alerts-default
BACKING=.internal.alerts-security.alerts-default-000001

setup() {
	sim_start
}

teardown() {
	sim_stop
}

# _call METHOD PATH BODY [CURL-ARGS...]: one request; prints {"status",
# "body"} (body parsed when it is JSON) as one line.
_call() {
	local method=$1 path=$2 data=$3 out code
	shift 3
	out=$(curl --silent -X "$method" ${data:+--data-binary "$data"} "$@" \
		--write-out '\n%{http_code}' "$SIM_URL$path") || return 1
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	# The body goes through stdin: a page of hits can be longer than one
	# command-line argument may be.
	printf '%s' "$out" | jq -Rsc --argjson s "$code" \
		'{status: $s, body: (. as $b | try fromjson catch $b)}'
}

# es METHOD PATH [BODY] [CURL-ARGS...]: an Elasticsearch request with the
# default API key.
es() {
	local method=$1 path=$2 data=${3-}
	shift 2
	[ $# -gt 0 ] && shift
	_call "$method" "$path" "$data" -H "Authorization: $APIKEY" \
		-H 'Content-Type: application/json' "$@"
}

# kb PATH BODY [CURL-ARGS...]: a Kibana POST with the default API key and
# kbn-xsrf.
kb() {
	local path=$1 data=$2
	shift 2
	_call POST "$path" "$data" -H "Authorization: $APIKEY" \
		-H 'kbn-xsrf: true' -H 'Content-Type: application/json' "$@"
}

# bulk PATH FILE [CURL-ARGS...]: a _bulk request with an NDJSON body file.
bulk() {
	local path=$1 file=$2 out code
	shift 2
	out=$(curl --silent -X POST -H "Authorization: $APIKEY" \
		-H 'Content-Type: application/x-ndjson' --data-binary "@$file" "$@" \
		--write-out '\n%{http_code}' "$SIM_URL$path") || return 1
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	# The body goes through stdin: a page of hits can be longer than one
	# command-line argument may be.
	printf '%s' "$out" | jq -Rsc --argjson s "$code" \
		'{status: $s, body: (. as $b | try fromjson catch $b)}'
}

# seed JSON: seed alerts through the control route.
seed() {
	_sim_call POST /__elastic/seed "$1" >/dev/null
}

# docs TARGET: the stored documents of TARGET (control route).
docs() {
	curl --silent --show-error --fail "$SIM_URL/__elastic/docs?index=$1"
}

# pit_scan SIZE [SORT]: open a PIT on the alerts, page with search_after
# until a page is empty, close the PIT; prints {"pages", "ids", "statuses",
# "freed"}. Ids go through a file: 100,000 of them are too long for one
# command-line argument.
pit_scan() {
	local size=$1 sort=${2:-'[{"@timestamp": "asc"}]'} pit after="" pages=0
	local out dir
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/scan.XXXXXX")
	: >"$dir/ids"
	: >"$dir/statuses"
	pit=$(es POST "/$ALERTS/_pit?keep_alive=1m" | jq -r .body.id)
	while :; do
		printf '{"size": %s, "pit": {"id": "%s", "keep_alive": "1m"}, "sort": %s, "_source": ["kibana.alert.uuid"]%s}' \
			"$size" "$pit" "$sort" "${after:+, \"search_after\": $after}" >"$dir/body"
		curl --silent --output "$dir/page" --write-out '%{http_code}\n' -X POST \
			-H "Authorization: $APIKEY" -H 'Content-Type: application/json' \
			--data-binary "@$dir/body" "$SIM_URL/_search" >>"$dir/statuses"
		# One jq pass per page: the ids, then the last hit's sort values.
		jq -r '(.hits.hits[]._id), (.hits.hits[-1].sort // empty | "after " + tojson)' \
			"$dir/page" >"$dir/out"
		after=$(sed -n 's/^after //p' "$dir/out")
		[ -n "$after" ] || break
		pages=$((pages + 1))
		grep -v '^after ' "$dir/out" >>"$dir/ids"
	done
	out=$(es DELETE /_pit "$(jq -nc --arg pit "$pit" '{id: $pit}')")
	jq -nc --argjson p "$pages" --rawfile i "$dir/ids" --rawfile s "$dir/statuses" \
		--argjson f "$(jq .body.num_freed <<<"$out")" \
		'{pages: $p, ids: ($i | split("\n") | map(select(length > 0))),
		  statuses: ($s | split("\n") | map(select(length > 0) | tonumber)),
		  freed: $f}'
}

# FLAT: a jq definition turning a document into {"dotted.path": [values]},
# whatever mix of flat keys, objects and arrays it uses.
FLAT='def flat: [paths(scalars) as $p | {key: ($p | map(select(type == "string")) | join(".")), value: getpath($p)}]
	| group_by(.key) | map({key: .[0].key, value: map(.value)}) | from_entries;'

# --- authentication -------------------------------------------------------------

@test "sim elastic: ES takes the API key and Basic, answers 401 security_exception otherwise" {
	run es POST "/$ALERTS/_search" '{"size": 0}'
	jq -e '.status == 200 and .body.hits.total.value == 20' <<<"$output"
	# The alerts indices are hidden: a search of everything leaves them out.
	run es POST /_search '{"size": 0}'
	jq -e '.status == 200 and .body.hits.total.value == 0' <<<"$output"
	run _call POST "/$ALERTS/_search?ignore_unavailable=true" '' -u elastic:changeme
	jq -e '.status == 200' <<<"$output"
	run _call POST /_search ''
	jq -e '.status == 401 and .body.status == 401
		and .body.error.type == "security_exception"
		and .body.error.reason == "missing authentication credentials for REST request [/_search]"
		and .body.error.root_cause[0].type == "security_exception"
		and (.body.error.header["WWW-Authenticate"] | index("ApiKey"))' <<<"$output"
	run _call POST /_search '' -u elastic:wrong
	jq -e '.status == 401 and .body.error.reason == "unable to authenticate user [elastic] for REST request [/_search]"' <<<"$output"
	run _call POST /_search '' -H "Authorization: ApiKey $(printf simid:nope | base64)"
	jq -e '.status == 401 and .body.error.type == "security_exception"' <<<"$output"
	run curl --silent --include "$SIM_URL/_search"
	assert_output --partial 'WWW-Authenticate: Basic realm="security"'
	assert_output --partial 'X-elastic-product: Elasticsearch'
}

@test "sim elastic: Kibana answers 401 in the platform shape and accepts configured credentials" {
	run _call POST /api/detection_engine/signals/search '{"size": 1}' -H 'kbn-xsrf: true'
	jq -e '.status == 401 and .body == {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}' <<<"$output"
	run _call POST /api/detection_engine/signals/search '{"size": 1}' -H 'kbn-xsrf: true' -u elastic:nope
	jq -e '.status == 401 and .body.statusCode == 401 and (.body.message | test("unable to authenticate user \\[elastic\\]"))' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 200 and (.body.hits.hits | length) == 1' <<<"$output"
	# New credentials replace the defaults on both surfaces.
	_sim_call POST /__elastic/credentials '{"api_keys": [{"id": "k2", "key": "s2"}], "users": []}' >/dev/null
	run kb /api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 401' <<<"$output"
	run es POST /_search '{}'
	jq -e '.status == 401' <<<"$output"
	run _call POST /_search '{}' -H "Authorization: apikey $(printf k2:s2 | base64)" -H 'Content-Type: application/json'
	jq -e '.status == 200' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/credentials"
	jq -e --arg e "$(printf k2:s2 | base64)" '.api_keys[0].encoded == $e' <<<"$output"
}

# --- Kibana routes --------------------------------------------------------------

@test "sim elastic: a Kibana POST without kbn-xsrf is API.md's exact 400" {
	run curl --silent -X POST -H "Authorization: $APIKEY" -H 'Content-Type: application/json' \
		--data-binary '{"size": 1}' "$SIM_URL/api/detection_engine/signals/search"
	assert_output '{"statusCode":400,"error":"Bad Request","message":"Request must contain a kbn-xsrf header."}'
	# kbn-version passes too.
	run _call POST /api/detection_engine/signals/search '{"size": 1}' -H "Authorization: $APIKEY" \
		-H 'kbn-version: 8.15.0' -H 'Content-Type: application/json'
	jq -e '.status == 200' <<<"$output"
	# elastic-api-version: optional unless required by the setting.
	run kb /api/detection_engine/signals/search '{"size": 1}' -H 'elastic-api-version: 2023-10-31'
	jq -e '.status == 200' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 1}' -H 'elastic-api-version: 1999-01-01'
	jq -e '.status == 400 and .body.statusCode == 400' <<<"$output"
	sim_set elastic_require_api_version true
	run kb /api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 400 and .body.message == "Please specify a version via elastic-api-version header"' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 1}' -H 'elastic-api-version: 2023-10-31'
	jq -e '.status == 200' <<<"$output"
}

@test "sim elastic: signals search drops from and search_after, and refuses a body without accepted keys" {
	local plain shifted
	plain=$(kb /api/detection_engine/signals/search '{"size": 5, "sort": [{"@timestamp": "asc"}]}' |
		jq -c '[.body.hits.hits[]._id]')
	shifted=$(kb /api/detection_engine/signals/search \
		'{"size": 5, "sort": [{"@timestamp": "asc"}], "from": 5, "search_after": [1795305605000]}' |
		jq -c '[.body.hits.hits[]._id]')
	[ "$plain" = "$shifted" ] || fail "from/search_after changed the page: $plain vs $shifted"
	jq -e 'length == 5' <<<"$plain"
	# Directly against ES the same from does move the page.
	run es POST "/$ALERTS/_search" '{"size": 5, "sort": [{"@timestamp": "asc"}], "from": 5}'
	jq -e --argjson p "$plain" '[.body.hits.hits[]._id] - $p | length == 5' <<<"$output"
	run kb /api/detection_engine/signals/search '{}'
	jq -e '.status == 400 and .body == {"message": "\"value\" must have at least 1 children", "status_code": 400}' <<<"$output"
	run kb /api/detection_engine/signals/search '{"from": 3, "search_after": [1]}'
	jq -e '.status == 400 and .body.message == "\"value\" must have at least 1 children"' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": -1}'
	jq -e '.status == 400 and .body.statusCode == 400' <<<"$output"
	# The answer is the raw ES search response.
	run kb /api/detection_engine/signals/search '{"size": 1, "track_total_hits": true}'
	jq -e --arg b "$BACKING" '.body | has("took") and has("_shards") and .hits.total == {"value": 20, "relation": "eq"}
		and .hits.hits[0]._index == $b' <<<"$output"
}

@test "sim elastic: elastic_kibana_legacy drops sort; ES errors come back in the Security Solution shape" {
	local asc legacy
	asc=$(kb /api/detection_engine/signals/search '{"size": 3, "sort": [{"@timestamp": "desc"}]}' |
		jq -c '[.body.hits.hits[]._id]')
	sim_set elastic_kibana_legacy true
	legacy=$(kb /api/detection_engine/signals/search '{"size": 3, "sort": [{"@timestamp": "desc"}]}' |
		jq -c '[.body.hits.hits[]._id]')
	[ "$asc" != "$legacy" ] || fail "the legacy search still sorted"
	run kb /api/detection_engine/signals/search '{"query": {"nosuch": {}}}'
	jq -e '.status == 400 and .body.status_code == 400 and (.body.message | startswith("parsing_exception: unknown query [nosuch]"))' <<<"$output"
}

@test "sim elastic: spaces have their own alerts; an unknown space is 404" {
	seed '{"space": "soc", "count": 7, "seed": 2}'
	run kb /s/soc/api/detection_engine/signals/search '{"size": 100}'
	jq -e '.status == 200 and (.body.hits.hits | length) == 7
		and all(.body.hits.hits[]; ._index == ".internal.alerts-security.alerts-soc-000001"
			and ._source["kibana.space_ids"] == ["soc"])' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 100}'
	jq -e '(.body.hits.hits | length) == 20' <<<"$output"
	run kb /s/nope/api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 404 and .body == {"statusCode": 404, "error": "Not Found", "message": "Saved object [space/nope] not found"}' <<<"$output"
	_sim_call POST /__elastic/spaces '{"id": "empty"}' >/dev/null
	run kb /s/empty/api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 200 and .body.hits.hits == []' <<<"$output"
	run es POST /.alerts-security.alerts-soc/_search '{"size": 0}'
	jq -e '.body.hits.total.value == 7' <<<"$output"
	run _call GET /s/soc/api/detection_engine/index '' -H "Authorization: $APIKEY"
	jq -e '.status == 200 and .body.name == ".alerts-security.alerts-soc"' <<<"$output"
}

@test "sim elastic: alerts given to the control route are stored as they are and searchable" {
	run curl --silent -X POST --data-binary '{"space": "soc", "alerts": [
		{"@timestamp": "2026-11-22T05:00:00.000Z", "kibana": {"alert": {"uuid": "custom-1",
			"workflow_status": "open", "rule": {"name": "Custom Rule"}}}, "threat": {"tactic": "TA0001"}},
		{"_id": "custom-2", "@timestamp": "2026-11-22T05:00:01.000Z", "kibana.alert.workflow_status": "closed"}]}' \
		"$SIM_URL/__elastic/alerts"
	jq -e '.ids == ["custom-1", "custom-2"]' <<<"$output"
	run kb /s/soc/api/detection_engine/signals/search '{"query": {"term": {"threat.tactic": "TA0001"}}}'
	jq -e '[.body.hits.hits[]._id] == ["custom-1"] and .body.hits.hits[0]._source.kibana.alert.rule.name == "Custom Rule"' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/custom-2?space=soc"
	jq -e '.workflow_status == "closed" and (._source | has("_id") | not)' <<<"$output"
	# A value that does not fit the mapping is refused, as _bulk would.
	run curl --silent -X POST --write-out '\n%{http_code}' --data-binary \
		'{"space": "soc", "alerts": [{"@timestamp": "not a date"}]}' "$SIM_URL/__elastic/alerts"
	assert_line --index 1 400
}

@test "sim elastic: status by ids writes workflow fields flat or nested, as the alert has them" {
	seed '{"count": 6, "seed": 4, "layout": "mixed", "status": "open"}'
	local ids
	ids=$(es POST "/$ALERTS/_search" '{"size": 2, "sort": ["@timestamp"]}' | jq -c '[.body.hits.hits[]._id]')
	run kb /api/detection_engine/signals/status \
		"$(jq -nc --argjson i "$ids" '{signal_ids: $i, status: "closed", reason: "false_positive"}')"
	jq -e '.status == 200 and .body.total == 2 and .body.updated == 2 and .body.version_conflicts == 0
		and .body.failures == [] and .body.requests_per_second == -1 and .body.batches == 1' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$(jq -r '.[0]' <<<"$ids")"
	jq -e '.workflow_status == "closed" and .workflow_reason == "false_positive" and .workflow_user == "simid"
		and ._source["kibana.alert.workflow_status"] == "closed" and (._source | has("kibana") | not)' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$(jq -r '.[1]' <<<"$ids")"
	jq -e '.workflow_status == "closed" and ._source.kibana.alert.workflow_status == "closed"
		and ._source.kibana.alert.workflow_reason == "false_positive"
		and (._source | has("kibana.alert.workflow_status") | not)' <<<"$output"
	# The others are untouched.
	run kb /api/detection_engine/signals/search '{"size": 0, "aggs": {"s": {"terms": {"field": "kibana.alert.workflow_status"}}}}'
	jq -e '.body.aggregations.s.buckets == [{"key": "open", "doc_count": 4}, {"key": "closed", "doc_count": 2}]' <<<"$output"
}

@test "sim elastic: status by query filters, validates reason and status, counts nothing twice" {
	seed '{"count": 30, "seed": 5, "status": "open"}'
	local high
	high=$(es POST "/$ALERTS/_search" '{"size": 100, "query": {"terms": {"kibana.alert.severity": ["high", "critical"]}}}' |
		jq '.body.hits.hits | length')
	[ "$high" -gt 0 ] && [ "$high" -lt 30 ] || fail "the seed has $high high alerts"
	run kb /api/detection_engine/signals/status \
		'{"query": {"terms": {"kibana.alert.severity": ["high", "critical"]}}, "status": "acknowledged"}'
	jq -e --argjson n "$high" '.status == 200 and .body.total == $n and .body.updated == $n' <<<"$output"
	run es POST "/$ALERTS/_count" '{"query": {"term": {"kibana.alert.workflow_status": "acknowledged"}}}'
	jq -e --argjson n "$high" '.body.count == $n' <<<"$output"
	run kb /api/detection_engine/signals/status '{"signal_ids": ["x"], "status": "closed", "reason": "bogus"}'
	jq -e '.status == 400 and .body.statusCode == 400 and (.body.message | test("reason"))' <<<"$output"
	run kb /api/detection_engine/signals/status '{"signal_ids": ["x"], "status": "done"}'
	jq -e '.status == 400 and (.body.message | test("status"))' <<<"$output"
	run kb /api/detection_engine/signals/status '{"signal_ids": [], "status": "closed"}'
	jq -e '.status == 400' <<<"$output"
	run kb /api/detection_engine/signals/status '{"status": "closed"}'
	jq -e '.status == 400' <<<"$output"
	run kb /api/detection_engine/signals/status '{"query": {"match_all": {}}, "status": "closed", "conflicts": "maybe"}'
	jq -e '.status == 400' <<<"$output"
	run kb /api/detection_engine/signals/status '{"signal_ids": ["no-such-alert"], "status": "closed"}'
	jq -e '.status == 200 and .body.total == 0 and .body.updated == 0' <<<"$output"
}

@test "sim elastic: injected version conflicts: proceed counts them, abort answers 409" {
	seed '{"count": 10, "seed": 6, "status": "open"}'
	local ids
	ids=$(es POST "/$ALERTS/_search" '{"size": 2, "sort": ["@timestamp"]}' | jq -c '[.body.hits.hits[]._id]')
	_sim_call POST /__elastic/conflicts "$(jq -nc --argjson i "$ids" '{ids: $i, count: 1}')" >/dev/null
	run kb /api/detection_engine/signals/status '{"query": {"match_all": {}}, "status": "closed", "conflicts": "proceed"}'
	jq -e '.status == 200 and .body.total == 10 and .body.updated == 8 and .body.version_conflicts == 2' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$(jq -r '.[0]' <<<"$ids")"
	jq -e '.workflow_status == "open"' <<<"$output"
	# The conflicts were used up: a retry closes them.
	run kb /api/detection_engine/signals/status "$(jq -nc --argjson i "$ids" '{signal_ids: $i, status: "closed"}')"
	jq -e '.status == 200 and .body.updated == 2' <<<"$output"
	_sim_call POST /__elastic/conflicts "$(jq -nc --argjson i "$ids" '{ids: [$i[0]], count: 1}')" >/dev/null
	run kb /api/detection_engine/signals/status '{"query": {"match_all": {}}, "status": "acknowledged"}'
	jq -e '.status == 409 and .body == {"message": "Response Error", "status_code": 409}' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$(jq -r '.[0]' <<<"$ids")"
	jq -e '.workflow_status == "closed"' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$(jq -r '.[1]' <<<"$ids")"
	jq -e '.workflow_status == "acknowledged"' <<<"$output"
}

# --- Elasticsearch search ---------------------------------------------------------

@test "sim elastic: a PIT scan through 1,200 equal timestamps returns every alert once and closes" {
	seed '{"count": 3000, "seed": 8, "equal_timestamps": 1200, "equal_at": 900}'
	run curl --silent "$SIM_URL/__elastic/docs?index=$ALERTS"
	jq -e '[.docs[]._source["@timestamp"]] | group_by(.) | map(length) | max == 1200' <<<"$output"
	jq -c '[.docs[]._id] | sort' <<<"$output" >"$BATS_TEST_TMPDIR/all"
	pit_scan 500 >"$BATS_TEST_TMPDIR/scan"
	jq -e '.pages == 6 and (.statuses | unique) == [200] and (.ids | length) == 3000
		and (.ids | unique | length) == 3000 and .freed == 1' "$BATS_TEST_TMPDIR/scan"
	[ "$(jq -c '.ids | sort' "$BATS_TEST_TMPDIR/scan")" = "$(cat "$BATS_TEST_TMPDIR/all")" ] ||
		fail "the scan saw other alerts than the index holds"
	run curl --silent "$SIM_URL/__elastic/pits"
	assert_output '[]'
	# Descending works the same way.
	run pit_scan 700 '[{"@timestamp": {"order": "desc"}}]'
	jq -e '(.ids | length) == 3000 and (.ids | unique | length) == 3000' <<<"$output"
}

@test "sim elastic: search_after on @timestamp alone, without PIT, skips alerts sharing a timestamp" {
	seed '{"count": 300, "seed": 8, "equal_timestamps": 150, "equal_at": 50}'
	local after=null seen=0 out n
	while :; do
		out=$(es POST "/$ALERTS/_search" "$(jq -nc --argjson a "$after" \
			'{size: 100, sort: [{"@timestamp": "asc"}], _source: false} + (if $a == null then {} else {search_after: $a} end)')")
		n=$(jq '.body.hits.hits | length' <<<"$out")
		[ "$n" -gt 0 ] || break
		seen=$((seen + n))
		after=$(jq -c '.body.hits.hits[-1].sort' <<<"$out")
	done
	# The first page ends inside the block of 150; the rest of it is skipped.
	[ "$seen" -lt 300 ] || fail "no alert was skipped"
	[ "$seen" -eq 200 ] || fail "saw $seen alerts"
	# With the _shard_doc tiebreaker a PIT adds, nothing is skipped.
	run pit_scan 100
	jq -e '(.ids | unique | length) == 300' <<<"$output"
}

@test "sim elastic: a PIT sees the alerts as they were; expired and unknown PITs are 404" {
	seed '{"count": 50, "seed": 9}'
	local pit body
	pit=$(es POST "/$ALERTS/_pit?keep_alive=1m" | jq -r .body.id)
	body=$(jq -nc --arg p "$pit" '{size: 100, pit: {id: $p}, track_total_hits: true}')
	_sim_call POST /__elastic/late '{"timestamp": "2026-11-21T00:00:00.000Z", "count": 3}' >/dev/null
	run es POST /_search "$body"
	jq -e --arg p "$pit" '.status == 200 and .body.pit_id == $p and .body.hits.total.value == 50
		and all(.body.hits.hits[]; (.sort | length) == 2)' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 0, "track_total_hits": true}'
	jq -e '.body.hits.total.value == 53' <<<"$output"
	# The index may not be named with a PIT.
	run es POST "/$ALERTS/_search" "$body"
	jq -e '.status == 400 and .body.error.type == "action_request_validation_exception"
		and (.body.error.reason | contains("[indices] cannot be used with point in time"))' <<<"$output"
	_sim_call POST /__elastic/pits/expire '{}' >/dev/null
	run es POST /_search "$body"
	jq -e '.status == 404 and .body.status == 404 and .body.error.type == "search_phase_execution_exception"
		and .body.error.root_cause[0].type == "search_context_missing_exception"
		and (.body.error.root_cause[0].reason | startswith("No search context found for id ["))' <<<"$output"
	run es POST /_search '{"pit": {"id": "bm8tc3VjaC1waXQ="}}'
	jq -e '.status == 404 and .body.error.root_cause[0].type == "search_context_missing_exception"' <<<"$output"
	run es DELETE /_pit "$(jq -nc --arg p "$pit" '{id: $p}')"
	jq -e '.status == 200 and .body == {"succeeded": true, "num_freed": 0}' <<<"$output"
	run es POST "/$ALERTS/_pit"
	jq -e '.status == 400' <<<"$output"
}

@test "sim elastic: from + size over 10,000 is ES's result window error; search_after refuses from" {
	run es POST "/$ALERTS/_search" '{"from": 9995, "size": 10}'
	jq -e '.status == 400 and .body.error.type == "search_phase_execution_exception"
		and .body.error.root_cause[0].type == "illegal_argument_exception"
		and (.body.error.root_cause[0].reason | startswith("Result window is too large, from + size must be less than or equal to: [10000] but was [10005]."))' <<<"$output"
	run es POST "/$ALERTS/_search" '{"from": 9990, "size": 10}'
	jq -e '.status == 200' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 10001}'
	jq -e '.status == 400 and (.body.message | startswith("search_phase_execution_exception"))' <<<"$output"
	sim_set elastic_max_result_window 5
	run es POST "/$ALERTS/_search" '{"size": 6}'
	jq -e '.status == 400' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 2, "from": 2, "sort": ["@timestamp"], "search_after": [1]}'
	jq -e '.status == 400 and .body.error.reason == "Validation Failed: 1: [from] parameter must be set to 0 when [search_after] is used;"' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 2, "sort": ["@timestamp"], "search_after": [1, 2]}'
	jq -e '.status == 400 and .body.error.root_cause[0].reason == "search_after has 2 value(s) but sort has 1."' <<<"$output"
}

@test "sim elastic: request errors: unknown keys and queries, unmapped sorts, missing indices" {
	run es POST "/$ALERTS/_search" '{"sise": 3}'
	jq -e '.status == 400 and .body.error.type == "parsing_exception"
		and .body.error.reason == "Unknown key for a VALUE_NUMBER in [sise]."' <<<"$output"
	run es POST "/$ALERTS/_search" '{"query": {"bool": {"filter": [{"termz": {"a": 1}}]}}}'
	jq -e '.status == 400 and .body.error.reason == "unknown query [termz]"
		and .body.error.caused_by.type == "named_object_not_found_exception"' <<<"$output"
	run es POST "/$ALERTS/_search" '{"query": {"query_string": {"query": "x"}}}'
	jq -e '.status == 400 and (.body.error.reason | contains("not supported by the soarutils simulator"))' <<<"$output"
	run es POST "/$ALERTS/_search" '{"sort": ["no.such.field"]}'
	jq -e '.status == 400 and .body.error.root_cause[0].reason == "No mapping found for [no.such.field] in order to sort on"' <<<"$output"
	run es POST "/$ALERTS/_search" '{"sort": [{"no.such.field": {"unmapped_type": "long"}}], "size": 1}'
	jq -e '.status == 200 and .body.hits.hits[0].sort == [9223372036854775807]' <<<"$output"
	run es POST /no-such-index/_search '{}'
	jq -e '.status == 404 and .body.error.type == "index_not_found_exception" and .body.error.index == "no-such-index"' <<<"$output"
	run es POST "/no-such-index/_search?ignore_unavailable=true" '{}'
	jq -e '.status == 200 and .body.hits.hits == []' <<<"$output"
	run es POST "/nothing-*/_search" '{}'
	jq -e '.status == 200' <<<"$output"
	run _call POST "/$ALERTS/_search" '{}' -H "Authorization: $APIKEY"
	jq -e '.status == 406 and .body.status == 406' <<<"$output"
}

@test "sim elastic: query DSL pieces select what jq selects from the stored alerts" {
	seed '{"count": 400, "seed": 11, "layout": "mixed"}'
	docs "$ALERTS" | jq -c "$FLAT"' [.docs[] | {id: ._id, f: (._source | flat)}]' >"$BATS_TEST_TMPDIR/flat"
	local query expect got
	while IFS='|' read -r query expect; do
		got=$(es POST "/$ALERTS/_search" "{\"size\": 1000, \"_source\": false, \"query\": $query}" |
			jq -c '[.body.hits.hits[]._id] | sort')
		want=$(jq -c "[.[] | select(.f | $expect) | .id] | sort" "$BATS_TEST_TMPDIR/flat")
		[ "$(jq length <<<"$want")" -gt 0 ] || fail "no alert matches $expect"
		[ "$got" = "$want" ] || fail "$query: got $(jq length <<<"$got"), want $(jq length <<<"$want")"
	done <<'EOF'
{"term": {"kibana.alert.workflow_status": "open"}}|.["kibana.alert.workflow_status"] == ["open"]
{"terms": {"host.name": ["web-01", "dc-01"]}}|(.["host.name"][0] | IN("web-01", "dc-01"))
{"match": {"kibana.alert.rule.name": "Suspicious PowerShell Execution"}}|.["kibana.alert.rule.name"] == ["Suspicious PowerShell Execution"]
{"match_phrase": {"kibana.alert.severity": "critical"}}|.["kibana.alert.severity"] == ["critical"]
{"range": {"kibana.alert.risk_score": {"gte": 73}}}|.["kibana.alert.risk_score"][0] >= 73
{"range": {"kibana.alert.risk_score": {"gt": 21, "lt": 99}}}|(.["kibana.alert.risk_score"][0] | . > 21 and . < 99)
{"range": {"@timestamp": {"gte": "2026-11-22T00:01:00.000Z", "lt": "2026-11-22T00:03:00Z"}}}|(.["@timestamp"][0] | . >= "2026-11-22T00:01:00.000Z" and . < "2026-11-22T00:03:00.000Z")
{"exists": {"field": "process.name"}}|has("process.name")
{"exists": {"field": "file"}}|has("file.hash.sha256")
{"bool": {"must_not": [{"exists": {"field": "kibana.alert.building_block_type"}}]}}|(has("kibana.alert.building_block_type") | not)
{"term": {"related.ip": "203.0.113.66"}}|(.["related.ip"] | index("203.0.113.66") != null)
{"term": {"source.ip": "198.51.100.0/24"}}|(.["source.ip"][0] | startswith("198.51.100."))
{"term": {"event.kind": "signal"}}|.["event.kind"] == ["signal"]
{"term": {"event.category": "network"}}|(.["event.category"] | index("network") != null)
{"prefix": {"host.name": "ws-"}}|(.["host.name"][0] | startswith("ws-"))
{"wildcard": {"host.name": {"value": "*-0?"}}}|(.["host.name"][0] | test("-0.$"))
{"bool": {"should": [{"term": {"user.name": "alice"}}, {"term": {"kibana.alert.severity": "low"}}, {"term": {"host.name": "db-01"}}], "minimum_should_match": 2}}|([(.["user.name"] == ["alice"]), (.["kibana.alert.severity"] == ["low"]), (.["host.name"] == ["db-01"])] | map(select(.)) | length >= 2)
{"bool": {"should": [{"term": {"user.name": "bob"}}, {"term": {"user.name": "carol"}}]}}|(.["user.name"][0] | IN("bob", "carol"))
{"bool": {"filter": {"term": {"kibana.alert.rule.severity": "high"}}, "must_not": {"term": {"host.os.family": "windows"}}}}|(.["kibana.alert.rule.severity"] == ["high"] and .["host.os.family"] != ["windows"])
{"term": {"kibana.alert.rule.name.keyword": "Sudo Privilege Escalation"}}|.["kibana.alert.rule.name"] == ["Sudo Privilege Escalation"]
{"term": {"user.name": {"value": "ALICE", "case_insensitive": true}}}|.["user.name"] == ["alice"]
{"match_all": {}}|true
EOF
	run es POST "/$ALERTS/_search" '{"query": {"ids": {"values": ["nope"]}}}'
	jq -e '.body.hits.hits == []' <<<"$output"
	run es POST "/$ALERTS/_search" '{"query": {"match_none": {}}}'
	jq -e '.body.hits.hits == []' <<<"$output"
}

@test "sim elastic: date math is relative to elastic_now, with ES's rounding" {
	seed '{"count": 100, "seed": 12, "step_ms": 60000}'
	sim_set elastic_now '"2026-11-22T01:00:00.000Z"'
	local last15 want
	last15=$(es POST "/$ALERTS/_search" '{"size": 100, "_source": ["@timestamp"], "query": {"range": {"@timestamp": {"gte": "now-15m"}}}}' |
		jq -c '[.body.hits.hits[]._source["@timestamp"]] | sort')
	want=$(docs "$ALERTS" | jq -c '[.docs[]._source["@timestamp"] | select(. >= "2026-11-22T00:45:00.000Z")] | sort')
	[ "$last15" = "$want" ] || fail "now-15m: $last15 vs $want"
	jq -e 'length > 0' <<<"$want"
	# now/h rounds down for gte and lt, up for gt and lte.
	run es POST "/$ALERTS/_count" '{"query": {"range": {"@timestamp": {"lt": "now-1h/h"}}}}'
	jq -e '.body.count == 0' <<<"$output"
	run es POST "/$ALERTS/_count" '{"query": {"range": {"@timestamp": {"lte": "now-1h/h"}}}}'
	jq -e '.body.count > 0' <<<"$output"
	run es POST "/$ALERTS/_count" '{"query": {"range": {"@timestamp": {"gt": "2026-11-22||/d"}}}}'
	jq -e '.body.count == 0' <<<"$output"
}

@test "sim elastic: flat, nested and dotted layouts answer the same searches" {
	local query='{"size": 50, "sort": [{"@timestamp": "asc"}], "fields": ["kibana.alert.rule.name", "host.name"], "query": {"bool": {"filter": [{"term": {"kibana.alert.workflow_status": "open"}}, {"term": {"event.kind": "signal"}}]}}}'
	local layout
	for layout in flat dotted nested; do
		seed "{\"count\": 60, \"seed\": 13, \"layout\": \"$layout\"}"
		es POST "/$ALERTS/_search" "$query" >"$BATS_TEST_TMPDIR/$layout"
	done
	for layout in dotted nested; do
		[ "$(jq -c '[.body.hits.hits[] | [._id, .sort, .fields]]' "$BATS_TEST_TMPDIR/flat")" = \
			"$(jq -c '[.body.hits.hits[] | [._id, .sort, .fields]]' "$BATS_TEST_TMPDIR/$layout")" ] ||
			fail "$layout differs from flat"
	done
	jq -e '(.body.hits.hits | length) > 10
		and all(.body.hits.hits[]._source; has("kibana.alert.rule.name") and (.host | type) == "object"
			and .["event.kind"] == "signal" and (.event.category | type) == "array")' "$BATS_TEST_TMPDIR/flat"
	jq -e 'all(.body.hits.hits[]._source; (has("kibana.alert.rule.name") | not) and .kibana.alert.rule.name
		and .event.kind == "signal")' "$BATS_TEST_TMPDIR/nested"
	jq -e 'all(.body.hits.hits[]._source; has("host.name") and (has("host") | not))' "$BATS_TEST_TMPDIR/dotted"
	jq -e 'all(.body.hits.hits[].fields; (.["kibana.alert.rule.name"] | length) == 1)' "$BATS_TEST_TMPDIR/flat"
	# _source filtering finds a path whichever way the document spells it
	# (the nested layout was seeded last).
	run es POST "/$ALERTS/_search" '{"size": 1, "_source": ["kibana.alert.rule.*", "host.name"]}'
	jq -e '.body.hits.hits[0]._source | keys == ["host", "kibana"] and (.host | keys) == ["name"]
		and (.kibana.alert.rule | has("name")) and (.kibana.alert | has("uuid") | not)' <<<"$output"
	seed '{"count": 5, "seed": 13, "layout": "dotted"}'
	run es POST "/$ALERTS/_search" '{"size": 1, "_source": ["kibana.alert.rule.*", "host.name"]}'
	jq -e '.body.hits.hits[0]._source | has("host.name") and has("kibana.alert.rule.name")
		and (has("kibana.alert.uuid") | not)' <<<"$output"
}

@test "sim elastic: seeding is deterministic and shaped like API.md's alert" {
	seed '{"count": 200, "seed": 21, "equal_timestamps": 40}'
	docs "$ALERTS" >"$BATS_TEST_TMPDIR/a"
	seed '{"count": 200, "seed": 22, "equal_timestamps": 40}'
	docs "$ALERTS" >"$BATS_TEST_TMPDIR/c"
	seed '{"count": 200, "seed": 21, "equal_timestamps": 40}'
	docs "$ALERTS" >"$BATS_TEST_TMPDIR/b"
	cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	! cmp -s "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/c" || fail "another seed gave the same alerts"
	jq -e '.count == 200
		and ([.docs[]._source["@timestamp"]] | . == sort)
		and ([.docs[]._source["@timestamp"]] | group_by(.) | map(length) | max == 40)
		and all(.docs[]; ._id == ._source["kibana.alert.uuid"] and (._id | test("^[0-9a-f]{64}$")))
		and all(.docs[]._source; .["event.kind"] == "signal"
			and (.["kibana.alert.severity"] | IN("low", "medium", "high", "critical"))
			and (.["kibana.alert.risk_score"] | type) == "number"
			and (.["kibana.alert.workflow_status"] | IN("open", "acknowledged", "closed"))
			and (.["kibana.alert.rule.name"] | type) == "string"
			and (.["kibana.alert.rule.uuid"] | type) == "string"
			and .["kibana.space_ids"] == ["default"]
			and (.host.name | type) == "string" and (.user.name | type) == "string"
			and (.source.ip | type) == "string" and (.related.ip | type) == "array")
		and any(.docs[]._source; .cloud.provider == "aws")
		and any(.docs[]._source; has("kibana.alert.building_block_type"))' "$BATS_TEST_TMPDIR/a"
	run curl --silent -X POST --data-binary '{"count": -1}' --write-out '\n%{http_code}' "$SIM_URL/__elastic/seed"
	assert_line --index 1 400
	run curl --silent -X POST --data-binary '{"layout": "sideways"}' --write-out '\n%{http_code}' "$SIM_URL/__elastic/seed"
	assert_line --index 1 400
}

@test "sim elastic: late arrivals get an old @timestamp and show in a fresh search" {
	seed '{"count": 20, "seed": 23}'
	run curl --silent -X POST --data-binary '{"timestamp": "2026-11-21T12:00:00.000Z", "count": 2}' \
		"$SIM_URL/__elastic/late"
	local late
	late=$(jq -r '.ids[0]' <<<"$output")
	run curl --silent -X POST --data-binary '{"timestamp": "2026-11-21T12:00:00.000Z", "count": 2}' \
		"$SIM_URL/__elastic/late"
	[ "$(jq -r '.ids[0]' <<<"$output")" != "$late" ] || fail "a second batch reused ids"
	# A time-window fetch after the newest alert misses them; the whole index has them.
	run kb /api/detection_engine/signals/search '{"size": 100, "query": {"range": {"@timestamp": {"gte": "2026-11-22T00:00:00.000Z"}}}}'
	jq -e --arg l "$late" '(.body.hits.hits | length) == 20 and ([.body.hits.hits[]._id] | index($l) == null)' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 100, "sort": [{"@timestamp": "asc"}]}'
	jq -e --arg l "$late" '(.body.hits.hits | length) == 24 and .body.hits.hits[0]._id == $l
		and .body.hits.hits[0]._source["@timestamp"] == "2026-11-21T12:00:00.000Z"' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/$late"
	jq -e '.workflow_status | IN("open", "acknowledged", "closed")' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/alerts/nope"
	assert_output --partial '"no such alert"'
}

@test "sim elastic: 100,000 alerts page through a PIT at size 1000" {
	seed '{"count": 100000, "seed": 31, "equal_timestamps": 2500}'
	run pit_scan 1000
	jq -e '.pages == 100 and (.statuses | unique) == [200] and (.ids | length) == 100000
		and (.ids | unique | length) == 100000 and .freed == 1' <<<"$output"
}

@test "sim elastic: filter_path, _source, fields, aggregations and track_total_hits" {
	run es POST "/$ALERTS/_search?filter_path=hits.hits._id,hits.total" '{"size": 2}'
	jq -e '.body | keys == ["hits"] and (.hits.hits[0] | keys) == ["_id"] and .hits.total.value == 20' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 1, "_source": false, "fields": ["@timestamp", "kibana.alert.risk_score"]}'
	jq -e '(.body.hits.hits[0] | has("_source") | not)
		and (.body.hits.hits[0].fields["@timestamp"][0] | test("^2026-11-22T"))
		and (.body.hits.hits[0].fields["kibana.alert.risk_score"][0] | type) == "number"' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 0, "track_total_hits": 5}'
	jq -e '.body.hits.total == {"value": 5, "relation": "gte"}' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 0, "track_total_hits": false}'
	jq -e '.body.hits | has("total") | not' <<<"$output"
	run es POST "/$ALERTS/_search" '{"size": 0, "aggs": {"hosts": {"terms": {"field": "host.name", "size": 3}},
		"first": {"min": {"field": "@timestamp"}}, "users": {"cardinality": {"field": "user.name"}}}}'
	jq -e '(.body.aggregations.hosts.buckets | length) == 3
		and ([.body.aggregations.hosts.buckets[].doc_count] | . == (sort | reverse))
		and .body.aggregations.first.value_as_string == "2026-11-22T00:00:00.000Z"
		and .body.aggregations.users.value > 1' <<<"$output"
	run es POST "/$ALERTS/_search" '{"aggs": {"x": {"bogus": {}}}}'
	jq -e '.status == 400 and .body.error.reason == "Unknown aggregation type [bogus]"' <<<"$output"
}

# --- _bulk ------------------------------------------------------------------------

@test "sim elastic: _bulk indexes in order, reports item results, and stores what it indexed" {
	cat >"$BATS_TEST_TMPDIR/b" <<-'EOF'
	{"index":{"_index":"soar-events","_id":"e1"}}
	{"@timestamp":"2026-11-22T00:00:00.000Z","host":{"name":"web-01"},"n":1}
	{"create":{"_index":"soar-events","_id":"e2"}}
	{"@timestamp":"2026-11-22T00:00:01.000Z","host.name":"web-02","n":2}
	{"index":{"_index":"soar-events"}}
	{"n":3}
	{"update":{"_index":"soar-events","_id":"e1"}}
	{"doc":{"n":10}}
	{"delete":{"_index":"soar-events","_id":"e2"}}
	{"delete":{"_index":"soar-events","_id":"e9"}}
	EOF
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 200 and .body.errors == false and (.body.took | type) == "number"
		and ([.body.items[] | keys[0]] == ["index", "create", "index", "update", "delete", "delete"])
		and ([.body.items[] | .[] | .status] == [201, 201, 201, 200, 200, 404])
		and ([.body.items[] | .[] | .result] == ["created", "created", "created", "updated", "deleted", "not_found"])
		and (.body.items[2].index._id | length) == 20
		and .body.items[3].update._version == 2
		and all(.body.items[] | .[]; ._index == "soar-events" and ._primary_term == 1)' <<<"$output"
	run docs soar-events
	jq -e '.count == 2 and .docs[0]._id == "e1" and .docs[0]._source.n == 10 and .docs[0]._version == 2
		and .docs[1]._source == {"n": 3}' <<<"$output"
	run es GET /soar-events/_doc/e1
	jq -e '.status == 200 and .body.found == true and .body._source.host.name == "web-01"' <<<"$output"
	run es GET /soar-events/_doc/e2
	jq -e '.status == 404 and .body.found == false' <<<"$output"
	# The index default comes from the path; the stored field is searchable.
	printf '{"index":{"_id":"e5"}}\n{"host":{"name":"web-09"}}\n' >"$BATS_TEST_TMPDIR/c"
	run bulk "/soar-events/_bulk?refresh=true" "$BATS_TEST_TMPDIR/c"
	jq -e '.body.items[0].index._index == "soar-events" and .body.items[0].index.forced_refresh == true' <<<"$output"
	run es POST /soar-events/_search '{"query": {"term": {"host.name": "web-09"}}}'
	jq -e '[.body.hits.hits[]._id] == ["e5"]' <<<"$output"
	run es POST /soar-events/_refresh
	jq -e '.status == 200 and .body._shards.failed == 0' <<<"$output"
	run es POST /soar-events/_count '{"query": {"range": {"n": {"gte": 3}}}}'
	jq -e '.body.count == 2' <<<"$output"
}

@test "sim elastic: _bulk refuses a body without the final newline and other malformed requests" {
	printf '{"index":{"_index":"x","_id":"1"}}\n{"a":1}' >"$BATS_TEST_TMPDIR/b"
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 400 and .body == {"error": {"root_cause": [{"type": "illegal_argument_exception",
		"reason": "The bulk request must be terminated by a newline [\\n]"}], "type": "illegal_argument_exception",
		"reason": "The bulk request must be terminated by a newline [\\n]"}, "status": 400}' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/indices"
	jq -e 'map(.index) | index("x") == null' <<<"$output"
	printf '{"index":{"_id":"1"}}\n{"a":1}\n' >"$BATS_TEST_TMPDIR/b"
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 400 and .body.error.reason == "Validation Failed: 1: index is missing;"' <<<"$output"
	printf '{"upsert":{"_index":"x"}}\n{"a":1}\n' >"$BATS_TEST_TMPDIR/b"
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 400 and (.body.error.reason | contains("expected one of [create, delete, index, update] but found [upsert]"))' <<<"$output"
	printf '{"index":{"_index":"x","colour":"red"}}\n{"a":1}\n' >"$BATS_TEST_TMPDIR/b"
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 400 and .body.error.reason == "Action/metadata line [1] contains an unknown parameter [colour]"' <<<"$output"
	: >"$BATS_TEST_TMPDIR/b"
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 400 and .body.error.reason == "request body is required"' <<<"$output"
	printf '{"index":{"_index":"x"}}\n{"a":1}\n' >"$BATS_TEST_TMPDIR/b"
	run curl --silent -X POST -H "Authorization: $APIKEY" -H 'Content-Type: text/plain' \
		--data-binary "@$BATS_TEST_TMPDIR/b" "$SIM_URL/_bulk"
	assert_output '{"error":"Content-Type header [text/plain] is not supported","status":406}'
}

@test "sim elastic: _bulk item failures: create conflicts, mapping errors, missing documents, bad names" {
	cat >"$BATS_TEST_TMPDIR/b" <<-'EOF'
	{"create":{"_index":"soar-b","_id":"1"}}
	{"n":1,"t":"2026-11-22T00:00:00Z","o":{"k":"v"}}
	{"create":{"_index":"soar-b","_id":"1"}}
	{"n":2}
	{"index":{"_index":"soar-b","_id":"2"}}
	{"n":"many"}
	{"index":{"_index":"soar-b","_id":"3"}}
	{"t":"yesterday"}
	{"index":{"_index":"soar-b","_id":"4"}}
	{"o":"flat"}
	{"update":{"_index":"soar-b","_id":"5"}}
	{"doc":{"n":5}}
	{"update":{"_index":"soar-b","_id":"6"}}
	{"doc":{"n":6},"doc_as_upsert":true}
	{"index":{"_index":"Soar-B","_id":"7"}}
	{"n":7}
	{"index":{"_index":"soar-b","_id":"8"}}
	[1,2]
	{"update":{"_index":"soar-b","_id":"1"}}
	{"doc":{"n":1}}
	EOF
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 200 and .body.errors == true
		and ([.body.items[] | .[] | ._id] == ["1", "1", "2", "3", "4", "5", "6", "7", "8", "1"])
		and ([.body.items[] | .[] | .status] == [201, 409, 400, 400, 400, 404, 201, 400, 400, 200])
		and ([.body.items[] | .[] | .error.type // null] == [null, "version_conflict_engine_exception",
			"mapper_parsing_exception", "mapper_parsing_exception", "mapper_parsing_exception",
			"document_missing_exception", null, "invalid_index_name_exception", "mapper_parsing_exception", null])
		and .body.items[1].create.error.reason == "[1]: version conflict, document already exists (current version [1])"
		and .body.items[2].index.error.reason == "failed to parse field [n] of type [long] in document with id '"'"'2'"'"'. Preview of field'"'"'s value: '"'"'many'"'"'"
		and .body.items[5].update.error.reason == "[_doc][5]: document missing"
		and .body.items[9].update.result == "noop"
		and .body.items[1].create.error.index == "soar-b" and .body.items[1].create.error.shard == "0"' <<<"$output"
	run docs soar-b
	jq -e '[.docs[]._id] == ["1", "6"]' <<<"$output"
	# filter_path=items.*.error keeps only the failures (API.md).
	run bulk "/_bulk?filter_path=items.*.error" "$BATS_TEST_TMPDIR/b"
	jq -e '(.body.items | length) == 8 and all(.body.items[] | .[]; keys == ["error"])' <<<"$output"
}

@test "sim elastic: injected item failures keep the order and fail only the chosen items" {
	_sim_call POST /__elastic/bulk_failures '{"every": 3}' >/dev/null
	_sim_call POST /__elastic/bulk_failures '{"ids": ["d5"], "error": "mapper_parsing_exception", "count": 1}' >/dev/null
	local n
	: >"$BATS_TEST_TMPDIR/b"
	for n in 1 2 3 4 5 6 7; do
		printf '{"index":{"_index":"soar-f","_id":"d%s"}}\n{"n":%s}\n' "$n" "$n" >>"$BATS_TEST_TMPDIR/b"
	done
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 200 and .body.errors == true
		and ([.body.items[].index._id] == ["d1", "d2", "d3", "d4", "d5", "d6", "d7"])
		and ([.body.items[].index.status] == [201, 201, 429, 201, 400, 429, 201])
		and .body.items[2].index.error.type == "es_rejected_execution_exception"
		and .body.items[4].index.error.type == "mapper_parsing_exception"' <<<"$output"
	run docs soar-f
	jq -e '[.docs[]._id] == ["d1", "d2", "d4", "d7"]' <<<"$output"
	# A retry of the failed items: d5's rule is used up, every third still fails.
	printf '{"index":{"_index":"soar-f","_id":"d3"}}\n{"n":3}\n{"index":{"_index":"soar-f","_id":"d5"}}\n{"n":5}\n{"index":{"_index":"soar-f","_id":"d6"}}\n{"n":6}\n' \
		>"$BATS_TEST_TMPDIR/r"
	run bulk /_bulk "$BATS_TEST_TMPDIR/r"
	jq -e '[.body.items[].index.status] == [201, 201, 429]' <<<"$output"
	run curl --silent "$SIM_URL/__elastic/bulk_failures"
	jq -e '.[0].applied == 3 and .[1].applied == 1' <<<"$output"
	_sim_call DELETE /__elastic/bulk_failures >/dev/null
	run bulk /_bulk "$BATS_TEST_TMPDIR/r"
	jq -e '.body.errors == false and [.body.items[].index.status] == [200, 200, 201]
		and [.body.items[].index.result] == ["updated", "updated", "created"]' <<<"$output"
}

# --- faults ---------------------------------------------------------------------

@test "sim elastic: fault rules apply to the Elastic routes before auth" {
	sim_fault '{"path": "^/_bulk$", "status": 429, "headers": {"Retry-After": "1"}, "count": 1}'
	printf '{"index":{"_index":"soar-x"}}\n{"n":1}\n' >"$BATS_TEST_TMPDIR/b"
	run curl --silent --include -X POST -H 'Content-Type: application/x-ndjson' \
		--data-binary "@$BATS_TEST_TMPDIR/b" "$SIM_URL/_bulk"
	assert_line --partial 'HTTP/1.1 429'
	assert_line --partial 'Retry-After: 1'
	run bulk /_bulk "$BATS_TEST_TMPDIR/b"
	jq -e '.status == 200 and .body.errors == false' <<<"$output"
	sim_fault '{"path": "signals/search$", "status": 503, "count": 1}'
	run kb /api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 503' <<<"$output"
	run kb /api/detection_engine/signals/search '{"size": 1}'
	jq -e '.status == 200' <<<"$output"
	run sim_requests 'path=/api/detection_engine'
	jq -e 'length == 2 and .[0].fault == 1 and .[0].headers["kbn-xsrf"] == "true"' <<<"$output"
}
