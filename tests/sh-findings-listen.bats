#!/usr/bin/env bats
# sh-findings --listen: the SNS HTTPS subscription receiver, driven by the
# HTTPS simulator's SNS stand-in (tests/sim/simlib/vendors/aws_sns.py),
# which signs deliveries with a throwaway PKI (tests/helpers/sns_pki.sh)
# and serves the signing certificates.  Forged, stale, replayed and
# misaddressed deliveries must be refused and never written.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

CORPUS=$SHARED/corpus/vendor
TOPIC=arn:aws:sns:us-east-1:123456789012:securityhub

setup_file() {
	command -v openssl >/dev/null || skip_or_fail "openssl is not installed"
	bash "$TESTS_DIR/helpers/sns_pki.sh" "$BATS_FILE_TMPDIR/pki" >/dev/null
	sim_start_tls "$BATS_FILE_TMPDIR/pki"
}

teardown_file() {
	sim_stop
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	[ -d "$CORPUS" ] || skip_or_fail "no corpus at $CORPUS"
	sim_tls_reset
	export SOAR_CA_BUNDLE=$SIM_TLS_CA
	unset SH_LISTEN_USER SH_LISTEN_PASSWORD
	# One EventBridge event with one finding, compact, as the Message.
	jq -c . "$CORPUS/aws-securityhub/eventbridge-findings-imported-afsbp-ec2.7.json" >event.json
	RECV_PID=
}

teardown() {
	listen_stop
}

# listen_start [ARGS...]: start the receiver on a free port for TOPIC
# (ARGS may name others), with the simulator as the one certificate host;
# sets RECV_URL once it listens.
listen_start() {
	sh-findings -v --listen 127.0.0.1:0 --sns-cert-host "$SIM_TLS_HOST" \
		--topic "$TOPIC" "$@" >out.ndjson 2>err.log 3>&- &
	listen_wait
}

# listen_wait: wait for the receiver RECV_PID to listen; sets RECV_URL.
listen_wait() {
	local deadline
	RECV_PID=$!
	deadline=$(($(date +%s) + 10))
	until grep -q 'listening on ' err.log 2>/dev/null; do
		if ! kill -0 "$RECV_PID" 2>/dev/null; then
			RECV_PID=
			fail "receiver exited: $(cat err.log)"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || fail "receiver not listening: $(cat err.log)"
		sleep 0.02
	done
	RECV_URL="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' err.log | head -1)/sns"
}

# listen_stop: SIGTERM the receiver; sets RECV_STATUS.
listen_stop() {
	[ -n "${RECV_PID:-}" ] || return 0
	kill -TERM "$RECV_PID" 2>/dev/null || true
	RECV_STATUS=0
	wait "$RECV_PID" || RECV_STATUS=$?
	RECV_PID=
}

# deliver JSON: have the simulator deliver to the receiver (the fields of
# POST /__aws/sns/deliver, endpoint added); prints the first copy's status.
deliver() {
	local body
	body=$(jq -c --arg e "$RECV_URL" '. + {endpoint: $e}' <<<"$1")
	sns_deliver "$body" >answer.json
	jq -r '.results[0].status' answer.json
}

# note FIELDS: a Notification of event.json to TOPIC, with more fields.
note() {
	jq -c --rawfile m event.json --arg t "$TOPIC" \
		'{message: ($m | rtrimstr("\n")), topic_arn: $t} + '"${1:-{\}}" <<<null
}

# cert_fetches: how many times the signing certificate was fetched.
cert_fetches() {
	curl --silent --fail --cacert "$SIM_TLS_CA" \
		"$SIM_TLS_URL/_sim/requests?path=/SimpleNotificationService-" | jq length
}

@test "sh-findings --listen: a signed notification (v2 and v1) becomes events, flushed at once" {
	listen_start
	assert_equal "$(deliver "$(note '{signature_version: "2"}')")" 200
	# Written before the receiver stops: each line is flushed.
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s out.ndjson ] && break
		sleep 0.02
	done
	assert_equal "$(wc -l <out.ndjson)" 1
	assert_equal "$(deliver "$(note '{signature_version: "1"}')")" 200
	listen_stop
	assert_equal "$RECV_STATUS" 0
	assert_equal "$(wc -l <out.ndjson)" 2
	jq -e -s 'all(.[]; .aws.finding.Id != null and .alert.severity != null
		and .cloud.account.id != null)' out.ndjson
	# The certificate was fetched once for both.
	assert_equal "$(cert_fetches)" 1
}

@test "sh-findings --listen: the same MessageId delivered four times is written once, every copy acknowledged" {
	listen_start
	deliver "$(note '{repeat: 4}')" >/dev/null
	assert_equal "$(jq -r '[.results[].status] | join(",")' answer.json)" 200,200,200,200
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 1
	assert_equal "$(grep -c 'delivered again' err.log)" 3
}

