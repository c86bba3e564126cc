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

# The driver bound to PCI device $1, "" when none.
pci_driver_of() {
	local link=/sys/bus/pci/devices/$1/driver
	if [ -e "$link" ]; then
		basename "$(readlink -f "$link")"
	fi
	return 0
}

# The CMB NVMe controller (serial p2pmem-cmb), found also when it is bound to another driver
# or to none: the QEMU NVMe (1b36:0010) that is not the data controller.
cmb_bdf() {
	local bdf data
	bdf=$(nvme_bdf_by_serial p2pmem-cmb)
	if [ -z "$bdf" ]; then
		data=$(nvme_bdf_by_serial p2pmem-data)
		bdf=$(lspci -D -n -d 1b36:0010 | awk -v data="$data" '$1 != data { print $1; exit }')
	fi
	echo "$bdf"
}

# Unbinds PCI device $1 from whatever driver it has and clears its driver_override, so that
# nothing binds it again (p2pmem's ID table does not name NVMe). Bounded; 0 when unbound.
pci_unbind_any() {
	local drv
	drv=$(pci_driver_of "$1")
	echo >"/sys/bus/pci/devices/$1/driver_override" 2>/dev/null
	[ -z "$drv" ] || timeout 60 sh -c "echo $1 > /sys/bus/pci/drivers/$drv/unbind" || return 1
	[ -z "$(pci_driver_of "$1")" ]
}

# Gives the CMB controller $1 back to the kernel's nvme driver; waits (bounded) until the
# controller is up again. 0 when it is.
cmb_restore_nvme() {
	local i
	[ "$(pci_driver_of "$1")" = nvme ] && return 0
	pci_unbind_any "$1" || return 1
	timeout 60 sh -c "echo $1 > /sys/bus/pci/drivers/nvme/bind" || return 1
	for i in $(seq 100); do
		[ -n "$(nvme_ctrl_by serial p2pmem-cmb)" ] && return 0
		sleep 0.1
	done
	return 1
}

# The realtime clock in nanoseconds, the clock of ktime_get_real_ns().
now_ns() {
	date +%s%N
}
