// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the p2pmem selftests; see p2pmem_util.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/aio_abi.h>
#include <linux/p2pmem.h>

#include "p2pmem_util.h"

int p2pmem_info(int fd, struct p2pmem_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, P2PMEM_IOCTL_INFO, info) ? -errno : 0;
}

int open_p2pmem(const char *bdf, char *path, size_t len)
{
	struct p2pmem_info info;
	char node[64];
	int i, fd;

	for (i = 0; i < 16; i++) {
		snprintf(node, sizeof(node), "/dev/" P2PMEM_DEVICE_PREFIX "%d", i);
		fd = open(node, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!p2pmem_info(fd, &info) && !strcmp(info.pci_dev, bdf)) {
			if (path)
				snprintf(path, len, "%s", node);
			return fd;
		}
		close(fd);
	}
	return -ENOENT;
}

int sysfs_write(const char *path, const char *val)
{
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != strlen(val))
		ret = -EIO;
	close(fd);
	return ret;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Runs @fn in a child and waits for it for at most DRIVER_CALL_TIMEOUT_S: an unbind that never
 * returns (a page that never comes back) fails the test with -ETIMEDOUT instead of hanging it,
 * so its verdict is still printed. The child is left behind, stuck in the kernel, for the runner
 * to report. @fn returns 0 or -errno; so does this.
 */
static int driver_call(int (*fn)(const void *), const void *arg, const char *what)
{
	const char *env = getenv("P2PMEM_UNBIND_TIMEOUT");
	int limit = env && atoi(env) > 0 ? atoi(env) : DRIVER_CALL_TIMEOUT_S;
	double end = monotonic_s() + limit;
	int status, ret;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		ret = fn(arg);
		_exit(ret < 0 && ret > -256 ? -ret : ret ? EIO : 0);
	}
	for (;;) {
		ret = waitpid(pid, &status, WNOHANG);
		if (ret == pid)
			return WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
		if (ret < 0)
			return -errno;
		if (monotonic_s() > end)
			break;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	fprintf(stderr, "# %s: still blocked after %d s, a task is stuck in the kernel\n", what,
		limit);
	return -ETIMEDOUT;
}

struct sysfs_write_args {
	const char *path;
	const char *val;
};

static int sysfs_write_call(const void *arg)
{
	const struct sysfs_write_args *a = arg;

	return sysfs_write(a->path, a->val);
}

/* sysfs_write() of a file whose write binds or unbinds a driver: bounded. */
static int sysfs_write_bounded(const char *path, const char *val)
{
	struct sysfs_write_args a = { path, val };
	char what[PATH_MAX + 64];

	snprintf(what, sizeof(what), "writing %s to %s", val, path);
	return driver_call(sysfs_write_call, &a, what);
}

int sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* Trim the trailing newline and padding (NVMe serials are space-padded). */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static unsigned long read_hex(const char *path)
{
	char buf[32];

	if (sysfs_read(path, buf, sizeof(buf)))
		return ULONG_MAX;
	return strtoul(buf, NULL, 16);
}

int find_pci_by_id(unsigned int vendor, unsigned int device, char bdf[BDF_LEN])
{
	char path[PATH_MAX];
	struct dirent *de;
	int ret = -ENODEV;
	DIR *dir;

	dir = opendir("/sys/bus/pci/devices");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		if (read_hex(path) != vendor)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		if (read_hex(path) != device)
			continue;
		snprintf(bdf, BDF_LEN, "%s", de->d_name);
		ret = 0;
		break;
	}
	closedir(dir);
	return ret;
}

int find_nvme_by_serial(const char *serial, char bdf[BDF_LEN])
{
	char path[PATH_MAX], link[PATH_MAX], buf[64];
	struct dirent *de;
	int ret = -ENODEV;
	ssize_t n;
	DIR *dir;

	dir = opendir("/sys/class/nvme");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/nvme/%s/serial", de->d_name);
		if (sysfs_read(path, buf, sizeof(buf)) || strcmp(buf, serial))
			continue;
		snprintf(path, sizeof(path), "/sys/class/nvme/%s/device", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		snprintf(bdf, BDF_LEN, "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
		ret = 0;
		break;
	}
	closedir(dir);
	return ret;
}

int find_provider(bool cmb, char bdf[BDF_LEN])
{
	if (cmb)
		return find_nvme_by_serial(CMB_NVME_SERIAL, bdf);
	return find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, bdf);
}

/* The block device of the first namespace of the NVMe controller with @serial. */
int find_namespace(const char *serial, char *dev, size_t len)
{
	char ctrl_bdf[BDF_LEN], path[PATH_MAX], link[PATH_MAX], name[64];
	ssize_t n;
	int i;

	if (find_nvme_by_serial(serial, ctrl_bdf))
		return -ENODEV;
	for (i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "nvme%d", i);
		snprintf(path, sizeof(path), "/sys/class/nvme/%s/device", name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(strrchr(link, '/') + 1, ctrl_bdf))
			continue;
		snprintf(dev, len, "/dev/%sn1", name);
		return access(dev, F_OK) ? -ENOENT : 0;
	}
	return -ENODEV;
}

