#!/usr/bin/env bats
# Tests of the simulated AWS services (tests/sim/simlib/vendors/aws*.py):
# the SigV4 verifier, Security Hub, STS, IMDS and container credentials. The
# tools' AWS tests rely on these behaviours, so they are pinned here. The
# modules' docstrings are the reference for every setting used below.
#
# Requests are signed by tests/helpers/aws_sign.py, a small signer written
# apart from the simulator's verifier; the first tests hold both to the AWS
# test suite.

load helpers/common
load helpers/sim

AWS_SIGN="$TESTS_DIR/helpers/aws_sign.py"
SIGV4_SUITE="$SHARED/corpus/sigv4/aws4_testsuite"
SH_CORPUS="$SHARED/corpus/vendor/aws-securityhub"
# The corpus's GuardDuty finding; its ProductArn has AWS's own doc typo.
GD_ID='arn:aws::guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea'
GD_ARN='arn:aws::securityhub:us-east-1::product/aws/guardduty'
ROLE='arn:aws:iam::111122223333:role/SocResponder'

setup_file() {
	# The interpreter itself, found once: a version manager's shim on PATH
	# can take longer to start than the request under test.
	AWS_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
	export AWS_PYTHON
}

setup() {
	sim_start
}

teardown() {
	sim_stop
}

# aws_call METHOD PATH [BODY] [SIGNER-OPTIONS...]: sign (default: key
# AKIDSIMULATOR, securityhub, us-east-1) and send; prints {"status",
# "headers", "body", "xml"} as one JSON line.
aws_call() {
	local method=$1 path=$2
	shift 2
	"$AWS_PYTHON" -I -S "$AWS_SIGN" call "$method" "$SIM_URL$path" "$@"
}

# findings BODY [SIGNER-OPTIONS...]: one GetFindings call.
findings() {
	aws_call POST /findings "$@"
}

# scan BODY [SIGNER-OPTIONS...]: GetFindings until no NextToken; prints
# {"pages", "statuses", "ids", "seconds"}.
scan() {
	local body=$1
	shift
	aws_call POST /findings "$body" --follow "$@"
}

# batch BODY [SIGNER-OPTIONS...]: one BatchUpdateFindings call.
batch() {
	aws_call PATCH /findings/batchupdate "$@"
}

# sts 'Action&Param=...' [SIGNER-OPTIONS...]: one STS query call.
sts() {
	local params=$1
	shift
	aws_call POST / "Action=$params&Version=2011-06-15" --service sts "$@"
}

# seed JSON: apply a securityhub_seed now.
seed() {
	_sim_call POST /__aws/securityhub/seed "$1" >/dev/null
}

# stored ID: the stored finding, as the test-only route shows it.
stored() {
	curl --silent --show-error --fail --get --data-urlencode "id=$1" \
		"$SIM_URL/__aws/securityhub/findings"
}

# assume_role [SIGNER-OPTIONS...]: AssumeRole of $ROLE; sets KEY, SECRET
# and TOKEN from the answer.
assume_role() {
	local answer
	answer=$(sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=soc-toolkit" "$@")
	KEY=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId"]' <<<"$answer")
	SECRET=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey"]' <<<"$answer")
	TOKEN=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/SessionToken"]' <<<"$answer")
	[[ $KEY == ASIA* ]] || fail "AssumeRole failed: $answer"
}

# imds_token [TTL]: a fresh IMDSv2 token.
imds_token() {
	curl --silent --show-error --fail -X PUT \
		-H "x-aws-ec2-metadata-token-ttl-seconds: ${1:-21600}" \
		"$SIM_URL/latest/api/token"
}

# http_code [CURL-ARGS...] URL: print only the status code.
http_code() {
	curl --silent --output /dev/null --write-out '%{http_code}\n' "$@"
}

need_corpus() {
	[ -d "$SH_CORPUS" ] || skip_or_fail "no corpus at $SH_CORPUS"
}

# --- SigV4 ------------------------------------------------------------------

@test "sim aws: the test signer reproduces the suite's get-vanilla and post-x-www-form-urlencoded" {
	[ -d "$SIGV4_SUITE" ] || skip_or_fail "no suite at $SIGV4_SUITE"
	local case
	for case in get-vanilla post-x-www-form-urlencoded; do
		run "$AWS_PYTHON" -I -S "$AWS_SIGN" vector "$SIGV4_SUITE/$case"
		assert_success
		assert_output "$(cat "$SIGV4_SUITE/$case/$case.authz")"
		"$AWS_PYTHON" -I -S "$AWS_SIGN" vector "$SIGV4_SUITE/$case" --creq \
			>"$BATS_TEST_TMPDIR/creq"
		cmp "$BATS_TEST_TMPDIR/creq" "$SIGV4_SUITE/$case/$case.creq"
	done
}

@test "sim aws: the verifier's canonical requests and signatures match the AWS suite" {
	[ -d "$SIGV4_SUITE" ] || skip_or_fail "no suite at $SIGV4_SUITE"
	# Each .req is fed to the verifier as the simulator would receive it
	# (folded header lines joined by a space, as sim.py's parser does),
	# with the suite's own Authorization. get-space's request line does not
	# parse and get-vanilla-with-session-token's token is not in its .req.
	run "$AWS_PYTHON" -I -S -B - "$TESTS_DIR/sim" "$SIGV4_SUITE" <<'EOF'
import glob, os, sys
sys.path.insert(0, sys.argv[1])
from simlib.vendors import aws_sigv4 as v
secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
checked = 0
for req in sorted(glob.glob(sys.argv[2] + "/**/*.req", recursive=True)):
    case = req[:-4]
    if os.path.basename(case) in ("get-space", "get-vanilla-with-session-token"):
        continue
    text = open(req, "rb").read().decode("utf-8")
    head, _, body = text.partition("\n\n")
    lines = [l for l in head.split("\n") if l]
    method, target, _ = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        if line[0] in " \t":
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    get_all = lambda n: [val for k, val in headers if k.lower() == n]
    auth = v.parse_authorization(open(case + ".authz").read())
    path, _, query = target.partition("?")
    signed = sorted(h.lower() for h in auth.signed_headers)
    creq = v.canonical_request(method, path, query, get_all, signed,
                               body.encode("utf-8"))
    sts = v.string_to_sign("20150830T123600Z", auth.scope, creq)
    if creq != open(case + ".creq").read():
        print("canonical request differs:", case)
    elif sts != open(case + ".sts").read():
        print("string to sign differs:", case)
    elif v.signature(secret, auth.date, auth.region, auth.service, sts) \
            != auth.signature:
        print("signature differs:", case)
    checked += 1
print("checked", checked)
EOF
	assert_success
	assert_output "checked 32"
}

@test "sim aws: GetFindings signed with the default key answers the corpus, newest first" {
	need_corpus
	run findings '{}'
	assert_success
	jq -e --arg gd "$GD_ID" '.status == 200
		and .headers["content-type"] == "application/json"
		and (.headers["x-amzn-requestid"] | test("^[0-9a-f-]{36}$"))
		and (.body.Findings | length == 7)
		and (.body | has("NextToken") | not)
		and ([.body.Findings[].Id] | index($gd) != null)
		and ([.body.Findings[].UpdatedAt] as $u | $u == ($u | sort | reverse))' \
		<<<"$output"
	# The findings are the corpus's objects, unchanged.
	jq -c --arg gd "$GD_ID" '.body.Findings[] | select(.Id == $gd)' <<<"$output" \
		>"$BATS_TEST_TMPDIR/served"
	jq -c . "$SH_CORPUS/guardduty-asff-finding-awsdocs.json" >"$BATS_TEST_TMPDIR/corpus"
	diff "$BATS_TEST_TMPDIR/corpus" "$BATS_TEST_TMPDIR/served"
}

@test "sim aws: the call log records key, region, scope and signed headers" {
	findings '{}' --region eu-west-1 --header 'X-Soar-Trace: t1' >/dev/null
	findings '{}' --secret wrong >/dev/null
	run curl --silent --fail "$SIM_URL/__aws/calls?service=securityhub"
	assert_success
	jq -e 'length == 2
		and .[0].operation == "GetFindings" and .[0].status == 200
		and .[0].error == null and .[0].access_key == "AKIDSIMULATOR"
		and .[0].region == "eu-west-1"
		and (.[0].scope | test("^[0-9]{8}/eu-west-1/securityhub/aws4_request$"))
		and .[0].signed_headers == ["content-type", "host", "x-amz-date", "x-soar-trace"]
		and .[0].principal == "arn:aws:iam::123456789012:user/simulator"
		and .[0].session_token == false
		and .[1].status == 403 and .[1].error == "InvalidSignatureException"
		and .[1].principal == null' <<<"$output"
	# The raw requests are in the simulator's own log as well.
	run sim_requests path=/findings
	jq -e 'length == 2 and (.[0].headers.authorization
		| startswith("AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR/"))' <<<"$output"
	curl --silent --fail -X DELETE "$SIM_URL/__aws/calls" >/dev/null
	run curl --silent --fail "$SIM_URL/__aws/calls"
	assert_output '[]'
}

