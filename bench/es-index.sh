#!/usr/bin/env bash
# es-index.sh: bulk-indexes generated alerts into the simulated
# Elasticsearch with es-index and with curl posting prepared 5 MB _bulk
# chunks one after the other, the way a shell script would.
#
# Run by `make bench` with BIN, BENCH_DIR and BENCH_RUNS (see lib.sh). The
# data set holds ES_BENCH_N alerts (default 50000), not BENCH_N. ES_BENCH_JOBS
# (default 2) is es-index's --jobs.
#
# The simulator is a Python program that parses, maps and stores every
# document: 3,000 to 5,000 alerts of 2.5 KB a second on 2 cores and about
# 19 KB of its memory per alert, so 1,000,000 would take 4 to 6 minutes a
# run and side and some 19 GB. ES_BENCH_COUNT_ONLY=1 (the default when
# ES_BENCH_N is over 100000) turns on its setting elastic_bulk_count_only
# for both sides: each _bulk request is still checked for what a client
# must get right (credentials, Content-Type, the final newline, each action
# line a JSON object with one known action, a source line after each one
# that starts with "{" and ends with "}"), and answered item by item as
# created, but the documents are neither parsed as JSON nor mapped nor
# stored, only counted per index. Each index's count must then be
# ES_BENCH_N after every run, which catches a lost or a repeated request.
# Both clients hit the same path of the same simulator in the same run, so
# the comparison stays fair; the simulator's share of each row is only
# smaller. ES_BENCH_COUNT_ONLY=0 keeps the full indexing at any size. At
# 1,000,000 alerts the data set, the curl chunks and es-index's checked
# output take about 2.5 GB each in BENCH_DIR.
#
# Prints a markdown report, also written to $BENCH_DIR/es-index.md. Exits 0
# when the target is missed (the bench reports, it does not gate) and 1 when
# a command fails or an index does not end up holding (or, count-only,
# having counted) every alert.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ES_BENCH_N=${ES_BENCH_N:-50000}
ES_BENCH_JOBS=${ES_BENCH_JOBS:-2}
CHUNK_BYTES=5000000
[[ $ES_BENCH_N =~ ^[1-9][0-9]*$ ]] ||
	bench_die "ES_BENCH_N=$ES_BENCH_N: not a positive integer"
[[ $ES_BENCH_JOBS =~ ^[1-9][0-9]*$ ]] ||
	bench_die "ES_BENCH_JOBS=$ES_BENCH_JOBS: not a positive integer"
if [ -z "${ES_BENCH_COUNT_ONLY:-}" ]; then
	ES_BENCH_COUNT_ONLY=0
	((ES_BENCH_N <= 100000)) || ES_BENCH_COUNT_ONLY=1
fi
[[ $ES_BENCH_COUNT_ONLY =~ ^[01]$ ]] ||
	bench_die "ES_BENCH_COUNT_ONLY=$ES_BENCH_COUNT_ONLY: 0 or 1"

bench_init
esi=$BIN/es-index
[ -x "$esi" ] || bench_die "$esi not found: build it first (make)"
bench_need jq "install jq"
bench_need curl "install curl"
bench_need "$PYTHON" "install python3"

trap 'sim_stop; rm -rf "$BENCH_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

input=$(bench_alerts "$ES_BENCH_N")
in_mb=$(awk -v b="$(wc -c <"$input")" 'BEGIN { printf "%.1f", b / 1e6 }')

# The curl side's chunks: one create action per alert, cut between two
# documents so that no chunk passes 5 MB; prepared once, not timed.
bench_note "preparing ${CHUNK_BYTES}-byte _bulk chunks"
mkdir -p "$BENCH_TMP/chunks"
awk -v lim="$CHUNK_BYTES" -v dir="$BENCH_TMP/chunks" '
	BEGIN { f = sprintf("%s/%06d", dir, n) }
	{
		need = length($0) + 15
		if (size > 0 && size + need > lim) {
			close(f)
			f = sprintf("%s/%06d", dir, ++n)
			size = 0
		}
		print "{\"create\":{}}" >f
		print >f
		size += need
	}' "$input"
nchunks=$(find "$BENCH_TMP/chunks" -type f | wc -l)

sim_start
# shellcheck disable=SC2154 # sim_start (lib.sh) sets sim_url
export ES_URL=$sim_url
ES_API_KEY=$(printf simid:simkey | base64)
export ES_API_KEY