int pci_driver_of(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		drv[0] = '\0';
		return errno == ENOENT ? 0 : -errno;
	}
	link[n] = '\0';
	snprintf(drv, len, "%s", strrchr(link, '/') + 1);
	return 0;
}

int pci_driver_file(const char *driver, const char *file, const char *bdf)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, file);
	return sysfs_write_bounded(path, bdf);
}

int pci_unbind(const char *bdf)
{
	char drv[64];
	int ret;

	ret = pci_driver_of(bdf, drv, sizeof(drv));
	if (ret || !drv[0])
		return ret;
	return pci_driver_file(drv, "unbind", bdf);
}

static int set_override(const char *bdf, const char *driver)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	return sysfs_write(path, driver);
}

int pci_bind_override(const char *bdf, const char *driver)
{
	int ret;

	ret = pci_unbind(bdf);
	if (ret)
		return ret;
	ret = set_override(bdf, driver);
	if (ret)
		return ret;
	return sysfs_write_bounded("/sys/bus/pci/drivers_probe", bdf);
}

int pci_bar_range(const char *bdf, int bar, unsigned long long *start,
		  unsigned long long *end)
{
	char path[128], line[128];
	int i, ret = -ENOENT;
	FILE *f;

	*start = *end = 0;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (i = 0; i <= bar && fgets(line, sizeof(line), f); i++)
		if (i == bar && sscanf(line, "%llx %llx", start, end) == 2)
			ret = 0;
	fclose(f);
	return ret;
}

int pci_restore_default_driver(const char *bdf)
{
	char drv[64];
	int ret;

	ret = pci_driver_of(bdf, drv, sizeof(drv));
	if (ret)
		return ret;
	if (!strcmp(drv, P2PMEM_DRIVER)) {
		ret = pci_driver_file(drv, "unbind", bdf);
		if (ret)
			return ret;
	}
	/* An empty override is written as a lone newline. */
	ret = set_override(bdf, "\n");
	if (ret)
		return ret;
	return sysfs_write_bounded("/sys/bus/pci/drivers_probe", bdf);
}

struct finit_module_args {
	int fd;
	const char *params;
};

static int finit_module_call(const void *arg)
{
	const struct finit_module_args *a = arg;

	return syscall(SYS_finit_module, a->fd, a->params, 0) ? -errno : 0;
}

int module_load(const char *params)
{
	const char *ko = getenv("P2PMEM_KO");
	char all[2048];
	int fd, ret;

	/* A Rust module parameter can be set once (EEXIST): only add it when not given. */
	if (snprintf(all, sizeof(all), "%s%s", strstr(params, "test_interfaces=") ? "" :
		     "test_interfaces=1 ", params) >= (int)sizeof(all))
		return -E2BIG;
	fd = open(ko ? ko : "./p2pmem.ko", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = driver_call(finit_module_call, &(struct finit_module_args){ fd, all },
			  "loading " P2PMEM_DRIVER);
	close(fd);
	return ret;
}

bool module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/" P2PMEM_DRIVER, &st) == 0;
}

static int delete_module_call(const void *arg)
{
	(void)arg;
	return syscall(SYS_delete_module, P2PMEM_DRIVER, O_NONBLOCK) ? -errno : 0;
}

int module_unload(void)
{
	if (!module_loaded())
		return 0;
	return driver_call(delete_module_call, NULL, "unloading " P2PMEM_DRIVER);
}

int kmsg_open(void)
{
	int fd;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Calls @match on each record logged since the last read; stops at the end. */
static int kmsg_scan(int fd, bool (*match)(const char *rec, void *arg), void *arg)
{
	char rec[8192];
	int hits = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0) {
			if (errno == EPIPE) /* overwritten records: go on */
				continue;
			break; /* EAGAIN: no more records */
		}
		rec[n] = '\0';
		if (match(rec, arg))
			hits++;
	}
	return hits;
}

struct grep_arg {
	const char *const *needles;
	char *line;
	size_t len;
	bool found;
};

static bool match_all(const char *rec, void *arg)
{
	struct grep_arg *g = arg;
	const char *const *n;

	if (g->found)
		return false;
	for (n = g->needles; *n; n++)
		if (!strstr(rec, *n))
			return false;
	if (g->line)
		snprintf(g->line, g->len, "%s", rec);
	g->found = true;
	return true;
}

bool kmsg_grep(int fd, const char *const *needles, char *line, size_t len)
{
	struct grep_arg g = { needles, line, len, false };

	kmsg_scan(fd, match_all, &g);
	return g.found;
}

static bool match_one(const char *rec, void *arg)
{
	return strstr(rec, arg);
}

int kmsg_count(int fd, const char *needle)
{
	return kmsg_scan(fd, match_one, (void *)needle);
}

static bool match_severe(const char *rec, void *arg)
{
	/* A record starts with "<facility * 8 + level>,<seq>,...;". */
	return (strtoul(rec, NULL, 10) & 7) < 6 && strstr(rec, arg);
}

