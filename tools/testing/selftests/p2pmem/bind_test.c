// SPDX-License-Identifier: GPL-2.0
/*
 * p2pmem driver lifecycle: load and unload, binding ivshmem by ID and an
 * NVMe CMB through driver_override, rebinding, and bad parameters.
 *
 * Runs as root in the test-bed guest (scripts/vm.sh); $P2PMEM_KO names the
 * module. Each test leaves the module unloaded and the CMB NVMe back on nvme.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/p2pmem.h>

#include "kselftest_harness.h"
#include "p2pmem_util.h"

#define REBIND_LOOPS 20

FIXTURE(p2pmem) {
	char ivshmem[BDF_LEN];
	char cmb[BDF_LEN];
	int kmsg;
};

FIXTURE_SETUP(p2pmem)
{
	char drv[64];

	if (geteuid())
		SKIP(return, "needs root");
	ASSERT_EQ(0, module_unload());
	if (find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, self->ivshmem))
		SKIP(return, "no ivshmem device (not the scripts/vm.sh test bed?)");
	if (find_nvme_by_serial(CMB_NVME_SERIAL, self->cmb))
		SKIP(return, "no NVMe controller with serial " CMB_NVME_SERIAL);
	ASSERT_EQ(0, pci_driver_of(self->cmb, drv, sizeof(drv)));
	ASSERT_STREQ("nvme", drv);
	self->kmsg = kmsg_open();
	ASSERT_LE(0, self->kmsg);
}

FIXTURE_TEARDOWN(p2pmem)
{
	EXPECT_EQ(0, module_unload());
	if (self->cmb[0])
		EXPECT_EQ(0, pci_restore_default_driver(self->cmb));
	if (self->kmsg > 0)
		close(self->kmsg);
}

static bool bound_to(const char *bdf, const char *driver)
{
	char drv[64];

	return pci_driver_of(bdf, drv, sizeof(drv)) == 0 && !strcmp(drv, driver);
}

/* The module loads, registers its PCI driver, and unloads cleanly. */
TEST_F_TIMEOUT(p2pmem, module_loads_and_unloads, DRIVER_TEST_TIMEOUT_S)
{
	ASSERT_EQ(0, module_unload());
	ASSERT_EQ(0, module_load(""));
	EXPECT_TRUE(module_loaded());
	EXPECT_EQ(0, access("/sys/bus/pci/drivers/" P2PMEM_DRIVER, F_OK));
	ASSERT_EQ(0, module_unload());
	EXPECT_FALSE(module_loaded());
	EXPECT_NE(0, access("/sys/bus/pci/drivers/" P2PMEM_DRIVER, F_OK));
}

/*
 * What the kernel's P2PDMA core says of @bdf's binding: a published pool of the bytes the
 * module reports, and the region serving the rest of the 64 MiB window; 0 if so.
 */
static int kernel_sees_binding(struct __test_metadata *_metadata, const char *bdf)
{
	struct p2pmem_info info = { 0 };
	char path[128], val[32];
	int fd = open_p2pmem(bdf, NULL, 0);

	if (fd < 0 || p2pmem_info(fd, &info)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/published", bdf);
	if (sysfs_read(path, val, sizeof(val)) || strcmp(val, "1"))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/size", bdf);
	if (sysfs_read(path, val, sizeof(val)) || strtoull(val, NULL, 0) != info.pool_bytes)
		return -1;
	TH_LOG("%s: pool %llu bytes published, region %llu bytes", bdf,
	       (unsigned long long)info.pool_bytes, (unsigned long long)info.region_bytes);
	return info.pool_bytes > 0 && info.pool_bytes + info.region_bytes == 64 << 20 ? 0 : -1;
}

/* @bdf's PCI command register (config space offset 4), or -1. */
static int pci_command(const char *bdf)
{
	unsigned char cmd[2];
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, cmd, sizeof(cmd), 4);
	close(fd);
	return n == sizeof(cmd) ? cmd[0] | cmd[1] << 8 : -1;
}

#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4

/*
 * Loading binds ivshmem by its ID and logs the shared-memory BAR it donates. A memory target
 * only: memory decoding on, bus mastering off; unbind drops the enable it took.
 */
