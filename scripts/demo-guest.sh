#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo, inside the test-bed guest: load p2pmem, bind ivshmem (by ID) and the
# CMB NVMe (driver_override), show what the driver found, unbind, unload.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n### %s\n' "$*"; }
nvme_by_serial() {
	local c
	for c in /sys/class/nvme/nvme*; do
		if [ "$(tr -d ' ' <"$c/serial")" = "$1" ]; then
			basename "$(readlink -f "$c/device")"
		fi
	done
}

ivshmem=$(lspci -D -n -d 1af4:1110 | awk '{ print $1; exit }')
cmb=$(nvme_by_serial p2pmem-cmb)
[ -n "$ivshmem" ] && [ -n "$cmb" ] || { echo "test-bed devices not found" >&2; exit 1; }

step "PCI topology: a PCIe switch with two NVMe controllers and ivshmem"
lspci -tv
echo "ivshmem: $ivshmem   NVMe with CMB (serial p2pmem-cmb): $cmb"

dmesg -C
step "insmod p2pmem.ko (binds ivshmem by ID)"
insmod ./p2pmem.ko

step "bind the CMB NVMe through driver_override"
echo "$cmb" >"/sys/bus/pci/devices/$cmb/driver/unbind"
echo p2pmem >"/sys/bus/pci/devices/$cmb/driver_override"
echo "$cmb" >/sys/bus/pci/drivers_probe

step "what p2pmem found"
for d in "$ivshmem" "$cmb"; do
	echo "$d: driver $(basename "$(readlink "/sys/bus/pci/devices/$d/driver")")"
done
dmesg | grep p2pmem
ls -l /dev/p2pmem*
echo "CMB region counters:"
grep . "/sys/bus/pci/devices/$cmb/p2pmem_region/"* | sed "s|.*/||; s|^|  |"

step "fio: O_DIRECT from the data NVMe into P2P pages of the CMB, verified"
data=""
for c in /sys/class/nvme/nvme*; do
	if [ "$(tr -d ' ' <"$c/serial")" = p2pmem-data ]; then
		data=/dev/$(basename "$c")n1
	fi
done
node=/dev/$(dmesg | sed -n "s/.*$cmb: \(p2pmem[0-9]*\): .*/\1/p" | tail -n 1)
fio --name=demo --filename="$data" --direct=1 --ioengine=psync --rw=write --bs=128k \
	--size=8M --iomem="mmapshared:$node" --verify=crc32c --do_verify=1 --verify_state_save=0 | grep -E "WRITE:|READ:|err="

step "unbind the CMB NVMe, unload p2pmem"
echo "$cmb" >/sys/bus/pci/drivers/p2pmem/unbind
rmmod p2pmem
dmesg | grep 'p2pmem.*released'

step "give the CMB NVMe back to nvme"
echo >"/sys/bus/pci/devices/$cmb/driver_override"
echo "$cmb" >/sys/bus/pci/drivers_probe
echo "$cmb: driver $(basename "$(readlink "/sys/bus/pci/devices/$cmb/driver")")"
