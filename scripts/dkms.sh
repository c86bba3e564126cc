#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The DKMS packaging, checked on the host (as root, no VM):
#   scripts/dkms.sh KDIR OUTDIR   builds the Debian package p2pmem-dkms in a copy of the tree,
#                                 checks what it holds, has dkms add, build, install and remove
#                                 the packaged source against the kernel build tree KDIR, checks
#                                 that dkms refuses a kernel without CONFIG_RUST/CONFIG_PCI_P2PDMA,
#                                 and leaves the module dkms built in OUTDIR/p2pmem-dkms.ko
#   scripts/dkms.sh --deb OUTDIR  only builds OUTDIR/p2pmem-dkms_<version>_all.deb
# Prints one "ok - dkms: ..." or "not ok - dkms: ..." line per check; exits non-zero if any
# failed. Never touches the repository or the machine's DKMS state: dkms runs on trees in a
# temporary directory (--dkmstree, --sourcetree, --installtree), with --no-depmod.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { die "usage: $0 KDIR OUTDIR | $0 --deb OUTDIR"; }
[ $# -eq 2 ] || usage
deb_only=0 kdir=""
if [ "$1" = --deb ]; then
	deb_only=1
else
	kdir=$(cd "$1" && pwd) || die "no kernel build tree $1"
	if [ ! -f "$kdir/.config" ] || [ ! -f "$kdir/include/config/kernel.release" ]; then
		die "$kdir is not a configured kernel build tree"
	fi
fi
mkdir -p "$2"
outdir=$(cd "$2" && pwd)
[ "$(id -u)" = 0 ] || die "run as root (dkms needs it)"
if ! command -v dkms >/dev/null || ! command -v dh_dkms >/dev/null; then
	die "dkms and dh-dkms are not installed (scripts/setup.sh installs them)"
fi

ver=$(sed -n 's/^PACKAGE_VERSION="\([^"]*\)"$/\1/p' "$P2PMEM_ROOT/dkms.conf")
[ -n "$ver" ] || die "no PACKAGE_VERSION=\"x.y.z\" line in dkms.conf"
deb_name=p2pmem-dkms_${ver}_all.deb

start=$(date +%s)
tmp=$(mktemp -d /tmp/p2pmem-dkms.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log # everything the tools print; shown when a check fails

failed=0
result() { # what, status
	: >"$log"
	if [ "$2" -eq 0 ]; then
		echo "ok - dkms: $1"
	else
		echo "not ok - dkms: $1"
		failed=1
	fi
}
fail() { # the reason a check fails, with the tools' last words
	echo "dkms.sh: $*" >&2
	[ -s "$log" ] && tail -n 30 "$log" | sed 's/^/    /' >&2
	return 1
}
step_time() { log "$1: $(($(date +%s) - $2)) s"; }

# dkms, as apt or the kernel's postinst hook run it (root's plain PATH, so bindgen comes from
# dkms.conf's own search), on a private DKMS tree $1 and the packaged source tree.
src_tree=$tmp/root/usr/src
mod_tree=$tmp/modules
dk() {
	local tree=$1
	shift
	mkdir -p "$tree" "$mod_tree"
	env PATH=/usr/sbin:/usr/bin:/sbin:/bin dkms "$@" --dkmstree "$tree" \
		--sourcetree "$src_tree" --installtree "$mod_tree"
}

# What dkms changes outside its options' trees: its global tree, /usr/src, /lib/modules.
global_state() {
	{ find /var/lib/dkms /usr/src /lib/modules -maxdepth 3 -printf '%p %y %s %T@\n' 2>/dev/null ||
		true; } | sort # (a missing one is a state too)
}
global_state >"$tmp/state.before"

# a. The Debian package, built the Debian way (dh, dh-dkms) in a copy of the working tree,
# build leftovers included: debian/rules must pick the sources itself. debian/changelog is
# generated from dkms.conf's version (debian/rules debian/changelog).
build_deb() {
	local t0 copy=$tmp/pkg/p2pmem-$ver
	t0=$(date +%s)
	mkdir -p "$copy"
	# tar's status 1: a file changed while it was read (someone is editing the tree).
	{ tar -C "$P2PMEM_ROOT" --exclude=./.git --exclude=./.mutants --exclude=./.dkms \
		--exclude=./tools/testing/host/target --warning=no-file-changed -cf - . || [ $? -eq 1 ]; } |
		tar -C "$copy" -xf - || fail "cannot copy the tree" || return 1
	rm -f "$copy/debian/changelog"
	(cd "$copy" && debian/rules debian/changelog && dpkg-buildpackage -b -us -uc) >>"$log" 2>&1 ||
		fail "dpkg-buildpackage failed" || return 1
	[ -f "$tmp/pkg/$deb_name" ] || fail "dpkg-buildpackage made no $deb_name" || return 1
	step_time "Debian package" "$t0"
}

if [ "$deb_only" = 1 ]; then
	build_deb || die "the package did not build"
	cp "$tmp/pkg/$deb_name" "$outdir/"
	log "$outdir/$deb_name"
	exit 0
fi

rc=0
build_deb || rc=$?
result "Debian package $deb_name builds (dh, dh-dkms; in a copy of the tree)" $rc
deb=$tmp/pkg/$deb_name

# What the package holds: dkms.conf and every source under /usr/src/p2pmem-<ver>/, nothing
# generated, nothing else but its doc.
check_contents() {
	local files f missing="" extra
	[ -f "$deb" ] || fail "no package" || return 1
	[ "$(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')" = \
		"Package: p2pmem-dkms Version: $ver Architecture: all " ] ||
		fail "wrong control fields: $(dpkg-deb -f "$deb" Package Version Architecture)" || return 1
	files=$(dpkg-deb --contents "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
	for f in dkms.conf Kbuild Makefile scripts/check-p2pdma-layout.sh \
		$(cd "$tmp/pkg/p2pmem-$ver" && { ls src/*.rs src/*.c && find include -type f; } |
			grep -v '_generated\.rs$'); do
		grep -qxF "/usr/src/p2pmem-$ver/$f" <<<"$files" || missing+=" $f"
	done
	[ -z "$missing" ] || fail "the package lacks:$missing" || return 1
	extra=$(grep -vE "^/(usr/?|usr/src/?|usr/share/?|usr/share/doc/?|usr/share/doc/p2pmem-dkms/.*|usr/src/p2pmem-$ver/.*)?\$" <<<"$files" || true)
	[ -z "$extra" ] || fail "files outside /usr/src/p2pmem-$ver: $extra" || return 1
	extra=$(grep -E '(\.(o|ko|a|mod|mod\.c|cmd|rmeta|rlib|d)|_generated\.rs|/Module\.symvers|/modules\.order|/\.[^/]+)$' <<<"$files" || true)
	[ -z "$extra" ] || fail "generated files in the package: $extra" || return 1
}
rc=0
check_contents || rc=$?
result "package holds /usr/src/p2pmem-$ver/dkms.conf and the sources, no generated file" $rc

# The maintainer scripts dh_dkms writes: dkms add/build/install on configure (through dkms's
# common.postinst), dkms remove on removal.
check_scripts() {
	# shellcheck disable=SC2016 # the prerm's own words
	local remove='dkms remove -m $DKMS_NAME -v $DKMS_VERSION --all'
	[ -f "$deb" ] || fail "no package" || return 1
	dpkg-deb -e "$deb" "$tmp/control" || fail "dpkg-deb -e failed" || return 1
	grep -q '^DKMS_NAME=p2pmem$' "$tmp/control/postinst" &&
		grep -q "^DKMS_VERSION=$ver\$" "$tmp/control/postinst" &&
		grep -q '/usr/lib/dkms/common.postinst' "$tmp/control/postinst" ||
		fail "postinst is not dh_dkms's for p2pmem $ver" || return 1
	grep -q "^DKMS_VERSION=$ver\$" "$tmp/control/prerm" &&
		grep -qF "$remove" "$tmp/control/prerm" ||
		fail "prerm does not dkms remove p2pmem $ver" || return 1
}
rc=0
check_scripts || rc=$?
result "package's postinst and prerm run dkms add/build/install and dkms remove (dh_dkms)" $rc

# b. dkms add and build the packaged source (dpkg-deb -x) against KDIR.
rel=$(cat "$kdir/include/config/kernel.release")
arch=$(uname -m)
ko=$tmp/dkms/p2pmem/$ver/$rel/$arch/module/p2pmem.ko
dkms_build() {
	local t0
	t0=$(date +%s)
	[ -f "$deb" ] || fail "no package" || return 1
	dpkg-deb -x "$deb" "$tmp/root" || fail "dpkg-deb -x failed" || return 1
	dk "$tmp/dkms" add -m p2pmem -v "$ver" >>"$log" 2>&1 || fail "dkms add failed" || return 1
	if ! dk "$tmp/dkms" build -m p2pmem -v "$ver" -k "$rel" -a "$arch" \
		--kernelsourcedir "$kdir" >>"$log" 2>&1; then
		cat "$tmp/dkms/p2pmem/$ver/build/make.log" >>"$log" 2>/dev/null
		fail "dkms build failed" || return 1
	fi
	[ -f "$ko" ] || fail "dkms built no $ko" || return 1
	cp "$ko" "$outdir/p2pmem-dkms.ko" || return 1
	step_time "dkms build" "$t0"
}
rc=0
dkms_build || rc=$?
result "dkms add + dkms build against KDIR ($rel), p2pmem.ko copied to OUTDIR/p2pmem-dkms.ko" $rc

rc=0
v=$(modinfo -F version "$ko" 2>&1) || true
[ "$v" = "$ver" ] || fail "modinfo -F version says '$v', not '$ver'" || rc=1
result "dkms-built p2pmem.ko: modinfo version is $ver (dkms.conf's)" $rc
rc=0
v=$(modinfo -F vermagic "$ko" 2>&1) || true
[[ "$v" == "$rel "* ]] || fail "modinfo -F vermagic says '$v', not '$rel ...'" || rc=1
result "dkms-built p2pmem.ko: vermagic starts with $rel" $rc

# What the postinst and prerm then do: dkms install (into the private install tree) and remove.
dkms_install_remove() {
	local dest=$mod_tree/$rel/updates/dkms/p2pmem.ko
	[ -f "$ko" ] || fail "nothing built" || return 1
	mkdir -p "$mod_tree/$rel"
	dk "$tmp/dkms" install -m p2pmem -v "$ver" -k "$rel" -a "$arch" --kernelsourcedir "$kdir" \
		--no-depmod >>"$log" 2>&1 || fail "dkms install failed" || return 1
	cmp -s "$ko" "$dest" || fail "dkms install did not put p2pmem.ko in $dest" || return 1
	dk "$tmp/dkms" status -m p2pmem -v "$ver" 2>&1 | grep -q "^p2pmem/$ver, $rel, $arch: installed" ||
		fail "dkms status does not say installed: $(dk "$tmp/dkms" status 2>&1)" || return 1
	dk "$tmp/dkms" remove -m p2pmem -v "$ver" --all --no-depmod >>"$log" 2>&1 ||
		fail "dkms remove failed" || return 1
	[ ! -e "$dest" ] || fail "dkms remove left $dest" || return 1
	[ -z "$(dk "$tmp/dkms" status -m p2pmem 2>&1)" ] || fail "dkms remove left p2pmem registered" ||
		return 1
}
rc=0
dkms_install_remove || rc=$?
result "dkms install puts it in /updates/dkms, dkms remove takes it away (private trees)" $rc

# c. A kernel without CONFIG_RUST, or without CONFIG_PCI_P2PDMA: dkms must refuse it
# (BUILD_EXCLUSIVE_CONFIG) with status 77 (what Debian's postinst reports as "Skipped."), each
# option on its own (a BUILD_EXCLUSIVE_CONFIG naming one would pass a test that drops both).
# dkms tests that on the .config before it looks for the kernel's headers, so the .config is all
# the fake kernel needs.
dkms_refuse() { # the option the fake kernel lacks
	local fake=$tmp/no-$1 tree=$tmp/dkms-no-$1 out status=0
	grep -qE '^CONFIG_RUST=y' "$kdir/.config" && grep -qE '^CONFIG_PCI_P2PDMA=y' "$kdir/.config" ||
		fail "$kdir/.config lacks CONFIG_RUST or CONFIG_PCI_P2PDMA itself" || return 1
	[ -d "$src_tree/p2pmem-$ver" ] || fail "no packaged source" || return 1
	mkdir -p "$fake"
	grep -vE "^$1=" "$kdir/.config" >"$fake/.config"
	dk "$tree" add -m p2pmem -v "$ver" >>"$log" 2>&1 || fail "dkms add failed" || return 1
	out=$(dk "$tree" build -m p2pmem -v "$ver" -k "$rel+no-$1" -a "$arch" \
		--kernelsourcedir "$fake" 2>&1) || status=$?
	echo "$out" >>"$log"
	[ "$status" -eq 77 ] || fail "dkms build exited with $status, not 77" || return 1
	grep -qF 'includes a BUILD_EXCLUSIVE directive which does not match this kernel/arch/config' \
		<<<"$out" || fail "dkms build did not print its BUILD_EXCLUSIVE message" || return 1
	[ -z "$(find "$tree" -name 'p2pmem.ko*')" ] || fail "a p2pmem.ko was built" || return 1
}
for option in CONFIG_RUST CONFIG_PCI_P2PDMA; do
	rc=0
	dkms_refuse $option || rc=$?
	result "dkms build refuses a kernel without $option (BUILD_EXCLUSIVE, status 77)" $rc
done

rc=0
global_state >"$tmp/state.after"
diff "$tmp/state.before" "$tmp/state.after" >&2 ||
	fail "the machine's DKMS state changed (/var/lib/dkms, /usr/src, /lib/modules)" || rc=1
result "the machine's DKMS state is untouched (/var/lib/dkms, /usr/src, /lib/modules)" $rc

log "dkms.sh took $(($(date +%s) - start)) s"
[ "$failed" = 0 ]
