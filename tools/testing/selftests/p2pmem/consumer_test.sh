#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In-kernel consumers of p2pmem's published pool, through the p2pmem_consumer test module, with
# p2pmem's ivshmem the only P2PDMA provider (the CMB controller is taken from the nvme driver,
# which would publish its CMB too, and given back at the end):
# - the nvmet data path (find_many -> alloc_sgl -> NVMe DMA -> bytes checked -> free_sgl), with
#   the provider it found, the pages' addresses and our pool's counters asserted;
# - distance: a root-bus client cannot reach us (EREMOTEIO), a missing one is ENODEV;
# - revoke of a long-term holder on unbind, prompt and slow: unbind blocks until the holder
#   released (timestamps, pool counters), and a new hold while unbind waits does not deadlock;
# - lifetime of a registration against a /dev/p2pmemN mapping that outlives the binding:
#   unregister and unload after unbind, after a rebind, and from the release path.
# TAP output; every setup step is checked and every wait bounded.
set -u
cd "$(dirname "$0")"
. ./lib.sh
TOP=$(cd ../../../.. && pwd)
KO=${P2PMEM_KO:-$TOP/p2pmem.ko}
CONSUMER=${P2PMEM_CONSUMER_KO:-$PWD/consumer/p2pmem_consumer.ko}
HOLDER=$PWD/hold_mapping
DBG=/sys/kernel/debug/p2pmem_consumer
PARAMS=/sys/module/p2pmem_consumer/parameters
UNBIND=/sys/bus/pci/drivers/p2pmem/unbind
BIND=/sys/bus/pci/drivers/p2pmem/bind
TMP=$(mktemp -d /tmp/consumer_test.XXXXXX)
REPORTS='WARNING:|BUG:|KASAN|UBSAN|general protection|Oops|possible circular locking|possible recursive locking|inconsistent lock state|INFO: task .* blocked|refcount_t:'

. ./tap.sh
errno_of() { # file, value: prints the errno name of a failed write, "" on success
	local err
	err=$( { echo "$2" >"$1"; } 2>&1) && { echo ""; return; }
	case "$err" in
	*"No such device"*) echo ENODEV ;;
	*"Remote I/O error"*) echo EREMOTEIO ;;
	*"Invalid argument"*) echo EINVAL ;;
	*) echo "$err" ;;
	esac
}
wait_bounded() { # pid, seconds: the pid's exit status, 124 when it outlived the bound
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	# Not reaped: a task stuck in the kernel does not die of SIGKILL either.
	kill -0 "$1" 2>/dev/null && { kill -KILL "$1"; return 124; }
	wait "$1"
}
log_mark() { dmesg | wc -l; }
# Waits (bounded, 30 s) until ->revoke() was called at or after $1 ns.
wait_revoked() {
	for _ in $(seq 300); do
		[ "$(cat "$DBG/revoked_ns")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
log_clean_since() { # mark: no kernel report logged after it
	! dmesg | tail -n +$(($1 + 1)) | grep -E "$REPORTS"
}
bound_to() { [ "$(pci_driver_of "$1")" = "$2" ]; }
unbound() { [ -z "$(pci_driver_of "$1")" ]; }
loaded() { [ -d "/sys/module/$1" ]; }
pool() { cat "/sys/bus/pci/devices/$ivshmem/p2pmem/$1"; }
# p2pmem's own counters of the same pool (p2pmem_region/), read independently of the kernel's.
region() { cat "/sys/bus/pci/devices/$ivshmem/p2pmem_region/$1"; }
bind_ivshmem() {
	timeout 60 sh -c "echo $ivshmem > $BIND" && bound_to "$ivshmem" p2pmem && [ -d "/sys/bus/pci/devices/$ivshmem/p2pmem" ]
}
unbind_ivshmem() {
	timeout 60 sh -c "echo $ivshmem > $UNBIND" && unbound "$ivshmem"
}
holds_one_mib() {
	local size avail
	size=$(pool size)
	echo "$ivshmem 1048576" >"$DBG/hold" || return 1
	avail=$(pool available)
	[ "$(cat "$DBG/held")" = 1048576 ] && [ $((size - avail)) = 1048576 ] &&
		[ "$(region pool_bytes)" = "$size" ] && [ "$(region pool_free_bytes)" = "$avail" ]
}
# Starts hold_mapping on ivshmem's /dev/p2pmemN, fed by a fifo on fd 5; 0 once it is ready.
holder_start() {
	rm -f "$TMP/fifo" "$TMP/holder.out"
	mkfifo "$TMP/fifo" || return 1
	"$HOLDER" "$ivshmem" 1048576 <"$TMP/fifo" >"$TMP/holder.out" 2>&1 &
	holder=$!
	exec 5>"$TMP/fifo"
	for _ in $(seq 100); do
		grep -q '^ready ' "$TMP/holder.out" && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/# holder: /' "$TMP/holder.out"
	return 1
}
# Closes the holder's stdin: it unmaps, closes and exits; 0 when it exited with 0.
holder_stop() {
	local rc
	exec 5>&-
	wait_bounded "$holder" 30
	rc=$?
	holder=""
	[ $rc -eq 0 ] || sed 's/^/# holder: /' "$TMP/holder.out"
	return $rc
}
cleanup() {
	# Tasks stuck in the kernel: unloading would only join them.
	[ -n "${wedged:-}" ] && return
	[ -n "${holder:-}" ] && { exec 5>&-; kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }
	rmmod p2pmem_consumer 2>/dev/null
	rmmod p2pmem 2>/dev/null
	[ -n "${cmb:-}" ] && ! cmb_restore_nvme "$cmb" && echo "# could not give $cmb back to nvme"
	rm -rf "$TMP"
}

echo "TAP version 13"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
ctrl=$(nvme_ctrl_by serial p2pmem-data)
ivshmem=$(ivshmem_bdf)
cmb=$(cmb_bdf)
if [ -z "$ctrl" ] || [ -z "$ivshmem" ] || [ -z "$cmb" ] || [ ! -e "$CONSUMER" ] ||
	[ ! -x "$HOLDER" ]; then
	echo "1..0 # SKIP not the scripts/vm.sh test bed, or consumer module or hold_mapping not built"
	exit 4
fi
trap cleanup EXIT
data_bdf=$(basename "$(readlink -f "/sys/class/nvme/$ctrl/device")")
# A client on the root bus, found by vendor:device: q35's host bridge.
hostbridge=$(lspci -D -n -d 8086:29c0 | awk '{ print $1; exit }')
holder=""
rmmod p2pmem_consumer 2>/dev/null
rmmod p2pmem 2>/dev/null

step "the CMB controller $cmb is bound to no driver (no second provider)" pci_unbind_any "$cmb"
load_p2pmem() { insmod "$KO" && loaded p2pmem && bound_to "$ivshmem" p2pmem; }
step "p2pmem loads and drives ivshmem $ivshmem" load_p2pmem
step "the consumer module loads" insmod "$CONSUMER"
published() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/p2pmem/published" 2>/dev/null)" = 1 ] && basename "$d"
	done
	return 0
}
check "ivshmem is the only published P2PDMA provider" test "$(published)" = "$ivshmem"

