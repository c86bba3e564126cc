#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Mutation check of the selftests: builds p2pmem.ko with one known defect at a time (or at an
# older commit), boots the test bed once per mutant with the selftests that must catch it, and
# prints a table of what went red. Every mutant must be caught: the command exits non-zero when
# one survives (its selftests passed), and when a mutation no longer applies to the source.
#
#   scripts/mutants.sh              every mutant below
#   scripts/mutants.sh NAME...      those mutants only
#   scripts/mutants.sh --list       their names and what each breaks
#
# Slow (a boot, a module build and minutes of selftests per mutant), so it is run by hand and
# its table goes into the closing notes, not into CI. Each mutant's guest output and kernel
# console are kept in .mutants/NAME/run.log and .mutants/NAME/console.log.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$P2PMEM_ROOT"

# name | file | text in the file | what replaces it | selftests to run (and harness options) |
# the red checks that must catch it (extended regular expressions over the "not ok" lines, any
# of them; a comma separates them) | what it breaks. A second edit of the same mutant is a
# further line with the same name (only the first line's last three fields count). A file of
# "rev:X" builds the module of commit X as it was (the regression tests' red-before runs).
MUTANTS=$(cat <<'EOF'
no-return|src/pgmap.rs|this.owner.page_freed(pfn.wrapping_sub(this.first_pfn));|let _ = pfn;|region_test -r region.ivshmem.shared_mapping_takes_and_returns_pages|region\.ivshmem\.shared_mapping_takes_and_returns_pages,the guest died|folio_free forgets to give the page back to the tracker
leaked-ref|src/pgmap.rs|unsafe { p2p_bindings::p2pmem_put_page(self.page.as_ptr()) };|let _ = self.page;|region_test -r region.ivshmem.shared_mapping_takes_and_returns_pages|region\.ivshmem\.shared_mapping_takes_and_returns_pages,the guest died|every page handed out keeps one reference too many (a leak)
no-zap|src/cdev.rs|unsafe { bindings::unmap_mapping_range((*self.ptr.as_ptr()).i_mapping, 0, 0, 1) };|let _ = self.ptr;|region_test -r region.ivshmem.unbind_revokes_a_live_mapping|unbind_revokes_a_live_mapping,cannot be killed,the guest died|unbind does not unmap the user mappings
early-free|src/pgmap.rs|if unsafe { p2p_bindings::p2pmem_page_count(page) } != 0 {|if unsafe { p2p_bindings::p2pmem_page_count(page) } < 0 {|stress_test -v ivshmem|stress\.ivshmem\.bind_unbind_under_checked_o_direct_load|a page goes back to the allocator while mapped and is handed out again (two users of one page: DMA lands in the other's buffer)
early-free|src/pgmap.rs|Ok(page) => page.insert_into(mixed, address),|Ok(page) => { let r = page.insert_into(mixed, address); self.owner.page_freed(index); r }|||
early-free|src/region.rs|self.hint.store(word, Ordering::Relaxed);|self.hint.store(0, Ordering::Relaxed);|||
dma-elsewhere|src/p2pdma.rs|let ptr = unsafe { p2p_bindings::pcim_p2pdma_provider(as_raw(pdev), i32::from(bar)) };|let ptr = unsafe { p2p_bindings::pcim_p2pdma_provider(as_raw(pdev), i32::from(bar)) }; if let Some(p) = unsafe { ptr.as_mut() } { p.bus_offset = p.bus_offset.wrapping_add(4096); }|stress_test -v ivshmem|stress\.ivshmem\.bind_unbind_under_checked_o_direct_load|the provider's bus offset is one page off: every peer DMA lands in the next page of the BAR (refcounts intact, so only the bytes can tell)
tool-dma-elsewhere|src/p2pdma.rs|let ptr = unsafe { p2p_bindings::pcim_p2pdma_provider(as_raw(pdev), i32::from(bar)) };|let ptr = unsafe { p2p_bindings::pcim_p2pdma_provider(as_raw(pdev), i32::from(bar)) }; if let Some(p) = unsafe { ptr.as_mut() } { p.bus_offset = p.bus_offset.wrapping_add(4096); }|tool_test.sh|check, ivshmem's memory|the dma-elsewhere defect, seen by the admin tool's check (its O_DIRECT round trip compares the bytes)
ids-ignored|src/shim.c|	return pci_add_dynid(to_pci_driver(drv), vendor, device, subvendor, subdevice,|	return drv ? 0 : pci_add_dynid(to_pci_driver(drv), vendor, device, subvendor, subdevice,|bind_test -t ids_binds_a_device_without_a_driver|ids_binds_a_device_without_a_driver|the ids= IDs are checked but never added to the driver
ids-any-subsystem|src/pci_dynid.rs|            id.subvendor,|            !0,|bind_test -t ids_compare_every_field|ids_compare_every_field|the subsystem vendor of an ids= entry is dropped (any matches)
pin-leak|src/gup.rs|        if self.pages.is_empty() {|        if !self.pages.is_empty() {|gup_test -r gup.kernel_pool_ivshmem.pin_anonymous_memory_with_every_flag|gup\.kernel_pool_ivshmem\.pin_anonymous_memory_with_every_flag|the pin ioctl never unpins (a pin leaked on anonymous memory is seen only by the pin counters)
kmalloc-tracker|src/tracker.rs|    pool: PagePool<KVVec<AtomicU64>>,|    pool: PagePool<KVec<AtomicU64>>,|bind_test -t tracker_fits_a_256_gib_region|tracker_fits_a_256_gib_region|the page tracker's bitmap is one kmalloc() (issue 9.9 before the fix): no region over 128 GiB can be bound
kmalloc-tracker|src/tracker.rs|let mut bits = KVVec::with_capacity(words, GFP_KERNEL)?;|let mut bits = KVec::with_capacity(words, GFP_KERNEL)?;|||
unlimited-complaints|src/tracker.rs|            if reported < BAD_FREE_REPORTS {|            if reported < u32::MAX {|bind_test -t bad_frees_are_reported_ten_times_then_not|bad_frees_are_reported_ten_times_then_not|every page freed that was not out is logged, from any context (no limit)
probe-leak|src/p2pmem.rs|let enabled = pci_bar::MemEnabled::new(pdev)?;|let enabled = pci_bar::MemEnabled::new(pdev)?; core::mem::forget(KBox::new([0u8; 64], GFP_KERNEL)?);|bind_test -t ivshmem_binds_by_id|kmemleak reports no leak|every probe leaks 64 bytes
layout-guard|src/p2pdma.rs|.add(size_of::<bindings::dev_pagemap>())|.add(size_of::<bindings::dev_pagemap>() - 8)|bind_test -t ivshmem_binds_by_id|p2pmem\.ivshmem_binds_by_id|the kernel's struct pci_p2pdma_pagemap seen with another layout: the provider pointer is not where the module looks
unbind-clock-order|src/p2pmem.rs|clock.stamp(Step::Unpublished);|clock.stamp(Step::Unpublished); clock.stamp(Step::Begin);|bind_test -t unbind_reports_its_steps|unbind_reports_its_steps|the unbind's start is stamped after its first step (a step of the breakdown comes out negative)
scattered-alloc|src/region.rs|const RUN_ATTEMPTS: usize = 3;|const RUN_ATTEMPTS: usize = 0;|region_test -r region.ivshmem.a_mapping_takes_a_contiguous_run_when_one_is_free|region\.ivshmem\.a_mapping_takes_a_contiguous_run_when_one_is_free|the allocator never looks for a contiguous run: a mapping takes the first free pages, scattered
cdev-late|src/p2pmem.rs|this.cdev.remove();|let _ = cdev::Cdev::remove;|region_test -r region.ivshmem.unbind_waits_for_o_direct_in_flight|region\.ivshmem\.unbind_waits_for_o_direct_in_flight|/dev/p2pmemN is removed after the drain, with the driver data, not at the start of unbind
old-inode|rev:b546a0e|||bind_test -t node_on_an_unmounted_tmpfs_is_not_kept|node_on_an_unmounted_tmpfs_is_not_kept,bind_test: kernel log clean,the guest died: (BUG,KASAN,Oops)|the module before issue 9: keeps the first opener's inode (a tmpfs node, then unmounted)
EOF
)

if [ "${1:-}" = --list ]; then
	echo "$MUTANTS" | awk -F'|' '$7 != "" { printf "%-14s %s\n", $1, $7 }'
	exit 0
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(echo "$MUTANTS" | cut -d'|' -f1 | uniq)

kdir=$(prepare_module) || die "cannot build the module"
make -s -C tools/testing/selftests/p2pmem KDIR="$kdir" LLVM="$LLVM_SUFFIX" \
	P2PMEM_SYMVERS="$P2PMEM_ROOT/Module.symvers" >/dev/null || die "cannot build the selftests"

# Applies one edit to a file: the text must be there exactly once.
edit() { # file old new
	python3 - "$@" <<-'PY'
		import sys
		path, old, new = sys.argv[1:4]
		text = open(path).read()
		if text.count(old) != 1:
		    sys.exit(f"{path}: the mutation's text occurs {text.count(old)} times, not once")
		open(path, "w").write(text.replace(old, new))
	PY
}

build_mutant() { # name dir
	local name=$1 dir=$2 file old new rest
	rm -rf "$dir"
	mkdir -p "$dir/tree"
	while IFS='|' read -r n file old new rest; do
		[ "$n" = "$name" ] || continue
		if [[ "$file" == rev:* ]]; then
			git archive "${file#rev:}" | tar -x -C "$dir/tree" || return 1
			continue
		fi
		[ -e "$dir/tree/Kbuild" ] || cp -r src include scripts Kbuild Makefile dkms.conf "$dir/tree/"
		edit "$dir/tree/$file" "$old" "$new" || return 1
	done <<<"$MUTANTS"
	make -s -C "$dir/tree" KDIR="$kdir" modules >"$dir/build.log" 2>&1 ||
		{ tail -n 20 "$dir/build.log"; return 1; }
	cp "$dir/tree/p2pmem.ko" "$dir/p2pmem.ko"
}

caught=0 survived=0 broken=0
table=()
for name in "${names[@]}"; do
	line=$(echo "$MUTANTS" | awk -F'|' -v n="$name" '$1 == n { print; exit }')
	[ -n "$line" ] || die "no mutant named $name (--list)"
	IFS='|' read -r _ _ _ _ tests expect what <<<"$line"
	# Inside the repository (ignored by git): guests did not see modules built under
	# /var/cache/p2pmem/mutants (insmod found no file there).
	dir=$P2PMEM_ROOT/.mutants/$name
	log "mutant $name: $what"
	if ! build_mutant "$name" "$dir"; then
		table+=("$name|does not build or apply|-")
		broken=$((broken + 1))
		continue
	fi
	prog=${tests%% *}
	args=${tests#"$prog"}
	start=$(date +%s)
	# A boot the kernel tainted itself before any test (run_tests.sh's status 3) is booted again.
	for try in 1 2 3; do
		P2PMEM_KO=$dir/p2pmem.ko P2PMEM_TESTS=$prog P2PMEM_ARGS=${args# } \
			P2PMEM_PROGRAM_TIMEOUT=${P2PMEM_PROGRAM_TIMEOUT:-150} \
			P2PMEM_STRESS_LOOPS=${P2PMEM_STRESS_LOOPS:-5} \
			P2PMEM_CONSOLE_LOG=$dir/console.log scripts/vm.sh --timeout 900 -- \
			tools/testing/selftests/p2pmem/run_tests.sh >"$dir/run.log" 2>&1
		rc=$?
		[ $rc -eq 3 ] && grep -q 'selftests: not run: the kernel was tainted at boot' \
			"$dir/run.log" || break
		log "mutant $name: the kernel was tainted at boot (try $try); booting again"
	done
	took=$(($(date +%s) - start))
	out=$dir/run.log
	summary=$(tr -d '\r' <"$out" | grep -E '^selftests: [0-9]+ passed' | tail -n 1)
	tr -d '\r' <"$out" | grep -E '^not ok' | sed -E 's/^not ok [0-9]* ?-? ?//' >"$dir/red"
	# A guest that died reported nothing: its console's first kernel report speaks for it.
	[ -s "$dir/red" ] || [ -n "$summary" ] ||
		tr -d '\r' <"$dir/console.log" |
		grep -m1 -oE '(BUG|KASAN|Oops|WARNING|Kernel panic)[: ].*' |
		sed 's/^/the guest died: /' >"$dir/red"
	[ -s "$dir/red" ] || [ -n "$summary" ] ||
		echo "the guest died: no status and no kernel report" >"$dir/red"
	red=$(head -n 3 "$dir/red" | paste -sd ';' -)
	if [ $rc -ne 0 ] && grep -qE "${expect//,/|}" "$dir/red"; then
		caught=$((caught + 1))
		table+=("$name|caught in ${took} s (status $rc)|$red")
	elif [ $rc -ne 0 ]; then
		# Red, but not where it should be: the check meant for it may be blind.
		survived=$((survived + 1))
		table+=("$name|NOT CAUGHT BY ${expect} (status $rc)|${red:-no summary: the guest died (see run.log)}")
	else
		survived=$((survived + 1))
		table+=("$name|SURVIVED (${summary:-no summary}, status $rc)|-")
	fi
done

printf '\n| mutant | result | first red checks |\n|---|---|---|\n'
for row in "${table[@]}"; do
	IFS='|' read -r a b c <<<"$row"
	printf '| %s | %s | %s |\n' "$a" "$b" "$c"
done
echo "mutants: $caught caught, $survived survived, $broken broken"
[ $survived -eq 0 ] && [ $broken -eq 0 ]
