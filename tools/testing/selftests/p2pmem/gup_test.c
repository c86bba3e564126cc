// SPDX-License-Identifier: GPL-2.0
/*
 * GUP flag gating on P2PDMA pages: p2pmem's own pin ioctl (its Rust GUP
 * layer) and the kernel's own paths (O_DIRECT to a block device without
 * P2PDMA support, io_uring fixed buffers, process_vm_readv, vmsplice).
 *
 * Every case runs on p2pmem's Rust region (/dev/p2pmemN) and on the kernel's
 * own C provider (p2pmem/allocate of the pool slice), on ivshmem and on the
 * NVMe CMB: the two providers' pages must behave the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/p2pmem.h>

#include "kselftest_harness.h"
#include "p2pmem_util.h"

#define PAGE 4096UL
/*
 * The buffer every test pins: 16 pages, or one whole 2 MiB folio, PMD-mapped, in the
 * huge-page region (huge_pages=1). Used where `variant` is in scope.
 */
#define NPAGES (variant->huge ? 512UL : 16UL)
#define LEN (NPAGES * PAGE)

FIXTURE(gup) {
	char bdf[BDF_LEN];
	int fd;		/* /dev/p2pmemN of the device, for the pin ioctl */
	int buf_fd;	/* what the buffer is mapped from */
	char *p2p;	/* LEN bytes of P2PDMA pages, 2 MiB-aligned when huge */
	int kmsg;
	long pins[2];	/* /proc/vmstat nr_foll_pin_acquired, _released at setup */
};

/*
 * Reads nr_foll_pin_acquired and nr_foll_pin_released from /proc/vmstat, after folding every
 * CPU's pending deltas into them (vm.stat_refresh): without that they lag; 0 on success.
 */
static int pin_counts(long counts[2])
{
	char name[64];
	long val;
	int found = 0;
	FILE *f;

	if (sysfs_write("/proc/sys/vm/stat_refresh", "1"))
		return -1;
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &val) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			counts[0] = val, found |= 1;
		else if (!strcmp(name, "nr_foll_pin_released"))
			counts[1] = val, found |= 2;
	}
	fclose(f);
	return found == 3 ? 0 : -1;
}

FIXTURE_VARIANT(gup) {
	bool cmb;
	bool kernel_pool;
	bool huge;
};

FIXTURE_VARIANT_ADD(gup, region_ivshmem) {
	.cmb = false, .kernel_pool = false,
};

FIXTURE_VARIANT_ADD(gup, region_cmb) {
	.cmb = true, .kernel_pool = false,
};

FIXTURE_VARIANT_ADD(gup, kernel_pool_ivshmem) {
	.cmb = false, .kernel_pool = true,
};

FIXTURE_VARIANT_ADD(gup, kernel_pool_cmb) {
	.cmb = true, .kernel_pool = true,
};

/* Every rule again on a PMD-mapped compound folio (huge_pages=1). */
FIXTURE_VARIANT_ADD(gup, huge_region_ivshmem) {
	.cmb = false, .kernel_pool = false, .huge = true,
};

/* FilePmdMapped of /proc/meminfo, in kB: what the kernel counts PMD-mapped; -1 if absent. */
static long file_pmd_mapped_kb(void)
{
	char line[256];
	long val = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "FilePmdMapped: %ld kB", &val) == 1)
			break;
	fclose(f);
	return val;
}

FIXTURE_SETUP(gup)
{
	char path[PATH_MAX];
	long pmd0;

	self->fd = -1;
	self->buf_fd = -1;
	self->p2p = MAP_FAILED;
	ASSERT_EQ(0, module_unload());
	if (find_provider(variant->cmb, self->bdf))
		SKIP(return, "no %s in the test bed", variant->cmb ? "CMB NVMe" : "ivshmem");
	ASSERT_EQ(0, module_load(variant->huge ? "huge_pages=1" : ""));
	if (variant->cmb)
		ASSERT_EQ(0, pci_bind_override(self->bdf, P2PMEM_DRIVER));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
	if (variant->kernel_pool) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/allocate", self->bdf);
		self->buf_fd = open(path, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->buf_fd);
	} else {
		self->buf_fd = dup(self->fd);
	}
	self->p2p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, self->buf_fd, 0);
	ASSERT_NE(MAP_FAILED, self->p2p);
	pmd0 = file_pmd_mapped_kb();
	memset(self->p2p, 0x5a, LEN);
	/* The huge variant's buffer is one PMD, as the kernel counts it. */
	if (variant->huge)
		ASSERT_EQ((long)(LEN >> 10), file_pmd_mapped_kb() - pmd0);
	/* A WARN_ON_ONCE that fired before (an earlier variant) must be able to fire again. */
	if (!access("/sys/kernel/debug/clear_warn_once", W_OK))
		ASSERT_EQ(0, sysfs_write("/sys/kernel/debug/clear_warn_once", "1"));
	self->kmsg = kmsg_open();
	ASSERT_LE(0, self->kmsg);
	ASSERT_EQ(0, pin_counts(self->pins));
}