TEST_F_TIMEOUT(p2pmem, ivshmem_binds_by_id, DRIVER_TEST_TIMEOUT_S)
{
	const char *const found[] = { self->ivshmem, "BAR 2 [mem", "pref] 64 MiB",
				      "donating 64 MiB at offset 0x0", "provider bus offset",
				      NULL };
	char line[1024], path[128], val[16];
	int cmd;

	ASSERT_EQ(0, module_load(""));
	ASSERT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	ASSERT_TRUE(kmsg_grep(self->kmsg, found, line, sizeof(line)));
	TH_LOG("%s", line);
	EXPECT_EQ(0, kernel_sees_binding(_metadata, self->ivshmem));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", self->ivshmem);
	ASSERT_EQ(0, sysfs_read(path, val, sizeof(val)));
	EXPECT_STREQ("1", val);
	cmd = pci_command(self->ivshmem);
	ASSERT_LE(0, cmd);
	EXPECT_EQ(PCI_COMMAND_MEMORY, cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->ivshmem));
	ASSERT_EQ(0, sysfs_read(path, val, sizeof(val)));
	EXPECT_STREQ("0", val);
}

/* The steps src/unbind_clock.rs reports, in the order they run. */
static const char *const unbind_steps[] = {
	"unpublish", "cdev", "revoke_users", "pool_drain", "zap_drain", "driver_core", "sysfs",
	"memunmap_region", "claims", "devres_start", "memunmap_pool", "p2pdma_release",
};

#define UNBIND_STEPS ARRAY_SIZE(unbind_steps)

/*
 * The unbind's own account of its steps is whole and consistent with what its caller saw:
 * every step named once, in order, none negative; their sum within rounding (1 us a step) of
 * the total; the total within the unbind(2)'s write as the caller timed it. A step stamped out
 * of order, or one stamped at the wrong end, turns a step negative or the sum wrong.
 */
TEST_F_TIMEOUT(p2pmem, unbind_reports_its_steps, DRIVER_TEST_TIMEOUT_S)
{
	const char *const found[] = { self->ivshmem, "unbind took ", NULL };
	long long total, step, sum = 0, t0, t1;
	char line[1024], *p, *end;
	struct timespec ts;
	size_t i;

	ASSERT_EQ(0, module_load(""));
	ASSERT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->ivshmem));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t1 = ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
	ASSERT_TRUE(kmsg_grep(self->kmsg, found, line, sizeof(line)));
	TH_LOG("%s", line);
	p = strstr(line, "unbind took ") + strlen("unbind took ");
	total = strtoll(p, &end, 10);
	ASSERT_EQ(0, strncmp(end, " us:", 4));
	p = end + 4;
	for (i = 0; i < UNBIND_STEPS; i++) {
		ASSERT_EQ(' ', *p);
		p++;
		ASSERT_EQ(0, strncmp(p, unbind_steps[i], strlen(unbind_steps[i])))
			TH_LOG("step %zu: expected %s at \"%s\"", i, unbind_steps[i], p);
		p += strlen(unbind_steps[i]);
		step = strtoll(p, &end, 10);
		ASSERT_NE(p, end);
		EXPECT_LE(0, step) TH_LOG("%s took %lld us", unbind_steps[i], step);
		sum += step;
		p = end;
	}
	EXPECT_TRUE(*p == '\0' || *p == '\n') TH_LOG("more after the last step: \"%s\"", p);
	EXPECT_LE(sum, total);
	EXPECT_LT(total, sum + (long long)UNBIND_STEPS);
	EXPECT_LT(0, total);
	/* The write spans the whole unbind: the total cannot exceed what its caller saw. */
	EXPECT_LE(total, t1 - t0) TH_LOG("unbind took %lld us, its write %lld us", total, t1 - t0);
}

/* NVMe registers of the CMB (BAR 0), as the test reads them through sysfs. */
#define NVME_REG_CMBMSC 0x50	/* 64 bits: CBA (63:12), CMSE (1), CRE (0) */
#define NVME_REG_CMBSTS 0x58	/* CBAI (0): the CBA written is invalid */
#define NVME_CMBMSC_CMSE_CRE 0x3ULL

/*
 * Reads @bdf's NVMe registers CMBMSC and CMBSTS from BAR 0 through its sysfs resource0 file
 * (the device must decode memory); 0 on success.
 */
static int read_cmb_regs(const char *bdf, __u64 *cmbmsc, __u32 *cmbsts)
{
	char path[128];
	__u32 *regs;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	regs = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (regs == MAP_FAILED)
		return -errno;
	/* 32-bit reads, low half first, as the nvme driver's lo_hi_readq(). */
	*cmbmsc = __atomic_load_n(&regs[NVME_REG_CMBMSC / 4], __ATOMIC_RELAXED);
	*cmbmsc |= (__u64)__atomic_load_n(&regs[NVME_REG_CMBMSC / 4 + 1],
					  __ATOMIC_RELAXED) << 32;
	*cmbsts = __atomic_load_n(&regs[NVME_REG_CMBSTS / 4], __ATOMIC_RELAXED);
	munmap(regs, 4096);
	return 0;
}

