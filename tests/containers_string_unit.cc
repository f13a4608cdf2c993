/*
 * containers_string_unit.cc -- mnemo::string (mnemosyne_string.hpp)
 * against std::string as a model: every member, growth past several
 * capacities, embedded NUL bytes, 100 KiB strings, aliasing arguments; a
 * string in a root struct, a make_persistent object and mnemo::vector
 * elements; values that survive a reopen; an exception that rolls a
 * transaction back; blocks freed (no leak); consistent reads while
 * another thread writes.
 */
#include <criterion/criterion.h>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mnemosyne_string.hpp"
#include "mnemosyne_vector.hpp"
#include "util.h"

using namespace std::string_view_literals;

namespace {

constexpr size_t kMiB = 1 << 20;

/* A struct in a pool holding strings: all zero is empty. */
struct record {
	static constexpr bool mnemo_zero_is_empty = true;
	uint64_t id;
	mnemo::string name;
	mnemo::string body;
};

uint64_t live_blocks(mnemo_pool *p)
{
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	return st.live_blocks;
}

int sign(int x)
{
	return (x > 0) - (x < 0);
}

/* s holds exactly m, seen through every reading member. */
void same(const mnemo::string &s, const std::string &m, const char *what)
{
	cr_assert_eq(s.size(), m.size(), "%s: size %zu, model %zu", what,
		     s.size(), m.size());
	cr_assert_eq(s.length(), m.size());
	cr_assert_eq(s.empty(), m.empty());
	cr_assert_geq(s.capacity(), s.size());
	cr_assert_not_null(s.data());
	cr_assert_eq(s.c_str(), s.data());
	cr_assert_eq(s.c_str()[m.size()], '\0', "%s: no NUL", what);
	cr_assert(std::memcmp(s.data(), m.data(), m.size()) == 0, "%s", what);
	cr_assert(std::string(s.begin(), s.end()) == m, "%s", what);
	cr_assert(std::string_view(s) == m, "%s", what);
	cr_assert(s.str() == m, "%s", what);
	cr_assert(s == m && m == s && !(s != m) && !(m != s), "%s", what);
	cr_assert(!(s < m) && !(m < s) && s.compare(m) == 0, "%s", what);
	if (!m.empty()) {
		cr_assert_eq(s[0], m[0]);
		cr_assert_eq(s[m.size() - 1], m.back());
		cr_assert_eq(s.at(m.size() / 2), m[m.size() / 2]);
	}
	cr_assert_eq(std::as_const(s)[m.size()], '\0', "index size() is NUL");
	if (s.capacity())
		cr_assert_geq(pmalloc_usable_size((void *)s.data()),
			      s.capacity() + 1, "%s: block too small", what);
}

/* Chars 0..255 in turn from `from`: NUL bytes included. */
std::string bytes(size_t n, unsigned from)
{
	std::string b(n, '\0');
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(unsigned char)(from + i * 7);
	return b;
}

} // namespace

Test(containers_string, empty_needs_no_block)
{
	mnemo::pool p = mnemo::pool::create(t_path("empty"), 16 * kMiB);
	uint64_t base = live_blocks(p.get());
	auto &s = p.root<mnemo::string>("s");
	cr_assert_eq(live_blocks(p.get()), base + 1, "the root only");
	same(s, "", "new");
	cr_assert_eq(s.capacity(), 0u);
	cr_assert_str_eq(s.c_str(), "");
	cr_assert_eq(s.begin(), s.end());
	s.append("");
	s = "";
	s.clear();
	s.resize(0, 'x');
	s.reserve(0);
	cr_assert_eq(s.capacity(), 0u, "nothing made a block");
	cr_assert_eq(live_blocks(p.get()), base + 1);
	try {
		s.pop_back();
		cr_assert_fail("pop_back of an empty string did not throw");
	} catch (const std::out_of_range &) {
	}
	try {
		(void)s.at(0);
		cr_assert_fail("at(0) of an empty string did not throw");
	} catch (const std::out_of_range &) {
	}
	/* A string outside any pool cannot take a block. */
	mnemo::string local;
	try {
		local = "abc";
		cr_assert_fail("a string on the stack took a block");
	} catch (const mnemo::error &e) {
		cr_assert_eq(e.code(), -EINVAL);
	}
	same(local, "", "local");
}

