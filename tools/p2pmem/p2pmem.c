// SPDX-License-Identifier: GPL-2.0
/*
 * p2pmem: the admin tool of p2pmem.ko. Lists the devices the driver serves,
 * binds and unbinds PCI devices through driver_override, and checks a P2PDMA
 * round trip between /dev/p2pmemN and a block device with O_DIRECT.
 *
 * See Documentation/p2pmem-tool.rst.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/p2pmem.h>

#ifndef P2PMEM_VERSION
#define P2PMEM_VERSION "unknown"
#endif

/* As in the kernel's compiler_attributes.h, through one more macro. */
#define __p2pmem_attr(x) __attribute__(x)
#define __printf(a, b) __p2pmem_attr((format(printf, a, b)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

#define MAX_MINORS	16	/* /dev/p2pmem0 to /dev/p2pmem15 */
#define BDF_LEN		16	/* "0000:00:00.0" and its NUL, as in struct p2pmem_info */
#define BLOCK		4096ULL
#define MIB		(1024.0 * 1024.0)
#define PREFIX_MAX	1024	/* longest $P2PMEM_SYSFS or $P2PMEM_DEV: every path fits */
#define GOLDEN		0x9E3779B97F4A7C15ULL
#define ROW_FMT		"%-12s  %-9s  %-13s  %3s  %8s  %8s  %8s  %8s  %7s  %7s  %7s  %10s  %10s\n"

static bool opt_json, opt_force, opt_no_reprobe, opt_write;

/* A growing string: the body of a JSON object or array. */
struct jbuf {
	char *s;
	size_t len, cap;
};

/* The run of one command: where the trees are, what to print, how it failed. */
struct ctx {
	const char *sysfs;
	const char *dev;
	struct jbuf fields;	/* the JSON document's fields after "ok" and "error" */
	char error[2048];
	int err;		/* errno of the first failure; 0 for none (JSON null) */
	bool failed;
};

static const char * const region_attrs[] = {
	"region_bytes", "pages", "free_pages", "outstanding_pages", "handed_out_pages",
	"freed_pages", "pool_bytes", "pool_free_bytes", "region_offset",
};

#define NR_REGION_ATTRS ARRAY_SIZE(region_attrs)

static const char usage_text[] =
	"usage: p2pmem [--json] COMMAND [ARGS]\n"
	"\n"
	"  list                          devices bound to p2pmem, their regions and counters\n"
	"  bind BDF [--force]            take BDF from its driver and bind it to p2pmem\n"
	"  unbind BDF [--no-reprobe]     unbind BDF from p2pmem and hand it back to its driver\n"
	"  check BDF BLOCKDEV [--offset BYTES] [--size BYTES] [--write]\n"
	"                                O_DIRECT round trip between BDF's P2P memory and BLOCKDEV\n"
	"\n"
	"  --json     one JSON document on stdout    --help     this text\n"
	"  --version  the version\n"
	"\n"
	"BDF is DDDD:BB:DD.F or BB:DD.F (hex). BYTES take a K, M or G suffix (1024-based).\n"
	"Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
	"Environment: P2PMEM_SYSFS (default /sys), P2PMEM_DEV (default /dev).\n";

/* Appends printf-style text to @b; running out of memory ends the program. */
static __printf(2, 3) void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			perror("p2pmem: vsnprintf");
			exit(EXIT_FAIL);
		}
		if (b->s && b->len + n < b->cap)
			break;
		b->cap = (b->cap + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s) {
			perror("p2pmem: realloc");
			exit(EXIT_FAIL);
		}
	}
	b->len += n;
}