# The nvmet data path; the consumer keeps its SGL 3 s so that we see our pool lend it.
size=$(pool size)
step "datapath_pause_ms is set" sh -c "echo 3000 > $PARAMS/datapath_pause_ms"
timeout 120 sh -c "echo '$data_bdf /dev/${ctrl}n1 $((96 << 20))' > $DBG/datapath" 2>"$TMP/dp.err" &
dp=$!
min_avail=$size
for _ in $(seq 120); do
	avail=$(pool available)
	[ "$avail" -lt "$min_avail" ] && min_avail=$avail
	[ $((size - min_avail)) -ge 65536 ] && break
	sleep 0.05
done
wait_bounded $dp 150
dp_rc=$?
echo 0 >"$PARAMS/datapath_pause_ms"
grep . "$DBG/result" "$TMP/dp.err" | sed 's/^/# /'
check "nvmet data path: find_many, alloc_sgl, bio write and read, data checked" \
	sh -c "[ $dp_rc = 0 ] && grep -q ' data ok\$' $DBG/result"
check "the provider find_many chose is our device $ivshmem" \
	grep -q "^nvmet path: provider $ivshmem " "$DBG/result"
check "every page of the SGL is a P2PDMA page inside the provider's BAR" \
	grep -q " pages in its BAR yes " "$DBG/result"
check "our pool lent 64 KiB while the consumer held the SGL" test $((size - min_avail)) -ge 65536
check "every byte came back to our pool" test "$(pool available)" = "$size"

check "the host bridge 8086:29c0 is a root-bus device" test "${hostbridge#0000:00:}" != "$hostbridge"
check "a client behind the host bridge cannot reach us (EREMOTEIO)" \
	test "$(errno_of "$DBG/distance" "$ivshmem $hostbridge")" = EREMOTEIO
check "a client under our switch can (the data NVMe)" \
	test -z "$(errno_of "$DBG/distance" "$ivshmem $data_bdf")"
check "a client that does not exist is ENODEV, not EREMOTEIO" \
	test "$(errno_of "$DBG/distance" "$ivshmem 0000:7f:1f.7")" = ENODEV

