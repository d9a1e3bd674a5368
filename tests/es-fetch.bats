#!/usr/bin/env bats
# es-fetch: alerts pulled from the simulated Kibana detection engine and
# Elasticsearch (paging by time, point in time, filters, spaces, layouts),
# the --state cursor across cron runs, --related correlation, and the
# failure paths (refused credentials, malformed answers, output errors).

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

SEARCH=/api/detection_engine/signals/search
ALIAS=.alerts-security.alerts-default

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
	ES_API_KEY=$(printf simid:simkey | base64)
	export ES_API_KEY
	unset ES_USER ES_PASSWORD KIBANA_PUBLIC_URL ES_API_KEY_FILE
}

# seed JSON: replace the default space's alerts (elastic.py's seed route).
seed() {
	_sim_call POST /__elastic/seed "$1" >/dev/null
}

# docs [SPACE]: every stored alert of the space as {_id, _source}, a line
# each, in index order.
docs() {
	curl --silent --show-error --fail \
		"$SIM_URL/__elastic/docs?index=.alerts-security.alerts-${1:-default}" |
		jq -c '.docs[] | {_id, _source}'
}

# bodies [PATH]: the request bodies es-fetch sent to PATH (default: the
# signals search), one JSON object a line.
bodies() {
	sim_requests "path=${1:-$SEARCH}" | jq -c '.[].body | fromjson'
}

# post_alerts FILE: insert the alert documents of FILE ({"alerts": [...]}).
post_alerts() {
	curl --silent --show-error --fail -H 'Content-Type: application/json' \
		--data-binary "@$1" "$SIM_URL/__elastic/alerts" >/dev/null
}

# ids FILE: the alert ids of an output, a line each.
ids() {
	jq -r '.alert.id' "$@"
}

@test "es-fetch: writes open alerts oldest first, with elastic.{id,index} and alert.*" {
	run --separate-stderr es-fetch
	assert_success
	echo "$output" >out
	# The default seed: 20 alerts; open and not building blocks are asked.
	assert_equal "$(wc -l <out)" \
		"$(docs | jq -s '[.[] | ._source | select(.["kibana.alert.workflow_status"] == "open"
			and (has("kibana.alert.building_block_type") | not))] | length')"
	assert_equal "$(jq -r '.alert.status' out | sort -u)" open
	assert_equal "$(jq -r '.["@timestamp"]' out)" "$(jq -r '.["@timestamp"]' out | sort)"
	# Each line is the stored _source plus the two keys, nothing else.
	assert_equal "$(jq -cS 'del(.elastic, .alert)' out)" \
		"$(docs | jq -cS --argjson ids "$(ids out | jq -R . | jq -sc .)" 'select(._id as $i | $ids | index($i)) | ._source')"
	assert_equal "$(head -1 out | jq -c '[.elastic.index, .alert.source, (.alert.id == .elastic.id),
		(.alert.id == .["kibana.alert.uuid"]), (.alert.title == .["kibana.alert.rule.name"]),
		(.alert.score == .["kibana.alert.risk_score"]), (.alert.created == .["@timestamp"])]')" \
		'[".internal.alerts-security.alerts-default-000001","elastic",true,true,true,true,true]'
	# Kibana's headers, the tool's sort and the page size.
	assert_equal "$(sim_requests "path=$SEARCH" | jq -c '.[0].headers |
		[.["kbn-xsrf"], .["elastic-api-version"], .authorization]')" \
		"[\"true\",\"2023-10-31\",\"ApiKey $ES_API_KEY\"]"
	assert_equal "$(bodies | jq -c '[.size, .sort]')" \
		'[1000,[{"@timestamp":{"order":"asc"}},{"kibana.alert.uuid":{"order":"asc","unmapped_type":"keyword"}}]]'
}

