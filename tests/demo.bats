#!/usr/bin/env bats
# demo: `make demo` runs a whole playbook against the simulator.

load helpers/common

@test "demo: enriches, decides and routes 200 alerts without an account" {
	run env BIN="$SOAR_BIN" "$TOP_DIR/examples/demo.sh"
	assert_success
	assert_line --partial '== 200 alerts -> vt-enrich -> decide'
	# Every alert lands in exactly one branch, some in each.
	total=0
	for outcome in contain escalate monitor; do
		n=$(grep -E "^$outcome +[0-9]+ alerts$" <<<"$output" | awk '{print $2}')
		[ -n "$n" ] && [ "$n" -gt 0 ] || fail "no $outcome alerts"
		total=$((total + n))
	done
	[ "$total" -eq 200 ]
	assert_line --partial '"verdict":"malicious"'
	assert_line --regexp 'received [0-9]+ requests'
}
