/*
 * ycsb_kc.cc -- Kyoto Cabinet in the application study: the file tree
 * database TreeDB (--kind tree; ordered: scans with a cursor) or the file
 * hash database HashDB (--kind hash).  8-byte big-endian keys.  Each update
 * is durable when it returns: the database is opened with OAUTOSYNC
 * ("auto synchronization": every update is synchronized with the device,
 * kcdb.h) and each update is one transaction (begin_transaction(true),
 * set, end_transaction).  The load runs without OAUTOSYNC and ends with
 * one synchronize.  Kyoto Cabinet's databases are thread-safe.
 */
#include <kcdbext.h>
#include <kchashdb.h>

#include <cstring>

#include "ycsb.h"

namespace {

bool is_tree(const ycsb_opts &o)
{
	if (strcmp(o.kind, "tree") && strcmp(o.kind, "hash"))
		ycsb_die("--kind tree or --kind hash");
	return strcmp(o.kind, "tree") == 0;
}

template <class DB> class kc_store : public ycsb_store {
public:
	/* Opened without OAUTOSYNC for the load (one sync at its end), and
	 * reopened with it for the workloads. */
	kc_store(const ycsb_opts &o, const std::string &path) : path_(path)
	{
		tune(o);
		if (!db_.open(path, DB::OWRITER | DB::OCREATE))
			die("open");
	}
	~kc_store() override { db_.close(); }
	void load(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!db_.set((const char *)kb, 8, v, n))
			die("set");
	}
	void load_done() override
	{
		if (!db_.synchronize(true) || !db_.close() ||
		    !db_.open(path_, DB::OWRITER | DB::OAUTOSYNC))
			die("reopen with OAUTOSYNC");
	}
	bool read(uint64_t key, std::string &out) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		return db_.get(std::string((const char *)kb, 8), &out);
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		if (!db_.begin_transaction(true) ||
		    !db_.set((const char *)kb, 8, v, n) ||
		    !db_.end_transaction(true))
			die("update transaction");
	}
	size_t scan(uint64_t key, size_t n) override;

private:
	void tune(const ycsb_opts &o);
	[[noreturn]] void die(const char *what)
	{
		ycsb_die("kyotocabinet %s: %s", what, db_.error().message());
	}
	std::string path_;
	DB db_;
};

template <>
void kc_store<kyotocabinet::TreeDB>::tune(const ycsb_opts &o)
{
	db_.tune_buckets((int64_t)o.records / 32);
	db_.tune_page_cache((int64_t)(2 * o.records * (o.value + 32)));
}

template <>
void kc_store<kyotocabinet::HashDB>::tune(const ycsb_opts &o)
{
	db_.tune_buckets((int64_t)o.records * 2);
	db_.tune_map((int64_t)(2 * o.records * (o.value + 32)));
}

template <>
size_t kc_store<kyotocabinet::TreeDB>::scan(uint64_t key, size_t n)
{
	unsigned char kb[8];
	ycsb_key_bytes(key, kb);
	kyotocabinet::DB::Cursor *c = db_.cursor();
	size_t got = 0;
	std::string v;
	for (bool ok = c->jump((const char *)kb, 8); ok && got < n;
	     ok = c->step(), got++)
		if (!c->get_value(&v))
			break;
	delete c;
	return got;
}

template <>
size_t kc_store<kyotocabinet::HashDB>::scan(uint64_t, size_t)
{
	return SIZE_MAX;
}

} // namespace

const char *ycsb_name(const ycsb_opts &o)
{
	return is_tree(o) ? "kc_tree" : "kc_hash";
}

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	if (is_tree(o))
		return new kc_store<kyotocabinet::TreeDB>(o, dir + "/ycsb.kct");
	return new kc_store<kyotocabinet::HashDB>(o, dir + "/ycsb.kch");
}