/* The CPU address BAR @bar of @bdf starts at (sysfs resource); 0 when unknown. */
static __u64 bar_start(const char *bdf, int bar)
{
	unsigned long long start, end;

	return pci_bar_range(bdf, bar, &start, &end) ? 0 : start;
}

/* An NVMe controller binds through driver_override; p2pmem donates its CMB. */
TEST_F_TIMEOUT(p2pmem, cmb_nvme_binds_through_driver_override, DRIVER_TEST_TIMEOUT_S)
{
	const char *const cmb[] = { self->cmb, "NVMe CMB: BAR 2 offset 0x0 size 64 MiB",
				    "CMSE enabled", NULL };
	const char *const found[] = { self->cmb, "BAR 2 [mem", "64 MiB; donating 64 MiB",
				      "provider bus offset", NULL };
	const char *const released[] = { self->cmb, "released BAR 2 (64 MiB)", NULL };
	int kmsg2 = kmsg_open(); /* each grep reads the log to its end */
	struct p2pmem_info info;
	char line[1024], path[128];
	__u64 cmbmsc;
	__u32 cmbsts;
	int fd;

	ASSERT_LE(0, kmsg2);
	ASSERT_EQ(0, module_load(""));
	ASSERT_EQ(0, pci_bind_override(self->cmb, P2PMEM_DRIVER));
	ASSERT_TRUE(bound_to(self->cmb, P2PMEM_DRIVER));
	ASSERT_TRUE(kmsg_grep(self->kmsg, cmb, line, sizeof(line)));
	TH_LOG("%s", line);
	ASSERT_TRUE(kmsg_grep(kmsg2, found, line, sizeof(line)));
	TH_LOG("%s", line);
	close(kmsg2);
	EXPECT_EQ(0, kernel_sees_binding(_metadata, self->cmb));

	/*
	 * What the controller holds, read from its registers: the CMB enabled at its PCI bus
	 * address (the BAR's CPU address plus the provider's bus offset, CMBLOC offset 0 in the
	 * test bed), and a CBA the controller takes as valid.
	 */
	fd = open_p2pmem(self->cmb, NULL, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	close(fd);
	ASSERT_EQ(2, info.bar);
	ASSERT_NE(0, bar_start(self->cmb, 2));
	ASSERT_EQ(0, read_cmb_regs(self->cmb, &cmbmsc, &cmbsts));
	EXPECT_EQ((bar_start(self->cmb, 2) + info.bus_offset) | NVME_CMBMSC_CMSE_CRE, cmbmsc) {
		TH_LOG("CMBMSC 0x%llx, BAR 2 at 0x%llx, bus offset 0x%llx",
		       (unsigned long long)cmbmsc, (unsigned long long)bar_start(self->cmb, 2),
		       (unsigned long long)info.bus_offset);
	}
	EXPECT_EQ(0, cmbsts & 1);

	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->cmb));
	EXPECT_FALSE(bound_to(self->cmb, P2PMEM_DRIVER));
	EXPECT_TRUE(kmsg_grep(self->kmsg, released, NULL, 0));
	/* Unbind cleared CMBMSC (read with memory decoding turned on for the read only). */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", self->cmb);
	ASSERT_EQ(0, sysfs_write(path, "1"));
	EXPECT_EQ(0, read_cmb_regs(self->cmb, &cmbmsc, &cmbsts));
	EXPECT_EQ(0, sysfs_write(path, "0"));
	EXPECT_EQ(0, cmbmsc);
}

/* Both devices survive REBIND_LOOPS unbind/bind cycles, each one complete. */
TEST_F_TIMEOUT(p2pmem, rebind_20_times, 600)
{
	const char *const devs[] = { self->ivshmem, self->cmb };
	int i, d;

	ASSERT_EQ(0, module_load(""));
	ASSERT_EQ(0, pci_bind_override(self->cmb, P2PMEM_DRIVER));
	kmsg_count(self->kmsg, ""); /* drain the probe messages */

	for (i = 0; i < REBIND_LOOPS; i++) {
		for (d = 0; d < 2; d++) {
			ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", devs[d]));
			ASSERT_FALSE(bound_to(devs[d], P2PMEM_DRIVER));
			ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", devs[d]));
			ASSERT_TRUE(bound_to(devs[d], P2PMEM_DRIVER)) {
				TH_LOG("cycle %d: %s did not rebind", i, devs[d]);
			}
		}
	}
	EXPECT_EQ(2 * REBIND_LOOPS, kmsg_count(self->kmsg, "released BAR 2"));
}

