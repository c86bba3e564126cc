#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo command (README): installs what is missing, builds the kernel (cached)
# and the module, boots the test bed and runs scripts/demo-guest.sh in it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$P2PMEM_ROOT"

prepare_module >/dev/null
scripts/vm.sh --timeout 900 -- scripts/demo-guest.sh
