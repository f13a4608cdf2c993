/*
 * ordered_index.cc -- a persistent ordered index: words mapped to counts
 * in a mnemo::map<mnemo::string, uint64_t>, kept across runs, with a
 * range scan.
 *
 *   usage: ordered_index POOL add WORD...     count each WORD (one
 *                                             transaction for all)
 *          ordered_index POOL del WORD...     forget each WORD
 *          ordered_index POOL scan FROM TO    words in [FROM, TO), in order
 *
 * A crash in the middle of "add" leaves every count as it was before the
 * run or after it: the words of one run are one transaction.  "scan"
 * reads inside a transaction, so a thread writing meanwhile could not
 * show it half a change.
 */
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <mnemosyne_map.hpp>

using index_map = mnemo::map<mnemo::string, uint64_t>;

namespace {

void add(index_map &idx, int n, char **words)
{
	mnemo::transaction([&] {
		for (int i = 0; i < n; i++) {
			auto it = idx.try_emplace(words[i], uint64_t{0}).first;
			it->second = it->second + 1;
		}
	});
}

void del(index_map &idx, int n, char **words)
{
	mnemo::transaction([&] {
		for (int i = 0; i < n; i++)
			idx.erase(words[i]);
	});
}

/* The range scan: lower_bound, then the leaf chain in key order. */
void scan(const index_map &idx, std::string_view from, std::string_view to)
{
	std::string out;
	mnemo::transaction([&] {
		out.clear(); /* the body may run again after a conflict */
		for (auto it = idx.lower_bound(from);
		     it != idx.end() && it->first < to; ++it)
			out += it->first.str() + " " +
			       std::to_string(it->second) + "\n";
	});
	std::fputs(out.c_str(), stdout);
}

int usage()
{
	std::fprintf(stderr, "usage: ordered_index POOL add|del WORD...\n"
			     "       ordered_index POOL scan FROM TO\n");
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	std::string_view cmd = argv[2];
	try {
		auto pool = mnemo::pool::open_or_create(argv[1], 16 << 20);
		auto &idx = pool.root<index_map>("index");
		if (cmd == "add")
			add(idx, argc - 3, argv + 3);
		else if (cmd == "del")
			del(idx, argc - 3, argv + 3);
		else if (cmd == "scan" && argc == 5)
			scan(idx, argv[3], argv[4]);
		else
			return usage();
		std::printf("%zu words\n", idx.size());
	} catch (const std::exception &e) {
		std::fprintf(stderr, "ordered_index: %s\n", e.what());
		return 1;
	}
	return 0;
}