FIXTURE_TEARDOWN(gup)
{
	const char *const warn[] = { "WARNING:", NULL };

	if (self->kmsg >= 0) {
		EXPECT_FALSE(kmsg_grep(self->kmsg, warn, NULL, 0));
		close(self->kmsg);
	}
	if (self->p2p != MAP_FAILED)
		munmap(self->p2p, LEN);
	if (self->kmsg >= 0) {
		struct p2pmem_info info = { 0 };
		long now[2] = { 0, 0 };

		int i;

		/*
		 * Every pin the test made (ioctl, O_DIRECT, io_uring, ...) was released: no more
		 * pins taken than released since setup. The counters are the whole system's, so
		 * a pin of someone else's (udev probing a disk) may cross the window: give those
		 * 3 s to settle; a leaked pin never does.
		 */
		for (i = 0; i < 30; i++) {
			EXPECT_EQ(0, pin_counts(now));
			if (now[0] - self->pins[0] <= now[1] - self->pins[1])
				break;
			usleep(100000);
		}
		EXPECT_LE(now[0] - self->pins[0], now[1] - self->pins[1]) {
			TH_LOG("pins acquired %ld, released %ld during the test",
			       now[0] - self->pins[0], now[1] - self->pins[1]);
		}
		/* Every page of our region came back (none is lent in a kernel-pool variant). */
		EXPECT_EQ(0, p2pmem_info(self->fd, &info));
		EXPECT_EQ(0, info.outstanding_pages);
		EXPECT_EQ(info.pages, info.free_pages);
	}
	if (self->buf_fd >= 0)
		close(self->buf_fd);
	if (self->fd >= 0)
		close(self->fd);
	EXPECT_EQ(0, module_unload());
	if (variant->cmb && self->bdf[0])
		EXPECT_EQ(0, pci_restore_default_driver(self->bdf));
}

/* Pins through P2PMEM_IOCTL_PIN; 0 or -errno, counts in @pin. */
static int pin(int fd, void *addr, size_t len, __u32 flags, struct p2pmem_pin *pin)
{
	memset(pin, 0, sizeof(*pin));
	pin->addr = (uintptr_t)addr;
	pin->len = len;
	pin->flags = flags;
	return ioctl(fd, P2PMEM_IOCTL_PIN, pin) ? -errno : 0;
}

/*
 * @len bytes of populated anonymous memory starting on a @len boundary, so that a P2P mapping
 * put over its second half by the huge variant is made of folios (PMD-mapped), never of the
 * small part's 4 KiB pages; MAP_FAILED on failure.
 */
static char *aligned_anon(size_t len)
{
	char *raw, *start;

	raw = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	start = (char *)(((uintptr_t)raw + len - 1) / len * len);
	if (start > raw)
		munmap(raw, start - raw);
	if (start + len < raw + 2 * len)
		munmap(start + len, raw + 2 * len - (start + len));
	return start;
}

/* Without FOLL_PCI_P2PDMA, GUP refuses P2PDMA pages with EREMOTEIO. */
TEST_F_TIMEOUT(gup, pin_without_p2pdma_is_remoteio, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin p;

	EXPECT_EQ(-EREMOTEIO, pin(self->fd, self->p2p, LEN, 0, &p));
	EXPECT_EQ(-EREMOTEIO, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_WRITE, &p));
}

/* With FOLL_PCI_P2PDMA every page pins and every page is P2PDMA (ours only for our region). */
TEST_F_TIMEOUT(gup, pin_with_p2pdma_takes_every_page, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin p;

	ASSERT_EQ(0, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_P2PDMA | P2PMEM_PIN_WRITE, &p));
	EXPECT_EQ(NPAGES, p.pinned);
	EXPECT_EQ(NPAGES, p.p2pdma);
	EXPECT_EQ(variant->kernel_pool ? 0 : NPAGES, p.ours);
}