@test "sim aws: a wrong secret is 403 InvalidSignatureException showing the canonical request" {
	run findings '{"MaxResults": 1}' --secret not-the-secret
	jq -e '.status == 403
		and .headers["x-amzn-errortype"]
			== "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"
		and (.body | keys == ["message"])
		and (.body.message | startswith("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."))
		and (.body.message | contains("The Canonical String for this request should have been\n'"'"'POST\n/findings\n\ncontent-type:application/json\n"))
		and (.body.message | contains("The String-to-Sign should have been\n'"'"'AWS4-HMAC-SHA256\n"))' \
		<<<"$output"
}

@test "sim aws: a body or signed header changed after signing is rejected, an unsigned header is not" {
	run findings '{"MaxResults": 1}' --send-body '{"MaxResults": 2}'
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("InvalidSignatureException:"))' <<<"$output"
	run findings '{"MaxResults": 1}' --header 'X-Soar-Trace: a' --after 'X-Soar-Trace: b'
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("InvalidSignatureException:"))' <<<"$output"
	run findings '{"MaxResults": 1}' --after 'X-Unsigned: anything'
	jq -e '.status == 200 and (.body.Findings | length == 1)' <<<"$output"
	# Signed header values are compared trimmed, inner runs of spaces as one.
	run findings '{"MaxResults": 1}' --header 'X-Soar-Trace: a  b' --after 'X-Soar-Trace:   a b '
	jq -e '.status == 200' <<<"$output"
}

@test "sim aws: X-Amz-Date more than 5 minutes off is Signature expired or not yet current" {
	local stamp='[0-9]{8}T[0-9]{6}Z'
	run findings '{}' --skew -400
	jq -e --arg re "^Signature expired: $stamp is now earlier than $stamp \\($stamp - 5 min\\.\\)$" \
		'.status == 403 and (.headers["x-amzn-errortype"] | startswith("InvalidSignatureException:"))
		and (.body.message | test($re))' <<<"$output"
	run findings '{}' --skew 400
	jq -e --arg re "^Signature not yet current: $stamp is still later than $stamp \\($stamp \\+ 5 min\\.\\)$" \
		'.status == 403 and (.body.message | test($re))' <<<"$output"
	run findings '{}' --skew -240
	jq -e '.status == 200' <<<"$output"
	# aws_clock_skew_s moves the simulator's clock instead of the client's.
	sim_set aws_clock_skew_s 600
	run findings '{}'
	jq -e '.status == 403 and (.body.message | startswith("Signature expired: "))' <<<"$output"
	run findings '{}' --skew 600
	jq -e '.status == 200' <<<"$output"
	# STS answers the same check as SignatureDoesNotMatch.
	run sts GetCallerIdentity
	jq -e '.status == 403
		and .xml["ErrorResponse/Error/Code"] == "SignatureDoesNotMatch"
		and (.xml["ErrorResponse/Error/Message"] | startswith("Signature expired: "))' <<<"$output"
}

@test "sim aws: a scope with another date, service or a non-region is InvalidSignatureException" {
	run findings '{}' --scope-date 20200101
	jq -e '.status == 403 and (.body.message | startswith("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"'"'20200101'"'"' != "))' \
		<<<"$output"
	run findings '{}' --service sts
	jq -e '.status == 403 and (.body.message | startswith("Credential should be scoped to correct service: '"'"'securityhub'"'"'."))' \
		<<<"$output"
	run findings '{}' --region moon-base
	jq -e '.status == 403 and (.body.message | startswith("Credential should be scoped to a valid region"))' \
		<<<"$output"
	run curl --silent "$SIM_URL/__aws/calls"
	jq -e 'length == 3 and all(.[]; .error == "InvalidSignatureException")' <<<"$output"
}

@test "sim aws: an unknown key is UnrecognizedClientException, no Authorization MissingAuthenticationTokenException" {
	run findings '{}' --key AKIDUNKNOWN
	jq -e '.status == 403
		and (.headers["x-amzn-errortype"] | startswith("UnrecognizedClientException:"))
		and .body == {"message": "The security token included in the request is invalid."}' \
		<<<"$output"
	run findings '{}' --no-sign
	jq -e '.status == 403
		and (.headers["x-amzn-errortype"] | startswith("MissingAuthenticationTokenException:"))
		and .body == {"message": "Missing Authentication Token"}' <<<"$output"
	run findings '{}' --after 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR/20250101/us-east-1/securityhub'
	jq -e '.status == 403
		and (.headers["x-amzn-errortype"] | startswith("IncompleteSignatureException:"))' <<<"$output"
}

@test "sim aws: a key issued with a session token needs exactly that token, signed or not" {
	sim_set aws_credentials '{"AKIDTEMPORARY01": {"secret": "s3cr3t", "token": "tok-1"}}'
	local opts=(--key AKIDTEMPORARY01 --secret s3cr3t)
	run findings '{}' "${opts[@]}"
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("UnrecognizedClientException:"))' <<<"$output"
	run findings '{}' "${opts[@]}" --token tok-2
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("UnrecognizedClientException:"))' <<<"$output"
	run findings '{}' "${opts[@]}" --token tok-1
	jq -e '.status == 200' <<<"$output"
	run findings '{}' "${opts[@]}" --token tok-1 --token-unsigned
	jq -e '.status == 200' <<<"$output"
	run curl --silent "$SIM_URL/__aws/calls"
	jq -e '[.[] | select(.status == 200) | [.session_token, .token_signed]]
		== [[true, true], [true, false]]' <<<"$output"
	# The setting replaces the default key; a long-term key takes no token.
	run findings '{}'
	jq -e '.status == 403' <<<"$output"
	sim_set aws_credentials '{"AKIDLONGTERM001": {"secret": "s"}}'
	run findings '{}' --key AKIDLONGTERM001 --secret s --token stray
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("UnrecognizedClientException:"))' <<<"$output"
	run findings '{}' --key AKIDLONGTERM001 --secret s
	jq -e '.status == 200' <<<"$output"
}

# --- Security Hub: GetFindings ------------------------------------------------

