#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the pinned 7.3.4 kernel for the test bed, once per cache key
# (tarball, config fragment, toolchain versions, this script), and prints the
# build directory. An unchanged key costs seconds.
#
#   scripts/build-kernel.sh          build (or reuse) and print the directory
#   scripts/build-kernel.sh --path   print the directory only, fail if not built
set -euo pipefail
. "$(dirname "$0")/lib.sh"

key=$(kernel_key)
top=$P2PMEM_CACHE/kernel/$key
kdir=$top/linux
fragment=$P2PMEM_ROOT/tools/testing/selftests/p2pmem/config

if [ "${1:-}" = --path ]; then
	[ -f "$top/.built" ] || die "no kernel built for key $key: run scripts/build-kernel.sh"
	echo "$kdir"
	exit 0
fi

mkdir -p "$P2PMEM_CACHE/kernel"
exec 9>"$P2PMEM_CACHE/kernel/.lock"
flock 9

if [ -f "$top/.built" ]; then
	log "kernel cache hit: $kdir (key $key)"
	echo "$kdir"
	exit 0
fi

log "kernel cache miss (key $key): building Linux $KERNEL_VERSION, about 20 minutes on 2 cores"
start=$(date +%s)
rm -rf "$top"
mkdir -p "$top"
tar -C "$top" -xf "$(kernel_tarball)"
mv "$top"/linux-source-* "$kdir"
cd "$kdir"
grep -q "^SUBLEVEL = ${KERNEL_VERSION##*.}$" Makefile || die "tarball is not Linux $KERNEL_VERSION"

# virtme-ng's defconfig first, then our fragment on top of it.
"$P2PMEM_VENV/bin/virtme-configkernel" --defconfig "${KMAKE[@]}" >/dev/null
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make "${KMAKE[@]}" olddefconfig >/dev/null

# Every option of the fragment must hold, or the tests would test something else.
bad=0
while read -r line; do
	case "$line" in
	CONFIG_*=n) want="# ${line%=n} is not set" ;;
	CONFIG_*) want=$line ;;
	"# CONFIG_"*" is not set") want=$line ;;
	*) continue ;;
	esac
	if [[ "$want" == "# "* ]]; then
		opt=${want#\# }
		opt=${opt%% *}
		grep -q "^$opt=" .config && { log "config: $opt is set, wanted off"; bad=1; }
	else
		grep -qx "$want" .config || { log "config: wanted $want, got: $(grep "^${want%%=*}=" .config || echo unset)"; bad=1; }
	fi
done <"$fragment"
[ "$bad" = 0 ] || die "the config fragment does not apply cleanly (dependencies missing?)"

make "${KMAKE[@]}" -j"$(nproc)" >"$top/build.log" 2>&1 || {
	tail -n 40 "$top/build.log" >&2
	die "kernel build failed (full log: $top/build.log)"
}
touch "$top/.built"

# Only the current key is kept.
for old in "$P2PMEM_CACHE"/kernel/*/; do
	[ "${old%/}" = "$top" ] || rm -rf "$old"
done
log "kernel built in $(($(date +%s) - start)) s: $kdir"
echo "$kdir"
