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
#include <sys/wait.h>
#include <unistd.h>

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

static void fill(void *buf, size_t len, __u32 seed)
{
	__u32 *p = buf;
	size_t i;

	for (i = 0; i < len / 4; i++)
		p[i] = seed + (__u32)i * 2654435761u;
}

static bool check(const void *buf, size_t len, __u32 seed)
{
	const __u32 *p = buf;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (p[i] != seed + (__u32)i * 2654435761u)
			return false;
	return true;
}

/* Whether touching @addr kills a child process with SIGBUS. */
static bool access_raises_sigbus(char *addr)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		__atomic_load_n(addr, __ATOMIC_RELAXED);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS;
}

/* The info ioctl describes the region: BAR 2 minus the default 1/8 kernel pool. */
TEST_F(region, info_describes_the_region)
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
TEST_F(region, shared_mapping_takes_and_returns_pages)
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

static unsigned long long region_attr(const char *bdf, const char *name)
{
	char path[PATH_MAX], buf[32];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem_region/%s", bdf, name);
	if (sysfs_read(path, buf, sizeof(buf)))
		return ULLONG_MAX;
	return strtoull(buf, NULL, 10);
}

/* The sysfs attributes on the PCI device match the info ioctl. */
TEST_F(region, sysfs_attributes_match_the_ioctl)
{
	struct p2pmem_info info;
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
	ASSERT_EQ(0, munmap(buf, 8 * PAGE));
	EXPECT_EQ(0, region_attr(self->bdf, "outstanding_pages"));
}

/* MAP_PRIVATE is refused with EINVAL and takes nothing. */
TEST_F(region, private_mapping_is_refused)
{
	struct p2pmem_info info;

	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(self->info.handed_out_pages, info.handed_out_pages);
}

/* A non-zero offset is refused with EINVAL. */
TEST_F(region, nonzero_offset_is_refused)
{
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, PAGE));
	EXPECT_EQ(EINVAL, errno);
}

/* A mapping larger than what is free fails with ENOMEM and takes nothing. */
TEST_F(region, mapping_larger_than_free_is_refused)
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
TEST_F(region, whole_region_maps_then_nothing_more)
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

/* Unmapping part of a mapping returns exactly those pages. */
TEST_F(region, partial_munmap_returns_those_pages)
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
TEST_F(region, madv_dontneed_returns_pages_then_sigbus)
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
TEST_F(region, fork_shares_the_pages)
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
TEST_F(region, mremap_moves_but_does_not_grow)
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

/* Reads and writes sectors of the data namespace with O_DIRECT through @buf. */
static ssize_t direct_io(const char *dev, bool write, void *buf, size_t len, off_t off)
{
	ssize_t n;
	int fd;

	fd = open(dev, (write ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
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

/* Buffered I/O copies through the CPU into and out of p2p pages. */
TEST_F(region, buffered_io_copies_through_the_cpu)
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

/* Pins @len bytes at @addr through gup_test; returns the bytes pinned, or -errno. */
static long gup_test_pin(void *addr, size_t len, unsigned int flags)
{
	struct gup_test gup = {
		.addr = (uintptr_t)addr,
		.size = len,
		.nr_pages_per_call = len / PAGE,
		.gup_flags = flags,
	};
	long ret;
	int fd;

	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, PIN_FAST_BENCHMARK, &gup) ? -errno : (long)gup.size;
	close(fd);
	return ret;
}

/* GUP hands out our pages only with FOLL_PCI_P2PDMA: they are P2PDMA pages. */
TEST_F(region, pages_are_p2pdma_to_gup)
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
	EXPECT_EQ((long)len, gup_test_pin(p2p, len, FOLL_WRITE | FOLL_PCI_P2PDMA));
	EXPECT_EQ((long)len, gup_test_pin(anon, len, FOLL_WRITE));
	EXPECT_EQ((long)len, gup_test_pin(anon, len, FOLL_WRITE | FOLL_PCI_P2PDMA));

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
TEST_F_TIMEOUT(region, unbind_revokes_a_live_mapping, 120)
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

	/* Rebound, the whole region is free again. */
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(info.pages, info.free_pages);
	EXPECT_EQ(0, info.handed_out_pages);
}

struct reader {
	const char *dev;
	char *buf;
	size_t len;
	int reads;
	int err;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	ssize_t n;

	for (;;) {
		n = direct_io(r->dev, false, r->buf, r->len, 0);
		if (n != (ssize_t)r->len) {
			r->err = n < 0 ? (int)-n : EIO;
			return NULL;
		}
		r->reads++;
	}
}

/* Unbind during O_DIRECT reads into p2p pages waits for the I/O, then completes. */
TEST_F_TIMEOUT(region, unbind_waits_for_o_direct_in_flight, 300)
{
	const char *const done[] = { self->bdf, "all back after", NULL };
	struct reader r = { .dev = self->nvme_dev, .len = 8 * MIB };
	pthread_t thread;
	int kmsg;

	r.buf = map(self->fd, r.len);
	ASSERT_NE(MAP_FAILED, r.buf);
	kmsg = kmsg_open();
	ASSERT_LE(0, kmsg);
	ASSERT_EQ(0, pthread_create(&thread, NULL, read_loop, &r));
	while (r.reads < 2 && !r.err)
		usleep(10000);
	ASSERT_EQ(0, r.err);

	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf));
	ASSERT_EQ(0, pthread_join(thread, NULL));
	/* The reader's next I/O found its buffer revoked. */
	EXPECT_EQ(EFAULT, r.err);
	EXPECT_TRUE(kmsg_grep(kmsg, done, NULL, 0));
	ASSERT_EQ(0, munmap(r.buf, r.len));
	close(kmsg);
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
}

TEST_HARNESS_MAIN