@test "sim aws: paging returns each finding of the region exactly once, across equal UpdatedAt" {
	sim_set securityhub_throttle false
	seed '{"count": 600, "regions": ["us-east-1", "eu-west-1"], "same_updated_at": 150, "corpus": false}'
	run curl --silent --fail "$SIM_URL/__aws/securityhub/findings"
	jq -e '.count == 600 and .regions == {"us-east-1": 300, "eu-west-1": 300}' <<<"$output"
	scan '{"MaxResults": 40}' >"$BATS_TEST_TMPDIR/desc"
	jq -e '.pages == 8 and (.statuses | unique) == [200]
		and (.ids | length) == 300 and (.ids | unique | length) == 300' \
		"$BATS_TEST_TMPDIR/desc"
	scan '{"MaxResults": 40, "SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "asc"}]}' \
		>"$BATS_TEST_TMPDIR/asc"
	jq -e '(.ids | length) == 300' "$BATS_TEST_TMPDIR/asc"
	[ "$(jq -c '.ids | sort' "$BATS_TEST_TMPDIR/asc")" = "$(jq -c '.ids | sort' "$BATS_TEST_TMPDIR/desc")" ] ||
		fail "ascending and descending scans saw different findings"
	# The 150 findings sharing one UpdatedAt spanned several pages.
	scan '{"MaxResults": 40, "Filters": {"UpdatedAt": [{"Start": "1970-01-01T00:00:00Z"}]}}' --findings \
		>"$BATS_TEST_TMPDIR/all"
	jq -e '[.findings[].UpdatedAt] | group_by(.) | map(length) | max == 150' "$BATS_TEST_TMPDIR/all"
}

@test "sim aws: a NextToken can be retried and answers the same page" {
	need_corpus
	run findings '{"MaxResults": 3}'
	local token
	token=$(jq -r .body.NextToken <<<"$output")
	[ -n "$token" ] && [ "$token" != null ] || fail "no NextToken: $output"
	local body
	body=$(jq -nc --arg t "$token" '{MaxResults: 3, NextToken: $t}')
	findings "$body" | jq -c '[.body.Findings[].Id]' >"$BATS_TEST_TMPDIR/p1"
	findings "$body" | jq -c '[.body.Findings[].Id]' >"$BATS_TEST_TMPDIR/p2"
	cmp "$BATS_TEST_TMPDIR/p1" "$BATS_TEST_TMPDIR/p2"
	jq -e 'length == 3' "$BATS_TEST_TMPDIR/p1"
	jq -e --argjson first "$(jq -c '[.body.Findings[].Id]' <<<"$output")" \
		'(. + $first | unique | length) == 6' "$BATS_TEST_TMPDIR/p1"
}

@test "sim aws: findings are scoped to the region of the signature" {
	need_corpus
	seed '{"count": 20, "regions": ["eu-west-1"]}'
	run findings '{}'
	jq -e '.status == 200 and (.body.Findings | length == 7)
		and all(.body.Findings[]; .ProductArn | test(":us-east-1:"))' <<<"$output"
	run findings '{}' --region eu-west-1
	jq -e '(.body.Findings | length == 20)
		and all(.body.Findings[]; .Region == "eu-west-1"
			and (.ProductArn | test("^arn:aws:securityhub:eu-west-1::product/aws/")))' \
		<<<"$output"
	run findings '{}' --region ap-south-1
	jq -e '.status == 200 and .body == {"Findings": []}' <<<"$output"
}

@test "sim aws: securityhub_aggregation shows linked regions from the home region only" {
	need_corpus
	seed '{"count": 20, "regions": ["eu-west-1"]}'
	sim_set securityhub_aggregation '{"home": "us-east-1", "linked": ["eu-west-1"]}'
	run findings '{}'
	jq -e '.body.Findings | length == 27' <<<"$output"
	run findings '{}' --region eu-west-1
	jq -e '.body.Findings | length == 20' <<<"$output"
}

@test "sim aws: string filters select what jq selects from the whole set" {
	sim_set securityhub_throttle false
	seed '{"count": 400, "guardduty_share": 0.5, "corpus": false}'
	scan '{}' --findings | jq -c .findings >"$BATS_TEST_TMPDIR/all"
	jq -e 'length == 400' "$BATS_TEST_TMPDIR/all"
	local filters expected got n
	while IFS='|' read -r filters expected; do
		got=$(scan "{\"Filters\": $filters}" </dev/null | jq -c '.ids | sort')
		n=$(jq -c "[.[] | select($expected) | .Id] | sort" "$BATS_TEST_TMPDIR/all")
		[ "$got" = "$n" ] || fail "Filters $filters: got $(jq length <<<"$got"), expected $(jq length <<<"$n")"
		jq -e 'length > 0 and length < 400' <<<"$got" >/dev/null ||
			fail "Filters $filters select $(jq length <<<"$got") findings: no test"
	done <<'EOF'
{"SeverityLabel": [{"Value": "HIGH", "Comparison": "EQUALS"}, {"Value": "CRITICAL", "Comparison": "EQUALS"}], "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}], "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}|(.Severity.Label == "HIGH" or .Severity.Label == "CRITICAL") and .Workflow.Status == "NEW" and .RecordState == "ACTIVE"
{"ProductName": [{"Value": "GuardDuty", "Comparison": "EQUALS"}]}|.ProductName == "GuardDuty"
{"Type": [{"Value": "TTPs/", "Comparison": "PREFIX"}]}|any(.Types[]; startswith("TTPs/"))
{"ResourceId": [{"Value": ":instance/i-", "Comparison": "CONTAINS"}]}|any(.Resources[]; .Id | contains(":instance/i-"))
{"Id": [{"Value": "arn:aws:guardduty:", "Comparison": "PREFIX"}], "SeverityLabel": [{"Value": "LOW", "Comparison": "NOT_EQUALS"}, {"Value": "MEDIUM", "Comparison": "NOT_EQUALS"}]}|(.Id | startswith("arn:aws:guardduty:")) and .Severity.Label != "LOW" and .Severity.Label != "MEDIUM"
{"GeneratorId": [{"Value": "aws-foundational-security-best-practices/", "Comparison": "PREFIX_NOT_EQUALS"}], "Title": [{"Value": "brute force", "Comparison": "NOT_CONTAINS"}]}|(.GeneratorId | startswith("aws-foundational-security-best-practices/") | not) and (.Title | contains("brute force") | not)
{"ResourceType": [{"Value": "AwsIamUser", "Comparison": "EQUALS"}, {"Value": "AwsIamAccessKey", "Comparison": "EQUALS"}]}|any(.Resources[]; .Type == "AwsIamUser" or .Type == "AwsIamAccessKey")
{"ComplianceStatus": [{"Value": "PASSED", "Comparison": "EQUALS"}]}|.Compliance.Status == "PASSED"
{"SeverityNormalized": [{"Gte": 70}]}|.Severity.Normalized >= 70
EOF
	# Values are case-sensitive.
	run findings '{"Filters": {"ProductName": [{"Value": "guardduty", "Comparison": "EQUALS"}]}}'
	jq -e '.body.Findings == []' <<<"$output"
}

@test "sim aws: corpus findings without ProductName filter by the name the service fills in" {
	need_corpus
	run findings '{"Filters": {"ProductName": [{"Value": "GuardDuty", "Comparison": "EQUALS"}]}}'
	jq -e --arg gd "$GD_ID" '[.body.Findings[].Id] == [$gd]' <<<"$output"
	run findings '{"Filters": {"ProductName": [{"Value": "Security Hub", "Comparison": "EQUALS"}]}}'
	jq -e '.body.Findings | length == 6' <<<"$output"
}