# curl without its "Expect: 100-continue", which holds every body over
# 1 MB for a second; --fail so that a refused chunk fails the run.
cat >"$BENCH_TMP/curl-bulk.sh" <<EOF
#!/bin/sh
for f in "$BENCH_TMP"/chunks/*; do
	curl --silent --show-error --fail --output /dev/null -X POST \\
		-H 'Expect:' -H "Authorization: ApiKey \$ES_API_KEY" \\
		-H 'Content-Type: application/x-ndjson' --data-binary "@\$f" \\
		"\$ES_URL/bench-curl/_bulk" || exit 1
done
EOF
chmod +x "$BENCH_TMP/curl-bulk.sh"
esi_cmd=("$esi" -i bench-esi --jobs "$ES_BENCH_JOBS" --batch 100000
	--batch-bytes 5M)

# stored INDEX: the number of documents in INDEX; count-only, the number
# of documents the simulator counted for it.
stored() {
	if [ "$ES_BENCH_COUNT_ONLY" = 1 ]; then
		sim_call GET "/__elastic/bulk_counts"
		jq --arg i "$1" '.[$i] // 0' "$BENCH_TMP/sim.answer"
		return
	fi
	sim_call GET "/__elastic/indices"
	jq --arg i "$1" '[.[] | select(.index == $i) | .docs] | add // 0' \
		"$BENCH_TMP/sim.answer"
}

# sim_empty: an emptied simulator, in count-only mode when asked for.
sim_empty() {
	sim_call POST /_sim/reset
	[ "$ES_BENCH_COUNT_ONLY" = 0 ] ||
		sim_call POST /_sim/state/elastic_bulk_count_only true
}

bench_note "checking es-index"
sim_empty
"${esi_cmd[@]}" <"$input" >"$BENCH_TMP/esi.out" || bench_die "failed: ${esi_cmd[*]}"
n=$(wc -l <"$BENCH_TMP/esi.out")
[ "$n" = "$ES_BENCH_N" ] || bench_die "es-index wrote $n events, not $ES_BENCH_N"
n=$(jq -r 'select(.es_index.result != "created")' "$BENCH_TMP/esi.out" | wc -l)
[ "$n" = 0 ] || bench_die "es-index: $n events were not created"
[ "$(stored bench-esi)" = "$ES_BENCH_N" ] || bench_die "bench-esi holds $(stored bench-esi) documents"
rm -f "$BENCH_TMP/esi.out"

# time_runs NAME INDEX CMD...: BENCH_RUNS timed runs, each on an emptied
# simulator (the reset is not timed) and checked to have indexed every
# alert; sets SECS (median) and RSS (largest peak).
time_runs() {
	local name=$1 index=$2 run rss=0
	shift 2
	: >"$BENCH_TMP/secs"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		sim_empty
		bench_note "timing: $name (run $run of $BENCH_RUNS)"
		BENCH_RUNS=1 bench_time "$input" "$@"
		echo "$BENCH_SECS" >>"$BENCH_TMP/secs"
		[ "$BENCH_RSS" = n/a ] || rss=$(awk -v a="$rss" -v b="$BENCH_RSS" \
			'BEGIN { print (b > a ? b : a) }')
		[ "$(stored "$index")" = "$ES_BENCH_N" ] ||
			bench_die "$name: $index holds $(stored "$index") documents"
	done
	SECS=$(bench_median <"$BENCH_TMP/secs")
	RSS=$rss
	[ -n "$BENCH_GNU_TIME" ] || RSS=n/a
}

time_runs es-index bench-esi "${esi_cmd[@]}"
secs_esi=$SECS
rss_esi=$RSS
time_runs curl bench-curl "$BENCH_TMP/curl-bulk.sh"
secs_curl=$SECS
rss_curl=$RSS
sim_stop

report() {
	local r
	r=$(bench_ratio "$secs_esi" "$secs_curl")
	echo "# es-index benchmark"
	echo
	printf '%s generated alerts (%s MB) bulk-indexed into the simulated ' \
		"$ES_BENCH_N" "$in_mb"
	printf 'Elasticsearch, emptied before each run; median of BENCH_RUNS=%s, ' \
		"$BENCH_RUNS"
	printf '%s CPUs. curl posts %s prepared chunks of at most %s bytes, ' \
		"$(nproc)" "$nchunks" "$CHUNK_BYTES"
	printf 'one after the other; es-index reads the alerts and writes each '
	printf 'with its result (--jobs %s, --batch-bytes 5M).' "$ES_BENCH_JOBS"
	if [ "$ES_BENCH_COUNT_ONLY" = 1 ]; then
		printf ' Count-only (ES_BENCH_COUNT_ONLY=1): the simulator '
		printf 'checks the framing of every _bulk request and counts '
		printf 'its documents, both sides alike, but does not parse or '
		printf 'store them; each index counted %s documents in every ' \
			"$ES_BENCH_N"
		printf 'run.'
	fi
	echo
	echo
	echo "| command | median s | events/s | peak RSS MB | vs curl |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	printf '| es-index | %s | %.0f | %s | %.2fx |\n' "$secs_esi" \
		"$(awk -v n="$ES_BENCH_N" -v s="$secs_esi" 'BEGIN { print n / s }')" \
		"$rss_esi" "$r"
	printf '| curl, 5 MB chunks | %s | %.0f | %s | 1.00x |\n' "$secs_curl" \
		"$(awk -v n="$ES_BENCH_N" -v s="$secs_curl" 'BEGIN { print n / s }')" \
		"$rss_curl"
	echo
	echo "es-index time vs curl (target <= 1.5x): $(printf '%.2f' "$r")x:" \
		"$(bench_verdict "$r" '<=' 1.5)"
	echo
	if [ "$ES_BENCH_COUNT_ONLY" = 1 ]; then
		echo "The simulator runs in Python on the same machine: it still" \
			"reads and records each request and writes an answer item" \
			"per document, alongside es-index's own work (reading," \
			"checking each line, batching, reading every item's" \
			"result, writing each event)."
	else
		echo "The simulator does the indexing in Python on the same" \
			"machine, so both rows are mostly its time; es-index's own" \
			"work (reading, checking each line, batching, reading" \
			"every item's result, writing each event) runs alongside it."
	fi
}

report | tee "$BENCH_DIR/es-index.md"
