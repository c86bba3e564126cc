// SPDX-License-Identifier: GPL-2.0
/*
 * bench_helper: the timed steps of scripts/bench-guest.sh, each timed with
 * CLOCK_MONOTONIC around the system call itself (a fork of date(1) under TCG
 * costs more than the steps measured). Prints one line of "key=value" pairs.
 *
 *   bench_helper node BDF
 *	print the /dev/p2pmemN of BDF
 *   bench_helper mmap-rate FILE BYTES SECONDS
 *	map BYTES of FILE MAP_SHARED, write every 4 KiB page, unmap, for SECONDS:
 *	setups=N per_s=R us_per_page=U
 *   bench_helper bind DRIVER BDF
 *	write BDF to /sys/bus/pci/drivers/DRIVER/bind: us=N
 *   bench_helper unbind BDF [BYTES]
 *	map BYTES (default 0: none) of the /dev/p2pmemN of BDF and write every
 *	page, then unbind it from p2pmem (which zaps the mapping): us=N pages=P
 *   bench_helper unbind-held BDF DEV BYTES
 *	map BYTES of the /dev/p2pmemN of BDF, start an O_DIRECT read of BYTES
 *	from block device DEV into them (a slow device keeps the pages pinned),
 *	unbind while the read is in flight: us=N release_to_return_us=R
 *	read_us=T. The release time is when the reader's pread() returned, so R
 *	is an upper bound of the unbind's own latency after the last page.
 *
 *   bench_helper segments FILE BYTES PROCS CHUNK
 *	PROCS processes map BYTES of FILE MAP_SHARED at once (as fio's jobs do)
 *	and read their pages' frame numbers from /proc/self/pagemap: the mean
 *	number of physically contiguous runs in each CHUNK of a mapping (1: every
 *	I/O of CHUNK bytes is one DMA segment): segments_per_chunk=S chunks=N
 *
 * Exits 0, 1 on a failed step (with the reason on stderr), 2 when the read
 * was not in flight when the unbind started (try a larger BYTES).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p2pmem_util.h"

#define PAGE 4096UL

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "bench_helper: %s: %s\n", what, strerror(err));
	return 1;
}

static int mmap_rate(const char *file, size_t bytes, double seconds)
{
	long long start, end, setups = 0;
	size_t off;
	char *p;
	int fd;

	fd = open(file, O_RDWR);
	if (fd < 0)
		return fail(file, errno);
	start = now_us();
	end = start + (long long)(seconds * 1e6);
	do {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return fail("mmap", errno);
		for (off = 0; off < bytes; off += PAGE)
			p[off] = 1;
		if (munmap(p, bytes))
			return fail("munmap", errno);
		setups++;
	} while (now_us() < end);
	end = now_us();
	printf("setups=%lld per_s=%.1f us_per_page=%.2f\n", setups,
	       setups * 1e6 / (end - start),
	       (double)(end - start) / (setups * (bytes / PAGE)));
	return 0;
}

/* Writes @bdf to /sys/bus/pci/drivers/@driver/@file; the write's microseconds, or -1. */
static long long timed_driver_write(const char *driver, const char *file, const char *bdf)
{
	char path[256];
	long long t0, t1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, file);
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		fail(path, errno);
		return -1;
	}
	t0 = now_us();
	n = write(fd, bdf, strlen(bdf));
	t1 = now_us();
	if (n < 0)
		fail(path, errno);
	close(fd);
	return n < 0 ? -1 : t1 - t0;
}

/* Maps @bytes of the /dev/p2pmemN of @bdf and writes every page; NULL on failure. */
static char *map_node(const char *bdf, size_t bytes)
{
	char node[64];
	size_t off;
	char *p;
	int fd;

	fd = open_p2pmem(bdf, node, sizeof(node));
	if (fd < 0) {
		fail("open /dev/p2pmemN", -fd);
		return NULL;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fail("mmap", errno);
		return NULL;
	}
	for (off = 0; off < bytes; off += PAGE)
		p[off] = 1;
	return p;
}

struct held_read {
	int fd;
	char *buf;
	size_t bytes;
	long long start_us, end_us;
	ssize_t ret;
	int err;
};

static void *held_read(void *arg)
{
	struct held_read *r = arg;

	r->start_us = now_us();
	r->ret = pread(r->fd, r->buf, r->bytes, 0);
	r->err = errno;
	r->end_us = now_us();
	return NULL;
}

static int unbind_held(const char *bdf, const char *dev, size_t bytes)
{
	struct held_read r = { .bytes = bytes };
	long long t0, us;
	pthread_t thread;

	r.buf = map_node(bdf, bytes);
	if (!r.buf)
		return 1;
	r.fd = open(dev, O_RDONLY | O_DIRECT);
	if (r.fd < 0)
		return fail(dev, errno);
	if (pthread_create(&thread, NULL, held_read, &r))
		return fail("pthread_create", EAGAIN);
	/* Let the read pin its pages and reach the device. */
	usleep(100000);
	t0 = now_us();
	us = timed_driver_write(P2PMEM_DRIVER, "unbind", bdf);
	pthread_join(thread, NULL);
	if (us < 0)
		return 1;
	if (r.ret != (ssize_t)bytes)
		return fail("O_DIRECT read into the region", r.ret < 0 ? r.err : EIO);
	if (r.end_us <= t0) {
		fprintf(stderr, "bench_helper: the read ended before the unbind started\n");
		return 2;
	}
	printf("us=%lld release_to_return_us=%lld read_us=%lld\n", us,
	       t0 + us - r.end_us, r.end_us - r.start_us);
	return 0;
}