@test "sim aws: date filters take Start and End, and DateRange WITHIN and OLDER_THAN days" {
	sim_set securityhub_throttle false
	seed '{"count": 300, "days": 10, "anchor": "2030-01-11T00:00:00Z", "corpus": false}'
	scan '{}' --findings | jq -c .findings >"$BATS_TEST_TMPDIR/all"
	local got expected
	got=$(scan '{"Filters": {"UpdatedAt": [{"Start": "2030-01-05T00:00:00Z", "End": "2030-01-08T12:00:00.000Z"}]}}' | jq -c '.ids | sort')
	expected=$(jq -c '[.[] | select(.UpdatedAt >= "2030-01-05T00:00:00" and .UpdatedAt <= "2030-01-08T12:00:00.000Z") | .Id] | sort' "$BATS_TEST_TMPDIR/all")
	[ "$got" = "$expected" ] || fail "Start/End: $(jq length <<<"$got") vs $(jq length <<<"$expected")"
	jq -e 'length > 50 and length < 250' <<<"$got"
	# The simulator's clock set to the anchor: DateRange counts back from it.
	local skew
	skew=$(($(date -d 2030-01-11T00:00:00Z +%s) - $(date +%s)))
	sim_set aws_clock_skew_s "$skew"
	local within older
	within=$(scan '{"Filters": {"UpdatedAt": [{"DateRange": {"Value": 3, "Unit": "DAYS"}}]}}' --skew "$skew" --findings)
	older=$(scan '{"Filters": {"UpdatedAt": [{"DateRange": {"Value": 3, "Unit": "DAYS", "Comparison": "OLDER_THAN"}}]}}' --skew "$skew" --findings)
	jq -e '(.findings | length) > 30 and all(.findings[]; .UpdatedAt >= "2030-01-07T23:59")' <<<"$within"
	jq -e '(.findings | length) > 150 and all(.findings[]; .UpdatedAt <= "2030-01-08T00:01")' <<<"$older"
	[ $(($(jq '.ids | length' <<<"$within") + $(jq '.ids | length' <<<"$older"))) -eq 300 ] ||
		fail "WITHIN and OLDER_THAN do not split the set"
}

@test "sim aws: SortCriteria orders by severity rank and by text, ties by Id" {
	sim_set securityhub_throttle false
	seed '{"count": 250, "corpus": false}'
	run scan '{"SortCriteria": [{"Field": "SeverityLabel", "SortOrder": "desc"}]}' --findings
	jq -e '[.findings[].Severity.Label | {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}[.]] as $r
		| $r == ($r | sort | reverse) and ($r | unique | length) == 5' <<<"$output"
	# Within one severity the order is by Id.
	jq -e '[.findings[] | select(.Severity.Label == "HIGH") | .Id] as $ids | $ids == ($ids | sort)' <<<"$output"
	run scan '{"SortCriteria": [{"Field": "Title", "SortOrder": "asc"}, {"Field": "UpdatedAt", "SortOrder": "desc"}]}' --findings
	jq -e '[.findings[] | [.Title, .UpdatedAt]] as $t
		| ($t | map(.[0])) == ($t | map(.[0]) | sort)
		and ([$t | group_by(.[0])[] | map(.[1]) | . == (sort | reverse)] | all)' <<<"$output"
	run scan '{"SortCriteria": [{"Field": "Title", "SortOrder": "desc"}]}' --findings
	jq -e '[.findings[].Title] as $t | $t == ($t | sort | reverse)' <<<"$output"
}

@test "sim aws: GetFindings refuses bad input with 400 InvalidInputException" {
	need_corpus
	sim_set securityhub_throttle false
	local body
	for body in '{"MaxResults": 0}' '{"MaxResults": 101}' '{"MaxResults": "5"}' \
		'{"Filter": {}}' \
		'{"Filters": {"Severity": [{"Value": "HIGH", "Comparison": "EQUALS"}]}}' \
		'{"Filters": {"SeverityLabel": [{"Value": "HIGH", "Comparison": "IS"}]}}' \
		'{"Filters": {"SeverityLabel": [{"Value": "HIGH", "Comparison": "EQUALS"}, {"Value": "LOW", "Comparison": "NOT_EQUALS"}]}}' \
		'{"Filters": {"UpdatedAt": [{"DateRange": {"Value": 1, "Unit": "HOURS"}}]}}' \
		'{"Filters": {"UpdatedAt": [{"Start": "yesterday"}]}}' \
		'{"SortCriteria": [{"Field": "Nope", "SortOrder": "asc"}]}' \
		'{"NextToken": "bm90IGEgdG9rZW4="}'; do
		run findings "$body"
		jq -e '.status == 400 and .headers["x-amzn-errortype"] == "InvalidInputException"
			and .body.Code == "InvalidInputException" and (.body.Message | length > 0)' \
			<<<"$output" >/dev/null || fail "$body: $output"
	done
	# Eleven filter attributes are one too many.
	body=$(jq -nc '{Filters: ([range(11)] | map({key: (["Id", "ProductArn", "AwsAccountId",
		"GeneratorId", "ProductName", "CompanyName", "Title", "SeverityLabel",
		"WorkflowStatus", "RecordState", "Type"][.]), value: [{Value: "x", Comparison: "NOT_EQUALS"}]})
		| from_entries)}')
	run findings "$body"
	jq -e '.status == 400' <<<"$output"
	run findings '{"MaxResults": 2' --content-type application/json
	jq -e '.status == 400 and (.headers["x-amzn-errortype"] | startswith("SerializationException"))' <<<"$output"
	# A token is tied to its query.
	local token
	token=$(findings '{"MaxResults": 2}' | jq -r .body.NextToken)
	run findings "$(jq -nc --arg t "$token" '{MaxResults: 2, NextToken: $t,
		Filters: {RecordState: [{Value: "ACTIVE", Comparison: "EQUALS"}]}}')"
	jq -e '.status == 400 and .body.Message == "Input Query has changed"' <<<"$output"
	run findings "$(jq -nc --arg t "$token" '{MaxResults: 2, NextToken: $t}')" --region eu-west-1
	jq -e '.status == 400 and .body.Message == "Input Query has changed"' <<<"$output"
	run findings "$(jq -nc --arg t "$token" '{MaxResults: 5, NextToken: $t}')"
	jq -e '.status == 200 and (.body.Findings | length == 5)' <<<"$output"
}

@test "sim aws: late findings appear on a later page of an ascending scan" {
	sim_set securityhub_throttle false
	seed '{"count": 50, "days": 2, "corpus": false}'
	run findings '{"MaxResults": 10, "SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "asc"}]}'
	local token first
	token=$(jq -r .body.NextToken <<<"$output")
	first=$(jq -c '[.body.Findings[].Id]' <<<"$output")
	# One finding newer than all, one older than the cursor.
	local late
	late=$(jq -c '.body.Findings[0]
		| [(.Id = "late-newest" | .UpdatedAt = "2099-01-01T00:00:00.000Z"),
		   (.Id = "late-oldest" | .UpdatedAt = "2000-01-01T00:00:00.000Z")]' <<<"$output")
	run curl --silent --fail -X POST --data-binary "$late" "$SIM_URL/__aws/securityhub/findings"
	assert_output '{"ok": true, "added": 2, "replaced": 0}'
	run scan "$(jq -nc --arg t "$token" '{MaxResults: 10, NextToken: $t,
		SortCriteria: [{Field: "UpdatedAt", SortOrder: "asc"}]}')"
	jq -e --argjson first "$first" '(.ids | length) == 41 and .ids[-1] == "late-newest"
		and (.ids | index("late-oldest") == null)
		and ((.ids + $first) | unique | length) == 51' <<<"$output"
	# A new scan sees both.
	run scan '{}'
	jq -e '(.ids | length) == 52' <<<"$output"
	# The route refuses findings without the required ASFF fields.
	run curl --silent -X POST --data-binary '[{"Id": "x", "ProductArn": "y"}]' \
		--write-out '\n%{http_code}' "$SIM_URL/__aws/securityhub/findings"
	assert_line --index 1 400
}

