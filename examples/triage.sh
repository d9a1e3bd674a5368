#!/usr/bin/env bash
# triage.sh: a triage playbook built on decide(1) and its routes.
#
# usage: triage.sh ALERTS.ndjson [OUTDIR]
#
# Reads alerts (NDJSON, one event per line) from ALERTS.ndjson ('-' for
# standard input), gives each an outcome with rules.jq (next to this script,
# or $RULES) and sends every outcome down a branch of its own:
#
#   contain    OUTDIR/contain.ndjson    later: ec2-isolate, then Slack
#   escalate   OUTDIR/escalate.ndjson   later: a Slack post to the SOC
#   monitor    OUTDIR/monitor.ndjson    decide's standard output
#   (not JSON) OUTDIR/rejected.ndjson   lines that were not events
#
# Today only decide is installed, so every branch ends in a file; the
# comments show where the other soarutils stages plug in.  OUTDIR defaults to
# triage-YYYYmmdd-HHMMSS.  Exit status: decide's (0, or 1 when some lines
# were rejected or some events failed), or the first failing branch's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rules=${RULES:-$here/rules.jq}
in=${1:?usage: triage.sh ALERTS.ndjson [OUTDIR]}
out=${2:-triage-$(date +%Y%m%d-%H%M%S)}

# decide from PATH, else from the build tree this script ships in.
if command -v decide >/dev/null; then
	decide=decide
elif [ -x "$here/../build/bin/decide" ]; then
	decide=$here/../build/bin/decide
else
	echo "triage.sh: decide not found (run make, or put it on PATH)" >&2
	exit 2
fi

[ "$in" = - ] && in=/dev/stdin
if [ ! -r "$in" ]; then
	echo "triage.sh: cannot read $in" >&2
	exit 2
fi
mkdir -p "$out"

# The enrichers go here, between the source and decide, so that the rules
# can read .falcon and .vt:
#
#	enrich() { falcon-host | vt-enrich; }
enrich() { cat; }

# Each branch reads the events routed to one descriptor.  A branch is a
# process substitution, so it runs while decide runs and sees its events in
# input order; its exit status is collected with wait below, because
# set -e and pipefail do not see it.
#
#	exec 3> >(ec2-isolate --max 3 | slack-post -c '#csirt' \
#		>"$out/contain.ndjson")
exec 3> >(cat >"$out/contain.ndjson")
contain_pid=$!
#	exec 4> >(slack-post -c '#soc-triage' >"$out/escalate.ndjson")
exec 4> >(cat >"$out/escalate.ndjson")
escalate_pid=$!

# Outcomes without a route (monitor) go to standard output.  Status 1
# (some lines rejected or some events failed) must not stop the playbook
# before the branches are finished, so it is kept for the end.
status=0
enrich <"$in" |
	"$decide" -f "$rules" \
		--route contain=/dev/fd/3 \
		--route escalate=/dev/fd/4 \
		--reject "$out/rejected.ndjson" \
		>"$out/monitor.ndjson" || status=$?

# Closing our ends lets the branches see the end of their input.
exec 3>&- 4>&-
wait "$contain_pid" || status=$?
wait "$escalate_pid" || status=$?

count() { if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi; }
printf 'triage.sh: %d contain, %d escalate, %d monitor, %d rejected in %s\n' \
	"$(count "$out/contain.ndjson")" "$(count "$out/escalate.ndjson")" \
	"$(count "$out/monitor.ndjson")" "$(count "$out/rejected.ndjson")" \
	"$out" >&2
exit "$status"