@test "es-fetch: the _source keeps its bytes (big integers, 1.0, key order)" {
	# Python keeps 12345678901234567890 and 1.0 as they are; a round trip
	# through libjq 1.6 would print 12345678901234567000 and 1.
	local src='{"@timestamp":"2026-11-22T01:00:00.000Z","kibana.alert.uuid":"big-1","kibana.alert.workflow_status":"open","kibana.alert.rule.name":"R","zz":12345678901234567890,"aa":1.0,"host":{"name":"h"}}'
	_sim_call POST /__elastic/alerts "{\"alerts\": [$src]}" >/dev/null
	run --separate-stderr es-fetch --rule R
	assert_success
	assert_equal "$(wc -l <<<"$output")" 1
	[[ $output == '{"@timestamp":"2026-11-22T01:00:00.000Z","kibana.alert.uuid":"big-1",'*'"zz":12345678901234567890,"aa":1.0,"host":{"name":"h"},"elastic":{"id":"big-1","index":'* ]]
}

@test "es-fetch: --status, --severity, --rule and --query are ANDed into the search" {
	seed '{"count": 400}'
	echo '{"term": {"host.name": "ws-0007"}}' >q.json
	run --separate-stderr es-fetch --status acknowledged,closed \
		--severity HIGH,critical --query @q.json
	assert_success
	[ -n "$output" ]
	assert_equal "$(jq -r '.alert.status' <<<"$output" | grep -cvE '^(acknowledged|closed)$')" 0
	assert_equal "$(jq -r '.alert.severity' <<<"$output" | grep -cvE '^(high|critical)$')" 0
	assert_equal "$(jq -r '.host.name' <<<"$output" | sort -u)" ws-0007
	assert_equal "$(bodies | jq -c '.query.bool.filter')" \
		'[{"terms":{"kibana.alert.workflow_status":["acknowledged","in-progress","closed"]}},{"terms":{"kibana.alert.severity":["high","critical"]}},{"term":{"host.name":"ws-0007"}}]'
	run --separate-stderr es-fetch --status any --rule 'Sudo Privilege Escalation'
	assert_success
	assert_equal "$(jq -r '.alert.title' <<<"$output" | sort -u)" 'Sudo Privilege Escalation'
	assert_equal "$(wc -l <<<"$output")" \
		"$(docs | jq -s '[.[]._source | select(.["kibana.alert.rule.name"] == "Sudo Privilege Escalation")] | length')"
}

@test "es-fetch: building blocks are left out unless --building-blocks" {
	seed '{"count": 400, "status": "open"}'
	local bb all
	bb=$(docs | jq -s '[.[]._source | select(has("kibana.alert.building_block_type"))] | length')
	[ "$bb" -gt 0 ]
	run --separate-stderr es-fetch
	assert_success
	assert_equal "$(wc -l <<<"$output")" $((400 - bb))
	run --separate-stderr es-fetch --building-blocks
	assert_success
	assert_equal "$(wc -l <<<"$output")" 400
}

@test "es-fetch: --since and --until bound @timestamp" {
	seed '{"count": 100, "status": "open", "start": "2026-11-22T00:00:00.000Z", "step_ms": 60000}'
	run --separate-stderr es-fetch --building-blocks --since 2026-11-22T00:30:00Z \
		--until 2026-11-22T01:00:00.000+00:00
	assert_success
	assert_equal "$(jq -r '.["@timestamp"]' <<<"$output" |
		awk '$0 < "2026-11-22T00:30:00" || $0 > "2026-11-22T01:00:00.000Z"' | wc -l)" 0
	assert_equal "$(wc -l <<<"$output")" \
		"$(docs | jq -s '[.[]._source["@timestamp"] | select(. >= "2026-11-22T00:30:00" and . <= "2026-11-22T01:00:00.000Z")] | length')"
	assert_equal "$(bodies | jq -c '.query.bool.filter[-1]')" \
		'{"range":{"@timestamp":{"format":"epoch_millis","gte":1795307400000,"lte":1795309200000}}}'
	run --separate-stderr es-fetch --since 1h
	assert_success
	local gte
	gte=$(bodies | tail -1 | jq '.query.bool.filter[-1].range["@timestamp"].gte / 1000 | floor')
	[ $((gte - $(date +%s) + 3600)) -lt 60 ]
	[ $(($(date +%s) - 3600 - gte)) -lt 60 ]
}

