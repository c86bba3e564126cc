#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmarks, inside the test-bed guest (scripts/bench.sh boots it). Every figure is sampled
# P2PMEM_BENCH_ROUNDS times (default 5), the alternatives it is compared with sampled in the
# same round (interleaved), and printed as median [min-max] with its ratio to the reference:
#  1. fio O_DIRECT read and write (psync) between the data NVMe and a buffer in host memory,
#     in the kernel's own C provider (the nvme driver's CMB, p2pmem/allocate), in p2pmem's
#     kernel-pool slice (p2pmem/allocate) and in p2pmem's Rust region (/dev/p2pmemN) of the
#     same size on the same BAR, on both devices;
#  2. the same with 4 jobs at queue depth 8 through libaio and io_uring, and the locks
#     contended meanwhile (/proc/lock_stat);
#  3. mmap setup rate: map, write every 4 KiB page, unmap;
#  4. probe and unbind latency (nothing mapped, pages mapped, pages pinned by an O_DIRECT read
#     in flight), and the unbind's steps as the module stamps them (src/unbind_clock.rs).
# Under TCG the numbers compare providers with each other, not with hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/testing/selftests/p2pmem/lib.sh
SIZE=${P2PMEM_BENCH_SIZE:-16M}
ROUNDS=${P2PMEM_BENCH_ROUNDS:-5}
HELPER=tools/testing/selftests/p2pmem/bench_helper
SAMPLES=/tmp/bench-samples
: >"$SAMPLES"

data_ctrl=$(nvme_ctrl_by serial p2pmem-data)
slow_ctrl=$(nvme_ctrl_by serial p2pmem-slow)
data_dev=/dev/${data_ctrl}n1
slow_dev=/dev/${slow_ctrl}n1
cmb=$(cmb_bdf)
ivshmem=$(ivshmem_bdf)
# Half of each 64 MiB window goes to the kernel pool: the two buffers under test are equal.
POOL=$((32 << 20))

# Progress on stderr: what runs, and the guest's seconds so far.
progress() { printf '[bench %4ds] %s\n' "$SECONDS" "$*" >&2; }

sample() { printf '%s\t%s\n' "$1" "$2" >>"$SAMPLES"; }

# The /dev/p2pmemN of PCI device $1.
node_of() { "$HELPER" node "$1"; }