/* Appends @s as a JSON string, or null when @s is NULL. */
static void jb_quote(struct jbuf *b, const char *s)
{
	if (!s) {
		jb_printf(b, "null");
		return;
	}
	jb_printf(b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			jb_printf(b, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			jb_printf(b, "\\u%04x", (unsigned char)*s);
		else
			jb_printf(b, "%c", *s);
	}
	jb_printf(b, "\"");
}

/* Starts the field @key of an object body, with a comma after an earlier field. */
static void jb_key(struct jbuf *b, const char *key)
{
	jb_printf(b, "%s\"%s\": ", b->len ? ", " : "", key);
}

/* A string field, null when @val is NULL. */
static void jb_str(struct jbuf *b, const char *key, const char *val)
{
	jb_key(b, key);
	jb_quote(b, val);
}

/* A number field, null when not @known. */
static void jb_num(struct jbuf *b, const char *key, bool known, unsigned long long val)
{
	jb_key(b, key);
	if (known)
		jb_printf(b, "%llu", val);
	else
		jb_printf(b, "null");
}

/* A boolean field. */
static void jb_bool(struct jbuf *b, const char *key, bool val)
{
	jb_key(b, key);
	jb_printf(b, "%s", val ? "true" : "false");
}

/*
 * Records a failure (errno @err, 0 for none) and returns EXIT_FAIL. The first failure
 * gives the errno; later ones are appended to the message.
 */
static __printf(3, 4) int fail(struct ctx *c, int err, const char *fmt, ...)
{
	size_t len = strlen(c->error);
	va_list ap;

	if (c->failed && len + 2 < sizeof(c->error)) {
		memcpy(c->error + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->error + len, sizeof(c->error) - len, fmt, ap);
	va_end(ap);
	if (!c->failed)
		c->err = err;
	c->failed = true;
	return EXIT_FAIL;
}

/* Records a usage error and returns EXIT_USAGE. */
static __printf(2, 3) int usage_error(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	c->err = 0;
	c->failed = true;
	return EXIT_USAGE;
}

/* A note for the user: stderr in both modes, so that stdout stays one JSON document. */
static __printf(1, 2) void note(const char *fmt, ...)
{
	va_list ap;

	fputs("p2pmem: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Human output: stdout, and nothing at all in --json mode. */
static __printf(1, 2) void say(const char *fmt, ...)
{
	va_list ap;

	if (opt_json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* Formats a path into @buf (PATH_MAX); the prefixes are bounded, so it always fits. */
static __printf(2, 3) void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
}

/* Formats into @buf of @len bytes, cutting what does not fit (messages, names). */
static __printf(3, 4) void strf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Writes @val to the sysfs file @path with one write(); 0 or -errno (-EIO if short). */
static int sysfs_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd, ret = 0;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Reads the text file @path into @buf without its trailing newline; 0 or -errno. */
static int read_text(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* Reads a decimal number from the sysfs file @path; 0, or -errno (-EINVAL if not a number). */
static int read_u64(const char *path, unsigned long long *val)
{
	char buf[64], *end;
	int ret;

	ret = read_text(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (!buf[0] || *end || errno || buf[0] == '-')
		return -EINVAL;
	return 0;
}

/* Whether @path is a directory (following symlinks, as sysfs device links need). */
static bool is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* Parses @n hex digits at @s into @val; false if any is not a hex digit. */
static bool hex_field(const char *s, int n, unsigned int *val)
{
	int i;

	*val = 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		unsigned int d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return false;
		*val = *val * 16 + d;
	}
	return true;
}

/*
 * Parses "DDDD:BB:DD.F", or "BB:DD.F" (domain 0) unless @full_only, into the sysfs name
 * "dddd:bb:dd.f" in @out; false if malformed (device above 0x1f, function above 7).
 */
static bool parse_bdf(const char *s, char out[BDF_LEN], bool full_only)
{
	unsigned int dom = 0, bus, dev, fn;
	size_t len = strlen(s);

	if (len == 12) {
		if (!hex_field(s, 4, &dom) || s[4] != ':')
			return false;
		s += 5;
	} else if (len != 7 || full_only) {
		return false;
	}
	if (!hex_field(s, 2, &bus) || s[2] != ':' || !hex_field(s + 3, 2, &dev) ||
	    s[5] != '.' || !hex_field(s + 6, 1, &fn) || dev > 0x1f || fn > 7)
		return false;
	snprintf(out, BDF_LEN, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return true;
}

/* Parses a byte count: decimal digits and an optional K, M or G (1024-based). */
static bool parse_bytes(const char *s, unsigned long long *val)
{
	unsigned long long v = 0, mult = 1;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - (*p - '0')) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (p == s)
		return false;
	switch (*p) {
	case '\0':
		break;
	case 'K': case 'k':
		mult = 1ULL << 10;
		break;
	case 'M': case 'm':
		mult = 1ULL << 20;
		break;
	case 'G': case 'g':
		mult = 1ULL << 30;
		break;
	default:
		return false;
	}
	if (*p && p[1])
		return false;
	if (v > ULLONG_MAX / mult)
		return false;
	*val = v * mult;
	return true;
}

/* Fails with ENOENT unless p2pmem is loaded (its driver directory exists). */
static int need_driver(struct ctx *c)
{
	char path[PATH_MAX];

	pathf(path, "%s/bus/pci/drivers/p2pmem", c->sysfs);
	if (is_dir(path))
		return 0;
	return fail(c, ENOENT, "p2pmem is not loaded (modprobe p2pmem): %s: %s", path,
		    strerror(ENOENT));
}

/* Fails with ENODEV unless the PCI device @bdf exists. */
static int need_device(struct ctx *c, const char *bdf)
{
	char path[PATH_MAX];

	pathf(path, "%s/bus/pci/devices/%s", c->sysfs, bdf);
	if (is_dir(path))
		return 0;
	return fail(c, ENODEV, "no PCI device %s: %s: %s", bdf, path, strerror(ENODEV));
}

/* The name of the driver @bdf is bound to, in @name; 0, -ENOENT when none, or -errno. */
static int driver_of(struct ctx *c, const char *bdf, char *name, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	pathf(path, "%s/bus/pci/devices/%s/driver", c->sysfs, bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	strf(name, len, "%s", base ? base + 1 : link);
	return 0;
}

/*
 * Opens the /dev/p2pmemN that serves @bdf (matching P2PMEM_IOCTL_INFO's pci_dev), with its
 * path in @node and its info in @info. Returns the fd, or -ENOENT when no node serves @bdf
 * (or the first other error met opening one, e.g. -EACCES).
 */
static int open_p2pmem(struct ctx *c, const char *bdf, char *node, struct p2pmem_info *info)
{
	int i, fd, ret = -ENOENT;

	for (i = 0; i < MAX_MINORS; i++) {
		pathf(node, "%s/" P2PMEM_DEVICE_PREFIX "%d", c->dev, i);
		fd = open(node, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT && errno != ENXIO && errno != ENODEV && ret == -ENOENT)
				ret = -errno;
			continue;
		}
		memset(info, 0, sizeof(*info));
		if (!ioctl(fd, P2PMEM_IOCTL_INFO, info) &&
		    !strncmp(info->pci_dev, bdf, sizeof(info->pci_dev)))
			return fd;
		close(fd);
	}
	node[0] = '\0';
	return ret;
}

/* The size of BAR @bar of @bdf from its sysfs resource file; 0 or -errno. */
static int bar_size(struct ctx *c, const char *bdf, unsigned int bar, unsigned long long *size)
{
	unsigned long long start, end, flags;
	char path[PATH_MAX], line[256];
	unsigned int i;
	int ret = -EINVAL;
	FILE *f;

	pathf(path, "%s/bus/pci/devices/%s/resource", c->sysfs, bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (i = 0; fgets(line, sizeof(line), f); i++) {
		if (i != bar)
			continue;
		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3) {
			*size = end > start ? end - start + 1 : 0;
			ret = 0;
		}
		break;
	}
	fclose(f);
	return ret;
}

/* Reads the p2pmem_region attributes of @bdf; @known[i] says whether @val[i] was read. */
static void read_region(struct ctx *c, const char *bdf, unsigned long long *val, bool *known)
{
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < NR_REGION_ATTRS; i++) {
		pathf(path, "%s/bus/pci/devices/%s/p2pmem_region/%s", c->sysfs, bdf,
		      region_attrs[i]);
		known[i] = !read_u64(path, &val[i]);
	}
}

/* Formats @bytes as MiB into @buf, or "-" when not @known. */
static const char *mib(char *buf, size_t len, bool known, unsigned long long bytes)
{
	if (!known)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", bytes / MIB);
	return buf;
}

/* Formats a count into @buf, or "-" when not @known. */
static const char *num(char *buf, size_t len, bool known, unsigned long long val)
{
	if (!known)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", val);
	return buf;
}

/* One device of list: a table row, and its object appended to the array @arr. */
static void list_one(struct ctx *c, const char *bdf, struct jbuf *arr)
{
	char path[PATH_MAX], node[PATH_MAX], vendor[16] = "", device[16] = "", id[40];
	char s[10][32];
	unsigned long long val[NR_REGION_ATTRS], bar_bytes = 0;
	bool known[NR_REGION_ATTRS], have_info, have_bar = false, have_win;
	struct p2pmem_info info;
	struct jbuf d = { 0 };
	unsigned int i;
	int fd;

	pathf(path, "%s/bus/pci/devices/%s/vendor", c->sysfs, bdf);
	if (read_text(path, vendor, sizeof(vendor)))
		vendor[0] = '\0';
	pathf(path, "%s/bus/pci/devices/%s/device", c->sysfs, bdf);
	if (read_text(path, device, sizeof(device)))
		device[0] = '\0';
	fd = open_p2pmem(c, bdf, node, &info);
	have_info = fd >= 0;
	if (have_info)
		close(fd);
	else if (fd != -ENOENT)
		note("%s: no /dev/p2pmemN for it: %s", bdf, strerror(-fd));
	if (have_info)
		have_bar = !bar_size(c, bdf, info.bar, &bar_bytes);
	read_region(c, bdf, val, known);
	/* region_bytes and pool_bytes: indexes 0 and 6 of region_attrs. */
	have_win = known[0] && known[6];

	jb_str(&d, "bdf", bdf);
	jb_str(&d, "vendor", vendor[0] ? vendor : NULL);
	jb_str(&d, "device_id", device[0] ? device : NULL);
	jb_str(&d, "device", have_info ? node : NULL);
	jb_num(&d, "bar", have_info, have_info ? info.bar : 0);
	jb_num(&d, "bar_bytes", have_bar, bar_bytes);
	jb_num(&d, "window_bytes", have_win, val[0] + val[6]);
	for (i = 0; i < NR_REGION_ATTRS; i++)
		jb_num(&d, region_attrs[i], known[i], val[i]);
	jb_num(&d, "page_size", have_info, have_info ? info.page_size : 0);
	jb_printf(arr, "%s{%s}", arr->len ? ", " : "", d.s ? d.s : "");
	free(d.s);

	snprintf(id, sizeof(id), "%s:%s", vendor[0] ? vendor + (strncmp(vendor, "0x", 2) ? 0 : 2)
		 : "-", device[0] ? device + (strncmp(device, "0x", 2) ? 0 : 2) : "-");
	say(ROW_FMT, bdf, id, have_info ? node : "-",
	    have_info ? num(s[0], 32, true, info.bar) : "-",
	    mib(s[1], 32, have_bar, bar_bytes), mib(s[2], 32, have_win, val[0] + val[6]),
	    mib(s[3], 32, known[0], val[0]), mib(s[4], 32, known[6], val[6]),
	    num(s[5], 32, known[1], val[1]), num(s[6], 32, known[2], val[2]),
	    num(s[7], 32, known[3], val[3]), num(s[8], 32, known[4], val[4]),
	    num(s[9], 32, known[5], val[5]));
}

/* p2pmem list: every device bound to p2pmem. */
static int cmd_list(struct ctx *c)
{
	char path[PATH_MAX], bdf[BDF_LEN];
	struct jbuf arr = { 0 };
	struct dirent **names;
	int i, n, count = 0;

	if (need_driver(c))
		return EXIT_FAIL;
	pathf(path, "%s/bus/pci/drivers/p2pmem", c->sysfs);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return fail(c, errno, "scandir %s: %s", path, strerror(errno));
	for (i = 0; i < n; i++) {
		if (parse_bdf(names[i]->d_name, bdf, true) && !strcmp(bdf, names[i]->d_name)) {
			if (!count++)
				say(ROW_FMT, "BDF", "ID", "DEVICE", "BAR", "BAR_MiB", "WIN_MiB",
				    "REG_MiB", "POOL_MiB", "PAGES", "FREE", "OUT", "HANDED_OUT",
				    "FREED");
			list_one(c, bdf, &arr);
		}
		free(names[i]);
	}
	free(names);
	if (!count)
		note("no device is bound to p2pmem");
	jb_key(&c->fields, "devices");
	jb_printf(&c->fields, "[%s]", arr.s ? arr.s : "");
	free(arr.s);
	return EXIT_OK;
}

/*
 * Whether the block device whose sysfs directory is @dir is in use: mounted (its
 * major:minor in /proc/self/mountinfo), held (entries in holders/), or claimed by
 * someone else (open O_EXCL of its node in $DEV fails with EBUSY: swap, a mount in
 * another namespace). Says why in @why.
 */
static bool blk_busy(struct ctx *c, const char *dir, char *why, size_t len)
{
	char path[PATH_MAX], devno[32], line[4096], field[64];
	unsigned int maj, min;
	struct dirent *de;
	struct stat st;
	bool busy = false;
	FILE *f;
	DIR *d;
	int fd;

	pathf(path, "%s/dev", dir);
	if (read_text(path, devno, sizeof(devno)))
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (f) {
		while (!busy && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*s %*s %63s", field) == 1 && !strcmp(field, devno)) {
				strf(why, len, "mounted (%s in /proc/self/mountinfo)", devno);
				busy = true;
			}
		}
		fclose(f);
	} else {
		note("cannot read /proc/self/mountinfo: %s", strerror(errno));
	}
	pathf(path, "%s/holders", dir);
	d = busy ? NULL : opendir(path);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.') {
			strf(why, len, "held by %s (%s)", de->d_name, path);
			busy = true;
			break;
		}
	}
	if (d)
		closedir(d);
	if (busy)
		return true;
	/* $DEV/NAME, if it is this block device (devtmpfs names it after the disk). */
	pathf(path, "%s/%s", c->dev, strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir);
	if (sscanf(devno, "%u:%u", &maj, &min) != 2 || stat(path, &st) || !S_ISBLK(st.st_mode) ||
	    st.st_rdev != makedev(maj, min))
		return false;
	fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
	} else if (errno == EBUSY) {
		strf(why, len, "open by another user (open O_EXCL %s: %s)", path,
		     strerror(EBUSY));
		busy = true;
	}
	return busy;
}

/*
 * Looks for a busy block device among the children of @dir named nvme* that are block
 * devices, and their partitions. Names the first in @name, why in @why.
 */
static bool nvme_disks_busy(struct ctx *c, const char *dir, char *name, char *why, size_t len)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct dirent *de, *pe;
	bool busy = false;
	DIR *d, *pd;

	d = opendir(dir);
	while (!busy && d && (de = readdir(d))) {
		if (strncmp(de->d_name, "nvme", 4))
			continue;
		pathf(path, "%s/%s", dir, de->d_name);
		pathf(sub, "%s/dev", path);
		if (access(sub, F_OK))
			continue;
		if (blk_busy(c, path, why, len)) {
			strf(name, NAME_MAX + 1, "%s", de->d_name);
			busy = true;
			break;
		}
		pd = opendir(path);
		while (pd && (pe = readdir(pd))) {
			if (strncmp(pe->d_name, de->d_name, strlen(de->d_name)) ||
			    !strcmp(pe->d_name, de->d_name))
				continue;
			pathf(sub, "%s/%s", path, pe->d_name);
			if (blk_busy(c, sub, why, len)) {
				strf(name, NAME_MAX + 1, "%s", pe->d_name);
				busy = true;
				break;
			}
		}
		if (pd)
			closedir(pd);
	}
	if (d)
		closedir(d);
	return busy;
}

