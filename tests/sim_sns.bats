#!/usr/bin/env bats
# Tests of the SNS stand-in (tests/sim/simlib/vendors/aws_sns.py) on the
# HTTPS simulator, and of the throwaway PKI it serves
# (tests/helpers/sns_pki.sh). The tests of the SNS receiver rely on these
# behaviours, so they are pinned here, with no soarutils tool involved.
#
# Deliveries go to a small capture server (capture.py, written by
# setup_file) that logs each request's path, headers in order and exact
# body. Signatures are checked with the openssl CLI over a string to sign
# that string_to_sign builds here from API.md 4, apart from the simulator's.

load helpers/common
load helpers/sim

bats_require_minimum_version 1.5.0

SNS_PKI="$TESTS_DIR/helpers/sns_pki.sh"
TOPIC='arn:aws:sns:us-west-2:111122223333:SocFindings'
UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

setup_file() {
	# The interpreter itself, found once: a version manager's shim on PATH
	# can take longer to start than a test's requests.
	SIM_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
	PKI=$BATS_FILE_TMPDIR/pki
	"$SNS_PKI" "$PKI"
	CAPTURE_PY=$BATS_FILE_TMPDIR/capture.py
	cat >"$CAPTURE_PY" <<'EOF'
"""capture.py LOG PORT_FILE STATUS DELAY_MS: log each POST as a JSON line
{"path", "headers": [[name, value]...], "body_b64"}, then, DELAY_MS later,
answer STATUS with the body "captured N bytes"."""
import base64
import json
import os
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG, PORT_FILE = sys.argv[1], sys.argv[2]
STATUS, DELAY_MS = int(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()


class Capture(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry = {"path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()],
                 "body_b64": base64.b64encode(body).decode("ascii")}
        with lock, open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        time.sleep(DELAY_MS / 1000)
        answer = f"captured {len(body)} bytes".encode()
        self.send_response(STATUS)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no DNS lookup


server = Server(("127.0.0.1", 0), Capture)
with open(PORT_FILE + ".tmp", "w", encoding="ascii") as f:
    f.write(f"{server.server_address[1]}\n")
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
EOF
	export PKI CAPTURE_PY SIM_PYTHON
}

setup() {
	CAPTURE_PIDS=()
	sim_start
	sim_start_tls "$PKI"
}

teardown() {
	local pid
	for pid in "${CAPTURE_PIDS[@]}"; do
		_sim_kill "$pid"
	done
	# Whatever level a test started it at.
	sim_stop_tls
	sim_stop
}

# capture_start [STATUS] [DELAY_MS]: start a capture server answering
# STATUS (200) after DELAY_MS (0); sets CAPTURE_URL and CAPTURE_LOG.
capture_start() {
	local port_file deadline
	port_file=$(mktemp -u "$BATS_TEST_TMPDIR/capture.XXXXXX")
	CAPTURE_LOG=$port_file.ndjson
	: >"$CAPTURE_LOG"
	"$SIM_PYTHON" -I -S "$CAPTURE_PY" "$CAPTURE_LOG" "$port_file.port" \
		"${1:-200}" "${2:-0}" >"$port_file.err" 2>&1 3>&- &
	CAPTURE_PIDS+=($!)
	deadline=$(($(date +%s%N) + 5000000000))
	until [ -s "$port_file.port" ]; do
		[ "$(date +%s%N)" -lt "$deadline" ] ||
			fail "capture: not ready: $(cat "$port_file.err")"
		sleep 0.02
	done
	CAPTURE_URL="http://127.0.0.1:$(<"$port_file.port")"
}

# captured N: the Nth captured request, one JSON line.
captured() {
	sed -n "${1}p" "$CAPTURE_LOG"
}

# captured_body N FILE: the exact body of the Nth captured request.
captured_body() {
	captured "$1" | jq -r .body_b64 | base64 -d >"$2"
}

# captured_header N NAME: the value of header NAME (any case) in request N.
captured_header() {
	captured "$1" | jq -r --arg n "$2" \
		'.headers[] | select(.[0] | ascii_downcase == $n) | .[1]'
}

# string_to_sign MESSAGE_FILE: Key\nValue\n for the signed keys of the
# message's Type that it has, in byte order (API.md 4).
string_to_sign() {
	jq -j '(if .Type == "Notification"
		then ["Message", "MessageId", "Subject", "Timestamp", "TopicArn",
			"Type"]
		else ["Message", "MessageId", "SubscribeURL", "Timestamp",
			"Token", "TopicArn", "Type"] end) as $keys
		| . as $m
		| [$keys[] | select(. as $k | $m | has($k))
			| "\(.)\n\($m[.])\n"] | join("")' "$1"
}

# verify_signature MESSAGE_FILE sha1|sha256 [CERT]: openssl's verdict on the
# message's Signature over string_to_sign, with CERT's (sns.pem) public key.
verify_signature() {
	local dir
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/verify.XXXXXX")
	string_to_sign "$1" >"$dir/sts"
	jq -r .Signature "$1" | base64 -d >"$dir/sig"
	openssl x509 -in "${3:-$PKI/sns.pem}" -pubkey -noout >"$dir/pub.pem"
	openssl dgst "-$2" -verify "$dir/pub.pem" -signature "$dir/sig" \
		"$dir/sts"
}

# tls_get PATH [CURL-ARGS...]: GET from the HTTPS simulator, trusting the CA.
tls_get() {
	local path=$1
	shift
	curl --silent --show-error --cacert "$PKI/ca.pem" "$@" \
		"$SIM_TLS_URL$path"
}

# deliver_status JSON: the HTTP status of a deliver request.
deliver_status() {
	curl --silent --output /dev/null --write-out '%{http_code}\n' \
		--cacert "$PKI/ca.pem" --data-binary "$1" \
		"$SIM_TLS_URL/__aws/sns/deliver"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# --- the PKI -----------------------------------------------------------------

@test "sim sns: sns_pki.sh makes the documented certificates, all with sns.key's key where they sign" {
	local f sns_pub
	cd "$PKI"
	run env LC_ALL=C ls -A
	assert_output "$(printf '%s\n' ca.key ca.pem sns-expired.pem \
		sns-selfsigned.pem sns-wrongcn.pem sns.key sns.pem tls.key tls.pem)"
	run openssl verify -CAfile ca.pem tls.pem sns.pem sns-wrongcn.pem
	assert_success
	run openssl verify -CAfile ca.pem sns-expired.pem
	assert_failure
	assert_output --partial 'certificate has expired'
	run openssl verify -CAfile ca.pem sns-selfsigned.pem
	assert_failure
	assert_output --partial 'self-signed certificate'
	run openssl x509 -in sns.pem -noout -subject
	assert_output 'subject=CN = sns.amazonaws.com'
	run openssl x509 -in sns-expired.pem -noout -subject -enddate
	assert_output $'subject=CN = sns.amazonaws.com\nnotAfter=Dec 31 23:59:59 2020 GMT'
	run openssl x509 -in sns-wrongcn.pem -noout -subject
	assert_output 'subject=CN = sns.evil.example'
	run openssl x509 -in sns-selfsigned.pem -noout -subject -issuer
	assert_output $'subject=CN = sns.amazonaws.com\nissuer=CN = sns.amazonaws.com'
	openssl x509 -in sns.pem -noout -checkend 0
	openssl x509 -in sns-wrongcn.pem -noout -checkend 0
	run openssl x509 -in tls.pem -noout -ext subjectAltName
	assert_output --partial 'IP Address:127.0.0.1, DNS:localhost'
	sns_pub=$(openssl pkey -in sns.key -pubout)
	for f in sns.pem sns-expired.pem sns-wrongcn.pem sns-selfsigned.pem; do
		[ "$(openssl x509 -in "$f" -noout -pubkey)" = "$sns_pub" ] ||
			fail "$f does not hold sns.key's public key"
	done
	[ "$(openssl x509 -in tls.pem -noout -pubkey)" != "$sns_pub" ]
	[ "$(openssl x509 -in ca.pem -noout -pubkey)" != "$sns_pub" ]
}

@test "sim sns: sns_pki.sh leaves a complete PKI alone and remakes an incomplete one" {
	local dir=$BATS_TEST_TMPDIR/pki before
	run "$SNS_PKI"
	assert_failure 2
	cp -r "$PKI" "$dir"
	before=$(cd "$dir" && sha256sum -- *)
	"$SNS_PKI" "$dir"
	[ "$(cd "$dir" && sha256sum -- *)" = "$before" ]
	rm "$dir/sns-wrongcn.pem"
	"$SNS_PKI" "$dir"
	run ls -A "$dir"
	assert_equal "${#lines[@]}" 9
	run ! cmp -s "$dir/ca.pem" "$PKI/ca.pem"
	run openssl verify -CAfile "$dir/ca.pem" "$dir/sns-wrongcn.pem" \
		"$dir/sns.pem" "$dir/tls.pem"
	assert_success
}

# --- the HTTPS simulator -----------------------------------------------------

@test "sim sns: the HTTPS simulator serves clients that trust the test CA, and only them" {
	local tls_pid=$SIM_TLS_PID plain_pid=$SIM_PID
	[[ $SIM_TLS_HOST =~ ^127\.0\.0\.1:[0-9]+$ ]]
	assert_equal "$SIM_TLS_URL" "https://$SIM_TLS_HOST"
	assert_equal "$SIM_TLS_CA" "$PKI/ca.pem"
	[[ $SIM_URL == http://* ]]
	run tls_get /_sim/health
	assert_success
	assert_output '{"ok": true}'
	run curl --silent --show-error https://localhost:"${SIM_TLS_HOST#*:}"/_sim/health \
		--cacert "$PKI/ca.pem"
	assert_output '{"ok": true}'
	run curl --silent "$SIM_TLS_URL/_sim/health"
	assert_failure 60
	run curl --silent --cacert "$PKI/sns-selfsigned.pem" "$SIM_TLS_URL/_sim/health"
	assert_failure 60
	run curl --silent --max-time 5 "http://$SIM_TLS_HOST/_sim/health"
	assert_failure
	refute_output --partial ok
	# Refused handshakes leave it serving, quietly.
	run tls_get /echo/after
	assert_success
	run grep -c Traceback "$SIM_TLS_LOG"
	assert_output 0
	# Two instances, two request logs.
	run sim_count
	assert_output 0
	run curl --silent --cacert "$PKI/ca.pem" "$SIM_TLS_URL/_sim/requests"
	jq -e 'length == 1 and .[0].path == "/echo/after"' <<<"$output"
	sim_stop
	run ! kill -0 "$tls_pid"
	run ! kill -0 "$plain_pid"
	assert_equal "$SIM_TLS_PID$SIM_PID" ''
}

@test "sim sns: sim_stop_tls stops the HTTPS simulator only, and sim_stop one of its own level" {
	local tls_pid=$SIM_TLS_PID
	sim_stop_tls
	run ! kill -0 "$tls_pid"
	run curl --silent --fail "$SIM_URL/_sim/health"
	assert_success
	# As if from setup_file: a test's sim_stop leaves it running.
	BATS_TEST_NAME='' sim_start_tls "$PKI"
	tls_pid=$SIM_TLS_PID
	sim_stop
	kill -0 "$tls_pid"
	run tls_get /_sim/health
	assert_output '{"ok": true}'
	BATS_TEST_NAME='' sim_stop
	run ! kill -0 "$tls_pid"
}

# --- the certificate route -----------------------------------------------------

@test "sim sns: the certificate route serves the PKI's PEM files and nothing else" {
	tls_get /SimpleNotificationService-sns.pem --fail >"$BATS_TEST_TMPDIR/got.pem"
	cmp "$BATS_TEST_TMPDIR/got.pem" "$PKI/sns.pem"
	run openssl x509 -in "$BATS_TEST_TMPDIR/got.pem" -noout -subject
	assert_output 'subject=CN = sns.amazonaws.com'
	run bash -c "curl --silent --fail --cacert '$PKI/ca.pem' \
		'$SIM_TLS_URL/SimpleNotificationService-sns-wrongcn.pem' |
		openssl x509 -noout -subject"
	assert_output 'subject=CN = sns.evil.example'
	run tls_get /SimpleNotificationService-sns.pem --write-out '%{content_type}' --output /dev/null
	assert_output 'application/x-x509-ca-cert'
	local path
	for path in /SimpleNotificationService-nosuch.pem \
		/SimpleNotificationService-..%2Fpki%2Fsns.pem \
		/SimpleNotificationService-sns.key /sns.pem; do
		run tls_get "$path" --output /dev/null --write-out '%{http_code}'
		assert_output 404
	done
	# Fetches are recorded, for tests of what a receiver fetched.
	run curl --silent --cacert "$PKI/ca.pem" \
		"$SIM_TLS_URL/_sim/requests?path=/SimpleNotificationService-"
	jq -e '[.[].path] == ["/SimpleNotificationService-sns.pem",
		"/SimpleNotificationService-sns-wrongcn.pem",
		"/SimpleNotificationService-sns.pem",
		"/SimpleNotificationService-nosuch.pem",
		"/SimpleNotificationService-..%2Fpki%2Fsns.pem",
		"/SimpleNotificationService-sns.key"]' <<<"$output"
	# A reset forgets the PKI directory; sim_tls_reset sets it again.
	sim_tls_call POST /_sim/reset >/dev/null
	run tls_get /SimpleNotificationService-sns.pem --write-out '\n%{http_code}'
	assert_line --index 1 500
	assert_line --index 0 --partial /__aws/sns/config
	sim_tls_reset
	run tls_get /SimpleNotificationService-sns.pem --fail
	assert_success
	assert_line --index 0 -- '-----BEGIN CERTIFICATE-----'
}

@test "sim sns: the config route takes only an existing directory" {
	run sim_tls_call GET /__aws/sns/config
	assert_output "{\"pki_dir\": \"$PKI\"}"
	run sim_tls_call POST /__aws/sns/config '{"pki_dir": "/nonexistent/pki"}'
	assert_failure
	run sim_tls_call GET /__aws/sns/config
	assert_output "{\"pki_dir\": \"$PKI\"}"
}

@test "sim sns: a latency fault rule makes the certificate route slow" {
	local t0 t1
	sim_tls_call POST /_sim/faults \
		'{"path": "^/SimpleNotificationService-", "latency_ms": 700}' >/dev/null
	t0=$(now_ms)
	tls_get /echo --fail >/dev/null
	t1=$(now_ms)
	(( t1 - t0 < 600 )) || fail "echo took $((t1 - t0)) ms"
	t0=$(now_ms)
	tls_get /SimpleNotificationService-sns.pem --fail >"$BATS_TEST_TMPDIR/got.pem"
	t1=$(now_ms)
	(( t1 - t0 >= 700 )) || fail "certificate after $((t1 - t0)) ms"
	cmp "$BATS_TEST_TMPDIR/got.pem" "$PKI/sns.pem"
}

# --- deliveries --------------------------------------------------------------

@test "sim sns: a Notification arrives as SNS sends it, signed with SHA256 by default" {
	local answer msg=$BATS_TEST_TMPDIR/msg.json length sub
	capture_start
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/sns?x=1" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, message: "hello", subject: "Subj"}')")
	captured_body 1 "$msg"
	length=$(wc -c <"$msg")
	jq -e --arg n "$length" '.results == [.results[0]] and .results[0].status == 200
		and .results[0].body == "captured \($n) bytes" and .results[0].error == null' \
		<<<"$answer"
	run captured 2
	assert_output ''
	run captured 1
	jq -e '.path == "/sns?x=1"' <<<"$output"
	jq -e '[.headers[][0]] == ["x-amz-sns-message-type", "x-amz-sns-message-id",
		"x-amz-sns-topic-arn", "x-amz-sns-subscription-arn", "Content-Length",
		"Content-Type", "Host", "Connection", "User-Agent"]' <<<"$output"
	assert_equal "$(captured_header 1 content-type)" 'text/plain; charset=UTF-8'
	assert_equal "$(captured_header 1 user-agent)" 'Amazon Simple Notification Service Agent'
	assert_equal "$(captured_header 1 x-amz-sns-message-type)" Notification
	assert_equal "$(captured_header 1 x-amz-sns-message-id)" "$(jq -r .MessageId "$msg")"
	assert_equal "$(captured_header 1 x-amz-sns-topic-arn)" "$TOPIC"
	assert_equal "$(captured_header 1 content-length)" "$length"
	assert_equal "$(captured_header 1 host)" "${CAPTURE_URL#http://}"
	sub=$(captured_header 1 x-amz-sns-subscription-arn)
	[[ $sub =~ ^$TOPIC:$UUID_RE$ ]]
	# The body: SNS's field order and layout.
	jq -e 'keys_unsorted == ["Type", "MessageId", "TopicArn", "Subject", "Message",
		"Timestamp", "SignatureVersion", "Signature", "SigningCertURL",
		"UnsubscribeURL"]' "$msg"
	run sed -n 2p "$msg"
	assert_output '  "Type" : "Notification",'
	jq -e --arg t "$TOPIC" --arg u "$SIM_TLS_URL" --arg s "$sub" --arg re "^$UUID_RE\$" '
		.Type == "Notification" and .TopicArn == $t and .Subject == "Subj"
		and .Message == "hello" and .SignatureVersion == "2"
		and (.MessageId | test($re))
		and (.Timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))
		and .SigningCertURL == "\($u)/SimpleNotificationService-sns.pem"
		and .UnsubscribeURL == "\($u)/?Action=Unsubscribe&SubscriptionArn=\($s)"' "$msg"
	jq -e --slurpfile m "$msg" '.message == $m[0]' <<<"$answer"
	# Verified with the certificate fetched from SigningCertURL.
	curl --silent --fail --cacert "$PKI/ca.pem" "$(jq -r .SigningCertURL "$msg")" \
		>"$BATS_TEST_TMPDIR/cert.pem"
	run verify_signature "$msg" sha256 "$BATS_TEST_TMPDIR/cert.pem"
	assert_success
	assert_output 'Verified OK'
	run verify_signature "$msg" sha1
	assert_failure
}

