#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the p2pmem selftests inside the test-bed guest and prints their TAP, then ends with
#   selftests: N passed, N failed, N skipped
# and exits non-zero when anything failed.
#
#   run_tests.sh            the programs in $P2PMEM_TESTS (default: all), with the checks below
#   run_tests.sh --budget   prints how many seconds a run of those programs may take at most
#
# Exit status: 0 all passed, 1 something failed, 3 not run (the kernel was tainted at boot),
# 4 skipped (not root).
#
# P2PMEM_ARGS gives every program the same arguments (kselftest_harness's "-t TEST", say).
#
# Around the programs:
# - kmemleak self-test first: the test consumer leaks 8 objects on purpose, and kmemleak's
#   scans (two, 6 s apart, then more, up to 6 in all: a stale copy of a pointer hides an
#   object until it is overwritten) must report at least one; three scans at the end must
#   report nothing.
# - After every program, its part of the kernel log must be clean: no WARN, BUG, KASAN, UBSAN,
#   lockdep, RCU stall, hung task, soft lockup or atomic-sleep report, no new taint (but the
#   O and E an out-of-tree module sets), and no record at KERN_WARNING or worse from p2pmem or
#   p2pmem_consumer unless expect_warn below says that program provokes it.
# - Every program has its own timeout. One that cannot be killed (a task stuck in the kernel,
#   e.g. an unbind that never finishes) ends the run: the rest are skipped, and once the
#   summary is printed the guest is reset, since it could not shut down by itself.
set -u
cd "$(dirname "$0")"
TOP=$(cd ../../../.. && pwd)
export P2PMEM_KO=${P2PMEM_KO:-$TOP/p2pmem.ko}
CONSUMER_KO=${P2PMEM_CONSUMER_KO:-$PWD/consumer/p2pmem_consumer.ko}
TESTS=${P2PMEM_TESTS:-bind_test probe_fault_test region_test gup_test huge_test nvmet_test.sh consumer_test.sh tool_test.sh stress_test}

# Seconds each program may take under TCG with KASAN, lockdep and kmemleak: about twice what it
# took in the slowest clean run on record (in seconds, 2026-12-02, a whole run of 1870 s from
# boot: bind_test 123, probe_fault_test 144, region_test 209, gup_test 179, nvmet_test.sh 93,
# consumer_test.sh 177, tool_test.sh 319, stress_test 177; the boot 144, the kmemleak self-test
# 76, the final scan 62). Their sum, with the overhead and the boot, must leave a cold CI run
# (about 20 minutes of setup and kernel build first) inside its 90 minutes even when every
# program runs to its limit. P2PMEM_PROGRAM_TIMEOUT overrides them all (e.g. for a long stress
# run).
declare -A timeout_s=(
	[bind_test]=260
	[probe_fault_test]=300
	[region_test]=420
	[gup_test]=360
	[huge_test]=200
	[nvmet_test.sh]=200
	[consumer_test.sh]=360
	[tool_test.sh]=640
	[stress_test]=360
)
DEFAULT_TIMEOUT=300
# What the run costs besides the programs: the kmemleak self-test and final scan, the log checks.
OVERHEAD=300

# Reports that fail whichever program they appear under, at any log level.
BAD='WARNING:|BUG:|KASAN|UBSAN|general protection|Oops|kernel BUG|Kernel panic|'\
'possible circular locking|possible recursive locking|inconsistent lock state|'\
'suspicious RCU|lock held when returning|rcu_sched self-detected stall|rcu: INFO:|'\
'detected stall|INFO: task .* blocked for more than|hung_task|soft lockup|'\
'sleeping function called from invalid context|refcount_t:|list_add corruption|'\
'list_del corruption|'\
'I/O error, dev |Buffer I/O error|critical medium error|blk_print_req_error|'\
'nvme[0-9]+: I/O tag [0-9]+ .*timeout|Data Transfer Error'
# Taint bits an out-of-tree module sets: O (12) and E (13, unsigned).
TAINT_EXPECTED=$(((1 << 12) | (1 << 13)))
TAINT_LETTERS=PFSRMBUDAWCIOELKXTNJ

budget() {
	local t total=$OVERHEAD
	for t in $TESTS; do
		total=$((total + ${P2PMEM_PROGRAM_TIMEOUT:-${timeout_s[$t]:-$DEFAULT_TIMEOUT}}))
	done
	echo "$total"
}
if [ "${1:-}" = --budget ]; then
	budget
	exit 0