# --- Security Hub: BatchUpdateFindings ----------------------------------------------

@test "sim aws: BatchUpdateFindings sets workflow and note and keeps UpdatedAt" {
	need_corpus
	local body
	body=$(jq -nc --arg id "$GD_ID" --arg arn "$GD_ARN" '{FindingIdentifiers: [{Id: $id, ProductArn: $arn}],
		Workflow: {Status: "NOTIFIED"}, Note: {Text: "Ticket SOC-123", UpdatedBy: "soc-toolkit"},
		VerificationState: "TRUE_POSITIVE", Severity: {Label: "HIGH"}}')
	run batch "$body"
	jq -e --arg id "$GD_ID" --arg arn "$GD_ARN" '.status == 200
		and .body == {"ProcessedFindings": [{"Id": $id, "ProductArn": $arn}], "UnprocessedFindings": []}' \
		<<<"$output"
	run stored "$GD_ID"
	jq -e '.Workflow.Status == "NOTIFIED" and .Note.Text == "Ticket SOC-123"
		and .Note.UpdatedBy == "soc-toolkit"
		and (.Note.UpdatedAt | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))
		and .VerificationState == "TRUE_POSITIVE"
		and .Severity.Label == "HIGH" and .Severity.Normalized == 70
		and .UpdatedAt == "2020-09-30T12:14:00.206Z"' <<<"$output"
	run findings '{"Filters": {"WorkflowStatus": [{"Value": "NOTIFIED", "Comparison": "EQUALS"}]}}'
	jq -e --arg id "$GD_ID" '[.body.Findings[].Id] == [$id]
		and .body.Findings[0].Note.Text == "Ticket SOC-123"' <<<"$output"
}

@test "sim aws: BatchUpdateFindings reports unknown, foreign-region and duplicated findings" {
	need_corpus
	local body
	body=$(jq -nc --arg id "$GD_ID" --arg arn "$GD_ARN" '{FindingIdentifiers: [
		{Id: $id, ProductArn: $arn}, {Id: "nope", ProductArn: $arn},
		{Id: $id, ProductArn: $arn}], Workflow: {Status: "RESOLVED"}}')
	run batch "$body"
	jq -e --arg id "$GD_ID" --arg arn "$GD_ARN" '.status == 200
		and .body.ProcessedFindings == [{"Id": $id, "ProductArn": $arn}]
		and .body.UnprocessedFindings == [
			{"FindingIdentifier": {"Id": "nope", "ProductArn": $arn},
			 "ErrorCode": "FindingNotFound", "ErrorMessage": "Finding Not Found"},
			{"FindingIdentifier": {"Id": $id, "ProductArn": $arn},
			 "ErrorCode": "DuplicatedFindingIdentifier",
			 "ErrorMessage": "Finding Identifier is duplicated"}]' <<<"$output"
	# The finding lives in us-east-1: from eu-west-1 it is not found.
	run batch "$body" --region eu-west-1
	jq -e '.body.ProcessedFindings == [] and ([.body.UnprocessedFindings[].ErrorCode]
		== ["FindingNotFound", "FindingNotFound", "DuplicatedFindingIdentifier"])' <<<"$output"
	run stored "$GD_ID"
	jq -e '.Workflow.Status == "RESOLVED"' <<<"$output"
}

@test "sim aws: BatchUpdateFindings refuses bad input with 400 InvalidInputException" {
	local ident='{"Id": "a", "ProductArn": "b"}' body hundred_one
	hundred_one=$(jq -nc '{FindingIdentifiers: [range(101) | {Id: "f\(.)", ProductArn: "p"}], Workflow: {Status: "NEW"}}')
	for body in '{"Workflow": {"Status": "NEW"}}' \
		'{"FindingIdentifiers": [], "Workflow": {"Status": "NEW"}}' \
		"$hundred_one" \
		"{\"FindingIdentifiers\": [$ident]}" \
		"{\"FindingIdentifiers\": [{\"Id\": \"a\"}], \"Workflow\": {\"Status\": \"NEW\"}}" \
		"{\"FindingIdentifiers\": [$ident], \"Workflow\": {\"Status\": \"DONE\"}}" \
		"{\"FindingIdentifiers\": [$ident], \"Note\": {\"Text\": \"t\"}}" \
		"$(jq -nc --argjson i "$ident" '{FindingIdentifiers: [$i], Note: {Text: ("x" * 513), UpdatedBy: "me"}}')" \
		"{\"FindingIdentifiers\": [$ident], \"Severity\": {\"Label\": \"SEVERE\"}}" \
		"{\"FindingIdentifiers\": [$ident], \"Confidence\": 101}" \
		"{\"FindingIdentifiers\": [$ident], \"Workflow\": {\"Status\": \"NEW\"}, \"Colour\": \"red\"}"; do
		run batch "$body"
		jq -e '.status == 400 and .body.Code == "InvalidInputException"' <<<"$output" >/dev/null ||
			fail "$body: $output"
	done
	# A Note of exactly 512 characters is fine.
	run batch "$(jq -nc --argjson i "$ident" '{FindingIdentifiers: [$i], Note: {Text: ("x" * 512), UpdatedBy: "me"}}')"
	jq -e '.status == 200 and .body.UnprocessedFindings[0].ErrorCode == "FindingNotFound"' <<<"$output"
	# The operation is PATCH only.
	run aws_call POST /findings/batchupdate "{\"FindingIdentifiers\": [$ident]}"
	jq -e '.status == 405' <<<"$output"
}

# --- Security Hub: throttling -------------------------------------------------

@test "sim aws: GetFindings allows a burst of 6, then 429 TooManyRequestsException" {
	# Twelve quick requests: the burst of 6, then 429s, but for the
	# tokens that came back meanwhile (3 a second).
	run findings '{"MaxResults": 1}' --repeat 12
	jq -e '([.statuses[] | select(. == 200)] | length) as $ok
		| .statuses[:6] == [200, 200, 200, 200, 200, 200]
		and $ok <= 7 + (3 * .seconds | floor)
		and (.statuses - [200] | unique) == [429]
		and .first["429"].headers["x-amzn-errortype"] == "TooManyRequestsException"
		and .first["429"].body == {"message": "Too Many Requests"}' <<<"$output"
	# Each operation has its own bucket.
	run batch '{"FindingIdentifiers": [{"Id": "a", "ProductArn": "b"}], "Workflow": {"Status": "NEW"}}'
	jq -e '.status == 200' <<<"$output"
	run curl --silent "$SIM_URL/__aws/calls?operation=GetFindings"
	jq -e '[.[] | select(.status == 429)] | length >= 1 and all(.[]; .error == "TooManyRequestsException")' <<<"$output"
	# So has each region; 16 requests 0.1 s apart get the burst and the
	# tokens of the time they took.
	run findings '{"MaxResults": 1}' --region eu-west-1 --repeat 16 --interval 0.1
	jq -e '([.statuses[] | select(. == 200)] | length) as $ok
		| (6 + (3 * .seconds | floor)) as $expected
		| $ok >= $expected - 1 and $ok <= $expected + 1 and $ok < 16' <<<"$output"
}

