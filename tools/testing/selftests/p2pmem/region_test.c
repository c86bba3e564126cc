// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/p2pmemN: the mapping rules, the counters, O_DIRECT between the data
 * NVMe and p2p buffers with the bytes checked, and unbind while pages are out.
 *
 * Every test runs on both providers of the test bed: ivshmem (bound by ID)
 * and the CMB of an NVMe controller (bound through driver_override).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/aio_abi.h>
#include <linux/p2pmem.h>

#include "kselftest_harness.h"
#include "p2pmem_util.h"

#define PAGE 4096UL
#define MIB (1024UL * 1024)

FIXTURE(region) {
	char bdf[BDF_LEN];
	char nvme_dev[64];	/* the data namespace, e.g. /dev/nvme1n1 */
	char node[64];		/* /dev/p2pmemN */
	int fd;
	struct p2pmem_info info;
};

FIXTURE_VARIANT(region) {
	bool cmb;
};

FIXTURE_VARIANT_ADD(region, ivshmem) {
	.cmb = false,
};

FIXTURE_VARIANT_ADD(region, cmb) {
	.cmb = true,
};

FIXTURE_SETUP(region)
{
	self->fd = -1;
	ASSERT_EQ(0, module_unload());
	if (find_namespace(DATA_NVME_SERIAL, self->nvme_dev, sizeof(self->nvme_dev)))
		SKIP(return, "no NVMe namespace with serial " DATA_NVME_SERIAL);
	if (find_provider(variant->cmb, self->bdf))
		SKIP(return, "no %s in the test bed", variant->cmb ? "CMB NVMe" : "ivshmem");
	ASSERT_EQ(0, module_load(""));
	if (variant->cmb)
		ASSERT_EQ(0, pci_bind_override(self->bdf, P2PMEM_DRIVER));
	self->fd = open_p2pmem(self->bdf, self->node, sizeof(self->node));
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, p2pmem_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(region)
{
	struct p2pmem_info info;

	/* Every test gives every page back. */
	if (self->fd >= 0 && !p2pmem_info(self->fd, &info)) {
		EXPECT_EQ(0, info.outstanding_pages);
		EXPECT_EQ(info.pages, info.free_pages);
		EXPECT_EQ(info.handed_out_pages, info.freed_pages);
	}
	if (self->fd >= 0)
		close(self->fd);
	EXPECT_EQ(0, module_unload());
	if (variant->cmb && self->bdf[0])
		EXPECT_EQ(0, pci_restore_default_driver(self->bdf));
}

static void *map(int fd, size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

/* The info ioctl describes the region: BAR 2 minus the default 1/8 kernel pool. */
TEST_F_TIMEOUT(region, info_describes_the_region, DRIVER_TEST_TIMEOUT_S)
{
	EXPECT_STREQ(self->bdf, self->info.pci_dev);
	EXPECT_EQ(2, self->info.bar);
	EXPECT_EQ(PAGE, self->info.page_size);
	EXPECT_EQ(8 * MIB, self->info.pool_bytes);
	EXPECT_EQ(8 * MIB, self->info.region_offset);
	EXPECT_EQ(56 * MIB, self->info.region_bytes);
	EXPECT_EQ(56 * MIB / PAGE, self->info.pages);
	EXPECT_EQ(self->info.pages, self->info.free_pages);
	EXPECT_EQ(0, self->info.outstanding_pages);
}

/* A shared mapping holds p2p pages: data sticks, counters follow, munmap returns them. */
TEST_F_TIMEOUT(region, shared_mapping_takes_and_returns_pages, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	size_t len = 1 * MIB;
	char *buf;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(len / PAGE, info.outstanding_pages);
	EXPECT_EQ(self->info.pages - len / PAGE, info.free_pages);
	fill(buf, len, 1);
	EXPECT_TRUE(check(buf, len, 1));
	ASSERT_EQ(0, munmap(buf, len));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(0, info.outstanding_pages);
	EXPECT_EQ(len / PAGE, info.freed_pages - self->info.freed_pages);
}

/*
 * The sysfs attributes on the PCI device say what the info ioctl says. Both read the same
 * counters: this proves the attribute table, and the 8 pages out against the test's own count.
 * The pool's size is checked against the kernel's P2PDMA core (its own sysfs attribute).
 */
TEST_F_TIMEOUT(region, sysfs_attributes_match_the_ioctl, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	char path[128], val[32];
	char *buf;

	buf = map(self->fd, 8 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(info.region_bytes, region_attr(self->bdf, "region_bytes"));
	EXPECT_EQ(info.pages, region_attr(self->bdf, "pages"));
	EXPECT_EQ(info.free_pages, region_attr(self->bdf, "free_pages"));
	EXPECT_EQ(8, region_attr(self->bdf, "outstanding_pages"));
	EXPECT_EQ(info.handed_out_pages, region_attr(self->bdf, "handed_out_pages"));
	EXPECT_EQ(info.freed_pages, region_attr(self->bdf, "freed_pages"));
	EXPECT_EQ(info.pool_bytes, region_attr(self->bdf, "pool_bytes"));
	EXPECT_EQ(info.region_offset, region_attr(self->bdf, "region_offset"));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/size", self->bdf);
	ASSERT_EQ(0, sysfs_read(path, val, sizeof(val)));
	EXPECT_EQ(info.pool_bytes, strtoull(val, NULL, 0));
	EXPECT_LT(0, info.pool_bytes);
	ASSERT_EQ(0, munmap(buf, 8 * PAGE));
	EXPECT_EQ(0, region_attr(self->bdf, "outstanding_pages"));
}

/* MAP_PRIVATE is refused with EINVAL and takes nothing. */
TEST_F_TIMEOUT(region, private_mapping_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;

	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(self->info.handed_out_pages, info.handed_out_pages);
}

/* A non-zero offset is refused with EINVAL. */
TEST_F_TIMEOUT(region, nonzero_offset_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, PAGE));
	EXPECT_EQ(EINVAL, errno);
}

/* A mapping larger than what is free fails with ENOMEM and takes nothing. */
TEST_F_TIMEOUT(region, mapping_larger_than_free_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	size_t len = self->info.region_bytes + PAGE;

	EXPECT_EQ(MAP_FAILED, map(self->fd, len));
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(self->info.pages, info.free_pages);
	EXPECT_EQ(self->info.handed_out_pages, info.handed_out_pages);
}

/* The whole region can be mapped at once, and then nothing more. */
TEST_F_TIMEOUT(region, whole_region_maps_then_nothing_more, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = self->info.region_bytes;
	char *buf, *more;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	more = map(self->fd, PAGE);
	EXPECT_EQ(MAP_FAILED, more);
	EXPECT_EQ(ENOMEM, errno);
	fill(buf + len - PAGE, PAGE, 7);
	EXPECT_TRUE(check(buf + len - PAGE, PAGE, 7));
	ASSERT_EQ(0, munmap(buf, len));
}

/* The page frame @addr maps in this process (root reads frames), 0 if none. */
static __u64 pfn_of(int pagemap, const void *addr)
{
	__u64 entry;

	if (pread(pagemap, &entry, sizeof(entry),
		  (uintptr_t)addr / PAGE * sizeof(entry)) != sizeof(entry))
		return 0;
	if (!(entry >> 63))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

/* How many physically contiguous pieces the @len bytes at @addr are in; 0: unmapped. */
static size_t physical_runs(int pagemap, const char *addr, size_t len)
{
	size_t pages = len / PAGE, i, runs = 0;
	__u64 *entries, pfn, prev = 0;

	entries = calloc(pages, sizeof(*entries));
	if (!entries)
		return 0;
	/* One read for the whole range: bit 63 present, bits 0-54 the frame. */
	if (pread(pagemap, entries, pages * sizeof(*entries),
		  (uintptr_t)addr / PAGE * sizeof(*entries)) != (ssize_t)(pages * sizeof(*entries)))
		pages = 0;
	for (i = 0; i < pages; i++) {
		pfn = entries[i] & ((1ULL << 55) - 1);
		if (!(entries[i] >> 63) || !pfn) {
			runs = 0;
			break;
		}
		if (!i || pfn != prev + 1)
			runs++;
		prev = pfn;
	}
	free(entries);
	return runs;
}

struct piece {
	char *addr;
	__u64 pfn;
};

static int by_pfn(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/*
 * A mapping gets one physically contiguous run of pages when the region has
 * one free (so that an I/O into it is one DMA segment), however fragmented the
 * rest is: with the whole region mapped in 256 KiB pieces, every other piece
 * of the lower half unmapped (holes of 64 pages) and then 4 adjacent pieces of
 * the upper half, a 1 MiB mapping takes exactly those 4 pieces' pages (the
 * first free pages would be 4 holes).
 */
TEST_F_TIMEOUT(region, a_mapping_takes_a_contiguous_run_when_one_is_free, 300)
{
	const size_t piece = 256 * 1024, len = MIB;
	size_t n = self->info.region_bytes / piece, i, block;
	struct piece *pieces;
	int pagemap;
	char *buf;

	ASSERT_GE(n, 32);
	ASSERT_EQ(0, self->info.region_bytes % piece);
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, pagemap);
	pieces = calloc(n, sizeof(*pieces));
	ASSERT_NE(NULL, pieces);
	for (i = 0; i < n; i++) {
		pieces[i].addr = map(self->fd, piece);
		ASSERT_NE(MAP_FAILED, pieces[i].addr);
		/* A fresh region hands out each piece as one run. */
		ASSERT_EQ(1, physical_runs(pagemap, pieces[i].addr, piece));
		pieces[i].pfn = pfn_of(pagemap, pieces[i].addr);
	}
	qsort(pieces, n, sizeof(*pieces), by_pfn);
	for (i = 0; i + 1 < n; i++)
		ASSERT_EQ(pieces[i].pfn + piece / PAGE, pieces[i + 1].pfn);
	for (i = 0; i < n / 2; i += 2) {
		ASSERT_EQ(0, munmap(pieces[i].addr, piece));
		pieces[i].addr = NULL;
	}
	block = n / 2 + 8;
	for (i = block; i < block + len / piece; i++) {
		ASSERT_EQ(0, munmap(pieces[i].addr, piece));
		pieces[i].addr = NULL;
	}
	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	EXPECT_EQ(1, physical_runs(pagemap, buf, len))
		TH_LOG("a 1 MiB mapping spans %zu pieces of physical memory",
		       physical_runs(pagemap, buf, len));
	EXPECT_EQ(pieces[block].pfn, pfn_of(pagemap, buf));
	ASSERT_EQ(0, munmap(buf, len));
	for (i = 0; i < n; i++)
		if (pieces[i].addr)
			ASSERT_EQ(0, munmap(pieces[i].addr, piece));
	free(pieces);
	close(pagemap);
}

/* Unmapping part of a mapping returns exactly those pages. */
TEST_F_TIMEOUT(region, partial_munmap_returns_those_pages, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	char *buf;

	buf = map(self->fd, 16 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 16 * PAGE, 3);
	ASSERT_EQ(0, munmap(buf + 4 * PAGE, 4 * PAGE));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(12, info.outstanding_pages);
	EXPECT_TRUE(check(buf, 4 * PAGE, 3));
	EXPECT_TRUE(check(buf + 8 * PAGE, 8 * PAGE, (__u32)(3 + 8 * PAGE / 4 * 2654435761u)));
	ASSERT_EQ(0, munmap(buf, 16 * PAGE));
}

/* MADV_DONTNEED gives the pages back; the range then raises SIGBUS. */
TEST_F_TIMEOUT(region, madv_dontneed_returns_pages_then_sigbus, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	char *buf;

	buf = map(self->fd, 4 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 4 * PAGE, 5);
	ASSERT_EQ(0, madvise(buf + PAGE, PAGE, MADV_DONTNEED));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(3, info.outstanding_pages);
	EXPECT_TRUE(access_raises_sigbus(buf + PAGE));
	EXPECT_FALSE(access_raises_sigbus(buf));
	ASSERT_EQ(0, munmap(buf, 4 * PAGE));
}

/* A forked child shares the pages: its writes are the parent's. */
TEST_F_TIMEOUT(region, fork_shares_the_pages, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	int status;
	char *buf;
	pid_t pid;

	buf = map(self->fd, 2 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 2 * PAGE, 11);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		fill(buf, 2 * PAGE, 12);
		_exit(check(buf, 2 * PAGE, 12) ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_TRUE(check(buf, 2 * PAGE, 12));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(2, info.outstanding_pages);
	ASSERT_EQ(0, munmap(buf, 2 * PAGE));
}

/* A mapping cannot grow (EFAULT), but it can move with its data. */
TEST_F_TIMEOUT(region, mremap_moves_but_does_not_grow, DRIVER_TEST_TIMEOUT_S)
{
	char *buf, *moved, *hole;

	buf = map(self->fd, 4 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 4 * PAGE, 13);
	EXPECT_EQ(MAP_FAILED, mremap(buf, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE));
	EXPECT_EQ(EFAULT, errno);
	hole = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	moved = mremap(buf, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	ASSERT_EQ(hole, moved);
	EXPECT_TRUE(check(moved, 4 * PAGE, 13));
	ASSERT_EQ(0, munmap(moved, 4 * PAGE));
}

/* O_DIRECT from the NVMe into p2p pages and back out: the NVMe DMAs, the bytes match. */
TEST_F_TIMEOUT(region, o_direct_read_and_write_move_the_bytes, 300)
{
	size_t len = 2 * MIB;
	void *host, *p2p;

	ASSERT_EQ(0, posix_memalign(&host, PAGE, len));
	p2p = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, p2p);

	/* Known bytes on the disk, written from host memory. */
	fill(host, len, 21);
	ASSERT_EQ((ssize_t)len, direct_io(self->nvme_dev, true, host, len, 0));

	/* Disk -> p2p pages. */
	memset(p2p, 0, len);
	ASSERT_EQ((ssize_t)len, direct_io(self->nvme_dev, false, p2p, len, 0));
	EXPECT_TRUE(check(p2p, len, 21));

	/* p2p pages -> disk, read back into host memory. */
	fill(p2p, len, 22);
	ASSERT_EQ((ssize_t)len, direct_io(self->nvme_dev, true, p2p, len, 4 * MIB));
	memset(host, 0, len);
	ASSERT_EQ((ssize_t)len, direct_io(self->nvme_dev, false, host, len, 4 * MIB));
	EXPECT_TRUE(check(host, len, 22));

	ASSERT_EQ(0, munmap(p2p, len));
	free(host);
}

/*
 * Buffered I/O copies through the CPU into and out of p2p pages (copy_{to,from}_user() on the
 * mapping). The read is served from the page cache: this is no DMA test, and any memory passes
 * its data check; the O_DIRECT tests are the ones whose bytes only p2p pages can carry.
 */
TEST_F_TIMEOUT(region, buffered_io_copies_through_the_cpu, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 256 * 1024;
	void *p2p;
	int fd;

	p2p = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, p2p);
	fd = open(self->nvme_dev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	fill(p2p, len, 31);
	ASSERT_EQ((ssize_t)len, pwrite(fd, p2p, len, 8 * MIB));
	ASSERT_EQ(0, fsync(fd));
	memset(p2p, 0, len);
	ASSERT_EQ((ssize_t)len, pread(fd, p2p, len, 8 * MIB));
	EXPECT_TRUE(check(p2p, len, 31));
	close(fd);
	ASSERT_EQ(0, munmap(p2p, len));
}

/*
 * Pins @len bytes at @addr with gup_test's PIN_FAST_BENCHMARK, one page per call, and returns
 * the pages pinned, or -errno when the ioctl itself fails. gup_test stops at the first page GUP
 * refuses and still succeeds: GUP's errno (EREMOTEIO for a P2PDMA page without
 * FOLL_PCI_P2PDMA) is not reported, only how far it got ("size"). With one page per call
 * "size" is exactly the bytes pinned (with more, it counts the whole call that stopped).
 */
static long gup_test_pin(void *addr, size_t len, unsigned int flags)
{
	struct gup_test gup = {
		.addr = (uintptr_t)addr,
		.size = len,
		.nr_pages_per_call = 1,
		.gup_flags = flags,
	};
	long ret;
	int fd;

	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, PIN_FAST_BENCHMARK, &gup) ? -errno : (long)(gup.size / PAGE);
	close(fd);
	return ret;
}

/* GUP hands out our pages only with FOLL_PCI_P2PDMA (pages pinned): they are P2PDMA pages. */
TEST_F_TIMEOUT(region, pages_are_p2pdma_to_gup, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 16 * PAGE;
	void *p2p, *anon;

	if (access(GUP_TEST_PATH, R_OK))
		SKIP(return, GUP_TEST_PATH " is missing (CONFIG_GUP_TEST, debugfs)");
	p2p = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, p2p);
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, anon);

	EXPECT_EQ(0, gup_test_pin(p2p, len, FOLL_WRITE));
	EXPECT_EQ(16, gup_test_pin(p2p, len, FOLL_WRITE | FOLL_PCI_P2PDMA));
	EXPECT_EQ(16, gup_test_pin(anon, len, FOLL_WRITE));
	EXPECT_EQ(16, gup_test_pin(anon, len, FOLL_WRITE | FOLL_PCI_P2PDMA));

	ASSERT_EQ(0, munmap(anon, len));
	ASSERT_EQ(0, munmap(p2p, len));
}

