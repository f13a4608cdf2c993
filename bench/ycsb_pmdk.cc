/*
 * ycsb_pmdk.cc -- PMDK libpmemobj in the application study, with a
 * hand-written table (libpmemobj++ and its containers are not in Debian):
 * a chained hash table whose bucket array and entries are pmemobj
 * allocations, { key; next; len; value[] } per entry.  An update is one
 * transaction (pmemobj_tx_add_range_direct on the value, memcpy); an
 * insert allocates the entry in the transaction and links it at the head
 * of its chain.  PMDK's transactions do not isolate threads: a DRAM
 * mutex per group of buckets covers every access, reads included.  Run
 * with PMEM_IS_PMEM_FORCE=1 on /dev/shm (bench/run-ycsb does).  No scans.
 */
#include <libpmemobj.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "ycsb.h"

namespace {

struct entry {
	uint64_t key;
	uint64_t next; /* offset in the pool, 0: end */
	uint64_t len;
	char value[];
};

struct root {
	uint64_t nbuckets;
	uint64_t buckets; /* offset of uint64_t[nbuckets] */
};

constexpr unsigned kLocks = 4096;

uint64_t hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	return k ^ (k >> 33);
}

class pmdk_store : public ycsb_store {
public:
	pmdk_store(const ycsb_opts &o, const std::string &dir)
		: locks_(kLocks)
	{
		size_t size = (o.records + o.ops) * (o.value + 96) * 3 / 2 +
			      o.records * 16 + ((size_t)256 << 20);
		std::string p = dir + "/ycsb.pmdk";
		pop_ = pmemobj_create(p.c_str(), "ycsb", size, 0600);
		if (!pop_)
			ycsb_die("pmemobj_create: %s", pmemobj_errormsg());
		base_ = (char *)pop_;
		root_ = (root *)pmemobj_direct(pmemobj_root(pop_, sizeof(root)));
		uint64_t nb = 1;
		while (nb < o.records)
			nb <<= 1;
		tx_begin();
		ok(pmemobj_tx_add_range_direct(root_, sizeof(*root_)));
		PMEMoid b = pmemobj_tx_xalloc(nb * 8, 1,
					      POBJ_XALLOC_ZERO |
						      POBJ_XALLOC_NO_ABORT);
		if (OID_IS_NULL(b))
			ycsb_die("bucket array: %s", pmemobj_errormsg());
		root_->nbuckets = nb;
		root_->buckets = b.off;
		tx_end();
		buckets_ = (uint64_t *)(base_ + root_->buckets);
	}
	~pmdk_store() override { pmemobj_close(pop_); }

	void load(uint64_t key, const char *v, size_t n) override
	{
		put(key, v, n);
	}
	bool read(uint64_t key, std::string &out) override
	{
		std::lock_guard<std::mutex> g(lock_of(key));
		entry *e = find(key);
		if (e)
			out.assign(e->value, e->len);
		return e != nullptr;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		std::lock_guard<std::mutex> g(lock_of(key));
		put_locked(key, v, n);
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		std::lock_guard<std::mutex> g(lock_of(key));
		entry *e = find(key);
		std::string old(e ? e->value : "", e ? e->len : 0);
		put_locked(key, v, n);
	}

private:
	std::mutex &lock_of(uint64_t key)
	{
		return locks_[(hash(key) & (root_->nbuckets - 1)) % kLocks];
	}
	uint64_t *bucket(uint64_t key)
	{
		return &buckets_[hash(key) & (root_->nbuckets - 1)];
	}
	entry *find(uint64_t key)
	{
		for (uint64_t off = *bucket(key); off;) {
			entry *e = (entry *)(base_ + off);
			if (e->key == key)
				return e;
			off = e->next;
		}
		return nullptr;
	}
	/* transactions without a jmp_buf: failures return, and die here */
	void tx_begin()
	{
		if (pmemobj_tx_begin(pop_, nullptr, TX_PARAM_NONE))
			ycsb_die("pmemobj_tx_begin: %s", pmemobj_errormsg());
	}
	void tx_end()
	{
		pmemobj_tx_commit();
		if (pmemobj_tx_end())
			ycsb_die("pmemobj_tx_end: %s", pmemobj_errormsg());
	}
	static void ok(int rc)
	{
		if (rc)
			ycsb_die("pmemobj: %s", pmemobj_errormsg());
	}
	void put_locked(uint64_t key, const char *v, size_t n)
	{
		entry *e = find(key);
		tx_begin();
		if (e && e->len == n) {
			ok(pmemobj_tx_add_range_direct(e->value, n));
			memcpy(e->value, v, n);
		} else {
			insert(key, v, n);
		}
		tx_end();
	}
	/* a new entry at the head of the chain (an old one of another size
	 * stays behind it, shadowed: values keep their size in this study) */
	void insert(uint64_t key, const char *v, size_t n)
	{
		PMEMoid o = pmemobj_tx_xalloc(sizeof(entry) + n, 1,
					      POBJ_XALLOC_NO_FLUSH |
						      POBJ_XALLOC_NO_ABORT);
		if (OID_IS_NULL(o))
			ycsb_die("pmemobj_tx_xalloc: %s", pmemobj_errormsg());
		entry *e = (entry *)pmemobj_direct(o);
		uint64_t *b = bucket(key);
		e->key = key;
		e->next = *b;
		e->len = n;
		memcpy(e->value, v, n);
		ok(pmemobj_tx_add_range_direct(b, 8));
		*b = o.off;
	}
	PMEMobjpool *pop_;
	char *base_;
	root *root_;
	uint64_t *buckets_;
	std::vector<std::mutex> locks_;
};

} // namespace

const char *ycsb_name(const ycsb_opts &) { return "pmdk"; }

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	return new pmdk_store(o, dir);
}