@test "sh-findings --listen: a tampered field after signing is refused with 403 and never written" {
	local other=arn:aws:sns:us-east-1:123456789012:other
	listen_start --topic "$TOPIC,$other"
	local f
	for f in '{tamper: {Message: "{\"x\":1}"}}' \
		"{tamper: {TopicArn: \"$other\"}, headers: {\"x-amz-sns-topic-arn\": \"$other\"}}" \
		'{tamper: {MessageId: "11111111-2222-3333-4444-555555555555"}}' \
		'{tamper: {Subject: "added"}}' '{subject: "s", drop: ["Subject"]}'; do
		assert_equal "$(deliver "$(note "$f")")" 403
	done
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
	assert_equal "$(grep -c 'refused (403): signature does not verify' err.log)" 5
}

@test "sh-findings --listen: the AWS documentation's messages (signature EXAMPLE) are refused" {
	listen_start
	local f type
	for f in "$CORPUS"/aws-sns/awsdocs-*-body.json; do
		type=$(jq -r .Type "$f")
		curl --silent --output /dev/null --write-out '%{http_code}\n' \
			-H "x-amz-sns-message-type: $type" --data-binary @"$f" "$RECV_URL" >>codes
	done
	listen_stop
	# Refused: the 2012 Timestamp is stale, or the cert host is AWS's.
	assert_equal "$(sort -u codes)" 400
	assert_equal "$(wc -l <out.ndjson)" 0
	assert_equal "$(cert_fetches)" 0
}

@test "sh-findings --listen: certificate URLs off the allowed host are refused before any fetch" {
	listen_start
	local u
	for u in "http://$SIM_TLS_HOST/SimpleNotificationService-sns.pem" \
		"https://$SIM_TLS_HOST.evil.example/x.pem" \
		"https://$SIM_TLS_HOST@evil.example/x.pem" \
		"https://evil.example/$SIM_TLS_HOST/x.pem" \
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-sns.pem" \
		"https://$SIM_TLS_HOST/../SimpleNotificationService-sns.pem" \
		"https://$SIM_TLS_HOST/SimpleNotificationService-sns.txt"; do
		assert_equal "$(deliver "$(note "{signing_cert_url: \"$u\"}")")" 403
	done
	listen_stop
	assert_equal "$(cert_fetches)" 0
	assert_equal "$(wc -l <out.ndjson)" 0
}

@test "sh-findings --listen: certificates that are expired, for another name or not from the CA are refused" {
	listen_start
	local c
	for c in sns-expired sns-wrongcn sns-selfsigned; do
		assert_equal "$(deliver "$(note "{cert: \"$c\"}")")" 403
	done
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
	grep -q 'certificate expired' err.log
	grep -q 'not for sns.amazonaws.com' err.log
	grep -q 'does not chain' err.log
}

@test "sh-findings --listen: an unreachable certificate answers 502, so SNS tries again later" {
	listen_start --timeout 1
	sim_tls_call POST /_sim/faults '{"path": "^/SimpleNotificationService-", "latency_ms": 3000}' >/dev/null
	assert_equal "$(deliver "$(note)")" 502
	local fetched
	fetched=$(cert_fetches)
	[ "$fetched" -ge 1 ]
	# Failed a moment ago: not fetched again for a minute.
	assert_equal "$(deliver "$(note)")" 502
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
	assert_equal "$(cert_fetches)" "$fetched"
	grep -q 'could not be fetched a moment ago' err.log
}

@test "sh-findings --listen: stale, future, version 3 and mismatched type deliveries get 400" {
	listen_start --max-age 10m
	local old future
	old=$(date -u -d '-20 min' +%Y-%m-%dT%H:%M:%S.000Z)
	future=$(date -u -d '+20 min' +%Y-%m-%dT%H:%M:%S.000Z)
	assert_equal "$(deliver "$(note "{timestamp: \"$old\"}")")" 400
	# Ahead: this host's clock is suspect, so SNS is asked to try again.
	assert_equal "$(deliver "$(note "{timestamp: \"$future\"}")")" 503
	assert_equal "$(deliver "$(note '{tamper: {SignatureVersion: "3"}}')")" 400
	assert_equal "$(deliver "$(note '{headers: {"x-amz-sns-message-type": "SubscriptionConfirmation"}}')")" 400
	assert_equal "$(deliver "$(note '{raw_body: "not json"}')")" 400
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
	grep -q 'is stale' err.log
	grep -q "in the future: is this host's clock right" err.log
	grep -q 'does not match Type' err.log
	assert_equal "$(cert_fetches)" 0
}

