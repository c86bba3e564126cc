#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The admin tool (tools/p2pmem, Documentation/p2pmem-tool.rst) against the test bed, with the
# DKMS-built module when $P2PMEM_DKMS_KO names it (scripts/test.sh builds it with
# scripts/dkms.sh; its build ID is compared with the loaded module's): list, bind and unbind
# (the CMB NVMe taken from nvme and handed back; a controller whose namespace is in use refused;
# a probe that fails undone; a device without a driver; an unbind under a held mapping, which
# revokes it), and check (O_DIRECT round trips between the data NVMe and the memory of ivshmem
# and of the CMB, read and write mode, the write mode restoring what it overwrote; a block
# device without P2PDMA and one held open refused).
#
# What the tool reports is compared with what the test reads itself: sysfs, the device's
# resource file, the block device's bytes and its I/O counters (/sys/block/*/stat: what was
# read and written), the driver and driver_override of each device. The bytes checked through
# P2P memory are the tool's (its compare); that they went through P2PDMA pages is shown by the
# loop device's EREMOTEIO, and a DMA that lands elsewhere is caught (scripts/mutants.sh
# tool-dma-elsewhere).
# TAP output; every wait is bounded.
set -u
cd "$(dirname "$0")" || exit 1
. ./lib.sh
TOP=$(cd ../../../.. && pwd)
TOOL=${P2PMEM_TOOL:-$TOP/tools/p2pmem/p2pmem}
KO=${P2PMEM_DKMS_KO:-${P2PMEM_KO:-$TOP/p2pmem.ko}}
VERSION=$(sed -n 's/^PACKAGE_VERSION="\([^"]*\)"$/\1/p' "$TOP/dkms.conf")
MiB=$((1 << 20))
OFFSET=$((64 * MiB))
out=$(mktemp -d /tmp/p2pmem-tool.XXXXXX)

