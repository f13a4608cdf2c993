/*
 * ycsb_tc.cc -- Tokyo Cabinet in the application study: the B+ tree
 * database TCBDB (--kind bdb; ordered: scans with a cursor) or the hash
 * database TCHDB (--kind hdb).  8-byte big-endian keys.  Each update is
 * durable when it returns: the database is opened with BDBOTSYNC /
 * HDBOTSYNC, under which "every transaction synchronizes updated contents
 * with the device" (tcbdb.h, tchdb.h), and each update is one transaction
 * (tranbegin, put, trancommit).  The library's own mutexes (setmutex)
 * make it safe for the threads.  The two APIs are parallel: one store
 * over a traits struct per database.
 */
#include <tcbdb.h>
#include <tchdb.h>

#include <cstring>

#include "ycsb.h"

namespace {

bool is_bdb(const ycsb_opts &o)
{
	if (strcmp(o.kind, "bdb") && strcmp(o.kind, "hdb"))
		ycsb_die("--kind bdb or --kind hdb");
	return strcmp(o.kind, "bdb") == 0;
}

struct bdb_api {
	using db = TCBDB;
	static constexpr const char *kFile = "/ycsb.tcb";
	static db *make(const ycsb_opts &o)
	{
		db *d = tcbdbnew();
		tcbdbsetmutex(d);
		/* leaves of ~128 records, cache of the whole tree */
		tcbdbtune(d, 128, 256, (int64_t)o.records / 64, -1, -1, 0);
		tcbdbsetcache(d, (int32_t)(o.records / 64 + 1024),
			      (int32_t)(o.records / 8192 + 512));
		return d;
	}
	static bool open(db *d, const char *p)
	{
		return tcbdbopen(d, p, BDBOWRITER | BDBOCREAT | BDBOTSYNC);
	}
	static void close(db *d) { tcbdbclose(d), tcbdbdel(d); }
	static bool put(db *d, const void *k, const void *v, int n)
	{
		return tcbdbput(d, k, 8, v, n);
	}
	static void *get(db *d, const void *k, int *n)
	{
		return tcbdbget(d, k, 8, n);
	}
	static bool sync(db *d) { return tcbdbsync(d); }
	static bool begin(db *d) { return tcbdbtranbegin(d); }
	static bool commit(db *d) { return tcbdbtrancommit(d); }
	static const char *err(db *d) { return tcbdberrmsg(tcbdbecode(d)); }
};

struct hdb_api {
	using db = TCHDB;
	static constexpr const char *kFile = "/ycsb.tch";
	static db *make(const ycsb_opts &o)
	{
		db *d = tchdbnew();
		tchdbsetmutex(d);
		tchdbtune(d, (int64_t)o.records * 2, -1, -1, HDBTLARGE);
		return d;
	}
	static bool open(db *d, const char *p)
	{
		return tchdbopen(d, p, HDBOWRITER | HDBOCREAT | HDBOTSYNC);
	}
	static void close(db *d) { tchdbclose(d), tchdbdel(d); }
	static bool put(db *d, const void *k, const void *v, int n)
	{
		return tchdbput(d, k, 8, v, n);
	}
	static void *get(db *d, const void *k, int *n)
	{
		return tchdbget(d, k, 8, n);
	}
	static bool sync(db *d) { return tchdbsync(d); }
	static bool begin(db *d) { return tchdbtranbegin(d); }
	static bool commit(db *d) { return tchdbtrancommit(d); }
	static const char *err(db *d) { return tchdberrmsg(tchdbecode(d)); }
};

template <class A> class tc_store : public ycsb_store {
public:
	tc_store(const ycsb_opts &o, const std::string &dir) : db_(A::make(o))
	{
		if (!A::open(db_, (dir + A::kFile).c_str()))
			die("open");
	}
	~tc_store() override { A::close(db_); }
	void load(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!A::put(db_, kb, v, (int)n))
			die("put");
	}
	void load_done() override
	{
		if (!A::sync(db_))
			die("sync");
	}
	bool read(uint64_t key, std::string &out) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		int sz;
		void *v = A::get(db_, kb, &sz);
		if (!v)
			return false;
		out.assign((const char *)v, (size_t)sz);
		free(v);
		return true;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!A::begin(db_) || !A::put(db_, kb, v, (int)n) ||
		    !A::commit(db_))
			die("put transaction");
	}
	size_t scan(uint64_t key, size_t n) override;

private:
	[[noreturn]] void die(const char *what)
	{
		ycsb_die("tokyocabinet %s: %s", what, A::err(db_));
	}
	typename A::db *db_;
};

template <> size_t tc_store<bdb_api>::scan(uint64_t key, size_t n)
{
	unsigned char kb[8];
	ycsb_key_bytes(key, kb);
	BDBCUR *c = tcbdbcurnew(db_);
	size_t got = 0;
	std::string copy;
	for (bool ok = tcbdbcurjump(c, kb, 8); ok && got < n;
	     ok = tcbdbcurnext(c), got++) {
		int sz;
		const void *v = tcbdbcurval3(c, &sz);
		if (!v)
			break;
		copy.assign((const char *)v, (size_t)sz);
	}
	tcbdbcurdel(c);
	return got;
}

template <> size_t tc_store<hdb_api>::scan(uint64_t, size_t)
{
	return SIZE_MAX; /* a hash database: no order */
}

} // namespace

const char *ycsb_name(const ycsb_opts &o)
{
	return is_bdb(o) ? "tc_bdb" : "tc_hdb";
}

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	if (is_bdb(o))
		return new tc_store<bdb_api>(o, dir);
	return new tc_store<hdb_api>(o, dir);
}
