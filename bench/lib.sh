# lib.sh: helpers shared by the bench/*.sh scripts; source it, do not run it.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the BENCH_* results are read by the callers
#
# Settings come from the environment, as `make bench` passes them:
#   BIN         where the tools under test live (default build/bin)
#   BENCH_DIR   scratch space: generator, data sets, reports (build/bench)
#   BENCH_N     alerts in the data set (1000000)
#   BENCH_RUNS  timed runs per command; the median is reported (3)
#   CC, PYTHON  compiler for the generator, Python interpreter

BIN=${BIN:-build/bin}
BENCH_DIR=${BENCH_DIR:-build/bench}
BENCH_N=${BENCH_N:-1000000}
BENCH_RUNS=${BENCH_RUNS:-3}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Decimal points and sort order must not depend on the caller's locale.
export LC_ALL=C

bench_die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

bench_note() {
	printf 'bench: %s\n' "$*" >&2
}

bench_need() {
	command -v "$1" >/dev/null 2>&1 || bench_die "$1 not found: $2"
}

# bench_init: checks the settings and creates BENCH_DIR and its temp dir.
bench_init() {
	[[ $BENCH_N =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_N=$BENCH_N: not a positive integer"
	[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS=$BENCH_RUNS: not a positive integer"
	mkdir -p "$BENCH_DIR"
	BENCH_TMP=$(mktemp -d "$BENCH_DIR/tmp.XXXXXX")
	trap 'rm -rf "$BENCH_TMP"' EXIT
	if [ -x /usr/bin/time ]; then
		BENCH_GNU_TIME=/usr/bin/time
	else
		BENCH_GNU_TIME=
		bench_note "/usr/bin/time not found (Debian package time): peak RSS not measured"
	fi
}

# bench_alerts N: prints the path of a data set of N generated alerts,
# building the generator and the data only when they are missing or stale.
bench_alerts() {
	local n=$1 gen=$BENCH_DIR/gen-alerts
	local data=$BENCH_DIR/alerts-$n.ndjson args="-n $n -s 1 -i 2000 -H 5000"

	if [ ! -x "$gen" ] || [ "$BENCH_SRC/gen-alerts.c" -nt "$gen" ]; then
		bench_note "building $gen"
		"$CC" -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE \
			"$BENCH_SRC/gen-alerts.c" -o "$gen" >&2 ||
			bench_die "cannot build $gen"
	fi
	# The stamp records the arguments, so that a data set made with other
	# settings, by an older generator or cut short is never reused.
	if [ -s "$data" ] && [ -f "$data.args" ] &&
		[ "$(cat "$data.args")" = "$args" ] && [ ! "$gen" -nt "$data" ]; then
		printf '%s\n' "$data"
		return
	fi
	bench_note "generating $data"
	rm -f "$data.args"
	# shellcheck disable=SC2086 # $args is a list of words on purpose
	"$gen" $args >"$data.tmp" || bench_die "gen-alerts failed"
	mv "$data.tmp" "$data"
	printf '%s\n' "$args" >"$data.args"
	printf '%s\n' "$data"
}

# bench_median: reads one number per line, prints their median.
bench_median() {
	sort -g | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# bench_clock VAR: sets VAR to the wall clock in microseconds; on bash >= 5
# without forking, so that the reading costs nothing next to the command.
bench_clock() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		printf -v "$1" '%s' "${EPOCHREALTIME/./}"
	else
		printf -v "$1" '%s' "$(($(date +%s%N) / 1000))"
	fi
}

# bench_time INPUT CMD...: runs CMD BENCH_RUNS times with INPUT on stdin and
# stdout to /dev/null. Sets BENCH_SECS (median wall seconds) and BENCH_RSS
# (largest peak RSS in MiB, or n/a). Exits when CMD fails.
bench_time() {
	local input=$1 i t0 t1 rss=0 kb
	shift
	: >"$BENCH_TMP/walls"
	for ((i = 0; i < BENCH_RUNS; i++)); do
		bench_clock t0
		if [ -n "$BENCH_GNU_TIME" ]; then
			"$BENCH_GNU_TIME" -f '%M' -o "$BENCH_TMP/rss" "$@" \
				<"$input" >/dev/null ||
				bench_die "failed: $* <$input"
		else
			"$@" <"$input" >/dev/null || bench_die "failed: $* <$input"
		fi
		bench_clock t1
		echo $((t1 - t0)) >>"$BENCH_TMP/walls"
		if [ -n "$BENCH_GNU_TIME" ]; then
			kb=$(tail -n 1 "$BENCH_TMP/rss")
			if ((kb > rss)); then
				rss=$kb
			fi
		fi
	done
	BENCH_SECS=$(bench_median <"$BENCH_TMP/walls" | awk '{ printf "%.3f", $1 / 1e6 }')
	if [ -n "$BENCH_GNU_TIME" ]; then
		BENCH_RSS=$(awk -v kb="$rss" 'BEGIN { printf "%.1f", kb / 1024 }')
	else
		BENCH_RSS=n/a
	fi
}

# bench_startup_ms CMD...: median milliseconds of 200 runs of CMD (after 20
# warm-up runs) with stdin and stdout on /dev/null. hyperfine when present,
# else a bash loop that reads the clock without forking.
bench_startup_ms() {
	local i t0 t1 cmd=() w

	if command -v hyperfine >/dev/null 2>&1; then
		# hyperfine -N splits the command line itself, like a shell.
		for w in "$@"; do
			cmd+=("$(printf '%q' "$w")")
		done
		hyperfine -N --style basic --warmup 20 --runs 200 \
			--export-json "$BENCH_TMP/hf.json" "${cmd[*]}" >&2 ||
			bench_die "failed: $*"
		jq -r '.results[0].median * 1000' "$BENCH_TMP/hf.json"
		return
	fi
	for ((i = 0; i < 20; i++)); do
		"$@" </dev/null >/dev/null || bench_die "failed: $*"
	done
	for ((i = 0; i < 200; i++)); do
		bench_clock t0
		"$@" </dev/null >/dev/null || bench_die "failed: $*"
		bench_clock t1
		echo $((t1 - t0))
	done | bench_median | awk '{ print $1 / 1000 }'
}

# bench_ratio A B: A / B, unrounded so that a verdict on it is exact.
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", (b > 0 ? a / b : 0) }'
}

# bench_verdict VALUE OP LIMIT: PASS or MISS; OP is one of >= > <= <.
bench_verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		ok = (op == ">=") ? v >= l : (op == ">") ? v > l : \
		     (op == "<=") ? v <= l : v < l
		print ok ? "PASS" : "MISS"
	}'
}