@test "es-fetch --state: cron runs never repeat or miss, across equal timestamps and pages" {
	# 1200 of 3000 alerts share one @timestamp, across page boundaries.
	seed '{"count": 3000, "equal_timestamps": 1200, "status": "open"}'
	run --separate-stderr es-fetch --building-blocks --state s.state --page-size 500 --limit 1000
	assert_success
	echo "$output" >run1
	assert_equal "$(wc -l <run1)" 1000
	local pages1
	pages1=$(bodies | jq -s length)
	run --separate-stderr es-fetch --building-blocks --state s.state --page-size 500
	assert_success
	echo "$output" >run2
	assert_equal "$(wc -l <run2)" 2000
	assert_equal "$(cat run1 run2 | ids | sort -u | wc -l)" 3000
	assert_equal "$(cat run1 run2 | ids | sort)" "$(docs | jq -r ._id | sort)"
	# A page starts after the last hit's (@timestamp, kibana.alert.uuid),
	# so the request stays small however many alerts share a time.
	assert_equal "$(bodies | jq -s '[.[].query.bool.filter[] | select(.bool.should) |
		.bool | [.minimum_should_match, (.should | map(.range | keys[0]))]] | unique' -c)" \
		'[[1,["@timestamp","kibana.alert.uuid"]]]'
	assert_equal "$(bodies | jq -s '[.[].query.bool.must_not[] | select(.ids)] | length')" 0
	[ "$(sim_requests "path=$SEARCH" | jq '[.[].body | length] | max')" -lt 1024 ]
	# 3000 alerts in pages of 500 over two runs: no run asks the same
	# page twice, and each asks at most one page more than its alerts
	# fill (a page starting at the last time holds the hits had there).
	assert_equal "$(bodies | head -n "$pages1" | sort | uniq -d)" ''
	assert_equal "$(bodies | tail -n "+$((pages1 + 1))" | sort | uniq -d)" ''
	[ "$pages1" -le 3 ]
	[ "$(sim_count "path=$SEARCH")" -le 9 ]
	run --separate-stderr es-fetch --building-blocks --state s.state --page-size 500
	assert_success
	assert_output ''
	# The cursor: the newest time and the ids within the look-back.
	assert_equal "$(jq -c '[.version, .space, .overlap, .timestamp]' s.state)" \
		"[1,\"default\",300,$(cat run2 | jq -s -c 'map(.["@timestamp"]) | max')]"
	[ "$(jq '.seen | length' s.state)" -gt 0 ]
	[ -e s.state.lock ]
}

@test "es-fetch: alerts without kibana.alert.uuid at one @timestamp page by id, up to a limit" {
	# 1200 alerts at one time, no uuid to sort by: the ids had are left
	# out of the next page once they fill half a page.
	jq -nc '{alerts: [range(1200) | {"_id": "nouuid-\(.)",
		"@timestamp": "2026-11-22T03:00:00.000Z",
		"kibana.alert.workflow_status": "open",
		"kibana.alert.rule.name": "R"}]}' >a.json
	post_alerts a.json
	run --separate-stderr es-fetch --rule R --page-size 500 --state s.state
	assert_success
	assert_equal "$(ids <<<"$output" | sort)" "$(jq -r '.alerts[]._id' a.json | sort)"
	assert_equal "$(bodies | jq -s -c 'map([.query.bool.must_not[] | select(.ids) | .ids.values | length] | add // 0)')" \
		'[0,500,1000]'
	run --separate-stderr es-fetch --rule R --page-size 500 --state s.state
	assert_success
	assert_output ''
	[[ $stderr != *"paging stopped"* ]]
	# More than 8000 of them would not fit Kibana's 1 MB request limit:
	# a clear error, never a request that cannot be sent.
	jq -nc '{alerts: [range(9000) | {"_id": "many-\(.)",
		"@timestamp": "2026-11-22T04:00:00.000Z",
		"kibana.alert.workflow_status": "open",
		"kibana.alert.rule.name": "S"}]}' >b.json
	post_alerts b.json
	_sim_call DELETE /_sim/requests >/dev/null
	run --separate-stderr es-fetch --rule S --page-size 3000
	refute_crash
	assert_failure 3
	[[ $stderr == *"9000 alerts at 2026-11-22T04:00:00.000Z have no kibana.alert.uuid"*"use --es"* ]]
	assert_equal "$(wc -l <<<"$output")" 9000
	assert_equal "$(sim_count "path=$SEARCH")" 3
	# --es pages them with search_after.
	run --separate-stderr es-fetch --es --rule S --page-size 3000
	assert_success
	assert_equal "$(wc -l <<<"$output")" 9000
}

