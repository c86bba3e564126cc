#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs every tool p2pmem needs, from Debian's packages, crates.io and PyPI
# only, then checks the versions. Idempotent: a second run installs nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get and /var/cache are needed)"

APT_PACKAGES=(
	rustc-web rust-web-src cargo-web rustfmt-web rust-web-clippy
	clang-19 lld-19 llvm-19 libclang-19-dev
	make gcc libc6-dev flex bison bc libelf-dev libssl-dev dwarves cpio kmod xz-utils zstd
	qemu-system-x86 udev busybox-static
	fio nvme-cli pciutils util-linux
	python3 python3-venv git ca-certificates
	dkms dh-dkms debhelper dpkg-dev
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

# The kernel source: shared/ when present (checked against its SHA256SUMS),
# else Debian's linux-source-7.3 from trixie-backports.
if [ -f "$P2PMEM_SHARED/kernel/$KERNEL_PKG.tar.xz" ]; then
	(cd "$P2PMEM_SHARED/kernel" && sha256sum --quiet -c SHA256SUMS) ||
		die "$P2PMEM_SHARED/kernel/$KERNEL_PKG.tar.xz does not match its SHA256SUMS"
elif [ ! -f "/usr/src/$KERNEL_PKG.tar.xz" ]; then
	log "no shared kernel tarball: installing $KERNEL_PKG from trixie-backports"
	cat >/etc/apt/sources.list.d/p2pmem-trixie-backports.sources <<-EOF
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: trixie-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# Take nothing else from trixie.
	cat >/etc/apt/preferences.d/p2pmem-trixie-backports <<-EOF
		Package: *
		Pin: release n=trixie-backports
		Pin-Priority: 1

		Package: $KERNEL_PKG
		Pin: release n=trixie-backports
		Pin-Priority: 990
	EOF
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"$KERNEL_PKG" >/dev/null
	[ -f "/usr/src/$KERNEL_PKG.tar.xz" ] || die "$KERNEL_PKG did not install /usr/src/$KERNEL_PKG.tar.xz"
fi

# bindgen, at the version the kernel's min-tool-version.sh names, built by Debian's cargo.
if ! "$P2PMEM_CARGO_HOME/bin/bindgen" --version 2>/dev/null | grep -qx "bindgen $BINDGEN_VERSION"; then
	log "installing bindgen-cli $BINDGEN_VERSION from crates.io"
	CARGO_HOME=$P2PMEM_CARGO_HOME /usr/bin/cargo install --quiet --locked --force \
		bindgen-cli --version "$BINDGEN_VERSION"
fi

# virtme-ng, pinned, in its own venv (Debian's python3).
if ! "$P2PMEM_VENV/bin/vng" --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION"; then
	log "installing virtme-ng $VIRTME_NG_VERSION from PyPI"
	/usr/bin/python3 -m venv "$P2PMEM_VENV"
	"$P2PMEM_VENV/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION"
fi

# Check what we got.
ok=1
check() { # name, command, expected substring
	local out
	out=$(eval "$2" 2>&1 | head -n 1) || true
	if [[ "$out" == *"$3"* ]]; then
		log "ok: $1: $out"
	else
		log "WRONG: $1: wanted '$3', got '${out:-nothing}'"
		ok=0
	fi
}
check rustc "/usr/bin/rustc --version" "rustc 1."
check rust-src "ls /usr/lib/rustlib/src/rust/library/core/src/lib.rs" "lib.rs"
check clang "clang-19 --version" "version 19."
check ld.lld "ld.lld-19 --version" "LLD 19."
check bindgen "$P2PMEM_CARGO_HOME/bin/bindgen --version" "bindgen $BINDGEN_VERSION"
check qemu "qemu-system-x86_64 --version" "QEMU emulator"
check vng "$P2PMEM_VENV/bin/vng --version" "$VIRTME_NG_VERSION"
check udevadm "udevadm --version" ""
check fio "fio --version" "fio-"
[ "$ok" = 1 ] || die "the toolchain is incomplete (see WRONG lines above)"
log "setup complete"
