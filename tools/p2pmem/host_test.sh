#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of the p2pmem tool: no module, no device, no root. Builds the tool, then runs it
# against a fake sysfs tree in a mktemp directory (P2PMEM_SYSFS, P2PMEM_DEV) and checks its
# exit status and its --json document (valid JSON per python3 -m json.tool, and the fields):
#
#   list with p2pmem not loaded, with an empty driver directory; usage errors; malformed
#   BDFs; bind and unbind of a device that does not exist; bind of an nvme device that the
#   probe does not bind to p2pmem (the restore, the order of the writes), of one whose
#   namespace is held (EBUSY, nothing written; --force), list of a device bound to p2pmem.
#
# The fake sysfs files are plain files (or a FIFO): writing driver_override, unbind or
# drivers_probe binds nothing, and the tool's write() (no O_TRUNC) overwrites their start
# rather than replacing them, so that a file written twice keeps the tail of the first.
#
# Prints "ok - ..." or "not ok - ..." per check; exits 1 if any failed.
#
# Each check can fail: P2PMEM_HOST_TEST_BREAK=status expects a wrong exit status in every
# check, P2PMEM_HOST_TEST_BREAK=json negates every assertion on the document or the
# messages; either way every check must print "not ok" (a check of what the tool wrote
# to a fake file has no exit status: either mode negates it).
set -u

here=$(cd "$(dirname "$0")" && pwd)
tool=$here/p2pmem
break_mode=${P2PMEM_HOST_TEST_BREAK:-}

if ! make -s -C "$here" >/dev/null; then
	echo "not ok - make -C $here"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export P2PMEM_SYSFS=$tmp/sys P2PMEM_DEV=$tmp/dev
mkdir -p "$P2PMEM_SYSFS/bus/pci/devices" "$P2PMEM_DEV"

passed=0
failed=0

# result NAME STATUS: prints the verdict of one check.
result() {
	if [ "$2" -eq 0 ]; then
		echo "ok - $1"
		passed=$((passed + 1))
	else
		echo "not ok - $1"
		failed=$((failed + 1))
	fi
}

# check_json NAME STATUS PYEXPR ARGS...: runs the tool with --json and ARGS; it must exit
# with STATUS and print exactly one JSON document d on stdout for which PYEXPR is true
# (PYEXPR also sees err, the tool's stderr).
check_json() {
	local name=$1 want=$2 expr=$3 rc why=
	shift 3

	[ "$break_mode" = status ] && want=$((want + 10))
	[ "$break_mode" = json ] && expr="not ($expr)"
	"$tool" --json "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		why="exit status $rc, expected $want"
	elif ! python3 -m json.tool "$tmp/out" >/dev/null 2>&1; then
		why="stdout is not one JSON document: $(head -c 200 "$tmp/out")"
	elif ! python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
err = open(sys.argv[3]).read()
sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/out" "$expr" "$tmp/err"; then
		why="document fails ($expr): $(head -c 300 "$tmp/out")"
	fi
	[ -n "$why" ] && echo "# p2pmem --json $*: $why"
	result "$name" "$([ -z "$why" ]; echo $?)"
}

# check_human NAME STATUS STDERR_REGEX ARGS...: runs the tool without --json; it must exit
# with STATUS, print nothing on stdout and a line matching STDERR_REGEX on stderr.
check_human() {
	local name=$1 want=$2 regex=$3 rc why= match=0
	shift 3

	[ "$break_mode" = status ] && want=$((want + 10))
	"$tool" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -qE -- "$regex" "$tmp/err" || match=1
	[ "$break_mode" = json ] && match=$((1 - match))
	if [ "$rc" -ne "$want" ]; then
		why="exit status $rc, expected $want"
	elif [ -s "$tmp/out" ]; then
		why="unexpected stdout: $(head -c 200 "$tmp/out")"
	elif [ "$match" -ne 0 ]; then
		why="stderr does not match /$regex/ as expected: $(head -c 300 "$tmp/err")"
	fi
	[ -n "$why" ] && echo "# p2pmem $*: $why"
	result "$name" "$([ -z "$why" ]; echo $?)"
}

# check_file NAME FILE WANT: FILE must hold exactly the bytes of WANT (printf %b escapes).
check_file() {
	local name=$1 file=$2 want got why= same=0

	printf -v want '%b' "$3"
	got=$(cat "$file" 2>/dev/null && echo .) || got=
	[ "${got%.}" = "$want" ] || same=1
	[ -n "$break_mode" ] && same=$((1 - same))
	if [ -z "$got" ]; then
		why="cannot read $file"
	elif [ "$same" -ne 0 ]; then
		why="$file holds $(printf '%q' "${got%.}"), expected $([ -n "$break_mode" ] &&
			echo 'anything but ')$(printf '%q' "$want")"
	fi
	[ -n "$why" ] && echo "# $why"
	result "$name" "$([ -z "$why" ]; echo $?)"
}

usage='d["ok"] is False and d["errno"] is None and d["error"]'

