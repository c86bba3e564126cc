// SPDX-License-Identifier: GPL-2.0
/*
 * p2pmem_consumer: a test module that uses P2PDMA memory the way in-kernel
 * users do, through /sys/kernel/debug/p2pmem_consumer/:
 *
 * datapath  write "<client-bdf> <block-device> <byte-offset>": the nvmet data
 *           path: pci_p2pmem_find_many() for the client, pci_p2pmem_alloc_sgl(),
 *           a bio write from the SGL to the block device and a bio read back
 *           into it, data checked, pci_p2pmem_free_sgl()
 * distance  write "<provider-bdf> <client-bdf>": pci_p2pdma_distance()
 * hold      write "<provider-bdf> <bytes>": pci_alloc_p2pmem() kept long-term,
 *           with a p2pmem revoke registration that frees it on unbind (after
 *           revoke_delay_ms, a module parameter, to test the wait)
 * held      read: bytes held now
 * result    read: what the last datapath or distance found
 * leak      write 1: leaks one kmalloc(64) on purpose (the runner's kmemleak self-test)
 *
 * Writes fail with the errno of the step that failed.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/scatterlist.h>
#include <linux/workqueue.h>

#include <p2pmem_revoke.h>

#define DATAPATH_LEN (64 * 1024)

static unsigned int revoke_delay_ms;
module_param(revoke_delay_ms, uint, 0644);
MODULE_PARM_DESC(revoke_delay_ms, "How long the revoke callback takes to let go");

static struct dentry *dir;
static DEFINE_MUTEX(lock);	/* protects result and the hold */
static char result[256];

static struct {
	struct p2pmem_revoke r;
	bool registered;
	struct pci_dev *p2p;
	void *addr;
	size_t size;
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

static int datapath(const char *client_name, const char *path, u64 offset)
{
	struct pci_dev *client, *p2p;
	struct scatterlist *sgl;
	struct device *clients[1];
	struct file *bdev_file;
	unsigned int nents;
	bool ok = true;
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
		 "nvmet path: provider %s nents %u bytes %u io %d data %s\n",
		 pci_name(p2p), nents, DATAPATH_LEN, ret, ok ? "ok" : "WRONG");
	if (!ret && !ok)
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
	int d = -ENODEV;

	provider = pci_by_name(provider_name);
	client = pci_by_name(client_name);
	if (provider && client) {
		d = pci_p2pdma_distance(provider, &client->dev, false);
		snprintf(result, sizeof(result), "p2p %s -> %s: %d\n", provider_name,
			 client_name, d);
	}
	pci_dev_put(client);
	pci_dev_put(provider);
	return d < 0 ? -EREMOTEIO : 0;
}

/* Lets go of the held memory; called with @lock held, or from the delayed work. */
static void hold_free(void)
{
	if (hold.addr)
		pci_free_p2pmem(hold.p2p, hold.addr, hold.size);
	hold.addr = NULL;
	hold.size = 0;
	pci_dev_put(hold.p2p);
	hold.p2p = NULL;
}

static void hold_work(struct work_struct *work)
{
	mutex_lock(&lock);
	hold_free();
	mutex_unlock(&lock);
	p2pmem_revoke_release(&hold.r);
}

static void hold_revoke(struct p2pmem_revoke *r)
{
	/* Unbind of the provider: let go now, or after revoke_delay_ms. */
	schedule_delayed_work(&hold.work, msecs_to_jiffies(revoke_delay_ms));
}

static int hold_start(const char *provider_name, size_t size)
{
	struct pci_dev *p2p;
	int ret;

	if (hold.registered) {
		flush_delayed_work(&hold.work);
		p2pmem_unregister_revoke(&hold.r);
		hold.registered = false;
	}
	hold_free();
	p2p = pci_by_name(provider_name);
	if (!p2p)
		return -ENODEV;
	hold.r.name = "p2pmem_consumer";
	hold.r.revoke = hold_revoke;
	ret = p2pmem_register_revoke(p2p, &hold.r);
	if (ret) {
		pci_dev_put(p2p);
		return ret;
	}
	hold.registered = true;
	hold.addr = pci_alloc_p2pmem(p2p, size);
	if (!hold.addr) {
		pci_dev_put(p2p);
		return -ENOMEM;
	}
	hold.p2p = p2p;
	hold.size = size;
	return 0;
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
	mutex_lock(&lock);
	if (!strcmp(name, "datapath") && sscanf(buf, "%63s %63s %llu", a, b, &n) == 3)
		ret = datapath(a, b, n);
	else if (!strcmp(name, "distance") && sscanf(buf, "%63s %63s", a, b) == 2)
		ret = distance(a, b);
	else if (!strcmp(name, "hold") && sscanf(buf, "%63s %llu", a, &n) == 2)
		ret = hold_start(a, n);
	mutex_unlock(&lock);
	return ret ? ret : count;
}

static int show(struct seq_file *m, void *v)
{
	const char *name = m->file->f_path.dentry->d_name.name;

	mutex_lock(&lock);
	if (!strcmp(name, "held"))
		seq_printf(m, "%zu\n", hold.size);
	else
		seq_puts(m, result);
	mutex_unlock(&lock);
	return 0;
}

/*
 * The runner's kmemleak self-test: an object that nothing points to, named by
 * its contents (kmemleak's hex dump) and by this function (its backtrace).
 */
static int leak_set(void *data, u64 val)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	strscpy(p, "p2pmem_consumer leak on purpose", 64);
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
	debugfs_create_file("result", 0400, dir, NULL, &fops);
	debugfs_create_file_unsafe("leak", 0200, dir, NULL, &leak_fops);
	return 0;
}

static void __exit consumer_exit(void)
{
	debugfs_remove_recursive(dir);
	flush_delayed_work(&hold.work);
	if (hold.registered)
		p2pmem_unregister_revoke(&hold.r);
	hold_free();
}

module_init(consumer_init);
module_exit(consumer_exit);
MODULE_DESCRIPTION("p2pmem selftest: an in-kernel P2PDMA consumer");
MODULE_LICENSE("GPL");
