// SPDX-License-Identifier: GPL-2.0
/*
 * Probe unwinding under allocation failures: every slab allocation that p2pmem's probe makes
 * (itself or through the kernel functions it calls) fails in turn (/proc/thread-self/fail-nth
 * with failslab). The faults are confined to call chains that pass through p2pmem.ko's code
 * (failslab's require-start/require-end, CONFIG_FAULT_INJECTION_STACKTRACE_FILTER): the binding
 * task also runs the PCI core's ACPI power management, whose own error path reports a KASAN
 * use-after-free in acpi_ns_get_attached_object() on 7.3.4 when one of its allocations fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/p2pmem.h>

#include "kselftest_harness.h"
#include "p2pmem_util.h"

FIXTURE(p2pmem) {
	char ivshmem[BDF_LEN];
	char cmb[BDF_LEN];
	char enabled[128];	/* the sysfs enable file of the device the test holds enabled */
};

FIXTURE_SETUP(p2pmem)
{
	if (geteuid())
		SKIP(return, "needs root");
	ASSERT_EQ(0, module_unload());
	if (find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, self->ivshmem))
		SKIP(return, "no ivshmem device (not the scripts/vm.sh test bed?)");
	if (find_nvme_by_serial(CMB_NVME_SERIAL, self->cmb))
		SKIP(return, "no NVMe controller with serial " CMB_NVME_SERIAL);
}

FIXTURE_TEARDOWN(p2pmem)
{
	EXPECT_EQ(0, module_unload());
	if (self->enabled[0])
		EXPECT_EQ(0, sysfs_write(self->enabled, "0"));
	if (self->cmb[0])
		EXPECT_EQ(0, pci_restore_default_driver(self->cmb));
}

static bool bound_to(const char *bdf, const char *driver)
{
	char drv[64];

	return pci_driver_of(bdf, drv, sizeof(drv)) == 0 && !strcmp(drv, driver);
}

#define FAILSLAB "/sys/kernel/debug/failslab/"
/* fail-nth counts the fault points of every kind: page allocations are confined too. */
#define FAIL_PAGE_ALLOC "/sys/kernel/debug/fail_page_alloc/"
#define MAX_FAULTS 3000

/*
 * Sets the stack filter of the fault attribute in @dir: a frame in [@start, @end) is required,
 * none in [@rstart, @rend) allowed; 0 on success.
 */
static int confine(const char *dir, const char *start, const char *end, const char *rstart,
		   const char *rend)
{
	const char *const files[] = { "require-start", "require-end", "reject-start", "reject-end",
				      "stacktrace-depth" };
	const char *const vals[] = { start, end, rstart, rend, "32" };
	char path[128];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, files[i]);
		if (sysfs_write(path, vals[i]))
			return -EIO;
	}
	return 0;
}

/* The address range of kernel function @name (/proc/kallsyms, to the next symbol); 0 if found. */
static int symbol_range(const char *name, unsigned long *start, unsigned long *end)
{
	char line[512], sym[256];
	unsigned long addr;
	FILE *f;
	int pass;

	*start = 0;
	*end = ~0UL;
	/* Pass 0 finds the symbol, pass 1 the lowest address above it. */
	for (pass = 0; pass < 2; pass++) {
		f = fopen("/proc/kallsyms", "re");
		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%lx %*s %255s", &addr, sym) != 2)
				continue;
			if (!pass && !*start && !strcmp(sym, name))
				*start = addr;
			else if (pass && addr > *start && addr < *end)
				*end = addr;
		}
		fclose(f);
		if (!*start)
			return -ENOENT;
	}
	return *end == ~0UL ? -ENOENT : 0;
}

/*
 * Confines failslab and fail_page_alloc to allocations with a p2pmem.ko frame among the
 * innermost 32 return addresses: [start, end) is the module's core memory as /proc/modules
 * gives it (its text first, then its data, which holds no return address; the span may cover
 * other modules' text too, which no bind runs). 0 on success.
 *
 * Allocations under gen_pool_add_owner() are never failed: on 7.3.4, when it fails inside
 * pci_p2pdma_add_resource(), that function frees its pagemap but leaves the devm action
 * pci_p2pdma_unmap_mappings() registered on it, which the failed probe's devres release then
 * runs on freed memory (a KASAN slab-use-after-free in the kernel, whoever the caller is).
 */
static int failslab_confine_to_p2pmem(void)
{
	char start[32], end[32], rstart[32], rend[32];
	unsigned long gp_start, gp_end;
	unsigned long size, base = 0;
	char line[256], name[64];
	FILE *f = fopen("/proc/modules", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu %*s %*s %*s %lx", name, &size, &base) == 3 &&
		    !strcmp(name, P2PMEM_DRIVER))
			break;
		base = 0;
	}
	fclose(f);
	/* 0: not loaded, or the address hidden (kptr_restrict). */
	if (!base)
		return -ENOENT;
	if (symbol_range("gen_pool_add_owner", &gp_start, &gp_end))
		return -ENOENT;
	snprintf(start, sizeof(start), "0x%lx", base);
	snprintf(end, sizeof(end), "0x%lx", base + size);
	snprintf(rstart, sizeof(rstart), "0x%lx", gp_start);
	snprintf(rend, sizeof(rend), "0x%lx", gp_end);
	if (confine(FAILSLAB, start, end, rstart, rend))
		return -EIO;
	return confine(FAIL_PAGE_ALLOC, start, end, rstart, rend);
}

