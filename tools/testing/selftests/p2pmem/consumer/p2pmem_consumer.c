// SPDX-License-Identifier: GPL-2.0
/*
 * p2pmem_consumer: a test module that uses P2PDMA memory the way in-kernel
 * users do, through /sys/kernel/debug/p2pmem_consumer/:
 *
 * datapath  write "<client-bdf> <block-device> <byte-offset>": the nvmet data
 *           path: pci_p2pmem_find_many() for the client, pci_p2pmem_alloc_sgl()
 *           (every page checked to be a P2PDMA page inside a memory BAR of the
 *           provider found; the SGL is kept datapath_pause_ms before the I/O so
 *           that a test can see the provider's pool in use), a bio write from
 *           the SGL to the block device and a bio read back into it, data
 *           checked, pci_p2pmem_free_sgl()
 * distance  write "<provider-bdf> <client-bdf>": pci_p2pdma_distance();
 *           ENODEV when either device does not exist, EREMOTEIO when the
 *           provider cannot reach the client
 * hold      write "<provider-bdf> <bytes>": pci_alloc_p2pmem() kept long-term,
 *           with a p2pmem revoke registration that frees it on unbind (after
 *           revoke_delay_ms, a module parameter, to test the wait); with
 *           unregister_on_release, the delayed work also unregisters after it
 *           released. A new hold first lets go of the previous one.
 * held      read: bytes held now
 * revoked_ns   read: ktime_get_real_ns() when ->revoke() was last called, 0: not yet
 * released_ns  read: ktime_get_real_ns() when the revoked memory was freed, 0: not yet
 * result    read: what the last datapath or distance found
 * leak      write N (1-16): leaks N kmalloc(64) on purpose (the runner's kmemleak self-test)
 *
 * Writes fail with the errno of the step that failed.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/memremap.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/scatterlist.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>

#include <p2pmem_revoke.h>

#define DATAPATH_LEN (64 * 1024)

static unsigned int revoke_delay_ms;
module_param(revoke_delay_ms, uint, 0644);
MODULE_PARM_DESC(revoke_delay_ms, "How long the revoke callback takes to let go");

static unsigned int datapath_pause_ms;
module_param(datapath_pause_ms, uint, 0644);
MODULE_PARM_DESC(datapath_pause_ms, "How long datapath keeps its SGL before the I/O");

static bool unregister_on_release;
module_param(unregister_on_release, bool, 0644);
MODULE_PARM_DESC(unregister_on_release,
		 "The revoke work unregisters right after it released (from the release path)");

static struct dentry *dir;
/*
 * Lock order: hold_mutex, then lock. p2pmem is never called with lock held but
 * for p2pmem_revoke_release(), which may be called in any context; the revoke
 * callback and the delayed work take lock, so nothing flushes the work or calls
 * p2pmem_(un)register_revoke() with it held.
 */
static DEFINE_MUTEX(hold_mutex);	/* serializes hold_start() and module exit */
static DEFINE_MUTEX(lock);	/* protects result and the hold's fields */
static char result[256];

static struct {
	struct p2pmem_revoke r;
	bool registered;	/* r is registered and the work still has to release it */
	struct pci_dev *p2p;
	void *addr;
	size_t size;
	u64 revoked_ns;
	u64 released_ns;
	struct delayed_work work;
} hold;

static struct pci_dev *pci_by_name(const char *name)
{
	struct device *dev = bus_find_device_by_name(&pci_bus_type, NULL, name);

	return dev ? to_pci_dev(dev) : NULL;
}

static int sgl_bio(struct block_device *bdev, struct scatterlist *sgl, unsigned int nents,
		   sector_t sector, blk_opf_t op)
{
	struct scatterlist *sg;
	struct bio *bio;
	int i, ret;

	bio = bio_alloc(bdev, nents, op, GFP_KERNEL);
	bio->bi_iter.bi_sector = sector;
	for_each_sg(sgl, sg, nents, i) {
		if (bio_add_page(bio, sg_page(sg), sg->length, sg->offset) != sg->length) {
			bio_put(bio);
			return -EIO;
		}
	}
	ret = submit_bio_wait(bio);
	bio_put(bio);
	return ret;
}

static void sgl_fill(struct scatterlist *sgl, unsigned int nents, u32 seed, bool check,
		     bool *ok)
{
	struct scatterlist *sg;
	u32 *p, k = 0;
	int i;
	size_t j;

	for_each_sg(sgl, sg, nents, i) {
		p = sg_virt(sg);
		for (j = 0; j < sg->length / 4; j++, k++) {
			if (!check)
				p[j] = seed + k * 2654435761u;
			else if (p[j] != seed + k * 2654435761u)
				*ok = false;
		}
	}
}

