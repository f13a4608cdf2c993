/*
 * ycsb_sqlite.cc -- SQLite in the application study: one table
 * kv(k INTEGER PRIMARY KEY, v BLOB) in WAL mode with synchronous=FULL (a
 * commit is durable when it returns), one connection per thread, each
 * update its own transaction (autocommit), a read-modify-write in
 * BEGIN IMMEDIATE ... COMMIT.  Keys are stored as key ^ 2^63 so SQLite's
 * signed order is the keys' unsigned order.
 */
#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <vector>

#include "ycsb.h"

namespace {

int64_t k_of(uint64_t key) { return (int64_t)(key ^ (1ull << 63)); }

struct conn {
	sqlite3 *db = nullptr;
	sqlite3_stmt *get = nullptr, *put = nullptr, *scan = nullptr,
		     *begin = nullptr, *commit = nullptr;
};

class sqlite_store : public ycsb_store {
public:
	explicit sqlite_store(const std::string &dir) : path_(dir + "/kv.db")
	{
		conn c;
		if (sqlite3_open(path_.c_str(), &c.db) != SQLITE_OK)
			ycsb_die("sqlite3_open %s", path_.c_str());
		exec(c, "PRAGMA journal_mode=WAL");
		exec(c, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v BLOB)");
		sqlite3_close(c.db);
	}
	~sqlite_store() override
	{
		for (auto &c : conns_) {
			for (sqlite3_stmt *s :
			     {c->get, c->put, c->scan, c->begin, c->commit})
				sqlite3_finalize(s);
			sqlite3_close(c->db);
		}
	}
	/* the load: one transaction */
	void load(uint64_t key, const char *v, size_t n) override
	{
		if (!loading_)
			exec(mine(), "BEGIN");
		loading_ = true;
		write(mine(), key, v, n);
	}
	void load_done() override { exec(mine(), "COMMIT"); }
	bool read(uint64_t key, std::string &out) override
	{
		conn &c = mine();
		sqlite3_bind_int64(c.get, 1, k_of(key));
		bool found = step(c, c.get) == SQLITE_ROW;
		if (found)
			out.assign((const char *)sqlite3_column_blob(c.get, 0),
				   (size_t)sqlite3_column_bytes(c.get, 0));
		sqlite3_reset(c.get);
		return found;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		write(mine(), key, v, n);
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		conn &c = mine();
		step_done(c, c.begin);
		std::string old;
		read(key, old);
		write(c, key, v, n);
		step_done(c, c.commit);
	}
	size_t scan(uint64_t key, size_t n) override
	{
		conn &c = mine();
		sqlite3_bind_int64(c.scan, 1, k_of(key));
		sqlite3_bind_int64(c.scan, 2, (sqlite3_int64)n);
		size_t got = 0;
		std::string copy;
		while (step(c, c.scan) == SQLITE_ROW) {
			copy.assign((const char *)sqlite3_column_blob(c.scan, 0),
				    (size_t)sqlite3_column_bytes(c.scan, 0));
			got++;
		}
		sqlite3_reset(c.scan);
		return got;
	}

private:
	/* the calling thread's connection, opened at its first call */
	conn &mine()
	{
		thread_local std::vector<std::pair<sqlite_store *, conn *>> tl;
		for (auto &p : tl)
			if (p.first == this)
				return *p.second;
		auto c = std::make_unique<conn>();
		open(*c);
		std::lock_guard<std::mutex> g(mu_);
		conns_.push_back(std::move(c));
		tl.emplace_back(this, conns_.back().get());
		return *conns_.back();
	}
	void open(conn &c)
	{
		if (sqlite3_open(path_.c_str(), &c.db) != SQLITE_OK)
			ycsb_die("sqlite3_open %s", path_.c_str());
		sqlite3_busy_timeout(c.db, 60000);
		exec(c, "PRAGMA journal_mode=WAL");
		exec(c, "PRAGMA synchronous=FULL");
		prep(c, "SELECT v FROM kv WHERE k = ?", &c.get);
		prep(c, "INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", &c.put);
		prep(c, "SELECT v FROM kv WHERE k >= ? ORDER BY k LIMIT ?",
		     &c.scan);
		prep(c, "BEGIN IMMEDIATE", &c.begin);
		prep(c, "COMMIT", &c.commit);
	}
	void prep(conn &c, const char *sql, sqlite3_stmt **s)
	{
		if (sqlite3_prepare_v2(c.db, sql, -1, s, nullptr) != SQLITE_OK)
			ycsb_die("%s: %s", sql, sqlite3_errmsg(c.db));
	}
	void exec(conn &c, const char *sql)
	{
		char *err = nullptr;
		if (sqlite3_exec(c.db, sql, nullptr, nullptr, &err) != SQLITE_OK)
			ycsb_die("%s: %s", sql, err ? err : "?");
	}
	int step(conn &c, sqlite3_stmt *s)
	{
		int rc = sqlite3_step(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			ycsb_die("sqlite3_step: %s", sqlite3_errmsg(c.db));
		return rc;
	}
	void step_done(conn &c, sqlite3_stmt *s)
	{
		step(c, s);
		sqlite3_reset(s);
	}
	void write(conn &c, uint64_t key, const char *v, size_t n)
	{
		sqlite3_bind_int64(c.put, 1, k_of(key));
		sqlite3_bind_blob(c.put, 2, v, (int)n, SQLITE_STATIC);
		step_done(c, c.put);
	}
	std::string path_;
	std::mutex mu_;
	std::vector<std::unique_ptr<conn>> conns_;
	bool loading_ = false;
};

} // namespace

const char *ycsb_name(const ycsb_opts &) { return "sqlite"; }

ycsb_store *ycsb_open(const ycsb_opts &, const std::string &dir)
{
	return new sqlite_store(dir);
}