@test "sim sns: SignatureVersion 1 signs with SHA1 over Message and Subject with newlines, unicode and quotes" {
	local text subject msg=$BATS_TEST_TMPDIR/msg.json
	text=$'line one\nline "two" \\ caf\u00e9 \u2713 \U0001F600\ttab\u0001end\n'
	subject=$'Subject "\u00dcber" \u2014 1'
	capture_start
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg m "$text" --arg s "$subject" \
		'{endpoint: $e, message: $m, subject: $s, signature_version: "1"}')" >/dev/null
	captured_body 1 "$msg"
	jq -e --arg m "$text" --arg s "$subject" \
		'.Message == $m and .Subject == $s and .SignatureVersion == "1"' "$msg"
	grep -qF '\n' "$msg"
	grep -qF '\"two\"' "$msg"
	grep -qF '\u0001' "$msg"
	grep -qF $'caf\u00e9' "$msg"
	run verify_signature "$msg" sha1
	assert_success
	assert_output 'Verified OK'
	run verify_signature "$msg" sha256
	assert_failure
}

@test "sim sns: ensure_ascii escapes the body and the signature still covers the characters" {
	local text=$'caf\u00e9 \U0001F600' msg=$BATS_TEST_TMPDIR/msg.json
	capture_start
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg m "$text" \
		'{endpoint: $e, message: $m, ensure_ascii: true}')" >/dev/null
	captured_body 1 "$msg"
	grep -qF 'caf\u00e9 \ud83d\ude00' "$msg"
	run ! env LC_ALL=C grep -q $'[\x80-\xff]' "$msg"
	jq -e --arg m "$text" '.Message == $m' "$msg"
	run verify_signature "$msg" sha256
	assert_output 'Verified OK'
}

