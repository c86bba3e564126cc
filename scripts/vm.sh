#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the cached test-bed kernel under QEMU (TCG) with virtme-ng and runs one command in the
# guest, in the repository directory, with the caller's P2PMEM_* variables; exits with the
# command's status.
#
#   scripts/vm.sh [--timeout SECONDS] [--verbose] -- COMMAND [ARGS...]
#
# The guest sees the host's root filesystem (read-only but for /tmp) and this PCI topology:
#
#   pcie.0 - pcie-root-port - x3130-upstream (a PCIe switch)
#              +- xio3130-downstream - nvme serial=p2pmem-cmb   (64 MiB CMB, no namespace)
#              +- xio3130-downstream - nvme serial=p2pmem-data  (data image, the DMA initiator)
#              +- xio3130-downstream - ivshmem-plain            (64 MiB RAM backend;
#                                                                 P2PMEM_IVSHMEM_MB sets it)
#              +- xio3130-downstream - nvme serial=p2pmem-slow  (64 MiB image throttled to
#                                                                 1 MiB/s: I/O stays in flight)
#
# No vIOMMU, so peers under the switch reach each other's BARs with bus addresses. The
# guest finds devices by serial and vendor:device, never by bus address.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

timeout_s=1800
verbose=()
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout_s=$2; shift 2 ;;
	--verbose) verbose=(-v); shift ;;
	--) shift; break ;;
	*) die "usage: $0 [--timeout SECONDS] [--verbose] -- COMMAND [ARGS...]" ;;
	esac