/* P2PDMA with LONGTERM is refused by our layer with EINVAL, before GUP could WARN. */
TEST_F_TIMEOUT(gup, pin_p2pdma_longterm_is_einval_without_warn, DRIVER_TEST_TIMEOUT_S)
{
	const char *const warn[] = { "WARNING:", NULL };
	struct p2pmem_pin p;

	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_P2PDMA | P2PMEM_PIN_LONGTERM,
			       &p));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, LEN,
			       P2PMEM_PIN_P2PDMA | P2PMEM_PIN_LONGTERM | P2PMEM_PIN_WRITE, &p));
	EXPECT_FALSE(kmsg_grep(self->kmsg, warn, NULL, 0));
}

/*
 * LONGTERM alone on P2PDMA pages is refused too: GUP's P2PDMA check comes first. For writing,
 * the kernel pool's sysfs mapping (kernfs vm_ops track dirtying) is refused one step earlier,
 * as a long-term pin of a shared writable file mapping: EFAULT.
 */
TEST_F_TIMEOUT(gup, pin_longterm_on_p2p_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin p;

	EXPECT_EQ(-EREMOTEIO, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_LONGTERM, &p));
	EXPECT_EQ(variant->kernel_pool ? -EFAULT : -EREMOTEIO,
		  pin(self->fd, self->p2p, LEN, P2PMEM_PIN_LONGTERM | P2PMEM_PIN_WRITE, &p));
}

/* Ordinary memory pins with every valid flag set, and none of it is P2PDMA. */
TEST_F_TIMEOUT(gup, pin_anonymous_memory_with_every_flag, DRIVER_TEST_TIMEOUT_S)
{
	const __u32 flags[] = { 0, P2PMEM_PIN_WRITE, P2PMEM_PIN_P2PDMA, P2PMEM_PIN_LONGTERM,
				P2PMEM_PIN_P2PDMA | P2PMEM_PIN_WRITE,
				P2PMEM_PIN_LONGTERM | P2PMEM_PIN_WRITE };
	struct p2pmem_pin p;
	unsigned int i;
	char *anon;

	anon = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		ASSERT_EQ(0, pin(self->fd, anon, LEN, flags[i], &p)) {
			TH_LOG("flags %#x", flags[i]);
		}
		EXPECT_EQ(NPAGES, p.pinned);
		EXPECT_EQ(0, p.p2pdma);
		EXPECT_EQ(0, p.ours);
	}
	munmap(anon, LEN);
}

/*
 * A range of anonymous pages followed by P2PDMA pages: without FOLL_PCI_P2PDMA GUP pins up to
 * the first P2PDMA page and stops (a partial result, not an error); with it, all of them.
 */
TEST_F_TIMEOUT(gup, pin_of_a_mixed_range_stops_at_the_first_p2p_page, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin p;
	char *range, *p2p;

	range = aligned_anon(2 * LEN);
	ASSERT_NE(MAP_FAILED, range);
	p2p = mmap(range + LEN, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		   self->buf_fd, 0);
	ASSERT_EQ(range + LEN, p2p);

	ASSERT_EQ(0, pin(self->fd, range, 2 * LEN, P2PMEM_PIN_WRITE, &p));
	EXPECT_EQ(NPAGES, p.pinned);
	EXPECT_EQ(0, p.p2pdma);
	ASSERT_EQ(0, pin(self->fd, range, 2 * LEN, P2PMEM_PIN_WRITE | P2PMEM_PIN_P2PDMA, &p));
	EXPECT_EQ(2 * NPAGES, p.pinned);
	EXPECT_EQ(NPAGES, p.p2pdma);
	munmap(range, 2 * LEN);
}

/* Bad requests get clear errnos, pin nothing, and log nothing above info level. */
TEST_F_TIMEOUT(gup, pin_rejects_bad_requests, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	struct p2pmem_pin p;

	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, 0, P2PMEM_PIN_P2PDMA, &p));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p + 1, PAGE, P2PMEM_PIN_P2PDMA, &p));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, PAGE + 1, P2PMEM_PIN_P2PDMA, &p));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, PAGE, 1U << 3, &p));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, 64UL * 1024 * 1024 + PAGE, 0, &p));
	memset(&p, 0, sizeof(p));
	p.addr = (uintptr_t)self->p2p;
	p.len = PAGE;
	p.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->fd, P2PMEM_IOCTL_PIN, &p));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, P2PMEM_IOCTL_PIN, (void *)16));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO(P2PMEM_IOCTL_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	/* An address with nothing mapped. */
	EXPECT_EQ(-EFAULT, pin(self->fd, (void *)PAGE, PAGE, 0, &p));
	/* The info ioctl: a bad pointer, and the right number with the wrong size. */
	EXPECT_EQ(-1, ioctl(self->fd, P2PMEM_IOCTL_INFO, (void *)16));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOR(P2PMEM_IOCTL_MAGIC, 0x00, __u64), &info));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(0, kmsg_count_severe(self->kmsg, "p2pmem"));
}