/* Whether every page of @sgl is a P2PDMA page inside a memory BAR of @p2p. */
static bool sgl_in_bars(struct pci_dev *p2p, struct scatterlist *sgl, unsigned int nents)
{
	struct scatterlist *sg;
	phys_addr_t start, end;
	bool inside;
	int i, bar;

	for_each_sg(sgl, sg, nents, i) {
		if (!is_pci_p2pdma_page(sg_page(sg)))
			return false;
		start = page_to_phys(sg_page(sg)) + sg->offset;
		end = start + sg->length - 1;
		inside = false;
		for (bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
			if (!(pci_resource_flags(p2p, bar) & IORESOURCE_MEM))
				continue;
			if (start >= pci_resource_start(p2p, bar) &&
			    end <= pci_resource_end(p2p, bar))
				inside = true;
		}
		if (!inside)
			return false;
	}
	return true;
}

static int datapath(const char *client_name, const char *path, u64 offset)
{
	struct pci_dev *client, *p2p;
	struct scatterlist *sgl;
	struct device *clients[1];
	struct file *bdev_file;
	unsigned int nents;
	bool ok = true, in_bar;
	int ret;

	client = pci_by_name(client_name);
	if (!client)
		return -ENODEV;
	clients[0] = &client->dev;
	p2p = pci_p2pmem_find_many(clients, 1);
	if (!p2p) {
		ret = -ENODEV;
		goto put_client;
	}
	sgl = pci_p2pmem_alloc_sgl(p2p, &nents, DATAPATH_LEN);
	if (!sgl) {
		ret = -ENOMEM;
		goto put_p2p;
	}
	in_bar = sgl_in_bars(p2p, sgl, nents);
	if (datapath_pause_ms)
		msleep(datapath_pause_ms);
	bdev_file = bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, NULL, NULL);
	if (IS_ERR(bdev_file)) {
		ret = PTR_ERR(bdev_file);
		goto free_sgl;
	}
	sgl_fill(sgl, nents, 0x1234, false, NULL);
	ret = sgl_bio(file_bdev(bdev_file), sgl, nents, offset >> SECTOR_SHIFT, REQ_OP_WRITE);
	if (!ret) {
		sgl_fill(sgl, nents, 0, false, NULL);
		ret = sgl_bio(file_bdev(bdev_file), sgl, nents, offset >> SECTOR_SHIFT,
			      REQ_OP_READ);
	}
	if (!ret)
		sgl_fill(sgl, nents, 0x1234, true, &ok);
	snprintf(result, sizeof(result),
		 "nvmet path: provider %s pages in its BAR %s nents %u bytes %u io %d data %s\n",
		 pci_name(p2p), in_bar ? "yes" : "NO", nents, DATAPATH_LEN, ret,
		 ok ? "ok" : "WRONG");
	if (!ret && (!ok || !in_bar))
		ret = -EIO;
	fput(bdev_file);
free_sgl:
	pci_p2pmem_free_sgl(p2p, sgl);
put_p2p:
	pci_dev_put(p2p);
put_client:
	pci_dev_put(client);
	return ret;
}

static int distance(const char *provider_name, const char *client_name)
{
	struct pci_dev *provider, *client;
	int ret = -ENODEV, d;

	provider = pci_by_name(provider_name);
	client = pci_by_name(client_name);
	if (provider && client) {
		d = pci_p2pdma_distance(provider, &client->dev, false);
		snprintf(result, sizeof(result), "p2p %s -> %s: %d\n", provider_name,
			 client_name, d);
		ret = d < 0 ? -EREMOTEIO : 0;
	} else {
		snprintf(result, sizeof(result), "p2p %s -> %s: no such device\n",
			 provider_name, client_name);
	}
	pci_dev_put(client);
	pci_dev_put(provider);
	return ret;
}

/* Lets go of the held memory; called with @lock held. */
static void hold_free(void)
{
	if (hold.addr)
		pci_free_p2pmem(hold.p2p, hold.addr, hold.size);
	hold.addr = NULL;
	hold.size = 0;
	pci_dev_put(hold.p2p);
	hold.p2p = NULL;
}

/* The revoke, revoke_delay_ms after ->revoke(): let go, release, maybe unregister. */
static void hold_work(struct work_struct *work)
{
	bool unregister = false;

	mutex_lock(&lock);
	hold_free();
	hold.released_ns = ktime_get_real_ns();
	if (hold.registered) {
		p2pmem_revoke_release(&hold.r);
		if (unregister_on_release) {
			hold.registered = false;
			unregister = true;
		}
	}
	mutex_unlock(&lock);
	/* From the release path, while the unbind may still be running. */
	if (unregister)
		p2pmem_unregister_revoke(&hold.r);
}

static void hold_revoke(struct p2pmem_revoke *r)
{
	/* Unbind of the provider: let go now, or after revoke_delay_ms. */
	mutex_lock(&lock);
	hold.revoked_ns = ktime_get_real_ns();
	mutex_unlock(&lock);
	schedule_delayed_work(&hold.work, msecs_to_jiffies(revoke_delay_ms));
}

/*
 * Lets go of the hold and of its registration; with hold_mutex held, not lock.
 * The memory goes first: unregistering tells p2pmem we hold nothing (and when
 * ->revoke() came already, so does the release). Once registered is false the
 * work releases nothing; once unregistered, ->revoke() is not running and will
 * not run, so the work cannot be queued again.
 */
