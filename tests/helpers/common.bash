# common.bash: loaded first by every tests/*.bats file.
#
# SOAR_BIN names the directory holding the tools under test (make check sets
# it to the sanitizer build); the tools are found on PATH from there.
# SHARED is the team's shared/ directory with the third-party corpus.

load '/usr/lib/bats/bats-support/load.bash'
load '/usr/lib/bats/bats-assert/load.bash'

TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOP_DIR="$(cd "$TESTS_DIR/.." && pwd)"
: "${SOAR_BIN:=$TOP_DIR/build/bin}"
: "${SHARED:=$TOP_DIR/../shared}"
PATH="$SOAR_BIN:$PATH"
export SOAR_BIN SHARED PATH TESTS_DIR TOP_DIR

# Sanitizers: fail the test on any report, never print leak noise on success.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Keep user configuration and caches out of the tests.
export HOME="$BATS_TEST_TMPDIR/home"
export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/cache"
export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
mkdir -p "$HOME"

# skip_unless_ci_allows REASON: a skipped test is a failure on CI, where every
# prerequisite is installed by make deps.
skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		fail "skipped on CI: $1"
	fi
	skip "$1"
}

# crashed STATUS: true when the exit status means a signal or a sanitizer
# abort, which no test accepts (git's test_must_fail rule).
refute_crash() {
	local st=${1:-$status}
	if [ "$st" -ge 128 ] && [ "$st" -ne 141 ]; then
		fail "crashed with status $st"
	fi
}