@test "sh-findings --listen: a subscription is confirmed only for a topic named by --topic" {
	listen_start
	assert_equal "$(deliver "$(note '{type: "SubscriptionConfirmation"}')")" 200
	assert_equal "$(deliver "$(note '{type: "SubscriptionConfirmation", topic_arn: "arn:aws:sns:us-east-1:123456789012:other"}')")" 403
	listen_stop
	sim_tls_call GET /__aws/sns/confirmations >conf.json
	assert_equal "$(jq -r '[.[] | .topic_arn + " " + (.status | tostring)] | join(",")' conf.json)" "$TOPIC 200"
	grep -q "subscription to $TOPIC confirmed" err.log
	grep -q 'TopicArn arn:aws:sns:us-east-1:123456789012:other is not in --topic' err.log
	assert_equal "$(wc -l <out.ndjson)" 0
}

@test "sh-findings --listen: the confirmation token stays out of the log, even retried at -vvv" {
	# The first ConfirmSubscription answers 503: the retry is logged.
	sim_tls_call POST /_sim/faults '{"method": "GET", "path": "^/$", "count": 1, "status": 503}' >/dev/null
	listen_start -vv
	local token
	token=$(printf '5ec2e7%058d' 42)
	assert_equal "$(deliver "$(note "{type: \"SubscriptionConfirmation\", token: \"$token\"}")")" 200
	listen_stop
	sim_tls_call GET /__aws/sns/confirmations >conf.json
	assert_equal "$(jq -r '[.[] | .status] | join(",")' conf.json)" 200
	grep -q "subscription to $TOPIC confirmed" err.log
	grep -q 'HTTP 503; retrying in' err.log
	# The request line at -vvv, its query shown as "?...".
	grep -q '^sh-findings: trace: > GET /?\.\.\. HTTP/' err.log
	run grep -c "$token" err.log
	assert_output 0
}

@test "sh-findings --listen: a notification of another topic is refused with --topic" {
	listen_start
	assert_equal "$(deliver "$(note '{topic_arn: "arn:aws:sns:us-east-1:123456789012:other"}')")" 403
	# The header SNS sends must name the topic the body names.
	assert_equal "$(deliver "$(note '{headers: {"x-amz-sns-topic-arn": "arn:aws:sns:us-east-1:123456789012:other"}}')")" 400
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
}

@test "sh-findings --listen: Basic authentication is required when configured" {
	export SH_LISTEN_USER=sns SH_LISTEN_PASSWORD='s3cret pass'
	listen_start
	assert_equal "$(deliver "$(note)")" 401
	assert_equal "$(deliver "$(note '{headers: {Authorization: "Basic c25zOndyb25n"}}')")" 401
	local auth
	auth=$(printf 'sns:s3cret pass' | base64)
	assert_equal "$(deliver "$(note "{headers: {Authorization: \"Basic $auth\"}}")")" 200
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 1
	[[ $(cat err.log) != *"s3cret"* ]] || fail "the password was logged"
}

@test "sh-findings --listen: an authentic notification without a finding is kept in the reject file, exit 1" {
	listen_start --reject rej.txt
	assert_equal "$(deliver "$(jq -cn --arg t "$TOPIC" '{message: "{\"hello\":\"world\"}", topic_arn: $t}')")" 200
	assert_equal "$(deliver "$(jq -cn --arg t "$TOPIC" '{message: "two\nlines", topic_arn: $t}')")" 200
	listen_stop
	assert_equal "$RECV_STATUS" 1
	assert_equal "$(cat rej.txt)" $'{"hello":"world"}\n"two\\nlines"'
	assert_equal "$(wc -l <out.ndjson)" 0
}

@test "sh-findings --listen: a slow reader downstream does not delay the acknowledgements" {
	# The reader takes nothing for 3 s; twenty deliveries of 60 kB each
	# are answered meanwhile, and all their findings arrive afterwards.
	sh-findings -v --listen 127.0.0.1:0 --sns-cert-host "$SIM_TLS_HOST" \
		--topic "$TOPIC" 2>err.log 3>&- > >(sleep 3; cat >out.ndjson) &
	listen_wait
	jq -c '.detail.findings[0].Description = ("x" * 60000)' event.json >big.json
	mv big.json event.json
	local i
	for ((i = 0; i < 20; i++)); do
		assert_equal "$(deliver "$(note)")" 200
		[ "$(jq '.results[0].elapsed_ms' answer.json)" -lt 2000 ]
	done
	listen_stop
	assert_equal "$RECV_STATUS" 0
	for ((i = 0; i < 200; i++)); do
		[ "$(wc -l <out.ndjson 2>/dev/null)" = 20 ] && break
		sleep 0.05
	done
	assert_equal "$(wc -l <out.ndjson)" 20
}