@test "es-fetch --state: late arrivals within the overlap are written once" {
	seed '{"count": 300, "status": "open"}'
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_equal "$(wc -l <<<"$output")" 300
	local newest late
	newest=$(jq -r .timestamp s.state)
	late=$(date -u -d "$newest - 2 minutes" +%Y-%m-%dT%H:%M:%S.000Z)
	_sim_call POST /__elastic/late "{\"timestamp\": \"$late\", \"count\": 3, \"status\": \"open\"}" >late.json
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_equal "$(ids <<<"$output" | sort)" "$(jq -r '.ids[]' late.json | sort)"
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_output ''
	# Later than the overlap: out of the look-back, unless it is widened.
	late=$(date -u -d "$newest - 20 minutes" +%Y-%m-%dT%H:%M:%S.000Z)
	_sim_call POST /__elastic/late "{\"timestamp\": \"$late\", \"count\": 2, \"status\": \"open\"}" >late2.json
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_output ''
	# A wider look-back finds them; alerts older than the ids the cursor
	# kept are written again (at least once, never lost).
	run --separate-stderr es-fetch --building-blocks --state s.state --overlap 30m
	assert_success
	assert_equal "$(ids <<<"$output" | grep -cFf <(jq -r '.ids[]' late2.json))" 2
	local from
	from=$(date -u -d "$newest - 30 minutes" +%Y-%m-%dT%H:%M:%S.000Z)
	assert_equal "$(jq -r '.["@timestamp"]' <<<"$output" | awk -v f="$from" '$0 < f' | wc -l)" 0
	run --separate-stderr es-fetch --building-blocks --state s.state --overlap 30m
	assert_success
	assert_output ''
}

@test "es-fetch --state: a run killed between output and state write writes again, loses nothing" {
	seed '{"count": 60, "status": "open"}'
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	cp s.state before
	seed '{"count": 60, "status": "open", "append": true, "seed": 2, "start": "2026-11-23T00:00:00.000Z"}'
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	local second=$output
	assert_equal "$(wc -l <<<"$second")" 60
	# As if the run had died after its output, before the rename.
	cp before s.state
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_equal "$output" "$second"
}

@test "es-fetch --state: a failed page keeps what was written and the next run resumes" {
	seed '{"count": 150, "status": "open"}'
	sim_fault "{\"path\": \"$SEARCH\$\", \"skip\": 1, \"count\": 1, \"status\": 500}"
	run --separate-stderr es-fetch --building-blocks --state s.state --page-size 50 --retries 0
	refute_crash
	assert_failure 3
	[[ $stderr == *"signals search: HTTP 500"* ]]
	echo "$output" >run1
	assert_equal "$(wc -l <run1)" 50
	run --separate-stderr es-fetch --building-blocks --state s.state --page-size 50
	assert_success
	assert_equal "$(wc -l <<<"$output")" 100
	assert_equal "$( (cat run1; echo "$output") | ids | sort -u | wc -l)" 150
}