fi

pass=0 fail=0 skip=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }
comment() { sed 's/^/# /'; }
tap_count() { # file: adds its per-test results to the totals
	local p f s
	p=$(grep -cE '^ok [0-9]+ ' "$1")
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$1")
	f=$(grep -cE '^not ok [0-9]+ ' "$1")
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
}
tap_complete() { # file: its plan (the first "1..N") is N > 0 and it has N results
	local plan results
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$1" | head -n 1)
	results=$(grep -cE '^(not )?ok [0-9]+ ' "$1")
	[ -n "$plan" ] && [ "$plan" -gt 0 ] && [ "$results" -eq "$plan" ]
}
summary() {
	echo "selftests: $pass passed, $fail failed, $skip skipped"
}

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root"
	skip=1
	summary
	exit 4
fi
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
KMEMLEAK=/sys/kernel/debug/kmemleak

# virtme's channel for our exit status. Its init runs us on virtio-serial ports and reports our
# status there itself; when the ports were not there yet when it looked (a slow guest), it runs
# us on the console instead ("console fallback") and reports no status, so virtme returns 255
# for every run. Then we report it ourselves, on the port found by its name.
ret_port() {
	local p dev
	for p in /dev/virtme.ret /dev/virtio-ports/virtme.ret; do
		[ -e "$p" ] && { echo "$p"; return 0; }
	done
	for p in /sys/class/virtio-ports/*/name; do
		[ "$(cat "$p" 2>/dev/null)" = virtme.ret ] || continue
		dev=${p%/name}
		dev=/dev/${dev##*/}
		[ -e "$dev" ] && { echo "$dev"; return 0; }
	done
	return 1
}
# Its init links /dev/virtme.ret to the port before it starts us on the ports, not otherwise.
if [ -e /dev/virtme.ret ]; then
	init_reports_status=1
	echo "# virtme runs us on its virtio-serial ports"
else
	init_reports_status=0
	echo "# virtme runs us on the console (its init found no virtio-serial ports): we report our status ourselves"
fi

# The test bed's devices, for the records below (escaped for a regular expression). The NVMe
# controllers are probed asynchronously: on the test bed (QEMU NVMe present), wait until their
# serials are readable, at most 60 s.
. ./lib.sh
if lspci -n -d 1b36:0010 | grep -q .; then
	for _ in $(seq 60); do
		[ -n "$(nvme_bdf_by_serial p2pmem-data)" ] && [ -n "$(nvme_bdf_by_serial p2pmem-cmb)" ] &&
			break
		sleep 1
	done
