/*
 * ycsb_std.cc -- the no-durability ceiling of the application study:
 * std::map (--kind map) or std::unordered_map (--kind umap) in DRAM, one
 * std::shared_mutex over the whole container (readers share it).
 */
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "ycsb.h"

namespace {

template <class M> class std_store : public ycsb_store {
public:
	void load(uint64_t key, const char *v, size_t n) override
	{
		m_[key].assign(v, n);
	}
	bool read(uint64_t key, std::string &out) override
	{
		std::shared_lock<std::shared_mutex> g(mu_);
		auto it = m_.find(key);
		if (it == m_.end())
			return false;
		out = it->second;
		return true;
	}
	void put(uint64_t key, const char *v, size_t n) override
	{
		std::unique_lock<std::shared_mutex> g(mu_);
		m_[key].assign(v, n);
	}
	void rmw(uint64_t key, const char *v, size_t n) override
	{
		std::unique_lock<std::shared_mutex> g(mu_);
		std::string &s = m_[key];
		std::string old = s;
		s.assign(v, n);
	}
	size_t scan(uint64_t key, size_t n) override;

private:
	std::shared_mutex mu_;
	M m_;
};

template <>
size_t std_store<std::map<uint64_t, std::string>>::scan(uint64_t key,
							 size_t n)
{
	std::shared_lock<std::shared_mutex> g(mu_);
	size_t k = 0, bytes = 0;
	for (auto it = m_.lower_bound(key); it != m_.end() && k < n; ++it, ++k)
		bytes += it->second.size();
	return bytes ? k : 0;
}

template <>
size_t std_store<std::unordered_map<uint64_t, std::string>>::scan(uint64_t,
								   size_t)
{
	return SIZE_MAX;
}

bool is_map(const ycsb_opts &o)
{
	std::string k = o.kind;
	if (k != "map" && k != "umap")
		ycsb_die("--kind map or --kind umap");
	return k == "map";
}

} // namespace

const char *ycsb_name(const ycsb_opts &o)
{
	return is_map(o) ? "std_map" : "std_umap";
}

ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &)
{
	if (is_map(o))
		return new std_store<std::map<uint64_t, std::string>>;
	return new std_store<std::unordered_map<uint64_t, std::string>>;
}
