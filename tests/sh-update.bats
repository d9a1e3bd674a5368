#!/usr/bin/env bats
# sh-update: workflow status and notes pushed back to the simulated Security
# Hub (tests/sim/simlib/vendors/aws_securityhub.py), batched per region,
# with per-event results, unprocessed findings, --when, --dry-run, and the
# failure paths.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	sim_reset
	export AWS_ACCESS_KEY_ID=AKIDSIMULATOR
	export AWS_SECRET_ACCESS_KEY=simulator-secret-key
	export AWS_REGION=us-east-1
	export AWS_ENDPOINT_URL_SECURITYHUB=$SIM_URL
	export AWS_CONFIG_FILE=$BATS_TEST_TMPDIR/aws-config
	export AWS_SHARED_CREDENTIALS_FILE=$BATS_TEST_TMPDIR/aws-credentials
	export AWS_EC2_METADATA_DISABLED=true
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION AWS_ENDPOINT_URL
}

# stored ID: the simulator's copy of a finding, as [Workflow.Status, Note.Text].
stored() {
	curl --silent --fail "$SIM_URL/__aws/securityhub/findings?id=$(jq -rn \
		--arg i "$1" '$i | @uri')" | jq -c '[.Workflow.Status, .Note.Text]'
}

# updates: the BatchUpdateFindings bodies the simulator received.
updates() {
	sim_requests path=/findings/batchupdate | jq -c '.[].body | fromjson'
}

seed() {
	curl --silent --show-error --fail -X POST \
		--data-binary "{\"count\": $1, \"corpus\": false${2:+, $2}}" \
		"$SIM_URL/__aws/securityhub/seed" >/dev/null
}

@test "sh-update: sets status and note, one request per 100 findings, events in order" {
	seed 150
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	run --separate-stderr sh-update -s NOTIFIED -n 'Ticket SOC-123' --rate 0 <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 150
	assert_equal "$(jq -c '.sh_update' <<<"$output" | sort -u)" '{"updated":true}'
	# Events pass through unchanged but for the key, in input order.
	assert_equal "$(jq -c 'del(.sh_update)' <<<"$output")" "$(cat in.ndjson)"
	assert_equal "$(updates | jq -c '[(.FindingIdentifiers | length),
		.Workflow.Status, .Note]')" \
		"$(printf '%s\n' '[100,"NOTIFIED",{"Text":"Ticket SOC-123","UpdatedBy":"soarutils"}]' \
			'[50,"NOTIFIED",{"Text":"Ticket SOC-123","UpdatedBy":"soarutils"}]')"
	assert_equal "$(stored "$(tail -1 in.ndjson | jq -r .alert.id)")" \
		'["NOTIFIED","Ticket SOC-123"]'
}

@test "sh-update: unprocessed findings fail on their own event; others are updated" {
	seed 3
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	# The second finding no longer exists in Security Hub.
	jq -c 'if input_line_number == 2 then .aws.finding.Id += "-gone" else . end' \
		in.ndjson >mixed.ndjson
	run --separate-stderr sh-update -s RESOLVED --rate 0 <mixed.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -c '.sh_update.updated // .sh_update.error.code' <<<"$output" |
		paste -sd' ')" 'true "FindingNotFound" true'
	[[ $stderr == *"line 2: Finding Not Found"* ]]
	assert_equal "$(stored "$(head -1 in.ndjson | jq -r .alert.id)")" '["RESOLVED",null]'
}

@test "sh-update: --note-expr, --when, and events that are not findings" {
	seed 4
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	{
		head -2 in.ndjson
		echo '{"alert": {"id": "elastic-1"}}'
		echo 'not json'
		tail -2 in.ndjson
	} >mixed.ndjson
	run --separate-stderr sh-update -s NOTIFIED --rate 0 --reject rej.ndjson \
		--note-expr '"Seen: \(.alert.title)"' \
		--when '.alert.severity != "low"' <mixed.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(wc -l <<<"$output")" 5
	assert_equal "$(cat rej.ndjson)" 'not json'
	# The elastic event fails; low findings pass untouched.
	assert_equal "$(sed -n 3p <<<"$output" | jq -r '.sh_update.error.code')" input
	local n_low
	n_low=$(jq -s '[.[] | select(.alert.severity == "low")] | length' in.ndjson)
	assert_equal "$(jq -s '[.[] | select(has("sh_update") | not)] | length' <<<"$output")" "$n_low"
	# Each note is the event's own.
	local want
	want=$(jq -c 'select(.alert.severity != "low") | "Seen: \(.alert.title)"' in.ndjson | sort)
	assert_equal "$(updates | jq -c '.Note.Text' | sort)" "$want"
}

