#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# nvmet's configfs with p2pmem: a subsystem whose namespace is the data NVMe, with the
# namespace's p2pmem attribute set to a device p2pmem drives (and to 1, "any published
# p2pmem"), enabled, exported on an nvme-loop port and connected; then the kernel's errors for
# our device unbound or its pool unpublished (ENODEV) and for p2pmem set after enable (EBUSY).
#
# What this proves: nvmet accepts our device as the namespace's P2P memory provider (the BDF
# has published P2PDMA memory, the distance to the data NVMe is valid) and, with p2pmem=1,
# that pci_p2pmem_find() finds published P2PDMA memory for the data NVMe, which is ours: the
# CMB controller is taken from the nvme driver for the test (its CMB would be a second
# provider) and, without p2pmem, p2pmem=1 is refused. What it does not prove: that I/O uses
# P2P memory. Only nvmet-rdma allocates P2P memory per request (nvmet_req_alloc_sgls());
# nvme-loop never does, so the loop I/O below checks the export, not a P2P data path. That
# path is consumer_test.sh's: the consumer module makes nvmet's calls with the data NVMe as
# client and asserts the provider.
# TAP output; every setup step is checked, every wait is bounded.
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

. ./tap.sh
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
# Removes the subsystem and unloads p2pmem; 0 when nothing is left of either.
teardown() {
	timeout 30 nvme disconnect -n "$NQN" >/dev/null 2>&1
	rm -f "$PORT/subsystems/$NQN" 2>/dev/null
	[ -d "$PORT" ] && rmdir "$PORT" 2>/dev/null
	[ -e "$NS/enable" ] && echo 0 >"$NS/enable" 2>/dev/null
	[ -d "$NS" ] && rmdir "$NS" 2>/dev/null
	[ -d "$SUBSYS" ] && rmdir "$SUBSYS" 2>/dev/null
	rmmod p2pmem 2>/dev/null
	[ ! -d "$SUBSYS" ] && [ ! -d /sys/module/p2pmem ]
}
cleanup() {
	teardown
	[ -n "${cmb:-}" ] && ! cmb_restore_nvme "$cmb" && echo "# could not give $cmb back to nvme"
}
loaded() { [ -d /sys/module/p2pmem ]; }
ours() { [ "$(pci_driver_of "$ivshmem")" = p2pmem ]; }
has_pool() { [ "$(cat "/sys/bus/pci/devices/$ivshmem/p2pmem/size" 2>/dev/null || echo 0)" -gt 0 ]; }
published() { [ "$(cat "/sys/bus/pci/devices/$ivshmem/p2pmem/published" 2>/dev/null)" = 1 ]; }
load() { # p2pmem parameters: loaded, and driving ivshmem
	insmod "$KO" "$@" && loaded && ours
}
load_published() { load && published; }
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
cmb=$(cmb_bdf)
if [ -z "$data" ] || [ -z "$ivshmem" ] || [ -z "$cmb" ]; then
	echo "1..0 # SKIP not the scripts/vm.sh test bed"
	exit 4
fi
trap cleanup EXIT
step "no subsystem is left and p2pmem is not loaded" teardown
step "the CMB controller $cmb is bound to no driver (no second provider)" pci_unbind_any "$cmb"

# The control: nothing but p2pmem can give the data NVMe P2P memory.
no_provider() { # the state first: p2pmem not loaded
	! loaded && setup_subsys 1 && [ "$(write_errno "$NS/enable" 1)" = EINVAL ]
}
check "without p2pmem, no P2P memory reaches the data NVMe: p2pmem=1 does not enable (EINVAL)" \
	no_provider
step "teardown" teardown

step "p2pmem loads and drives ivshmem with a published pool" load_published
check "p2pmem of the namespace accepts our device's BDF" setup_subsys "$ivshmem"
check "the namespace enables with our p2pmem" sh -c "echo 1 > '$NS/enable'"
check "p2pmem cannot change once enabled (EBUSY)" \
	test "$(write_errno "$NS/p2pmem" "$ivshmem")" = EBUSY

step "an nvme-loop port exports the subsystem" \
	sh -c "mkdir -p '$PORT' && echo loop > '$PORT/addr_trtype' && ln -s '$SUBSYS' '$PORT/subsystems/$NQN'"
timeout 60 nvme connect -t loop -n "$NQN" --hostnqn="$HOSTNQN" >/dev/null 2>&1
remote=""
for _ in $(seq 100); do
	remote=$(nvme_ctrl_by subsysnqn "$NQN")
	[ -n "$remote" ] && [ -b "/dev/${remote}n1" ] && break
	sleep 0.1
done
check "nvme-loop connects to the subsystem" test -n "$remote" -a -b "/dev/${remote}n1"

# The export works: written through the loop controller, read back from the data NVMe itself.
# nvme-loop allocates no P2P memory (only nvmet-rdma does): this is not a P2P data path.
head -c 1048576 /dev/urandom >/tmp/nvmet-pattern
verified() {
	dd if=/tmp/nvmet-pattern of="/dev/${remote}n1" bs=128k seek=128 oflag=direct status=none &&
		dd if="/dev/${data}n1" of=/tmp/nvmet-back bs=128k skip=128 count=8 iflag=direct \
			status=none &&
		cmp -s /tmp/nvmet-pattern /tmp/nvmet-back
}
check "O_DIRECT I/O through the nvme-loop export reaches the namespace intact (no P2P memory on loop)" \
	verified
step "teardown" teardown

step "p2pmem loads and drives ivshmem with a published pool" load_published
any_enables() { setup_subsys 1 && echo 1 >"$NS/enable"; }
check "p2pmem=1 (any published p2pmem, here only ours) enables" any_enables
step "teardown" teardown

step "p2pmem loads and drives ivshmem" load
step "our device unbinds" timeout 60 sh -c "echo $ivshmem > /sys/bus/pci/drivers/p2pmem/unbind"
step "the namespace is made" mkdir -p "$NS"
refused_unbound() { # the state first: p2pmem loaded, ivshmem unbound, no pool
	loaded && [ -z "$(pci_driver_of "$ivshmem")" ] && ! has_pool &&
		[ "$(write_errno "$NS/p2pmem" "$ivshmem")" = ENODEV ]
}
check "our device unbound (p2pmem loaded, no driver, no pool): its BDF is refused (ENODEV)" \
	refused_unbound
step "teardown" teardown

step "p2pmem loads with pool_size=0 and drives ivshmem" load pool_size=0
step "the namespace is made" mkdir -p "$NS"
refused_unpublished() { # the state first: p2pmem loaded, ivshmem ours, no pool
	loaded && ours && ! has_pool && [ "$(write_errno "$NS/p2pmem" "$ivshmem")" = ENODEV ]
}
check "our pool absent (pool_size=0; p2pmem drives ivshmem): its BDF is refused (ENODEV)" \
	refused_unpublished
check "teardown leaves no subsystem behind and p2pmem unloads" teardown
check "the CMB controller is back on nvme" cmb_restore_nvme "$cmb"
echo "1..$n"

[ "$failed" -eq 0 ]