. ./tap.sh
# Runs the tool with --json, bounded: its document in $out/json, its messages in $out/err, its
# status in $rc. Shows both as TAP comments.
tool() {
	timeout 120 "$TOOL" --json "$@" >"$out/json" 2>"$out/err"
	rc=$?
	python3 -c 'import json, sys
def walk(p, v):
    if isinstance(v, dict):
        for k in v: walk(p + [k], v[k])
    elif isinstance(v, list):
        for i, x in enumerate(v): walk(p + [str(i)], x)
    else:
        print(".".join(p) + "=" + ("null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)))
walk([], json.load(open(sys.argv[1])))' "$out/json" >"$out/flat" 2>/dev/null || : >"$out/flat"
	echo "# p2pmem $* -> $rc: $(tr '\n' ' ' <"$out/json" | cut -c1-400)"
	[ -s "$out/err" ] && sed 's/^/#   /' "$out/err" | head -n 5
	return 0
}
# A value of the tool's last document: a Python expression over d ("d['devices'][0]['bdf']").
# The document is flattened once per run for jf; j is for what needs an expression.
j() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$out/json" "$1" \
		2>/dev/null || echo "(not in the document)"
}
# A field of the tool's last document by its dotted path ("devices.0.bdf").
jf() {
	local v
	v=$(grep -m1 "^$1=" "$out/flat") && echo "${v#*=}" || echo "(not in the document)"
}
# Whether the last run exited $1 with a document whose errno is $2 (null for success).
status_is() {
	[ "$rc" -eq "$1" ] && [ "$(jf errno)" = "$2" ]
}
# Sectors read and written by block device $1 so far (/sys/block/NAME/stat, fields 3 and 7).
io_sectors() {
	awk '{ print $3, $7 }' "/sys/block/$(basename "$1")/stat"
}
# The GNU build ID of a module file, and of the loaded p2pmem (its notes in sysfs).
build_id() {
	python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"GNU\0", 0)
while i >= 0:
    namesz, descsz, typ = (int.from_bytes(d[i - 12 + 4 * k:i - 8 + 4 * k], "little") for k in range(3))
    if namesz == 4 and typ == 3:
        print(d[i + 4:i + 4 + descsz].hex())
        break
    i = d.find(b"GNU\0", i + 1)' "$1"
}
region() { cat "/sys/bus/pci/devices/$1/p2pmem_region/$2"; }
# The size of BAR $2 of $1, from its sysfs resource file (line N+1: start end flags).
bar_bytes() {
	local start end
	read -r start end _ < <(sed -n "$(($2 + 1))p" "/sys/bus/pci/devices/$1/resource")
	echo $((end - start + 1))
}
# The first namespace of the NVMe controller with serial $1, waiting for it (bounded).
namespace_of() {
	local ctrl i
	for i in $(seq 100); do
		ctrl=$(nvme_ctrl_by serial "$1")
		if [ -n "$ctrl" ] && [ -b "/dev/${ctrl}n1" ]; then
			echo "/dev/${ctrl}n1"
			return 0
		fi
		sleep 0.3
	done
	return 1
}
range_sum() { # block device, offset, bytes: sha256 of that range, read with O_DIRECT
	dd if="$1" bs=$MiB skip=$(($2 / MiB)) count=$(($3 / MiB)) iflag=direct status=none |
		sha256sum | cut -d' ' -f1
}
# Holds block device $1 open with O_EXCL (what a mount does) until $out/release appears.
hold_exclusive() {
	rm -f "$out/held" "$out/release"
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)
open(sys.argv[2], "w").close()
for _ in range(1200):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.1)' "$1" "$out/held" "$out/release" &
	holder=$!
	for _ in $(seq 100); do
		[ -e "$out/held" ] && return 0
		sleep 0.1
	done
	return 1
}
release_exclusive() {
	touch "$out/release"
	[ -n "${holder:-}" ] && timeout 30 tail --pid="$holder" -f /dev/null
	holder=
}
loaded() { [ -d /sys/module/p2pmem ]; }
cleanup() {
	release_exclusive 2>/dev/null
	[ -n "${hold:-}" ] && exec {hold}>&-
	if [ -n "${mapper:-}" ]; then
		kill "$mapper" 2>/dev/null
		timeout 30 tail --pid="$mapper" -f /dev/null
	fi
	[ -n "${loopdev:-}" ] && losetup -d "$loopdev" 2>/dev/null
	loaded && timeout 60 rmmod p2pmem
	[ -n "${cmb:-}" ] && ! cmb_restore_nvme "$cmb" && echo "# could not give $cmb back to nvme"
	if [ -n "${data:-}" ] && [ "$(pci_driver_of "$data")" != nvme ]; then
		pci_unbind_any "$data" && timeout 60 sh -c "echo $data > /sys/bus/pci/drivers/nvme/bind"
	fi
	# bind leaves driver_override set (as it should); the next test starts from none.
	[ -n "${ivshmem:-}" ] && echo >"/sys/bus/pci/devices/$ivshmem/driver_override"
	rm -rf "$out"
}
trap cleanup EXIT

ivshmem=$(ivshmem_bdf)
cmb=$(cmb_bdf)
data=$(nvme_bdf_by_serial p2pmem-data)
step "the test bed has ivshmem, the CMB NVMe and the data NVMe" \
	test -n "$ivshmem" -a -n "$cmb" -a -n "$data"
step "the tool is built ($TOOL)" test -x "$TOOL"
step "p2pmem is not loaded" test ! -d /sys/module/p2pmem
datans=$(namespace_of p2pmem-data)
step "the data NVMe has a namespace ($datans)" test -n "$datans"

tool list
check "list without the module: status 1, ENOENT" status_is 1 ENOENT

# --- the module: the DKMS-built one when given ---------------------------------------------
if [ -n "${P2PMEM_DKMS_KO:-}" ]; then
	step "the DKMS-built module loads ($KO)" timeout 60 insmod "$KO"
	id=$(build_id "$KO")
	check "the loaded module is that file (build ID ${id:-none})" \
		test -n "$id" -a "$(build_id /sys/module/p2pmem/notes/.note.gnu.build-id)" = "$id" -a \
		"$(build_id "$TOP/p2pmem.ko")" != "$id"
