# sim.bash: start, stop and script the vendor API simulator (tests/sim/sim.py).
#
# Load after common.bash. sim_start works from setup (one simulator per test)
# and from setup_file (one per file, with sim_reset in setup to isolate tests).

SIM_PY="$TESTS_DIR/sim/sim.py"

# sim_start: start the simulator on a free loopback port and wait until it
# answers; exports SIM_URL and SIM_PID.
sim_start() {
	local dir port="" deadline
	# BATS_TEST_NAME is only set inside a test's setup, body and teardown.
	if [ -n "${BATS_TEST_NAME:-}" ]; then
		dir=$BATS_TEST_TMPDIR
	else
		dir=$BATS_FILE_TMPDIR
	fi
	SIM_PORT_FILE=$(mktemp -u "$dir/sim.XXXXXX.port")
	SIM_LOG=${SIM_PORT_FILE%.port}.log
	# -I -S keep the user's Python setup out and shorten the start-up; the
	# simulator needs nothing beyond the standard library. fd 3 is bats' own
	# output channel: a background process holding it open would make bats
	# wait for the simulator to exit.
	python3 -I -S "$SIM_PY" --port 0 \
		--port-file "$SIM_PORT_FILE" >"$SIM_LOG" 2>&1 3>&- &
	SIM_PID=$!
	export SIM_PID SIM_LOG
	deadline=$(($(date +%s%N) + 5000000000))
	while :; do
		if [ -s "$SIM_PORT_FILE" ]; then
			port=$(<"$SIM_PORT_FILE")
			if curl --silent --fail --max-time 1 \
				"http://127.0.0.1:$port/_sim/health" >/dev/null; then
				break
			fi
		fi
		if ! kill -0 "$SIM_PID" 2>/dev/null; then
			SIM_PID=
			fail "sim: exited during start-up: $(cat "$SIM_LOG")"
			return 1
		fi
		if [ "$(date +%s%N)" -gt "$deadline" ]; then
			sim_stop
			fail "sim: not ready after 5 s: $(cat "$SIM_LOG")"
			return 1
		fi
		sleep 0.02
	done
	export SIM_URL="http://127.0.0.1:$port"
}

# sim_stop: stop the simulator; safe to call twice, or when it never started.
sim_stop() {
	local pid=${SIM_PID:-}
	[ -n "$pid" ] || return 0
	SIM_PID=
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
	local out
	out=$(curl --silent --show-error --fail-with-body -X "$1" \
		-H 'Content-Type: application/json' ${3+--data-binary "$3"} \
		"$SIM_URL$2") || {
		echo "sim: $1 $2 failed: $out" >&2
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