/*
 * Whether a namespace or partition of the NVMe controller(s) of @bdf is in use: the
 * namespaces under $SYSFS/bus/pci/devices/BDF/nvme/nvmeX/, and with native multipath the
 * head disks of each subsystem that contains nvmeX.
 */
static bool nvme_busy(struct ctx *c, const char *bdf, char *name, char *why, size_t len)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct dirent *de, *se;
	bool busy = false;
	DIR *d, *sd;

	pathf(path, "%s/bus/pci/devices/%s/nvme", c->sysfs, bdf);
	d = opendir(path);
	while (!busy && d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		pathf(sub, "%s/%s", path, de->d_name);
		busy = nvme_disks_busy(c, sub, name, why, len);
		pathf(sub, "%s/class/nvme-subsystem", c->sysfs);
		sd = busy ? NULL : opendir(sub);
		while (!busy && sd && (se = readdir(sd))) {
			char ctrl[PATH_MAX];

			if (se->d_name[0] == '.')
				continue;
			pathf(ctrl, "%s/%s/%s", sub, se->d_name, de->d_name);
			if (access(ctrl, F_OK))
				continue;
			pathf(ctrl, "%s/%s", sub, se->d_name);
			busy = nvme_disks_busy(c, ctrl, name, why, len);
		}
		if (sd)
			closedir(sd);
	}
	if (d)
		closedir(d);
	return busy;
}