else
	echo "ok $((n + 1)) # SKIP the DKMS-built module: P2PMEM_DKMS_KO is not set"
	n=$((n + 1))
	step "the module loads ($KO)" timeout 60 insmod "$KO"
fi
check "its version is dkms.conf's ($VERSION)" test "$(cat /sys/module/p2pmem/version)" = "$VERSION"
tool --version
check "the tool's version is dkms.conf's" test "$(j "d['version']")" = "$VERSION"

# --- list -----------------------------------------------------------------------------------
tool list
check "list: status 0, one device, ivshmem" \
	test "$rc" -eq 0 -a "$(j "len(d['devices'])")" = 1 -a "$(jf devices.0.bdf)" = "$ivshmem"
dev0=$(jf devices.0.device)
check "list: its /dev/p2pmemN ($dev0) is a character device" test -c "$dev0"
check "list: BAR 2, of the size the resource file gives ($(bar_bytes "$ivshmem" 2))" \
	test "$(jf devices.0.bar)" = 2 -a "$(jf devices.0.bar_bytes)" = "$(bar_bytes "$ivshmem" 2)"
counters_match() { # bdf: every counter of the document's device $1 equals sysfs
	local i a
	i=$(grep -m1 "^devices\.[0-9]*\.bdf=$1\$" "$out/flat" | cut -d. -f2)
	[ -n "$i" ] || return 1
	for a in region_bytes pages free_pages outstanding_pages handed_out_pages freed_pages \
		pool_bytes pool_free_bytes region_offset; do
		if [ "$(jf "devices.$i.$a")" != "$(region "$1" "$a")" ]; then
			echo "# $1 $a: the tool says $(jf "devices.$i.$a"), sysfs $(region "$1" "$a")"
			return 1
		fi
	done
	[ "$(jf "devices.$i.window_bytes")" = \
		$(($(region "$1" region_bytes) + $(region "$1" pool_bytes))) ]
}
check "list: every counter and the window as sysfs has them" counters_match "$ivshmem"

# --- bind -----------------------------------------------------------------------------------
# (The CMB controller has no namespace in the test bed: the data NVMe is the one in use.)
datactrl=$(nvme_ctrl_by serial p2pmem-data)
step "the data namespace is held open exclusively (as a mount holds it)" hold_exclusive "$datans"
tool bind "$data"
check "bind of a controller whose namespace is in use: status 1, EBUSY" status_is 1 EBUSY
check "... it is still on nvme, the same controller, its driver_override untouched" \
	test "$(pci_driver_of "$data")" = nvme -a "$(nvme_ctrl_by serial p2pmem-data)" = "$datactrl" \
	-a "$(cat "/sys/bus/pci/devices/$data/driver_override")" = "(null)"
release_exclusive
step "the CMB NVMe is on nvme" test "$(pci_driver_of "$cmb")" = nvme

tool bind "$cmb"
check "bind: status 0, from nvme" \
	test "$rc" -eq 0 -a "$(jf previous_driver)" = nvme
check "bind: sysfs says p2pmem drives it" test "$(pci_driver_of "$cmb")" = p2pmem
check "bind: nvme let it go (no controller with its serial)" \
	test -z "$(nvme_ctrl_by serial p2pmem-cmb)"
dev1=$(jf device)
check "bind: its /dev/p2pmemN ($dev1) is a new character device" test -c "$dev1" -a "$dev1" != "$dev0"
rdev=$(stat -c %t:%T "$dev1") handed=$(region "$cmb" handed_out_pages)
tool bind "$cmb"
check "bind again: status 0, already bound" \
	test "$rc" -eq 0 -a "$(jf already_bound)" = true
check "... and not bound anew (the same device node, the same counters)" \
	test "$(stat -c %t:%T "$dev1")" = "$rdev" -a "$(region "$cmb" handed_out_pages)" = "$handed"