fi
regex_quote() { printf '%s' "$1" | sed 's/[][\\.*^$()+?{}|]/\\&/g'; }
IVSHMEM_RE=$(regex_quote "$(ivshmem_bdf)")
CMB_RE=$(regex_quote "$(cmb_bdf)")
DATA_RE=$(regex_quote "$(nvme_bdf_by_serial p2pmem-data)")
# Records at KERN_WARNING or worse from p2pmem that a program provokes on purpose, one per line:
# "COUNT REGEX". REGEX is an extended regular expression over the whole record ("<level> text"),
# anchored at both ends; COUNT is how many records a whole run of the program logs that match
# it, or "*" where that number follows the code (one per fault point that probe reaches). Any
# other record fails the program, and so does another count when the program ran whole (no
# P2PMEM_ARGS).
declare -A expect_warn=(
	# The first load of the boot taints the kernel, and says so (once a boot: the kmemleak
	# self-test's, unless something loaded an out-of-tree module before this run).
	[kmemleak_self_test]='* ^<4> p2pmem: loading out-of-tree module taints kernel\.$'
	# Module parameters (ids= among them; and the kernel's own line for the ids= too long, cut by
	# printk) and devices it must refuse, and the driver core's line for each probe that fails
	# with EINVAL (drivers/base/dd.c; ENODEV and ENXIO are logged at debug level);
	# the tracker's complaints about a page freed that was not out, made on purpose: ten, then
	# one line saying it goes quiet.
	[bind_test]="1 ^<3> p2pmem: bar=9 is not a BAR index \\(0-5, or -1 for auto\\)\$
1 ^<3> p2pmem: size=0x3039 is not a multiple of 2 MiB\$
1 ^<3> p2pmem: ids: entry 1 \"1b36\": too few fields \\(.*\\)\$
1 ^<3> p2pmem: ids: entry 2 \"1b36:zz\": device is not a hexadecimal number of 1-8 digits\$
1 ^<3> p2pmem: ids: entry 1 \"10000:0010\": vendor 0x10000 is out of range \\(at most 0xffff or ffffffff\\)\$
1 ^<3> p2pmem: ids: entry 1 \"1:2:3:4:5:6:7\": too many fields \\(.*\\)\$
1 ^<3> p2pmem: ids: entry 1 \"1b36:0010:ffffffff:ffffffff:010802\": class 0x010802 has bits outside class_mask 0x000000\$
1 ^<3> p2pmem: ids: entry 1 \"ffffffff:ffffffff\": matches every PCI device\$
1 ^<3> p2pmem: \`1af4:1110,,,.*\$
2 ^<3> p2pmem $DATA_RE: cannot donate memory: NVMe controller without a Controller Memory Buffer\$
1 ^<3> p2pmem $IVSHMEM_RE: cannot donate memory: BAR 1 is not an implemented memory BAR\$
2 ^<3> p2pmem $IVSHMEM_RE: cannot donate memory: offset=0x8000000 size=0x0 does not fit in BAR 2 of 0x4000000 bytes\$
3 ^<3> p2pmem $IVSHMEM_RE: probe with driver p2pmem failed with error -22\$
10 ^<4> p2pmem: page 0 freed but not handed out: NotAllocated\$
1 ^<4> p2pmem: more pages freed but not handed out; not reporting them\$"
	# The probes failed on purpose by fault injection say which step failed with ENOMEM (or
	# EBUSY: pci_request_region()'s failed allocation), the driver core says the probe failed,
	# and the PCI core's own warnings for the allocations failed under pci_request_region()
	# and pci_enable_device_mem() (ACPI's IRQ routing) name our device.
	[probe_fault_test]="* ^<3> p2pmem ($CMB_RE|$IVSHMEM_RE): (kernel P2PDMA pool|memremap_pages|no P2PDMA provider|cannot map the registers to disable the CMB): ENOMEM\$
* ^<3> p2pmem ($CMB_RE|$IVSHMEM_RE): BAR 2 is busy: EBUSY\$
* ^<3> p2pmem ($CMB_RE|$IVSHMEM_RE): probe with driver p2pmem failed with error -(12|16)\$
* ^<4> p2pmem ($CMB_RE|$IVSHMEM_RE): BAR [0-5]: can't reserve \\[mem 0x[0-9a-f]+-0x[0-9a-f]+( 64bit)?( pref)?\\]\$
* ^<[34]> p2pmem ($CMB_RE|$IVSHMEM_RE): PCI INT [A-D]: no GSI\$"
	# nvmet refusing our BDF with the pool absent (pool_size=0): the kernel's own line, logged
	# on our device (the refusal while unbound is logged on the bare PCI device).
	[nvmet_test.sh]="1 ^<3> p2pmem $IVSHMEM_RE: PCI device has no peer-to-peer memory: $IVSHMEM_RE\$"
	# huge_test's bad small_pages_size, refused by the probe: an unaligned size (at the load and
	# at an explicit bind) and one that leaves no folio, with the driver core's line for each.
	[huge_test]="2 ^<3> p2pmem $IVSHMEM_RE: cannot donate memory: small_pages_size=0x1000 is not a multiple of 2 MiB\$
1 ^<3> p2pmem $IVSHMEM_RE: cannot donate memory: small_pages_size=0x[0-9a-f]+ leaves no 2 MiB folio of the 0x[0-9a-f]+ byte region\$
3 ^<3> p2pmem $IVSHMEM_RE: probe with driver p2pmem failed with error -22\$"
	# The admin tool's bind of the data NVMe, which has no CMB: refused by the probe, undone.
	[tool_test.sh]="1 ^<3> p2pmem $DATA_RE: cannot donate memory: NVMe controller without a Controller Memory Buffer\$"
	# The slow long-term holders are named while unbind waits for them: every 5 s of the first
	# one's 20 s and of the time the second one's unbind waits, a number the clock decides.
	[consumer_test.sh]="* ^<4> p2pmem $IVSHMEM_RE: unbind: p2pmem_consumer has not released its P2PDMA memory after 5000 ms\$"
)

# --- the kernel log, one program at a time ---------------------------------------------------
mark_log() { # what: logs a unique mark and sets $mark to it, for log_since
	mark="selftests: p2pmem: $1 at $(date +%s.%N)"
	echo "<6>$mark" >/dev/kmsg
}
# Re-arms every WARN_ON_ONCE, pr_*_once and friends: one that fired in an earlier program (or at
# boot) would be silent in the next.
rearm_once() {
	[ -w /sys/kernel/debug/clear_warn_once ] && echo 1 >/sys/kernel/debug/clear_warn_once
}
log_since() { # mark: the raw records ("<level>[time] text") logged after it; 1 if it is gone
	dmesg -r | awk -v m="$1" 'found { print } index($0, m) { found = 1 } END { exit !found }'
}
taint_masked() {
	echo $(($(cat /proc/sys/kernel/tainted) & ~TAINT_EXPECTED))
}
taint_names() { # bits
	local i out=""
	for ((i = 0; i < ${#TAINT_LETTERS}; i++)); do
		(($1 >> i & 1)) && out="$out ${TAINT_LETTERS:i:1}(bit $i)"
	done
	out=${out# }
	echo "${out:-none}"
}
# Checks what program $1 left in the log since mark $2 and the taint since value $3.
check_log() {
	local t=$1 mark=$2 taint0=$3 taint1 allow=${expect_warn[$1]:-} found=0 count regex n
	local log=/tmp/p2pmem-kmsg.$t

	{
		if ! log_since "$mark" >"$log"; then
			found=1
			echo "the log since $t started is gone (overwritten: more than the buffer logged?)"
		fi
		if grep -nE "$BAD" "$log" >"$log.bad"; then
			found=1
			echo "kernel reports:"
			head -n 20 "$log.bad"
			echo "log from the first one:"
			sed -n "$(head -n 1 "$log.bad" | cut -d: -f1),+59p" "$log"
		fi
		# p2pmem's own records at KERN_WARNING (4) or worse: "p2pmem: ...", "p2pmem_consumer: ..."
		# (pr_*) or "p2pmem 0000:03:00.0: ..." (dev_*).
		awk '{
			if (match($0, /^<[0-9]+>/)) {
				lvl = substr($0, 2, RLENGTH - 2) % 8
				text = substr($0, RLENGTH + 1)
				sub(/^\[[^]]*\] ?/, "", text)
				if (lvl <= 4 && text ~ /^p2pmem(_consumer)?(: | [0-9a-f]+:[0-9a-f]+:)/)
					print "<" lvl "> " text
			}
		}' "$log" >"$log.warn"
		cp "$log.warn" "$log.warn2"
		while read -r count regex; do
			[ -n "$regex" ] || continue
			n=$(grep -cE "$regex" "$log.warn")
			if [ "$count" != "*" ] && [ -z "${P2PMEM_ARGS:-}" ] && [ "$n" -ne "$count" ]; then
				found=1
				echo "$n records match $regex, not $count"
			fi
			grep -vE "$regex" "$log.warn2" >"$log.warn3"
			mv "$log.warn3" "$log.warn2"
		done <<<"$allow"
		# P2PMEM_SHOW_EXPECTED=1: every such record, for writing expect_warn.
		[ -z "${P2PMEM_SHOW_EXPECTED:-}" ] || sed "s/^/$t: expected? /" "$log.warn" | comment >&3
		if [ -s "$log.warn2" ]; then
			found=1
			echo "p2pmem records at KERN_WARNING or worse that $t does not expect:"
			head -n 20 "$log.warn2"
		fi
		taint1=$(taint_masked)
		if [ "$taint1" -ne "$taint0" ]; then
			found=1
			echo "kernel taint changed: $(taint_names "$taint0") -> $(taint_names "$taint1")"
		fi
	} 3>&1 >"$log.why"
	if [ $found -eq 0 ]; then
		ok "$t: kernel log clean"
	else
		not_ok "$t: kernel log clean"
		comment <"$log.why"
	fi
}

# --- bounded commands --------------------------------------------------------------------------
# Runs command $3... with output to $2 in its own session for at most $1 seconds; returns its
# status, 124 when it timed out and was killed, 125 when it or anything it started could not be
# killed (a task stuck in the kernel, e.g. an unbind that never finishes: timeout(1) would wait
# for it forever, and so would the next program).
# Every thread counts (-L): a process whose main thread exited shows as a zombie while another
# of its threads may sleep in the kernel. A zombie thread is no stuck task: it is dead and waits
# to be reaped (its parent killed, perhaps by the harness at a test's timeout, orphans go to
# virtme's init).
session_alive() { # sid
	ps -e -L -o sid=,stat= | awk -v s="$1" '$1 == s && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}
# What is left of session $1, thread by thread, as comments.
session_show() { # sid
	ps -e -L -o sid=,pid=,ppid=,lwp=,stat=,wchan:32=,args= |
		awk -v s="$1" '$1 == s' | comment
}
# Sends signal $1 to every process of session $2: kselftest_harness runs each test in a process
# group of its own, so signalling the group of the program would miss it.
kill_session() { # signal sid
	ps -e -o pid=,sid= | awk -v s="$2" '$2 == s { print $1 }' | xargs -r kill "-$1" 2>/dev/null
}
bounded_timed_out=0
bounded() {
	local limit=$1 out=$2 pid end rc
	shift 2

	bounded_timed_out=0

	setsid "$@" >"$out" 2>&1 </dev/null &
	pid=$!
	# In seconds, not turns of the loop: a fork costs most of a second in a slow guest.
	end=$((SECONDS + limit))
	while [ $SECONDS -lt $end ]; do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill_session TERM "$pid"
		bounded_timed_out=1
		sleep 5
		rc=124
	else
		wait "$pid"
		rc=$?
		session_alive "$pid" || return $rc
	fi
	# Whatever is left of the session: killed, and it must go.
	kill_session KILL "$pid"
	end=$((SECONDS + 20))
	while [ $SECONDS -lt $end ]; do
		session_alive "$pid" || break
		sleep 1
	done
	if session_alive "$pid"; then
		echo "what is left of the session of $1:" | comment
		session_show "$pid"
		return 125
	fi
	wait "$pid" 2>/dev/null
	return $rc
}
# After a command that cannot be killed: the blocked tasks' stacks (sysrq w), as comments.
wedged=""
# The caller's $mark is kept: the program's own log check after this must see all it logged.
report_wedge() { # what
	local program_mark=$mark

	wedged=$1
	echo 1 >/proc/sys/kernel/sysrq
	mark_log "wedged: $1"
	echo w >/proc/sysrq-trigger
	sleep 2
	log_since "$mark" | sed -nE 's/^<[0-9]+>(\[[^]]*\] ?)?//p' | head -n 100 | comment
	mark=$program_mark
}

# --- kmemleak ---------------------------------------------------------------------------------
# Prints what kmemleak reports, after two scans more than 5 s apart: it reports no object
# younger than 5 s (MSECS_MIN_AGE in 7.3.4). Every write is bounded: a scan does not take
# device locks, but be sure.
kmemleak_scan() {
	bounded 300 /dev/null sh -c "echo scan >$KMEMLEAK"
}
kmemleak_report() { # file
	kmemleak_scan || return 1
	sleep 6
	kmemleak_scan || return 1
	bounded 60 "$1" cat "$KMEMLEAK"
}
# More scans, up to MAX in all, until FILE's report has a line matching the awk pattern
# PATTERN: a stale copy of a pointer (a task's stack, a register spilled in a frame not yet
# overwritten) hides an object only until it is overwritten, and kmemleak reports an object
# as soon as one whole scan finds no reference to it. Prints how many scans it took.
kmemleak_report_until() { # file pattern max
	local n=2

	kmemleak_report "$1" || return 1
	while ! awk "$2 { found = 1 } END { exit !found }" "$1"; do
		[ "$n" -lt "$3" ] || { echo "$n"; return 0; }
		sleep 6
		kmemleak_scan || return 1
		bounded 60 "$1" cat "$KMEMLEAK" || return 1
		n=$((n + 1))
	done
	echo "$n"
}
kmemleak_clear() {
	bounded 300 /dev/null sh -c "echo clear >$KMEMLEAK"
}
unload_modules() {
	local m rc

	for m in p2pmem_consumer p2pmem; do
		[ -d "/sys/module/$m" ] || continue
		bounded 120 /tmp/p2pmem-rmmod.log rmmod "$m"
		rc=$?
		if [ $rc -eq 125 ]; then
			not_ok "rmmod $m cannot finish: a task is stuck in the kernel"
			report_wedge "rmmod $m"
			return 1
		fi
		[ $rc -eq 0 ] || { not_ok "rmmod $m (status $rc)"; comment </tmp/p2pmem-rmmod.log; }
	done
	return 0
}
# The checker's self-test: the consumer leaks 8 objects, which the report must name (some).
kmemleak_self_test() {
	local what="kmemleak self-test: of 8 objects leaked on purpose, kmemleak reports some"

	unload_modules || return
	if ! bounded 120 /tmp/p2pmem-insmod.log sh -c "insmod $P2PMEM_KO && insmod $CONSUMER_KO"
	then
		not_ok "$what (cannot load $P2PMEM_KO and $CONSUMER_KO)"
		comment </tmp/p2pmem-insmod.log
	else
		# From a child that exits: a stale copy of the pointer on a live stack would hide it.
		# Forks after it reuse (and zero) the stack it leaves in the per-CPU cache.
		if ! sh -c 'echo 8 >/sys/kernel/debug/p2pmem_consumer/leak'; then
			not_ok "$what (the consumer's leak file refused the write)"
		elif ! for i in 1 2 3 4 5 6 7 8; do /bin/true; done ||
			! scans=$(kmemleak_report_until /tmp/p2pmem-kmemleak.self \
				'/  p2pmem_consumer |leak_set\+0x/' 6); then
			not_ok "$what (a kmemleak scan did not finish)"
		elif awk '/^unreferenced object/ { rec = "" } { rec = rec $0 "\n" }
			/leak_set\+0x|  p2pmem_consumer/ && rec ~ /^unreferenced object/ { found = 1 }
			END { exit !found }' /tmp/p2pmem-kmemleak.self; then
			ok "$what"
			echo "kmemleak reported $(grep -c 'leak_set+0x' /tmp/p2pmem-kmemleak.self) of the 8 after $scans scans" |
				comment
		else
			echo "kmemleak reported none of the 8 after $scans scans" | comment
			not_ok "$what"
			echo "kmemleak reported (first 40 lines):" | comment
			head -n 40 /tmp/p2pmem-kmemleak.self | comment
		fi
		# The clear below forgets everything reported now: nothing but the injected object may
		# come from our modules (the self-test bound and unbound ivshmem once).
		if awk '/^unreferenced object/ { n++ } { rec[n] = rec[n] $0 "\n" }
			END { for (i = 1; i <= n; i++) if (rec[i] ~ /\[p2pmem(_consumer)?\]|p2pmem/ &&
				rec[i] !~ /leak_set\+0x/) { printf "%s", rec[i]; bad = 1 }; exit !bad }' \
			/tmp/p2pmem-kmemleak.self >/tmp/p2pmem-kmemleak.other; then
			not_ok "kmemleak: the self-test's bind and unbind leaked nothing else of ours"
			head -n 40 /tmp/p2pmem-kmemleak.other | comment
		else
			ok "kmemleak: the self-test's bind and unbind leaked nothing else of ours"
		fi
	fi
	kmemleak_clear
	unload_modules
}

# The whole run's log, and a kernel untainted (but for O and E) from the start.
rearm_once
mark_log "run"
run_mark=$mark
run_taint=$(taint_masked)
# A kernel tainted before anything of ours ran (a report of its own at boot: under TCG, about one
# boot in six reports a KASAN wild-memory-access in handle_edge_irq() at 0.002 s) would blind
# the taint checks: this boot cannot test, and says so with status 3 (scripts/test.sh boots
# again).
if [ "$run_taint" -ne 0 ]; then
	{
		echo "the boot's kernel reports:"
		dmesg -r | grep -nE "$BAD" | head -n 10
		first=$(dmesg -r | grep -nE "$BAD" | head -n 1 | cut -d: -f1)
		[ -z "$first" ] || dmesg -r | sed -n "$first,+39p"
	} | comment
	echo "selftests: not run: the kernel was tainted at boot ($(taint_names "$run_taint")), before any test"
	exit 3
fi
echo "# the runner starts $(cut -d. -f1 /proc/uptime) s after boot"
if [ -w "$KMEMLEAK" ]; then
	# Forget what boot leaked (not ours), including what the self-test's scans find.
	phase_start=$(date +%s)
	kmemleak_clear
	kmemleak_self_test
	echo "# kmemleak self-test: $(($(date +%s) - phase_start)) s"
else
	not_ok "kmemleak is not available (CONFIG_DEBUG_KMEMLEAK?)"
fi
check_log kmemleak_self_test "$run_mark" "$run_taint"

# --- the programs -----------------------------------------------------------------------------
for t in $TESTS; do
	if [ -n "$wedged" ]; then
		echo "ok - $t # SKIP not run: $wedged is stuck in the kernel"
		skip=$((skip + 1))
		continue
	fi
	limit=${P2PMEM_PROGRAM_TIMEOUT:-${timeout_s[$t]:-$DEFAULT_TIMEOUT}}
	echo "# ===== $t (timeout $limit s)"
	rearm_once
	mark_log "begin $t"
	taint0=$(taint_masked)
	start=$(date +%s)
	# shellcheck disable=SC2086 # P2PMEM_ARGS: the harness's options, e.g. "-t TEST".
	bounded "$limit" "/tmp/$t.tap" "./$t" ${P2PMEM_ARGS:-}
	rc=$?
	cat "/tmp/$t.tap"
	echo "# $t: status $rc after $(($(date +%s) - start)) s"
	tap_count "/tmp/$t.tap"
	case $rc in
	0) tap_complete "/tmp/$t.tap" || not_ok "$t: its TAP has no plan, an empty one, or fewer results than planned" ;;
	4)
		grep -qE '^ok [0-9]+ ' "/tmp/$t.tap" || { echo "ok - $t # SKIP"; skip=$((skip + 1)); }
		;;
	124) not_ok "$t timed out after $limit s" ;;
	125)
		if [ $bounded_timed_out -eq 1 ]; then
			not_ok "$t timed out after $limit s and cannot be killed: a task is stuck in the kernel"
		else
			not_ok "$t exited, but a task it started cannot be killed: it is stuck in the kernel"
		fi
		report_wedge "$t"
		;;
	*) grep -qE '^not ok ' "/tmp/$t.tap" || not_ok "$t exited with status $rc" ;;
	esac
	check_log "$t" "$mark" "$taint0"
done

# --- kmemleak after everything ----------------------------------------------------------------
# With our modules unloaded: what a loaded module or a live binding still references is no leak
# to kmemleak.
[ -n "$wedged" ] || unload_modules
phase_start=$(date +%s)
if [ -w "$KMEMLEAK" ] && [ -z "$wedged" ]; then
	# Three scans: a leak that a stale pointer hides in one is reported in a later one.
	if ! scans=$(kmemleak_report_until /tmp/p2pmem-kmemleak.end '/^unreferenced object/' 3); then
		not_ok "kmemleak reports no leak (the scan did not finish)"
	elif grep -q '^unreferenced object' /tmp/p2pmem-kmemleak.end; then
		not_ok "kmemleak reports no leak ($(grep -c '^unreferenced object' \
			/tmp/p2pmem-kmemleak.end) unreferenced objects)"
		head -n 80 /tmp/p2pmem-kmemleak.end | comment
	else
		ok "kmemleak reports no leak ($scans scans)"
	fi
	echo "# kmemleak at the end: $(($(date +%s) - phase_start)) s"
fi

# The whole run again: what came after the last program's check (the unload, late reports such
# as a hung task or an RCU-deferred KASAN report) and the taint of the whole run.
[ -n "$wedged" ] || sleep 2
# Every program's expected records, each any number of times: the programs counted theirs.
whole=""
for t in "${!expect_warn[@]}"; do
	whole+=$(sed 's/^[^ ]* /* /' <<<"${expect_warn[$t]}")$'\n'
done
expect_warn[whole_run]=$whole
check_log whole_run "$run_mark" "$run_taint"

echo "# the runner ends $(cut -d. -f1 /proc/uptime) s after boot"
summary
status=0
[ $fail -eq 0 ] || status=1
report_status() {
	local port

	if port=$(ret_port); then
		echo "# our status $status goes to $port"
		bounded 10 /dev/null sh -c "echo $status >$port"
	else
		echo "# no port to report our status (virtme will say 255)"
	fi
}
if [ -n "$wedged" ]; then
	# The guest cannot power off while a task holds a device lock (device_shutdown() takes
	# every one), and virtme never reports our status while a child of ours is stuck. So:
	# report the status on virtme's channel ourselves, then reset (no device shutdown; QEMU
	# runs with -no-reboot, so a reset ends it).
	report_status
	bounded 10 /dev/null sync
	sleep 2
	echo 1 >/proc/sys/kernel/sysrq
	echo b >/proc/sysrq-trigger
fi
[ $init_reports_status = 1 ] || report_status
exit $status
