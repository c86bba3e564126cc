#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmarks, inside the test-bed guest (scripts/bench.sh boots it). Prints tables:
#  1. fio O_DIRECT bandwidth between the data NVMe and buffers in host memory, in the kernel's
#     own C provider (the nvme driver's CMB, p2pmem/allocate), in p2pmem's kernel-pool slice
#     (p2pmem/allocate again) and in p2pmem's Rust region (/dev/p2pmemN), on both devices;
#  2. mmap setup rate (map + touch + unmap of 1 MiB) for the same providers;
#  3. unbind latency with N pages mapped.
# Numbers under TCG compare providers with each other, not with hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/testing/selftests/p2pmem/lib.sh
SIZE=${BENCH_SIZE:-32M}

data_ctrl=$(nvme_ctrl_by serial p2pmem-data)
cmb_ctrl=$(nvme_ctrl_by serial p2pmem-cmb)
data_dev=/dev/${data_ctrl}n1
cmb=$(basename "$(readlink -f "/sys/class/nvme/$cmb_ctrl/device")")
ivshmem=$(ivshmem_bdf)

# fio bandwidth in MB/s: rw, iomem option.
fio_bw() {
	fio --name=bench --filename="$data_dev" --direct=1 --ioengine=psync --bs=128k \
		--size="$SIZE" --rw="$1" ${2:+--iomem=$2} --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.1f" % ((j["read"]["bw"]+j["write"]["bw"])/1024))'
}

# mmap setups per second of 1 MiB, touching every page.
mmap_rate() {
	python3 - "$1" <<'PY'
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < 2.0:
    m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for off in range(0, 1 << 20, 4096):
        m[off] = 1
    m.close()
    n += 1
print("%.1f" % (n / (time.monotonic() - t0)))
PY
}

node_of() { # bdf -> /dev/p2pmemN (the N-th bound device in probe order is not assumed)
	local n
	for n in /sys/class/misc/p2pmem*; do
		[ -e "$n" ] || continue
		python3 - "/dev/$(basename "$n")" "$1" <<'PY' && { echo "/dev/$(basename "$n")"; return; }
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
buf = bytearray(104)  # sizeof(struct p2pmem_info)
fcntl.ioctl(fd, (2 << 30) | (len(buf) << 16) | (0xB9 << 8) | 0, buf)
sys.exit(0 if buf[-16:].split(b"\0")[0].decode() == sys.argv[2] else 1)
PY
	done
}

rows=()
row() { rows+=("$(printf '| %-46s | %10s | %10s | %10s |' "$@")"); }

row "host memory (malloc)" "$(fio_bw read)" "$(fio_bw write)" "-"

# The kernel's own provider: the nvme driver published the CMB.
alloc=/sys/bus/pci/devices/$cmb/p2pmem/allocate
if [ -e "$alloc" ]; then
	row "kernel C provider: nvme CMB, p2pmem/allocate" \
		"$(fio_bw read "mmapshared:$alloc")" "$(fio_bw write "mmapshared:$alloc")" "$(mmap_rate "$alloc")"
fi

insmod ./p2pmem.ko
echo "$cmb" >"/sys/bus/pci/devices/$cmb/driver/unbind"
echo p2pmem >"/sys/bus/pci/devices/$cmb/driver_override"
echo "$cmb" >/sys/bus/pci/drivers_probe
for dev in "$ivshmem" "$cmb"; do
	what=ivshmem
	[ "$dev" = "$cmb" ] && what="NVMe CMB"
	alloc=/sys/bus/pci/devices/$dev/p2pmem/allocate
	row "p2pmem kernel-pool slice, $what (allocate)" \
		"$(fio_bw read "mmapshared:$alloc")" "$(fio_bw write "mmapshared:$alloc")" "$(mmap_rate "$alloc")"
	node=$(node_of "$dev")
	row "p2pmem Rust region, $what ($node)" \
		"$(fio_bw read "mmapshared:$node")" "$(fio_bw write "mmapshared:$node")" "$(mmap_rate "$node")"
done

echo
echo "fio --direct=1 --bs=128k --size=$SIZE psync against $data_dev; mmap: 1 MiB map+touch+unmap"
printf '| %-46s | %10s | %10s | %10s |\n' "buffer" "read MB/s" "write MB/s" "mmap/s"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..48})" "------------" "------------" "------------"
printf '%s\n' "${rows[@]}"

# Unbind latency with N pages mapped by a process that holds them.
echo
printf '| %-12s | %-10s | %16s |\n' "device" "pages out" "unbind (ms)"
printf '|%s|%s|%s|\n' "--------------" "------------" "------------------"
for pages in 0 256 4096 12288; do
	node=$(node_of "$ivshmem")
	python3 - "$node" "$pages" <<'PY' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
n = int(sys.argv[2])
if n:
    m = mmap.mmap(fd, n * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
open("/tmp/bench-mapped", "w").close()
time.sleep(30)
PY
	holder=$!
	while [ ! -e /tmp/bench-mapped ]; do sleep 0.1; done
	rm -f /tmp/bench-mapped
	t0=$(date +%s%N)
	echo "$ivshmem" >/sys/bus/pci/drivers/p2pmem/unbind
	t1=$(date +%s%N)
	printf '| %-12s | %-10s | %16s |\n' ivshmem "$pages" "$(((t1 - t0) / 1000000))"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	echo "$ivshmem" >/sys/bus/pci/drivers/p2pmem/bind
done

echo "$cmb" >/sys/bus/pci/drivers/p2pmem/unbind
rmmod p2pmem
echo >"/sys/bus/pci/devices/$cmb/driver_override"
echo "$cmb" >/sys/bus/pci/drivers_probe