/* Reads one p2pmem_region attribute of @bdf; false if it cannot be read. */
static bool region_attr(struct ctx *c, const char *bdf, const char *attr,
			unsigned long long *val)
{
	char path[PATH_MAX];

	pathf(path, "%s/bus/pci/devices/%s/p2pmem_region/%s", c->sysfs, bdf, attr);
	return !read_u64(path, val);
}

/* Restores @bdf after a failed probe: clears driver_override and reprobes. */
static void bind_restore(struct ctx *c, const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX];
	int ret;

	pathf(path, "%s/bus/pci/devices/%s/driver_override", c->sysfs, bdf);
	ret = sysfs_write(path, "\n");
	if (ret)
		fail(c, -ret, "restore: write '\\n' to %s: %s", path, strerror(-ret));
	pathf(path, "%s/bus/pci/drivers_probe", c->sysfs);
	ret = sysfs_write(path, bdf);
	if (ret)
		note("restore: write %s to %s: %s", bdf, path, strerror(-ret));
	if (driver_of(c, bdf, drv, len))
		drv[0] = '\0';
}

/* p2pmem bind BDF [--force]: the driver_override dance. */
static int cmd_bind(struct ctx *c, const char *bdf)
{
	char prev[NAME_MAX + 1] = "", now[NAME_MAX + 1] = "", path[PATH_MAX];
	char node[PATH_MAX] = "", busy_name[NAME_MAX + 1], why[PATH_MAX + 128];
	unsigned long long region = 0, pool = 0;
	bool already = false, have_region, have_pool;
	struct p2pmem_info info;
	int ret, fd, probe_err;

	jb_str(&c->fields, "bdf", bdf);
	if (need_driver(c) || need_device(c, bdf))
		return EXIT_FAIL;
	ret = driver_of(c, bdf, prev, sizeof(prev));
	if (ret && ret != -ENOENT)
		return fail(c, -ret, "readlink %s/bus/pci/devices/%s/driver: %s", c->sysfs, bdf,
			    strerror(-ret));
	if (ret)
		prev[0] = '\0';
	jb_str(&c->fields, "previous_driver", prev[0] ? prev : NULL);

	if (!strcmp(prev, "p2pmem")) {
		already = true;
	} else {
		if (!strcmp(prev, "nvme") && nvme_busy(c, bdf, busy_name, why, sizeof(why))) {
			if (!opt_force)
				return fail(c, EBUSY,
					    "%s: /dev/%s is in use: %s; unbinding nvme would pull it away (--force to do it anyway): %s",
					    bdf, busy_name, why, strerror(EBUSY));
			note("--force: /dev/%s is in use: %s", busy_name, why);
		}
		/* driver_override first, so that no other driver can take the device. */
		pathf(path, "%s/bus/pci/devices/%s/driver_override", c->sysfs, bdf);
		ret = sysfs_write(path, "p2pmem");
		if (ret)
			return fail(c, -ret, "write p2pmem to %s: %s", path, strerror(-ret));
		if (prev[0]) {
			pathf(path, "%s/bus/pci/drivers/%s/unbind", c->sysfs, prev);
			ret = sysfs_write(path, bdf);
			if (ret) {
				fail(c, -ret, "write %s to %s: %s", bdf, path, strerror(-ret));
				bind_restore(c, bdf, now, sizeof(now));
				return EXIT_FAIL;
			}
		}
		pathf(path, "%s/bus/pci/drivers_probe", c->sysfs);
		probe_err = -sysfs_write(path, bdf);
		ret = driver_of(c, bdf, now, sizeof(now));
		if (ret || strcmp(now, "p2pmem")) {
			if (probe_err)
				fail(c, probe_err, "probe of %s failed: write %s to %s: %s", bdf,
				     bdf, path, strerror(probe_err));
			else
				fail(c, ENODEV, "probe of %s failed: %s did not bind it to p2pmem",
				     bdf, path);
			bind_restore(c, bdf, now, sizeof(now));
			fail(c, 0, "see the kernel log (dmesg); %s is back on %s", bdf,
			     now[0] ? now : "no driver");
			jb_str(&c->fields, "driver", now[0] ? now : NULL);
			return EXIT_FAIL;
		}
	}
	jb_str(&c->fields, "driver", "p2pmem");
	jb_bool(&c->fields, "already_bound", already);
	fd = open_p2pmem(c, bdf, node, &info);
	if (fd >= 0)
		close(fd);
	else
		note("%s: no %s/p2pmemN serves it: %s", bdf, c->dev, strerror(-fd));
	jb_str(&c->fields, "device", fd >= 0 ? node : NULL);
	have_region = region_attr(c, bdf, "region_bytes", &region);
	have_pool = region_attr(c, bdf, "pool_bytes", &pool);
	jb_num(&c->fields, "region_bytes", have_region, region);
	jb_num(&c->fields, "pool_bytes", have_pool, pool);
	if (already)
		say("%s: already bound to p2pmem", bdf);
	else
		say("%s: bound to p2pmem (was: %s)", bdf, prev[0] ? prev : "no driver");
	say(", %s, region %.1f MiB, pool %.1f MiB\n", fd >= 0 ? node : "no /dev/p2pmemN",
	    region / MIB, pool / MIB);
	return EXIT_OK;
}

