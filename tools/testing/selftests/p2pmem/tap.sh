# SPDX-License-Identifier: GPL-2.0
# TAP for the shell tests (sourced, never run): each result is numbered, $failed counts the
# failures, the plan ("1..$n") is the test's to print at its end.

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
# A check: description, command...
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
bail() { echo "Bail out! $1 failed"; exit 1; }
# A setup step, reported: the test cannot go on without it.
step() {
	local what=$1
	shift
	if "$@"; then
		ok "$what"
	else
		not_ok "$what"
		bail "$what"
	fi
}
