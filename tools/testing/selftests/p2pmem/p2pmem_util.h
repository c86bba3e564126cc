/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the p2pmem selftests: sysfs, PCI binding, module
 * loading, the kernel log, and buffers with known bytes. Every helper returns
 * 0 or -errno (a predicate: a bool), never exits.
 *
 * Those that bind, unbind, load or unload run the call in a child and wait for
 * it at most 60 s ($P2PMEM_UNBIND_TIMEOUT): a call that blocks longer (an
 * unbind waiting for a page that never comes back) returns -ETIMEDOUT and
 * leaves the child stuck in the kernel, so the test fails instead of hanging.
 */
#ifndef _P2PMEM_UTIL_H
#define _P2PMEM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <linux/ioctl.h>
#include <linux/types.h>

/* The module's test ioctls, served when it is loaded with test_interfaces=1 (module_load()). */
#include "../../../../include/p2pmem_test_uapi.h"

#define P2PMEM_DRIVER "p2pmem"
#define BDF_LEN 32

/*
 * How long binding, unbinding, loading or unloading may block before the test fails: far
 * longer than any wait a test makes an unbind do (a held page, an O_DIRECT read in flight),
 * far shorter than the runner's limit for a program. $P2PMEM_UNBIND_TIMEOUT overrides it.
 */
#define DRIVER_CALL_TIMEOUT_S 60

/*
 * The harness timeout of every test whose setup, body or teardown binds, unbinds, loads or
 * unloads: several DRIVER_CALL_TIMEOUT_S, so that a driver call that blocks fails its test
 * with ETIMEDOUT, and the verdict is printed, before the harness kills the test with a child
 * of it still in the kernel (a task the runner must then report as stuck). The harness's
 * default 30 s is less than a test with an NVMe rebind took in a slow TCG guest (CI, 2026-12-02).
 */
#define DRIVER_TEST_TIMEOUT_S 300

/* The two NVMe controllers of the test bed (scripts/vm.sh), by serial. */
#define CMB_NVME_SERIAL "p2pmem-cmb"
#define DATA_NVME_SERIAL "p2pmem-data"
#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110

/* From mm/gup_test.h (7.3): the kernel's own GUP test interface, in debugfs. */
struct gup_test {
	__u64 get_delta_usec;
	__u64 put_delta_usec;
	__u64 addr;
	__u64 size;
	__u32 nr_pages_per_call;
	__u32 gup_flags;
	__u32 test_flags;
	__u32 which_pages[8];
};

#define PIN_FAST_BENCHMARK _IOWR('g', 2, struct gup_test)
#define PIN_BASIC_TEST _IOWR('g', 5, struct gup_test)
#define GUP_TEST_PATH "/sys/kernel/debug/gup_test"
/* From include/linux/mm_types.h (7.3). */
#define FOLL_WRITE 0x1
#define FOLL_PCI_P2PDMA 0x400

struct p2pmem_info;

/* P2PMEM_IOCTL_INFO on @fd: 0 or -errno. */
int p2pmem_info(int fd, struct p2pmem_info *info);
/* Opens the /dev/p2pmemN of PCI device @bdf; its path goes to @path if not NULL. */
int open_p2pmem(const char *bdf, char *path, size_t len);

int sysfs_write(const char *path, const char *val);
int sysfs_read(const char *path, char *buf, size_t len);

/* The first PCI device with this vendor:device, e.g. "0000:03:00.0". */
int find_pci_by_id(unsigned int vendor, unsigned int device, char bdf[BDF_LEN]);
/* The PCI device of the NVMe controller with this serial (bound to nvme). */
int find_nvme_by_serial(const char *serial, char bdf[BDF_LEN]);
/* The test bed's provider: the CMB NVMe when @cmb, else ivshmem. */
int find_provider(bool cmb, char bdf[BDF_LEN]);
/* The block device of the first namespace of the NVMe controller with @serial. */
int find_namespace(const char *serial, char *dev, size_t len);

/* The name of the driver bound to @bdf, "" when none. */
int pci_driver_of(const char *bdf, char *drv, size_t len);
/* The CPU address range [start, end] of BAR @bar of @bdf (sysfs resource); 0, or -errno. */
int pci_bar_range(const char *bdf, int bar, unsigned long long *start,
		  unsigned long long *end);
