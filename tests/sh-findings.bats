#!/usr/bin/env bats
# sh-findings: findings received (--events: EventBridge, SNS, pages, bare
# findings, bad lines) and pulled from the simulated Security Hub (paging,
# filters, the cursor across runs, regions, throttling, refused
# credentials).  The corpus findings are read from $SHARED.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

CORPUS=$SHARED/corpus/vendor/aws-securityhub

# One simulator for the file; sim_reset gives every test a fresh one.
setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	[ -d "$CORPUS" ] || skip_or_fail "no corpus at $CORPUS"
	sim_reset
	# The simulator's default key; nothing from the real ~/.aws, no IMDS.
	export AWS_ACCESS_KEY_ID=AKIDSIMULATOR
	export AWS_SECRET_ACCESS_KEY=simulator-secret-key
	export AWS_REGION=us-east-1
	export AWS_ENDPOINT_URL_SECURITYHUB=$SIM_URL AWS_ENDPOINT_URL_STS=$SIM_URL
	export AWS_CONFIG_FILE=$BATS_TEST_TMPDIR/aws-config
	export AWS_SHARED_CREDENTIALS_FILE=$BATS_TEST_TMPDIR/aws-credentials
	export AWS_EC2_METADATA_DISABLED=true
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION AWS_ENDPOINT_URL
}

# seed N [FIELDS]: replace the store with N generated findings (no corpus);
# FIELDS are more members of the securityhub_seed object.
seed() {
	curl --silent --show-error --fail -X POST \
		--data-binary "{\"count\": $1, \"corpus\": false,
			\"anchor\": \"2025-01-17T08:00:00Z\"${2:+, $2}}" \
		"$SIM_URL/__aws/securityhub/seed" >/dev/null
}

# pull [ARGS...]: sh-findings over every status, without a rate limit.
pull() {
	sh-findings --workflow-status any --record-state any --rate 0 "$@"
}

# calls [QUERY]: the simulator's log of signed AWS calls.
calls() {
	curl --silent --show-error --fail "$SIM_URL/__aws/calls${1:+?$1}"
}

# bodies: the GetFindings request bodies, one JSON object a line.
bodies() {
	sim_requests path=/findings | jq -c '.[].body | fromjson'
}

# compact FILE: the file's JSON on one line.
compact() {
	jq -c . "$1"
}

@test "sh-findings --events: an EventBridge event gives its finding as an event" {
	compact "$CORPUS/eventbridge-findings-imported-cis-1.4.json" >in.ndjson
	run --separate-stderr sh-findings --events <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 1
	assert_equal "$(jq -r '.alert.source, .alert.severity, .alert.status,
		.alert.score, .cloud.account.id, .cloud.region' <<<"$output" |
		paste -sd' ')" "securityhub medium open 40 111111111111 us-east-1"
	# The finding is kept as it came.
	assert_equal "$(jq -c '.aws.finding' <<<"$output")" \
		"$(jq -c '.detail.findings[0]' in.ndjson)"
	assert_equal "$(jq -r '.alert.id' <<<"$output")" \
		"$(jq -r '.detail.findings[0].Id' in.ndjson)"
}

@test "sh-findings --events: one event per finding of a Custom Action event" {
	compact "$CORPUS/eventbridge-findings-custom-action-2-findings.json" >in.ndjson
	run --separate-stderr sh-findings --events <in.ndjson
	assert_success
	assert_equal "$(jq -r '.alert.id' <<<"$output")" \
		"$(jq -r '.detail.findings[].Id' in.ndjson)"
	assert_equal "$(jq -r '.alert.status' <<<"$output" | paste -sd' ')" \
		"open closed"
}

@test "sh-findings --events: SNS notifications, pages and bare findings" {
	local ev
	ev=$(compact "$CORPUS/eventbridge-findings-imported-afsbp-ec2.7.json")
	{
		# SNS delivers the EventBridge event as the text of Message.
		jq -cn --arg m "$ev" '{Type: "Notification", MessageId: "m-1",
			TopicArn: "arn:aws:sns:us-east-1:111111111111:sh",
			Message: $m}'
		jq -c '{Findings: .detail.findings}' \
			"$CORPUS/eventbridge-findings-custom-action-2-findings.json"
		compact "$CORPUS/guardduty-asff-finding-awsdocs.json"
	} >in.ndjson
	run --separate-stderr sh-findings --events <in.ndjson
	assert_success
	assert_equal "$(wc -l <<<"$output")" 4
	# GuardDuty's remote address comes from ProductFields.
	assert_equal "$(jq -c 'select(.alert.id | test("guardduty")) |
		[.source.ip, .destination.ip, .cloud.instance.id, .related.ip]' \
		<<<"$output")" \
		'["199.241.229.197","172.31.43.6","i-0c10c2c7863d1a356",["199.241.229.197","172.31.43.6"]]'
}