# A prompt holder.
check "a long-term holder takes 1 MiB of our pool" holds_one_mib
check "unbind revokes the holder and completes; ivshmem is unbound" unbind_ivshmem
check "the holder let go after ->revoke()" \
	sh -c "[ \$(cat $DBG/held) = 0 ] && [ \$(cat $DBG/revoked_ns) -gt 0 ] && [ \$(cat $DBG/released_ns) -ge \$(cat $DBG/revoked_ns) ]"
hold_refused() { # negative test: first the state it depends on
	unbound "$ivshmem" && loaded p2pmem && loaded p2pmem_consumer &&
		[ "$(errno_of "$DBG/hold" "$ivshmem 4096")" = ENODEV ]
}
check "with ivshmem unbound and both modules loaded, a new hold is ENODEV" hold_refused

# A slow holder: unbind must block until it released, revoke_delay_ms after ->revoke() (20 s:
# TCG with another guest running takes seconds to get from the unbind write to ->revoke(), and
# one slow guest needed more than 9 s from there to the reads below).
delay_ms=20000
step "ivshmem binds to p2pmem again" bind_ivshmem
step "revoke_delay_ms is set" sh -c "echo $delay_ms > $PARAMS/revoke_delay_ms"
check "a slow holder takes 1 MiB of our pool" holds_one_mib
rm -f "$TMP/unbind_end"
slow_mark=$(log_mark)
t0=$(now_ns)
(timeout 120 sh -c "echo $ivshmem > $UNBIND"; rc=$?; now_ns >"$TMP/unbind_end"; exit $rc) &
ub=$!
check "->revoke() is called" wait_revoked "$t0"
sleep 1
# One snapshot, then the checks on it: a file that cannot be read is an empty value, and fails.
waiting=no
kill -0 $ub 2>/dev/null && [ ! -e "$TMP/unbind_end" ] && waiting=yes
held=$(cat "$DBG/held")
size=$(pool size)
avail=$(pool available)
r_pool=$(region pool_bytes)
r_free=$(region pool_free_bytes)
echo "# $((($(now_ns) - $(cat "$DBG/revoked_ns")) / 1000000)) ms after ->revoke(): unbind waiting $waiting, held '$held', pool size '$size' available '$avail', p2pmem_region/ pool_bytes '$r_pool', pool_free_bytes '$r_free'"
check "1 s after ->revoke(), unbind still waits and the holder still holds" \
	sh -c "[ $waiting = yes ] && [ '$held' = 1048576 ]"
check "while unbind waits, our pool still lends the holder's 1 MiB" \
	sh -c "[ -n '$size' ] && [ -n '$avail' ] && [ \$((${size:-0} - ${avail:-0})) = 1048576 ]"
check "while unbind waits, p2pmem_region/ stays readable and shows that 1 MiB of the pool out" \
	sh -c "[ -n '$r_pool' ] && [ -n '$r_free' ] && [ \$((${r_pool:-0} - ${r_free:-0})) = 1048576 ]"
wait_bounded $ub 150
ub_rc=$?
check "unbind completes; ivshmem is unbound" sh -c "[ $ub_rc = 0 ] && [ ! -e /sys/bus/pci/devices/$ivshmem/driver ]"
t1=$(cat "$TMP/unbind_end" 2>/dev/null || echo 0)
revoked=$(cat "$DBG/revoked_ns")
released=$(cat "$DBG/released_ns")
echo "# unbind from $t0 to $t1 ns; revoked at $revoked, released at $released"
check "unbind returned only after the holder released" test "$released" -gt 0 -a "$t1" -ge "$released"
check "the holder released revoke_delay_ms after ->revoke()" \
	test $((released - revoked)) -ge $((delay_ms * 1000000))
check "unbind took at least revoke_delay_ms" test $((t1 - t0)) -ge $((delay_ms * 1000000))
# An extra; the state above is the assertion.
check "while waiting, this unbind named the slow holder in the log" \
	sh -c "dmesg | tail -n +$((slow_mark + 1)) | grep -q 'p2pmem $ivshmem: unbind: p2pmem_consumer has not released'"

# A new hold while unbind waits for the slow holder lets go and unregisters (the consumer must
# not wait for its own work under the lock the work takes): unbind stops waiting for it. The
# holder would let go only after 40 s of its own, far beyond the new hold even in a guest slowed
# several times by a busy host (one CI run took 5.9 s from ->revoke() to the new hold).
rehold_delay_ms=40000
step "ivshmem binds to p2pmem again" bind_ivshmem
step "revoke_delay_ms is set to ${rehold_delay_ms}" sh -c "echo $rehold_delay_ms > $PARAMS/revoke_delay_ms"
check "a slow holder takes 1 MiB of our pool" holds_one_mib
rm -f "$TMP/unbind_end"
t0=$(now_ns)
(timeout 120 sh -c "echo $ivshmem > $UNBIND"; rc=$?; now_ns >"$TMP/unbind_end"; exit $rc) &
ub=$!
check "->revoke() is called" wait_revoked "$t0"
sleep 1
revoked=$(cat "$DBG/revoked_ns")
check "1 s after ->revoke(), unbind still waits for the slow holder" \
	sh -c "kill -0 $ub && [ ! -e $TMP/unbind_end ]"
