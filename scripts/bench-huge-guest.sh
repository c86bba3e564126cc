#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The huge-mapping benchmarks, inside a test-bed guest whose ivshmem BAR is 2 GiB
# (scripts/bench.sh --huge boots it with P2PMEM_IVSHMEM_MB=2048). Every figure is sampled
# P2PMEM_BENCH_ROUNDS times (default 5), interleaved with what it is compared with, and printed
# as median [min-max] with its ratio to the reference:
#  1. probe of a 1 GiB window (size=1G): the time of the bind, of its memremap_pages() (the
#     module logs how long the region's and the kernel pool's took), and the memmap it costs
#     (nr_memmap_pages of /proc/vmstat, before and after), for p2pmem's region of 2 MiB folios
#     (huge_pages=1 small_pages_size=0 pool_size=0), the same with its default small part of
#     4 KiB pages (1/8: 128 MiB), its region of 4 KiB pages (pool_size=0), and the kernel's
#     pool of the window (all of it but the 2 MiB region p2pmem keeps);
#  2. mmap setup of 1 GiB: map, write every 4 KiB page, unmap, from p2pmem's huge region
#     and from the kernel pool (p2pmem/allocate) of one binding of the whole BAR (1 GiB each);
#  3. fio O_DIRECT read and write with blocks of 2 MiB less 4 KiB into a buffer of p2pmem's huge
#     region (PMD-mapped) and of its 4 KiB region, the rest of the guest equal. (fio maps its
#     buffer one page longer than the block for O_DIRECT alignment: with --bs=2M it would ask
#     for 2 MiB + 4 KiB, which a huge region serves from its small part of 4 KiB pages.)
# Under TCG the numbers compare the two ways with each other, not with hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/testing/selftests/p2pmem/lib.sh
ROUNDS=${P2PMEM_BENCH_ROUNDS:-5}
HELPER=tools/testing/selftests/p2pmem/bench_helper
SAMPLES=/tmp/bench-huge-samples
: >"$SAMPLES"
GIB=$((1 << 30))

data_ctrl=$(nvme_ctrl_by serial p2pmem-data)
data_dev=/dev/${data_ctrl}n1
ivshmem=$(ivshmem_bdf)
# BAR 2's "start end flags" (hex) in sysfs: bash arithmetic, since awk prints 2 GiB as 2.1e+09.
read -r bar_start bar_end _ < <(sed -n 3p "/sys/bus/pci/devices/$ivshmem/resource")
bar_bytes=$((bar_end - bar_start + 1))
[ "$bar_bytes" -ge $((2 * GIB)) ] ||
	{ echo "ivshmem BAR is $bar_bytes bytes; boot with P2PMEM_IVSHMEM_MB=2048" >&2; exit 1; }

progress() { printf '[bench-huge %4ds] %s\n' "$SECONDS" "$*" >&2; }
sample() { printf '%s\t%s\n' "$1" "$2" >>"$SAMPLES"; }
ms_of() { sed 's/.*\<'"$1"'=\([0-9]*\).*/\1/' | awk '{ print $1 / 1000 }'; }
memmap_pages() { awk '$1 == "nr_memmap_pages" { print $2 }' /proc/vmstat; }

# Loads p2pmem with "$2" (it binds ivshmem), unbinds it, and times a bind of the 1 GiB
# window: samples "probe: $1" (ms, the whole bind), "memremap: $1" (ms, the memremap_pages()
# of the 1 GiB as the module times it: its region's, or with "$3" = pool the kernel pool's) and
# "memmap: $1" (MiB the bind added to the memmap).
probe_of() {
	local before after line us
	insmod ./p2pmem.ko size=$GIB $2
	"$HELPER" unbind "$ivshmem" >/dev/null
	before=$(memmap_pages)
	sample "probe 1 GiB: $1" "$("$HELPER" bind p2pmem "$ivshmem" | ms_of us)"
	after=$(memmap_pages)
	sample "memmap of 1 GiB (MiB): $1" "$(awk -v d=$((after - before)) 'BEGIN { print d * 4096 / 1048576 }')"
	line=$(dmesg | grep "$ivshmem: p2pmem[0-9]*: .* registered in" | tail -n 1)
	[ "$r" != 1 ] || progress "$line"
	if [ "${3:-}" = pool ]; then
		us=$(sed 's/.*(kernel pool \([0-9]*\) us).*/\1/' <<<"$line")
	else
		us=$(sed 's/.*registered in \([0-9]*\) us.*/\1/' <<<"$line")
	fi
	sample "memremap_pages 1 GiB (ms): $1" "$(awk -v u="$us" 'BEGIN { print u / 1000 }')"
	rmmod p2pmem
}

modprobe -r p2pmem 2>/dev/null || true
for r in $(seq "$ROUNDS"); do
	progress "phase 1 (probe of 1 GiB): round $r of $ROUNDS"
	probe_of "p2pmem region, 2 MiB folios" "huge_pages=1 small_pages_size=0 pool_size=0"
	probe_of "p2pmem region, folios + 1/8 small" "huge_pages=1 pool_size=0"
	probe_of "p2pmem region, 4 KiB pages" "pool_size=0"
	probe_of "kernel pool" "pool_size=$((GIB - (2 << 20)))" pool
done