/* Unloading the module unbinds every device it drives. */
TEST_F_TIMEOUT(p2pmem, unload_unbinds_every_device, DRIVER_TEST_TIMEOUT_S)
{
	ASSERT_EQ(0, module_load(""));
	ASSERT_EQ(0, pci_bind_override(self->cmb, P2PMEM_DRIVER));
	ASSERT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	ASSERT_EQ(0, module_unload());
	EXPECT_FALSE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	EXPECT_FALSE(bound_to(self->cmb, P2PMEM_DRIVER));
	EXPECT_EQ(2, kmsg_count(self->kmsg, "released BAR 2"));
}

/*
 * An open /dev/p2pmemN, or a mapping of it, holds the module: a non-blocking unload (what
 * rmmod does) gets EWOULDBLOCK, and the device stays bound, until the last one is gone.
 */
TEST_F_TIMEOUT(p2pmem, unload_waits_for_open_files_and_mappings, DRIVER_TEST_TIMEOUT_S)
{
	void *buf;
	int fd;

	ASSERT_EQ(0, module_load(""));
	fd = open("/dev/" P2PMEM_DEVICE_PREFIX "0", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	close(fd);
	EXPECT_EQ(-EWOULDBLOCK, module_unload());
	EXPECT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	ASSERT_EQ(0, munmap(buf, 4096));
	EXPECT_EQ(0, module_unload());
	EXPECT_FALSE(module_loaded());
}

/* /dev/p2pmemN is root's: an unprivileged process cannot open it (EACCES). */
TEST_F_TIMEOUT(p2pmem, unprivileged_open_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, module_load(""));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		if (open("/dev/" P2PMEM_DEVICE_PREFIX "0", O_RDWR) < 0 && errno == EACCES)
			_exit(0);
		_exit(1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* A bar= that is not a BAR index fails the load with EINVAL and says why. */
TEST_F_TIMEOUT(p2pmem, bad_bar_parameter_fails_the_load, DRIVER_TEST_TIMEOUT_S)
{
	const char *const why[] = { "p2pmem", "bar=9 is not a BAR index", NULL };

	EXPECT_EQ(-EINVAL, module_load("bar=9"));
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0));
}

/* A size= off the 2 MiB granule fails the load with EINVAL and says why. */
TEST_F_TIMEOUT(p2pmem, unaligned_size_fails_the_load, DRIVER_TEST_TIMEOUT_S)
{
	const char *const why[] = { "p2pmem", "size=0x3039 is not a multiple of 2 MiB", NULL };

	EXPECT_EQ(-EINVAL, module_load("size=12345"));
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0));
}

/* A window past the end of the BAR fails the probe: not bound, EINVAL, logged. */
TEST_F_TIMEOUT(p2pmem, window_outside_the_bar_fails_the_probe, DRIVER_TEST_TIMEOUT_S)
{
	const char *const why[] = { self->ivshmem, "does not fit in BAR 2", NULL };

	ASSERT_EQ(0, module_load("bar=2 offset=0x8000000"));
	EXPECT_FALSE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0));
	EXPECT_EQ(-EINVAL, pci_driver_file(P2PMEM_DRIVER, "bind", self->ivshmem));
	EXPECT_FALSE(bound_to(self->ivshmem, P2PMEM_DRIVER));
}

/* An explicit BAR that is not memory fails the probe with EINVAL and says why. */
TEST_F_TIMEOUT(p2pmem, non_memory_bar_fails_the_probe, DRIVER_TEST_TIMEOUT_S)
{
	const char *const why[] = { self->ivshmem, "BAR 1 is not an implemented memory BAR",
				    NULL };

	ASSERT_EQ(0, module_load("bar=1"));
	EXPECT_FALSE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0));
}

/* An NVMe controller without a CMB is refused with ENODEV and says why. */
TEST_F_TIMEOUT(p2pmem, device_without_memory_bar_is_refused, DRIVER_TEST_TIMEOUT_S)
{
	char data[BDF_LEN], path[128], override[64] = "";
	const char *const why[] = { data, "NVMe controller without a Controller Memory Buffer",
				    NULL };
	int ret;

	if (find_nvme_by_serial(DATA_NVME_SERIAL, data))
		SKIP(return, "no NVMe controller with serial " DATA_NVME_SERIAL);
	ASSERT_EQ(0, module_load(""));
	ASSERT_EQ(0, pci_unbind(data));
	ret = pci_bind_override(data, P2PMEM_DRIVER);
	/* To drivers_probe, ENODEV means "no match": it succeeds, nothing binds. */
	EXPECT_EQ(0, ret);
	EXPECT_FALSE(bound_to(data, P2PMEM_DRIVER));
	/*
	 * bind also says ENODEV when the driver does not match at all: the override must be
	 * ours, so that the ENODEV is our probe's (and the log line below names the device).
	 */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", data);
	ASSERT_EQ(0, sysfs_read(path, override, sizeof(override)));
	ASSERT_STREQ(P2PMEM_DRIVER, override);
	EXPECT_EQ(-ENODEV, pci_driver_file(P2PMEM_DRIVER, "bind", data));
	EXPECT_FALSE(bound_to(data, P2PMEM_DRIVER));
	EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0));
	EXPECT_EQ(0, pci_restore_default_driver(data));
	EXPECT_TRUE(bound_to(data, "nvme"));
}

