// SPDX-License-Identifier: GPL-2.0
/*
 * Huge mappings (huge_pages=1): the region as 2 MiB folios, each mapped at
 * fault time by one PMD.
 *
 * What says a mapping is PMD-mapped is the kernel's own accounting, not the
 * driver's word: a PMD mapping of a file folio adds 2 MiB to FilePmdMapped in
 * /proc/meminfo (rmap, NR_FILE_PMDMAPPED), and maps its 2 MiB without a PTE
 * table, so VmPTE in /proc/self/status grows by less than one table per
 * folio, where a PTE-mapped 2 MiB needs a 4 KiB table of its own. The same
 * counters read 0 for a mapping of a 4 KiB region (the control test).
 *
 * Mappings folios cannot serve (a length or start off a 2 MiB boundary) get
 * 4 KiB pages from the small part at the end of the region: the tests find
 * their bytes there, through the BAR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#define FOLIO (2 * MIB)
#define FOLIO_PAGES (FOLIO / PAGE)

/* P2PMEM_IOCTL_INFO of 0.2.0, whose struct ended at pci_dev. */
#define P2PMEM_IOCTL_INFO_V1 _IOC(_IOC_READ, P2PMEM_IOCTL_MAGIC, 0x00, \
				  offsetof(struct p2pmem_info, folio_size))

FIXTURE(huge) {
	char bdf[BDF_LEN];
	char nvme_dev[64];
	int fd;
	struct p2pmem_info info;
};

FIXTURE_SETUP(huge)
{
	self->fd = -1;
	ASSERT_EQ(0, module_unload());
	if (find_provider(false, self->bdf))
		SKIP(return, "no ivshmem in the test bed");
	if (find_namespace(DATA_NVME_SERIAL, self->nvme_dev, sizeof(self->nvme_dev)))
		self->nvme_dev[0] = 0;
	ASSERT_EQ(0, module_load("huge_pages=1"));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, p2pmem_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(huge)
{
	struct p2pmem_info info;

	/* Every test gives every folio back. */
	if (self->fd >= 0 && !p2pmem_info(self->fd, &info)) {
		EXPECT_EQ(0, info.outstanding_pages);
		EXPECT_EQ(info.pages, info.free_pages);
		EXPECT_EQ(info.handed_out_pages, info.freed_pages);
	}
	if (self->fd >= 0)
		close(self->fd);
	EXPECT_EQ(0, module_unload());
}

/* Reloads p2pmem with @params and reopens @bdf's node into *@fd (-1 on failure): 0 or -1. */
static int reload(int *fd, const char *bdf, const char *params)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	if (module_unload() || module_load(params))
		return -1;
	*fd = open_p2pmem(bdf, NULL, 0);
	return *fd < 0 ? -1 : 0;
}

/* A "Name:   N kB" line of @path, in kB; -1 when absent. */
static long kb_field(const char *path, const char *name)
{
	char line[256];
	size_t n = strlen(name);
	long val = -1;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			val = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return val;
}

static long file_pmd_mapped_kb(void)
{
	return kb_field("/proc/meminfo", "FilePmdMapped");
}

static long vm_pte_kb(void)
{
	return kb_field("/proc/self/status", "VmPTE");
}