@test "sim sns: a SubscriptionConfirmation carries a token that its SubscribeURL confirms" {
	local answer msg=$BATS_TEST_TMPDIR/msg.json token url arn
	capture_start
	run sim_tls_call GET /__aws/sns/confirmations
	assert_output '[]'
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, type: "SubscriptionConfirmation"}')" >/dev/null
	captured_body 1 "$msg"
	jq -e 'keys_unsorted == ["Type", "MessageId", "Token", "TopicArn", "Message",
		"SubscribeURL", "Timestamp", "SignatureVersion", "Signature",
		"SigningCertURL"]' "$msg"
	token=$(jq -r .Token "$msg")
	[[ $token =~ ^[0-9a-f]{256}$ ]]
	url=$(jq -r .SubscribeURL "$msg")
	assert_equal "$url" "$SIM_TLS_URL/?Action=ConfirmSubscription&TopicArn=$TOPIC&Token=$token"
	jq -e --arg t "$TOPIC" '.Message == "You have chosen to subscribe to the topic \($t).\nTo confirm the subscription, visit the SubscribeURL included in this message."' "$msg"
	assert_equal "$(captured_header 1 x-amz-sns-message-type)" SubscriptionConfirmation
	assert_equal "$(captured_header 1 x-amz-sns-subscription-arn)" ''
	run verify_signature "$msg" sha256
	assert_output 'Verified OK'

	run curl --silent --show-error --cacert "$PKI/ca.pem" --include "$url"
	assert_line --index 0 --regexp '^HTTP/1.1 200'
	assert_line --regexp '^Content-Type: text/xml'
	assert_output --partial '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
	assert_output --regexp "<ConfirmSubscriptionResult>[[:space:]]*<SubscriptionArn>$TOPIC:$UUID_RE</SubscriptionArn>[[:space:]]*</ConfirmSubscriptionResult>"
	assert_output --regexp "<ResponseMetadata>[[:space:]]*<RequestId>$UUID_RE</RequestId>"
	arn=$(grep -o "<SubscriptionArn>[^<]*" <<<"$output")
	arn=${arn#<SubscriptionArn>}
	run sim_tls_call GET /__aws/sns/confirmations
	jq -e --arg t "$TOPIC" --arg k "$token" --arg a "$arn" 'length == 1
		and .[0].action == "ConfirmSubscription" and .[0].topic_arn == $t
		and .[0].token == $k and .[0].subscription_arn == $a
		and .[0].status == 200 and .[0].error == null' <<<"$output"
	# Later deliveries to the endpoint carry the confirmed subscription.
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, message: "m"}')" >/dev/null
	assert_equal "$(captured_header 2 x-amz-sns-subscription-arn)" "$arn"
}