/* Every call chain again (the defaults); 0 on success. */
static int failslab_unconfine(void)
{
	const char *const all = "0xffffffffffffffff";

	return confine(FAILSLAB, "0", all, "0", "0") ||
	       confine(FAIL_PAGE_ALLOC, "0", all, "0", "0") ? -EIO : 0;
}

static bool iomem_claimed(const char *bdf, const char *owner);

/* Whether sysfs shows nothing of a binding of @bdf: no driver, no p2pmem attributes, no node. */
static bool nothing_left(const char *bdf)
{
	char path[128], drv[64];
	int fd;

	if (pci_driver_of(bdf, drv, sizeof(drv)) || drv[0])
		return false;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem_region", bdf);
	if (!access(path, F_OK))
		return false;
	/* The kernel's P2PDMA state (and its p2pmem/ group) is devres: gone with the probe. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem", bdf);
	if (!access(path, F_OK))
		return false;
	fd = open_p2pmem(bdf, NULL, 0);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	/* pci_enable_device_mem() undone: the enable count is the test's own (1). */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", bdf);
	if (sysfs_read(path, drv, sizeof(drv)) || strcmp(drv, "1"))
		return false;
	/* The BAR claim (pci_request_region(), named after us) released. */
	return !iomem_claimed(bdf, P2PMEM_DRIVER);
}

/* Whether /proc/iomem has a region named @owner inside one of @bdf's BARs. */
static bool iomem_claimed(const char *bdf, const char *owner)
{
	unsigned long long bars[6][2], start, end;
	char line[256];
	bool found = false;
	FILE *f;
	int i;

	for (i = 0; i < 6; i++)
		if (pci_bar_range(bdf, i, &bars[i][0], &bars[i][1]))
			bars[i][1] = 0;
	f = fopen("/proc/iomem", "re");
	if (!f)
		return true;
	/* "    f0000000-f3ffffff : p2pmem" */
	while (!found && fgets(line, sizeof(line), f)) {
		char *name = strstr(line, " : ");

		line[strcspn(line, "\n")] = '\0';
		if (!name || strcmp(name + 3, owner) ||
		    sscanf(line, " %llx-%llx", &start, &end) != 2)
			continue;
		for (i = 0; i < 6; i++)
			found |= bars[i][1] && start >= bars[i][0] && end <= bars[i][1];
	}
	fclose(f);
	return found;
}

/*
 * Whether @bdf is bound and serves what the fault window asks for: a 2 MiB kernel pool,
 * published, and a region of the rest whose pages map and come back; and p2pmem holds one
 * enable of the device.
 */
static bool binding_whole(struct __test_metadata *_metadata, const char *bdf)
{
	struct p2pmem_info info, after;
	char path[128], val[32];
	bool whole;
	void *p;
	int fd;

	if (!bound_to(bdf, P2PMEM_DRIVER))
		return false;
	fd = open_p2pmem(bdf, NULL, 0);
	if (fd < 0)
		return false;
	whole = !p2pmem_info(fd, &info) && info.pages > 0 && info.pages == info.free_pages &&
		info.pages * info.page_size == info.region_bytes && info.pool_bytes == 2 << 20;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/size", bdf);
	whole = whole && !sysfs_read(path, val, sizeof(val)) && strtoull(val, NULL, 0) == 2 << 20;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/published", bdf);
	whole = whole && !sysfs_read(path, val, sizeof(val)) && !strcmp(val, "1");
	/* p2pmem's enable on top of the test's own. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", bdf);
	whole = whole && !sysfs_read(path, val, sizeof(val)) && !strcmp(val, "2");
	p = mmap(NULL, info.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		whole = false;
	} else {
		/* Mapped at mmap() time: the page is out until munmap(). */
		whole = whole && !p2pmem_info(fd, &after) && after.outstanding_pages == 1;
		munmap(p, info.page_size);
		whole = whole && !p2pmem_info(fd, &after) && after.outstanding_pages == 0;
	}
	close(fd);
	if (!whole)
		TH_LOG("%s: pages %llu free %llu region %llu pool %llu", bdf,
		       (unsigned long long)info.pages, (unsigned long long)info.free_pages,
		       (unsigned long long)info.region_bytes, (unsigned long long)info.pool_bytes);
	return whole;
}

/*
 * Probe unwinds cleanly from a failure at every slab allocation it makes, in turn
 * (/proc/thread-self/fail-nth with failslab): the bind fails with ENOMEM and leaves nothing
 * behind (no driver, no attributes, no /dev node, no P2PDMA state), and the probe that finally
 * runs without a fault serves a whole region. KASAN and kmemleak (the runner) see every unwind.
 */
