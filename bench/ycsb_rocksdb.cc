/*
 * ycsb_rocksdb.cc -- RocksDB in the application study: the default
 * column family, 8-byte big-endian keys (the bytewise comparator: scans in
 * key order), each update a Put with WriteOptions::sync = true (the WAL is
 * synced before it returns); the load with the WAL off, then a flush.
 * RocksDB is thread-safe; a read-modify-write is a read, then a synced
 * Put (YCSB's own RocksDB binding does the same).
 */
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <memory>

#include "ycsb.h"

namespace {

rocksdb::Slice slice(const unsigned char *kb)
{
	return rocksdb::Slice((const char *)kb, 8);
}

class rocks_store : public ycsb_store {
public:
	rocks_store(const ycsb_opts &o, const std::string &dir)
	{
		rocksdb::Options opt;
		opt.create_if_missing = true;
		opt.IncreaseParallelism(2);
		rocksdb::BlockBasedTableOptions t;
		t.block_cache = rocksdb::NewLRUCache(2 * o.records * (o.value + 32));
		opt.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
		rocksdb::DB *db;
		rocksdb::Status s = rocksdb::DB::Open(opt, dir + "/db", &db);
		if (!s.ok())
			ycsb_die("rocksdb open: %s", s.ToString().c_str());
		db_.reset(db);
		sync_.sync = true;
		load_.disableWAL = true;
	}
	void load(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		ok(db_->Put(load_, slice(kb), rocksdb::Slice(v, n)), "Put");
	}
	void load_done() override
	{
		ok(db_->Flush(rocksdb::FlushOptions()), "Flush");
	}
	bool read(uint64_t key, std::string &out) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), slice(kb),
					     &out);
		if (s.IsNotFound())
			return false;
		ok(s, "Get");
		return true;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		ok(db_->Put(sync_, slice(kb), rocksdb::Slice(v, n)), "Put");
	}
	size_t scan(uint64_t key, size_t n) override
	{
		unsigned char kb[8];
		ycsb_key_bytes(key, kb);
		std::unique_ptr<rocksdb::Iterator> it(
			db_->NewIterator(rocksdb::ReadOptions()));
		size_t got = 0;
		std::string copy;
		for (it->Seek(slice(kb)); it->Valid() && got < n;
		     it->Next(), got++)
			copy.assign(it->value().data(), it->value().size());
		return got;
	}

private:
	static void ok(const rocksdb::Status &s, const char *what)
	{
		if (!s.ok())
			ycsb_die("rocksdb %s: %s", what, s.ToString().c_str());
	}
	std::unique_ptr<rocksdb::DB> db_;
	rocksdb::WriteOptions sync_, load_;
};

} // namespace

const char *ycsb_name(const ycsb_opts &) { return "rocksdb"; }

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	return new rocks_store(o, dir);
}