@test "sim sns: ConfirmSubscription answers SNS's error for a bad token or topic" {
	local msg=$BATS_TEST_TMPDIR/msg.json token
	capture_start
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, type: "SubscriptionConfirmation", token: "feed01"}')" >/dev/null
	captured_body 1 "$msg"
	token=$(jq -r .Token "$msg")
	assert_equal "$token" feed01
	run tls_get "/?Action=ConfirmSubscription&TopicArn=$TOPIC&Token=beef02" --include
	assert_line --index 0 --regexp '^HTTP/1.1 400'
	assert_output --partial '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
	assert_output --regexp '<Type>Sender</Type>[[:space:]]*<Code>InvalidParameter</Code>[[:space:]]*<Message>Invalid parameter: Token</Message>'
	run tls_get "/?Action=ConfirmSubscription&TopicArn=${TOPIC}Other&Token=feed01"
	assert_output --partial '<Message>Invalid parameter: Topic</Message>'
	run tls_get "/?Action=ConfirmSubscription&TopicArn=nonsense&Token=feed01"
	assert_output --partial '<Message>Invalid parameter: TopicArn</Message>'
	run tls_get "/?Action=Subscribe&TopicArn=$TOPIC" --write-out '\n%{http_code}'
	assert_output --partial '<Code>InvalidAction</Code>'
	assert_line 400
	run tls_get "/?Action=" --write-out '\n%{http_code}'
	assert_output --partial '<Code>MissingAction</Code>'
	assert_line 400
	run sim_tls_call GET /__aws/sns/confirmations
	jq -e '[.[].status] == [400, 400, 400]
		and [.[].error] == ["InvalidParameter", "InvalidParameter", "InvalidParameter"]
		and [.[].subscription_arn] == [null, null, null]' <<<"$output"
	run tls_get "/?Action=ConfirmSubscription&TopicArn=$TOPIC&Token=feed01" --fail
	assert_success
	# A reset forgets tokens and the log.
	sim_tls_reset
	run sim_tls_call GET /__aws/sns/confirmations
	assert_output '[]'
	run tls_get "/?Action=ConfirmSubscription&TopicArn=$TOPIC&Token=feed01"
	assert_output --partial '<Message>Invalid parameter: Token</Message>'
}