t_rehold=$(now_ns)
bash -c "echo '$ivshmem 4096' > $DBG/hold" 2>"$TMP/rehold.err" &
wait_bounded $! 60
rehold=$?
if [ $rehold = 124 ]; then
	not_ok "a new hold meanwhile returns (still blocked after 60 s: deadlock)"
	wedged=1
	bail "the new hold"
fi
sed 's/^/# new hold: /' "$TMP/rehold.err"
check "a new hold meanwhile returns (ENODEV: the device is being unbound)" \
	sh -c "[ $rehold = 1 ] && grep -q 'No such device' $TMP/rehold.err"
wait_bounded $ub 150
ub_rc=$?
check "unbind completes; ivshmem is unbound" sh -c "[ $ub_rc = 0 ] && [ ! -e /sys/bus/pci/devices/$ivshmem/driver ]"
t1=$(cat "$TMP/unbind_end" 2>/dev/null || echo 0)
echo "# unbind from $t0 to $t1 ns; revoked at $revoked; new hold at $t_rehold"
check "unbind stopped waiting when the holder let go (before revoke_delay_ms after ->revoke())" \
	test "$t1" -gt 0 -a $((t1 - revoked)) -lt $((rehold_delay_ms * 1000000))
check "the holder holds nothing" test "$(cat "$DBG/held")" = 0
step "revoke_delay_ms is reset" sh -c "echo 0 > $PARAMS/revoke_delay_ms"

# Lifetime (a): a registration and a /dev/p2pmemN mapping across unbind; the consumer
# unregisters and unloads while the file is still open; then the mapping goes.
mark=$(log_mark)
step "ivshmem binds to p2pmem again" bind_ivshmem
check "a process maps 1 MiB of ivshmem's /dev/p2pmemN" holder_start
check "the consumer registers and holds 1 MiB" holds_one_mib
check "unbind completes under the mapping; ivshmem is unbound" unbind_ivshmem
check "the consumer unregisters and unloads" sh -c "rmmod p2pmem_consumer && [ ! -d $PARAMS ]"
check "the mapping process exits cleanly afterwards" holder_stop
check "no kernel report (KASAN, BUG, lockdep, WARNING) in lifetime (a)" log_clean_since "$mark"

# Lifetime (b): the same across a rebind; the consumer registers again on the new binding.
mark=$(log_mark)
step "the consumer module loads" insmod "$CONSUMER"
step "ivshmem binds to p2pmem again" bind_ivshmem
check "a process maps 1 MiB of ivshmem's /dev/p2pmemN" holder_start
check "the consumer registers and holds 1 MiB" holds_one_mib
check "unbind completes under the mapping; ivshmem is unbound" unbind_ivshmem
step "ivshmem binds to p2pmem again" bind_ivshmem
check "the consumer registers again on the new binding and holds 1 MiB" holds_one_mib
check "the consumer unregisters and unloads" sh -c "rmmod p2pmem_consumer && [ ! -d $PARAMS ]"
check "the new binding's pool got everything back" test "$(pool available)" = "$(pool size)"
check "the mapping process exits cleanly afterwards" holder_stop
check "no kernel report (KASAN, BUG, lockdep, WARNING) in lifetime (b)" log_clean_since "$mark"

# Lifetime (c): the consumer's delayed revoke work releases, then unregisters, while unbind
# waits for it.
mark=$(log_mark)
step "the consumer loads with unregister_on_release=1 revoke_delay_ms=2000" \
	insmod "$CONSUMER" unregister_on_release=1 revoke_delay_ms=2000
check "ivshmem is bound to p2pmem" bound_to "$ivshmem" p2pmem
check "the consumer registers and holds 1 MiB" holds_one_mib
check "unbind completes; ivshmem is unbound" unbind_ivshmem
t1=$(now_ns)
check "the holder released before unbind returned" \
	sh -c "r=\$(cat $DBG/released_ns); [ \$r -gt 0 ] && [ $t1 -ge \$r ] && [ \$(cat $DBG/held) = 0 ]"
check "the consumer unloads" sh -c "rmmod p2pmem_consumer && [ ! -d $PARAMS ]"
check "no kernel report (KASAN, BUG, lockdep, WARNING) in lifetime (c)" log_clean_since "$mark"

check "p2pmem unloads" sh -c "rmmod p2pmem && [ ! -d /sys/module/p2pmem ]"
check "the CMB controller is back on nvme" cmb_restore_nvme "$cmb"
echo "1..$n"
[ "$failed" -eq 0 ]