# Phase 2: one binding of the whole BAR, 1 GiB huge region and 1 GiB kernel pool.
insmod ./p2pmem.ko huge_pages=1 small_pages_size=0 pool_size=$GIB
node=$("$HELPER" node "$ivshmem")
allocate=/sys/bus/pci/devices/$ivshmem/p2pmem/allocate
for r in $(seq "$ROUNDS"); do
	progress "phase 2 (mmap setup of 1 GiB): round $r of $ROUNDS"
	for what in "p2pmem region, 2 MiB folios=$node" "kernel pool (p2pmem/allocate)=$allocate"; do
		sample "mmap 1 GiB/s: ${what%%=*}" \
			"$("$HELPER" mmap-rate "${what#*=}" $GIB 1 | sed 's/.*per_s=\([0-9.]*\).*/\1/')"
	done
done
rmmod p2pmem

# Phase 3: fio with 2044 KiB blocks into each region, the module loaded for each in turn.
fio_into() {
	local label=$1 params=$2 rw out
	insmod ./p2pmem.ko pool_size=0 $params
	node=$("$HELPER" node "$ivshmem")
	for rw in read write; do
		out=$(fio --name=b --filename="$data_dev" --direct=1 --bs=2044k --size=64M --rw=$rw \
			--ioengine=psync --iomem=mmapshared:"$node" --output-format=terse --terse-version=3)
		# terse v3: read bandwidth (KiB/s) is field 7, write bandwidth field 48.
		sample "fio $rw 2044k blocks (MB/s): $label" \
			"$(awk -F';' -v f=$([ $rw = read ] && echo 7 || echo 48) '{ print $f * 1024 / 1e6 }' <<<"$out")"
	done
	rmmod p2pmem
}
for r in $(seq "$ROUNDS"); do
	progress "phase 3 (fio, 2044 KiB blocks): round $r of $ROUNDS"
	if [ $((r % 2)) -eq 1 ]; then
		fio_into "PMD-mapped (huge region)" "huge_pages=1"
		fio_into "4 KiB pages" ""
	else
		fio_into "4 KiB pages" ""
		fio_into "PMD-mapped (huge region)" "huge_pages=1"
	fi
done

python3 - "$SAMPLES" <<'PY'
import collections, statistics, sys

samples = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    samples.setdefault(name, []).append(float(value))

def table(title, rows):
    print("\n%s\n" % title)
    print("| %-56s | %-28s | %-32s |" % ("figure", "median [min-max]", "ratio to reference"))
    print("|%s|%s|%s|" % ("-" * 58, "-" * 30, "-" * 34))
    for name, ref in rows:
        v = samples.get(name)
        if not v:
            continue
        ratio = ""
        if ref in samples and statistics.median(samples[ref]) > 0:
            ratio = "%.2f (vs %s)" % (statistics.median(v) / statistics.median(samples[ref]),
                                       ref.split(": ", 1)[-1])
        print("| %-56s | %-28s | %-32s |" % (name, "%.2f [%.2f-%.2f]" % (
            statistics.median(v), min(v), max(v)), ratio))

k = "kernel pool"
table("probe of a 1 GiB window, ms (lower is better)",
      [("probe 1 GiB: " + k, None),
       ("probe 1 GiB: p2pmem region, 4 KiB pages", "probe 1 GiB: " + k),
       ("probe 1 GiB: p2pmem region, 2 MiB folios", "probe 1 GiB: " + k),
       ("probe 1 GiB: p2pmem region, folios + 1/8 small", "probe 1 GiB: " + k)])
table("memremap_pages() of the 1 GiB (kernel pool: of its 1022 MiB), ms (lower is better)",
      [("memremap_pages 1 GiB (ms): " + k, None),
       ("memremap_pages 1 GiB (ms): p2pmem region, 4 KiB pages", "memremap_pages 1 GiB (ms): " + k),
       ("memremap_pages 1 GiB (ms): p2pmem region, 2 MiB folios",
        "memremap_pages 1 GiB (ms): " + k),
       ("memremap_pages 1 GiB (ms): p2pmem region, folios + 1/8 small",
        "memremap_pages 1 GiB (ms): " + k)])
table("memmap the bind adds for a 1 GiB window, MiB (nr_memmap_pages; lower is better)",
      [("memmap of 1 GiB (MiB): " + k, None),
       ("memmap of 1 GiB (MiB): p2pmem region, 4 KiB pages", "memmap of 1 GiB (MiB): " + k),
       ("memmap of 1 GiB (MiB): p2pmem region, 2 MiB folios", "memmap of 1 GiB (MiB): " + k),
       ("memmap of 1 GiB (MiB): p2pmem region, folios + 1/8 small",
        "memmap of 1 GiB (MiB): " + k)])
table("mmap setup of 1 GiB (map, write every 4 KiB page, unmap), per s (higher is better)",
      [("mmap 1 GiB/s: kernel pool (p2pmem/allocate)", None),
       ("mmap 1 GiB/s: p2pmem region, 2 MiB folios", "mmap 1 GiB/s: kernel pool (p2pmem/allocate)")])
for rw in ("read", "write"):
    p = "fio %s 2044k blocks (MB/s): " % rw
    table("fio O_DIRECT %s, psync, bs=2044k, 64 MiB (higher is better)" % rw,
          [(p + "4 KiB pages", None), (p + "PMD-mapped (huge region)", p + "4 KiB pages")])
PY