/* Each member against the model, step by step. */
Test(containers_string, members_against_std_string)
{
	mnemo::pool p = mnemo::pool::create(t_path("members"), 16 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	std::string m;
	/* push_back past several capacities (15, 31, 63, ...). */
	size_t caps = 0, last = 0;
	for (int i = 0; i < 300; i++) {
		s.push_back((char)('a' + i % 26));
		m.push_back((char)('a' + i % 26));
		if (s.capacity() != last) {
			caps++;
			last = s.capacity();
		}
	}
	cr_assert_geq(caps, 5u, "grew %zu times", caps);
	same(s, m, "push_back");
	s.append("-tail"sv);
	m.append("-tail");
	s.append("xyz\0w", 5); /* (const char *, n): the NUL too */
	m.append("xyz\0w", 5);
	s += "+"sv;
	m += "+";
	s += '!';
	m += '!';
	same(s, m, "append");
	s[3] = 'Q';
	m[3] = 'Q';
	s.at(4) = '\0';
	m.at(4) = '\0';
	s[5] = s[3];
	m[5] = m[3];
	cr_assert_eq((char)s[3], 'Q');
	same(s, m, "operator[]");
	try {
		s.at(s.size()) = 'x';
		cr_assert_fail("at(size()) did not throw");
	} catch (const std::out_of_range &) {
	}
	try {
		s[s.size()] = 'x';
		cr_assert_fail("assigning [size()] did not throw");
	} catch (const std::out_of_range &) {
	}
	s.pop_back();
	m.pop_back();
	same(s, m, "pop_back");
	size_t cap = s.capacity();
	s.resize(s.size() + 3, 'r'); /* within capacity (logged) */
	m.resize(m.size() + 3, 'r');
	same(s, m, "resize within");
	s.resize(cap * 3, 'R'); /* beyond (a fresh block) */
	m.resize(cap * 3, 'R');
	same(s, m, "resize beyond");
	s.resize(10);
	m.resize(10);
	same(s, m, "resize down");
	s.resize(12); /* new chars are NUL by default */
	m.resize(12);
	same(s, m, "resize with NUL");
	cap = s.capacity();
	s.clear();
	m.clear();
	same(s, m, "clear");
	cr_assert_eq(s.capacity(), cap, "clear keeps the block");
	s.reserve(5000);
	cr_assert_geq(s.capacity(), 5000u);
	same(s, m, "reserve");
	s = "c string";
	m = "c string";
	same(s, m, "= const char *");
	s = std::string_view("view\0with NUL", 13);
	m = std::string("view\0with NUL", 13);
	same(s, m, "= string_view");
	s.assign("assigned", 4);
	m.assign("assigned", 4);
	same(s, m, "assign(p, n)");
	s.assign(std::string(6000, 'L')); /* longer than kFreshMin */
	m.assign(std::string(6000, 'L'));
	same(s, m, "long assign");
	s = std::string(20, 'S');
	m = std::string(20, 'S');
	same(s, m, "short assign in a big block");
	cr_assert_geq(s.capacity(), 6000u, "a short one stays in place");
}

/* The comparisons give std::string's order; chars are unsigned. */
Test(containers_string, compare_as_std_string)
{
	mnemo::pool p = mnemo::pool::create(t_path("cmp"), 16 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	auto &t = p.root<mnemo::string>("t");
	const std::string vals[] = {"", "a", "ab", "abc", "abd", "b",
				    std::string("a\0b", 3), "\xff", "\x01",
				    std::string(700, 'z'), std::string(700, 'z') + "a",
				    std::string(699, 'z') + "y"};
	for (const std::string &a : vals) {
		s = a;
		for (const std::string &b : vals) {
			t = b;
			int want = sign(a.compare(b));
			cr_assert_eq(sign(s.compare(b)), want);
			cr_assert_eq(sign(s.compare(t)), want);
			cr_assert_eq(s == b, a == b);
			cr_assert_eq(s == t, a == b);
			cr_assert_eq(b == s, a == b);
			cr_assert_eq(s != b, a != b);
			cr_assert_eq(s != t, a != b);
			cr_assert_eq(s < b, a < b);
			cr_assert_eq(s < t, a < b);
			cr_assert_eq(b < s, b < a);
		}
	}
	s = "abc";
	cr_assert(s == "abc" && "abc" == s && s != "abd" && s < "abd");
}

/* insert, erase, replace and the searches, on known values; bad
 * positions throw std::out_of_range and change nothing. */
Test(containers_string, edits_and_searches)
{
	mnemo::pool p = mnemo::pool::create(t_path("edits"), 16 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	s = "hello world";
	s.insert(5, ",");
	cr_assert(s == "hello, world");
	s.insert(0, ">> ").insert(s.size(), "!");
	cr_assert(s == ">> hello, world!");
	s.erase(0, 3);
	cr_assert(s == "hello, world!");
	s.replace(7, 5, "there");
	cr_assert(s == "hello, there!");
	s.replace(0, 5, "hi");
	cr_assert(s == "hi, there!");
	s.erase(2);
	cr_assert(s == "hi");
	cr_assert_eq(s.c_str()[2], '\0');
	s = "abcabc";
	cr_assert(s.find("bc") == 1 && s.find("bc", 2) == 4 && s.rfind("bc") == 4);
	cr_assert(s.find('z') == mnemo::string::npos && s.find('c') == 2);
	cr_assert(s.starts_with("abca") && s.ends_with("cabc") && s.contains("ca"));
	cr_assert_eq(s.substr(2, 3), "cab");
	cr_assert_throw(s.insert(7, "x"), std::out_of_range);
	cr_assert_throw(s.erase(7), std::out_of_range);
	cr_assert_throw(s.replace(7, 1, "x"), std::out_of_range);
	cr_assert_throw(s.substr(7), std::out_of_range);
	cr_assert(s == "abcabc");
	/* growth beyond the capacity moves the chars to a fresh block */
	std::string big(5000, 'x');
	s.insert(3, big);
	cr_assert_eq(s.str(), "abc" + big + "abc");
	/* an abort undoes an insert */
	try {
		mnemo::transaction([&] {
			s.insert(0, "doomed");
			cr_assert(s.starts_with("doomed"));
			throw std::runtime_error("abort");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert_eq(s.str(), "abc" + big + "abc");
	/* the empty string with no block */
	auto &e = p.root<mnemo::string>("e");
	e.erase();
	e.insert(0, "");
	cr_assert(e.empty() && e.capacity() == 0);
	e.insert(0, "x");
	cr_assert(e == "x");
}

/* A long random run against the model (seed logged). */
Test(containers_string, random_against_std_string, .timeout = 300)
{
	mnemo::pool p = mnemo::pool::create(t_path("random"), 32 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	std::string m;
	uint64_t x = t_seed() | 1;
	auto rnd = [&](uint64_t n) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		return n ? x % n : 0;
	};
	for (int i = 0; i < 3000; i++) {
		size_t n = rnd(400);
		std::string b = bytes(n, (unsigned)rnd(256));
		switch (rnd(17)) {
		case 0: s.push_back(b.empty() ? '\0' : b[0]);
			m.push_back(b.empty() ? '\0' : b[0]); break;
		case 1: s.append(b); m.append(b); break;
		case 2: s.append(b.data(), n / 2); m.append(b.data(), n / 2);
			break;
		case 3: if (!m.empty()) { s.pop_back(); m.pop_back(); } break;
		case 4: if (rnd(8) == 0) { s.clear(); m.clear(); } break;
		case 5: s.reserve(rnd(3000)); break;
		case 6: { size_t k = rnd(m.size() + 600);
			char c = (char)rnd(256);
			s.resize(k, c); m.resize(k, c); break; }
		case 7: s = b; m = b; break;
		case 8: if (!m.empty()) { size_t k = rnd(m.size());
			s[k] = b.empty() ? 'e' : b[0];
			m[k] = b.empty() ? 'e' : b[0]; } break;
		case 9: { /* self append: the argument is the string's own */
			std::string_view own(s);
			size_t k = rnd(m.size() + 1);
			s.append(own.substr(0, k)); m.append(m.substr(0, k));
			break; }
		case 10: { std::string_view own(s); /* self assign, a part */
			size_t k = rnd(m.size() + 1);
			s.assign(own.substr(k)); m = m.substr(k); break; }
		case 11: { size_t k = rnd(m.size() + 1);
			s.insert(k, b); m.insert(k, b); break; }
		case 12: { size_t k = rnd(m.size() + 1), c = rnd(300);
			s.erase(k, c); m.erase(k, c); break; }
		case 13: { size_t k = rnd(m.size() + 1), c = rnd(300);
			s.replace(k, c, b); m.replace(k, c, b); break; }
		case 14: { /* replace with a part of its own value */
			std::string_view own(s);
			size_t k = rnd(m.size() + 1), c = rnd(m.size() + 1);
			size_t f = rnd(m.size() + 1);
			std::string part = m.substr(f, 50);
			s.replace(k, c, own.substr(f, 50));
			m.replace(k, c, part); break; }
		case 15: { size_t k = rnd(m.size() + 1), at = rnd(m.size() + 2);
			std::string pat = m.substr(k, 1 + rnd(4));
			cr_assert_eq(s.find(pat, at), m.find(pat, at), "op %d", i);
			cr_assert_eq(s.rfind(pat), m.rfind(pat), "op %d", i);
			cr_assert_eq(s.find(pat.empty() ? 'q' : pat[0]),
				     m.find(pat.empty() ? 'q' : pat[0]));
			cr_assert_eq(s.substr(k, 7), m.substr(k, 7));
			cr_assert(s.starts_with(m.substr(0, k % 9)));
			size_t e = std::min(m.size(), k % 9);
			cr_assert(s.ends_with(m.substr(m.size() - e)));
			cr_assert(!s.starts_with(m + "x") && !s.ends_with("x" + m));
			break; }
		default: if (m.size() > 20000) { s.resize(100); m.resize(100); }
		}
		cr_assert_eq(s.size(), m.size(), "op %d", i);
		cr_assert(s.str() == m, "op %d", i);
		cr_assert_eq(s.c_str()[m.size()], '\0', "op %d", i);
	}
	same(s, m, "random");
}

/* An argument that is the string's own chars, changed earlier in the
 * same transaction: read as the transaction sees them. */
Test(containers_string, own_chars_inside_a_transaction)
{
	mnemo::pool p = mnemo::pool::create(t_path("own"), 16 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	s = "hello";
	mnemo::transaction([&] {
		s[0] = 'J';
		s.append(std::string_view(s)); /* within capacity */
	});
	same(s, "JelloJello", "append within capacity");
	mnemo::transaction([&] {
		s[0] = 'Y';
		s.append(std::string_view(s)); /* growth */
		s[1] = 'E';
		s.assign(std::string_view(s).substr(0, 12));
	});
	same(s, "YElloJelloYe", "append with growth, assign");
}

/* 100 KiB strings: appended, assigned, grown, compared, copied. */
Test(containers_string, hundred_kib)
{
	mnemo::pool p = mnemo::pool::create(t_path("big"), 32 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	auto &t = p.root<mnemo::string>("t");
	std::string big = bytes(100 << 10, 3);
	s.append(big);
	same(s, big, "append 100 KiB");
	t = big;
	same(t, big, "assign 100 KiB");
	cr_assert(s == t);
	t[50000] = 'x';
	cr_assert(s != t);
	cr_assert_eq(sign(s.compare(t)), sign(big.compare(t.str())));
	std::string m = big;
	for (int i = 0; i < 10; i++) { /* 1.1 MiB: more than the log */
		s.append(big);
		m.append(big);
	}
	same(s, m, "1.1 MiB");
	t = s; /* string to string, larger than the log */
	same(t, m, "copied");
	s.resize(150 << 10, 'q');
	m.resize(150 << 10, 'q');
	same(s, m, "resized down");
}

/* Within one transaction: growth reads the transaction's own writes, and
 * an exception rolls everything back (blocks included). */
Test(containers_string, transactions_and_abort)
{
	const char *path = t_path("abort");
	{
		mnemo::pool p = mnemo::pool::create(path, 16 * kMiB);
		auto &s = p.root<mnemo::string>("s");
		s = "before";
		mnemo::transaction([&] {
			s[0] = 'B';
			for (int i = 0; i < 100; i++)
				s.push_back((char)('0' + i % 10));
			cr_assert_eq(s[0], 'B', "its own write, after growth");
			cr_assert_eq(s.size(), 106u);
			cr_assert(s.str().compare(0, 16, "Before0123456789") == 0);
		});
		std::string m = "Before";
		for (int i = 0; i < 100; i++)
			m.push_back((char)('0' + i % 10));
		same(s, m, "committed");
		uint64_t blocks = live_blocks(p.get());
		size_t cap = s.capacity();
		const char *data = s.data();
		try {
			mnemo::transaction([&] {
				s.append(std::string(5000, 'x'));
				s = "replaced";
				s.reserve(100000);
				throw std::runtime_error("roll back");
			});
			cr_assert_fail("the exception did not pass");
		} catch (const std::runtime_error &) {
		}
		same(s, m, "rolled back");
		cr_assert_eq(s.capacity(), cap);
		cr_assert_eq(s.data(), data, "the old block stays");
		cr_assert_eq(live_blocks(p.get()), blocks, "new blocks freed");
		try { /* a failing member alone rolls its changes back too */
			mnemo::transaction([&] {
				s.append("abc");
				s.pop_back();
				s.at(1000) = 'x';
			});
		} catch (const std::out_of_range &) {
		}
		same(s, m, "member threw");
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &s = p.root<mnemo::string>("s");
	std::string m = "Before";
	for (int i = 0; i < 100; i++)
		m.push_back((char)('0' + i % 10));
	same(s, m, "reopened");
}

/* Strings in a root struct and a make_persistent object survive a
 * reopen; delete_persistent frees their blocks. */
Test(containers_string, in_a_struct_and_reopened)
{
	const char *path = t_path("reopen");
	std::string body = bytes(3000, 9);
	mnemo::string *made = nullptr;
	uint64_t base;
	{
		mnemo::pool p = mnemo::pool::create(path, 16 * kMiB);
		base = live_blocks(p.get());
		auto &r = p.root<record>("rec");
		mnemo::transaction([&] {
			mnemo::detail::tx_set(&r.id, (uint64_t)7);
			r.name = "seven";
			r.body = body;
		});
		cr_assert_eq(live_blocks(p.get()), base + 3);
		made = p.make_persistent<mnemo::string>("made\0here"sv);
		cr_assert_not_null(made);
		cr_assert_eq(live_blocks(p.get()), base + 5, "object, chars");
		cr_assert_eq(mnemo_root_set(p.get(), "made", made), 0);
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &r = p.root<record>("rec");
	cr_assert_eq(r.id, 7u);
	same(r.name, "seven", "name");
	same(r.body, body, "body");
	void *q = nullptr;
	cr_assert_eq(mnemo_root_get(p.get(), "made", &q), 0);
	cr_assert_eq(q, made, "same address");
	same(*made, std::string("made\0here", 9), "made");
	cr_assert_eq(mnemo_root_set(p.get(), "made", nullptr), 0);
	mnemo::delete_persistent(made);
	cr_assert_eq(live_blocks(p.get()), base + 3, "its chars freed too");
	r.name.mnemo_reset();
	same(r.name, "", "reset");
	cr_assert_eq(r.name.capacity(), 0u);
	cr_assert_eq(live_blocks(p.get()), base + 2);
}

/* mnemo::vector<mnemo::string>: elements assigned from views, changed in
 * place, compared, removed (their blocks freed), kept across a reopen. */
Test(containers_string, vector_of_strings)
{
	const char *path = t_path("vstr");
	std::vector<std::string> m;
	uint64_t base;
	{
		mnemo::pool p = mnemo::pool::create(path, 32 * kMiB);
		base = live_blocks(p.get());
		auto &v = p.root<mnemo::vector<mnemo::string>>("v");
		for (int i = 0; i < 100; i++) { /* several reallocations */
			std::string s = "item " + std::to_string(i);
			v.push_back(std::string_view(s));
			m.push_back(s);
		}
		v.push_back("literal");
		m.push_back("literal");
		for (size_t k = 0; k < m.size(); k += 3) {
			std::string s(k * 5, (char)('A' + k % 26));
			v[k] = std::string_view(s);
			m[k] = s;
		}
		v[1] = "const char";
		m[1] = "const char";
		v[2] = v[1];
		m[2] = m[1];
		v[4]->append(std::string_view("\0+", 2));
		m[4].append("\0+", 2);
		v.at(5).get().push_back('!');
		m[5].push_back('!');
		cr_assert(v[1] == "const char" && "const char" == v[1]);
		cr_assert(v[1] != "other" && v[7] < "item 8");
		cr_assert(v[2] == std::as_const(v)[1]);
		try {
			v[m.size()] = "past the end"sv;
			cr_assert_fail("assigning past the end did not throw");
		} catch (const std::out_of_range &) {
		}
		mnemo::transaction([&] { /* a block per element in one go */
			v.resize(120);
			for (size_t k = 101; k < 120; k++)
				v[k] = std::string(40, (char)k);
		});
		m.resize(120);
		for (size_t k = 101; k < 120; k++)
			m[k] = std::string(40, (char)k);
		p.close();
	}
	mnemo::pool p = mnemo::pool::open(path);
	auto &v = p.root<mnemo::vector<mnemo::string>>("v");
	cr_assert_eq(v.size(), m.size());
	uint64_t blocks = 1 + (v.capacity() > 0);
	for (size_t k = 0; k < m.size(); k++) {
		same(std::as_const(v)[k], m[k], "element");
		blocks += v.at(k).get().capacity() > 0;
	}
	cr_assert_eq(live_blocks(p.get()), base + blocks);
	size_t i = 0;
	for (const mnemo::string &s : v)
		cr_assert(s == m[i++]);
	/* Removing elements frees their blocks. */
	v.pop_back();
	m.pop_back();
	v.resize(50);
	m.resize(50);
	blocks = 1 + 1;
	for (size_t k = 0; k < m.size(); k++)
		blocks += v[k]->capacity() > 0;
	cr_assert_eq(live_blocks(p.get()), base + blocks);
	v.resize(60); /* the new elements are empty */
	for (size_t k = 50; k < 60; k++)
		same(std::as_const(v)[k], "", "regrown");
	try {
		mnemo::transaction([&] {
			v.clear();
			throw std::runtime_error("roll back");
		});
	} catch (const std::runtime_error &) {
	}
	cr_assert(v[49] == m[49], "the abort restored them");
	v.clear();
	cr_assert_eq(live_blocks(p.get()), base + 2, "root and vector block");
	auto *w = p.make_persistent<mnemo::vector<mnemo::string>>();
	w->push_back("again"sv);
	w->push_back(std::string(100, 'w'));
	cr_assert_eq(live_blocks(p.get()), base + 6);
	mnemo::delete_persistent(w); /* the destructor frees its strings */
	cr_assert_eq(live_blocks(p.get()), base + 2);
}

/* Readers see whole values while a writer switches between two. */
Test(containers_string, consistent_reads_while_writing, .timeout = 120)
{
	mnemo::pool p = mnemo::pool::create(t_path("threads"), 32 * kMiB);
	auto &s = p.root<mnemo::string>("s");
	const std::string a(1000, 'a'), b(3000, 'b');
	s = a;
	std::atomic<bool> stop{false};
	std::thread writer([&] {
		for (int i = 0; i < 400; i++) {
			s = i % 2 ? a : b;
			if (i % 3 == 0)
				s.append(std::string(10, std::as_const(s)[0]));
		}
		stop = true;
	});
	int reads = 0;
	while (!stop || reads < 10) {
		std::string r = s.str();
		char c = r[0];
		cr_assert(c == 'a' || c == 'b');
		size_t want = c == 'a' ? 1000 : 3000;
		cr_assert(r.size() == want || r.size() == want + 10,
			  "size %zu", r.size());
		cr_assert(r.find_first_not_of(c) == std::string::npos,
			  "a torn read");
		reads++;
	}
	writer.join();
	/* Two threads appending: every char lands once. */
	s.clear();
	auto work = [&](char c) {
		for (int i = 0; i < 1000; i++)
			s.push_back(c);
	};
	std::thread x(work, 'x'), y(work, 'y');
	x.join();
	y.join();
	std::string r = s.str();
	cr_assert_eq(r.size(), 2000u);
	cr_assert_eq(std::count(r.begin(), r.end(), 'x'), 1000);
}
