// SPDX-License-Identifier: GPL-2.0
/*
 * Probe unwinding under allocation failures: every slab allocation of a bind fails in turn
 * (/proc/thread-self/fail-nth with failslab). Not part of the default run (run_tests.sh): the
 * faults also land in kernel code outside p2pmem that runs in the binding task (the PCI core's
 * ACPI power management), and on 7.3.4 one of those paths reports a KASAN use-after-free in
 * acpi_ns_get_attached_object() after an injected failure. Confining the faults to p2pmem's
 * frames needs CONFIG_FAULT_INJECTION_STACKTRACE_FILTER. Run it by hand:
 *   scripts/vm.sh -- env P2PMEM_TESTS=probe_fault_test tools/testing/selftests/p2pmem/run_tests.sh
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/p2pmem.h>

#include "kselftest_harness.h"
#include "p2pmem_util.h"

FIXTURE(p2pmem) {
	char ivshmem[BDF_LEN];
	char cmb[BDF_LEN];
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
	if (self->cmb[0])
		EXPECT_EQ(0, pci_restore_default_driver(self->cmb));
}

static bool bound_to(const char *bdf, const char *driver)
{
	char drv[64];

	return pci_driver_of(bdf, drv, sizeof(drv)) == 0 && !strcmp(drv, driver);
}

#define FAILSLAB "/sys/kernel/debug/failslab/"
#define MAX_FAULTS 3000

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
	return true;
}

/*
 * Probe unwinds cleanly from a failure at every slab allocation it makes, in turn
 * (/proc/thread-self/fail-nth with failslab): the bind fails with ENOMEM and leaves nothing
 * behind (no driver, no attributes, no /dev node, no P2PDMA state), and the probe that finally
 * runs without a fault serves a whole region. KASAN and kmemleak (the runner) see every unwind.
 */
static void probe_under_faults(struct __test_metadata *_metadata, const char *bdf)
{
	int nth, injected = 0, bound_anyway = 0, fd, fail;
	struct p2pmem_info info;
	char val[32];
	ssize_t n;

	if (access(FAILSLAB "ignore-gfp-wait", W_OK))
		SKIP(return, FAILSLAB " is missing (CONFIG_FAILSLAB, FAULT_INJECTION_DEBUG_FS)");
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
		ASSERT_TRUE(bound_to(bdf, P2PMEM_DRIVER));
		fd = open_p2pmem(bdf, NULL, 0);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, p2pmem_info(fd, &info));
		EXPECT_EQ(info.pages, info.free_pages);
		close(fd);
		ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", bdf));
	}
	close(fail);
	sysfs_write(FAILSLAB "ignore-gfp-wait", "Y");
	TH_LOG("%s: %d faults injected, %d failed the bind, %d absorbed", bdf, injected,
	       injected - bound_anyway, bound_anyway);
	ASSERT_LE(nth, MAX_FAULTS);
	/* Enough faults that every step of probe was hit: a vacuous run fails. */
	EXPECT_LE(20, injected - bound_anyway);
	ASSERT_TRUE(bound_to(bdf, P2PMEM_DRIVER));
	fd = open_p2pmem(bdf, NULL, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	EXPECT_EQ(info.pages, info.free_pages);
	EXPECT_LT(0, info.pages);
	close(fd);
}

/* A small window (2 MiB pool, 2 MiB region) keeps each of the many probes short. */
#define FAULT_WINDOW "size=0x400000 pool_size=0x200000"

TEST_F_TIMEOUT(p2pmem, ivshmem_probe_unwinds_every_allocation_failure, 900)
{
	ASSERT_EQ(0, module_load(FAULT_WINDOW));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->ivshmem));
	probe_under_faults(_metadata, self->ivshmem);
}

TEST_F_TIMEOUT(p2pmem, cmb_probe_unwinds_every_allocation_failure, 900)
{
	ASSERT_EQ(0, module_load(FAULT_WINDOW));
	ASSERT_EQ(0, pci_bind_override(self->cmb, P2PMEM_DRIVER));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->cmb));
	probe_under_faults(_metadata, self->cmb);
}

TEST_HARNESS_MAIN