@test "sim sns: an UnsubscribeConfirmation carries the subscription, and UnsubscribeURL works" {
	local msg=$BATS_TEST_TMPDIR/msg.json note=$BATS_TEST_TMPDIR/note.json sub
	capture_start
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, type: "UnsubscribeConfirmation"}')" >/dev/null
	captured_body 1 "$msg"
	sub=$(captured_header 1 x-amz-sns-subscription-arn)
	[[ $sub =~ ^$TOPIC:$UUID_RE$ ]]
	jq -e --arg s "$sub" 'keys_unsorted == ["Type", "MessageId", "Token", "TopicArn",
		"Message", "SubscribeURL", "Timestamp", "SignatureVersion", "Signature",
		"SigningCertURL"] and .Type == "UnsubscribeConfirmation"
		and (.Message | startswith("You have chosen to deactivate subscription \($s).\n"))' "$msg"
	run verify_signature "$msg" sha256
	assert_output 'Verified OK'
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" --arg t "$TOPIC" \
		'{endpoint: $e, topic_arn: $t, message: "m"}')" >/dev/null
	captured_body 2 "$note"
	run curl --silent --show-error --fail --cacert "$PKI/ca.pem" "$(jq -r .UnsubscribeURL "$note")"
	assert_success
	assert_output --regexp "^<UnsubscribeResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">[[:space:]]*<ResponseMetadata>[[:space:]]*<RequestId>$UUID_RE</RequestId>"
	run sim_tls_call GET /__aws/sns/confirmations
	jq -e --arg s "$sub" --arg t "$TOPIC" 'length == 1 and .[0].action == "Unsubscribe"
		and .[0].subscription_arn == $s and .[0].topic_arn == $t
		and .[0].status == 200' <<<"$output"
}