@test "sh-update --dry-run: says what it would send and sends nothing" {
	seed 2
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	run --separate-stderr sh-update -v --dry-run -s SUPPRESSED <in.ndjson
	assert_success
	assert_equal "$(jq -c '.sh_update' <<<"$output" | sort -u)" '{"dry_run":true}'
	[[ $stderr == *"dry run: us-east-1: PATCH /findings/batchupdate"*SUPPRESSED* ]]
	assert_equal "$(sim_count path=/findings/batchupdate)" 0
}

@test "sh-update: findings of two regions go to their own regions" {
	seed 4 '"regions": ["us-east-1", "eu-west-1"]'
	sh-findings --regions us-east-1,eu-west-1 --workflow-status any \
		--record-state any --rate 0 >in.ndjson
	run --separate-stderr sh-update -s NOTIFIED --rate 0 <in.ndjson
	assert_success
	assert_equal "$(curl -s "$SIM_URL/__aws/calls?operation=BatchUpdateFindings" |
		jq -r '[.[].region] | sort | join(" ")')" "eu-west-1 us-east-1"
}

@test "sh-update: refused credentials end the run: exit 3, later batches not sent" {
	seed 3
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	export AWS_SECRET_ACCESS_KEY=wrong-secret
	run --separate-stderr sh-update -s NOTIFIED --rate 0 --retries 0 \
		--batch 1 <in.ndjson
	refute_crash
	assert_failure 3
	# Every event read is written, each with why it was not updated.
	assert_equal "$(jq -c '[.sh_update.error.code, .sh_update.error.status]' \
		<<<"$output" | paste -sd' ')" \
		'["InvalidSignatureException",403] ["auth",null] ["auth",null]'
	assert_equal "$(sim_count path=/findings/batchupdate)" 1
	[[ $stderr != *wrong-secret* ]]
}

@test "sh-update: a finding twice goes once; a bad region is never sent" {
	seed 1
	sh-findings --workflow-status any --record-state any --rate 0 >one.ndjson
	{
		cat one.ndjson one.ndjson
		# A region that would make another host name.
		jq -c '.cloud.region = "evil.example?x"' one.ndjson
	} >in.ndjson
	run --separate-stderr sh-update -s NOTIFIED --rate 0 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -c '.sh_update.updated // .sh_update.error.code' \
		<<<"$output" | paste -sd' ')" 'true true "input"'
	assert_equal "$(updates | jq -c '.FindingIdentifiers | length')" 1
	assert_equal "$(sim_count path=/findings/batchupdate)" 1
	[[ $stderr == *"line 3: 'evil.example?x' is not a region name"* ]]
}

@test "sh-update: writing to /dev/full exits 3 with a message" {
	seed 2
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	run --separate-stderr bash -c 'sh-update -s NOTIFIED --rate 0 <in.ndjson >/dev/full'
	refute_crash
	assert_failure 3
	[[ $stderr == *"standard output: No space left on device"* ]]
}

@test "sh-update: --note-expr without output fails the event, not the run" {
	seed 1
	sh-findings --workflow-status any --record-state any --rate 0 >in.ndjson
	run --separate-stderr sh-update --note-expr 'select(.nothing) | "x"' \
		--rate 0 <in.ndjson
	refute_crash
	assert_failure 1
	assert_equal "$(jq -r '.sh_update.error.code' <<<"$output")" input
	assert_equal "$(sim_count path=/findings/batchupdate)" 0
}

@test "sh-update: usage errors exit 2 before reading" {
	run --separate-stderr sh-update </dev/null
	assert_failure 2
	[[ $stderr == *"nothing to set"* ]]
	run --separate-stderr sh-update -s OPEN </dev/null
	assert_failure 2
	run --separate-stderr sh-update -n a --note-expr .x </dev/null
	assert_failure 2
	run --separate-stderr sh-update -s NEW --batch 101 </dev/null
	assert_failure 2
	run --separate-stderr sh-update -n "$(printf 'x%.0s' $(seq 513))" </dev/null
	assert_failure 2
	run --separate-stderr sh-update -s NEW --when '.a ==' </dev/null
	assert_failure 2
	assert_equal "$(sim_count)" 0
}