@test "es-fetch --state: output that cannot be written leaves the cursor; a busy or bad state file is refused" {
	seed '{"count": 20, "status": "open"}'
	run --separate-stderr bash -c 'es-fetch --building-blocks --state s.state >/dev/full'
	refute_crash
	assert_failure 3
	[[ $stderr == *"standard output: No space left on device"* ]]
	[ ! -s s.state ]
	run --separate-stderr es-fetch --building-blocks --state s.state
	assert_success
	assert_equal "$(wc -l <<<"$output")" 20
	echo '{"version": 9}' >bad.state
	run --separate-stderr es-fetch --state bad.state
	assert_failure 2
	[[ $stderr == *"not a state file of es-fetch"* ]]
	run --separate-stderr es-fetch --state s.state --space soc
	assert_failure 2
	[[ $stderr == *"the cursor of space 'default', not 'soc'"* ]]
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"latency_ms\": 1500}"
	es-fetch --state s.state >first.out 2>first.err &
	local pid=$!
	sleep 0.5
	run --separate-stderr es-fetch --state s.state
	assert_failure 2
	[[ $stderr == *"another run is using this state file"* ]]
	wait "$pid"
}

@test "es-fetch: | head -1 ends quietly" {
	seed '{"count": 3000, "status": "open"}'
	run --separate-stderr bash -c 'es-fetch --page-size 100 | head -1'
	refute_crash
	assert_success
	assert_equal "$(wc -l <<<"$output")" 1
	assert_equal "$stderr" ''
}

@test "es-fetch --space: the space's path and alerts; a missing space exits 3" {
	_sim_call POST /__elastic/seed '{"space": "soc", "count": 30, "status": "open"}' >/dev/null
	run --separate-stderr es-fetch --space soc --building-blocks
	assert_success
	assert_equal "$(wc -l <<<"$output")" 30
	assert_equal "$(jq -r '.elastic.index' <<<"$output" | sort -u)" .internal.alerts-security.alerts-soc-000001
	assert_equal "$(sim_count "path=/s/soc$SEARCH")" 1
	run --separate-stderr es-fetch --space soc --es --building-blocks
	assert_success
	assert_equal "$(wc -l <<<"$output")" 30
	run --separate-stderr es-fetch --space nope
	refute_crash
	assert_failure 3
	[[ $stderr == *"HTTP 404"* ]]
	run --separate-stderr es-fetch --space 'Bad Space'
	assert_failure 2
}

@test "es-fetch: flat, nested and dotted alerts give the same summaries" {
	local layout
	for layout in flat nested dotted mixed; do
		seed "{\"count\": 50, \"layout\": \"$layout\"}"
		es-fetch --status any --building-blocks | jq -c .alert >"$layout.out"
	done
	assert_equal "$(wc -l <flat.out)" 50
	assert_equal "$(jq -r 'keys | join(",")' flat.out | sort -u)" created,id,score,severity,source,status,title
	cmp flat.out nested.out
	cmp flat.out dotted.out
	cmp flat.out mixed.out
}

@test "es-fetch --es: pages with a point in time and search_after, and closes it" {
	seed '{"count": 2500, "equal_timestamps": 900, "status": "open"}'
	run --separate-stderr es-fetch --es --building-blocks --page-size 400
	assert_success
	echo "$output" >es.out
	assert_equal "$(ids es.out | sort)" "$(docs | jq -r ._id | sort)"
	assert_equal "$(sim_count path=$SEARCH)" 0
	assert_equal "$(sim_count "path=/$ALIAS/_pit&method=POST")" 1
	assert_equal "$(sim_requests "path=/_pit&method=DELETE" | jq length)" 1
	assert_equal "$(curl -s "$SIM_URL/__elastic/pits")" '[]'
	assert_equal "$(bodies /_search | jq -c '[has("pit"), has("search_after")]' | sort | uniq -c | awk '{print $1, $2}' | paste -sd' ')" \
		'1 [true,false] 6 [true,true]'
	# The same alerts in the same order as through Kibana.
	run --separate-stderr es-fetch --building-blocks --page-size 400
	assert_success
	assert_equal "$(jq -r '.["@timestamp"]' <<<"$output")" "$(jq -r '.["@timestamp"]' es.out)"
	# With a cursor too, cron runs stopped by --limit inside a page and
	# inside the equal run: never a repeat or a miss.
	run --separate-stderr es-fetch --es --building-blocks --state s.state --limit 1000
	assert_success
	echo "$output" >c1
	run --separate-stderr es-fetch --es --building-blocks --state s.state --limit 730
	assert_success
	echo "$output" >c2
	run --separate-stderr es-fetch --es --building-blocks --state s.state
	assert_success
	echo "$output" >c3
	assert_equal "$(wc -l <c1) $(wc -l <c2) $(wc -l <c3)" '1000 730 770'
	assert_equal "$(cat c1 c2 c3 | ids | sort)" "$(docs | jq -r ._id | sort)"
	run --separate-stderr es-fetch --es --building-blocks --state s.state
	assert_success
	assert_output ''
}

