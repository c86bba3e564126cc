# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of p2pmem.ko:
#   make KDIR=<kernel build directory>
# Without KDIR, the test bed's cached kernel (scripts/build-kernel.sh) is used.

KDIR ?= $(shell scripts/build-kernel.sh --path 2>/dev/null)
LLVM ?= -19
P2PMEM_CACHE ?= /var/cache/p2pmem
BINDGEN ?= $(firstword $(wildcard $(P2PMEM_CACHE)/cargo/bin/bindgen) bindgen)
# Debian's rustc: the kernel's core is built with it, the module must match.
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) RUSTC=/usr/bin/rustc \
	HOSTRUSTC=/usr/bin/rustc RUSTFMT=/usr/bin/rustfmt \
	CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$(BINDGEN)

all: modules

modules clean:
	@test -n "$(KDIR)" || { echo "KDIR is not set and no cached kernel is built" >&2; exit 1; }
	+$(KMAKE) $@

# The admin tool, tools/p2pmem/p2pmem (userspace; Documentation/p2pmem-tool.rst).
tool:
	$(MAKE) -C tools/p2pmem

# The selftests' in-kernel consumer, which links against p2pmem.ko's exports.
consumer: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testing/selftests/p2pmem/consumer LLVM=$(LLVM) \
		KBUILD_EXTRA_SYMBOLS=$(CURDIR)/Module.symvers modules

# Lints: rustfmt and clippy on the module, checkpatch on the C.
lint:
	/usr/bin/rustfmt --check --edition 2021 src/*.rs
	$(KMAKE) CLIPPY=1 modules
	$(KDIR)/scripts/checkpatch.pl --no-tree --strict --quiet -f include/*.h \
		include/uapi/linux/*.h tools/p2pmem/p2pmem.c
	# The shim's one file_operations is written at run time (see src/shim.c).
	$(KDIR)/scripts/checkpatch.pl --no-tree --strict --quiet --ignore CONST_STRUCT -f src/shim.c

.PHONY: all modules clean lint consumer tool