/* p2pmem unbind BDF [--no-reprobe]: unbind from p2pmem, hand back to its driver. */
static int cmd_unbind(struct ctx *c, const char *bdf)
{
	char drv[NAME_MAX + 1] = "", path[PATH_MAX];
	unsigned long long out = 0;
	bool have_out;
	int ret;

	jb_str(&c->fields, "bdf", bdf);
	if (need_driver(c) || need_device(c, bdf))
		return EXIT_FAIL;
	ret = driver_of(c, bdf, drv, sizeof(drv));
	if (ret || strcmp(drv, "p2pmem"))
		return fail(c, ENODEV, "%s is not bound to p2pmem (driver: %s): %s", bdf,
			    ret ? "none" : drv, strerror(ENODEV));
	have_out = region_attr(c, bdf, "outstanding_pages", &out);
	jb_num(&c->fields, "outstanding_pages_before", have_out, out);
	if (have_out && out)
		note("%s: waiting for %llu pages to come back (outstanding_pages)", bdf, out);
	pathf(path, "%s/bus/pci/drivers/p2pmem/unbind", c->sysfs);
	ret = sysfs_write(path, bdf);
	if (ret)
		return fail(c, -ret, "write %s to %s: %s", bdf, path, strerror(-ret));
	pathf(path, "%s/bus/pci/devices/%s/driver_override", c->sysfs, bdf);
	ret = sysfs_write(path, "\n");
	if (ret)
		return fail(c, -ret, "unbound, but write '\\n' to %s: %s", path, strerror(-ret));
	drv[0] = '\0';
	if (!opt_no_reprobe) {
		pathf(path, "%s/bus/pci/drivers_probe", c->sysfs);
		ret = sysfs_write(path, bdf);
		if (ret)
			note("write %s to %s: %s", bdf, path, strerror(-ret));
		if (driver_of(c, bdf, drv, sizeof(drv)))
			drv[0] = '\0';
	}
	jb_str(&c->fields, "driver", drv[0] ? drv : NULL);
	jb_bool(&c->fields, "reprobed", !opt_no_reprobe);
	say("%s: unbound from p2pmem (%llu pages were out); driver now: %s\n", bdf, out,
	    drv[0] ? drv : opt_no_reprobe ? "none (--no-reprobe)" : "none");
	return EXIT_OK;
}

/* What check found, for its report. */
struct check {
	const char *bdf, *blockdev;
	char node[PATH_MAX];
	unsigned long long offset, size, p2p_pages, out_before, out_after;
	bool have_node, have_pages, have_after, have_mbps, mismatch, wrote, restored;
	int passes;
	double mbps;
	unsigned long long mis_offset;
	unsigned int mis_expected, mis_got, mis_pass;
};

/* Seconds on the monotonic clock. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* pread() of exactly @size bytes at @off into @buf; 0, or -errno (-EIO when short). */
static int pread_full(int fd, void *buf, size_t size, off_t off, ssize_t *got)
{
	*got = pread(fd, buf, size, off);
	if (*got < 0)
		return -errno;
	return (size_t)*got == size ? 0 : -EIO;
}

/* pwrite() of exactly @size bytes at @off from @buf; 0, or -errno (-EIO when short). */
static int pwrite_full(int fd, const void *buf, size_t size, off_t off, ssize_t *done)
{
	*done = pwrite(fd, buf, size, off);
	if (*done < 0)
		return -errno;
	return (size_t)*done == size ? 0 : -EIO;
}

/* Records a failed transfer @what of check @k; EREMOTEIO into P2P pages means no P2PDMA. */
static int io_fail(struct ctx *c, struct check *k, const char *what, bool p2p, int err,
		   ssize_t done)
{
	if (err == EIO && done >= 0)
		return fail(c, EIO, "%s %s: short transfer, %zd of %llu bytes", what, k->blockdev,
			    done, k->size);
	if (p2p && err == EREMOTEIO)
		return fail(c, err, "%s cannot do P2PDMA: %s %s with %s's pages: %s", k->blockdev,
			    what, k->blockdev, k->node, strerror(err));
	return fail(c, err, "%s %s: %s", what, k->blockdev, strerror(err));
}

/* Word @i of the write pattern of the range at @offset. */
static unsigned long long pattern(unsigned long long offset, size_t i, unsigned long long seed)
{
	return (offset / 8 + i) * GOLDEN ^ seed;
}

/* Records the first byte where @got differs from @exp (@size bytes); false if none. */
static bool compare(struct check *k, const unsigned char *exp, const unsigned char *got,
		    size_t size, unsigned int pass)
{
	size_t i;

	if (!memcmp(exp, got, size))
		return false;
	for (i = 0; i < size && exp[i] == got[i]; i++)
		;
	if (i == size)
		return false;
	k->mismatch = true;
	k->mis_offset = k->offset + i;
	k->mis_expected = exp[i];
	k->mis_got = got[i];
	k->mis_pass = pass;
	return true;
}

