#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (README): installs what is missing, builds the kernel (cached), the module
# and the selftests, runs the host tests and lints, boots the test bed once to run the
# selftests, and ends with "N passed, N failed". Exits non-zero on any failure or skip.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$P2PMEM_ROOT"

pass=0 fail=0 skip=0
# Adds the "ok - ..." / "not ok - ..." lines of a checker's output (file $1) to the counts.
count_results() {
	local p f
	p=$(grep -c '^ok - ' "$1") f=$(grep -c '^not ok - ' "$1")
	pass=$((pass + p)) fail=$((fail + f))
}
result() { # name, status
	if [ "$2" -eq 0 ]; then
		echo "ok - $1"; pass=$((pass + 1))
	else
		echo "not ok - $1"; fail=$((fail + 1))
	fi
}
finish() {
	echo "$pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ] && [ "$skip" -eq 0 ]
	exit
}

start=$(date +%s)
scripts/setup.sh || { result setup 1; finish; }
kdir=$(scripts/build-kernel.sh | tail -n 1) || { result "kernel build" 1; finish; }
log "kernel ready after $(($(date +%s) - start)) s"

# The module, built with clippy as the Rust compiler driver: any warning is a failure.
make -s clean >/dev/null 2>&1
make KDIR="$kdir" CLIPPY=1 modules >/tmp/p2pmem-build.log 2>&1
rc=$?
cat /tmp/p2pmem-build.log
result "module builds (make KDIR=..., CLIPPY=1)" $rc
[ $rc -eq 0 ] || finish
! grep -qE '(^|: )(warning|error)(\[|:)' /tmp/p2pmem-build.log
result "module build has no compiler or clippy warning" $?
/usr/bin/rustfmt --check --edition 2021 src/*.rs
result "rustfmt --check src/" $?
# The shim holds the one file_operations written at run time (a copy of the miscdevice's with
# get_unmapped_area added, src/shim.c): checked without CONST_STRUCT, and only that file.
"$kdir/scripts/checkpatch.pl" --no-tree --quiet --strict \
	-f include/*.h include/uapi/linux/*.h tools/testing/selftests/p2pmem/*.[ch] \
	tools/testing/selftests/p2pmem/consumer/p2pmem_consumer.c tools/p2pmem/p2pmem.c &&
	"$kdir/scripts/checkpatch.pl" --no-tree --quiet --strict --ignore CONST_STRUCT -f src/shim.c
result "checkpatch.pl on the C" $?
# Every struct, member and ioctl of the headers others build against is documented.
"$kdir/scripts/kernel-doc" -none -Wall -Werror include/uapi/linux/p2pmem.h \
	include/p2pmem_revoke.h include/p2pmem_test_uapi.h
result "kernel-doc -Wall on the uAPI and the exported API headers" $?
# The sysfs ABI: each attribute the module creates has its entry, in the kernel's format.
abi_check() {
	local attrs params out missing="" a
	attrs=$(sed -nE 's/.*__ATTR\(([a-z_]+), 0444.*/\1/p' src/shim.c)
	for a in $attrs; do
		grep -qE "^What:[[:space:]]+/sys/bus/pci/devices/<bdf>/p2pmem_region/$a\$" \
			Documentation/ABI/testing/sysfs-bus-pci-devices-p2pmem_region || missing+=" $a"
	done
	out=$(python3 "$kdir/tools/docs/get_abi.py" -D Documentation/ABI validate 2>&1)
	# The module parameters that are in sysfs (a C module_param with a non-zero mode: the Rust
	# ones have none in 7.3).
	params=$(sed -nE 's/^module_param[a-z_]*\(([a-z_]+),.*, 0*[1-7][0-7]*\);$/\1/p' src/shim.c)
	for a in $params; do
		grep -qE "^What:[[:space:]]+/sys/module/p2pmem/parameters/$a\$" \
			Documentation/ABI/testing/sysfs-module-p2pmem || missing+=" parameters/$a"
	done
	[ -z "$missing" ] || echo "no Documentation/ABI entry for:$missing"
	[ -z "$out" ] || echo "$out"
	[ -n "$attrs" ] && [ -n "$params" ] && [ -z "$missing" ] && [ -z "$out" ]
}
abi_check
result "Documentation/ABI has every sysfs attribute and parameter, and get_abi.py validates it" $?

# The admin tool: built with -Werror, and its host tests (a fake sysfs tree, no device).
make -s tool >/tmp/p2pmem-tool.log 2>&1
rc=$?
cat /tmp/p2pmem-tool.log
result "admin tool builds (make tool)" $rc
tools/p2pmem/host_test.sh >/tmp/p2pmem-tool-host.log 2>&1
rc=$?
cat /tmp/p2pmem-tool-host.log
count_results /tmp/p2pmem-tool-host.log
grep -q '^ok - ' /tmp/p2pmem-tool-host.log && [ $rc -eq 0 ]
result "admin tool host tests ran and passed" $?

