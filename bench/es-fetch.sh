#!/usr/bin/env bash
# es-fetch.sh: pages Elastic Security alerts out of the simulated Kibana
# with es-fetch and with a curl + jq loop doing the same paging by time.
#
# Run by `make bench` with BIN, BENCH_DIR and BENCH_RUNS (see lib.sh). The
# default space holds ES_BENCH_N generated alerts (default 100000). Prints a
# markdown report, also written to $BENCH_DIR/es-fetch.md. Exits 0 when a
# target is missed (the bench reports, it does not gate) and 1 when a
# command fails or a tool writes another number of alerts.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ES_BENCH_N=${ES_BENCH_N:-100000}
ES_BENCH_PAGE=${ES_BENCH_PAGE:-1000}
[[ $ES_BENCH_N =~ ^[1-9][0-9]*$ ]] ||
	bench_die "ES_BENCH_N=$ES_BENCH_N: not a positive integer"

bench_init
esf=$BIN/es-fetch
[ -x "$esf" ] || bench_die "$esf not found: build it first (make)"
bench_need jq "install jq"
bench_need curl "install curl"
bench_need "$PYTHON" "install python3"

trap 'sim_stop; rm -rf "$BENCH_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sim_start
bench_note "seeding $ES_BENCH_N alerts"
sim_call POST /__elastic/seed "{\"count\": $ES_BENCH_N}"

export ES_URL=$sim_url
ES_API_KEY=$(printf simid:simkey | base64)
export ES_API_KEY
unset ES_USER ES_PASSWORD KIBANA_PUBLIC_URL

esf_cmd=("$esf" --status any --building-blocks --page-size "$ES_BENCH_PAGE")

