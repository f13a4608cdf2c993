/*
 * ycsb_lmdb.cc -- LMDB in the application study: one database, 8-byte
 * big-endian keys (byte order: scans in key order), a write transaction
 * per update, durable at commit (LMDB's default sync); reads in read-only
 * transactions; the load in batches of 10,000 records.
 */
#include <lmdb.h>

#include "ycsb.h"

namespace {

void check(int rc, const char *what)
{
	if (rc)
		ycsb_die("%s: %s", what, mdb_strerror(rc));
}

class lmdb_store : public ycsb_store {
public:
	lmdb_store(const ycsb_opts &o, const std::string &dir)
	{
		check(mdb_env_create(&env_), "mdb_env_create");
		size_t map = (o.records + o.ops) * (o.value + 64) * 3 +
			     ((size_t)256 << 20);
		check(mdb_env_set_mapsize(env_, map), "mdb_env_set_mapsize");
		check(mdb_env_set_maxreaders(env_, 64), "maxreaders");
		check(mdb_env_open(env_, dir.c_str(), 0, 0600), "mdb_env_open");
		MDB_txn *t;
		check(mdb_txn_begin(env_, nullptr, 0, &t), "mdb_txn_begin");
		check(mdb_dbi_open(t, nullptr, 0, &dbi_), "mdb_dbi_open");
		check(mdb_txn_commit(t), "mdb_txn_commit");
	}
	~lmdb_store() override { mdb_env_close(env_); }

	void load(uint64_t key, const char *v, size_t n) override
	{
		if (!load_txn_)
			check(mdb_txn_begin(env_, nullptr, 0, &load_txn_),
			      "mdb_txn_begin");
		put_in(load_txn_, key, v, n);
		if (++loaded_ % 10000 == 0)
			load_done();
	}
	void load_done() override
	{
		if (load_txn_)
			check(mdb_txn_commit(load_txn_), "mdb_txn_commit");
		load_txn_ = nullptr;
	}
	bool read(uint64_t key, std::string &out) override
	{
		MDB_txn *t;
		check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t), "begin");
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		MDB_val k = {8, kb}, v;
		int rc = mdb_get(t, dbi_, &k, &v);
		if (rc == 0)
			out.assign((const char *)v.mv_data, v.mv_size);
		mdb_txn_abort(t);
		return rc == 0;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		MDB_txn *t;
		check(mdb_txn_begin(env_, nullptr, 0, &t), "mdb_txn_begin");
		put_in(t, key, v, n);
		check(mdb_txn_commit(t), "mdb_txn_commit");
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		MDB_txn *t;
		check(mdb_txn_begin(env_, nullptr, 0, &t), "mdb_txn_begin");
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		MDB_val k = {8, kb}, old;
		std::string copy;
		if (mdb_get(t, dbi_, &k, &old) == 0)
			copy.assign((const char *)old.mv_data, old.mv_size);
		put_in(t, key, v, n);
		check(mdb_txn_commit(t), "mdb_txn_commit");
	}
	size_t scan(uint64_t key, size_t n) override
	{
		MDB_txn *t;
		MDB_cursor *c;
		check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t), "begin");
		check(mdb_cursor_open(t, dbi_, &c), "mdb_cursor_open");
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		MDB_val k = {8, kb}, v;
		size_t got = 0;
		std::string copy;
		for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		     rc == 0 && got < n;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), got++)
			copy.assign((const char *)v.mv_data, v.mv_size);
		mdb_cursor_close(c);
		mdb_txn_abort(t);
		return got;
	}

private:
	void put_in(MDB_txn *t, uint64_t key, const char *v, size_t n)
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		MDB_val k = {8, kb}, d = {n, (void *)v};
		check(mdb_put(t, dbi_, &k, &d, 0), "mdb_put");
	}
	MDB_env *env_ = nullptr;
	MDB_dbi dbi_;
	MDB_txn *load_txn_ = nullptr;
	uint64_t loaded_ = 0;
};

} // namespace

const char *ycsb_name(const ycsb_opts &) { return "lmdb"; }

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	return new lmdb_store(o, dir);
}
