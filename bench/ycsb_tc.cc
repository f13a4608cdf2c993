/*
 * ycsb_tc.cc -- Tokyo Cabinet in the application study: the B+ tree
 * database TCBDB (--kind bdb; ordered: scans with a cursor) or the hash
 * database TCHDB (--kind hdb).  8-byte big-endian keys.  Each update is
 * durable when it returns: the database is opened with BDBOTSYNC /
 * HDBOTSYNC, under which "every transaction synchronizes updated contents
 * with the device" (tcbdb.h, tchdb.h), and each update is one transaction
 * (tranbegin, put, trancommit).  The library's own mutexes (setmutex)
 * make it safe for the threads.
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

class tcb_store : public ycsb_store {
public:
	tcb_store(const ycsb_opts &o, const std::string &dir) : db_(tcbdbnew())
	{
		tcbdbsetmutex(db_);
		/* leaves of ~128 records, cache of the whole tree */
		tcbdbtune(db_, 128, 256, (int64_t)o.records / 64, -1, -1, 0);
		tcbdbsetcache(db_, (int32_t)(o.records / 64 + 1024),
			      (int32_t)(o.records / 8192 + 512));
		std::string p = dir + "/ycsb.tcb";
		if (!tcbdbopen(db_, p.c_str(),
			       BDBOWRITER | BDBOCREAT | BDBOTSYNC))
			die("tcbdbopen");
	}
	~tcb_store() override
	{
		tcbdbclose(db_);
		tcbdbdel(db_);
	}
	void load(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!tcbdbput(db_, kb, 8, v, (int)n))
			die("tcbdbput");
	}
	void load_done() override
	{
		if (!tcbdbsync(db_))
			die("tcbdbsync");
	}
	bool read(uint64_t key, std::string &out) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		int sz;
		void *v = tcbdbget(db_, kb, 8, &sz);
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
		if (!tcbdbtranbegin(db_) || !tcbdbput(db_, kb, 8, v, (int)n) ||
		    !tcbdbtrancommit(db_))
			die("tcbdb put transaction");
	}
	size_t scan(uint64_t key, size_t n) override
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

private:
	[[noreturn]] void die(const char *what)
	{
		ycsb_die("%s: %s", what, tcbdberrmsg(tcbdbecode(db_)));
	}
	TCBDB *db_;
};

class tch_store : public ycsb_store {
public:
	tch_store(const ycsb_opts &o, const std::string &dir) : db_(tchdbnew())
	{
		tchdbsetmutex(db_);
		tchdbtune(db_, (int64_t)o.records * 2, -1, -1, HDBTLARGE);
		std::string p = dir + "/ycsb.tch";
		if (!tchdbopen(db_, p.c_str(),
			       HDBOWRITER | HDBOCREAT | HDBOTSYNC))
			die("tchdbopen");
	}
	~tch_store() override
	{
		tchdbclose(db_);
		tchdbdel(db_);
	}
	void load(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!tchdbput(db_, kb, 8, v, (int)n))
			die("tchdbput");
	}
	void load_done() override
	{
		if (!tchdbsync(db_))
			die("tchdbsync");
	}
	bool read(uint64_t key, std::string &out) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		int sz;
		void *v = tchdbget(db_, kb, 8, &sz);
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
		if (!tchdbtranbegin(db_) || !tchdbput(db_, kb, 8, v, (int)n) ||
		    !tchdbtrancommit(db_))
			die("tchdb put transaction");
	}

private:
	[[noreturn]] void die(const char *what)
	{
		ycsb_die("%s: %s", what, tchdberrmsg(tchdbecode(db_)));
	}
	TCHDB *db_;
};

} // namespace

const char *ycsb_name(const ycsb_opts &o)
{
	return is_bdb(o) ? "tc_bdb" : "tc_hdb";
}

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	if (is_bdb(o))
		return new tcb_store(o, dir);
	return new tch_store(o, dir);
}
