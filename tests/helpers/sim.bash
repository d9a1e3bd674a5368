# sim.bash: start, stop and script the vendor API simulator (tests/sim/sim.py).
#
# Load after common.bash. sim_start works from setup (one simulator per test)
# and from setup_file (one per file, with sim_reset in setup to isolate tests).
# sim_start_tls adds a second, HTTPS instance: the loopback stand-in for
# sns.<region>.amazonaws.com (tests/sim/simlib/vendors/aws_sns.py).

SIM_PY="$TESTS_DIR/sim/sim.py"

# sim_start: start the simulator on a free loopback port and wait until it
# answers; exports SIM_URL and SIM_PID.
sim_start() {
	_sim_launch http -- || {
		SIM_PID=
		return 1
	}
	SIM_PID=$_sim_pid
	SIM_LOG=$_sim_log
	# shellcheck disable=SC2034 # kept for tests that read the port file
	SIM_PORT_FILE=$_sim_port_file
	export SIM_PID SIM_LOG
	export SIM_URL="http://127.0.0.1:$_sim_port"
}

# sim_start_tls PKI_DIR: start a second simulator that speaks HTTPS with
# PKI_DIR/tls.pem (made by tests/helpers/sns_pki.sh), wait until it answers
# to a client trusting PKI_DIR/ca.pem only, and point its SNS stand-in at
# PKI_DIR. Exports SIM_TLS_URL (https://127.0.0.1:PORT), SIM_TLS_HOST
# (127.0.0.1:PORT), SIM_TLS_PID, SIM_TLS_LOG, SIM_TLS_PKI (PKI_DIR) and
# SIM_TLS_CA (PKI_DIR/ca.pem). sim_stop stops it too when called at the
# same level (both in a test, or both for the file), so one started in
# setup_file outlives the per-test sim_stop of teardown.
sim_start_tls() {
	local pki=$1
	_sim_launch https --cacert "$pki/ca.pem" -- \
		--tls-cert "$pki/tls.pem" --tls-key "$pki/tls.key" || {
		SIM_TLS_PID=
		return 1
	}
	SIM_TLS_PID=$_sim_pid
	SIM_TLS_LOG=$_sim_log
	SIM_TLS_HOST="127.0.0.1:$_sim_port"
	SIM_TLS_URL="https://$SIM_TLS_HOST"
	SIM_TLS_PKI=$pki
	SIM_TLS_CA=$pki/ca.pem
	SIM_TLS_LEVEL=${BATS_TEST_NAME:+test}
	export SIM_TLS_PID SIM_TLS_LOG SIM_TLS_HOST SIM_TLS_URL SIM_TLS_PKI \
		SIM_TLS_CA SIM_TLS_LEVEL
	_sim_tls_config
}

# _sim_launch SCHEME [CURL-OPTION...] -- [SIM-OPTION...]: start one
# simulator process and wait until its health route answers over SCHEME;
# sets _sim_pid, _sim_port, _sim_log and _sim_port_file, or fails the test
# with the simulator gone.
_sim_launch() {
	local scheme=$1 dir port="" deadline curl_opts=()
	shift
	while [ "$1" != -- ]; do
		curl_opts+=("$1")
		shift
	done
	shift
	# BATS_TEST_NAME is only set inside a test's setup, body and teardown.
	if [ -n "${BATS_TEST_NAME:-}" ]; then
		dir=$BATS_TEST_TMPDIR
	else
		dir=$BATS_FILE_TMPDIR
	fi
	_sim_port_file=$(mktemp -u "$dir/sim.XXXXXX.port")
	_sim_log=${_sim_port_file%.port}.log
	# -I -S keep the user's Python setup out and shorten the start-up; the
	# simulator needs nothing beyond the standard library. SIM_PYTHON may
	# name the interpreter itself, sparing a version manager's shim. fd 3 is
	# bats' own output channel: a background process holding it open would
	# make bats wait for the simulator to exit.
	"${SIM_PYTHON:-python3}" -I -S "$SIM_PY" --port 0 --port-file "$_sim_port_file" "$@" \
		>"$_sim_log" 2>&1 3>&- &
	_sim_pid=$!
	deadline=$(($(date +%s%N) + 5000000000))
	while :; do
		if [ -s "$_sim_port_file" ]; then
			port=$(<"$_sim_port_file")
			if curl --silent --fail --max-time 1 "${curl_opts[@]}" \
				"$scheme://127.0.0.1:$port/_sim/health" >/dev/null; then
				break
			fi
		fi
		if ! kill -0 "$_sim_pid" 2>/dev/null; then
			fail "sim: exited during start-up: $(cat "$_sim_log")"
			return 1
		fi
		if [ "$(date +%s%N)" -gt "$deadline" ]; then
			_sim_kill "$_sim_pid"
			fail "sim: not ready after 5 s: $(cat "$_sim_log")"
			return 1
		fi
		sleep 0.02
	done
	_sim_port=$port
}