/* A hexadecimal sysfs attribute of PCI device @bdf ("vendor": "0x1b36"); 0 when unreadable. */
static unsigned int pci_attr(const char *bdf, const char *attr)
{
	char path[128], val[32] = "";

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	if (sysfs_read(path, val, sizeof(val)))
		return 0;
	return strtoul(val, NULL, 16);
}

/*
 * Loads p2pmem with ids=@ids (printf-style): 1 when the CMB NVMe is then bound to it, 0 when
 * not, -errno when the load or unload failed (or ivshmem, in the static table, is not bound:
 * a load that did not really happen cannot count as "not bound").
 */
static int cmb_bound_with_ids(struct __test_metadata *_metadata, const char *cmb,
			      const char *ivshmem, const char *fmt, ...)
{
	char params[128];
	int bound, ret;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	ret = module_load(params);
	if (ret) {
		TH_LOG("cannot load p2pmem with %s: %s", params, strerror(-ret));
		return ret;
	}
	bound = bound_to(ivshmem, P2PMEM_DRIVER) ? bound_to(cmb, P2PMEM_DRIVER) : -ENODEV;
	ret = module_unload();
	TH_LOG("%s: the CMB NVMe %s", params, bound == 1 ? "bound" : bound ? "?" : "not bound");
	return ret ?: bound;
}

/*
 * ids= binds a device without a driver by its ID, as vfio-pci does. The CMB NVMe, released from
 * nvme, is left alone by a load without ids= (it is not in p2pmem's table) and taken by a load
 * with its vendor:device, and served as usual; the data NVMe, same ID but bound to nvme, is
 * not taken. The value reads back in sysfs, and the IDs go with the driver at unload.
 */
TEST_F_TIMEOUT(p2pmem, ids_binds_a_device_without_a_driver, DRIVER_TEST_TIMEOUT_S)
{
	unsigned int vendor = pci_attr(self->cmb, "vendor"), device = pci_attr(self->cmb, "device");
	char data[BDF_LEN] = "", params[64], val[64] = "";
	struct p2pmem_info info;
	int fd;

	ASSERT_NE(0, vendor);
	ASSERT_EQ(0, find_nvme_by_serial(DATA_NVME_SERIAL, data));
	/* A device another driver holds is left alone. */
	snprintf(params, sizeof(params), "ids=%04x:%04x", vendor, device);
	ASSERT_EQ(0, module_load(params));
	EXPECT_TRUE(bound_to(self->cmb, "nvme"));
	ASSERT_EQ(0, module_unload());

	ASSERT_EQ(0, pci_unbind(self->cmb));
	ASSERT_EQ(0, module_load(""));
	EXPECT_FALSE(bound_to(self->cmb, P2PMEM_DRIVER));
	ASSERT_EQ(0, module_unload());

	ASSERT_EQ(0, module_load(params));
	ASSERT_TRUE(bound_to(self->cmb, P2PMEM_DRIVER));
	EXPECT_TRUE(bound_to(data, "nvme"));
	EXPECT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	fd = open_p2pmem(self->cmb, NULL, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, p2pmem_info(fd, &info));
	EXPECT_EQ(2, info.bar);
	EXPECT_STREQ(self->cmb, info.pci_dev);
	close(fd);
	ASSERT_EQ(0, sysfs_read("/sys/module/" P2PMEM_DRIVER "/parameters/ids", val, sizeof(val)));
	EXPECT_STREQ(params + strlen("ids="), val);
	/*
	 * The ID lasts as long as the module: unbound, the device matches the driver again (its
	 * bind file checks the match; drivers_probe would let nvme, first on the bus, take it).
	 */
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->cmb));
	ASSERT_FALSE(bound_to(self->cmb, P2PMEM_DRIVER));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "bind", self->cmb));
	EXPECT_TRUE(bound_to(self->cmb, P2PMEM_DRIVER));
	ASSERT_EQ(0, module_unload());
	EXPECT_FALSE(bound_to(self->cmb, P2PMEM_DRIVER));
}