done
[ $# -gt 0 ] || die "usage: $0 [--timeout SECONDS] [--verbose] -- COMMAND [ARGS...]"

kdir=$("$P2PMEM_ROOT/scripts/build-kernel.sh" --path)
# The data images and the guest lock; P2PMEM_VM_DIR gives a second test bed of its own.
# P2PMEM_VNG_ARGS adds virtme-ng options (e.g. --rwdir=DIR to watch a run from the host).
vmdir=${P2PMEM_VM_DIR:-$P2PMEM_CACHE/vm}
mkdir -p "$vmdir"
data_img=$vmdir/nvme-data.img
# The data namespace: 256 MiB, contents owned by the tests.
[ -f "$data_img" ] || truncate -s 256M "$data_img"
slow_img=$vmdir/nvme-slow.img
# The slow namespace: 64 MiB, read and written at 1 MiB/s (QEMU block throttling), so that a
# test can unbind while its O_DIRECT read is in flight. Contents owned by the tests.
[ -f "$slow_img" ] || truncate -s 64M "$slow_img"

qemu_opts=(
	-M q35
	-device pcie-root-port,id=p2p_rp,bus=pcie.0,chassis=10,slot=1
	-device x3130-upstream,id=p2p_up,bus=p2p_rp
	-device xio3130-downstream,id=p2p_dn0,bus=p2p_up,chassis=11,slot=0
	-device xio3130-downstream,id=p2p_dn1,bus=p2p_up,chassis=12,slot=0
	-device xio3130-downstream,id=p2p_dn2,bus=p2p_up,chassis=13,slot=0
	-device nvme,serial=p2pmem-cmb,cmb_size_mb=64,bus=p2p_dn0
	-drive if=none,id=p2p_data,file=$data_img,format=raw,cache=none
	-device nvme,serial=p2pmem-data,drive=p2p_data,bus=p2p_dn1
	-object memory-backend-ram,id=p2p_ivmem,size=${P2PMEM_IVSHMEM_MB:-64}M,share=on
	-device ivshmem-plain,memdev=p2p_ivmem,bus=p2p_dn2
	-device xio3130-downstream,id=p2p_dn3,bus=p2p_up,chassis=14,slot=0
	-drive if=none,id=p2p_slow,file=$slow_img,format=raw,cache=none,throttling.bps-total=1048576
	-device nvme,serial=p2pmem-slow,drive=p2p_slow,bus=p2p_dn3
)

# One guest at a time: guests share the data image, and two TCG guests on two cores only
# slow each other down. The wait for the lock is not part of the timeout.
exec 8>"$vmdir/.lock"
flock 8

# The guest does not inherit our environment: hand it the P2PMEM_* variables (P2PMEM_TESTS,
# P2PMEM_PROGRAM_TIMEOUT, ...) through env(1).
guest_env=()
while read -r var; do
	guest_env+=("$var=${!var}")
done < <(compgen -e | grep '^P2PMEM_')
[ ${#guest_env[@]} -eq 0 ] || set -- env "${guest_env[@]}" "$@"

# The guest's console (the kernel's warnings and errors, virtme's init, QEMU's own messages)
# goes to virtme's stderr (vng's --verbose); the command's stderr is folded into its stdout,
# so that the console log holds the console alone. The log is kept outside the repository, one
# per boot; when the guest dies without a status, its tail is the only account of why, so it
# is printed. loglevel=5 keeps KERN_WARNING and worse (KASAN, WARN, oops, panic): a quieter
# console keeps TCG guests fast. --verbose shows the whole console on the terminal as well.
console_log=${P2PMEM_CONSOLE_LOG:-$vmdir/console.log}
console_level=(--append "loglevel=5")
show_console() { cat >"$console_log"; }
if [ ${#verbose[@]} -gt 0 ]; then
	console_level=()
	show_console() { tee "$console_log" >&2; }
fi

# Two kernel parameters keep TCG guests alive and untainted (both diagnosed with QEMU's gdb stub
# on a guest paused at its reset; Documentation/p2pmem.rst, "Testing"):
# - tsc=unstable: under TCG the clocksource watchdog marks the TSC unstable about a minute into
#   the boot, and the static-key flip of sched_clock_stable that follows patches live kernel
#   text with int3; now and then the other vCPU takes that int3 as a real one (die() -> int3 in
#   local_clock() inside printk -> panic -> reboot, with nothing printed), and the guest is
#   gone during udev coldplug (virtme: status 255, no output). With tsc=unstable the key is
#   never turned on, so it is never patched; the guest runs on the HPET, as it did anyway.
# - no5lvl: with TCG's 5-level paging, about every other boot reports a KASAN
#   wild-memory-access in handle_edge_irq() during identify_cpu() at 0.003 s (a tainted boot,
#   which cannot test); with 4-level paging none did.
tcg_workarounds="tsc=unstable no5lvl"

# Guests hang rather than fail when something is wrong at boot: bound everything.
# QEMU opens /proc/self/fd/1 and /proc/self/fd/2 with O_TRUNC for the guest's output, once per
# stream: behind pipes, so that neither a file the caller redirects into is truncated nor the
# streams overwrite each other in the console log.
set +e
timeout --kill-after=30 "$timeout_s" "$P2PMEM_VENV/bin/vng" --verbose \
	--run "$kdir" --disable-kvm --disable-microvm --force-9p \
	--cpus 2 --memory 3G --cwd "$P2PMEM_ROOT" \
	--append "nvme.use_cmb_sqes=0 $tcg_workarounds" "${console_level[@]}" \
	${P2PMEM_VNG_ARGS:-} \
	--qemu-opts "${qemu_opts[*]}" \
	--exec "exec 2>&1; $(printf '%q ' "$@")" </dev/null 2> >(show_console) | cat
rc=${PIPESTATUS[0]}
set -e
[ $rc -eq 124 ] && log "the guest did not finish within ${timeout_s} s"
# virtme returns 255 when the guest wrote no status: a panic, or a reset before the command's
# end reached virtme's init (run_tests.sh reports its status itself before it resets a guest).
[ $rc -eq 255 ] && log "the guest reported no exit status (panic or forced reset?)"
if [ $rc -eq 255 ] || [ $rc -eq 124 ]; then
	# Let the console's writer drain before reading it.
	sleep 1
	log "the last lines of the guest's console ($console_log):"
	tail -n 80 "$console_log" | sed 's/^/[console] /'
fi
exit $rc