@test "sh-findings --events: bad lines are reported, rejected and counted" {
	{
		echo 'not json'
		compact "$CORPUS/asff-finding-afsbp-iam.8.json"
		echo '{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}'
		echo '{"Type":"Notification","Message":"{truncated"}'
		compact "$CORPUS/asff-finding-afsbp-ec2.1.json"
	} >in.ndjson
	run --separate-stderr sh-findings --events --reject rej.ndjson <in.ndjson
	refute_crash
	assert_failure 1
	# The good findings still went out, in order.
	assert_equal "$(jq -r '.aws.finding.GeneratorId' <<<"$output" |
		sed 's|.*/||')" "$(printf 'IAM.8\nEC2.1')"
	assert_equal "$(jq -r '.user.name' <<<"$output" | head -1)" sharrtest
	# Each bad line is named by number, and kept byte for byte.
	assert_equal "$(grep -c 'rejected' <<<"$stderr")" 3
	[[ $stderr == *"line 1: "* ]]
	[[ $stderr == *"line 3: EventBridge event not from aws.securityhub"* ]]
	[[ $stderr == *"line 4: SNS notification whose Message is not JSON"* ]]
	assert_equal "$(cat rej.ndjson)" "$(sed -n '1p;3p;4p' in.ndjson)"
}

@test "sh-findings --events: usage errors exit 2 before reading" {
	run --separate-stderr sh-findings --events --state x.state </dev/null
	assert_failure 2
	[[ $stderr == *"--events: --state, --since"*"apply to pulling only"* ]]
	[ ! -e x.state ]
	run --separate-stderr sh-findings --page-size 101 </dev/null
	assert_failure 2
	run --separate-stderr sh-findings --severity 'HIGH,,LOW' </dev/null
	assert_failure 2
	run --separate-stderr sh-findings --filters '[1]' </dev/null
	assert_failure 2
	[[ $stderr == *"--filters"* ]]
	run --separate-stderr sh-findings --external-id x </dev/null
	assert_failure 2
}

@test "sh-findings --events: empty input, no output, exit 0" {
	run --separate-stderr sh-findings --events </dev/null
	assert_success
	assert_output ''
}

@test "sh-findings: pulls the region's findings with the default filters, oldest first" {
	run --separate-stderr sh-findings --rate 0
	assert_success
	# The corpus: seven findings in us-east-1, one of them RESOLVED.
	assert_equal "$(wc -l <<<"$output")" 6
	assert_equal "$(jq -r '.alert.status' <<<"$output" | sort -u)" open
	assert_equal "$(jq -r '.["@timestamp"]' <<<"$output")" \
		"$(jq -r '.["@timestamp"]' <<<"$output" | sort)"
	assert_equal "$(bodies | jq -c '[.Filters.WorkflowStatus, .Filters.RecordState,
		.SortCriteria, .MaxResults]')" \
		'[[{"Value":"NEW","Comparison":"EQUALS"},{"Value":"NOTIFIED","Comparison":"EQUALS"}],[{"Value":"ACTIVE","Comparison":"EQUALS"}],[{"Field":"UpdatedAt","SortOrder":"asc"}],100]'
	# Signed as the simulator checks it: its key, the region, the service.
	assert_equal "$(calls | jq -c '[.[] | [.access_key, .region, .status]] | unique')" \
		'[["AKIDSIMULATOR","us-east-1",200]]'
}

@test "sh-findings: follows NextToken to the last page, each finding once" {
	seed 250
	run --separate-stderr pull --page-size 100
	assert_success
	assert_equal "$(wc -l <<<"$output")" 250
	assert_equal "$(jq -r '.alert.id' <<<"$output" | sort -u | wc -l)" 250
	assert_equal "$(sim_count path=/findings)" 3
	# Page 2 and 3 carry the token the page before gave.
	assert_equal "$(bodies | jq -r 'has("NextToken")' | paste -sd' ')" \
		"false true true"
}

@test "sh-findings: --severity, --product, --type-prefix and --filters make the request" {
	echo '{"AwsAccountId": [{"Value": "123456789012", "Comparison": "EQUALS"}],
		"SeverityLabel": [{"Value": "LOW", "Comparison": "EQUALS"}]}' >f.json
	run --separate-stderr sh-findings --rate 0 -s high,Critical \
		--product GuardDuty --type-prefix TTPs/ --filters @f.json
	assert_success
	assert_equal "$(bodies | jq -c '.Filters | [.SeverityLabel, .ProductName,
		.Type, .AwsAccountId[0].Value]')" \
		'[[{"Value":"HIGH","Comparison":"EQUALS"},{"Value":"CRITICAL","Comparison":"EQUALS"}],[{"Value":"GuardDuty","Comparison":"EQUALS"}],[{"Value":"TTPs/","Comparison":"PREFIX"}],"123456789012"]'
	# 'any' drops the default filter, even one given in --filters.
	echo '{"WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]}' >g.json
	run --separate-stderr sh-findings --rate 0 --workflow-status any \
		--filters @g.json
	assert_success
	assert_equal "$(bodies | tail -1 | jq -c '.Filters | has("WorkflowStatus")')" false
	assert_equal "$(wc -l <<<"$output")" 7
}

