#!/usr/bin/env bash
# vt-enrich.sh: times vt-enrich against the simulated VirusTotal, next to the
# floors it cannot beat and to the usual playbook (a Bash loop calling curl).
#
# Run by `make bench` with BIN, BENCH_DIR and BENCH_RUNS (see lib.sh). The
# data set has VT_BENCH_N alerts (default 100000; BENCH_N is for decide.sh).
# Prints a markdown report, also written to $BENCH_DIR/vt-enrich.md. Exits 0
# when a target is missed (the bench reports, it does not gate) and 1 when a
# command fails or vt-enrich sends another number of requests than the
# unique public IPs.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

VT_BENCH_N=${VT_BENCH_N:-100000}
[[ $VT_BENCH_N =~ ^[1-9][0-9]*$ ]] ||
	bench_die "VT_BENCH_N=$VT_BENCH_N: not a positive integer"
latency_ms=20      # added by the simulator to every VirusTotal request
jobs=32            # vt-enrich --jobs
slice_max=2000     # events the Bash loop is timed on
vt_key=test-vt-key # the simulator's default VirusTotal key

bench_init
vt=$BIN/vt-enrich
decide=$BIN/decide
[ -x "$vt" ] || bench_die "$vt not found: build it first (make)"
[ -x "$decide" ] || bench_die "$decide not found: build it first (make)"
bench_need jq "install jq"
bench_need curl "install curl"
bench_need "$PYTHON" "install python3"

# --- the simulator --------------------------------------------------------

trap 'sim_stop; rm -rf "$BENCH_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# sim_report: prints "REQUESTS DISTINCT_PATHS" of the VirusTotal requests
# recorded since the last reset.
sim_report() {
	curl --silent --show-error --fail "$sim_url/_sim/requests?path=/api/v3/" |
		jq -r '"\(length) \(map(.path) | unique | length)"' ||
		bench_die "simulator: cannot read the request log"
}

# --- the data -------------------------------------------------------------

input=$(bench_alerts "$VT_BENCH_N")
bytes=$(stat -c %s "$input")
lines=$(wc -l <"$input")
slice=$((lines < slice_max ? lines : slice_max))
head -n "$slice" "$input" >"$BENCH_TMP/slice.ndjson"

# The minimum number of requests: the distinct public addresses in
# related.ip. The generator writes IPv4 only; internal hosts are in 10/8 and
# 192.168/16, but every special-purpose range (IANA registry) is left out.
bench_note "counting unique public IPs in $input"
jq -r '.related.ip[]?' "$input" | sort -u >"$BENCH_TMP/ips" ||
	bench_die "jq failed on $input"