/*
 * gup_test's @cmd on @len bytes at @addr, one page per call: returns the pages
 * pinned, or -errno when the ioctl fails. When GUP refuses a page, gup_test stops there and its
 * ioctl still returns 0: GUP's errno is not observable through it (the pin ioctl reports it),
 * only "size", which with one page per call is exactly the bytes pinned.
 */
static long gup_test_pinned_by(int fd, unsigned long cmd, void *addr, size_t len,
			       __u32 gup_flags)
{
	struct gup_test g = {
		.addr = (uintptr_t)addr, .size = len, .nr_pages_per_call = 1,
		.gup_flags = gup_flags,
	};

	if (ioctl(fd, cmd, &g))
		return -errno;
	return g.size / PAGE;
}

/* Through pin_user_pages_fast(): the fast walk first. */
static long gup_test_pinned(int fd, void *addr, size_t len, __u32 gup_flags)
{
	return gup_test_pinned_by(fd, PIN_FAST_BENCHMARK, addr, len, gup_flags);
}

/* The same through pin_user_pages(), the slow path only (no walk of the page tables first). */
static long gup_test_slow_pinned(int fd, void *addr, size_t len, __u32 gup_flags)
{
	return gup_test_pinned_by(fd, PIN_BASIC_TEST, addr, len, gup_flags);
}

/* Drops the huge variant's PMD (its folio stays the mapping's): nothing for a fast walk. */
static int drop_pmd(void *p2p, size_t len)
{
	if (madvise(p2p, len, MADV_DONTNEED))
		return -errno;
	return pte_present(p2p) == 0 ? 0 : -EEXIST;
}

/*
 * The slow path gates P2PDMA pages as the fast path does: pin_user_pages() pins them only with
 * FOLL_PCI_P2PDMA. The huge variant drops its PMD first, so the slow path also faults the folio
 * back in (as a PMD, bytes intact); and then the module's pin ioctl, whose fast walk finds no
 * entry and falls back to the slow path, keeps every refusal too.
 */
TEST_F_TIMEOUT(gup, slow_path_gates_p2p_pages_like_the_fast_path, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin p;
	long pmd0 = file_pmd_mapped_kb();
	int fd;

	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, GUP_TEST_PATH " is missing (CONFIG_GUP_TEST, debugfs)");
	if (variant->huge)
		ASSERT_EQ(0, drop_pmd(self->p2p, LEN));
	EXPECT_EQ(0, gup_test_slow_pinned(fd, self->p2p, LEN, FOLL_WRITE));
	if (variant->huge)
		ASSERT_EQ(0, drop_pmd(self->p2p, LEN));
	EXPECT_EQ(NPAGES, gup_test_slow_pinned(fd, self->p2p, LEN, FOLL_WRITE | FOLL_PCI_P2PDMA));
	close(fd);
	EXPECT_EQ(1, pte_present(self->p2p));
	EXPECT_EQ(0x5a, self->p2p[LEN - 1]);
	if (!variant->huge)
		return;
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);

	ASSERT_EQ(0, drop_pmd(self->p2p, LEN));
	EXPECT_EQ(-EREMOTEIO, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_WRITE, &p));
	ASSERT_EQ(0, drop_pmd(self->p2p, LEN));
	EXPECT_EQ(-EINVAL, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_P2PDMA | P2PMEM_PIN_LONGTERM,
			       &p));
	ASSERT_EQ(0, pin(self->fd, self->p2p, LEN, P2PMEM_PIN_P2PDMA | P2PMEM_PIN_WRITE, &p));
	EXPECT_EQ(NPAGES, p.pinned);
	EXPECT_EQ(NPAGES, p.ours);
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
}

/*
 * The kernel's gup_test pins the buffer only with FOLL_PCI_P2PDMA: without it, no page, and
 * after ordinary pages it stops exactly at the first P2PDMA page.
 */