/*
 * One of segments()'s processes: maps, counts, writes "runs chunks" to the
 * result pipe, then holds its mapping until the release pipe closes.
 */
static int count_runs(const char *file, size_t bytes, size_t chunk, int go,
		      int result, int release)
{
	unsigned long long runs = 0, chunks = 0;
	uint64_t entry, prev = 0;
	size_t pages = bytes / PAGE, i;
	int fd, map;
	char *p, c;

	fd = open(file, O_RDWR);
	map = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || map < 0)
		return fail("open", errno);
	if (read(go, &c, 1) < 0)
		return fail("wait", errno);
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap", errno);
	for (i = 0; i < pages; i++) {
		p[i * PAGE] = 1;
		if (pread(map, &entry, sizeof(entry),
			  ((uintptr_t)p / PAGE + i) * sizeof(entry)) != sizeof(entry))
			return fail("pagemap", errno);
		/* Bit 63: present; bits 0-54: the frame (0 without CAP_SYS_ADMIN). */
		entry &= (1ULL << 63) | ((1ULL << 55) - 1);
		if (!(entry >> 63) || !(entry & ((1ULL << 55) - 1)))
			return fail("pagemap: no frame number (not root?)", EPERM);
		if (i % (chunk / PAGE) == 0) {
			chunks++;
			runs++;
		} else if (entry != prev + 1) {
			runs++;
		}
		prev = entry;
	}
	dprintf(result, "%llu %llu\n", runs, chunks);
	if (read(release, &c, 1) < 0)
		return fail("hold", errno);
	return 0;
}

static int segments(const char *file, size_t bytes, int procs, size_t chunk)
{
	unsigned long long runs = 0, chunks = 0, r, n;
	int go[2], result[2], release[2], i, status, ok = 1;
	FILE *in;

	if (!bytes || bytes % PAGE || !chunk || chunk % PAGE || procs < 1)
		return fail("BYTES and CHUNK must be whole pages, PROCS at least 1", EINVAL);
	if (pipe(go) || pipe(result) || pipe(release))
		return fail("pipe", errno);
	for (i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return fail("fork", errno);
		if (!pid) {
			close(go[1]);
			close(result[0]);
			close(release[1]);
			if (count_runs(file, bytes, chunk, go[0], result[1], release[0])) {
				/* A line the parent cannot parse: it stops waiting for the rest. */
				dprintf(result[1], "failed\n");
				exit(1);
			}
			exit(0);
		}
	}
	close(go[0]);
	close(result[1]);
	close(release[0]);
	/* Every child waits for its byte: they map as close together as they can. */
	for (i = 0; i < procs; i++)
		if (write(go[1], "g", 1) != 1)
			return fail("start", errno);
	in = fdopen(result[0], "r");
	for (i = 0; in && i < procs; i++) {
		if (fscanf(in, "%llu %llu", &r, &n) != 2)
			break;
		runs += r;
		chunks += n;
	}
	close(release[1]);
	while (wait(&status) > 0)
		ok &= WIFEXITED(status) && !WEXITSTATUS(status);
	if (!ok || i < procs || !chunks)
		return 1;
	printf("segments_per_chunk=%.2f chunks=%llu\n", (double)runs / chunks, chunks);
	return 0;
}

int main(int argc, char **argv)
{
	long long us;
	size_t bytes;

	if (argc == 3 && !strcmp(argv[1], "node")) {
		char node[64];
		int fd = open_p2pmem(argv[2], node, sizeof(node));

		if (fd < 0)
			return fail("open /dev/p2pmemN", -fd);
		printf("%s\n", node);
		close(fd);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "mmap-rate"))
		return mmap_rate(argv[2], strtoull(argv[3], NULL, 0), atof(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "bind")) {
		us = timed_driver_write(argv[2], "bind", argv[3]);
		if (us < 0)
			return 1;
		printf("us=%lld\n", us);
		return 0;
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "unbind")) {
		bytes = argc == 4 ? strtoull(argv[3], NULL, 0) : 0;
		if (bytes && !map_node(argv[2], bytes))
			return 1;
		us = timed_driver_write(P2PMEM_DRIVER, "unbind", argv[2]);
		if (us < 0)
			return 1;
		printf("us=%lld pages=%zu\n", us, bytes / PAGE);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "unbind-held"))
		return unbind_held(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "segments"))
		return segments(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]),
				strtoull(argv[5], NULL, 0));
	fprintf(stderr,
		"usage: %s node BDF | mmap-rate FILE BYTES SECONDS | bind DRIVER BDF | unbind BDF [BYTES] |\n"
		"       unbind-held BDF DEV BYTES | segments FILE BYTES PROCS CHUNK\n", argv[0]);
	return 1;
}
