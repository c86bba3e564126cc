#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds what is missing, boots the test bed and runs scripts/bench-guest.sh: fio bandwidth,
# mmap setup rate and unbind latency, printed as tables.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$P2PMEM_ROOT"
prepare_module >/dev/null
scripts/vm.sh --timeout 1200 -- scripts/bench-guest.sh