# --- the vendor simulator (tests/sim/sim.py) -------------------------------
# A script that starts it sets its own EXIT trap to call sim_stop.

sim_py=$BENCH_SRC/../tests/sim/sim.py
sim_pid=''
sim_url=''
sim_stop() {
	local pid=$sim_pid
	[ -n "$pid" ] || return 0
	sim_pid=''
	kill "$pid" 2>/dev/null || return 0
	wait "$pid" 2>/dev/null || true
}
# sim_start: the simulator on a free loopback port; sets sim_url.
sim_start() {
	[ -f "$sim_py" ] || bench_die "$sim_py not found"
	local port_file=$BENCH_TMP/sim.port log=$BENCH_TMP/sim.log port i
	"$PYTHON" -I -S "$sim_py" --port 0 --port-file "$port_file" \
		>"$log" 2>&1 &
	sim_pid=$!
	for ((i = 0; i < 250; i++)); do
		if [ -s "$port_file" ]; then
			port=$(<"$port_file")
			if curl --silent --fail --max-time 1 \
				"http://127.0.0.1:$port/_sim/health" >/dev/null; then
				sim_url=http://127.0.0.1:$port
				return
			fi
		fi
		kill -0 "$sim_pid" 2>/dev/null ||
			bench_die "simulator exited during start-up: $(cat "$log")"
		sleep 0.02
	done
	bench_die "simulator not ready after 5 s: $(cat "$log")"
}

# sim_call METHOD PATH [BODY]: one control request.
sim_call() {
	curl --silent --show-error --fail-with-body -X "$1" \
		-H 'Content-Type: application/json' ${3+--data-binary "$3"} \
		"$sim_url$2" >"$BENCH_TMP/sim.answer" ||
		bench_die "simulator: $1 $2 failed: $(cat "$BENCH_TMP/sim.answer")"
}