TEST_F_TIMEOUT(gup, debugfs_gup_test_needs_foll_pci_p2pdma, DRIVER_TEST_TIMEOUT_S)
{
	char *range, *p2p;
	int fd;

	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, GUP_TEST_PATH " is missing (CONFIG_GUP_TEST, debugfs)");
	EXPECT_EQ(0, gup_test_pinned(fd, self->p2p, LEN, FOLL_WRITE));
	EXPECT_EQ(0, gup_test_pinned(fd, self->p2p, LEN, 0));
	EXPECT_EQ(NPAGES, gup_test_pinned(fd, self->p2p, LEN, FOLL_WRITE | FOLL_PCI_P2PDMA));
	EXPECT_EQ(NPAGES, gup_test_pinned(fd, self->p2p, LEN, FOLL_PCI_P2PDMA));

	/* Anonymous pages, then P2PDMA pages. */
	range = aligned_anon(2 * LEN);
	ASSERT_NE(MAP_FAILED, range);
	p2p = mmap(range + LEN, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		   self->buf_fd, 0);
	ASSERT_EQ(range + LEN, p2p);
	EXPECT_EQ(NPAGES, gup_test_pinned(fd, range, 2 * LEN, FOLL_WRITE));
	EXPECT_EQ(2 * NPAGES, gup_test_pinned(fd, range, 2 * LEN, FOLL_WRITE | FOLL_PCI_P2PDMA));
	munmap(range, 2 * LEN);
	close(fd);
}

/* O_DIRECT between P2PDMA pages and a loop device (no P2PDMA support): EREMOTEIO, no data lost. */
TEST_F_TIMEOUT(gup, o_direct_to_a_loop_device_is_remoteio, DRIVER_TEST_TIMEOUT_S)
{
	char img[] = "/tmp/p2pmem-loopXXXXXX", cmd[256], loop[64] = "";
	char *host;
	FILE *f;
	int fd, lfd;

	fd = mkstemp(img);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_memalign((void **)&host, PAGE, LEN));
	memset(host, 0xa5, LEN);
	ASSERT_EQ((ssize_t)LEN, pwrite(fd, host, LEN, 0));
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s", img);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	if (!fgets(loop, sizeof(loop), f))
		loop[0] = '\0';
	pclose(f);
	loop[strcspn(loop, "\n")] = '\0';
	ASSERT_NE(0, loop[0]);

	lfd = open(loop, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, lfd);
	EXPECT_EQ(-1, pwrite(lfd, self->p2p, LEN, 0));
	EXPECT_EQ(EREMOTEIO, errno);
	EXPECT_EQ(-1, pread(lfd, self->p2p, LEN, 0));
	EXPECT_EQ(EREMOTEIO, errno);
	close(lfd);
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loop);
	EXPECT_EQ(0, system(cmd));

	/* Neither side changed. */
	fd = open(img, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	memset(host, 0, LEN);
	ASSERT_EQ((ssize_t)LEN, pread(fd, host, LEN, 0));
	close(fd);
	EXPECT_EQ(0xa5, (unsigned char)host[0]);
	EXPECT_EQ(0xa5, (unsigned char)host[LEN - 1]);
	EXPECT_EQ(0x5a, (unsigned char)self->p2p[0]);
	EXPECT_EQ(0x5a, (unsigned char)self->p2p[LEN - 1]);
	unlink(img);
	free(host);
}

/*
 * io_uring fixed buffers are long-term pins: registering P2PDMA pages fails. Our mapping
 * reaches GUP's P2PDMA check (EREMOTEIO); the kernel pool's sysfs mapping, whose kernfs
 * vm_ops track dirtying, is refused one step earlier as a long-term pin of a shared
 * writable file mapping (EFAULT).
 */
TEST_F_TIMEOUT(gup, io_uring_fixed_buffer_registration_fails, DRIVER_TEST_TIMEOUT_S)
{
	struct io_uring_params params = { 0 };
	struct iovec iov = { self->p2p, LEN };
	long ret;
	int ring;

	ring = syscall(__NR_io_uring_setup, 4, &params);
	if (ring < 0 && errno == EPERM)
		SKIP(return, "io_uring is disabled (kernel.io_uring_disabled)");
	ASSERT_LE(0, ring);
	ret = syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, &iov, 1);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(variant->kernel_pool ? EFAULT : EREMOTEIO, errno);
	close(ring);
}

/* process_vm_readv() from P2PDMA pages (GUP without FOLL_PCI_P2PDMA) fails with EFAULT. */
TEST_F_TIMEOUT(gup, process_vm_readv_from_p2p_fails, DRIVER_TEST_TIMEOUT_S)
{
	struct iovec local, remote = { self->p2p, PAGE };
	char buf[PAGE];

	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
}

/* vmsplice() of P2PDMA pages into a pipe (GUP without FOLL_PCI_P2PDMA) fails with EREMOTEIO. */
TEST_F_TIMEOUT(gup, vmsplice_of_p2p_pages_fails, DRIVER_TEST_TIMEOUT_S)
{
	struct iovec iov = { self->p2p, PAGE };
	int pipefd[2];

	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-1, vmsplice(pipefd[1], &iov, 1, 0));
	EXPECT_EQ(EREMOTEIO, errno);
	close(pipefd[0]);
	close(pipefd[1]);
}

TEST_HARNESS_MAIN
