#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds what is missing, boots the test bed and runs scripts/bench-guest.sh: fio bandwidth
# (1 job and 4 jobs), mmap setup rate, probe and unbind latency with the unbind's steps, each
# the median of P2PMEM_BENCH_ROUNDS (default 5) interleaved runs with its spread and its ratio
# to a reference measured in the same guest. Prints tables; fails on no timing.
#
#   scripts/bench.sh --huge   the huge-mapping benchmarks instead (scripts/bench-huge-guest.sh),
#                             in a guest whose ivshmem BAR is 2 GiB
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$P2PMEM_ROOT"
kdir=$(prepare_module)
# The timed helper (bench_helper) is built with the selftests.
make -s -C tools/testing/selftests/p2pmem KDIR="$kdir" LLVM="$LLVM_SUFFIX" \
	P2PMEM_SYMVERS="$P2PMEM_ROOT/Module.symvers" >/dev/null
if [ "${1:-}" = --huge ]; then
	P2PMEM_IVSHMEM_MB=2048 scripts/vm.sh --timeout "${P2PMEM_BENCH_TIMEOUT:-2400}" -- \
		scripts/bench-huge-guest.sh
else
	scripts/vm.sh --timeout "${P2PMEM_BENCH_TIMEOUT:-2400}" -- scripts/bench-guest.sh
fi