tool list
check "list: two devices, ivshmem and the CMB" \
	test "$(j "sorted(x['bdf'] for x in d['devices'])")" = "$(j "sorted(['$ivshmem', '$cmb'])")" \
	-a "$(j "len(d['devices'])")" = 2
check "list: the CMB's counters as sysfs has them" counters_match "$cmb"

tool bind "$data"
check "bind of a controller p2pmem refuses (no CMB): status 1" test "$rc" -eq 1
check "... it is back on nvme, its driver_override cleared" \
	test "$(pci_driver_of "$data")" = nvme -a \
	"$(cat "/sys/bus/pci/devices/$data/driver_override")" = "(null)"
datans=$(namespace_of p2pmem-data)
step "the data namespace is back ($datans)" test -n "$datans"

# --- check ----------------------------------------------------------------------------------
# Data the reads must bring: random bytes at OFFSET, written and summed by the test itself.
head -c $((4 * MiB)) /dev/urandom >"$out/pattern"
step "random data written to $datans at $OFFSET" \
	dd if="$out/pattern" of="$datans" bs=$MiB seek=$((OFFSET / MiB)) oflag=direct conv=fsync \
	status=none
before=$(range_sum "$datans" "$OFFSET" $((4 * MiB)))
step "it reads back" test "$before" = "$(sha256sum <"$out/pattern" | cut -d' ' -f1)"

# check with 1 MiB at OFFSET: the pages it took from the region (handed, freed: sysfs) and the
# sectors the data namespace read and wrote meanwhile (rd, wr: its stat).
round_trip() { # bdf, extra options
	local h0 f0 r0 w0 r1 w1
	h0=$(region "$1" handed_out_pages) f0=$(region "$1" freed_pages)
	read -r r0 w0 < <(io_sectors "$datans")
	tool check "$1" "$datans" --offset "$OFFSET" --size 1M "${@:2}"
	handed=$(($(region "$1" handed_out_pages) - h0)) freed=$(($(region "$1" freed_pages) - f0))
	read -r r1 w1 < <(io_sectors "$datans")
	rd=$((r1 - r0)) wr=$((w1 - w0))
}
round_trip "$ivshmem"
check "check, ivshmem's memory: status 0, no mismatch" \
	test "$rc" -eq 0 -a "$(jf ok)" = true -a "$(jf mismatch)" = null
check "... through 256 pages of ivshmem's region, all back (sysfs: $handed out, $freed back)" \
	test "$handed" -eq 256 -a "$freed" -eq 256 -a "$(jf p2p_pages)" = 256
check "... 3 MiB read from the disk (into host memory, twice into P2P memory), nothing written" \
	test "$rd" -ge 6144 -a "$wr" -eq 0
round_trip "$cmb"
check "check, the CMB's memory: status 0, no mismatch" \
	test "$rc" -eq 0 -a "$(jf mismatch)" = null
check "... through 256 pages of the CMB's region (sysfs: $handed out, $freed back), 3 MiB read" \
	test "$handed" -eq 256 -a "$freed" -eq 256 -a "$(jf p2p_pages)" = 256 -a "$rd" -ge 6144
round_trip "$ivshmem" --write
check "check --write: status 0, no mismatch, restored" \
	test "$rc" -eq 0 -a "$(jf mismatch)" = null -a "$(jf restored)" = true
check "... 2 MiB written (the pattern, then the saved range), 4 MiB read back ($wr, $rd sectors)" \
	test "$wr" -eq 4096 -a "$rd" -ge 8192
check "... the range holds what it held before" \
	test "$(range_sum "$datans" "$OFFSET" $((4 * MiB)))" = "$before"

step "the data namespace is held open exclusively" hold_exclusive "$datans"
round_trip "$ivshmem" --write
check "check --write on a block device in use: status 1, EBUSY" status_is 1 EBUSY
release_exclusive
check "... nothing was written ($wr sectors)" test "$wr" -eq 0