/* fio runs unmodified with its buffers in our pages: O_DIRECT writes, then verified reads. */
TEST_F_TIMEOUT(region, fio_verifies_through_mmapshared, 300)
{
	static const char *const job[] = {
		"--name=p2pmem", "--direct=1", "--ioengine=psync", "--rw=write", "--bs=128k",
		"--size=8M", "--offset=32M", "--verify=crc32c", "--do_verify=1",
		"--verify_state_save=0", NULL,
	};
	char cmd[1024];
	int status, i, n;

	if (system("fio --version >/dev/null 2>&1"))
		SKIP(return, "fio is not installed");
	n = snprintf(cmd, sizeof(cmd), "fio --filename=%s --iomem=mmapshared:%s",
		     self->nvme_dev, self->node);
	for (i = 0; job[i]; i++)
		n += snprintf(cmd + n, sizeof(cmd) - n, " %s", job[i]);
	snprintf(cmd + n, sizeof(cmd) - n, " --output=/tmp/fio-%s.log >/dev/null 2>&1", self->bdf);
	status = system(cmd);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(cmd, sizeof(cmd), "sed 's/^/# /' /tmp/fio-%s.log", self->bdf);
		if (system(cmd))
			TH_LOG("no fio log");
	}
}

/* Unbind revokes a live mapping: it completes, access raises SIGBUS, the fd gets ENODEV. */
TEST_F_TIMEOUT(region, unbind_revokes_a_live_mapping, DRIVER_TEST_TIMEOUT_S)
{
	const char *const done[] = { self->bdf, "unbind: 64 pages were out, all back", NULL };
	struct p2pmem_info info;
	char *buf;
	int kmsg;

	buf = map(self->fd, 64 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 64 * PAGE, 41);
	kmsg = kmsg_open();
	ASSERT_LE(0, kmsg);

	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf));
	EXPECT_TRUE(kmsg_grep(kmsg, done, NULL, 0));
	EXPECT_TRUE(access_raises_sigbus(buf));
	EXPECT_EQ(-ENODEV, p2pmem_info(self->fd, &info));
	EXPECT_EQ(ULLONG_MAX, region_attr(self->bdf, "pages"));
	EXPECT_EQ(MAP_FAILED, map(self->fd, PAGE));
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, munmap(buf, 64 * PAGE));
	close(self->fd);
	self->fd = -1;
	close(kmsg);

	/*
	 * Rebound, the device serves mappings again. (Its counters are a new binding's: that they
	 * start at zero proves nothing, so what is checked is that pages go out and come back.)
	 */
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
	buf = map(self->fd, 64 * PAGE);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 64 * PAGE, 42);
	EXPECT_TRUE(check(buf, 64 * PAGE, 42));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(64, info.outstanding_pages);
	ASSERT_EQ(0, munmap(buf, 64 * PAGE));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(0, info.outstanding_pages);
	EXPECT_EQ(64, info.freed_pages);
}