static void *map(int fd, size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

/* Whether bytes [@off, @off + @len) of a buffer filled with fill(buf, ..., @seed) are intact. */
static bool check_at(const char *buf, size_t off, size_t len, __u32 seed)
{
	const __u32 *p = (const __u32 *)buf;
	size_t i;

	for (i = off / 4; i < (off + len) / 4; i++)
		if (p[i] != seed + (__u32)i * 2654435761u)
			return false;
	return true;
}

/* Touches one byte of every page of @buf (a write: a read would do as well). */
static void touch(char *buf, size_t len)
{
	size_t off;

	for (off = 0; off < len; off += PAGE)
		buf[off] = 1;
}

/* The default small_pages_size of a region of @region bytes. */
static __u64 small_default(__u64 region)
{
	__u64 eighth = region / 8 / FOLIO * FOLIO;

	if (eighth < FOLIO)
		eighth = FOLIO;
	return region - eighth >= FOLIO ? eighth : 0;
}

/* The region is 2 MiB folios; the counters still count pages; a 0.2.0 caller is served. */
TEST_F_TIMEOUT(huge, info_says_folios_of_2mib, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info old;

	EXPECT_EQ(FOLIO, self->info.folio_size);
	EXPECT_EQ(PAGE, self->info.page_size);
	EXPECT_EQ(self->info.region_bytes / PAGE, self->info.pages);
	EXPECT_EQ(0, self->info.pages % FOLIO_PAGES);
	/* The default small part: 1/8 of the region rounded down to 2 MiB, at least 2 MiB. */
	EXPECT_LT(0, self->info.folio_bytes);
	EXPECT_EQ(0, self->info.folio_bytes % FOLIO);
	EXPECT_EQ(small_default(self->info.region_bytes),
		  self->info.region_bytes - self->info.folio_bytes);

	memset(&old, 0xff, sizeof(old));
	ASSERT_EQ(0, ioctl(self->fd, P2PMEM_IOCTL_INFO_V1, &old));
	EXPECT_EQ(self->info.pages, old.pages);
	EXPECT_STREQ(self->info.pci_dev, old.pci_dev);
	/* Nothing past the 0.2.0 struct is written. */
	EXPECT_EQ(~0ULL, old.folio_size);
	EXPECT_EQ(~0ULL, old.folio_bytes);
}

/*
 * A mapping of whole folios is placed on a 2 MiB boundary and PMD-mapped end to end: the
 * kernel counts every byte of it in FilePmdMapped, and no PTE table is made for it.
 */
TEST_F_TIMEOUT(huge, aligned_mapping_is_pmd_mapped_end_to_end, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 8 * MIB;
	struct p2pmem_info info;
	long pmd0, pte0;
	char *buf;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	EXPECT_EQ(0, (uintptr_t)buf % FOLIO);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(len / PAGE, info.outstanding_pages);

	pmd0 = file_pmd_mapped_kb();
	pte0 = vm_pte_kb();
	ASSERT_LE(0, pmd0);
	touch(buf, len);
	EXPECT_EQ((long)(len >> 10), file_pmd_mapped_kb() - pmd0);
	/* Page tables grew by less than one PTE table per folio (a PMD table, at most). */
	EXPECT_GT((long)(4 * (len / FOLIO)), vm_pte_kb() - pte0);

	fill(buf, len, 3);
	EXPECT_TRUE(check(buf, len, 3));
	ASSERT_EQ(0, munmap(buf, len));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(0, info.outstanding_pages);
}

/* The mapping rules of 4 KiB regions hold: MAP_PRIVATE and an offset are EINVAL. */
TEST_F_TIMEOUT(huge, private_and_offset_mappings_are_einval, DRIVER_TEST_TIMEOUT_S)
{
	EXPECT_EQ(MAP_FAILED, mmap(NULL, FOLIO, PROT_READ, MAP_PRIVATE, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, FOLIO, PROT_READ, MAP_SHARED, self->fd, FOLIO));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * A mapping folios cannot serve gets 4 KiB pages of the small part, mapped at mmap() time and
 * never by a PMD: a length that is not a multiple of 2 MiB, or a caller-chosen address off a
 * boundary. Its bytes are in the small part, in order, where the BAR shows them.
 */
TEST_F_TIMEOUT(huge, mappings_folios_cannot_serve_get_small_pages, DRIVER_TEST_TIMEOUT_S)
{
	off_t small = self->info.region_offset + self->info.folio_bytes;
	__u32 seed = (__u32)getpid() * 2654435761u;
	char *page, *odd, *hole, *at, *fixed;
	struct p2pmem_info info;
	long pmd0;

	pmd0 = file_pmd_mapped_kb();
	page = map(self->fd, PAGE);
	ASSERT_NE(MAP_FAILED, page);
	/* Mapped at mmap() time, as in a 4 KiB region; folio mappings wait for a fault. */
	EXPECT_EQ(1, pte_present(page));
	odd = map(self->fd, FOLIO + PAGE);
	ASSERT_NE(MAP_FAILED, odd);
	hole = mmap(NULL, 3 * FOLIO, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	at = (char *)(((uintptr_t)hole + FOLIO - 1) / FOLIO * FOLIO + PAGE);
	fixed = mmap(at, FOLIO, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, self->fd, 0);
	ASSERT_EQ(at, fixed);
	EXPECT_EQ(1, pte_present(odd + FOLIO));
	EXPECT_EQ(1, pte_present(fixed + FOLIO - PAGE));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(1 + FOLIO_PAGES + 1 + FOLIO_PAGES, info.outstanding_pages);

	/* Seeds of this run: the BAR's RAM keeps the bytes of earlier runs in the same boot. */
	fill(page, PAGE, seed);
	fill(odd, FOLIO + PAGE, seed + 1);
	fill(fixed, FOLIO, seed + 2);
	EXPECT_TRUE(bar_holds(self->bdf, self->info.bar, small, PAGE, seed));
	EXPECT_TRUE(bar_holds(self->bdf, self->info.bar, small + PAGE, FOLIO + PAGE, seed + 1));
	EXPECT_TRUE(bar_holds(self->bdf, self->info.bar, small + FOLIO + 2 * PAGE, FOLIO,
			      seed + 2));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);

	ASSERT_EQ(0, munmap(page, PAGE));
	ASSERT_EQ(0, munmap(odd, FOLIO + PAGE));
	ASSERT_EQ(0, munmap(hole, 3 * FOLIO));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(0, info.outstanding_pages);
}

/*
 * Without a small part (small_pages_size=0) the region is all folios, and a mapping they
 * cannot serve is EINVAL, with nothing taken.
 */
TEST_F_TIMEOUT(huge, without_a_small_part_only_folios_are_served, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_info info;
	char *hole, *at;
	int fd;

	ASSERT_EQ(0, reload(&self->fd, self->bdf, "huge_pages=1 small_pages_size=0"));
	fd = self->fd;
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	EXPECT_EQ(info.region_bytes, info.folio_bytes);

	EXPECT_EQ(MAP_FAILED, map(fd, PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, map(fd, FOLIO + PAGE));
	EXPECT_EQ(EINVAL, errno);
	hole = mmap(NULL, 3 * FOLIO, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	at = (char *)(((uintptr_t)hole + FOLIO - 1) / FOLIO * FOLIO + PAGE);
	EXPECT_EQ(MAP_FAILED, mmap(at, FOLIO, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				   fd, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, munmap(hole, 3 * FOLIO));
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	EXPECT_EQ(0, info.handed_out_pages);
}

/* A small_pages_size off the 2 MiB granule, or leaving no folio, fails the probe with EINVAL. */
TEST_F_TIMEOUT(huge, bad_small_pages_size_fails_the_probe, DRIVER_TEST_TIMEOUT_S)
{
	const char *const unaligned[] = { self->bdf, "small_pages_size=0x1000 is not a multiple",
					  NULL };
	const char *const too_large[] = { self->bdf, "leaves no 2 MiB folio", NULL };
	char params[128], drv[64];
	int kmsg;

	close(self->fd);
	self->fd = -1;
	kmsg = kmsg_open();
	ASSERT_LE(0, kmsg);
	ASSERT_EQ(0, module_unload());
	ASSERT_EQ(0, module_load("huge_pages=1 small_pages_size=4096"));
	ASSERT_EQ(0, pci_driver_of(self->bdf, drv, sizeof(drv)));
	EXPECT_STRNE(P2PMEM_DRIVER, drv);
	EXPECT_TRUE(kmsg_grep(kmsg, unaligned, NULL, 0));
	EXPECT_EQ(-EINVAL, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));

	ASSERT_EQ(0, module_unload());
	snprintf(params, sizeof(params), "huge_pages=1 small_pages_size=%llu",
		 (unsigned long long)self->info.region_bytes);
	ASSERT_EQ(0, module_load(params));
	ASSERT_EQ(0, pci_driver_of(self->bdf, drv, sizeof(drv)));
	EXPECT_STRNE(P2PMEM_DRIVER, drv);
	EXPECT_TRUE(kmsg_grep(kmsg, too_large, NULL, 0));
	close(kmsg);

	/* The teardown's checks, on a good binding. */
	ASSERT_EQ(0, reload(&self->fd, self->bdf, "huge_pages=1"));
}

/*
 * The region serves as many 2 MiB mappings as it has folios, then ENOMEM; nothing is lost, and
 * the small part still serves small mappings.
 */
TEST_F_TIMEOUT(huge, region_runs_out_of_folios_with_enomem, DRIVER_TEST_TIMEOUT_S)
{
	size_t folios = self->info.folio_bytes / FOLIO, i;
	struct p2pmem_info info;
	char **bufs, *page;

	bufs = calloc(folios, sizeof(*bufs));
	ASSERT_NE(NULL, bufs);
	for (i = 0; i < folios; i++) {
		bufs[i] = map(self->fd, FOLIO);
		ASSERT_NE(MAP_FAILED, bufs[i]);
	}
	EXPECT_EQ(MAP_FAILED, map(self->fd, FOLIO));
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ((info.region_bytes - info.folio_bytes) / PAGE, info.free_pages);
	page = map(self->fd, PAGE);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, munmap(page, PAGE));
	for (i = 0; i < folios; i++)
		ASSERT_EQ(0, munmap(bufs[i], FOLIO));
	free(bufs);
}

/*
 * Unmapping a whole folio out of the middle splits the mapping on a 2 MiB boundary: the rest
 * keeps its bytes and stays PMD-mapped; the folios come back once the last piece goes. A
 * split inside a folio is EINVAL.
 */
TEST_F_TIMEOUT(huge, partial_munmap_on_a_folio_boundary_only, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 6 * MIB;
	struct p2pmem_info info;
	long pmd0;
	char *buf;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, len, 7);
	EXPECT_EQ(-1, munmap(buf + MIB, PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mprotect(buf + MIB, FOLIO, PROT_READ));
	EXPECT_EQ(EINVAL, errno);
	pmd0 = file_pmd_mapped_kb();
	ASSERT_EQ(0, munmap(buf + FOLIO, FOLIO));
	EXPECT_EQ(-(long)(FOLIO >> 10), file_pmd_mapped_kb() - pmd0);
	EXPECT_TRUE(check_at(buf, 0, FOLIO, 7));
	EXPECT_TRUE(check_at(buf, 2 * FOLIO, FOLIO, 7));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(len / PAGE, info.outstanding_pages);
	ASSERT_EQ(0, munmap(buf, FOLIO));
	ASSERT_EQ(0, munmap(buf + 2 * FOLIO, FOLIO));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(0, info.outstanding_pages);
}

/* The control: the same mapping of a 4 KiB region is PTE-mapped; FilePmdMapped does not move. */
TEST_F_TIMEOUT(huge, a_4k_region_is_not_pmd_mapped, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 8 * MIB;
	struct p2pmem_info info;
	long pmd0, pte0;
	char *buf;
	int fd;

	ASSERT_EQ(0, reload(&self->fd, self->bdf, ""));
	fd = self->fd;
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	EXPECT_EQ(PAGE, info.folio_size);
	EXPECT_EQ(info.region_bytes, info.folio_bytes);
	buf = map(fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	pmd0 = file_pmd_mapped_kb();
	pte0 = vm_pte_kb();
	touch(buf, len);
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	/* Mapped at mmap() time: the tables were made then. */
	EXPECT_EQ(0, vm_pte_kb() - pte0);
	ASSERT_EQ(0, munmap(buf, len));
	pte0 = vm_pte_kb();
	buf = map(fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	/* At least one 4 KiB PTE table per 2 MiB. */
	EXPECT_LE((long)(4 * (len / FOLIO)), vm_pte_kb() - pte0);
	ASSERT_EQ(0, munmap(buf, len));
}

/* MADV_DONTNEED drops the page table entries only: the next access maps the same bytes. */
TEST_F_TIMEOUT(huge, madvise_dontneed_refaults_the_same_bytes, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 4 * MIB;
	long pmd0;
	char *buf;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, len, 8);
	pmd0 = file_pmd_mapped_kb();
	ASSERT_EQ(0, madvise(buf, len, MADV_DONTNEED));
	EXPECT_EQ(-(long)(len >> 10), file_pmd_mapped_kb() - pmd0);
	EXPECT_TRUE(check(buf, len, 8));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	/* Part of one PMD: the mm splits it, which drops it whole; it faults back as a PMD. */
	ASSERT_EQ(0, madvise(buf + MIB, PAGE, MADV_DONTNEED));
	EXPECT_EQ(-(long)(FOLIO >> 10), file_pmd_mapped_kb() - pmd0);
	EXPECT_TRUE(check(buf, len, 8));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	ASSERT_EQ(0, munmap(buf, len));
}

/* A child of fork() shares the folios both ways; they come back when both unmapped. */
TEST_F_TIMEOUT(huge, fork_shares_the_folios, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 4 * MIB;
	struct p2pmem_info info;
	int status;
	char *buf;
	pid_t pid;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, len, 9);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(check(buf, len, 9) ? (fill(buf, len, 10), 0) : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_TRUE(check(buf, len, 10));
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(len / PAGE, info.outstanding_pages);
	ASSERT_EQ(0, munmap(buf, len));
}

/* mremap() moves a huge mapping to another 2 MiB boundary; it stays PMD-mapped there. */
TEST_F_TIMEOUT(huge, mremap_moves_a_huge_mapping, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 4 * MIB;
	char *buf, *hole, *target, *moved, *other, *off_boundary;
	long pmd0;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, len, 11);
	hole = mmap(NULL, len + FOLIO, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	target = (char *)(((uintptr_t)hole + FOLIO - 1) / FOLIO * FOLIO);
	moved = mremap(buf, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	ASSERT_EQ(target, moved);
	/* The PMDs moved along; dropped, they fault back in as PMDs. */
	pmd0 = file_pmd_mapped_kb();
	ASSERT_EQ(0, madvise(moved, len, MADV_DONTNEED));
	EXPECT_EQ(-(long)(len >> 10), file_pmd_mapped_kb() - pmd0);
	EXPECT_TRUE(check(moved, len, 11));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	/* Growing is refused, as for every mapping of ours (VM_DONTEXPAND). */
	EXPECT_EQ(MAP_FAILED, mremap(moved, len, 2 * len, 0));
	EXPECT_EQ(EFAULT, errno);
	/* A move off a 2 MiB boundary is refused, and the mapping stays where it was, intact. */
	other = mmap(NULL, len + 2 * FOLIO, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, other);
	off_boundary = (char *)(((uintptr_t)other + FOLIO - 1) / FOLIO * FOLIO + PAGE);
	EXPECT_EQ(MAP_FAILED, mremap(moved, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				     off_boundary));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(check(moved, len, 11));
	ASSERT_EQ(0, munmap(other, len + 2 * FOLIO));
	ASSERT_EQ(0, munmap(hole, len + FOLIO));
}

/* O_DIRECT between the NVMe and a PMD-mapped buffer: the NVMe DMAs, the bytes match. */
TEST_F_TIMEOUT(huge, o_direct_into_a_pmd_mapped_buffer_moves_the_bytes, 300)
{
	size_t len = 4 * MIB;
	long pmd0;
	void *host;
	char *p2p;
	int fd;

	if (!self->nvme_dev[0])
		SKIP(return, "no NVMe namespace with serial " DATA_NVME_SERIAL);
	ASSERT_EQ(0, posix_memalign(&host, PAGE, len));
	p2p = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, p2p);
	pmd0 = file_pmd_mapped_kb();
	memset(p2p, 0, len);
	ASSERT_EQ((long)(len >> 10), file_pmd_mapped_kb() - pmd0);

	fd = open(self->nvme_dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, fd);
	fill(host, len, 12);
	ASSERT_EQ((ssize_t)len, pwrite(fd, host, len, 0));
	ASSERT_EQ((ssize_t)len, pread(fd, p2p, len, 0));
	EXPECT_TRUE(check(p2p, len, 12));
	fill(p2p, len, 13);
	ASSERT_EQ((ssize_t)len, pwrite(fd, p2p, len, 8 * MIB));
	memset(host, 0, len);
	ASSERT_EQ((ssize_t)len, pread(fd, host, len, 8 * MIB));
	EXPECT_TRUE(check(host, len, 13));
	/* Still PMD-mapped: the I/O did not split anything. */
	EXPECT_EQ((long)(len >> 10), file_pmd_mapped_kb() - pmd0);
	close(fd);
	ASSERT_EQ(0, munmap(p2p, len));
	free(host);
}

/*
 * Unbind during an O_DIRECT read into folios waits for the read: submitted (every page of the
 * PMD-mapped buffer pinned) and still in flight on the throttled NVMe when the unbind starts,
 * it completes in full before the unbind returns, with the disk's bytes in the folios, where
 * the BAR shows them; the mapping is gone after.
 */
TEST_F_TIMEOUT(huge, unbind_waits_for_o_direct_in_flight_into_folios, 300)
{
	struct timed_read r = { .len = 2 * FOLIO };
	struct counter_watch w = { .bdf = self->bdf, .node = "" };
	__u32 seed = (__u32)getpid() * 40503u;
	__u64 unbind_start, unbind_end;
	pthread_t reader, watcher;
	char slow[64];
	long pmd0;
	void *host;
	int i;

	if (find_namespace(SLOW_NVME_SERIAL, slow, sizeof(slow)))
		SKIP(return, "no throttled NVMe namespace (serial " SLOW_NVME_SERIAL ")");
	r.dev = slow;
	ASSERT_EQ(0, posix_memalign(&host, PAGE, r.len));
	fill(host, r.len, seed);
	ASSERT_EQ((ssize_t)r.len, direct_write_unwatched(slow, host, r.len, 0));
	free(host);

	r.buf = map(self->fd, r.len);
	ASSERT_NE(MAP_FAILED, r.buf);
	pmd0 = file_pmd_mapped_kb();
	memset(r.buf, 0, r.len);
	ASSERT_EQ((long)(r.len >> 10), file_pmd_mapped_kb() - pmd0);
	for (i = 0; i < 3000 && inflight_reads(slow) != 0; i++)
		usleep(10000);
	w.buf = r.buf;
	ASSERT_EQ(0, pthread_create(&watcher, NULL, watch_outstanding, &w));
	ASSERT_EQ(0, pthread_create(&reader, NULL, timed_read, &r));
	ASSERT_TRUE(read_in_flight(&r));

	unbind_start = now_ns();
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf));
	unbind_end = now_ns();
	ASSERT_EQ(0, pthread_join(reader, NULL));
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(watcher, NULL));
	TH_LOG("read %lld bytes in %llu ms; unbind %llu ms; %d samples, at most %llu pages out",
	       (long long)r.ret, (r.end_ns - r.start_ns) / 1000000,
	       (unbind_end - unbind_start) / 1000000, w.samples, w.max_outstanding);
	EXPECT_EQ((ssize_t)r.len, r.ret);
	EXPECT_LT(unbind_start, r.end_ns);
	EXPECT_LE(r.end_ns, unbind_end + SYSCALL_SLACK_NS);
	/*
	 * p2pmem's own drain waited, with its counters up: the two folios out meanwhile. (The
	 * kernel's memunmap_pages() would wait too, but only after the counters are gone.)
	 */
	EXPECT_LT(0, w.samples);
	EXPECT_EQ(r.len / PAGE, w.max_outstanding);
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	EXPECT_EQ(0, pte_present(r.buf));
	/* The first two folios of a fresh binding. */
	EXPECT_TRUE(bar_holds(self->bdf, self->info.bar, self->info.region_offset, r.len, seed));

	ASSERT_EQ(0, munmap(r.buf, r.len));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
}

/*
 * Unbind zaps the PMDs and takes the folios back, and the small part's pages: both mappings
 * raise SIGBUS after.
 */
TEST_F_TIMEOUT(huge, unbind_zaps_pmds_and_takes_the_folios_back, DRIVER_TEST_TIMEOUT_S)
{
	size_t len = 4 * MIB;
	struct p2pmem_info info;
	char *buf, *small;
	long pmd0;

	buf = map(self->fd, len);
	ASSERT_NE(MAP_FAILED, buf);
	small = map(self->fd, PAGE);
	ASSERT_NE(MAP_FAILED, small);
	pmd0 = file_pmd_mapped_kb();
	touch(buf, len);
	touch(small, PAGE);
	EXPECT_EQ((long)(len >> 10), file_pmd_mapped_kb() - pmd0);
	EXPECT_EQ(1, pte_present(buf + len - PAGE));
	EXPECT_EQ(1, pte_present(small));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->bdf));
	EXPECT_EQ(0, file_pmd_mapped_kb() - pmd0);
	/* Zapped here, in this process (a child of fork() never had the PMDs: it faults). */
	EXPECT_EQ(0, pte_present(buf));
	EXPECT_EQ(0, pte_present(buf + len - PAGE));
	EXPECT_EQ(0, pte_present(small));
	EXPECT_TRUE(access_raises_sigbus(buf));
	EXPECT_TRUE(access_raises_sigbus(buf + len - PAGE));
	EXPECT_TRUE(access_raises_sigbus(small));
	ASSERT_EQ(0, munmap(buf, len));
	ASSERT_EQ(0, munmap(small, PAGE));
	/* The counters are gone with the region; a rebind starts with every folio free. */
	EXPECT_EQ(-ENODEV, p2pmem_info(self->fd, &info));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->bdf));
	self->fd = open_p2pmem(self->bdf, NULL, 0);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, p2pmem_info(self->fd, &info));
	EXPECT_EQ(info.pages, info.free_pages);
	EXPECT_EQ(FOLIO, info.folio_size);
}

TEST_HARNESS_MAIN
