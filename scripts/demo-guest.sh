#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo, inside the test-bed guest: load p2pmem, bind ivshmem (by ID) and the
# CMB NVMe (driver_override), show what the driver found, unbind, unload.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/testing/selftests/p2pmem/lib.sh

step() { printf '\n### %s\n' "$*"; }

ivshmem=$(ivshmem_bdf)
cmb=$(nvme_bdf_by_serial p2pmem-cmb)
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
data=/dev/$(nvme_ctrl_by serial p2pmem-data)n1
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