@test "sh-findings: --since asks for findings updated since then" {
	run --separate-stderr sh-findings --rate 0 --since 2d
	assert_success
	local start want
	start=$(bodies | jq -r '.Filters.UpdatedAt[0].Start')
	want=$(date -u -d '2 days ago' +%s)
	# Within a minute of two days ago.
	[ $(($(date -u -d "$start" +%s) - want)) -lt 60 ]
	[ $((want - $(date -u -d "$start" +%s))) -lt 60 ]
	run --separate-stderr sh-findings --rate 0 --since 2025-01-10T00:00:00Z
	assert_success
	assert_equal "$(bodies | tail -1 | jq -r '.Filters.UpdatedAt[0].Start')" \
		2025-01-10T00:00:00.000Z
	run --separate-stderr sh-findings --since yesterday
	assert_failure 2
}

@test "sh-findings --state: cron runs never repeat or miss, across equal timestamps and pages" {
	# 120 of 250 findings share one UpdatedAt, across page boundaries.
	seed 250 '"same_updated_at": 120'
	run --separate-stderr pull --state s.state --page-size 50 --limit 100
	assert_success
	echo "$output" >run1
	assert_equal "$(wc -l <run1)" 100
	run --separate-stderr pull --state s.state --page-size 50
	assert_success
	echo "$output" >run2
	assert_equal "$(wc -l <run2)" 150
	# Together: every finding, once.
	assert_equal "$(cat run1 run2 | jq -r '.alert.id' | sort -u | wc -l)" 250
	run --separate-stderr pull --state s.state --page-size 50
	assert_success
	assert_output ''
	# A late arrival, updated 2 minutes before the newest: within the
	# look-back, so the next run writes it, and only it.
	local newest late
	newest=$(cat run1 run2 | jq -r '.["@timestamp"]' | sort | tail -1)
	late=$(date -u -d "$newest - 2 minutes" +%Y-%m-%dT%H:%M:%S.000Z)
	jq -c --arg t "$late" '.aws.finding | .Id += "-late" | .UpdatedAt = $t' \
		<<<"$(head -1 run1)" |
		curl --silent --fail -X POST --data-binary @- \
			"$SIM_URL/__aws/securityhub/findings" >/dev/null
	run --separate-stderr pull --state s.state --page-size 50
	assert_success
	assert_equal "$(jq -r '.alert.id' <<<"$output")" \
		"$(head -1 run1 | jq -r '.alert.id')-late"
	# The state names the region and holds no more than the look-back.
	assert_equal "$(jq -r 'keys[]' s.state)" us-east-1
	[ -e s.state.lock ]
}

@test "sh-findings --state: a failed page keeps what was written and loses nothing" {
	seed 150
	# The second page fails for good.
	sim_fault '{"path": "^/findings$", "skip": 1, "count": 1, "status": 500}'
	run --separate-stderr pull --state s.state --page-size 50 --retries 0
	refute_crash
	assert_failure 3
	[[ $stderr == *"us-east-1: GetFindings"* ]]
	echo "$output" >run1
	assert_equal "$(wc -l <run1)" 50
	run --separate-stderr pull --state s.state --page-size 50
	assert_success
	assert_equal "$(wc -l <<<"$output")" 100
	assert_equal "$( (cat run1; echo "$output") | jq -r '.alert.id' |
		sort -u | wc -l)" 150
}

@test "sh-findings --state: a run killed before saving writes its findings again" {
	seed 60
	run --separate-stderr pull --state s.state
	assert_success
	cp s.state before
	seed 60 '"seed": 2'
	run --separate-stderr pull --state s.state
	assert_success
	local second=$output
	# As if the run had died between its output and its state write.
	cp before s.state
	run --separate-stderr pull --state s.state
	assert_success
	assert_equal "$output" "$second"
}

@test "sh-findings --state: a second run on the same state file is refused" {
	seed 10
	# The first run holds the lock while its first page is slow.
	sim_fault '{"path": "^/findings$", "count": 1, "latency_ms": 1500}'
	pull --state s.state >first.out 2>first.err &
	local pid=$!
	sleep 0.5
	run --separate-stderr pull --state s.state
	assert_failure 2
	[[ $stderr == *"another run is using this state file"* ]]
	wait "$pid"
	assert_equal "$(wc -l <first.out)" 10
	echo 'not json' >bad.state
	run --separate-stderr pull --state bad.state
	assert_failure 2
	[[ $stderr == *"not a state file"* ]]
}

