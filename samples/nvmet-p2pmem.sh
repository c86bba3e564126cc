#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Exports a block device through nvmet with its namespace's p2pmem set to a PCI device that
# p2pmem drives (its kernel-pool slice is published), on an nvme-loop port:
#
#   samples/nvmet-p2pmem.sh up   NQN /dev/nvme1n1 0000:05:00.0   # or "1" for any p2pmem
#   nvme connect -t loop -n NQN
#   samples/nvmet-p2pmem.sh down NQN
#
# p2pmem must be set before the namespace is enabled (afterwards: EBUSY); a BDF without
# published p2pmem (p2pmem not bound, or loaded with pool_size=0) is refused with ENODEV.
# At enable nvmet only checks that the memory can reach the block device. Per request only
# nvmet-rdma (with a PCI RDMA device) allocates from the pool; over loop (this sample) or tcp
# no I/O uses P2P memory. With "1", nvmet takes any published provider at the shortest
# distance, at random among equals: an NVMe CMB bound to the nvme driver is one too.
set -euo pipefail
cfg=/sys/kernel/config/nvmet
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
case "${1:-}" in
up)
	nqn=$2 dev=$3 p2p=$4
	sub=$cfg/subsystems/$nqn
	mkdir -p "$sub/namespaces/1" "$cfg/ports/1"
	echo 1 >"$sub/attr_allow_any_host"
	echo "$dev" >"$sub/namespaces/1/device_path"
	echo "$p2p" >"$sub/namespaces/1/p2pmem"
	echo 1 >"$sub/namespaces/1/enable"
	echo loop >"$cfg/ports/1/addr_trtype"
	ln -sf "$sub" "$cfg/ports/1/subsystems/$nqn"
	echo "exported $dev as $nqn with p2pmem=$(cat "$sub/namespaces/1/p2pmem")"
	;;
down)
	nqn=$2
	sub=$cfg/subsystems/$nqn
	nvme disconnect -n "$nqn" >/dev/null 2>&1 || true
	rm -f "$cfg/ports/1/subsystems/$nqn"
	rmdir "$cfg/ports/1" 2>/dev/null || true
	echo 0 >"$sub/namespaces/1/enable"
	rmdir "$sub/namespaces/1" "$sub"
	;;
*)
	echo "usage: $0 up NQN BLOCKDEV BDF|1 | down NQN" >&2
	exit 2
	;;
esac
