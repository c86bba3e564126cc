#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# nvmet with p2pmem: a subsystem whose namespace is the data NVMe, with the namespace's p2pmem
# attribute set to a device p2pmem drives (and to 1, "any published p2pmem"), enabled, exported
# on an nvme-loop port, connected, and verified with O_DIRECT I/O; then the kernel's errors for
# our device unbound or its pool unpublished (ENODEV) and for p2pmem set after enable (EBUSY).
# TAP output; every wait is bounded.
set -u
cd "$(dirname "$0")"
. ./lib.sh
TOP=$(cd ../../../.. && pwd)
KO=${P2PMEM_KO:-$TOP/p2pmem.ko}
CFG=/sys/kernel/config/nvmet
NQN=nqn.2026-11.dev.p2pmem:nvmet-test
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:5f0e4a6c-3b1e-4c4e-9d7a-p2pmem000001
SUBSYS=$CFG/subsystems/$NQN
NS=$SUBSYS/namespaces/1
PORT=$CFG/ports/1

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
check() { # description, command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# Writes $2 into configfs attribute $1 and prints the errno name of a failure ("" on success).
write_errno() {
	local err
	err=$( { echo "$2" >"$1"; } 2>&1) && { echo ""; return; }
	case "$err" in
	*"No such device"*) echo ENODEV ;;
	*"Device or resource busy"*) echo EBUSY ;;
	*"Invalid argument"*) echo EINVAL ;;
	*) echo "$err" ;;
	esac
}
teardown() {
	timeout 30 nvme disconnect -n "$NQN" >/dev/null 2>&1
	rm -f "$PORT/subsystems/$NQN" 2>/dev/null
	[ -d "$PORT" ] && rmdir "$PORT" 2>/dev/null
	[ -e "$NS/enable" ] && echo 0 >"$NS/enable" 2>/dev/null
	[ -d "$NS" ] && rmdir "$NS" 2>/dev/null
	[ -d "$SUBSYS" ] && rmdir "$SUBSYS" 2>/dev/null
	rmmod p2pmem 2>/dev/null
	return 0
}
setup_subsys() { # p2pmem value
	mkdir -p "$NS" &&
		echo 1 >"$SUBSYS/attr_allow_any_host" &&
		echo "/dev/${data}n1" >"$NS/device_path" &&
		echo "$1" >"$NS/p2pmem"
}

echo "TAP version 13"
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
if [ ! -d "$CFG" ] || ! command -v nvme >/dev/null; then
	echo "1..0 # SKIP nvmet configfs or nvme-cli missing"
	exit 4
fi
data=$(nvme_ctrl_by serial p2pmem-data)
ivshmem=$(ivshmem_bdf)
if [ -z "$data" ] || [ -z "$ivshmem" ]; then
	echo "1..0 # SKIP not the scripts/vm.sh test bed"
	exit 4
fi
echo "1..9"
teardown
insmod "$KO" || { echo "Bail out! insmod failed"; exit 1; }

check "p2pmem of the namespace accepts our device's BDF" setup_subsys "$ivshmem"
check "the namespace enables with our p2pmem" sh -c "echo 1 > '$NS/enable'"
check "p2pmem cannot change once enabled (EBUSY)" \
	test "$(write_errno "$NS/p2pmem" "$ivshmem")" = EBUSY

mkdir -p "$PORT" && echo loop >"$PORT/addr_trtype" && ln -s "$SUBSYS" "$PORT/subsystems/$NQN"
timeout 60 nvme connect -t loop -n "$NQN" --hostnqn="$HOSTNQN" >/dev/null 2>&1
remote=""
for _ in $(seq 100); do
	remote=$(nvme_ctrl_by subsysnqn "$NQN")
	[ -n "$remote" ] && [ -b "/dev/${remote}n1" ] && break
	sleep 0.1
done
check "nvme-loop connects to the subsystem" test -n "$remote" -a -b "/dev/${remote}n1"

# Verified I/O: written through the loop controller, read back from the data NVMe itself.
head -c 1048576 /dev/urandom >/tmp/nvmet-pattern
verified() {
	dd if=/tmp/nvmet-pattern of="/dev/${remote}n1" bs=128k seek=128 oflag=direct status=none &&
		dd if="/dev/${data}n1" of=/tmp/nvmet-back bs=128k skip=128 count=8 iflag=direct \
			status=none &&
		cmp -s /tmp/nvmet-pattern /tmp/nvmet-back
}
check "O_DIRECT I/O through nvmet reaches the namespace intact" verified
teardown

insmod "$KO"
check "p2pmem=1 (any published p2pmem) enables" \
	sh -c "$(declare -f setup_subsys); NS='$NS' SUBSYS='$SUBSYS' data='$data' setup_subsys 1 && echo 1 > '$NS/enable'"
teardown

insmod "$KO"
echo "$ivshmem" >/sys/bus/pci/drivers/p2pmem/unbind
mkdir -p "$NS"
check "our device unbound: its BDF is refused (ENODEV)" \
	test "$(write_errno "$NS/p2pmem" "$ivshmem")" = ENODEV
teardown

insmod "$KO" pool_size=0
mkdir -p "$NS"
check "our pool unpublished (pool_size=0): its BDF is refused (ENODEV)" \
	test "$(write_errno "$NS/p2pmem" "$ivshmem")" = ENODEV
teardown
check "teardown leaves no subsystem behind" test ! -d "$SUBSYS"

[ "$failed" -eq 0 ]