static void hold_stop(void)
{
	bool registered;

	mutex_lock(&lock);
	hold_free();
	registered = hold.registered;
	if (registered && hold.revoked_ns)
		p2pmem_revoke_release(&hold.r);
	hold.registered = false;
	mutex_unlock(&lock);
	if (registered)
		p2pmem_unregister_revoke(&hold.r);
	cancel_delayed_work_sync(&hold.work);
}

static int hold_start(const char *provider_name, size_t size)
{
	struct pci_dev *p2p;
	int ret = -ENODEV;

	mutex_lock(&hold_mutex);
	hold_stop();
	p2p = pci_by_name(provider_name);
	if (!p2p)
		goto out;
	hold.r.name = "p2pmem_consumer";
	hold.r.revoke = hold_revoke;
	/* Set before registering: ->revoke() may come before we allocate. */
	mutex_lock(&lock);
	hold.registered = true;
	hold.revoked_ns = 0;
	hold.released_ns = 0;
	mutex_unlock(&lock);
	ret = p2pmem_register_revoke(p2p, &hold.r);
	mutex_lock(&lock);
	if (ret) {
		hold.registered = false;
		pci_dev_put(p2p);
	} else if (hold.revoked_ns) {
		/* Revoked already: allocate nothing, the work releases. */
		pci_dev_put(p2p);
		ret = -ENODEV;
	} else {
		hold.p2p = p2p;
		hold.addr = pci_alloc_p2pmem(p2p, size);
		if (hold.addr)
			hold.size = size;
		else
			ret = -ENOMEM;
	}
	mutex_unlock(&lock);
out:
	mutex_unlock(&hold_mutex);
	return ret;
}

static ssize_t cmd_write(struct file *file, const char __user *ubuf, size_t count,
			 loff_t *ppos)
{
	const char *name = file->f_path.dentry->d_name.name;
	char buf[160], a[64], b[64];
	unsigned long long n;
	int ret = -EINVAL;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	/* hold_start() takes its own locks: it waits for the work, which takes lock. */
	if (!strcmp(name, "hold")) {
		if (sscanf(buf, "%63s %llu", a, &n) == 2)
			ret = hold_start(a, n);
		return ret ? ret : count;
	}
	mutex_lock(&lock);
	if (!strcmp(name, "datapath") && sscanf(buf, "%63s %63s %llu", a, b, &n) == 3)
		ret = datapath(a, b, n);
	else if (!strcmp(name, "distance") && sscanf(buf, "%63s %63s", a, b) == 2)
		ret = distance(a, b);
	mutex_unlock(&lock);
	return ret ? ret : count;
}

static int show(struct seq_file *m, void *v)
{
	const char *name = m->file->f_path.dentry->d_name.name;

	mutex_lock(&lock);
	if (!strcmp(name, "held"))
		seq_printf(m, "%zu\n", hold.size);
	else if (!strcmp(name, "revoked_ns"))
		seq_printf(m, "%llu\n", hold.revoked_ns);
	else if (!strcmp(name, "released_ns"))
		seq_printf(m, "%llu\n", hold.released_ns);
	else
		seq_puts(m, result);
	mutex_unlock(&lock);
	return 0;
}

/*
 * The runner's kmemleak self-test: @val (1 to 16) objects that nothing points
 * to, named by their contents (kmemleak's hex dump) and by this function (its
 * backtrace). Several, since a stale copy of a pointer (this task's stack,
 * cached for the next task after it exits) can hide one from kmemleak.
 */
static int leak_set(void *data, u64 val)
{
	char *p;

	if (!val || val > 16)
		return -EINVAL;
	while (val--) {
		p = kmalloc(64, GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		strscpy(p, "p2pmem_consumer leak on purpose", 64);
	}
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(leak_fops, NULL, leak_set, "%llu\n");

static int open_show(struct inode *inode, struct file *file)
{
	return single_open(file, show, NULL);
}

static const struct file_operations fops = {
	.owner = THIS_MODULE,
	.open = open_show,
	.read = seq_read,
	.write = cmd_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init consumer_init(void)
{
	INIT_DELAYED_WORK(&hold.work, hold_work);
	dir = debugfs_create_dir("p2pmem_consumer", NULL);
	debugfs_create_file("datapath", 0200, dir, NULL, &fops);
	debugfs_create_file("distance", 0200, dir, NULL, &fops);
	debugfs_create_file("hold", 0200, dir, NULL, &fops);
	debugfs_create_file("held", 0400, dir, NULL, &fops);
	debugfs_create_file("revoked_ns", 0400, dir, NULL, &fops);
	debugfs_create_file("released_ns", 0400, dir, NULL, &fops);
	debugfs_create_file("result", 0400, dir, NULL, &fops);
	debugfs_create_file_unsafe("leak", 0200, dir, NULL, &leak_fops);
	return 0;
}

static void __exit consumer_exit(void)
{
	debugfs_remove_recursive(dir);
	mutex_lock(&hold_mutex);
	hold_stop();
	mutex_unlock(&hold_mutex);
}

module_init(consumer_init);
module_exit(consumer_exit);
MODULE_DESCRIPTION("p2pmem selftest: an in-kernel P2PDMA consumer");
MODULE_LICENSE("GPL");