/* Fills @buf (@size bytes) with the write pattern. */
static void fill_pattern(unsigned long long *buf, size_t size, unsigned long long offset,
			 unsigned long long seed)
{
	size_t i;

	for (i = 0; i < size / 8; i++)
		buf[i] = pattern(offset, i, seed);
}

/* The read passes: the range into host memory, then twice into P2P memory, compared. */
static int check_read(struct ctx *c, struct check *k, int bfd, unsigned char *p2p,
		      unsigned char *host)
{
	static const unsigned char poison[2] = { 0xa5, 0x5a };
	double t, spent = 0;
	ssize_t done;
	int pass, ret;

	memset(host, 0x5a, k->size);
	ret = pread_full(bfd, host, k->size, k->offset, &done);
	if (ret)
		return io_fail(c, k, "pread into host memory from", false, -ret, done);
	for (pass = 0; pass < 2; pass++) {
		memset(p2p, poison[pass], k->size);
		t = now_s();
		ret = pread_full(bfd, p2p, k->size, k->offset, &done);
		spent += now_s() - t;
		if (ret)
			return io_fail(c, k, "pread into P2P memory from", true, -ret, done);
		k->passes++;
		k->mbps = spent > 0 ? k->passes * k->size / 1e6 / spent : 0;
		k->have_mbps = true;
		if (compare(k, host, p2p, k->size, pass + 1))
			return fail(c, 0,
				    "pass %d: bytes differ at offset %llu of %s: expected 0x%02x, got 0x%02x",
				    pass + 1, k->mis_offset, k->blockdev, k->mis_expected,
				    k->mis_got);
		say("pass %d: P2P read matches the host read\n", pass + 1);
	}
	return EXIT_OK;
}

/*
 * The write passes: save the range, write a fresh pattern from P2P memory, read it back
 * into host memory and into P2P memory and compare both; then always write the saved copy
 * back.
 */
static int check_write(struct ctx *c, struct check *k, int bfd, unsigned char *p2p,
		       unsigned char *saved, unsigned char *host)
{
	unsigned long long seed = (unsigned long long)time(NULL) << 20 ^ getpid() ^
				  (unsigned long long)(now_s() * 1e9);
	const char *why;
	sigset_t stop, old;
	int ret, rc = EXIT_OK;
	ssize_t done;
	double t;

	memset(saved, 0x5a, k->size);
	ret = pread_full(bfd, saved, k->size, k->offset, &done);
	if (ret)
		return io_fail(c, k, "pread (saving the range) from", false, -ret, done);
	fill_pattern((unsigned long long *)p2p, k->size, k->offset, seed);
	/* No ^C between the first write and the restore: it would leave test data behind. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &stop, &old))
		return fail(c, errno, "sigprocmask: %s", strerror(errno));
	k->wrote = true;
	ret = pwrite_full(bfd, p2p, k->size, k->offset, &done);
	if (ret) {
		rc = io_fail(c, k, "pwrite from P2P memory to", true, -ret, done);
		goto restore;
	}
	if (fdatasync(bfd)) {
		rc = fail(c, errno, "fdatasync %s: %s", k->blockdev, strerror(errno));
		goto restore;
	}
	/* Pass 1: into host memory. The expected bytes are regenerated in P2P memory. */
	memset(host, 0x5a, k->size);
	ret = pread_full(bfd, host, k->size, k->offset, &done);
	if (ret) {
		rc = io_fail(c, k, "pread into host memory from", false, -ret, done);
		goto restore;
	}
	k->passes++;
	fill_pattern((unsigned long long *)p2p, k->size, k->offset, seed);
	if (compare(k, (const unsigned char *)p2p, host, k->size, 1)) {
		rc = fail(c, 0,
			  "pass 1: bytes differ at offset %llu of %s: expected 0x%02x, got 0x%02x",
			  k->mis_offset, k->blockdev, k->mis_expected, k->mis_got);
		goto restore;
	}
	say("pass 1: the pattern written from P2P memory reads back into host memory\n");
	/* Pass 2: into P2P memory, compared with the pattern in host memory. */
	memset(p2p, 0xa5, k->size);
	t = now_s();
	ret = pread_full(bfd, p2p, k->size, k->offset, &done);
	t = now_s() - t;
	if (ret) {
		rc = io_fail(c, k, "pread into P2P memory from", true, -ret, done);
		goto restore;
	}
	k->passes++;
	k->mbps = t > 0 ? k->size / 1e6 / t : 0;
	k->have_mbps = true;
	if (compare(k, host, p2p, k->size, 2)) {
		rc = fail(c, 0,
			  "pass 2: bytes differ at offset %llu of %s: expected 0x%02x, got 0x%02x",
			  k->mis_offset, k->blockdev, k->mis_expected, k->mis_got);
		goto restore;
	}
	say("pass 2: the pattern reads back into P2P memory\n");
restore:
	ret = pwrite_full(bfd, saved, k->size, k->offset, &done);
	if (!ret && fdatasync(bfd))
		ret = -errno;
	/* Restored means read back equal to the saved copy, not only written. */
	why = NULL;
	if (!ret) {
		memset(host, 0x5a, k->size);
		ret = pread_full(bfd, host, k->size, k->offset, &done);
		if (!ret && memcmp(host, saved, k->size)) {
			ret = -EIO;
			why = "it reads back other bytes";
		}
	}
	k->restored = !ret;
	if (sigprocmask(SIG_SETMASK, &old, NULL))
		note("sigprocmask: %s", strerror(errno));
	if (ret)
		return fail(c, -ret,
			    "RESTORE FAILED: the saved range written to %s at offset %llu and read back: %s; the range may hold test data",
			    k->blockdev, k->offset, why ? why :
			    ret == -EIO && done >= 0 && (unsigned long long)done != k->size ?
			    "short transfer" : strerror(-ret));
	say("restored the %llu bytes at offset %llu of %s\n", k->size, k->offset, k->blockdev);
	return rc;
}

