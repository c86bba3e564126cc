#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# In-kernel consumers of p2pmem's published pool, through the p2pmem_consumer test module: the
# nvmet data path with data checked, a client that cannot reach us, and revoke of a long-term
# holder on unbind (prompt, then slow: named in the log while unbind waits). TAP output.
set -u
cd "$(dirname "$0")"
. ./lib.sh
TOP=$(cd ../../../.. && pwd)
KO=${P2PMEM_KO:-$TOP/p2pmem.ko}
CONSUMER=${P2PMEM_CONSUMER_KO:-$PWD/consumer/p2pmem_consumer.ko}
DBG=/sys/kernel/debug/p2pmem_consumer

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
errno_of() { # file, value: prints the errno name of a failed write, "" on success
	local err
	err=$( { echo "$2" >"$1"; } 2>&1) && { echo ""; return; }
	case "$err" in
	*"No such device"*) echo ENODEV ;;
	*"Remote I/O error"*) echo EREMOTEIO ;;
	*) echo "$err" ;;
	esac
}

echo "TAP version 13"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
ctrl=$(nvme_ctrl_by serial p2pmem-data)
ivshmem=$(ivshmem_bdf)
if [ -z "$ctrl" ] || [ -z "$ivshmem" ] || [ ! -e "$CONSUMER" ]; then
	echo "1..0 # SKIP not the scripts/vm.sh test bed, or consumer module not built"
	exit 4
fi
data_bdf=$(basename "$(readlink -f "/sys/class/nvme/$ctrl/device")")
# A client on the root bus: its path to us goes through the host bridge.
rootdev=$(lspci -D -n -s 00:01.0 | awk '{ print $1; exit }')
echo "1..9"
rmmod p2pmem_consumer 2>/dev/null
rmmod p2pmem 2>/dev/null
insmod "$KO" && insmod "$CONSUMER" || { echo "Bail out! insmod failed"; exit 1; }

check "nvmet data path: find_many, alloc_sgl, bio write and read, data checked" \
	sh -c "echo '$data_bdf /dev/${ctrl}n1 $((96 << 20))' > $DBG/datapath && grep -q 'data ok' $DBG/result"
grep . "$DBG/result" | sed 's/^/# /'
check "a client behind the host bridge cannot reach us (EREMOTEIO)" \
	test "$(errno_of "$DBG/distance" "$ivshmem $rootdev")" = EREMOTEIO

holds_one_mib() {
	local size avail
	size=$(cat "/sys/bus/pci/devices/$ivshmem/p2pmem/size")
	echo "$ivshmem 1048576" >"$DBG/hold" || return 1
	avail=$(cat "/sys/bus/pci/devices/$ivshmem/p2pmem/available")
	[ "$(cat "$DBG/held")" = 1048576 ] && [ $((size - avail)) = 1048576 ]
}
check "a long-term holder takes 1 MiB of our pool" holds_one_mib
check "unbind revokes the holder and completes" \
	timeout 60 sh -c "echo $ivshmem > /sys/bus/pci/drivers/p2pmem/unbind"
check "the holder let go" test "$(cat "$DBG/held")" = 0
check "the log says so" sh -c "dmesg | grep -q '$ivshmem: unbind: revoked 1 in-kernel users'"
check "the holder gets ENODEV afterwards" \
	test "$(errno_of "$DBG/hold" "$ivshmem 4096")" = ENODEV

# A slow holder: named in the log while unbind waits for it, and unbind still completes.
echo "$ivshmem" >/sys/bus/pci/drivers/p2pmem/bind
echo 7000 >/sys/module/p2pmem_consumer/parameters/revoke_delay_ms
echo "$ivshmem 1048576" >"$DBG/hold"
check "a slow holder delays unbind, which still completes" \
	timeout 60 sh -c "echo $ivshmem > /sys/bus/pci/drivers/p2pmem/unbind"
check "while waiting, unbind names the slow holder" \
	sh -c "dmesg | grep -q 'p2pmem_consumer has not released its P2PDMA memory'"
echo 0 >/sys/module/p2pmem_consumer/parameters/revoke_delay_ms

rmmod p2pmem_consumer
rmmod p2pmem
[ "$failed" -eq 0 ]
