#!/usr/bin/env bash
# decide.sh: times decide against jq and Python on the same alerts.
#
# Run by `make bench` with BIN, BENCH_DIR, BENCH_N and BENCH_RUNS (see lib.sh).
# Prints a markdown report, also written to $BENCH_DIR/decide.md. Exits 0 when
# a target is missed (the bench reports, it does not gate) and 1 when a
# command fails or the tools disagree on the output.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

bench_init
decide=$BIN/decide
[ -x "$decide" ] || bench_die "$decide not found: build it first (make)"
bench_need jq "install jq"
bench_need "$PYTHON" "install python3"

# A realistic triage rule over three fields; it keeps about 15% of alerts.
where_expr='.alert.severity == "critical" or (.alert.score >= 70 and .["kibana.alert.workflow_status"] == "open")'
set_arg='triage.priority=(.alert.score / 25 | floor)'
jq_set='.triage.priority = (.alert.score / 25 | floor)'

# The Python baselines: what one would write without the toolkit.
filter_py=$BENCH_DIR/filter.py
cat >"$filter_py" <<'EOF'
# The decide --where benchmark rule, by hand: print the lines that match.
import json
import sys


def main():
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        event = json.loads(line)
        alert = event.get("alert") or {}
        score = alert.get("score")
        if alert.get("severity") == "critical" or (
            isinstance(score, (int, float))
            and score >= 70
            and event.get("kibana.alert.workflow_status") == "open"
        ):
            out.write(line)


main()
EOF
transform_py=$BENCH_DIR/transform.py
cat >"$transform_py" <<'EOF'
# The decide --set benchmark assignment, by hand: add triage.priority.
import json
import math
import sys


def main():
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        event = json.loads(line)
        triage = event.setdefault("triage", {})
        triage["priority"] = math.floor(event["alert"]["score"] / 25)
        out.write(json.dumps(event, separators=(",", ":")).encode())
        out.write(b"\n")


main()
EOF

input=$(bench_alerts "$BENCH_N")
bytes=$(stat -c %s "$input")
lines=$(wc -l <"$input")

# count_lines OUT CMD...: runs CMD on the data set once, keeps its output in
# OUT (or discards it when OUT is -) and prints how many lines it wrote.
count_lines() {
	local out=$1
	shift
	if [ "$out" = - ]; then
		"$@" <"$input" | wc -l
	else
		"$@" <"$input" >"$out" || return
		wc -l <"$out"
	fi
}

# Check once that the tools agree; this pass also warms the page cache.
bench_note "checking outputs on $input ($lines alerts, $bytes bytes)"
n_decide=$(count_lines "$BENCH_TMP/where.decide" "$decide" --where "$where_expr") ||
	bench_die "decide --where failed"
n_jq=$(count_lines - jq -c "select($where_expr)") || bench_die "jq select failed"
n_py=$(count_lines "$BENCH_TMP/where.py" "$PYTHON" "$filter_py") ||
	bench_die "python filter failed"
if [ "$n_decide" != "$n_jq" ] || [ "$n_decide" != "$n_py" ]; then
	bench_die "filter outputs disagree: decide $n_decide, jq $n_jq, python $n_py lines"
fi
# The Python filter writes the input lines as they were, as decide must (an
# event passes through unchanged); report, without failing, if bytes differ.
if cmp -s "$BENCH_TMP/where.decide" "$BENCH_TMP/where.py"; then
	where_bytes="byte-identical to the Python filter's"
else
	where_bytes="NOT byte-identical to the Python filter's (same line count)"
fi
rm -f "$BENCH_TMP/where.decide" "$BENCH_TMP/where.py"

n_set=$(count_lines - "$decide" --set "$set_arg") || bench_die "decide --set failed"
[ "$n_set" = "$lines" ] ||
	bench_die "decide --set wrote $n_set lines for $lines input lines"
# The values themselves, compared on a sample: jq re-reads both outputs.
head -n 1000 "$input" >"$BENCH_TMP/sample"
"$decide" --set "$set_arg" <"$BENCH_TMP/sample" |
	jq -c '[.alert.id, .triage.priority]' >"$BENCH_TMP/set.decide" ||
	bench_die "decide --set failed on the sample"
jq -c "$jq_set | [.alert.id, .triage.priority]" <"$BENCH_TMP/sample" \
	>"$BENCH_TMP/set.jq"
cmp -s "$BENCH_TMP/set.decide" "$BENCH_TMP/set.jq" ||
	bench_die "decide --set and jq set different triage.priority values"