/*
 * Every field of an ID is compared: a wrong subsystem vendor or device, or another class, binds
 * nothing; the device's own subsystem IDs bind it, and so does its class with any vendor; so does
 * its ID anywhere in a list.
 */
TEST_F_TIMEOUT(p2pmem, ids_compare_every_field, 300)
{
	unsigned int v = pci_attr(self->cmb, "vendor"), d = pci_attr(self->cmb, "device");
	unsigned int sv = pci_attr(self->cmb, "subsystem_vendor");
	unsigned int sd = pci_attr(self->cmb, "subsystem_device");
	unsigned int class = pci_attr(self->cmb, "class");
	const char *any4 = "ffffffff:ffffffff:ffffffff:ffffffff";

#define CMB_BOUND_WITH(...) cmb_bound_with_ids(_metadata, self->cmb, self->ivshmem, __VA_ARGS__)
	ASSERT_NE(0, v);
	ASSERT_NE(0, class);
	ASSERT_EQ(0, pci_unbind(self->cmb));
	EXPECT_EQ(0, CMB_BOUND_WITH("ids=%04x:%04x:%04x:%04x", v, d, sv ^ 1, sd));
	EXPECT_EQ(0, CMB_BOUND_WITH("ids=%04x:%04x:%04x:%04x", v, d, sv, sd ^ 1));
	EXPECT_EQ(1, CMB_BOUND_WITH("ids=%04x:%04x:%04x:%04x", v, d, sv, sd));
	EXPECT_EQ(1, CMB_BOUND_WITH("ids=%04x:%04x:%04x", v, d, sv));
	EXPECT_EQ(0, CMB_BOUND_WITH("ids=%s:%06x:ffffff", any4, class ^ 1));
	EXPECT_EQ(1, CMB_BOUND_WITH("ids=%s:%06x:ffffff", any4, class));
	/* The base class and subclass only (any programming interface). */
	EXPECT_EQ(1, CMB_BOUND_WITH("ids=%s:%06x:ffff00", any4, (class ^ 1) & 0xffff00));
	EXPECT_EQ(0, CMB_BOUND_WITH("ids=%04x:%04x", v, d ^ 1));
	EXPECT_EQ(1, CMB_BOUND_WITH("ids=%04x:%04x,%04x:%04x,", v, d ^ 1, v, d));
#undef CMB_BOUND_WITH
}

/*
 * A malformed ids= fails the load with EINVAL before the driver exists, and names the entry and
 * what is wrong with it; a value longer than the parameter holds is the kernel's ENOSPC.
 */
TEST_F_TIMEOUT(p2pmem, bad_ids_fail_the_load, DRIVER_TEST_TIMEOUT_S)
{
	static const struct {
		const char *ids, *why;
	} cases[] = {
		{ "1b36", "ids: entry 1 \"1b36\": too few fields" },
		{ "1af4:1110,1b36:zz",
		  "ids: entry 2 \"1b36:zz\": device is not a hexadecimal number of 1-8 digits" },
		{ "10000:0010",
		  "ids: entry 1 \"10000:0010\": vendor 0x10000 is out of range (at most 0xffff" },
		{ "1:2:3:4:5:6:7", "ids: entry 1 \"1:2:3:4:5:6:7\": too many fields" },
		{ "1b36:0010:ffffffff:ffffffff:010802",
		  "class 0x010802 has bits outside class_mask 0x000000" },
		{ "ffffffff:ffffffff",
		  "ids: entry 1 \"ffffffff:ffffffff\": matches every PCI device" },
	};
	const char *const too_long[] = { "ids: string doesn't fit in 1023 chars", NULL };
	int donating = kmsg_open();
	char params[1200];
	size_t i;

	ASSERT_LE(0, donating);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *const why[] = { "p2pmem: ", cases[i].why, NULL };

		snprintf(params, sizeof(params), "ids=%s", cases[i].ids);
		EXPECT_EQ(-EINVAL, module_load(params)) {
			TH_LOG("%s", params);
		}
		EXPECT_FALSE(module_loaded());
		EXPECT_TRUE(kmsg_grep(self->kmsg, why, NULL, 0)) {
			TH_LOG("no log line \"%s\" for %s", cases[i].why, params);
		}
	}
	/* Refused before the driver existed: no device was bound and let go meanwhile. */
	EXPECT_EQ(0, kmsg_count(donating, "donating"));
	close(donating);

	/* 1023 bytes fit (one ID, then empty entries, which are skipped); 1024 do not. */
	snprintf(params, sizeof(params), "ids=%04x:%04x", IVSHMEM_VENDOR, IVSHMEM_DEVICE);
	while (strlen(params) < strlen("ids=") + 1023)
		strcat(params, ",");
	ASSERT_EQ(0, module_load(params));
	EXPECT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	ASSERT_EQ(0, module_unload());
	strcat(params, ",");
	EXPECT_EQ(-ENOSPC, module_load(params));
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(kmsg_grep(self->kmsg, too_long, NULL, 0));
}