@test "sh-findings --listen: a reader that takes nothing does not keep SIGTERM from ending it, and the loss is reported" {
	sh-findings -v --listen 127.0.0.1:0 --sns-cert-host "$SIM_TLS_HOST" \
		--topic "$TOPIC" 2>err.log 3>&- > >(sleep 60) &
	listen_wait
	jq -c '.detail.findings[0].Description = ("x" * 60000)' event.json >big.json
	mv big.json event.json
	local i t0
	for ((i = 0; i < 4; i++)); do
		assert_equal "$(deliver "$(note)")" 200
	done
	t0=$(date +%s)
	listen_stop
	# Five seconds to drain, then it gives up: exit 3, the loss named.
	[ $(($(date +%s) - t0)) -le 8 ] || fail "took $(($(date +%s) - t0)) s to end"
	assert_equal "$RECV_STATUS" 3
	grep -q 'standard output took nothing for 5 s' err.log
	grep -Eq '[1-4] events acknowledged to SNS were not written' err.log
}

@test "sh-findings --listen: a body shorter than its Content-Length gets 400 when the client stops sending" {
	listen_start
	local port=${RECV_URL#http://127.0.0.1:}
	port=${port%%/*}
	python3 -I -S - "$port" >reply.txt <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1336\r\n"
          b"x-amz-sns-message-type: Notification\r\n\r\n{\"Type\": \"Notification\"}")
s.shutdown(socket.SHUT_WR)
s.settimeout(5)
print(s.recv(4096).decode().split("\r\n")[0])
PY
	assert_equal "$(cat reply.txt)" 'HTTP/1.1 400 Bad Request'
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 0
}

@test "sh-findings --listen: usage errors exit 2, a taken port exits 3" {
	run --separate-stderr sh-findings --listen 127.0.0.1:0 --severity HIGH
	assert_failure 2
	run --separate-stderr sh-findings --topic "$TOPIC"
	assert_failure 2
	[[ $stderr == *"need --listen"* ]]
	run --separate-stderr sh-findings --listen 127.0.0.1:0
	assert_failure 2
	[[ $stderr == *"--listen needs --topic"* ]]
	run --separate-stderr sh-findings --listen 127.0.0.1:0 --topic "$TOPIC" --max-age 31d
	assert_failure 2
	run --separate-stderr sh-findings --listen nowhere:80 --topic "$TOPIC"
	assert_failure 2
	export SH_LISTEN_USER=only-user
	run --separate-stderr sh-findings --listen 127.0.0.1:0 --topic "$TOPIC"
	assert_failure 2
	[[ $stderr == *"SH_LISTEN_USER and SH_LISTEN_PASSWORD"* ]]
	unset SH_LISTEN_USER
	listen_start
	local port=${RECV_URL#http://127.0.0.1:}
	port=${port%%/*}
	run --separate-stderr sh-findings --listen "127.0.0.1:$port" --topic "$TOPIC"
	assert_failure 3
}

@test "sh-findings --listen: a certificate whose issuer is not trusted locally is chained through its AIA URL" {
	# As with AWS: SNS serves the leaf alone, signed by an intermediate
	# that no local store holds; the leaf names it in caIssuers.
	local pki=$SIM_TLS_PKI t=$BATS_TEST_TMPDIR
	openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/inter.key" \
		-subj '/CN=soarutils test intermediate' -out "$t/inter.csr" 2>/dev/null
	printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign\n' >"$t/inter.ext"
	openssl x509 -req -in "$t/inter.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
		-CAcreateserial -days 2 -extfile "$t/inter.ext" -out "$pki/inter.pem" 2>/dev/null
	openssl req -new -key "$pki/sns.key" -subj '/CN=sns.amazonaws.com' -out "$t/leaf.csr"
	printf 'authorityInfoAccess=caIssuers;URI:https://%s/SimpleNotificationService-inter.pem\n' \
		"$SIM_TLS_HOST" >"$t/leaf.ext"
	openssl x509 -req -in "$t/leaf.csr" -CA "$pki/inter.pem" -CAkey "$pki/inter.key" \
		-CAcreateserial -days 2 -extfile "$t/leaf.ext" -out "$pki/viainter.pem" 2>/dev/null
	listen_start
	assert_equal "$(deliver "$(note '{cert: "viainter"}')")" 200
	assert_equal "$(deliver "$(note '{cert: "viainter"}')")" 200
	listen_stop
	assert_equal "$(wc -l <out.ndjson)" 2
	# The leaf once, its issuer once.
	curl --silent --fail --cacert "$SIM_TLS_CA" \
		"$SIM_TLS_URL/_sim/requests?path=/SimpleNotificationService-" |
		jq -r '.[].path' >fetched
	assert_equal "$(cat fetched)" $'/SimpleNotificationService-viainter.pem\n/SimpleNotificationService-inter.pem'
	rm -f "$pki/inter.pem" "$pki/inter.key" "$pki/viainter.pem"
}