static void probe_under_faults(struct __test_metadata *_metadata, char *enabled, size_t len,
			       const char *bdf)
{
	int nth, injected = 0, bound_anyway = 0, fd, fail;
	char val[32];
	ssize_t n;

	if (access(FAILSLAB "ignore-gfp-wait", W_OK))
		SKIP(return, FAILSLAB " is missing (CONFIG_FAILSLAB, FAULT_INJECTION_DEBUG_FS)");
	if (access(FAILSLAB "require-start", W_OK))
		SKIP(return, "no failslab stack filter (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)");
	/*
	 * The test holds the device enabled itself, so that p2pmem's pci_enable_device_mem() only
	 * counts (and its disable only uncounts): the faults then never reach the ACPI interpreter
	 * under the PCI core's IRQ routing, whose error paths leave its namespace with freed
	 * objects on 7.3.4 (KASAN slab-use-after-free in acpi_ns_get_attached_object() at the next
	 * pci_disable_device()). A leaked or doubly dropped enable of p2pmem's still shows.
	 */
	snprintf(enabled, len, "/sys/bus/pci/devices/%s/enable", bdf);
	ASSERT_EQ(0, sysfs_write(enabled, "1"));
	ASSERT_EQ(0, failslab_confine_to_p2pmem());
	ASSERT_EQ(0, sysfs_write(FAILSLAB "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, sysfs_write(FAILSLAB "verbose", "0"));
	fail = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fail);

	for (nth = 1; nth <= MAX_FAULTS; nth++) {
		int err;

		fd = open("/sys/bus/pci/drivers/" P2PMEM_DRIVER "/bind", O_WRONLY | O_CLOEXEC);
		ASSERT_LE(0, fd);
		/* The nth fault point this thread reaches from now on fails. */
		snprintf(val, sizeof(val), "%d", nth);
		ASSERT_LT(0, pwrite(fail, val, strlen(val), 0));
		n = write(fd, bdf, strlen(bdf));
		err = n < 0 ? errno : 0;
		/* 0: the fault was injected; > 0: the bind ran out of fault points first. */
		memset(val, 0, sizeof(val));
		ASSERT_LT(0, pread(fail, val, sizeof(val) - 1, 0));
		ASSERT_LT(0, pwrite(fail, "0", 1, 0));
		close(fd);
		if (atoi(val) != 0) {
			ASSERT_EQ((ssize_t)strlen(bdf), n) {
				TH_LOG("bind without a fault failed: %s", strerror(err));
			}
			break; /* probe ran clean */
		}
		injected++;
		if (n < 0) {
			/* pci_request_region() reports its failed allocation as EBUSY. */
			ASSERT_TRUE(err == ENOMEM || err == EBUSY) {
				TH_LOG("fault %d: bind failed with %s", nth, strerror(err));
			}
			ASSERT_TRUE(nothing_left(bdf)) {
				TH_LOG("fault %d: the failed probe left something behind", nth);
			}
			continue;
		}
		/* A fault the probe absorbed: the binding must be whole. */
		bound_anyway++;
		ASSERT_TRUE(binding_whole(_metadata, bdf)) {
			TH_LOG("fault %d: absorbed, but the binding is not whole", nth);
		}
		ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", bdf));
	}
	close(fail);
	EXPECT_EQ(0, sysfs_write(FAILSLAB "ignore-gfp-wait", "Y"));
	EXPECT_EQ(0, failslab_unconfine());
	TH_LOG("%s: %d faults injected, %d failed the bind, %d absorbed", bdf, injected,
	       injected - bound_anyway, bound_anyway);
	ASSERT_LE(nth, MAX_FAULTS);
	/* Enough faults that every step of probe was hit: a vacuous run fails. */
	EXPECT_LE(20, injected - bound_anyway);
	EXPECT_TRUE(binding_whole(_metadata, bdf));
}

/* A small window (2 MiB pool, 2 MiB region) keeps each of the many probes short. */
#define FAULT_WINDOW "size=0x400000 pool_size=0x200000"

TEST_F_TIMEOUT(p2pmem, ivshmem_probe_unwinds_every_allocation_failure, 900)
{
	ASSERT_EQ(0, module_load(FAULT_WINDOW));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->ivshmem));
	probe_under_faults(_metadata, self->enabled, sizeof(self->enabled), self->ivshmem);
}

TEST_F_TIMEOUT(p2pmem, cmb_probe_unwinds_every_allocation_failure, 900)
{
	ASSERT_EQ(0, module_load(FAULT_WINDOW));
	ASSERT_EQ(0, pci_bind_override(self->cmb, P2PMEM_DRIVER));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->cmb));
	probe_under_faults(_metadata, self->enabled, sizeof(self->enabled), self->cmb);
}

TEST_HARNESS_MAIN
