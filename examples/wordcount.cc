/*
 * wordcount.cc -- a persistent word counter: mnemo::unordered_map of
 * mnemo::string to uint64_t in a pool, kept across runs.
 *
 *   usage: wordcount POOL [WORD...]
 *
 * Counts each WORD (all of them in one transaction: a crash counts all
 * or none), then prints every word with its count so far, most frequent
 * first, and the total.  Run it again with more words: the counts go on.
 */
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mnemosyne_unordered_map.hpp>

using counts = mnemo::unordered_map<mnemo::string, uint64_t>;

static void count(counts &words, int n, char **argv)
{
	mnemo::transaction([&] {
		for (int i = 0; i < n; i++)
			++words[std::string_view(argv[i])];
	});
}

/* The words and their counts, most frequent first (ties by word). */
static std::vector<std::pair<std::string, uint64_t>> sorted(const counts &w)
{
	std::vector<std::pair<std::string, uint64_t>> out;
	mnemo::transaction([&] { /* one consistent snapshot */
		out.clear();
		for (auto [word, n] : w)
			out.emplace_back(word.str(), n);
	});
	std::sort(out.begin(), out.end(), [](auto &a, auto &b) {
		return a.second != b.second ? a.second > b.second
					    : a.first < b.first;
	});
	return out;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		std::fprintf(stderr, "usage: wordcount POOL [WORD...]\n");
		return 2;
	}
	try {
		mnemo::pool pool = mnemo::pool::open_or_create(argv[1], 16 << 20);
		counts &words = pool.root<counts>("wordcount");
		count(words, argc - 2, argv + 2);
		uint64_t total = 0;
		for (auto &[word, n] : sorted(words)) {
			std::printf("%llu %s\n", (unsigned long long)n,
				    word.c_str());
			total += n;
		}
		std::printf("total %llu in %zu words\n",
			    (unsigned long long)total, words.size());
		pool.close();
	} catch (const mnemo::error &e) {
		std::fprintf(stderr, "wordcount: %s\n", e.what());
		return 1;
	}
	return 0;
}