@test "sim aws: BatchUpdateFindings allows a burst of 30; securityhub_throttle changes or lifts the limits" {
	local body='{"FindingIdentifiers": [{"Id": "a", "ProductArn": "b"}], "Workflow": {"Status": "NEW"}}'
	run batch "$body" --repeat 40
	jq -e '([.statuses[] | select(. == 200)] | length) as $ok
		| .statuses[:30] == [range(30) | 200]
		and $ok <= 31 + (10 * .seconds | floor)
		and ($ok < 40 or .seconds > 0.9)' <<<"$output"
	sim_set securityhub_throttle false
	run findings '{"MaxResults": 1}' --repeat 20
	jq -e '.statuses == [range(20) | 200]' <<<"$output"
	sim_set securityhub_throttle '{"GetFindings": {"rate": 0.01, "burst": 2}}'
	sim_set securityhub_throttle_error '"LimitExceededException"'
	run findings '{"MaxResults": 1}' --repeat 3
	jq -e '.statuses == [200, 200, 429]
		and .first["429"].headers["x-amzn-errortype"] == "LimitExceededException"
		and .first["429"].body == {"Code": "LimitExceededException", "Message": "Rate exceeded"}' \
		<<<"$output"
}

# --- Security Hub: seeding ----------------------------------------------------

@test "sim aws: generated findings are realistic ASFF and the same for the same seed" {
	sim_set securityhub_throttle false
	local config='{"count": 300, "regions": ["us-east-1", "eu-west-1"], "guardduty_share": 0.5, "anchor": "2030-01-11T00:00:00Z", "corpus": false}'
	seed "$config"
	scan '{}' --findings | jq -c .findings >"$BATS_TEST_TMPDIR/one"
	jq -e 'length == 150 and all(.[]; .SchemaVersion == "2018-10-08"
		and (.Id | type == "string") and (.GeneratorId | type == "string")
		and .AwsAccountId == "123456789012" and .Region == "us-east-1"
		and (.CreatedAt <= .UpdatedAt) and (.Title | length <= 256)
		and (.Resources | length >= 1)
		and (.Severity.Label | IN("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"))
		and (.Workflow.Status | IN("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"))
		and (.RecordState | IN("ACTIVE", "ARCHIVED")))' "$BATS_TEST_TMPDIR/one"
	# GuardDuty findings carry the remote IP in ProductFields (API.md 3.5),
	# some in Action too; EC2 resources have instance ids, IAM ones principals.
	jq -e '[.[] | select(.ProductName == "GuardDuty")] as $gd
		| ($gd | length) > 40
		and all($gd[]; (.ProductArn == "arn:aws:securityhub:us-east-1::product/aws/guardduty")
			and (.Id | test("^arn:aws:guardduty:us-east-1:123456789012:detector/[0-9a-f]{32}/finding/[0-9a-f]{32}$"))
			and ([.ProductFields | to_entries[]
				| select(.key | test("^aws/guardduty/service/action/(networkConnectionAction|awsApiCallAction)/remoteIpDetails/ipAddressV4$"))
				| .value | test("^(203\\.0\\.113|198\\.51\\.100|192\\.0\\.2)\\.[0-9]+$")] == [true]))
		and any($gd[]; .Types[0] == "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B")
		and any($gd[]; .Action.NetworkConnectionAction.RemoteIpDetails.IpAddressV4)
		and any($gd[]; has("Action") | not)
		and all($gd[] | .Resources[] | select(.Type == "AwsEc2Instance");
			.Id | test("^arn:aws:ec2:us-east-1:123456789012:instance/i-[0-9a-f]{17}$"))
		and any($gd[] | .Resources[]; .Type == "AwsIamAccessKey"
			and .Details.AwsIamAccessKey.PrincipalType == "IAMUser"
			and (.Details.AwsIamAccessKey.PrincipalName | length > 0))' \
		"$BATS_TEST_TMPDIR/one"
	jq -e '[.[] | select(.ProductName == "Security Hub")] as $sh
		| ($sh | length) > 40
		and all($sh[]; (.GeneratorId | startswith("aws-foundational-security-best-practices/v/1.0.0/"))
			and (.Compliance.Status | IN("PASSED", "FAILED")))
		and all($sh[] | select(.Compliance.Status == "PASSED");
			.Severity.Label == "INFORMATIONAL" and .Workflow.Status == "RESOLVED")' \
		"$BATS_TEST_TMPDIR/one"
	# Instances recur, as in a real account.
	jq -e '[.[] | .Resources[] | select(.Type == "AwsEc2Instance") | .Id] | length > (unique | length)' \
		"$BATS_TEST_TMPDIR/one"
	seed '{"count": 1, "corpus": false}'
	seed "$config"
	scan '{}' --findings | jq -c .findings >"$BATS_TEST_TMPDIR/two"
	cmp "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/two"
}

@test "sim aws: the securityhub_seed setting applies on the next request" {
	sim_set securityhub_seed '{"count": 30, "corpus": false}'
	run findings '{}'
	jq -e '.status == 200 and (.body.Findings | length == 30)' <<<"$output"
	sim_set securityhub_seed '{"count": 12, "corpus": false}'
	run findings '{}'
	jq -e '.body.Findings | length == 12' <<<"$output"
	# A bad setting is refused by the seed route.
	run curl --silent -X POST --data-binary '{"count": -1}' --write-out '\n%{http_code}' \
		"$SIM_URL/__aws/securityhub/seed"
	assert_line --index 1 400
}

@test "sim aws: 50,000 findings page quickly" {
	sim_set securityhub_throttle false
	run curl --silent --fail -X POST --data-binary \
		'{"count": 50000, "regions": ["us-east-1", "eu-west-1"], "corpus": false}' \
		"$SIM_URL/__aws/securityhub/seed"
	assert_output '{"ok": true, "count": 50000, "regions": {"us-east-1": 25000, "eu-west-1": 25000}}'
	run scan '{"MaxResults": 100}'
	jq -e '.pages == 250 and (.ids | length) == 25000 and (.ids | unique | length) == 25000
		and .seconds < 10' <<<"$output"
}

@test "sim aws: /_sim/reset restores the corpus and forgets issued credentials" {
	need_corpus
	batch "$(jq -nc --arg id "$GD_ID" --arg arn "$GD_ARN" \
		'{FindingIdentifiers: [{Id: $id, ProductArn: $arn}], Workflow: {Status: "SUPPRESSED"}}')" >/dev/null
	seed '{"count": 10}'
	assume_role
	sim_reset
	run findings '{}'
	jq -e --arg id "$GD_ID" '(.body.Findings | length == 7)
		and (.body.Findings[] | select(.Id == $id) | .Workflow.Status == "NEW")' <<<"$output"
	run findings '{}' --key "$KEY" --secret "$SECRET" --token "$TOKEN"
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("UnrecognizedClientException:"))' <<<"$output"
	run curl --silent "$SIM_URL/__aws/calls"
	jq -e 'length == 2' <<<"$output"
}

@test "sim aws: a fault rule on /findings applies before the signature check" {
	sim_fault '{"path": "^/findings$", "status": 503, "count": 1}'
	run findings '{}' --no-sign
	jq -e '.status == 503' <<<"$output"
	run findings '{}' --no-sign
	jq -e '.status == 403' <<<"$output"
}

# --- STS ----------------------------------------------------------------------

