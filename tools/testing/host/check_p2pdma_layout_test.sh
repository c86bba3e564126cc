#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of scripts/check-p2pdma-layout.sh: the kernel's own drivers/pci/p2pdma.c passes, and
# every change to the two private structs p2pmem mirrors fails the build. TAP output.
#
#   tools/testing/host/check_p2pdma_layout_test.sh <kernel tree>
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
check=$root/scripts/check-p2pdma-layout.sh
src=${1:?usage: $0 KERNEL_TREE}/drivers/pci/p2pdma.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0 failed=0
result() { # description, status
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n $1"; else echo "not ok $n $1"; failed=$((failed + 1)); fi
}
mutant() { # name, sed expression: the check must refuse the changed source
	sed "$2" "$src" >"$tmp/$1.c"
	cmp -s "$src" "$tmp/$1.c" && { result "$1: the mutation applies" 1; return; }
	! "$check" "$tmp/$1.c" >/dev/null 2>&1
	result "$1 is refused" $?
}

echo "TAP version 13"
echo "1..6"
"$check" "$src" 2>/dev/null | grep -q 'PAGEMAP_LAYOUT_CHECKED_IN_SOURCE: bool = true;'
result "the kernel's p2pdma.c matches the mirrored layouts" $?
mutant member-appended-to-pagemap 's/^\tstruct p2pdma_provider \*mem;$/&\n\tunsigned long flags;/'
mutant member-before-provider '/^struct pci_p2pdma_pagemap {$/,/^};/s/^\tstruct dev_pagemap pgmap;$/&\n\tvoid *owner;/'
mutant provider-renamed 's/^\tstruct p2pdma_provider \*mem;$/\tstruct p2pdma_provider *provider;/'
mutant pool-not-first '/^struct pci_p2pdma {$/a\	struct xarray first;'
"$check" "$tmp/absent.c" 2>/dev/null | grep -q 'PAGEMAP_LAYOUT_CHECKED_IN_SOURCE: bool = false;'
result "without the source, the build records that it could not check" $?
[ "$failed" -eq 0 ]