# DKMS: the Debian package built, its source built by dkms against the test kernel (the guest
# loads that module in tool_test.sh), a kernel without Rust refused. Private DKMS trees only.
# (In the repository, ignored by git: the guest does not see files under /var/cache.)
dkms_out=$P2PMEM_ROOT/.dkms
scripts/dkms.sh "$kdir" "$dkms_out" >/tmp/p2pmem-dkms.log 2>&1
rc=$?
cat /tmp/p2pmem-dkms.log
count_results /tmp/p2pmem-dkms.log
grep -q '^ok - ' /tmp/p2pmem-dkms.log && [ $rc -eq 0 ]
result "dkms.sh ran and passed" $?
if [ $rc -eq 0 ]; then
	export P2PMEM_DKMS_KO=$dkms_out/p2pmem-dkms.ko
fi

# The selftests' Makefile (the kernel's lib.mk) builds the programs and the test consumer
# module, which links against p2pmem.ko's Module.symvers.
make -s -C tools/testing/selftests/p2pmem KDIR="$kdir" LLVM="$LLVM_SUFFIX" \
	P2PMEM_SYMVERS="$P2PMEM_ROOT/Module.symvers" >/tmp/p2pmem-selftests.log 2>&1
rc=$?
cat /tmp/p2pmem-selftests.log
result "selftests and the test consumer module build" $rc
[ $rc -eq 0 ] || finish

# Host tests of the kernel-independent logic.
(cd tools/testing/host && /usr/bin/cargo test --quiet 2>&1) | tee /tmp/p2pmem-cargo.log
result "cargo test (host)" $?
# Every host test counts; an ignored one is a skip.
while read -r p f i; do
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + i))
done < <(sed -nE 's/^test result: .*\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' \
	/tmp/p2pmem-cargo.log)

# The build-time check of the private P2PDMA layouts refuses every change to them.
tools/testing/host/check_p2pdma_layout_test.sh "$kdir"
result "check-p2pdma-layout.sh refuses changed layouts (host)" $?

# One boot runs every selftest. The guest's limit: what run_tests.sh may take at most (the sum
# of its programs' timeouts and its own checks) plus booting and shutting down.
vm_timeout=${P2PMEM_VM_TIMEOUT:-$(($(tools/testing/selftests/p2pmem/run_tests.sh --budget) + 240))}
# A boot whose kernel tainted itself before any test ran (run_tests.sh's status 3; see there),
# or that died without a word, cannot test: boot again, at most twice, and say so.
summary_re=$'^selftests: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped\r?$'
console_log=${P2PMEM_CONSOLE_LOG:-${P2PMEM_VM_DIR:-$P2PMEM_CACHE/vm}/console.log}
for try in 1 2 3; do
	boot=$(date +%s)
	scripts/vm.sh --timeout "$vm_timeout" -- tools/testing/selftests/p2pmem/run_tests.sh |
		tee /tmp/p2pmem-vm.log
	vm_rc=${PIPESTATUS[0]}
	log "guest run took $(($(date +%s) - boot)) s of $vm_timeout s (status $vm_rc)"
	# When virtme's init found no virtio-serial ports at boot (a slow guest), it ran us on the
	# console ("console fallback", run_tests.sh says so): our output is in the console log only.
	if ! grep -qE "$summary_re" /tmp/p2pmem-vm.log &&
		grep -qE "$summary_re" "$console_log" 2>/dev/null; then
		log "boot $try: the runner's output is on the guest's console only; from there:"
		tr -d '\r' <"$console_log" | grep -vE '^\[ *[0-9]+\.[0-9]+\] ' | tee /tmp/p2pmem-vm.log
	fi
	if [ "$vm_rc" -eq 3 ] && grep -q '^selftests: not run: the kernel was tainted at boot' \
		/tmp/p2pmem-vm.log; then
		log "boot $try: the kernel was tainted at boot, before any test; booting again"
	elif [ "$vm_rc" -eq 255 ] && ! grep -qE '^(not )?ok ' /tmp/p2pmem-vm.log; then
		# No status and not one line of the runner: the guest died before or while it
		# started (seen under TCG). A wedge that ate the output fails again, so is not hidden.
		log "boot $try: the guest reported nothing and no status; booting again"
	else
		break
	fi
done
# The counts come from run_tests.sh's summary, its last line. The status must agree with it: a
# clean summary with a non-zero status means the guest did not end well after it (no status
# came back, 255, e.g. a panic or a forced reset; or the host timeout, 124). run_tests.sh
# reports the status itself before it resets a wedged guest.
summary=$(tr -d '\r' </tmp/p2pmem-vm.log | grep -E "$summary_re" | tail -n 1)
if [ -z "$summary" ]; then
	result "the guest booted and reported (status $vm_rc)" 1
else
	read -r p f s < <(echo "$summary" |
		sed -E 's/^selftests: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	[ "$f" -gt 0 ] || [ "$vm_rc" -eq 0 ] ||
		result "the guest ended with status 0 after a clean summary (status $vm_rc)" 1
fi
log "total $(($(date +%s) - start)) s"
finish