/* Unbinds @bdf from whatever driver it has; 0 when it had none. */
int pci_unbind(const char *bdf);
/* Binds @bdf to @driver through driver_override and drivers_probe. */
int pci_bind_override(const char *bdf, const char *driver);
/* Clears driver_override and lets the bus find the default driver again. */
int pci_restore_default_driver(const char *bdf);
/* Writes @bdf to /sys/bus/pci/drivers/@driver/@file ("bind" or "unbind"). */
int pci_driver_file(const char *driver, const char *file, const char *bdf);

/*
 * Loads p2pmem.ko ($P2PMEM_KO, default ./p2pmem.ko) with @params, and test_interfaces=1 unless
 * @params sets it.
 */
int module_load(const char *params);
/* Unloads p2pmem; 0 when it was not loaded. */
int module_unload(void);
bool module_loaded(void);

/* A reader of /dev/kmsg that sees only what is logged after it opened. */
int kmsg_open(void);
/*
 * Whether a record logged since the last call holds every one of @needles.
 * Reads the log to its end: use one reader per thing to look for.
 */
bool kmsg_grep(int fd, const char *const *needles, char *line, size_t len);
/* How many records logged since the last call hold @needle. */
int kmsg_count(int fd, const char *needle);
/* How many of them are more severe than info (KERN_NOTICE or worse) and hold @needle. */
int kmsg_count_severe(int fd, const char *needle);

/* Fills @buf with a pattern of @seed that check() recognises (32-bit words). */
void fill(void *buf, size_t len, __u32 seed);
/* Whether @buf holds fill()'s pattern for @seed. */
bool check(const void *buf, size_t len, __u32 seed);
/* Whether touching @addr kills a child process with SIGBUS. */
bool access_raises_sigbus(char *addr);
/* Whether an entry maps @addr in this process (/proc/self/pagemap bit 63): 1, 0 or -1. */
int pte_present(const void *addr);
/* Whether @len bytes at @offset of BAR @bar of @bdf hold fill()'s pattern for @seed. */
bool bar_holds(const char *bdf, unsigned int bar, off_t offset, size_t len, __u32 seed);

/* The throttled NVMe of the test bed (scripts/vm.sh): 1 MiB/s, so that I/O stays in flight. */
#define SLOW_NVME_SERIAL "p2pmem-slow"

/* How much later than the bio's completion a reader may see its read return (TCG). */
#define SYSCALL_SLACK_NS 1000000000ULL

/* CLOCK_MONOTONIC in nanoseconds. */
__u64 now_ns(void);
/* O_DIRECT read (or write) of @len bytes at @off of block device @dev: bytes, or -errno. */
ssize_t direct_io(const char *dev, bool write, void *buf, size_t len, off_t off);
/*
 * direct_io() writing through a private node of @dev (same device number, another inode):
 * udev re-probes a disk on the close of a writer of its /dev node, and on the throttled
 * namespace those reads would queue ahead of a test's.
 */
ssize_t direct_write_unwatched(const char *dev, void *buf, size_t len, off_t off);
/* Reads of @dev's queue in flight (/sys/block/X/inflight: "reads writes"), or -1. */
long inflight_reads(const char *dev);

/* One O_DIRECT read, timed by the thread that does it. */
struct timed_read {
	const char *dev;
	void *buf;
	size_t len;
	__u64 start_ns;
	__u64 end_ns;
	ssize_t ret;		/* bytes read, or -errno */
	int submitted;		/* every page of the buffer is pinned */
	int done;
};

/*
 * The thread function of a struct timed_read: one O_DIRECT read submitted with Linux AIO, so
 * that @submitted means every page of the buffer is pinned.
 */
void *timed_read(void *arg);
/*
 * Waits (at most 10 s) until @r's read is in flight: submitted, @r->dev's queue busy, not done.
 * Whether it got there.
 */
bool read_in_flight(struct timed_read *r);

/* p2pmem_region/@name of @bdf, or ULLONG_MAX when it cannot be read. */
unsigned long long region_attr(const char *bdf, const char *name);

/*
 * Reads outstanding_pages while the unbind waits. A sample counts only once the buffer's PTE
 * is gone: unbind unmapped it (its revoke step), so the unbind has started; and the read must
 * succeed, which it does only until the unbind removes the attributes, at its end.
 */
struct counter_watch {
	const char *bdf;
	const char *node;	/* /dev/p2pmemN */
	const void *buf;
	int stop;
	int samples;
	unsigned long long max_outstanding;
	int node_seen;		/* samples with pages out in which the node still existed */
};

/* The thread function of a struct counter_watch: samples until @stop. */
void *watch_outstanding(void *arg);

#endif /* _P2PMEM_UTIL_H */
