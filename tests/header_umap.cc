// mnemosyne_unordered_map.hpp stands alone (compile-only check, with
// -pedantic), its members instantiated for plain and string keys and
// values, and mnemo::allocator with std::allocator_traits.
#include <mnemosyne_unordered_map.hpp>

#include <memory>
#include <vector>

template class mnemo::unordered_map<unsigned long, int>;
template class mnemo::unordered_map<unsigned long, mnemo::string>;
template class mnemo::unordered_map<mnemo::string, unsigned long>;
template class mnemo::unordered_map<mnemo::string, mnemo::string>;

using traits = std::allocator_traits<mnemo::allocator<long>>;
static_assert(std::is_same_v<traits::value_type, long>);
static_assert(std::is_same_v<traits::rebind_alloc<char>,
			     mnemo::allocator<char>>);

int main()
{
	using umap = mnemo::unordered_map<unsigned long, int>;
	return mnemo::zero_is_empty<umap>::value ? 0 : 1;
}

/* Every templated member, instantiated (compiled, not run). */
template <class M, class Q, class A> void use(M &m, const Q &k, const A &v)
{
	const M &c = m;
	m.try_emplace(k, v);
	m.emplace(k, v);
	m.insert(std::pair<Q, A>(k, v));
	m.insert_or_assign(k, v);
	m[k] = v;
	(void)m.at(k);
	(void)c.at(k);
	(void)c.count(k);
	(void)c.contains(k);
	for (auto it = m.begin(); it != m.end(); ++it)
		(void)it->first;
	for (auto kv : c)
		(void)kv.second;
	m.erase(m.find(k));
	(void)c.find(k);
	m.erase(k);
	m.rehash(100);
	m.reserve(10);
	m.clear();
	(void)m.load_factor();
	(void)m.bucket_count();
	(void)m.mnemo_check();
}

void use_all(mnemo::unordered_map<unsigned long, int> &a,
	     mnemo::unordered_map<unsigned long, mnemo::string> &b,
	     mnemo::unordered_map<mnemo::string, unsigned long> &c,
	     mnemo::unordered_map<mnemo::string, mnemo::string> &d)
{
	use(a, 1ul, 2);
	++a[3ul];
	use(b, 1ul, std::string_view("x"));
	use(c, std::string_view("k"), 1ul);
	++c["word"];
	use(d, std::string_view("k"), std::string_view("v"));
	std::vector<int, mnemo::allocator<int>> v{mnemo::allocator<int>(nullptr)};
	v.push_back(1);
}