truncate -s 16M "$out/loop.img"
loopdev=$(losetup -f --show "$out/loop.img")
step "a loop device ($loopdev)" test -b "$loopdev"
tool check "$ivshmem" "$loopdev" --size 1M
check "check with a block device without P2PDMA: status 1, EREMOTEIO" status_is 1 EREMOTEIO
tool check "$ivshmem" "$loopdev" --size 1M --write
check "check --write with it: status 1, EREMOTEIO (the write's source is P2P memory)" \
	status_is 1 EREMOTEIO
check "... and restored: the loop device's bytes are still zero" \
	cmp -s -n $MiB "$loopdev" /dev/zero
losetup -d "$loopdev" && loopdev=
tool check "$ivshmem" "$datans" --size 1000
check "check with a size not a multiple of 4096: status 2" test "$rc" -eq 2
tool check "$ivshmem" "$datans" --offset "$(blockdev --getsize64 "$datans")" --size 1M
check "check past the end of the block device: status 1, EINVAL" status_is 1 EINVAL

# --- unbind ---------------------------------------------------------------------------------
# Unbind does not wait for a process that keeps a mapping: it revokes the mapping (zaps it), the
# pages come back, and it returns while the process still holds the (now empty) mapping.
# hold_mapping keeps its mapping until its standard input ends: a FIFO this shell holds open.
mkfifo "$out/hold"
./hold_mapping "$ivshmem" $MiB <"$out/hold" >"$out/mapper.out" 2>&1 &
mapper=$!
exec {hold}>"$out/hold"
for _ in $(seq 600); do
	grep -q '^ready' "$out/mapper.out" 2>/dev/null && break
	kill -0 "$mapper" 2>/dev/null || break
	sleep 0.1
done
step "a process holds 256 pages of ivshmem's region mapped" grep -q '^ready' "$out/mapper.out"
outstanding=$(region "$ivshmem" outstanding_pages)
tool unbind "$ivshmem" --no-reprobe
check "unbind under the mapping: status 0, the $outstanding pages out reported" \
	test "$rc" -eq 0 -a "$(jf outstanding_pages_before)" = "$outstanding" -a "$outstanding" -eq 256
check "... the device is left without a driver, its driver_override cleared" \
	test -z "$(pci_driver_of "$ivshmem")" -a \
	"$(cat "/sys/bus/pci/devices/$ivshmem/driver_override")" = "(null)"
check "... and the holder was not waited for (it still runs)" kill -0 "$mapper"
exec {hold}>&-
hold=
timeout 30 tail --pid="$mapper" -f /dev/null
wait "$mapper"
check "the holder then exits cleanly" test $? -eq 0
mapper=

tool unbind "$cmb" --no-reprobe
check "unbind --no-reprobe of the CMB: status 0, no driver" \
	test "$rc" -eq 0 -a "$(jf driver)" = null -a -z "$(pci_driver_of "$cmb")"
tool bind "$cmb"
check "bind of a device without a driver: status 0, bound" \
	test "$rc" -eq 0 -a "$(jf previous_driver)" = null -a "$(pci_driver_of "$cmb")" = p2pmem

tool unbind "$cmb"
check "unbind of the CMB: status 0, handed back to nvme" \
	test "$rc" -eq 0 -a "$(jf driver)" = nvme -a "$(pci_driver_of "$cmb")" = nvme
ctrl_back() { # the nvme controller with serial $1 is back (bounded wait)
	local i
	for i in $(seq 100); do
		[ -n "$(nvme_ctrl_by serial "$1")" ] && return 0
		sleep 0.3
	done
	return 1
}
check "... nvme serves it again (a controller with its serial)" ctrl_back p2pmem-cmb
tool unbind "$data"
check "unbind of a device p2pmem does not drive: status 1, and it stays on nvme" \
	test "$rc" -eq 1 -a "$(pci_driver_of "$data")" = nvme

check "p2pmem unloads" timeout 60 rmmod p2pmem
echo "1..$n"
[ "$failed" -eq 0 ]