# p2pmem not loaded: no $SYSFS/bus/pci/drivers/p2pmem.
check_json "list, p2pmem not loaded: ENOENT" 1 \
	'd["ok"] is False and d["errno"] == "ENOENT" and "modprobe p2pmem" in d["error"]' list
check_human "list, p2pmem not loaded: message on stderr" 1 \
	'p2pmem is not loaded \(modprobe p2pmem\)' list
check_json "bind, p2pmem not loaded: ENOENT" 1 \
	'd["ok"] is False and d["errno"] == "ENOENT" and d["bdf"] == "0000:00:03.0"' \
	bind 00:03.0

# p2pmem loaded, no device bound: the driver directory holds only the driver's own files.
drv=$P2PMEM_SYSFS/bus/pci/drivers/p2pmem
mkdir -p "$drv" "$P2PMEM_SYSFS/module/p2pmem"
touch "$drv/bind" "$drv/unbind" "$drv/uevent" "$drv/new_id" "$drv/remove_id"
ln -s ../../../../module/p2pmem "$drv/module"
check_json "list, no device bound: empty list" 0 \
	'd == {"ok": True, "devices": []}' list
check_json "list --json after the command: same document" 0 \
	'd == {"ok": True, "devices": []}' list --json
check_human "list, no device bound: says so on stderr" 0 'no device is bound to p2pmem' list

# Usage errors: exit 2, errno null.
check_json "no command: usage error" 2 "$usage"
check_json "unknown command: usage error" 2 "$usage and 'frobnicate' in d['error']" frobnicate
check_json "unknown option: usage error" 2 "$usage and '--bogus' in d['error']" list --bogus
check_json "list with an argument: usage error" 2 "$usage" list 00:03.0
check_json "bind without BDF: usage error" 2 "$usage" bind
check_json "unbind with two BDFs: usage error" 2 "$usage" unbind 00:03.0 00:04.0
check_json "check without BLOCKDEV: usage error" 2 "$usage" check 00:03.0
check_json "--force on unbind: usage error" 2 "$usage" unbind 00:03.0 --force
check_json "--no-reprobe on bind: usage error" 2 "$usage" bind 00:03.0 --no-reprobe
check_json "--write on list: usage error" 2 "$usage" list --write
check_json "--size without a value: usage error" 2 "$usage" check 00:03.0 /dev/null --size
check_json "--size not a multiple of 4096: usage error" 2 "$usage" \
	check 00:03.0 /dev/null --size 5000
check_json "--size 0: usage error" 2 "$usage" check 00:03.0 /dev/null --size 0
check_json "--offset not a multiple of 4096: usage error" 2 "$usage" \
	check 00:03.0 /dev/null --offset=1K
check_json "--size with a bad suffix: usage error" 2 "$usage" \
	check 00:03.0 /dev/null --size 1X
check_json "--size that overflows: usage error" 2 "$usage" \
	check 00:03.0 /dev/null --size 99999999999999999999G
check_human "unknown command, human: hint on stderr" 2 "Try 'p2pmem --help'" frobnicate

# Malformed BDFs: exit 2, whatever the command.
for bdf in 0000:00:03 0000:00:03.8 00:20.0 g0:00.0 0000:000:03.0 000:00:03.0 00:03.0x \
	00-03.0 " 00:03.0" 00:3.0 ""; do
	check_json "bind '$bdf': malformed BDF" 2 "$usage and 'malformed BDF' in d['error']" \
		bind "$bdf"
done
check_json "unbind with a malformed BDF: usage error" 2 "$usage" unbind 1:2:3.4
check_json "check with a malformed BDF: usage error" 2 "$usage" check 00:03 /dev/null

# A device that does not exist: exit 1, ENODEV.
check_json "bind of a nonexistent device: ENODEV" 1 \
	'd["ok"] is False and d["errno"] == "ENODEV" and d["bdf"] == "0000:00:1f.7"' \
	bind 00:1F.7
check_human "bind of a nonexistent device, human: names it" 1 \
	'no PCI device 0000:00:1f\.7' bind 0000:00:1f.7
check_json "unbind of a nonexistent device: ENODEV" 1 \
	'd["ok"] is False and d["errno"] == "ENODEV"' unbind 0000:05:00.0

# A fake device bound to a fake nvme whose unbind, like $SYSFS/bus/pci/drivers_probe, is a
# plain file: the device stays on nvme whatever the tool writes, so the probe fails.
pci=$P2PMEM_SYSFS/bus/pci
nvme_drv=$pci/drivers/nvme

# fake_nvme BDF: (re)creates the device BDF, bound to nvme, with an empty driver_override;
# empties nvme's unbind and drivers_probe.
fake_nvme() {
	rm -rf "${pci:?}/devices/$1" "$nvme_drv/unbind" "$pci/drivers_probe"
	mkdir -p "$pci/devices/$1" "$nvme_drv"
	: >"$pci/devices/$1/driver_override"
	: >"$nvme_drv/unbind"
	: >"$pci/drivers_probe"
	ln -s ../../drivers/nvme "$pci/devices/$1/driver"
}