read -r unique n_private < <(jq -R -s -r '
	def in4($a; $b; $c; $d; $bits):
		(pow(2; 32 - $bits)) as $m
		| (. / $m | floor) == (((($a * 256 + $b) * 256 + $c) * 256 + $d) / $m | floor);
	def special:
		in4(0; 0; 0; 0; 8) or in4(10; 0; 0; 0; 8) or in4(100; 64; 0; 0; 10)
		or in4(127; 0; 0; 0; 8) or in4(169; 254; 0; 0; 16)
		or in4(172; 16; 0; 0; 12) or in4(192; 0; 0; 0; 24)
		or in4(192; 0; 2; 0; 24) or in4(192; 88; 99; 0; 24)
		or in4(192; 168; 0; 0; 16) or in4(198; 18; 0; 0; 15)
		or in4(198; 51; 100; 0; 24) or in4(203; 0; 113; 0; 24)
		or in4(224; 0; 0; 0; 3);
	split("\n") | map(select(length > 0))
	| if all(test("^[0-9]{1,3}(\\.[0-9]{1,3}){3}$")) then .
	  else error("related.ip holds a value that is not an IPv4 address") end
	| map(split(".") | map(tonumber) | reduce .[] as $o (0; . * 256 + $o))
	| map(select(special | not)) as $public
	| "\($public | length) \(length - ($public | length))"
	' "$BENCH_TMP/ips") || bench_die "cannot classify the IPs of $input"
[ "${unique:-0}" -gt 0 ] || bench_die "no public IP in $input"

# --- vt-enrich ------------------------------------------------------------

sim_start
sim_call POST /_sim/state/vt_api_key "\"$vt_key\""
sim_call POST /_sim/faults "{\"path\": \"^/api/v3/\", \"latency_ms\": $latency_ms}"

vt_cmd=(env "VT_URL=$sim_url" "VT_API_KEY=$vt_key" "$vt" --types ip
	--jobs "$jobs" --rate 0 --cache none)

# check_requests WHAT: fails unless vt-enrich asked for each unique public IP
# exactly once since the last reset of the request log.
check_requests() {
	local n distinct
	read -r n distinct < <(sim_report)
	if [ "$n" != "$unique" ] || [ "$distinct" != "$unique" ]; then
		bench_die "$1: $n requests for $distinct distinct IPs; expected $unique, each once"
	fi
	printf '%s\n' "$n"
}

# One checked run first: one line out per line in, no lookup error. It also
# warms the page cache and the simulator.
bench_note "checking vt-enrich on $input ($lines alerts, $bytes bytes)"
sim_call DELETE /_sim/requests
"${vt_cmd[@]}" <"$input" >"$BENCH_TMP/enriched" ||
	bench_die "failed: ${vt_cmd[*]} <$input"
n_out=$(wc -l <"$BENCH_TMP/enriched")
[ "$n_out" = "$lines" ] ||
	bench_die "vt-enrich wrote $n_out lines for $lines input lines"
n_err=$("$decide" --where '.vt.error != null' <"$BENCH_TMP/enriched" | wc -l)
[ "$n_err" = 0 ] || bench_die "vt-enrich: $n_err events carry vt.error"
n_vt=$("$decide" --where '.vt.indicators | length > 0' <"$BENCH_TMP/enriched" | wc -l)
rm -f "$BENCH_TMP/enriched"
requests=$(check_requests "vt-enrich check run")

# The timed runs, one bench_time call each so that the request log can be
# checked and reset between them; the fault rule stays.
: >"$BENCH_TMP/vt.walls"
rss_vt=0
for ((run = 1; run <= BENCH_RUNS; run++)); do
	bench_note "timing: vt-enrich (run $run of $BENCH_RUNS)"
	sim_call DELETE /_sim/requests
	BENCH_RUNS=1 bench_time "$input" "${vt_cmd[@]}"
	echo "$BENCH_SECS" >>"$BENCH_TMP/vt.walls"
	rss_vt=$(awk -v a="$rss_vt" -v b="$BENCH_RSS" \
		'BEGIN { print (b == "n/a" ? b : (a > b ? a : b)) }')
	check_requests "vt-enrich run $run" >/dev/null
done
secs_vt=$(bench_median <"$BENCH_TMP/vt.walls" | awk '{ printf "%.3f", $1 }')

# --- the floors -----------------------------------------------------------

# Parse floor: the same input read by a program that looks at the same field.
parse_expr='.related.ip | length > 0'
bench_note "timing: decide --where '$parse_expr' ($BENCH_RUNS runs)"
bench_time "$input" "$decide" --where "$parse_expr"
secs_parse=$BENCH_SECS
rss_parse=$BENCH_RSS
# Network floor: every unique indicator waits for the latency once, $jobs at
# a time.
secs_net=$(awk -v u="$unique" -v l="$latency_ms" -v j="$jobs" \
	'BEGIN { printf "%.3f", u * l / 1000 / j }')
secs_floor=$(awk -v a="$secs_parse" -v b="$secs_net" \
	'BEGIN { print (a > b ? a : b) }')

# --- the usual playbook ---------------------------------------------------

loop_sh=$BENCH_DIR/vt-loop.sh
cat >"$loop_sh" <<'EOF'
#!/usr/bin/env bash
# The usual playbook, by hand: for each event, one curl per public IP in
# related.ip, each answer merged into the event with jq.
set -euo pipefail
while IFS= read -r line; do
	event=$line
	for ip in $(jq -r '.related.ip[]?' <<<"$line"); do
		case $ip in
		10.* | 192.168.* | 127.*) continue ;;
		esac
		answer=$(curl -s -H "x-apikey: $VT_API_KEY" \
			"$VT_URL/api/v3/ip_addresses/$ip")
		event=$(jq -c --arg ip "$ip" --argjson r "$answer" \
			'.vt[$ip] = $r.data.attributes.last_analysis_stats' <<<"$event")
	done
	printf '%s\n' "$event"