# The timed runs; each row is label|median s|peak RSS MiB|key.
rows=()
# run LABEL KEY CMD...: KEY names the secs_KEY and rss_KEY results.
run() {
	local label=$1 key=$2
	shift 2
	bench_note "timing: $label ($BENCH_RUNS runs)"
	bench_time "$input" "$@"
	rows+=("$label|$BENCH_SECS|$BENCH_RSS|$key")
	printf -v "secs_$key" '%s' "$BENCH_SECS"
	printf -v "rss_$key" '%s' "$BENCH_RSS"
}
secs_jq_where='' secs_jq_set='' secs_decide_where='' secs_decide_set=''
secs_py_where='' rss_decide_where='' rss_decide_set=''
run "decide --where" decide_where "$decide" --where "$where_expr"
run "jq -c 'select(...)'" jq_where jq -c "select($where_expr)"
run "python3 filter.py" py_where "$PYTHON" "$filter_py"
run "decide --set" decide_set "$decide" --set "$set_arg"
run "jq -c '.triage.priority = ...'" jq_set jq -c "$jq_set"
run "python3 transform.py" py_set "$PYTHON" "$transform_py"

bench_note "timing: start-up (200 runs each)"
ms_decide=$(bench_startup_ms "$decide" --where true)
ms_jq=$(bench_startup_ms jq -n empty)
ms_true=$(bench_startup_ms /bin/true)

# report: the markdown page.
report() {
	local row label secs rss key jq_secs

	echo "# decide benchmark"
	echo
	printf '%s alerts (%s bytes, %s per line) from bench/gen-alerts, ' \
		"$lines" "$bytes" "$((bytes / lines))"
	printf 'median of BENCH_RUNS=%s, %s, %s CPUs, %s.\n' "$BENCH_RUNS" \
		"$(jq --version)" "$(nproc)" "$("$PYTHON" --version 2>&1)"
	echo
	echo "Filter: \`$where_expr\` ($n_decide of $lines alerts kept; decide's output is $where_bytes)."
	echo
	echo "Transform: \`decide --set '$set_arg'\` vs \`jq -c '$jq_set'\`."
	echo
	echo "| command | median s | events/s | MB/s | peak RSS MB | vs jq |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	for row in "${rows[@]}"; do
		IFS='|' read -r label secs rss key <<<"$row"
		case $key in
		*_where) jq_secs=$secs_jq_where ;;
		*) jq_secs=$secs_jq_set ;;
		esac
		awk -v l="$label" -v s="$secs" -v r="$rss" -v n="$lines" \
			-v b="$bytes" -v j="$jq_secs" 'BEGIN {
				printf "| %s | %.2f | %.0f | %.1f | %s | %.2fx |\n",
					l, s, n / s, b / 1e6 / s, r, j / s
			}'
	done
	echo
	echo "| start-up | median ms | vs jq -n empty |"
	echo "| --- | ---: | ---: |"
	awk -v d="$ms_decide" -v j="$ms_jq" -v t="$ms_true" 'BEGIN {
		printf "| decide --where true </dev/null | %.2f | %.2fx |\n", d, d / j
		printf "| jq -n empty | %.2f | 1.00x |\n", j
		printf "| /bin/true | %.2f | %.2fx |\n", t, t / j
	}'
	echo
	local r_jq r_py r_set r_up rss_max
	r_jq=$(bench_ratio "$secs_jq_where" "$secs_decide_where")
	r_py=$(bench_ratio "$secs_py_where" "$secs_decide_where")
	r_set=$(bench_ratio "$secs_jq_set" "$secs_decide_set")
	r_up=$(bench_ratio "$ms_decide" "$ms_jq")
	printf 'decide --where vs jq: %.2fx (target >= 3x) %s\n\n' "$r_jq" \
		"$(bench_verdict "$r_jq" '>=' 3)"
	printf 'decide --where vs python: %.2fx (target > 1x) %s\n\n' "$r_py" \
		"$(bench_verdict "$r_py" '>' 1)"
	printf 'decide --set vs jq: %.2fx (target >= 1.5x) %s\n\n' "$r_set" \
		"$(bench_verdict "$r_set" '>=' 1.5)"
	if [ "$rss_decide_where" = n/a ]; then
		echo "decide peak RSS: n/a (target < 64 MB) SKIP"
	else
		rss_max=$(awk -v a="$rss_decide_where" -v b="$rss_decide_set" \
			'BEGIN { print (a > b ? a : b) }')
		echo "decide peak RSS: $rss_max MB (target < 64 MB) $(bench_verdict "$rss_max" '<' 64)"
	fi
	echo
	printf 'decide start-up vs jq -n empty: %.2fx (%.2f ms vs %.2f ms) (target <= 1x) %s\n' \
		"$r_up" "$ms_decide" "$ms_jq" "$(bench_verdict "$r_up" '<=' 1)"
}

report >"$BENCH_TMP/decide.md"
mv "$BENCH_TMP/decide.md" "$BENCH_DIR/decide.md"
cat "$BENCH_DIR/decide.md"
