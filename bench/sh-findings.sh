#!/usr/bin/env bash
# sh-findings.sh: pages Security Hub findings out of the simulator with
# sh-findings and with the AWS CLI, and compares start-up with curl's.
#
# Run by `make bench` with BIN, BENCH_DIR and BENCH_RUNS (see lib.sh). The
# store holds SH_BENCH_N generated findings (default 50000) in one region.
# Prints a markdown report, also written to $BENCH_DIR/sh-findings.md.
# Exits 0 when a target is missed (the bench reports, it does not gate) and
# 1 when a command fails or a tool writes another number of findings.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SH_BENCH_N=${SH_BENCH_N:-50000}
[[ $SH_BENCH_N =~ ^[1-9][0-9]*$ ]] ||
	bench_die "SH_BENCH_N=$SH_BENCH_N: not a positive integer"

bench_init
shf=$BIN/sh-findings
[ -x "$shf" ] || bench_die "$shf not found: build it first (make)"
bench_need jq "install jq"
bench_need curl "install curl"
bench_need "$PYTHON" "install python3"
have_aws=1
command -v aws >/dev/null 2>&1 || {
	have_aws=0
	bench_note "aws (the AWS CLI) not found: its row is left out"
}

trap 'sim_stop; rm -rf "$BENCH_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sim_start
# The documented 3 requests a second would make both tools wait 170 s for
# 500 pages and measure nothing else: the limiter is lifted for both.
sim_call POST /_sim/state/securityhub_throttle false
bench_note "seeding $SH_BENCH_N findings"
sim_call POST /__aws/securityhub/seed "{\"count\": $SH_BENCH_N, \"corpus\": false,
	\"anchor\": \"2025-01-17T08:00:00Z\", \"regions\": [\"us-east-1\"]}"

# The simulator's default key; no profile, no instance metadata.
export AWS_ACCESS_KEY_ID=AKIDSIMULATOR AWS_SECRET_ACCESS_KEY=simulator-secret-key
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_SECURITYHUB=$sim_url AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$BENCH_TMP/no-config AWS_SHARED_CREDENTIALS_FILE=$BENCH_TMP/no-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN

shf_cmd=("$shf" --workflow-status any --record-state any --rate 0)
aws_cmd=(aws securityhub get-findings --endpoint-url "$sim_url"
	--page-size 100 --output json)

bench_note "checking sh-findings"
"${shf_cmd[@]}" </dev/null >"$BENCH_TMP/shf.out" || bench_die "failed: ${shf_cmd[*]}"
n=$(wc -l <"$BENCH_TMP/shf.out")
[ "$n" = "$SH_BENCH_N" ] || bench_die "sh-findings wrote $n findings, not $SH_BENCH_N"
n=$(jq -r '.alert.id' "$BENCH_TMP/shf.out" | sort -u | wc -l)
[ "$n" = "$SH_BENCH_N" ] || bench_die "sh-findings wrote $n distinct findings"
rm -f "$BENCH_TMP/shf.out"

bench_note "timing: sh-findings ($BENCH_RUNS runs)"
bench_time /dev/null "${shf_cmd[@]}"
secs_shf=$BENCH_SECS
rss_shf=$BENCH_RSS

secs_aws=''
rss_aws=''
if [ "$have_aws" = 1 ]; then
	bench_note "timing: aws securityhub get-findings (1 run; slow)"
	BENCH_RUNS=1 bench_time /dev/null "${aws_cmd[@]}"
	secs_aws=$BENCH_SECS
	rss_aws=$BENCH_RSS
	"${aws_cmd[@]}" --max-items 250 </dev/null >"$BENCH_TMP/aws.out" ||
		bench_die "failed: ${aws_cmd[*]}"
	[ "$(jq '.Findings | length' "$BENCH_TMP/aws.out")" = 250 ] ||
		bench_die "the AWS CLI did not page the findings"
fi

# Start-up: exec, credentials, one signed GetFindings of one finding, exit;
# against curl doing the same request, signed by its own --aws-sigv4. A
# small store, so that the simulator's own time stays out of it.
sim_call POST /__aws/securityhub/seed '{"count": 10, "corpus": false}'
bench_note "timing: start-up, sh-findings and curl --aws-sigv4 (200 runs each)"
ms_shf=$(bench_startup_ms "$shf" --limit 1 --page-size 1 --rate 0)
ms_curl=$(bench_startup_ms curl --silent --fail --output /dev/null \
	--aws-sigv4 aws:amz:us-east-1:securityhub \
	--user AKIDSIMULATOR:simulator-secret-key \
	-H 'Content-Type: application/json' \
	--data '{"MaxResults":1}' "$sim_url/findings")
sim_stop

# Start-up as the issue defines it: process start to the first request
# received whole, both tools answered the same empty page by a listener of
# first-request.py, interleaved, 200 rounds after 3 warm-ups.
bench_note "timing: exec to first request, sh-findings and curl --aws-sigv4 (200 rounds)"
read -r first_shf first_curl < <(AWS_ENDPOINT_URL_SECURITYHUB='{url}' "$PYTHON" \
	"$BENCH_SRC/first-request.py" 200 '{"Findings":[]}' -- \
	"$shf" --limit 1 --page-size 1 --rate 0 --vs \
	curl --silent --fail --output /dev/null \
	--aws-sigv4 aws:amz:us-east-1:securityhub \
	--user AKIDSIMULATOR:simulator-secret-key \
	-H 'Content-Type: application/json' \
	--data '{"MaxResults":1}' '{url}/findings') ||
	bench_die "first-request.py failed"

report() {
	local r

	echo "# sh-findings benchmark"
	echo
	printf '%s generated findings in us-east-1 in the simulated Security Hub ' \
		"$SH_BENCH_N"
	printf '(throttling lifted for both tools), pages of 100; median of '
	printf 'BENCH_RUNS=%s (the AWS CLI: 1 run), %s CPUs.\n' "$BENCH_RUNS" "$(nproc)"
	echo
	echo "| command | median s | findings/s | peak RSS MB | vs sh-findings |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	printf '| sh-findings | %s | %.0f | %s | 1.00x |\n' "$secs_shf" \
		"$(awk -v n="$SH_BENCH_N" -v s="$secs_shf" 'BEGIN { print n / s }')" \
		"$rss_shf"
	if [ -n "$secs_aws" ]; then
		r=$(bench_ratio "$secs_aws" "$secs_shf")
		printf '| aws securityhub get-findings | %s | %.0f | %s | %.2fx slower |\n' \
			"$secs_aws" \
			"$(awk -v n="$SH_BENCH_N" -v s="$secs_aws" 'BEGIN { print n / s }')" \
			"$rss_aws" "$r"
		echo
		echo "at least as fast as the AWS CLI: $(bench_verdict "$r" '>=' 1)"
	fi
	echo
	printf 'start-up, exec to first request: sh-findings %.2f ms, curl --aws-sigv4 %.2f ms (%.3fx): %s\n' \
		"$first_shf" "$first_curl" "$(bench_ratio "$first_shf" "$first_curl")" \
		"$(bench_verdict "$first_shf" '<' "$first_curl")"
	echo
	printf 'exec to exit with one signed request: sh-findings %.1f ms, curl --aws-sigv4 %.1f ms (%.3fx)\n' \
		"$ms_shf" "$ms_curl" "$(bench_ratio "$ms_shf" "$ms_curl")"
	echo
	echo "peak RSS: $rss_shf MB for $SH_BENCH_N findings (constant memory: the" \
		"findings are written as each page arrives)"
}

report | tee "$BENCH_DIR/sh-findings.md"
