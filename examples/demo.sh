#!/usr/bin/env bash
# demo.sh: a whole triage playbook without any account (run by `make demo`).
#
# Starts the local vendor simulator, makes 200 realistic Elastic alerts,
# enriches them with vt-enrich against the simulated VirusTotal, decides
# with examples/rules.jq and shows where each alert went.  Nothing leaves
# this machine: the simulator listens on 127.0.0.1 only.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$top/build/bin}
work=$(mktemp -d)
sim_pid=

cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

python3 "$top/tests/sim/sim.py" --port 0 --port-file "$work/port" &
sim_pid=$!
for _ in $(seq 100); do
	[ -s "$work/port" ] && break
	sleep 0.05
done
[ -s "$work/port" ] || { echo "demo: the simulator did not start" >&2; exit 1; }

export VT_URL="http://127.0.0.1:$(cat "$work/port")"
export VT_API_KEY=test-vt-key # the simulator's key, not a real one

cc -std=c11 -O2 -D_GNU_SOURCE "$top/bench/gen-alerts.c" -o "$work/gen-alerts"
"$work/gen-alerts" -n 200 -s 7 -i 40 >"$work/alerts.ndjson"

# Make the simulated VirusTotal know a few of the severe alerts' remote
# addresses as malicious, as a real one would know some.
jq -r 'select(.alert.severity == "high" or .alert.severity == "critical")
	| .destination.ip // empty' "$work/alerts.ndjson" | sort -u | head -3 |
	jq -R '{key: ., value: {malicious: 15, suspicious: 2}}' |
	jq -s 'from_entries' >"$work/verdicts.json"
curl -s -X POST --data-binary @"$work/verdicts.json" \
	"$VT_URL/_sim/state/vt_verdicts" >/dev/null

echo "== 200 alerts -> vt-enrich -> decide -f examples/rules.jq"
"$bin/vt-enrich" --rate 0 --jobs 8 --cache "$work/cache.db" \
	<"$work/alerts.ndjson" |
	"$bin/decide" -f "$top/examples/rules.jq" \
		--route contain="$work/contain.ndjson" \
		--route escalate="$work/escalate.ndjson" \
		>"$work/monitor.ndjson"

for outcome in contain escalate monitor; do
	printf '%-9s %4d alerts\n' "$outcome" "$(wc -l <"$work/$outcome.ndjson")"
done
echo
echo "== one contained alert (jq view of the keys the tools added)"
jq -c 'select(.decision.outcome == "contain") |
	{id: .alert.id, title: .alert.title, severity: .alert.severity,
	 vt: {verdict: .vt.verdict, score: .vt.score, malicious: .vt.malicious},
	 decision}' "$work/contain.ndjson" | head -1
echo
echo "== the simulated VirusTotal received $(curl -s "$VT_URL/_sim/requests" | jq length) requests (one per unique indicator)"
