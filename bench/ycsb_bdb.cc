/*
 * ycsb_bdb.cc -- Berkeley DB 5.3 in the application study: a
 * transactional environment (DB_INIT_TXN | LOCK | LOG | MPOOL, DB_THREAD;
 * the log is fsync'ed at every commit), one DB_BTREE database (ordered:
 * scans with a cursor), 8-byte big-endian keys, one transaction per
 * update, retried on deadlock (the load: 1,000 records a transaction); reads outside transactions (read
 * committed, as DB->get with no txn).  Cache: twice the data, at least
 * 256 MiB.
 */
#include <db.h>

#include "ycsb.h"

namespace {

void check(int rc, const char *what)
{
	if (rc)
		ycsb_die("%s: %s", what, db_strerror(rc));
}

class bdb_store : public ycsb_store {
public:
	bdb_store(const ycsb_opts &o, const std::string &dir)
	{
		check(db_env_create(&env_, 0), "db_env_create");
		uint64_t cache = 2 * o.records * (o.value + 48);
		cache = cache < (256ull << 20) ? 256ull << 20 : cache;
		check(env_->set_cachesize(env_, (u_int32_t)(cache >> 30),
					  (u_int32_t)(cache & ((1u << 30) - 1)),
					  1),
		      "set_cachesize");
		check(env_->set_lk_detect(env_, DB_LOCK_DEFAULT), "lk_detect");
		check(env_->set_lk_max_locks(env_, 100000), "lk_max_locks");
		check(env_->set_lk_max_objects(env_, 100000), "lk_max_objects");
		check(env_->open(env_, dir.c_str(),
				 DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK |
					 DB_INIT_LOG | DB_INIT_MPOOL | DB_THREAD,
				 0600),
		      "DB_ENV->open");
		check(db_create(&db_, env_, 0), "db_create");
		check(db_->open(db_, nullptr, "ycsb.db", nullptr, DB_BTREE,
				DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0600),
		      "DB->open");
	}
	~bdb_store() override
	{
		db_->close(db_, 0);
		env_->close(env_, 0);
	}
	void load(uint64_t key, const char *v, size_t n) override
	{
		if (!load_txn_)
			check(env_->txn_begin(env_, nullptr, &load_txn_, 0),
			      "txn_begin");
		check(put_in(load_txn_, key, v, n), "DB->put");
		if (++loaded_ % 1000 == 0)
			load_done();
	}
	void load_done() override
	{
		if (load_txn_)
			check(load_txn_->commit(load_txn_, 0), "commit");
		load_txn_ = nullptr;
	}
	bool read(uint64_t key, std::string &out) override
	{
		return get_in(nullptr, key, out) == 0;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		retry([&](DB_TXN *t) { return put_in(t, key, v, n); });
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		retry([&](DB_TXN *t) {
			std::string old;
			int rc = get_in(t, key, old, DB_RMW);
			return rc && rc != DB_NOTFOUND ? rc : put_in(t, key, v, n);
		});
	}
	size_t scan(uint64_t key, size_t n) override
	{
		DBC *c;
		check(db_->cursor(db_, nullptr, &c, 0), "cursor");
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		DBT k = {}, v = {};
		k.data = kb;
		k.size = 8;
		k.ulen = 8;
		k.flags = DB_DBT_USERMEM;
		v.flags = DB_DBT_MALLOC;
		size_t got = 0;
		for (int rc = c->get(c, &k, &v, DB_SET_RANGE); rc == 0 && got < n;
		     rc = c->get(c, &k, &v, DB_NEXT), got++)
			free(v.data);
		c->close(c);
		return got;
	}

private:
	template <class F> void retry(F f)
	{
		for (;;) {
			DB_TXN *t;
			check(env_->txn_begin(env_, nullptr, &t, 0), "txn_begin");
			int rc = f(t);
			if (rc == DB_LOCK_DEADLOCK) {
				check(t->abort(t), "abort");
				continue;
			}
			check(rc, "DB->put");
			check(t->commit(t, 0), "commit");
			return;
		}
	}
	int put_in(DB_TXN *t, uint64_t key, const char *v, size_t n)
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		DBT k = {}, d = {};
		k.data = kb;
		k.size = 8;
		d.data = (void *)v;
		d.size = (u_int32_t)n;
		return db_->put(db_, t, &k, &d, 0);
	}
	int get_in(DB_TXN *t, uint64_t key, std::string &out, u_int32_t fl = 0)
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		DBT k = {}, d = {};
		k.data = kb;
		k.size = 8;
		d.flags = DB_DBT_MALLOC;
		int rc = db_->get(db_, t, &k, &d, fl);
		if (rc == 0) {
			out.assign((const char *)d.data, d.size);
			free(d.data);
		}
		return rc;
	}
	DB_ENV *env_ = nullptr;
	DB *db_ = nullptr;
	DB_TXN *load_txn_ = nullptr;
	uint64_t loaded_ = 0;
};

} // namespace

const char *ycsb_name(const ycsb_opts &) { return "bdb"; }

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	return new bdb_store(o, dir);
}
