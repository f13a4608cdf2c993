/*
 * ycsb_mnemo.cc -- libmnemo in the application study: mnemo::map (--kind
 * map, the B+-tree) or mnemo::unordered_map (--kind umap) of uint64_t to
 * mnemo::string, the root of a pool under --dir (file backend; run with
 * MNEMO_DURABILITY=pmem, as bench/run-ycsb does).  Every update is the
 * container's own durable transaction (insert_or_assign); a read, a
 * read-modify-write and a scan are each one transaction, so they see one
 * consistent state whatever the other thread commits.  The load: 100
 * records a transaction.
 */
#include <cstring>
#include <string>

#include "mnemosyne_map.hpp"
#include "mnemosyne_string.hpp"
#include "mnemosyne_unordered_map.hpp"
#include "ycsb.h"

namespace {

bool is_map(const ycsb_opts &o)
{
	if (strcmp(o.kind, "map") && strcmp(o.kind, "umap"))
		ycsb_die("--kind map or --kind umap");
	return strcmp(o.kind, "map") == 0;
}

/* Room for the records (a value block and its share of a node each),
 * the workloads' inserts, and the logs. */
size_t pool_size(const ycsb_opts &o)
{
	return (o.records + o.ops) * (o.value + 160) * 2 + ((size_t)256 << 20);
}

template <class M> class mnemo_store : public ycsb_store {
public:
	mnemo_store(const ycsb_opts &o, const std::string &dir)
		: pool_(mnemo::pool::create((dir + "/ycsb.pool").c_str(),
					    pool_size(o))),
		  m_(pool_.root<M>("ycsb"))
	{
	}
	void load(uint64_t key, const char *v, size_t n) override
	{
		batch_.emplace_back(key, std::string(v, n));
		if (batch_.size() == 100)
			load_done();
	}
	void load_done() override
	{
		mnemo::transaction([&] {
			for (auto &kv : batch_)
				m_.insert_or_assign(kv.first,
						    std::string_view(kv.second));
		});
		batch_.clear();
	}
	bool read(uint64_t key, std::string &out) override
	{
		bool found = false;
		mnemo::transaction([&] {
			auto it = m_.find(key);
			found = it != m_.end();
			if (found)
				out = it->second.str();
		});
		return found;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		m_.insert_or_assign(key, std::string_view(v, n));
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		mnemo::transaction([&] {
			std::string old;
			auto it = m_.find(key);
			if (it != m_.end())
				old = it->second.str();
			m_.insert_or_assign(key, std::string_view(v, n));
		});
	}
	size_t scan(uint64_t key, size_t n) override;

private:
	mnemo::pool pool_;
	M &m_;
	std::vector<std::pair<uint64_t, std::string>> batch_;
};

using ord_map = mnemo::map<uint64_t, mnemo::string>;
using hash_map = mnemo::unordered_map<uint64_t, mnemo::string>;

template <> size_t mnemo_store<ord_map>::scan(uint64_t key, size_t n)
{
	size_t got = 0;
	mnemo::transaction([&] {
		got = 0;
		std::string copy;
		for (auto it = m_.lower_bound(key); it != m_.end() && got < n;
		     ++it, ++got)
			copy = it->second.str();
	});
	return got;
}

template <> size_t mnemo_store<hash_map>::scan(uint64_t, size_t)
{
	return SIZE_MAX;
}

} // namespace

const char *ycsb_name(const ycsb_opts &o)
{
	return is_map(o) ? "mnemo_map" : "mnemo_umap";
}

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir)
{
	if (is_map(o))
		return new mnemo_store<ord_map>(o, dir);
	return new mnemo_store<hash_map>(o, dir);
}