@test "sim sns: tamper and drop change the message after signing" {
	local answer msg=$BATS_TEST_TMPDIR/msg.json orig=$BATS_TEST_TMPDIR/orig.json
	capture_start
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" '{endpoint: $e,
		message: "original", subject: "s", message_id: "m-1",
		tamper: {Message: "forged", Extra: 7}, drop: ["Subject"]}')")
	captured_body 1 "$msg"
	jq -e 'keys_unsorted == ["Type", "MessageId", "TopicArn", "Message", "Timestamp",
		"SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL", "Extra"]
		and .Message == "forged" and .Extra == 7 and .MessageId == "m-1"' "$msg"
	jq -e --slurpfile m "$msg" '.message == $m[0]
		and (.string_to_sign | startswith("Message\noriginal\nMessageId\nm-1\nSubject\ns\n"))' \
		<<<"$answer"
	run verify_signature "$msg" sha256
	assert_failure
	# Signed before: the original fields verify with the same Signature.
	jq '.Message = "original" | .Subject = "s"' "$msg" >"$orig"
	run verify_signature "$orig" sha256
	assert_output 'Verified OK'
	# The header keeps the id that was signed.
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" '{endpoint: $e, message: "x",
		message_id: "m-2", tamper: {MessageId: "m-3"}}')" >/dev/null
	assert_equal "$(captured_header 2 x-amz-sns-message-id)" m-2
	captured_body 2 "$msg"
	jq -e '.MessageId == "m-3"' "$msg"
}