@test "sim aws: AssumeRole answers API.md's XML with credentials the verifier accepts" {
	local before
	before=$(date +%s)
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=soc-toolkit&DurationSeconds=900"
	jq -e --argjson t "$before" '.status == 200 and .headers["content-type"] == "text/xml"
		and (.headers["x-amzn-requestid"] | test("^[0-9a-f-]{36}$"))
		and .xml_paths == ["AssumeRoleResponse", "AssumeRoleResponse/AssumeRoleResult",
			"AssumeRoleResponse/AssumeRoleResult/Credentials",
			"AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId",
			"AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey",
			"AssumeRoleResponse/AssumeRoleResult/Credentials/SessionToken",
			"AssumeRoleResponse/AssumeRoleResult/Credentials/Expiration",
			"AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser",
			"AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/AssumedRoleId",
			"AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/Arn",
			"AssumeRoleResponse/ResponseMetadata",
			"AssumeRoleResponse/ResponseMetadata/RequestId"]
		and (.body | startswith("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"))
		and (.xml | .["AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId"] | test("^ASIA[A-Z2-7]{16}$"))
		and (.xml | .["AssumeRoleResponse/AssumeRoleResult/Credentials/Expiration"]
			| test("^[0-9-]{10}T[0-9:]{8}Z$") and (fromdate - $t | . >= 899 and . <= 905))
		and (.xml | .["AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/AssumedRoleId"] | test("^AROA[A-Z2-7]{17}:soc-toolkit$"))
		and .xml["AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/Arn"]
			== "arn:aws:sts::111122223333:assumed-role/SocResponder/soc-toolkit"' \
		<<<"$output"
	assume_role
	run findings '{"MaxResults": 1}' --key "$KEY" --secret "$SECRET" --token "$TOKEN"
	jq -e '.status == 200' <<<"$output"
	run sts GetCallerIdentity --key "$KEY" --secret "$SECRET" --token "$TOKEN"
	jq -e '.xml["GetCallerIdentityResponse/GetCallerIdentityResult/Arn"]
			== "arn:aws:sts::111122223333:assumed-role/SocResponder/soc-toolkit"
		and .xml["GetCallerIdentityResponse/GetCallerIdentityResult/Account"] == "111122223333"' \
		<<<"$output"
	run curl --silent "$SIM_URL/__aws/calls?service=securityhub"
	jq -e --arg k "$KEY" '.[-1].access_key == $k and .[-1].session_token and .[-1].token_signed
		and .[-1].principal == "arn:aws:sts::111122223333:assumed-role/SocResponder/soc-toolkit"' \
		<<<"$output"
	run findings '{}' --key "$KEY" --secret "$SECRET"
	jq -e '.status == 403' <<<"$output"
}

@test "sim aws: AssumeRole validates its parameters with ValidationError" {
	local params
	for params in "AssumeRole&RoleArn=$ROLE&RoleSessionName=x" \
		"AssumeRole&RoleArn=$ROLE&RoleSessionName=has%20space" \
		"AssumeRole&RoleArn=$ROLE&RoleSessionName=$(printf 'a%.0s' {1..65})" \
		"AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&DurationSeconds=899" \
		"AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&DurationSeconds=43201" \
		"AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&ExternalId=x" \
		"AssumeRole&RoleSessionName=ok"; do
		run sts "$params"
		jq -e '.status == 400 and .xml["ErrorResponse/Error/Type"] == "Sender"
			and .xml["ErrorResponse/Error/Code"] == "ValidationError"
			and (.xml["ErrorResponse/Error/Message"] | test("^1 validation error detected: Value .* at .* failed to satisfy constraint: Member must"))' \
			<<<"$output" >/dev/null || fail "$params: $output"
	done
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=x&DurationSeconds=100"
	jq -e '.xml["ErrorResponse/Error/Message"] | startswith("2 validation errors detected: ")' <<<"$output"
	run sts "AssumeRole&RoleArn=arn:aws:iam::111122223333:user/bob&RoleSessionName=ok"
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "AccessDenied"
		and .xml["ErrorResponse/Error/Message"] == "User: arn:aws:iam::123456789012:user/simulator is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:user/bob"' \
		<<<"$output"
}