# The playbook by hand, paging as es-fetch does: the same search, sorted by
# time and id, each page turned into events by jq (the _source,
# elastic.{id,index} and the alert summary), the next page asked from the
# last hit's time, the hits already had there skipped (and left out by id
# once they fill half a page).
curl_jq_loop() {
	local url=$ES_URL/api/detection_engine/signals/search
	local gte=null ex='[]' page=$BENCH_TMP/page body n last
	while :; do
		body=$(jq -nc --argjson size "$ES_BENCH_PAGE" --argjson gte "$gte" \
			--argjson ex "$ex" '{size: $size, sort: [{"@timestamp": {order: "asc"}},
				{"kibana.alert.uuid": {order: "asc", unmapped_type: "keyword"}}],
			query: {bool: {filter: (if $gte == null then [] else
				[{range: {"@timestamp": {gte: $gte, format: "epoch_millis"}}}] end),
				must_not: (if ($ex | length) * 2 < $size then [] else
				[{ids: {values: $ex}}] end)}}}')
		curl --silent --show-error --fail -X POST -H "Authorization: ApiKey $ES_API_KEY" \
			-H 'kbn-xsrf: true' -H 'elastic-api-version: 2023-10-31' \
			-H 'Content-Type: application/json' --data-binary "$body" \
			--output "$page" "$url" || return 1
		jq -c --argjson ex "$ex" --argjson gte "$gte" '.hits.hits[]
			| select((.sort[0] == $gte and (._id as $i | $ex | index([$i]))) | not)
			| . as $h | ._source as $s
			| def f($k): $s[$k] // ($k | split(".")) as $p | $s | getpath($p);
			$s + {elastic: {id: $h._id, index: $h._index},
			alert: {id: $h._id, source: "elastic",
				title: f("kibana.alert.rule.name"),
				severity: f("kibana.alert.severity"),
				score: f("kibana.alert.risk_score"),
				status: (f("kibana.alert.workflow_status")
					| if . == "in-progress" then "acknowledged" else . end),
				created: $s["@timestamp"]}}' "$page" || return 1
		read -r n last < <(jq -r '[(.hits.hits | length),
			(.hits.hits[-1].sort[0] // null)] | @tsv' "$page")
		[ "$n" -lt "$ES_BENCH_PAGE" ] && return 0
		if [ "$last" = "$gte" ]; then
			ex=$(jq -c --argjson ex "$ex" --argjson t "$last" \
				'$ex + [.hits.hits[] | select(.sort[0] == $t) | ._id]' "$page")
		else
			ex=$(jq -c --argjson t "$last" \
				'[.hits.hits[] | select(.sort[0] == $t) | ._id]' "$page")
		fi
		gte=$last
	done
}

bench_note "checking es-fetch and the curl + jq loop"
"${esf_cmd[@]}" </dev/null >"$BENCH_TMP/esf.out" || bench_die "failed: ${esf_cmd[*]}"
n=$(wc -l <"$BENCH_TMP/esf.out")
[ "$n" = "$ES_BENCH_N" ] || bench_die "es-fetch wrote $n alerts, not $ES_BENCH_N"
n=$(jq -r '.alert.id' "$BENCH_TMP/esf.out" | sort -u | wc -l)
[ "$n" = "$ES_BENCH_N" ] || bench_die "es-fetch wrote $n distinct alerts"
curl_jq_loop >"$BENCH_TMP/loop.out" || bench_die "the curl + jq loop failed"
n=$(wc -l <"$BENCH_TMP/loop.out")
[ "$n" = "$ES_BENCH_N" ] || bench_die "the curl + jq loop wrote $n alerts, not $ES_BENCH_N"
# The same alerts with the same summaries, in the same order.
cmp <(jq -c .alert "$BENCH_TMP/esf.out") <(jq -c .alert "$BENCH_TMP/loop.out") >/dev/null ||
	bench_die "es-fetch and the curl + jq loop disagree"
rm -f "$BENCH_TMP/esf.out" "$BENCH_TMP/loop.out"

bench_note "timing: es-fetch ($BENCH_RUNS runs)"
bench_time /dev/null "${esf_cmd[@]}"
secs_esf=$BENCH_SECS
rss_esf=$BENCH_RSS

bench_note "timing: es-fetch --es ($BENCH_RUNS runs)"
bench_time /dev/null "${esf_cmd[@]}" --es
secs_pit=$BENCH_SECS
rss_pit=$BENCH_RSS

export -f curl_jq_loop
export BENCH_TMP ES_BENCH_PAGE
bench_note "timing: curl + jq loop ($BENCH_RUNS runs)"
bench_time /dev/null bash -c curl_jq_loop
secs_loop=$BENCH_SECS
rss_loop=$BENCH_RSS

# Constant memory: a tenth of the alerts must not take much less memory.
sim_call POST /__elastic/seed "{\"count\": $((ES_BENCH_N / 10))}"
BENCH_RUNS=1 bench_time /dev/null "${esf_cmd[@]}"
rss_small=$BENCH_RSS
sim_stop

report() {
	local r

	echo "# es-fetch benchmark"
	echo
	printf '%s generated alerts in the simulated Kibana detection engine, pages of %s, ' \
		"$ES_BENCH_N" "$ES_BENCH_PAGE"
	printf 'paged by time; median of BENCH_RUNS=%s, %s CPUs, %s.\n' "$BENCH_RUNS" \
		"$(nproc)" "$(jq --version)"
	echo
	echo "| command | median s | alerts/s | peak RSS MB | vs es-fetch |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	printf '| es-fetch | %s | %.0f | %s | 1.00x |\n' "$secs_esf" \
		"$(awk -v n="$ES_BENCH_N" -v s="$secs_esf" 'BEGIN { print n / s }')" "$rss_esf"
	printf '| es-fetch --es (point in time) | %s | %.0f | %s | %.2fx |\n' "$secs_pit" \
		"$(awk -v n="$ES_BENCH_N" -v s="$secs_pit" 'BEGIN { print n / s }')" "$rss_pit" \
		"$(bench_ratio "$secs_pit" "$secs_esf")"
	r=$(bench_ratio "$secs_loop" "$secs_esf")
	printf '| curl + jq loop | %s | %.0f | %s | %.2fx slower |\n' "$secs_loop" \
		"$(awk -v n="$ES_BENCH_N" -v s="$secs_loop" 'BEGIN { print n / s }')" "$rss_loop" "$r"
	echo
	echo "at least 5x faster than curl + jq: $(bench_verdict "$r" '>=' 5)"
	echo
	echo "peak RSS: $rss_esf MB for $ES_BENCH_N alerts, $rss_small MB for" \
		"$((ES_BENCH_N / 10)): $(bench_verdict "$rss_esf" '<' "$(awk -v s="$rss_small" \
			'BEGIN { print s * 2 + 8 }')") (constant memory: alerts are written as" \
		"each page arrives)"
	echo
	echo "Both sides wait for the same simulator, whose own time per page is"
	echo "part of every row."
}

report | tee "$BENCH_DIR/es-fetch.md"