# One fio run of every job of a round, one after the other (starting fio costs ~10 s under
# TCG; the jobs' bandwidths are what is compared). Arguments: "label=iomem" buffers; each gets
# a read and a write job (psync, 1 job) and two random-read jobs of 4 jobs at depth 8 (libaio,
# io_uring); host memory too. The order rotates with the round number ($1).
fio_round() {
	local round=$1 jobfile=/tmp/bench.fio i=0 jobs=() buf label mem n
	shift
	labels=("host memory" "${@%%=*}")
	{
		printf '[global]\nfilename=%s\ndirect=1\nbs=128k\nstonewall\nnew_group\ngroup_reporting\n' "$data_dev"
		for buf in "" "$@"; do
			mem=${buf#*=}
			for job in read write libaio io_uring; do
				# Host memory is the reference of the single-job figures only.
				[ -z "$buf" ] && [ ${#job} -gt 5 ] && continue
				jobs+=("$(printf '[b%d_%s]\n%s%s\n' "$i" "$job" \
					"$(case $job in
					read | write) printf 'rw=%s\nioengine=psync\nsize=%s\n' "$job" "$SIZE" ;;
					*) printf 'rw=randread\nioengine=%s\nnumjobs=4\niodepth=8\nsize=%s\n' "$job" "$SIZE" ;;
					esac)" "${mem:+iomem=mmapshared:$mem}")")
			done
			i=$((i + 1))
		done
		n=${#jobs[@]}
		for i in $(seq 0 $((n - 1))); do
			printf '%s\n' "${jobs[$(((i + round) % n))]}"
		done
	} >"$jobfile"
	fio --minimal "$jobfile" >/tmp/bench.fio.out 2>&1 || { cat /tmp/bench.fio.out >&2; return 1; }
	# Terse v3: field 3 is the job name, 7 the read bandwidth, 48 the write bandwidth (KiB/s).
	while IFS=';' read -r -a f; do
		[ "${f[0]}" = 3 ] || continue
		# Field 5: the job's error; a refused pin (EREMOTEIO) must not pass for a slow run.
		[ "${f[4]}" = 0 ] || { echo "fio job ${f[2]} failed: error ${f[4]}" >&2; return 1; }
		i=${f[2]#b}
		job=${i#*_}
		i=${i%%_*}
		case $job in
		read | write) name="fio $job: ${labels[$i]}" ;;
		*) name="4 jobs x qd8 $job read: ${labels[$i]}" ;;
		esac
		sample "$name" "$(awk -v r="${f[6]}" -v w="${f[47]}" 'BEGIN { print (r + w) / 1024 }')"
	done </tmp/bench.fio.out
	# The buffers' layout as the 4-job runs get it: 4 processes map 1 MiB each at once; how
	# many physically contiguous pieces each 128 KiB I/O spans (the nvme driver uses an SGL,
	# one entry per piece, when the pieces average 32 KiB or more; else a PRP entry per page).
	for buf in "$@"; do
		out=$("$HELPER" segments "${buf#*=}" $((1 << 20)) 4 $((128 << 10)))
		sample "segments per 128 KiB: ${buf%%=*}" "$(sed 's/.*segments_per_chunk=\([0-9.]*\).*/\1/' <<<"$out")"
	done
	for buf in "$@"; do
		"$HELPER" mmap-rate "${buf#*=}" $((1 << 20)) 1 >/tmp/bench.mmap
		sample "mmap/s: ${buf%%=*}" "$(sed 's/.*per_s=\([0-9.]*\).*/\1/' /tmp/bench.mmap)"
	done
}

# The steps of the last "unbind took" line of device $1 as samples "unbind step <s>: $2".
unbind_steps() {
	dmesg | grep "$1: unbind took" | tail -n 1 |
		sed 's/.*unbind took \([0-9]*\) us:/total \1/' |
		awk -v what="$2" '{ for (i = 1; i < NF; i += 2) printf "unbind step %s: %s\t%s\n", $i, what, $(i + 1) / 1000 }' \
			>>"$SAMPLES"
}

ms_of() { sed 's/.*\<'"$1"'=\([0-9]*\).*/\1/' | awk '{ print $1 / 1000 }'; }

echo "bench: $ROUNDS interleaved rounds; fio --direct=1 --bs=128k --size=$SIZE against $data_dev"

# Phase 1: the CMB is the nvme driver's (its own P2PDMA provider); p2pmem has ivshmem.
modprobe -r p2pmem 2>/dev/null || true
insmod ./p2pmem.ko pool_size=$POOL
iv_node=$(node_of "$ivshmem")
kernel_cmb=/sys/bus/pci/devices/$cmb/p2pmem/allocate
[ -e "$kernel_cmb" ] || { echo "the nvme driver published no CMB" >&2; exit 1; }
for r in $(seq "$ROUNDS"); do
	progress "phase 1 (CMB on nvme, ivshmem on p2pmem): round $r of $ROUNDS"
	fio_round "$r" "kernel C provider (nvme CMB)=$kernel_cmb" \
		"kernel pool slice, ivshmem=/sys/bus/pci/devices/$ivshmem/p2pmem/allocate" \
		"p2pmem region, ivshmem=$iv_node"
done

# Phase 2: the CMB is p2pmem's.
pci_unbind_any "$cmb"
echo p2pmem >"/sys/bus/pci/devices/$cmb/driver_override"
echo "$cmb" >/sys/bus/pci/drivers/p2pmem/bind
cmb_node=$(node_of "$cmb")
echo 0 >/proc/lock_stat
echo 1 >/proc/sys/kernel/lock_stat
for r in $(seq "$ROUNDS"); do
	progress "phase 2 (CMB on p2pmem): round $r of $ROUNDS"
	fio_round "$r" "kernel pool slice, NVMe CMB=/sys/bus/pci/devices/$cmb/p2pmem/allocate" \
		"p2pmem region, NVMe CMB=$cmb_node"
done
echo 0 >/proc/sys/kernel/lock_stat
cp /proc/lock_stat /tmp/bench-lock_stat

# Unbinds ivshmem with nothing mapped and binds it again: samples of both, their figure names
# ending in $1, and the unbind's steps as "$2".
unbind_then_probe() {
	local out
	out=$("$HELPER" unbind "$ivshmem")
	sample "unbind: nothing mapped$1" "$(ms_of us <<<"$out")"
	unbind_steps "$ivshmem" "$2"
	sample "probe (bind)$1" "$("$HELPER" bind p2pmem "$ivshmem" | ms_of us)"
}

# Phase 3: probe and unbind of ivshmem (64 MiB window, 32 MiB region, 32 MiB kernel pool),
# and with no kernel pool (pool_size=0, 64 MiB region) for the pool's share.
for r in $(seq "$ROUNDS"); do
	progress "phase 3 (probe and unbind): round $r of $ROUNDS"
	unbind_then_probe "" "nothing mapped"
	out=$("$HELPER" unbind "$ivshmem" $((4096 * 4096)))
	sample "unbind: 4096 pages mapped" "$(ms_of us <<<"$out")"
	"$HELPER" bind p2pmem "$ivshmem" >/dev/null
	out=$("$HELPER" unbind-held "$ivshmem" "$slow_dev" $((2 << 20)))
	sample "unbind: 512 pages pinned by a read" "$(ms_of us <<<"$out")"
	sample "unbind: return after the last page" "$(ms_of release_to_return_us <<<"$out")"
	unbind_steps "$ivshmem" "pinned"
	"$HELPER" bind p2pmem "$ivshmem" >/dev/null
done
pci_unbind_any "$cmb"
rmmod p2pmem
insmod ./p2pmem.ko pool_size=0
for r in $(seq "$ROUNDS"); do
	progress "phase 3 (probe and unbind, no kernel pool): round $r of $ROUNDS"
	unbind_then_probe ", no kernel pool" "no kernel pool"
done
rmmod p2pmem
cmb_restore_nvme "$cmb"

python3 - "$SAMPLES" /tmp/bench-lock_stat <<'PY'
import collections, re, statistics, sys

samples = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    samples.setdefault(name, []).append(float(value))

def fmt(name):
    v = samples[name]
    return "%9.1f [%.1f-%.1f]" % (statistics.median(v), min(v), max(v))

def table(title, unit, rows):
    """rows: (name, reference name or None)"""
    print("\n%s\n" % title)
    print("| %-52s | %-26s | %-34s |" % ("figure (%s)" % unit, "median [min-max]", "ratio to reference"))
    print("|%s|%s|%s|" % ("-" * 54, "-" * 28, "-" * 36))
    for name, ref in rows:
        if name not in samples:
            continue
        ratio = ""
        if ref and ref in samples and statistics.median(samples[ref]) > 0:
            ratio = "%.2f (vs %s)" % (statistics.median(samples[name]) / statistics.median(samples[ref]), ref.split(": ", 1)[-1])
        print("| %-52s | %-26s | %-34s |" % (name, fmt(name), ratio))

def devices(prefix):
    rows = []
    for dev in ("ivshmem", "NVMe CMB"):
        rows.append(("%s: kernel pool slice, %s" % (prefix, dev), "%s: host memory" % prefix))
        rows.append(("%s: p2pmem region, %s" % (prefix, dev), "%s: kernel pool slice, %s" % (prefix, dev)))
    return rows

for rw in ("read", "write"):
    p = "fio " + rw
    table("fio O_DIRECT %s, psync, 1 job (higher is better)" % rw, "MB/s",
          [(p + ": host memory", None),
           (p + ": kernel C provider (nvme CMB)", p + ": host memory")] + devices(p))
for engine in ("libaio", "io_uring"):
    p = "4 jobs x qd8 %s read" % engine
    table("fio O_DIRECT random read, %s, 4 jobs, iodepth 8 (higher is better)" % engine, "MB/s",
          [(p + ": kernel C provider (nvme CMB)", None)] +
          [(n, None if "kernel pool" in n else r) for n, r in devices(p)])
table("physically contiguous pieces per 128 KiB I/O, 4 processes mapping 1 MiB at once (lower is better)", "pieces",
      [("segments per 128 KiB: kernel C provider (nvme CMB)", None)] +
      [(n, None if "kernel pool" in n else r) for n, r in devices("segments per 128 KiB")])
table("mmap setup: map 1 MiB, write every 4 KiB page, unmap (higher is better)", "per s",
      [("mmap/s: kernel C provider (nvme CMB)", None)] +
      [(n, r) for n, r in devices("mmap/s") if "region" in n] +
      [("mmap/s: kernel pool slice, ivshmem", "mmap/s: kernel C provider (nvme CMB)"),
       ("mmap/s: kernel pool slice, NVMe CMB", "mmap/s: kernel C provider (nvme CMB)")])
table("probe and unbind, ivshmem 64 MiB (lower is better)", "ms",
      [("probe (bind)", None), ("probe (bind), no kernel pool", "probe (bind)"),
       ("unbind: nothing mapped", None),
       ("unbind: nothing mapped, no kernel pool", "unbind: nothing mapped"),
       ("unbind: 4096 pages mapped", "unbind: nothing mapped"),
       ("unbind: 512 pages pinned by a read", "unbind: nothing mapped"),
       ("unbind: return after the last page", "unbind: nothing mapped")])
steps = [n for n in samples if n.startswith("unbind step ")]
table("unbind, step by step as the module stamps it (src/unbind_clock.rs; lower is better)", "ms",
      [(n, None) for n in steps])

# Lock contention over phase 2's fio runs (both devices' pool slices and regions).
locks = []
for line in open(sys.argv[2]):
    m = re.match(r"^\s*(\S.*?):\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)", line)
    if m:
        locks.append((int(m.group(3)), m.group(1), int(m.group(9)), m.group(6)))
locks.sort(reverse=True)
print("\nLock classes most contended during phase 2's fio runs (/proc/lock_stat, CONFIG_LOCK_STAT):\n")
print("| %-48s | %12s | %14s | %16s |" % ("class", "contentions", "acquisitions", "wait total (us)"))
print("|%s|%s|%s|%s|" % ("-" * 50, "-" * 14, "-" * 16, "-" * 18))
ours = [l for l in locks if l[1].startswith("src/") or "p2pmem" in l[1]]
for c, name, acq, wait in locks[:8] + [l for l in ours if l not in locks[:8]]:
    print("| %-48s | %12d | %14d | %16s |" % (name[:48], c, acq, wait))
if not ours:
    print("(no lock class of p2pmem's was contended)")
PY