@test "es-fetch --es: an expired point in time is a fatal error" {
	seed '{"count": 300}'
	sim_fault '{"path": "^/_search$", "skip": 1, "count": 1, "status": 404, "body": "{\"error\":{\"type\":\"search_phase_execution_exception\",\"reason\":\"No search context found for id [1]\"},\"status\":404}"}'
	run --separate-stderr es-fetch --es --status any --page-size 100
	refute_crash
	assert_failure 3
	[[ $stderr == *"search: HTTP 404: search_phase_execution_exception: No search context found"* ]]
	assert_equal "$(wc -l <<<"$output")" 100
	assert_equal "$(curl -s "$SIM_URL/__elastic/pits")" '[]'
}

@test "es-fetch: a Kibana that drops the sort is paged only when one page holds all" {
	sim_set elastic_kibana_legacy true
	seed '{"count": 300, "status": "open"}'
	run --separate-stderr es-fetch --building-blocks
	assert_success
	assert_equal "$(wc -l <<<"$output")" 300
	assert_equal "$(jq -r '.["@timestamp"]' <<<"$output")" "$(jq -r '.["@timestamp"]' <<<"$output" | sort)"
	run --separate-stderr es-fetch --building-blocks --page-size 100
	refute_crash
	assert_failure 3
	[[ $stderr == *"Kibana ignored the sort"*"use --es"* ]]
}

@test "es-fetch: refused credentials exit 3 naming the error, never the secret" {
	export ES_API_KEY=$(printf simid:wrong-secret | base64)
	run --separate-stderr es-fetch
	refute_crash
	assert_failure 3
	assert_output ''
	[[ $stderr == *"signals search: HTTP 401"*"check ES_API_KEY"* ]]
	[[ $stderr != *"$ES_API_KEY"* && $stderr != *wrong-secret* ]]
	unset ES_API_KEY
	export ES_USER=elastic ES_PASSWORD=not-the-password
	run --separate-stderr es-fetch --es
	assert_failure 3
	[[ $stderr == *"HTTP 401: security_exception"* ]]
	[[ $stderr != *not-the-password* ]]
	export ES_PASSWORD=changeme
	sim_fault "{\"path\": \"$SEARCH\$\", \"status\": 403, \"body\": \"{\\\"statusCode\\\":403,\\\"error\\\":\\\"Forbidden\\\",\\\"message\\\":\\\"no read privilege\\\"}\"}"
	run --separate-stderr es-fetch --retries 0
	assert_failure 3
	[[ $stderr == *"signals search: HTTP 403"*"check ES_API_KEY"* ]]
	# Neither 401 nor 403 is retried.
	assert_equal "$(sim_count path=$SEARCH)" 2
}

@test "es-fetch: malformed answers are fatal errors, 429 and 503 are retried" {
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"malformed\": true}"
	run --separate-stderr es-fetch
	refute_crash
	assert_failure 3
	[[ $stderr == *"Kibana answered HTTP 200 with a body that is not a search answer"* ]]
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"status\": 200, \"body\": \"{\\\"hits\\\": {\\\"hits\\\": [{\\\"_id\\\": 1}]}}\"}"
	run --separate-stderr es-fetch
	assert_failure 3
	[[ $stderr == *"not a search answer"* ]]
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"status\": 429, \"headers\": {\"Retry-After\": \"0\"}}"
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"status\": 503}"
	run --separate-stderr es-fetch --building-blocks --status any
	assert_success
	assert_equal "$(wc -l <<<"$output")" 20
}