int kmsg_count_severe(int fd, const char *needle)
{
	return kmsg_scan(fd, match_severe, (void *)needle);
}

void fill(void *buf, size_t len, __u32 seed)
{
	__u32 *p = buf;
	size_t i;

	for (i = 0; i < len / 4; i++)
		p[i] = seed + (__u32)i * 2654435761u;
}

bool check(const void *buf, size_t len, __u32 seed)
{
	const __u32 *p = buf;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (p[i] != seed + (__u32)i * 2654435761u)
			return false;
	return true;
}

bool access_raises_sigbus(char *addr)
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

int pte_present(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	__u64 entry;
	ssize_t n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, &entry, sizeof(entry), (uintptr_t)addr / page * sizeof(entry));
	close(fd);
	if (n != sizeof(entry))
		return -1;
	return entry >> 63;
}

bool bar_holds(const char *bdf, unsigned int bar, off_t offset, size_t len, __u32 seed)
{
	char path[PATH_MAX];
	bool same;
	void *mem;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%u", bdf, bar);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	mem = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, offset);
	close(fd);
	if (mem == MAP_FAILED)
		return false;
	same = check(mem, len, seed);
	munmap(mem, len);
	return same;
}

/* Reads and writes sectors of the data namespace with O_DIRECT through @buf. */
ssize_t direct_io(const char *dev, bool write, void *buf, size_t len, off_t off)
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

/*
 * direct_io() writing through a private node of @dev (same device number, another inode).
 * udev watches /dev/nvmeXnY for IN_CLOSE_WRITE and re-probes the disk on the close of a
 * writer (a partition rescan and blkid); on the throttled namespace those reads queue for tens
 * of seconds. A write through an inode udev does not watch leaves the queue to the test.
 */
ssize_t direct_write_unwatched(const char *dev, void *buf, size_t len, off_t off)
{
	char dir[] = "/tmp/p2pmem-disk-XXXXXX", node[sizeof(dir) + 8];
	struct stat st;
	ssize_t n;

	if (stat(dev, &st))
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	if (!mkdtemp(dir))
		return -errno;
	snprintf(node, sizeof(node), "%s/disk", dir);
	if (mknod(node, S_IFBLK | 0600, st.st_rdev))
		n = -errno;
	else
		n = direct_io(node, true, buf, len, off);
	unlink(node);
	rmdir(dir);
	return n;
}

__u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Reads of @dev's queue in flight (/sys/block/X/inflight: "reads writes"), or -1. */
long inflight_reads(const char *dev)
{
	char path[PATH_MAX], buf[64];

	snprintf(path, sizeof(path), "/sys/block/%s/inflight", strrchr(dev, '/') + 1);
	if (sysfs_read(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

/*
 * An O_DIRECT read of the block device, submitted with Linux AIO: a read longer than one bio
 * is built (its pages pinned) bio after bio while the first ones already run, so a synchronous
 * read can be in flight with part of its buffer not pinned yet. io_submit() returns only once
 * every bio is built, every page pinned.
 */
void *timed_read(void *arg)
{
	struct timed_read *r = arg;
	struct iocb cb = { 0 }, *cbs[1] = { &cb };
	aio_context_t ctx = 0;
	struct io_event ev;
	int fd;

	r->start_ns = now_ns();
	fd = open(r->dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		r->ret = -errno;
		goto out;
	}
	if (syscall(__NR_io_setup, 1, &ctx)) {
		r->ret = -errno;
		goto close;
	}
	cb.aio_fildes = fd;
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_buf = (uintptr_t)r->buf;
	cb.aio_nbytes = r->len;
	if (syscall(__NR_io_submit, ctx, 1, cbs) != 1) {
		r->ret = -errno;
		goto destroy;
	}
	__atomic_store_n(&r->submitted, 1, __ATOMIC_RELEASE);
	r->ret = syscall(__NR_io_getevents, ctx, 1, 1, &ev, NULL) == 1 ? ev.res : -errno;
destroy:
	syscall(__NR_io_destroy, ctx);
close:
	close(fd);
out:
	r->end_ns = now_ns();
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

unsigned long long region_attr(const char *bdf, const char *name)
{
	char path[PATH_MAX], buf[32];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem_region/%s", bdf, name);
	if (sysfs_read(path, buf, sizeof(buf)))
		return ULLONG_MAX;
	return strtoull(buf, NULL, 10);
}

void *watch_outstanding(void *arg)
{
	struct counter_watch *w = arg;
	unsigned long long v;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (pte_present(w->buf) == 0) {
			v = region_attr(w->bdf, "outstanding_pages");
			if (v != ULLONG_MAX) {
				w->samples++;
				if (v > w->max_outstanding)
					w->max_outstanding = v;
				if (v > 0 && access(w->node, F_OK) == 0)
					w->node_seen++;
			}
		}
		usleep(1000);
	}
	return NULL;
}

bool read_in_flight(struct timed_read *r)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
			return false;
		if (__atomic_load_n(&r->submitted, __ATOMIC_ACQUIRE) &&
		    inflight_reads(r->dev) > 0 && !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
			return true;
		usleep(10000);
	}
	return false;
}