@test "sim sns: headers replace, add and remove HTTP headers; raw_body is sent as is" {
	local answer
	capture_start
	sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" '{endpoint: $e, message: "x",
		headers: {"X-AMZ-SNS-MESSAGE-TYPE": "SubscriptionConfirmation",
			"User-Agent": null, "Authorization": "Basic dTpw"}}')" >/dev/null
	run captured 1
	jq -e '[.headers[][0]] == ["X-AMZ-SNS-MESSAGE-TYPE", "x-amz-sns-message-id",
		"x-amz-sns-topic-arn", "x-amz-sns-subscription-arn", "Content-Length",
		"Content-Type", "Host", "Connection", "Authorization"]' <<<"$output"
	assert_equal "$(captured_header 1 x-amz-sns-message-type)" SubscriptionConfirmation
	assert_equal "$(captured_header 1 authorization)" 'Basic dTpw'
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" \
		'{endpoint: $e, raw_body: "not json {", message_id: "raw-1"}')")
	run captured_body 2 /dev/stdout
	assert_output 'not json {'
	assert_equal "$(captured_header 2 content-length)" 10
	assert_equal "$(captured_header 2 x-amz-sns-message-id)" raw-1
	jq -e '.message == null and .string_to_sign == null and .body == "not json {"
		and .results[0].status == 200' <<<"$answer"
}

