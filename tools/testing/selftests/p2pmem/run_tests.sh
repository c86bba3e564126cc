#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the p2pmem selftests inside the test-bed guest and prints their TAP,
# then checks the kernel log and kmemleak, and ends with
#   selftests: N passed, N failed, N skipped
# Exits non-zero when anything failed. Every test program runs under a timeout.
set -u
cd "$(dirname "$0")"
TOP=$(cd ../../../.. && pwd)
export P2PMEM_KO=${P2PMEM_KO:-$TOP/p2pmem.ko}
TESTS=${P2PMEM_TESTS:-bind_test region_test gup_test nvmet_test.sh consumer_test.sh stress_test}
PROGRAM_TIMEOUT=${P2PMEM_PROGRAM_TIMEOUT:-1500}

pass=0 fail=0 skip=0
tap_count() { # file: adds its per-test results to the totals
	local p f s
	p=$(grep -cE '^ok [0-9]+ ' "$1" | head -n 1)
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$1" | head -n 1)
	f=$(grep -cE '^not ok [0-9]+ ' "$1" | head -n 1)
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
}

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
kmemleak=/sys/kernel/debug/kmemleak
if [ -w "$kmemleak" ]; then
	# Forget what boot leaked (not ours); report only what the tests leak.
	echo scan >"$kmemleak"
	echo clear >"$kmemleak"
fi
dmesg -C

for t in $TESTS; do
	echo "# ===== $t"
	timeout --kill-after=10 "$PROGRAM_TIMEOUT" "./$t" >"/tmp/$t.tap" 2>&1
	rc=$?
	cat "/tmp/$t.tap"
	tap_count "/tmp/$t.tap"
	if [ $rc -ne 0 ] && ! grep -qE '^not ok ' "/tmp/$t.tap"; then
		echo "not ok - $t exited with status $rc (124: timed out)"
		fail=$((fail + 1))
	fi
done

# The kernel log must be clean: no WARN, BUG, KASAN, lockdep or leak report.
echo "# ===== kernel log"
bad='WARNING:|BUG:|KASAN|UBSAN|general protection|Oops|possible circular locking|possible recursive locking|inconsistent lock state|INFO: task .* blocked|suspicious RCU|refcount_t:'
if dmesg | grep -E "$bad" >/tmp/dmesg.bad; then
	echo "not ok - kernel log has reports"
	sed 's/^/# /' /tmp/dmesg.bad | head -n 40
	dmesg | tail -n 80 | sed 's/^/# dmesg: /'
	fail=$((fail + 1))
else
	echo "ok - kernel log has no WARN, BUG, KASAN or lockdep report"
	pass=$((pass + 1))
fi
if [ -w "$kmemleak" ]; then
	echo scan >"$kmemleak"
	if [ -s "$kmemleak" ]; then
		echo "not ok - kmemleak reports leaks"
		sed 's/^/# /' "$kmemleak" | head -n 60
		fail=$((fail + 1))
	else
		echo "ok - kmemleak reports no leak"
		pass=$((pass + 1))
	fi
else
	echo "not ok - kmemleak is not available (CONFIG_DEBUG_KMEMLEAK?)"
	fail=$((fail + 1))
fi

echo "selftests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