done
EOF
bench_note "checking the bash+curl loop on $slice events"
head -n 5 "$BENCH_TMP/slice.ndjson" |
	env "VT_URL=$sim_url" "VT_API_KEY=$vt_key" bash "$loop_sh" \
		>"$BENCH_TMP/loop.out" || bench_die "the bash+curl loop failed"
[ "$(jq -s 'map(select(.vt | length > 0)) | length' "$BENCH_TMP/loop.out")" -gt 0 ] ||
	bench_die "the bash+curl loop added no verdict"
bench_note "timing: bash+curl loop on $slice events (1 run; slow)"
sim_call DELETE /_sim/requests
BENCH_RUNS=1 bench_time "$BENCH_TMP/slice.ndjson" \
	env "VT_URL=$sim_url" "VT_API_KEY=$vt_key" bash "$loop_sh"
secs_loop_slice=$BENCH_SECS
rss_loop=$BENCH_RSS
read -r requests_loop_slice _ < <(sim_report)
secs_loop=$(awk -v s="$secs_loop_slice" -v n="$lines" -v k="$slice" \
	'BEGIN { printf "%.3f", s * n / k }')
requests_loop=$(awk -v r="$requests_loop_slice" -v n="$lines" -v k="$slice" \
	'BEGIN { printf "%.0f", r * n / k }')
sim_stop

# --- the report -----------------------------------------------------------

report() {
	local r_wall r_loop rss_verdict

	echo "# vt-enrich benchmark"
	echo
	printf '%s alerts (%s bytes) from bench/gen-alerts, %s unique public IPs ' \
		"$lines" "$bytes" "$unique"
	printf 'in related.ip (and %s internal ones, never sent); ' "$n_private"
	printf '%s alerts got a verdict.\n' "$n_vt"
	echo
	printf 'Simulated VirusTotal (tests/sim/sim.py) with %s ms added to every ' \
		"$latency_ms"
	printf 'request; median of BENCH_RUNS=%s, %s CPUs, %s.\n' "$BENCH_RUNS" \
		"$(nproc)" "$(jq --version)"
	echo
	echo "vt-enrich: \`vt-enrich --types ip --jobs $jobs --rate 0 --cache none\`."
	echo "Parse floor: \`decide --where '$parse_expr'\`."
	echo "Network floor: unique IPs x $latency_ms ms / $jobs jobs."
	echo "Bash loop: bench/vt-loop.sh (written to BENCH_DIR) on the first" \
		"$slice alerts, ${secs_loop_slice} s, extrapolated to $lines."
	echo
	echo "| command | median s | events/s | requests | peak RSS MB | vs max(floors) |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	row "vt-enrich" "$secs_vt" "$requests" "$rss_vt"
	row "parse floor (decide)" "$secs_parse" 0 "$rss_parse"
	row "network floor (computed)" "$secs_net" "$unique" "-"
	row "bash+curl loop (extrapolated)" "$secs_loop" "~$requests_loop" "$rss_loop"
	echo
	r_wall=$(bench_ratio "$secs_vt" "$secs_floor")
	r_loop=$(bench_ratio "$secs_loop" "$secs_vt")
	echo "requests: $requests = unique public IPs $unique PASS"
	echo
	printf 'wall vs max(floors): %.2fx (target <= 1.3x) %s\n' "$r_wall" \
		"$(bench_verdict "$r_wall" '<=' 1.3)"
	echo
	if [ "$rss_vt" = n/a ]; then
		rss_verdict=SKIP
	else
		rss_verdict=$(bench_verdict "$rss_vt" '<' 64)
	fi
	echo "peak RSS: $rss_vt MB (target < 64 MB) $rss_verdict"
	echo
	printf 'vs bash+curl loop: %.0fx faster\n' "$r_loop"
}

# row LABEL SECS REQUESTS RSS: one line of the table.
row() {
	awk -v l="$1" -v s="$2" -v q="$3" -v r="$4" -v n="$lines" \
		-v f="$secs_floor" 'BEGIN {
			printf "| %s | %.2f | %.0f | %s | %s | %.2fx |\n",
				l, s, n / s, q, r, s / f
		}'
}

report >"$BENCH_TMP/vt-enrich.md"
mv "$BENCH_TMP/vt-enrich.md" "$BENCH_DIR/vt-enrich.md"
cat "$BENCH_DIR/vt-enrich.md"