# sim_stop: stop the simulator, and the HTTPS one if sim_start_tls started
# one at the same level; safe to call twice, or when it never started.
sim_stop() {
	local pid=${SIM_PID:-}
	if [ "${SIM_TLS_LEVEL-}" = "${BATS_TEST_NAME:+test}" ]; then
		sim_stop_tls
	fi
	SIM_PID=
	_sim_kill "$pid"
}

# sim_stop_tls: stop only the HTTPS simulator; safe to call twice.
sim_stop_tls() {
	local pid=${SIM_TLS_PID:-}
	SIM_TLS_PID=
	_sim_kill "$pid"
}

# _sim_kill PID: stop one simulator process and wait for its exit.
_sim_kill() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	# wait only works in the shell that started it (setup_file and
	# teardown_file share one, a test does not), so also poll for the exit.
	wait "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# _sim_call METHOD PATH [BODY]: one control request; the body of an error
# answer goes to stderr so a bad fault rule explains itself.
_sim_call() {
	_sim_curl "$SIM_URL" "" "$@"
}

# _sim_curl BASE CAFILE METHOD PATH [BODY]: one control request to the
# simulator at BASE, trusting CAFILE (empty: the defaults).
_sim_curl() {
	local base=$1 ca=$2 method=$3 path=$4 out opts=()
	[ -z "$ca" ] || opts=(--cacert "$ca")
	[ $# -lt 5 ] || opts+=(--data-binary "$5")
	out=$(curl --silent --show-error --fail-with-body "${opts[@]}" -X "$method" \
		-H 'Content-Type: application/json' "$base$path") || {
		echo "sim: $method $path failed: $out" >&2
		return 1
	}
	printf '%s\n' "$out"
}

# sim_requests [QUERY]: print the recorded vendor requests as a JSON array;
# QUERY is e.g. "path=/echo&method=POST".
sim_requests() {
	curl --silent --show-error --fail "$SIM_URL/_sim/requests${1:+?$1}"
}

# sim_count [QUERY]: print how many vendor requests were recorded.
sim_count() {
	local json
	json=$(sim_requests "$@") || return 1
	jq length <<<"$json"
}

# sim_fault JSON: add a fault rule (fields in tests/sim/simlib/faults.py).
sim_fault() {
	_sim_call POST /_sim/faults "$1" >/dev/null
}

# sim_reset: forget requests, fault rules, settings and vendor state.
sim_reset() {
	_sim_call POST /_sim/reset >/dev/null
}

# sim_set NAME JSON: store a vendor setting, e.g. sim_set vt_api_key '"k1"'.
sim_set() {
	_sim_call POST "/_sim/state/$1" "$2" >/dev/null
}

# sim_tls_call METHOD PATH [BODY]: one request to the HTTPS simulator, like
# _sim_call; prints the answer's body.
sim_tls_call() {
	_sim_curl "$SIM_TLS_URL" "$SIM_TLS_CA" "$@"
}

# sim_tls_reset: sim_reset for the HTTPS simulator; its SNS stand-in keeps
# pointing at the PKI directory.
sim_tls_reset() {
	sim_tls_call POST /_sim/reset >/dev/null && _sim_tls_config
}

# _sim_tls_config: the SNS stand-in's PKI directory, set through the
# control route (/__aws/sns/config would be a vendor request and show in
# /_sim/requests).
_sim_tls_config() {
	local body
	body=$(jq -cn --arg d "$SIM_TLS_PKI" '$d')
	sim_tls_call POST /_sim/state/sns_pki_dir "$body" >/dev/null
}

# sns_deliver JSON: have the HTTPS simulator deliver an SNS message (fields
# in tests/sim/simlib/vendors/aws_sns.py); prints its JSON answer:
# {"results": [{"status", "body", ...}], "message", "body", ...}.
sns_deliver() {
	sim_tls_call POST /__aws/sns/deliver "$1"
}
