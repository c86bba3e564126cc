/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * p2pmem userspace ABI: the ioctls of /dev/p2pmemN.
 *
 * Shared by the module, its selftests and samples. Every ioctl takes a
 * structure whose first member is its size, so the ABI can grow at the end.
 */
#ifndef _UAPI_LINUX_P2PMEM_H
#define _UAPI_LINUX_P2PMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Unused in Documentation/userspace-api/ioctl/ioctl-number.rst (7.3). */
#define P2PMEM_IOCTL_MAGIC 0xB9

/* The misc device of the Nth bound device is /dev/p2pmemN. */
#define P2PMEM_DEVICE_PREFIX "p2pmem"

#endif /* _UAPI_LINUX_P2PMEM_H */
