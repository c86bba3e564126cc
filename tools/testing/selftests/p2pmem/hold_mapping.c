// SPDX-License-Identifier: GPL-2.0
/*
 * hold_mapping: keeps a MAP_SHARED mapping of the /dev/p2pmemN of a PCI
 * device (and the file) until its standard input reaches EOF or a signal ends
 * it, for the lifetime tests of consumer_test.sh.
 *
 *   hold_mapping BDF [BYTES]
 *
 * Prints "ready <node>" once the mapping is made and every page of it written,
 * then waits; exits 0 on EOF, 1 when any step failed (with the reason).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "p2pmem_util.h"

int main(int argc, char **argv)
{
	size_t size = 1 << 20, i;
	long page = sysconf(_SC_PAGESIZE);
	char node[64], c;
	unsigned char *p;
	ssize_t n;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s BDF [BYTES]\n", argv[0]);
		return 1;
	}
	if (argc == 3)
		size = strtoull(argv[2], NULL, 0);
	fd = open_p2pmem(argv[1], node, sizeof(node));
	if (fd < 0) {
		fprintf(stderr, "no /dev/p2pmemN of %s: %s\n", argv[1], strerror(-fd));
		return 1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmap %zu bytes of %s: %s\n", size, node, strerror(errno));
		return 1;
	}
	for (i = 0; i < size; i += page)
		p[i] = (unsigned char)(i / page);
	printf("ready %s\n", node);
	fflush(stdout);
	/* The pages may be revoked meanwhile: never touch them again. */
	do {
		n = read(STDIN_FILENO, &c, 1);
	} while (n > 0 || (n < 0 && errno == EINTR));
	return n < 0 ? 1 : 0;
}