@test "es-fetch: KIBANA_PUBLIC_URL gives alert.url" {
	export KIBANA_PUBLIC_URL=https://kibana.example.com/
	run --separate-stderr es-fetch --limit 1
	assert_success
	assert_equal "$(jq -r .alert.url <<<"$output")" \
		"https://kibana.example.com/app/security/alerts/redirect/$(jq -r .alert.id <<<"$output")"
}

@test "es-fetch: usage errors exit 2 before any request" {
	local args
	for args in '--page-size 0' '--page-size 10001' '--status bogus' '--severity high,,low' \
		"--query [1]" '--query @missing.json' '--since yesterday' '--until 2026-13-01T00:00:00Z' \
		'--related --state x' '--related --limit 3' '--window 1h' '--top 3' '--jobs 2' \
		'--since 2026-11-22T00:00:00Z --until 2026-11-21T00:00:00Z' 'extra'; do
		# shellcheck disable=SC2086
		run --separate-stderr es-fetch $args </dev/null
		refute_crash
		[ "$status" -eq 2 ] || fail "es-fetch $args: status $status"
		[[ $stderr == *"usage: es-fetch"* ]] || fail "es-fetch $args: $stderr"
	done
	unset ES_API_KEY
	run --separate-stderr es-fetch
	assert_failure 2
	[[ $stderr == *"no Elastic credentials"* ]]
	ES_API_KEY=x ES_URL= run --separate-stderr es-fetch
	assert_failure 2
	[[ $stderr == *"ES_URL is not set"* ]]
	assert_equal "$(sim_count)" 0
	[ ! -e x ]
}

# --- --related -----------------------------------------------------------------

@test "es-fetch --related: adds elastic.matches, hits and misses, order and bytes kept" {
	seed '{"count": 500, "status": "open"}'
	local ip
	ip=$(docs | jq -r '._source["related.ip"] // ._source.related.ip | .[]' | grep '^203.0.113.66$' | head -1)
	assert_equal "$ip" 203.0.113.66
	{
		echo '{"n":1,"big":12345678901234567890,"related":{"ip":["203.0.113.66","not-an-ip"]},"alert":{"created":"2026-11-22T00:05:00Z"}}'
		echo '{"n":2,"related":{"user":["nobody-at-all"]},"@timestamp":"2026-11-22T00:05:00Z"}'
		echo '{"n":3}'
		echo '{"n":4,"cloud":{"instance":{"id":"i-0none"}},"related":{"hosts":["ws-0007"]},"@timestamp":"2026-11-22T00:05:00Z","elastic":{"id":"abc","index":"ix"}}'
	} >in.ndjson
	run --separate-stderr es-fetch --related --top 3 <in.ndjson
	assert_success
	echo "$output" >out
	assert_equal "$(jq -r .n out | paste -sd' ')" "1 2 3 4"
	# Spliced: the event's bytes, then the one key.
	[[ $(head -1 out) == '{"n":1,"big":12345678901234567890,'*'"elastic":{"matches":{"count":'* ]]
	local want
	want=$(docs | jq -s '[.[]._source | select(((.["related.ip"] // .related.ip) | index("203.0.113.66"))
		and (has("kibana.alert.building_block_type") | not))] | length')
	[ "$want" -gt 0 ]
	assert_equal "$(jq -r 'select(.n == 1) | .elastic.matches.count' out)" "$want"
	assert_equal "$(jq -c 'select(.n == 1) | .elastic.matches.alerts | [length, (map(.score) == (map(.score) | sort | reverse)),
		(map(keys) | unique)]' out)" \
		'[3,true,[["created","id","score","severity","source","status","title"]]]'
	assert_equal "$(jq -c 'select(.n == 2 or .n == 3) | .elastic.matches' out | sort -u)" '{"count":0,"alerts":[]}'
	# An event from es-fetch keeps its elastic.id and index.
	assert_equal "$(jq -c 'select(.n == 4) | .elastic | [.id, .index, (.matches.count > 0)]' out)" '["abc","ix",true]'
	# Two searches: n=3 had nothing to look for; the query names the fields
	# and leaves out the event's own alert.
	assert_equal "$(sim_count path=$SEARCH)" 3
	assert_equal "$(bodies | jq -c 'select(.query.bool.must_not | length == 2) | [.query.bool.should, .query.bool.must_not[1]]')" \
		'[[{"terms":{"related.hosts":["ws-0007"]}},{"terms":{"cloud.instance.id":["i-0none"]}}],{"ids":{"values":["abc"]}}]'
	# Searches run concurrently: pick the first event's by its field.
	assert_equal "$(bodies | jq -c 'select(.query.bool.should[0].terms["related.ip"]) | [.query.bool.should, .query.bool.filter]')" \
		'[[{"terms":{"related.ip":["203.0.113.66"]}}],[{"range":{"@timestamp":{"format":"epoch_millis","gte":1795219500000,"lte":1795392300000}}}]]'
}