/* A tracker of @pages pages through P2PMEM_IOCTL_TRACKER_TEST on @fd; 0 or -errno. */
static int tracker_test(int fd, __u64 pages, struct p2pmem_tracker_test *t)
{
	*t = (struct p2pmem_tracker_test){ .pages = pages };
	return ioctl(fd, P2PMEM_IOCTL_TRACKER_TEST, t) ? -errno : 0;
}

/*
 * Probe's page tracker fits regions whose bitmap no single kmalloc() gives (over 4 MiB: more
 * than 128 GiB of pages): one of 256 GiB is built, used and freed without an allocation warning.
 * (bitmap_bytes is the module's arithmetic, reported; what is measured is that the build
 * succeeds.) Sizes it refuses get EINVAL.
 */
TEST_F_TIMEOUT(p2pmem, tracker_fits_a_256_gib_region, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_tracker_test t;
	int fd;

	ASSERT_EQ(0, module_load(""));
	fd = open_p2pmem(self->ivshmem, NULL, 0);
	ASSERT_LE(0, fd);
	kmsg_count(self->kmsg, "");	/* from now on */

	ASSERT_EQ(0, tracker_test(fd, 1ULL << 26, &t));
	EXPECT_EQ(8ULL << 20, t.bitmap_bytes);
	EXPECT_EQ(1ULL << 26, t.free_pages);
	/* One page past 128 GiB: one word past what kmalloc() can give. */
	ASSERT_EQ(0, tracker_test(fd, (1ULL << 25) + 1, &t));
	EXPECT_EQ((4ULL << 20) + 8, t.bitmap_bytes);
	EXPECT_EQ((1ULL << 25) + 1, t.free_pages);
	ASSERT_EQ(0, tracker_test(fd, 100, &t));
	EXPECT_EQ(16, t.bitmap_bytes);
	EXPECT_EQ(100, t.free_pages);

	EXPECT_EQ(-EINVAL, tracker_test(fd, 0, &t));
	EXPECT_EQ(-EINVAL, tracker_test(fd, (1ULL << 26) + 1, &t));
	EXPECT_EQ(-EINVAL, tracker_test(fd, ~0ULL, &t));
	close(fd);
	/* No allocation warning (the runner's log check sees every other report too). */
	EXPECT_EQ(0, kmsg_count_severe(self->kmsg, "WARNING"));
}

/*
 * A page freed that was not out (a refcounting bug: folio_free() for a page never handed out,
 * or twice) makes the tracker complain, in whatever context folio_free() runs: the first ten
 * complaints are logged, then one line says it goes quiet, and nothing more for the rest of
 * the module's life. The counts stay as they were.
 */
TEST_F_TIMEOUT(p2pmem, bad_frees_are_reported_ten_times_then_not, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_tracker_test t = { .pages = 64, .bad_frees = 1000 };
	int fd, quiet;

	ASSERT_EQ(0, module_load(""));
	fd = open_p2pmem(self->ivshmem, NULL, 0);
	ASSERT_LE(0, fd);
	quiet = kmsg_open();
	ASSERT_LE(0, quiet);
	kmsg_count(self->kmsg, "");	/* from now on */

	ASSERT_EQ(0, ioctl(fd, P2PMEM_IOCTL_TRACKER_TEST, &t));
	EXPECT_EQ(64, t.free_pages);
	EXPECT_EQ(10, kmsg_count_severe(self->kmsg, "p2pmem: page 0 freed but not handed out"));
	EXPECT_EQ(1, kmsg_count_severe(quiet, "p2pmem: more pages freed but not handed out"));

	t = (struct p2pmem_tracker_test){ .pages = 64, .bad_frees = 1000 };
	ASSERT_EQ(0, ioctl(fd, P2PMEM_IOCTL_TRACKER_TEST, &t));
	EXPECT_EQ(64, t.free_pages);
	EXPECT_EQ(0, kmsg_count(self->kmsg, "freed but not handed out"));

	t = (struct p2pmem_tracker_test){ .pages = 64, .bad_frees = (1 << 16) + 1 };
	EXPECT_EQ(-1, ioctl(fd, P2PMEM_IOCTL_TRACKER_TEST, &t));
	EXPECT_EQ(EINVAL, errno);
	close(quiet);
	close(fd);
}

