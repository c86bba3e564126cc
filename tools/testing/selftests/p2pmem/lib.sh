# SPDX-License-Identifier: GPL-2.0
# Shell helpers of the p2pmem selftests, demo and benchmarks (sourced, never run).

# The NVMe controller (e.g. nvme1) whose sysfs attribute $1 is $2 (serial, subsysnqn, ...).
nvme_ctrl_by() {
	local c
	for c in /sys/class/nvme/nvme*; do
		if [ "$(tr -d ' ' <"$c/$1" 2>/dev/null)" = "$2" ]; then
			basename "$c"
		fi
	done
	return 0
}

# The PCI device of the NVMe controller with serial $1.
nvme_bdf_by_serial() {
	local ctrl
	ctrl=$(nvme_ctrl_by serial "$1")
	[ -n "$ctrl" ] && basename "$(readlink -f "/sys/class/nvme/$ctrl/device")"
	return 0
}

# The ivshmem device of the test bed.
ivshmem_bdf() {
	lspci -D -n -d 1af4:1110 | awk '{ print $1; exit }'
}