@test "es-fetch --related: identical searches are sent once; --es searches the alias" {
	for _ in $(seq 20); do
		echo '{"related":{"ip":["203.0.113.66"]},"@timestamp":"2026-11-22T00:00:00Z"}'
	done >in.ndjson
	run --separate-stderr es-fetch --related <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 20
	assert_equal "$(sim_count path=$SEARCH)" 1
	assert_equal "$(jq -c .elastic.matches.count <<<"$output" | sort -u | wc -l)" 1
	run --separate-stderr es-fetch --related --es --jobs 8 <in.ndjson
	assert_success
	assert_equal "$(sim_count "path=/$ALIAS/_search")" 1
	assert_equal "$(jq -c .elastic.matches <<<"$output" | sort -u | wc -l)" 1
}

@test "es-fetch --related: a failed search marks its event, bad lines are rejected, the rest goes on" {
	{
		echo '{"n":1,"related":{"ip":["203.0.113.66"]}}'
		echo 'not json'
		echo '{"n":2,"related":{"ip":["198.51.100.7"]}}'
	} >in.ndjson
	sim_fault "{\"path\": \"$SEARCH\$\", \"count\": 1, \"status\": 500}"
	run --separate-stderr es-fetch --related --jobs 1 --retries 0 --reject rej.ndjson <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -r .n <<<"$output" | paste -sd' ')" "1 2"
	assert_equal "$(jq -c 'select(.n == 1) | .elastic.matches.error | [.code, .status]' <<<"$output")" '["http",500]'
	assert_equal "$(jq -c 'select(.n == 2) | .elastic.matches | has("count")' <<<"$output")" true
	[[ $stderr == *"line 2: column 1"*"rejected"* ]]
	[[ $stderr == *"line 1: elastic.matches: related alerts search: HTTP 500"* ]]
	assert_equal "$(cat rej.ndjson)" 'not json'
}

@test "es-fetch --related: refused credentials end the run with exit 3, events read still written" {
	export ES_API_KEY=$(printf simid:nope | base64)
	printf '%s\n' '{"n":1,"related":{"ip":["203.0.113.66"]}}' '{"n":2,"related":{"user":["bob"]}}' >in.ndjson
	run --separate-stderr es-fetch --related --jobs 1 <in.ndjson
	refute_crash
	assert_failure 3
	assert_equal "$(jq -r '.n' <<<"$output" | paste -sd' ')" "1 2"
	assert_equal "$(jq -r '.elastic.matches.error.code' <<<"$output" | head -1)" auth
	[[ $stderr == *"HTTP 401"*"check ES_API_KEY"* ]]
	[[ $stderr != *"$ES_API_KEY"* ]]
	run --separate-stderr es-fetch --related </dev/null
	assert_success
	assert_output ''
}