/* Without test_interfaces=1 the test ioctls are not served: ENOTTY, as for any unknown ioctl. */
TEST_F_TIMEOUT(p2pmem, test_ioctls_need_test_interfaces, DRIVER_TEST_TIMEOUT_S)
{
	struct p2pmem_pin pin = { 0 };
	char *buf;
	int fd;

	ASSERT_EQ(0, module_load("test_interfaces=0"));
	fd = open_p2pmem(self->ivshmem, NULL, 0);
	ASSERT_LE(0, fd);
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	pin.addr = (unsigned long)buf;
	pin.len = 4096;
	pin.flags = P2PMEM_PIN_P2PDMA;
	EXPECT_EQ(-1, ioctl(fd, P2PMEM_IOCTL_PIN, &pin));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(0, pin.pinned);
	EXPECT_EQ(-1, ioctl(fd, P2PMEM_IOCTL_TRACKER_TEST,
			    &(struct p2pmem_tracker_test){ .pages = 1 }));
	EXPECT_EQ(ENOTTY, errno);
	munmap(buf, 4096);
	close(fd);
	ASSERT_EQ(0, module_unload());

	/* The same call is served with the test interfaces on. */
	ASSERT_EQ(0, module_load(""));
	fd = open_p2pmem(self->ivshmem, NULL, 0);
	ASSERT_LE(0, fd);
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	pin.addr = (unsigned long)buf;
	EXPECT_EQ(0, ioctl(fd, P2PMEM_IOCTL_PIN, &pin));
	EXPECT_EQ(1, pin.pinned);
	munmap(buf, 4096);
	close(fd);
}

/* The signal a child dies of when it touches @buf, 0 when it does not die. */
static int touch_in_child(char *buf)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		__atomic_store_n(buf, 1, __ATOMIC_RELAXED);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/*
 * A device node on a filesystem that goes away (a container's /dev, a node made with mknod on a
 * tmpfs) is not kept busy by p2pmem: after opening and mapping through it first, the tmpfs
 * unmounts cleanly ("Busy inodes" is the VFS's sign of an inode kept past unmount), and unbind
 * still unmaps every mapping, made through /dev/p2pmemN, without touching the dead node.
 */
TEST_F_TIMEOUT(p2pmem, node_on_an_unmounted_tmpfs_is_not_kept, DRIVER_TEST_TIMEOUT_S)
{
	char dir[] = "/tmp/p2pmem-node-XXXXXX";
	const size_t len = 1 << 20;
	struct p2pmem_info info;
	char node[64], path[64];
	struct stat st;
	char *buf;
	int fd;

	ASSERT_EQ(0, module_load(""));
	ASSERT_TRUE(bound_to(self->ivshmem, P2PMEM_DRIVER));
	fd = open_p2pmem(self->ivshmem, path, sizeof(path));
	ASSERT_LE(0, fd);
	close(fd);
	/* Reload, so that the node on the tmpfs is the device's first opener. */
	ASSERT_EQ(0, module_unload());
	ASSERT_EQ(0, module_load(""));
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));

	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, mount("p2pmem-test", dir, "tmpfs", 0, "mode=0700")) {
		rmdir(dir);
	}
	snprintf(node, sizeof(node), "%s/p2pmem", dir);
	ASSERT_EQ(0, mknod(node, S_IFCHR | 0600, st.st_rdev));
	fd = open(node, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, p2pmem_info(fd, &info));
	ASSERT_STREQ(self->ivshmem, info.pci_dev);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x5a, len);
	ASSERT_EQ(0, munmap(buf, len));
	close(fd);
	ASSERT_EQ(0, umount(dir));
	ASSERT_EQ(0, rmdir(dir));
	EXPECT_EQ(0, kmsg_count(self->kmsg, "Busy inodes"));

	/* A mapping through the real node is unmapped by unbind: SIGBUS after. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, touch_in_child(buf));
	ASSERT_EQ(0, pci_driver_file(P2PMEM_DRIVER, "unbind", self->ivshmem));
	EXPECT_EQ(SIGBUS, touch_in_child(buf));
	EXPECT_EQ(-ENODEV, p2pmem_info(fd, &info));
	ASSERT_EQ(0, munmap(buf, len));
	close(fd);
	EXPECT_EQ(0, kmsg_count(self->kmsg, "Busy inodes"));
}

TEST_HARNESS_MAIN