@test "sim aws: aws_roles limits roles, external ids, callers and session length" {
	sim_set aws_roles "{\"$ROLE\": {\"external_id\": \"ext-42\", \"max_session_duration\": 7200},
		\"arn:aws:iam::111122223333:role/Locked\": {\"allowed\": [\"AKIDOTHER\"]}}"
	run sts "AssumeRole&RoleArn=arn:aws:iam::111122223333:role/Other&RoleSessionName=ok"
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "AccessDenied"' <<<"$output"
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=ok"
	jq -e '.xml["ErrorResponse/Error/Code"] == "AccessDenied"' <<<"$output"
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&ExternalId=ext-41"
	jq -e '.xml["ErrorResponse/Error/Code"] == "AccessDenied"' <<<"$output"
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&ExternalId=ext-42&DurationSeconds=7200"
	jq -e '.status == 200' <<<"$output"
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&ExternalId=ext-42&DurationSeconds=7201"
	jq -e '.status == 400 and .xml["ErrorResponse/Error/Message"]
		== "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."' <<<"$output"
	run sts "AssumeRole&RoleArn=arn:aws:iam::111122223333:role/Locked&RoleSessionName=ok"
	jq -e '.xml["ErrorResponse/Error/Code"] == "AccessDenied"' <<<"$output"
	# A role session assuming a role is limited to one hour.
	local creds
	creds=$(sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=ok&ExternalId=ext-42")
	KEY=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId"]' <<<"$creds")
	SECRET=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey"]' <<<"$creds")
	TOKEN=$(jq -r '.xml["AssumeRoleResponse/AssumeRoleResult/Credentials/SessionToken"]' <<<"$creds")
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=chain&ExternalId=ext-42&DurationSeconds=3601" \
		--key "$KEY" --secret "$SECRET" --token "$TOKEN"
	jq -e '.status == 400 and .xml["ErrorResponse/Error/Message"]
		== "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."' \
		<<<"$output"
	run sts "AssumeRole&RoleArn=$ROLE&RoleSessionName=chain&ExternalId=ext-42" \
		--key "$KEY" --secret "$SECRET" --token "$TOKEN"
	jq -e '.status == 200' <<<"$output"
}

@test "sim aws: STS errors come in the query protocol's ErrorResponse" {
	run sts Frobnicate
	jq -e '.status == 400 and .headers["content-type"] == "text/xml"
		and .xml_paths == ["ErrorResponse", "ErrorResponse/Error", "ErrorResponse/Error/Type",
			"ErrorResponse/Error/Code", "ErrorResponse/Error/Message", "ErrorResponse/RequestId"]
		and .xml["ErrorResponse/Error/Code"] == "InvalidAction"
		and .xml["ErrorResponse/RequestId"] == .headers["x-amzn-requestid"]' <<<"$output"
	run sts GetCallerIdentity --key AKIDUNKNOWN
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "InvalidClientTokenId"
		and .xml["ErrorResponse/Error/Message"] == "The security token included in the request is invalid."' \
		<<<"$output"
	run sts GetCallerIdentity --secret wrong
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "SignatureDoesNotMatch"
		and (.xml["ErrorResponse/Error/Message"] | contains("The Canonical String for this request should have been"))' \
		<<<"$output"
	run sts GetCallerIdentity --no-sign
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "MissingAuthenticationToken"' <<<"$output"
	# A request signed for Security Hub does not pass at the STS endpoint.
	run sts GetCallerIdentity --service securityhub
	jq -e '.status == 403 and .xml["ErrorResponse/Error/Code"] == "SignatureDoesNotMatch"' <<<"$output"
	run sts GetCallerIdentity
	jq -e '.status == 200 and .xml["GetCallerIdentityResponse/GetCallerIdentityResult/Arn"]
		== "arn:aws:iam::123456789012:user/simulator"' <<<"$output"
	run curl --silent "$SIM_URL/__aws/calls?service=sts"
	jq -e '[.[].error] == ["InvalidAction", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"MissingAuthenticationToken", "SignatureDoesNotMatch", null]' <<<"$output"
}

# --- IMDS and container credentials -----------------------------------------------------

@test "sim aws: IMDSv2 issues a token, names the role and serves credentials the verifier accepts" {
	local token
	run curl --silent --show-error --fail -X PUT --dump-header "$BATS_TEST_TMPDIR/h" \
		-H 'x-aws-ec2-metadata-token-ttl-seconds: 21600' "$SIM_URL/latest/api/token"
	assert_success
	token=$output
	[[ $token =~ ^[A-Za-z0-9_=-]{40,}$ ]] || fail "token: $token"
	grep -qi '^x-aws-ec2-metadata-token-ttl-seconds: 21600' "$BATS_TEST_TMPDIR/h"
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/"
	assert_output soar-instance-role
	local before
	before=$(date +%s)
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/soar-instance-role"
	assert_success
	local doc=$output
	jq -e --argjson t "$before" '.Code == "Success" and .Type == "AWS-HMAC"
		and (.AccessKeyId | startswith("ASIA")) and (.Token | length > 100)
		and (.Expiration | fromdate - $t | . >= 21590 and . <= 21610)
		and (.LastUpdated | test("Z$"))
		and keys == ["AccessKeyId", "Code", "Expiration", "LastUpdated",
			"SecretAccessKey", "Token", "Type"]' <<<"$doc"
	# IMDS lays JSON out with " : ".
	grep -q '"Code" : "Success"' <<<"$doc"
	run findings '{"MaxResults": 1}' --key "$(jq -r .AccessKeyId <<<"$doc")" \
		--secret "$(jq -r .SecretAccessKey <<<"$doc")" --token "$(jq -r .Token <<<"$doc")"
	jq -e '.status == 200' <<<"$output"
	run curl --silent "$SIM_URL/__aws/calls"
	jq -e '.[-1].principal == "arn:aws:sts::123456789012:assumed-role/soar-instance-role/i-0123456789abcdef0"' \
		<<<"$output"
	# The same credentials until they run low.
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/soar-instance-role"
	[ "$(jq -r .AccessKeyId <<<"$output")" = "$(jq -r .AccessKeyId <<<"$doc")" ] ||
		fail "credentials changed"
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/placement/region"
	assert_output us-east-1
	run http_code -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/other-role"
	assert_output 404
}

@test "sim aws: IMDS refuses GETs without a valid token unless imds_v1" {
	local url="$SIM_URL/latest/meta-data/iam/security-credentials/"
	run curl --silent --write-out '\n%{http_code} %{content_type}' "$url"
	assert_line --index 0 --partial '<?xml version="1.0" encoding="iso-8859-1"?>'
	assert_output --partial '<title>401 - Unauthorized</title>'
	[ "${lines[-1]}" = '401 text/html' ] || fail "last line: ${lines[-1]}"
	run http_code -H 'x-aws-ec2-metadata-token: forged' "$url"
	assert_output 401
	sim_set imds_v1 true
	run curl --silent --fail "$url"
	assert_output soar-instance-role
	run http_code -H 'x-aws-ec2-metadata-token: forged' "$url"
	assert_output 401
}

@test "sim aws: the IMDS token PUT checks its TTL and imds_token_status forces its answer" {
	local url="$SIM_URL/latest/api/token" ttl
	run http_code -X PUT "$url"
	assert_output 400
	for ttl in 0 21601 abc; do
		run http_code -X PUT -H "x-aws-ec2-metadata-token-ttl-seconds: $ttl" "$url"
		assert_output 400
	done
	run http_code -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 1' "$url"
	assert_output 200
	run http_code -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 60' \
		-H 'X-Forwarded-For: 10.0.0.1' "$url"
	assert_output 403
	run http_code "$url"
	assert_output 405
	local forced
	for forced in 403 404 405; do
		sim_set imds_token_status "$forced"
		run http_code -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 60' "$url"
		assert_output "$forced"
	done
}

@test "sim aws: an IMDS token expires after its TTL" {
	local token
	token=$(imds_token 1)
	run http_code -H "x-aws-ec2-metadata-token: $token" "$SIM_URL/latest/meta-data/instance-id"
	assert_output 200
	sleep 1.2
	run http_code -H "x-aws-ec2-metadata-token: $token" "$SIM_URL/latest/meta-data/instance-id"
	assert_output 401
}

@test "sim aws: expired temporary credentials are ExpiredTokenException; IMDS then serves new ones" {
	sim_set imds_expiration_s 1
	local token doc
	token=$(imds_token)
	doc=$(curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/soar-instance-role")
	sleep 1.2
	run findings '{}' --key "$(jq -r .AccessKeyId <<<"$doc")" \
		--secret "$(jq -r .SecretAccessKey <<<"$doc")" --token "$(jq -r .Token <<<"$doc")"
	jq -e '.status == 403 and (.headers["x-amzn-errortype"] | startswith("ExpiredTokenException:"))
		and .body.message == "The security token included in the request is expired"' <<<"$output"
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/soar-instance-role"
	[ "$(jq -r .AccessKeyId <<<"$output")" != "$(jq -r .AccessKeyId <<<"$doc")" ] ||
		fail "expired credentials served again"
}

@test "sim aws: imds_role null has no credentials; imds_credentials_error answers Code and Message" {
	local token
	token=$(imds_token)
	sim_set imds_credentials_error '{"Code": "AssumeRoleUnauthorizedAccess", "Message": "EC2 cannot assume the role"}'
	run curl --silent --fail -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/soar-instance-role"
	jq -e '.Code == "AssumeRoleUnauthorizedAccess" and .Message == "EC2 cannot assume the role"
		and (has("AccessKeyId") | not)' <<<"$output"
	sim_set imds_role null
	run http_code -H "x-aws-ec2-metadata-token: $token" \
		"$SIM_URL/latest/meta-data/iam/security-credentials/"
	assert_output 404
}

@test "sim aws: container credentials at the relative and full URIs, behind container_auth_token" {
	run curl --silent --fail --dump-header "$BATS_TEST_TMPDIR/h" "$SIM_URL/v2/credentials/5a0d5ed4-task"
	assert_success
	local doc=$output
	jq -e '.RoleArn == "arn:aws:iam::123456789012:role/soar-task-role"
		and (.AccessKeyId | startswith("ASIA")) and (.Token | length > 100)
		and (.Expiration | test("^[0-9-]{10}T[0-9:]{8}Z$"))
		and keys == ["AccessKeyId", "Expiration", "RoleArn", "SecretAccessKey", "Token"]' <<<"$doc"
	grep -qi '^content-type: application/json' "$BATS_TEST_TMPDIR/h"
	run findings '{"MaxResults": 1}' --key "$(jq -r .AccessKeyId <<<"$doc")" \
		--secret "$(jq -r .SecretAccessKey <<<"$doc")" --token "$(jq -r .Token <<<"$doc")"
	jq -e '.status == 200' <<<"$output"
	sim_set container_auth_token '"Bearer c0ntainer"'
	run http_code "$SIM_URL/container-credentials/v1/credentials"
	assert_output 401
	run http_code -H 'Authorization: Bearer wrong' "$SIM_URL/container-credentials/v1/credentials"
	assert_output 401
	run curl --silent --fail -H 'Authorization: Bearer c0ntainer' \
		"$SIM_URL/container-credentials/v1/credentials"
	jq -e --arg k "$(jq -r .AccessKeyId <<<"$doc")" '.AccessKeyId == $k' <<<"$output"
	run http_code -H 'Authorization: Bearer c0ntainer' "$SIM_URL/v2/credentials/x"
	assert_output 200
}