/* The body of check: everything from the node to the passes; the caller reports. */
static int check_run(struct ctx *c, struct check *k)
{
	unsigned char *p2p = MAP_FAILED, *saved = NULL, *host = NULL;
	unsigned long long bdev_bytes, expect;
	struct p2pmem_info info;
	char drv[NAME_MAX + 1];
	int fd = -1, bfd = -1, ret, rc = EXIT_FAIL;
	struct stat st;

	if (need_driver(c) || need_device(c, k->bdf))
		return EXIT_FAIL;
	if (driver_of(c, k->bdf, drv, sizeof(drv)) || strcmp(drv, "p2pmem"))
		return fail(c, ENODEV, "%s is not bound to p2pmem: %s", k->bdf, strerror(ENODEV));
	fd = open_p2pmem(c, k->bdf, k->node, &info);
	if (fd < 0)
		return fail(c, -fd, "no %s/p2pmemN serves %s: %s", c->dev, k->bdf, strerror(-fd));
	k->have_node = true;
	bfd = open(k->blockdev, (opt_write ? O_RDWR | O_EXCL : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (bfd < 0) {
		ret = errno;
		if (ret == EBUSY)
			fail(c, ret, "%s is in use (mounted or held): open O_EXCL: %s", k->blockdev,
			     strerror(ret));
		else
			fail(c, ret, "open %s O_DIRECT: %s", k->blockdev, strerror(ret));
		goto out;
	}
	if (fstat(bfd, &st)) {
		fail(c, errno, "fstat %s: %s", k->blockdev, strerror(errno));
		goto out;
	}
	if (!S_ISBLK(st.st_mode)) {
		fail(c, ENOTBLK, "%s: %s", k->blockdev, strerror(ENOTBLK));
		goto out;
	}
	if (ioctl(bfd, BLKGETSIZE64, &bdev_bytes)) {
		fail(c, errno, "ioctl BLKGETSIZE64 %s: %s", k->blockdev, strerror(errno));
		goto out;
	}
	if (k->offset > bdev_bytes || k->size > bdev_bytes - k->offset) {
		fail(c, EINVAL, "offset %llu + size %llu is past the end of %s (%llu bytes): %s",
		     k->offset, k->size, k->blockdev, bdev_bytes, strerror(EINVAL));
		goto out;
	}
	if (ioctl(fd, P2PMEM_IOCTL_INFO, &info)) {
		fail(c, errno, "ioctl P2PMEM_IOCTL_INFO %s: %s", k->node, strerror(errno));
		goto out;
	}
	k->out_before = info.outstanding_pages;
	p2p = mmap(NULL, k->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p2p == MAP_FAILED) {
		fail(c, errno, "mmap %llu bytes of %s: %s (free_pages %llu)", k->size, k->node,
		     strerror(errno), (unsigned long long)info.free_pages);
		goto out;
	}
	if (ioctl(fd, P2PMEM_IOCTL_INFO, &info)) {
		fail(c, errno, "ioctl P2PMEM_IOCTL_INFO %s: %s", k->node, strerror(errno));
		goto out;
	}
	k->p2p_pages = info.outstanding_pages - k->out_before;
	k->have_pages = true;
	expect = k->size / (info.page_size ? info.page_size : BLOCK);
	if (k->p2p_pages != expect)
		note("outstanding_pages of %s rose by %llu, not %llu: another user of the region?",
		     k->bdf, k->p2p_pages, expect);
	say("p2p pages: %llu of %s (outstanding_pages %llu -> %llu)\n", k->p2p_pages, k->node,
	    k->out_before, (unsigned long long)info.outstanding_pages);
	ret = posix_memalign((void **)&saved, BLOCK, k->size);
	if (!ret)
		ret = posix_memalign((void **)&host, BLOCK, k->size);
	if (ret) {
		fail(c, ret, "posix_memalign %llu bytes: %s", k->size, strerror(ret));
		goto out;
	}
	if (opt_write)
		rc = check_write(c, k, bfd, p2p, saved, host);
	else
		rc = check_read(c, k, bfd, p2p, host);
out:
	if (p2p != MAP_FAILED && munmap(p2p, k->size))
		rc = fail(c, errno, "munmap %s: %s", k->node, strerror(errno));
	if (p2p != MAP_FAILED && !ioctl(fd, P2PMEM_IOCTL_INFO, &info)) {
		k->out_after = info.outstanding_pages;
		k->have_after = true;
		if (k->out_after > k->out_before)
			note("outstanding_pages of %s: %llu after munmap, %llu before the mmap",
			     k->bdf, k->out_after, k->out_before);
	}
	if (bfd >= 0)
		close(bfd);
	if (fd >= 0)
		close(fd);
	free(saved);
	free(host);
	return rc;
}

/* p2pmem check BDF BLOCKDEV: run the passes, then report them. */
static int cmd_check(struct ctx *c, const char *bdf, const char *blockdev,
		     unsigned long long offset, unsigned long long size)
{
	struct check k = { .bdf = bdf, .blockdev = blockdev, .offset = offset, .size = size };
	struct jbuf *f = &c->fields;
	int rc;

	say("check %s <-> %s: %llu bytes at offset %llu, %s mode\n", bdf, blockdev, size, offset,
	    opt_write ? "write (restoring)" : "read");
	rc = check_run(c, &k);
	jb_str(f, "bdf", bdf);
	jb_str(f, "device", k.have_node ? k.node : NULL);
	jb_str(f, "blockdev", blockdev);
	jb_num(f, "offset", true, offset);
	jb_num(f, "size", true, size);
	jb_str(f, "mode", opt_write ? "write" : "read");
	jb_num(f, "p2p_pages", k.have_pages, k.p2p_pages);
	jb_num(f, "passes", true, k.passes);
	jb_num(f, "bytes_checked", true, k.passes * size);
	jb_key(f, "mismatch");
	if (k.mismatch)
		jb_printf(f, "{\"offset\": %llu, \"expected\": %u, \"got\": %u, \"pass\": %u}",
			  k.mis_offset, k.mis_expected, k.mis_got, k.mis_pass);
	else
		jb_printf(f, "null");
	jb_key(f, "read_mbps");
	if (k.have_mbps)
		jb_printf(f, "%.1f", k.mbps);
	else
		jb_printf(f, "null");
	jb_key(f, "restored");
	jb_printf(f, "%s", !k.wrote ? "null" : k.restored ? "true" : "false");
	jb_num(f, "outstanding_pages_before", k.have_pages, k.out_before);
	jb_num(f, "outstanding_pages_after", k.have_after, k.out_after);
	if (rc == EXIT_OK)
		say("result: ok, %llu bytes checked in %d passes, %llu P2P pages, %.1f MB/s\n",
		    k.passes * size, k.passes, k.p2p_pages, k.mbps);
	else
		say("result: FAILED after %d passes\n", k.passes);
	return rc;
}

/* Prints the outcome: the JSON document on stdout, or the error on stderr. */
static void report(struct ctx *c, int rc)
{
	struct jbuf b = { 0 };
	const char *name;

	if (!opt_json) {
		if (c->failed)
			note("%s", c->error);
		if (rc == EXIT_USAGE)
			fputs("Try 'p2pmem --help'.\n", stderr);
		return;
	}
	jb_printf(&b, "{\"ok\": %s", c->failed ? "false" : "true");
	if (c->failed) {
		name = c->err ? strerrorname_np(c->err) : NULL;
		jb_printf(&b, ", \"error\": ");
		jb_quote(&b, c->error);
		jb_printf(&b, ", \"errno\": ");
		jb_quote(&b, name);
	}
	if (c->fields.len)
		jb_printf(&b, ", %s", c->fields.s);
	jb_printf(&b, "}\n");
	fputs(b.s, stdout);
	free(b.s);
}

/* Reads $@name for a path prefix, @def when unset or empty; NULL when too long. */
static const char *prefix_env(const char *name, const char *def)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return def;
	return strlen(v) < PREFIX_MAX ? v : NULL;
}

/* Parses the command line and runs the command. */
static int run(struct ctx *c, int argc, char **argv)
{
	const char *pos[3] = { NULL }, *offset_arg = NULL, *size_arg = NULL;
	bool help = false, version = false, dashdash = false;
	unsigned long long offset = 0, size = 1ULL << 20;
	char bdf[BDF_LEN];
	int i, npos = 0;

	/* --json first, wherever it is: an error in an earlier argument reports in JSON. */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		opt_json |= !strcmp(argv[i], "--json");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;

		if (dashdash || a[0] != '-' || !a[1]) {
			if (npos == 3)
				return usage_error(c, "too many arguments: '%s'", a);
			pos[npos++] = a;
		} else if (!strcmp(a, "--")) {
			dashdash = true;
		} else if (!strcmp(a, "--json")) {
			opt_json = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help = true;
		} else if (!strcmp(a, "--version")) {
			version = true;
		} else if (!strcmp(a, "--force")) {
			opt_force = true;
		} else if (!strcmp(a, "--no-reprobe")) {
			opt_no_reprobe = true;
		} else if (!strcmp(a, "--write")) {
			opt_write = true;
		} else if (!strncmp(a, "--offset", 8) && (!a[8] || a[8] == '=')) {
			val = &offset_arg;
		} else if (!strncmp(a, "--size", 6) && (!a[6] || a[6] == '=')) {
			val = &size_arg;
		} else {
			return usage_error(c, "unknown option '%s'", a);
		}
		if (val && strchr(a, '='))
			*val = strchr(a, '=') + 1;
		else if (val && i + 1 < argc)
			*val = argv[++i];
		else if (val)
			return usage_error(c, "option '%s' needs a value", a);
	}
	if (help) {
		if (opt_json)
			jb_str(&c->fields, "usage", usage_text);
		else
			fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (version) {
		jb_str(&c->fields, "version", P2PMEM_VERSION);
		say("p2pmem %s\n", P2PMEM_VERSION);
		return EXIT_OK;
	}
	if (!c->sysfs || !c->dev)
		return usage_error(c, "P2PMEM_SYSFS or P2PMEM_DEV is longer than %d bytes",
				   PREFIX_MAX - 1);
	if (!pos[0])
		return usage_error(c, "no command given");
	if (opt_force && strcmp(pos[0], "bind"))
		return usage_error(c, "--force is an option of bind only");
	if (opt_no_reprobe && strcmp(pos[0], "unbind"))
		return usage_error(c, "--no-reprobe is an option of unbind only");
	if ((opt_write || offset_arg || size_arg) && strcmp(pos[0], "check"))
		return usage_error(c, "--write, --offset and --size are options of check only");

	if (!strcmp(pos[0], "list")) {
		if (npos != 1)
			return usage_error(c, "list takes no argument");
		return cmd_list(c);
	}
	if (strcmp(pos[0], "bind") && strcmp(pos[0], "unbind") && strcmp(pos[0], "check"))
		return usage_error(c, "unknown command '%s'", pos[0]);
	if (npos != (strcmp(pos[0], "check") ? 2 : 3))
		return usage_error(c, "usage: p2pmem %s", !strcmp(pos[0], "check") ?
				   "check BDF BLOCKDEV [--offset BYTES] [--size BYTES] [--write]" :
				   !strcmp(pos[0], "bind") ? "bind BDF [--force]" :
				   "unbind BDF [--no-reprobe]");
	if (!parse_bdf(pos[1], bdf, false))
		return usage_error(c, "malformed BDF '%s' (DDDD:BB:DD.F or BB:DD.F, hex)", pos[1]);
	if (!strcmp(pos[0], "bind"))
		return cmd_bind(c, bdf);
	if (!strcmp(pos[0], "unbind"))
		return cmd_unbind(c, bdf);
	if (offset_arg && !parse_bytes(offset_arg, &offset))
		return usage_error(c, "bad --offset '%s' (bytes, with K, M or G)", offset_arg);
	if (size_arg && !parse_bytes(size_arg, &size))
		return usage_error(c, "bad --size '%s' (bytes, with K, M or G)", size_arg);
	if (offset % BLOCK || size % BLOCK || !size)
		return usage_error(c,
				   "--offset and --size must be multiples of 4096, size not 0 (offset %llu, size %llu)",
				   offset, size);
	if (size > (unsigned long long)SSIZE_MAX)
		return usage_error(c, "--size %llu is too large", size);
	return cmd_check(c, bdf, pos[2], offset, size);
}

/* Runs the command line; the exit status is the command's. */
int main(int argc, char **argv)
{
	struct ctx c = {
		.sysfs = prefix_env("P2PMEM_SYSFS", "/sys"),
		.dev = prefix_env("P2PMEM_DEV", "/dev"),
	};
	int rc;

	rc = run(&c, argc, argv);
	report(&c, rc);
	free(c.fields.s);
	if (fflush(stdout) && rc == EXIT_OK)
		rc = EXIT_FAIL;
	return rc;
}
