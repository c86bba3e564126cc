# SPDX-License-Identifier: GPL-2.0
# Shared paths and helpers for the p2pmem scripts. Sourced, never run.

P2PMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything built or downloaded lives outside the repository.
P2PMEM_CACHE=${P2PMEM_CACHE:-/var/cache/p2pmem}
P2PMEM_SHARED=${P2PMEM_SHARED:-$P2PMEM_ROOT/../shared}
P2PMEM_VENV=$P2PMEM_CACHE/venv
P2PMEM_CARGO_HOME=$P2PMEM_CACHE/cargo

# Pinned versions (see README.md, "Platform").
KERNEL_VERSION=7.3.4
KERNEL_PKG=linux-source-7.3
BINDGEN_VERSION=0.71.1
VIRTME_NG_VERSION=1.42
LLVM_SUFFIX=-19

# Debian's rustc (with rust-web-src) must win over any rustup toolchain.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$P2PMEM_CARGO_HOME/bin:$P2PMEM_VENV/bin:$PATH

KMAKE=(LLVM="$LLVM_SUFFIX" RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc
	RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt CLIPPY_DRIVER=/usr/bin/clippy-driver
	BINDGEN="$P2PMEM_CARGO_HOME/bin/bindgen")

log() { printf '[p2pmem] %s\n' "$*" >&2; }
die() { printf '[p2pmem] error: %s\n' "$*" >&2; exit 1; }

# Where the pinned tarball is: shared/ first, Debian's package second.
kernel_tarball() {
	if [ -f "$P2PMEM_SHARED/kernel/$KERNEL_PKG.tar.xz" ]; then
		echo "$P2PMEM_SHARED/kernel/$KERNEL_PKG.tar.xz"
	else
		echo "/usr/src/$KERNEL_PKG.tar.xz"
	fi
}

toolchain_versions() {
	/usr/bin/rustc --version
	clang$LLVM_SUFFIX --version | head -n 1
	ld.lld$LLVM_SUFFIX --version | head -n 1
	"$P2PMEM_CARGO_HOME/bin/bindgen" --version
	echo "virtme-ng $VIRTME_NG_VERSION"
}

# Cache key: tarball, config fragment, toolchain, and the build script itself.
kernel_key() {
	if [ -z "${_P2PMEM_KEY:-}" ]; then
		_P2PMEM_KEY=$({
			sha256sum <"$(kernel_tarball)"
			cat "$P2PMEM_ROOT/tools/testing/selftests/p2pmem/config"
			cat "$P2PMEM_ROOT/scripts/build-kernel.sh"
			toolchain_versions
		} | sha256sum | cut -c1-16)
	fi
	echo "$_P2PMEM_KEY"
}

# Installs what is missing, builds (or reuses) the kernel and builds p2pmem.ko; prints the
# kernel build directory. The common start of the demo and bench commands.
prepare_module() {
	local kdir
	"$P2PMEM_ROOT/scripts/setup.sh" >&2
	kdir=$("$P2PMEM_ROOT/scripts/build-kernel.sh" | tail -n 1)
	make -s -C "$P2PMEM_ROOT" KDIR="$kdir" modules >&2
	echo "$kdir"
}
