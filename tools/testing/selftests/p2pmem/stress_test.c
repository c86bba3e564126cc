// SPDX-License-Identifier: GPL-2.0
/*
 * Survival: worker processes map /dev/p2pmemN, O_DIRECT-read the data NVMe
 * into the pages, check the bytes and unmap, while the main process unbinds
 * and rebinds the device $P2PMEM_STRESS_LOOPS times (default 20). Every
 * unbind and bind must succeed, no byte may be wrong, and at the end every
 * counter is back where it started. The runner checks KASAN, lockdep and
 * kmemleak afterwards.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#define BUF (256 * 1024UL)
#define WORKERS 3

/* What the workers saw, in shared memory. */
struct outcome {
	int stop;
	long ok;		/* reads whose bytes matched */
	long revoked;		/* a step refused because the device was going away */
	long wrong;		/* bytes that did not match: must stay 0 */
	long odd;		/* an errno nobody expects: must stay 0 */
	int odd_errno;
};

/* The worker's mapping, and whether touching it raised SIGBUS (it was revoked). */
static char *cur_buf;
static int bus_hit;

/* Revoked under us: put anonymous memory where the mapping was, so the access completes. */
static void on_sigbus(int sig)
{
	char *buf = __atomic_load_n(&cur_buf, __ATOMIC_RELAXED);

	__atomic_store_n(&bus_hit, 1, __ATOMIC_RELAXED);
	mmap(buf, BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static bool pattern_ok(const __u32 *p, size_t len)
{
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (p[i] != 0x9e3779b9u * (__u32)i)
			return false;
	return true;
}

static void count_errno(struct outcome *o, int err)
{
	if (err == ENODEV || err == ENOENT || err == EFAULT) {
		__atomic_add_fetch(&o->revoked, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&o->odd, 1, __ATOMIC_RELAXED);
		o->odd_errno = err;
	}
}

static void worker(const char *bdf, const char *nvme, struct outcome *o)
{
	char *buf = MAP_FAILED;
	int fd = -1, dfd;
	bool ok;
	ssize_t n;

	signal(SIGBUS, on_sigbus);
	dfd = open(nvme, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd < 0)
		_exit(1);
	while (!__atomic_load_n(&o->stop, __ATOMIC_RELAXED)) {
		fd = open_p2pmem(bdf, NULL, 0);
		if (fd < 0) {
			count_errno(o, -fd);
			usleep(1000);
			continue;
		}
		buf = mmap(NULL, BUF, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (buf == MAP_FAILED) {
			count_errno(o, errno);
			goto next;
		}
		__atomic_store_n(&cur_buf, buf, __ATOMIC_RELAXED);
		__atomic_store_n(&bus_hit, 0, __ATOMIC_RELAXED);
		n = pread(dfd, buf, BUF, 0);
		if (n < 0) {
			count_errno(o, errno);
			goto next;
		}
		ok = pattern_ok((const __u32 *)buf, BUF);
		if (__atomic_load_n(&bus_hit, __ATOMIC_RELAXED))
			__atomic_add_fetch(&o->revoked, 1, __ATOMIC_RELAXED);
		else if (ok)
			__atomic_add_fetch(&o->ok, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&o->wrong, 1, __ATOMIC_RELAXED);
next:
		if (buf != MAP_FAILED)
			munmap(buf, BUF);
		buf = MAP_FAILED;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	_exit(0);
}

FIXTURE(stress) {
	char bdf[BDF_LEN];
	char nvme[64];
};

FIXTURE_SETUP(stress)
{
	__u32 *pattern;
	size_t i;
	int fd;

	ASSERT_EQ(0, module_unload());
	if (find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, self->bdf))
		SKIP(return, "no ivshmem device");
	if (find_namespace(DATA_NVME_SERIAL, self->nvme, sizeof(self->nvme)))
		SKIP(return, "no NVMe namespace with serial " DATA_NVME_SERIAL);

	/* The bytes the workers expect. */
	ASSERT_EQ(0, posix_memalign((void **)&pattern, PAGE, BUF));
	for (i = 0; i < BUF / 4; i++)
		pattern[i] = 0x9e3779b9u * (__u32)i;
	fd = open(self->nvme, O_WRONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)BUF, pwrite(fd, pattern, BUF, 0));
	close(fd);
	free(pattern);
	ASSERT_EQ(0, module_load(""));
}

FIXTURE_TEARDOWN(stress)
{
	EXPECT_EQ(0, module_unload());
}

TEST_F_TIMEOUT(stress, bind_unbind_under_mapping_and_o_direct_load, 3000)
{
	const char *env = getenv("P2PMEM_STRESS_LOOPS");
	int loops = env ? atoi(env) : 20;
	struct p2pmem_info info;
	pid_t pids[WORKERS];
	struct outcome *o;
	int i, status, fd;

	o = mmap(NULL, sizeof(*o), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, o);
	memset(o, 0, sizeof(*o));
	for (i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			worker(self->bdf, self->nvme, o);
	}
	usleep(200000);
	for (i = 0; i < loops; i++) {
		ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf)) {
			TH_LOG("unbind %d", i);
		}
		ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf)) {
			TH_LOG("bind %d", i);
		}
		usleep(20000);
	}
	__atomic_store_n(&o->stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < WORKERS; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	TH_LOG("%d rebinds: %ld verified reads, %ld refused while revoked", loops, o->ok,
	       o->revoked);
	EXPECT_EQ(0, o->wrong);
	EXPECT_EQ(0, o->odd) {
		TH_LOG("unexpected errno %d", o->odd_errno);
	}
	EXPECT_LT(0, o->ok);

	/* Every page came back: the region is whole, nothing is out. */
	fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, P2PMEM_IOCTL_INFO, &info));
	EXPECT_EQ(info.pages, info.free_pages);
	EXPECT_EQ(0, info.outstanding_pages);
	EXPECT_EQ(info.handed_out_pages, info.freed_pages);
	close(fd);
	munmap(o, sizeof(*o));
}

TEST_HARNESS_MAIN