/*
 * Unbind during an O_DIRECT read into p2p pages waits for the read: the read, submitted (its
 * whole buffer pinned) before and still in flight at the unbind (throttled NVMe), completes in
 * full with the disk's bytes,
 * before the unbind returns; meanwhile the pages show as outstanding and /dev/p2pmemN is
 * gone; then the mapping is
 * revoked (SIGBUS, EFAULT for I/O) and the fd gets ENODEV.
 */
TEST_F_TIMEOUT(region, unbind_waits_for_o_direct_in_flight, 300)
{
	struct timed_read r = { .len = 4 * MIB };
	struct counter_watch w = { .bdf = self->bdf, .node = self->node };
	__u64 unbind_start, unbind_end;
	pthread_t reader, watcher;
	struct p2pmem_info info;
	char slow[64];
	void *host;
	int i;

	if (find_namespace(SLOW_NVME_SERIAL, slow, sizeof(slow)))
		SKIP(return, "no throttled NVMe namespace (serial " SLOW_NVME_SERIAL ")");
	r.dev = slow;

	/* Known bytes on the slow disk, written from host memory (about 4 s). */
	ASSERT_EQ(0, posix_memalign(&host, PAGE, r.len));
	fill(host, r.len, 51);
	ASSERT_EQ((ssize_t)r.len, direct_write_unwatched(slow, host, r.len, 0));
	free(host);

	r.buf = map(self->fd, r.len);
	ASSERT_NE(MAP_FAILED, r.buf);
	memset(r.buf, 0, r.len);
	ASSERT_EQ(1, pte_present(r.buf));
	w.buf = r.buf;
	/*
	 * Let other readers of the slow disk drain (at most 30 s), so that the unbind waits for
	 * our read only. One still queued (a CI run once saw the queue busy for 30 s) only
	 * delays our read: io_submit() returned, so it is in flight until it completes, and the
	 * unbind must wait for it all the same.
	 */
	for (i = 0; i < 3000 && inflight_reads(slow) != 0; i++)
		usleep(10000);
	if (i)
		TH_LOG("%s busy with %ld reads for %d ms before ours", slow, inflight_reads(slow),
		       i * 10);
	ASSERT_EQ(0, pthread_create(&watcher, NULL, watch_outstanding, &w));
	ASSERT_EQ(0, pthread_create(&reader, NULL, timed_read, &r));

	/*
	 * In flight: the read is submitted (its buffer pinned), the slow queue holds it and it has
	 * not completed (at most 10 s).
	 */
	ASSERT_TRUE(read_in_flight(&r));

	unbind_start = now_ns();
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf));
	unbind_end = now_ns();
	ASSERT_EQ(0, pthread_join(reader, NULL));
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(watcher, NULL));
	TH_LOG("read %lld bytes in %llu ms; unbind %llu ms, returned %llu ms after the read",
	       (long long)r.ret, (r.end_ns - r.start_ns) / 1000000,
	       (unbind_end - unbind_start) / 1000000,
	       (long long)(unbind_end - r.end_ns) / 1000000);

	/*
	 * The read was in flight when the unbind started, and done when it returned. The reader
	 * stamps its end when pread() is back in userspace, which can be a little after the bio
	 * completed and unpinned the pages (what unbind waits for): up to SYSCALL_SLACK_NS under
	 * TCG. An unbind that did not wait returns seconds early (the read is throttled).
	 */
	EXPECT_EQ((ssize_t)r.len, r.ret);
	EXPECT_LT(unbind_start, r.end_ns);
	EXPECT_LE(r.end_ns, unbind_end + SYSCALL_SLACK_NS);
	/*
	 * Meanwhile the counter said pages were out (at most the 1024 of the buffer), and
	 * /dev/p2pmemN was gone already: unbind removes it first, not after the wait.
	 */
	EXPECT_LT(0, w.samples);
	EXPECT_LT(0, w.max_outstanding);
	EXPECT_GE(r.len / PAGE, w.max_outstanding);
	EXPECT_EQ(0, w.node_seen) TH_LOG("%s existed in %d of %d samples with pages out",
					 self->node, w.node_seen, w.samples);

	/* Revoked: access raises SIGBUS, I/O into the buffer EFAULT, the fd ENODEV. */
	EXPECT_EQ(0, pte_present(r.buf));
	EXPECT_TRUE(access_raises_sigbus(r.buf));
	EXPECT_EQ(-EFAULT, direct_io(slow, false, r.buf, PAGE, 0));
	EXPECT_EQ(-ENODEV, p2pmem_info(self->fd, &info));
	EXPECT_EQ(MAP_FAILED, map(self->fd, PAGE));
	EXPECT_EQ(ENODEV, errno);

	/*
	 * The NVMe wrote the disk's bytes where the buffer's pages are: the first pages of the
	 * region of a freshly bound device, in order. Read them through the BAR itself.
	 */
	EXPECT_TRUE(bar_holds(self->bdf, self->info.bar, self->info.region_offset, r.len, 51));

	ASSERT_EQ(0, munmap(r.buf, r.len));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
}

TEST_HARNESS_MAIN