@test "sim sns: repeat sends the same message N times with one MessageId" {
	local answer id
	capture_start
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" \
		'{endpoint: $e, message: "dup", repeat: 3}')")
	jq -e '[.results[].status] == [200, 200, 200]' <<<"$answer"
	run wc -l <"$CAPTURE_LOG"
	assert_output 3
	run jq -r .body_b64 "$CAPTURE_LOG"
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" "${lines[1]}"
	assert_equal "${lines[1]}" "${lines[2]}"
	id=$(jq -r .message.MessageId <<<"$answer")
	[[ $id =~ ^$UUID_RE$ ]]
	run jq -r '.headers[] | select(.[0] == "x-amz-sns-message-id") | .[1]' "$CAPTURE_LOG"
	assert_output "$(printf '%s\n' "$id" "$id" "$id")"
	# A second delivery is a new message.
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" '{endpoint: $e, message: "dup"}')")
	[ "$(jq -r .message.MessageId <<<"$answer")" != "$id" ]
}

@test "sim sns: the receiver's answer is reported; an unreachable or slow one gives status 0" {
	local answer t0 t1 closed
	capture_start 403
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" '{endpoint: $e, message: "x"}')")
	jq -e '.results[0].status == 403 and (.results[0].body | startswith("captured "))
		and .results[0].error == null' <<<"$answer"
	# A port that was just closed refuses connections.
	closed=$CAPTURE_URL
	_sim_kill "${CAPTURE_PIDS[0]}"
	answer=$(sns_deliver "$(jq -cn --arg e "$closed/" '{endpoint: $e, message: "x", repeat: 2}')")
	jq -e '[.results[].status] == [0, 0]
		and (.results[0].error | test("ConnectionRefused"))' <<<"$answer"
	capture_start 200 3000
	t0=$(now_ms)
	answer=$(sns_deliver "$(jq -cn --arg e "$CAPTURE_URL/" \
		'{endpoint: $e, message: "x", timeout_ms: 300}')")
	t1=$(now_ms)
	jq -e '.results[0].status == 0 and (.results[0].error | test("timed out"))' <<<"$answer"
	(( t1 - t0 < 2000 )) || fail "deliver took $((t1 - t0)) ms"
	run wc -l <"$CAPTURE_LOG"
	assert_output 1
}

@test "sim sns: deliver refuses requests it cannot honour" {
	local body
	capture_start
	for body in '{"endpoint": "EP", "mesage": "typo"}' \
		'{"endpoint": "EP", "type": "Bogus", "message": "x"}' \
		'{"endpoint": "EP"}' \
		'{"endpoint": "EP", "message": "x", "signature_version": "3"}' \
		'{"endpoint": "EP", "message": "x", "signature_version": 2}' \
		'{"endpoint": "EP", "message": "x", "cert": "../ca"}' \
		'{"endpoint": "EP", "message": "x", "repeat": 0}' \
		'{"endpoint": "EP", "message": "x", "timeout_ms": 0}' \
		'{"endpoint": "EP", "type": "SubscriptionConfirmation", "subject": "s"}' \
		'{"endpoint": "ftp://127.0.0.1/", "message": "x"}' \
		'[]'; do
		run deliver_status "${body//EP/$CAPTURE_URL/}"
		assert_output 400
	done
	run deliver_status "{\"endpoint\": \"$CAPTURE_URL/\", \"message\": \"x\"}"
	assert_output 200
	sim_tls_call POST /_sim/reset >/dev/null
	run curl --silent --cacert "$PKI/ca.pem" --data-binary \
		"{\"endpoint\": \"$CAPTURE_URL/\", \"message\": \"x\"}" "$SIM_TLS_URL/__aws/sns/deliver"
	assert_output --partial /__aws/sns/config
	run wc -l <"$CAPTURE_LOG"
	assert_output 1
}