@test "sh-findings --regions: every region pulled, signed for itself, with its own cursor" {
	seed 40 '"regions": ["us-east-1", "eu-west-1"]'
	run --separate-stderr pull --regions us-east-1,eu-west-1 --state s.state
	assert_success
	assert_equal "$(wc -l <<<"$output")" 40
	assert_equal "$(jq -r '.cloud.region' <<<"$output" | sort | uniq -c |
		awk '{print $2, $1}' | paste -sd' ')" "eu-west-1 20 us-east-1 20"
	assert_equal "$(calls | jq -r '[.[].region] | unique | join(" ")')" \
		"eu-west-1 us-east-1"
	assert_equal "$(jq -r 'keys | join(" ")' s.state)" "eu-west-1 us-east-1"
}

@test "sh-findings: throttled pages are retried until they pass" {
	seed 300
	sim_set securityhub_throttle '{"GetFindings": {"rate": 2, "burst": 1}}'
	run --separate-stderr pull --page-size 50
	assert_success
	assert_equal "$(wc -l <<<"$output")" 300
	# Some pages met 429 TooManyRequestsException and went through later.
	[ "$(calls 'operation=GetFindings' | jq '[.[] | select(.status == 429)] | length')" -gt 0 ]
	assert_equal "$(calls 'operation=GetFindings' | jq '[.[] | select(.status == 200)] | length')" 6
}

@test "sh-findings: refused credentials exit 3 naming the error, never the secret" {
	export AWS_SECRET_ACCESS_KEY=not-the-secret-key
	run --separate-stderr sh-findings --rate 0 --retries 0
	refute_crash
	assert_failure 3
	assert_output ''
	[[ $stderr == *InvalidSignatureException* ]]
	[[ $stderr != *not-the-secret-key* ]]
	export AWS_ACCESS_KEY_ID=AKIDUNKNOWN
	run --separate-stderr sh-findings --rate 0 --retries 0
	assert_failure 3
	[[ $stderr == *UnrecognizedClientException* ]]
}

@test "sh-findings: no credentials or no region is a usage error" {
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	run --separate-stderr sh-findings
	assert_failure 2
	[[ $stderr == *"credentials"* ]]
	assert_equal "$(sim_count path=/findings)" 0
	export AWS_ACCESS_KEY_ID=AKIDSIMULATOR AWS_SECRET_ACCESS_KEY=simulator-secret-key
	unset AWS_REGION
	run --separate-stderr sh-findings
	assert_failure 2
	[[ $stderr == *"no region"* ]]
}

@test "sh-findings --role-arn: pulls with the role's temporary credentials" {
	seed 5
	run --separate-stderr pull \
		--role-arn arn:aws:iam::123456789012:role/SocReader
	assert_success
	assert_equal "$(wc -l <<<"$output")" 5
	assert_equal "$(calls 'service=sts' | jq length)" 1
	assert_equal "$(calls 'operation=GetFindings' | jq -r '.[0].access_key[0:4]')" ASIA
	assert_equal "$(calls 'operation=GetFindings' | jq -r '.[0].principal')" \
		"$(calls 'operation=GetFindings' | jq -r '.[0].principal' | grep 'assumed-role/SocReader/')"
}

@test "sh-findings: a body that is not a findings page is a fatal error" {
	sim_fault '{"path": "^/findings$", "status": 200, "body": "{\"Nope\": 1}"}'
	run --separate-stderr sh-findings --rate 0
	assert_failure 3
	[[ $stderr == *"not a findings page"* ]]
}

@test "sh-findings --state: output that cannot be written leaves the cursor where it was" {
	seed 20
	run --separate-stderr bash -c 'sh-findings --workflow-status any \
		--record-state any --rate 0 --state s.state >/dev/full'
	refute_crash
	assert_failure 3
	[[ $stderr == *"standard output: No space left on device"* ]]
	# Nothing was written, so nothing may be skipped next time.
	[ ! -s s.state ]
	run --separate-stderr pull --state s.state
	assert_success
	assert_equal "$(wc -l <<<"$output")" 20
}

@test "sh-findings --events: CRLF and a BOM are tolerated; rejects keep their bytes" {
	printf '\357\273\277%s\r\n' "$(compact "$CORPUS/asff-finding-afsbp-iam.8.json")" >in.ndjson
	printf 'bad\r\n' >>in.ndjson
	run --separate-stderr sh-findings --events --reject rej.ndjson <in.ndjson
	assert_failure 1
	assert_equal "$(jq -r '.user.name' <<<"$output")" sharrtest
	assert_equal "$(od -An -c rej.ndjson | tr -s ' ')" ' b a d \r \n'
}