bdf=0000:01:00.0
fake_nvme $bdf
check_json "bind, the probe leaves it on nvme: ENODEV, names the probe" 1 \
	'(d["ok"] is False and d["errno"] == "ENODEV" and d["bdf"] == "'$bdf'" and
	  "probe of '$bdf' failed" in d["error"] and d["previous_driver"] == "nvme" and
	  d["driver"] == "nvme")' bind 01:00.0
# "p2pmem", then the restore's "\n" over its first byte.
check_file "bind, the probe failed: driver_override written, then cleared" \
	"$pci/devices/$bdf/driver_override" '\n2pmem'
check_file "bind, the probe failed: the BDF written to nvme's unbind" "$nvme_drv/unbind" $bdf
check_file "bind, the probe failed: the BDF written to drivers_probe" "$pci/drivers_probe" $bdf

# The order of the writes: driver_override, unbind and drivers_probe all lead to one FIFO.
fake_nvme $bdf
mkfifo "$tmp/writes"
for f in "$pci/devices/$bdf/driver_override" "$nvme_drv/unbind" "$pci/drivers_probe"; do
	ln -sf "$tmp/writes" "$f"
done
cat "$tmp/writes" >"$tmp/writes.log" &
reader=$!
exec 3>"$tmp/writes"
"$tool" bind $bdf >/dev/null 2>&1
exec 3>&-
wait $reader
check_file "bind, the probe failed: override, unbind, probe, then clear and reprobe" \
	"$tmp/writes.log" "p2pmem$bdf$bdf\\n$bdf"

# An nvme device whose namespace nvme1n1 is held by dm-0 (a devno no real mount has).
bdf=0000:02:00.0
fake_held() {
	local ns=$pci/devices/$bdf/nvme/nvme1/nvme1n1

	fake_nvme $bdf
	mkdir -p "$ns/holders/dm-0"
	echo 4095:1048575 >"$ns/dev"
}
fake_held
check_json "bind of an nvme device whose namespace is held: EBUSY" 1 \
	'(d["ok"] is False and d["errno"] == "EBUSY" and d["bdf"] == "'$bdf'" and
	  "/dev/nvme1n1 is in use: held by dm-0" in d["error"] and "--force" in d["error"])' \
	bind 02:00.0
check_file "bind, namespace held: driver_override not written" \
	"$pci/devices/$bdf/driver_override" ''
check_file "bind, namespace held: nvme's unbind not written" "$nvme_drv/unbind" ''
check_file "bind, namespace held: drivers_probe not written" "$pci/drivers_probe" ''
fake_held
check_json "bind --force, namespace held: goes on to the probe" 1 \
	'(d["ok"] is False and d["errno"] == "ENODEV" and "probe of '$bdf' failed" in d["error"]
	  and "--force: /dev/nvme1n1 is in use: held by dm-0" in err)' bind 02:00.0 --force
check_file "bind --force, namespace held: driver_override written" \
	"$pci/devices/$bdf/driver_override" '\n2pmem'
check_file "bind --force, namespace held: the BDF written to nvme's unbind" \
	"$nvme_drv/unbind" $bdf

# A device bound to p2pmem, its counters distinct, no /dev/p2pmemN in $P2PMEM_DEV.
bdf=0000:03:00.0
dev=$pci/devices/$bdf
mkdir -p "$dev/p2pmem_region"
echo 0x1b36 >"$dev/vendor"
echo 0x0010 >"$dev/device"
printf '0x%016x 0x%016x 0x%016x\n' 0xfe000000 0xfe0fffff 0x40200 0 0 0 >"$dev/resource"
ln -s ../../drivers/p2pmem "$dev/driver"
ln -s ../../devices/$bdf "$drv/$bdf"
n=1
for attr in region_bytes pages free_pages outstanding_pages handed_out_pages freed_pages \
	pool_bytes pool_free_bytes region_offset; do
	echo $((n * 4096 + n)) >"$dev/p2pmem_region/$attr"
	n=$((n + 1))
done
check_json "list, one device bound: its counters, as its files say" 0 \
	'len(d["devices"]) == 1 and all(d["devices"][0][k] == int(open("'"$dev"'/p2pmem_region/"
	 + k).read()) for k in ["region_bytes", "pages", "free_pages", "outstanding_pages",
	 "handed_out_pages", "freed_pages", "pool_bytes", "pool_free_bytes", "region_offset"])' \
	list
check_json "list, one device bound: window_bytes = region_bytes + pool_bytes" 0 \
	'([x["window_bytes"] for x in d["devices"]] ==
	  [d["devices"][0]["region_bytes"] + d["devices"][0]["pool_bytes"]])' list
check_json "list, one device bound, no /dev/p2pmemN: device null, its ids" 0 \
	'([(x["bdf"], x["vendor"], x["device_id"], x["device"], x["bar"], x["bar_bytes"],
	    x["page_size"]) for x in d["devices"]] ==
	  [("'$bdf'", "0x1b36", "0x0010", None, None, None, None)])' list

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
