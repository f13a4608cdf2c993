/*
 * containers_string_crash.cc -- mnemo::string at every persist point (sim
 * backend; drop, then torn words and lines), alone in a root and as the
 * elements of a mnemo::vector, under the durable allocation map
 * (MNEMO_HEAP_GC=off: nothing collects a leak) and the default volatile
 * one.  The script grows, shrinks, assigns short and long values, aliases
 * its own chars, frees the block, inserts, erases and replaces (within
 * the capacity and beyond), and aborts a transaction.  After each
 * crash the value is exactly the model's after the last operation that
 * returned, or the one under way; the heap checks out and holds exactly
 * the blocks the recovered structure reaches (no leak).
 */
#include <criterion/criterion.h>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mnemosyne_string.hpp"
#include "mnemosyne_vector.hpp"
#include "util.h"

namespace {

using pstring = mnemo::string;
using pvector = mnemo::vector<mnemo::string>;
constexpr int kOps = 27;
constexpr int kVecOps = 16;
constexpr int kSeeds = 2;

/* n chars from `from` on, NUL bytes included. */
std::string bytes(size_t n, unsigned from)
{
	std::string b(n, '\0');
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(unsigned char)(from + i * 5);
	return b;
}

/* Whether C is the persistent side of a script (or the model's). */
template <class C> constexpr bool persistent()
{
	return std::is_same_v<C, pstring> || std::is_same_v<C, pvector>;
}

/* f as a transaction on the persistent side, plainly on the model. */
template <class C, class F> void tx(F f)
{
	if constexpr (persistent<C>())
		mnemo::transaction(f);
	else
		f();
}

/* On the persistent side, a transaction that does f and then throws: it
 * leaves nothing.  The model does nothing. */
template <class C, class F> void aborted(F f)
{
	if constexpr (persistent<C>()) {
		try {
			mnemo::transaction([&] {
				f();
				throw std::runtime_error("abort");
			});
		} catch (const std::runtime_error &) {
		}
	}
}

template <class S> void reset(S &s)
{
	if constexpr (persistent<S>()) {
		s.mnemo_reset();
	} else {
		s.clear();
		s.shrink_to_fit();
	}
}

/* Operation i of the string script (S is mnemo::string or std::string:
 * the same members). */
template <class S> void op(S &s, int i)
{
	switch (i) {
	case 0: s.push_back('a'); break;           /* the first block */
	case 1: s.append(bytes(20, 1)); break;     /* growth, NUL bytes */
	case 2: s[3] = 'Z'; break;
	case 3: s.append(bytes(40, 2).data(), 33); break;
	case 4: s.pop_back(); break;
	case 5: s = std::string_view("short\0value", 11); break; /* logged */
	case 6: s.resize(s.size() + 5, 'r'); break; /* within capacity */
	case 7: s.resize(200, 'R'); break;         /* beyond */
	case 8: aborted<S>([&] {
			s.append(bytes(1000, 3));
			s = "gone";
		});
		break;
	case 9: s = bytes(5000, 4); break;         /* long: a fresh block */
	case 10: s.append(bytes(3000, 5)); break;  /* growth of a big one */
	case 11: s.resize(100); break;
	case 12: s.clear(); break;
	case 13: s.reserve(20000); break;
	case 14: s.push_back('p'); break;
	case 15: /* its own chars as the argument */
		if constexpr (persistent<S>())
			s.append(std::string_view(s));
		else
			s.append(std::string(s));
		break;
	case 16: reset(s); break;                  /* frees the block */
	case 17: s.append("0123456789"); break;
	case 18: tx<S>([&] { /* growth after a write, in one transaction */
			s[0] = 'T';
			for (int k = 0; k < 40; k++)
				s.push_back((char)('A' + k));
			s.at(1) = '\0';
		});
		break;
	case 19: s = ""; break;
	case 20: s.assign("end", 3); break;
	case 21: s.insert(1, "-ins-"); break;      /* within capacity */
	case 22: s.insert(0, bytes(300, 8)); break; /* beyond: a fresh block */
	case 23: s.erase(2, 100); break;           /* the tail moves left */
	case 24: s.replace(1, 3, "REPLACED"); break;
	case 25: /* a part of its own chars replaces another part */
		if constexpr (persistent<S>())
			s.replace(0, 2, std::string_view(s).substr(5, 9));
		else
			s.replace(0, 2, s.substr(5, 9));
		break;
	default: s.erase(0, 1); break;
	}
}

template <class V> void vec_op(V &v, int i)
{
	switch (i) {
	case 0: case 1: case 2: case 3: case 4: /* the vector grows */
		v.push_back(std::string(3 + 9 * i, (char)('a' + i)));
		break;
	case 5: v[1] = std::string_view("one\0", 4); break;
	case 6: v[2] = bytes(5000, 6); break;      /* long: a fresh block */
	case 7: v[3] = v[2]; break;
	case 8: v.pop_back(); break;               /* frees its block */
	case 9: v.resize(v.size() + 2); break;     /* empty elements */
	case 10:
		if constexpr (persistent<V>())
			v[5]->append(bytes(30, 7));
		else
			v[5].append(bytes(30, 7));
		break;
	case 11: aborted<V>([&] { v.clear(); }); break;
	case 12: v.resize(3); break;               /* frees three */
	case 13: v.push_back(std::string(17, 'x')); break;
	case 14: v.clear(); break;
	default: v.push_back(std::string("last")); break;
	}
}

std::string model(int k)
{
	std::string m;
	for (int i = 0; i < k; i++)
		op(m, i);
	return m;
}

std::vector<std::string> vec_model(int k)
{
	std::vector<std::string> m;
	for (int i = 0; i < k; i++)
		vec_op(m, i);
	return m;
}

template <class T> T *root(mnemo_pool *pool, const char *name)
{
	void *v = nullptr;
	if (mnemo_root_get(pool, name, &v))
		return nullptr;
	return static_cast<T *>(v);
}

/* s's invariants, and whether it is exactly m; counts its block. */
bool string_is(const pstring &s, const std::string &m, uint64_t *blocks)
{
	size_t n = s.size(), cap = s.capacity();
	if (n > cap || s.c_str()[n] != '\0' || s.str() != m)
		return false;
	if (cap == 0)
		return n == 0;
	(*blocks)++;
	return pmalloc_usable_size((void *)s.data()) >= cap + 1;
}

/* The heap checks out and holds exactly `blocks` blocks. */
void heap_holds(mnemo_pool *pool, uint64_t blocks)
{
	cr_assert_eq(mnemo_heap_check(pool), 0, "%s", mnemo_errormsg());
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(pool, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, blocks,
		     "%llu blocks allocated, %llu reachable (a leak)",
		     (unsigned long long)st.live_blocks,
		     (unsigned long long)blocks);
}

void work(mnemo_pool *pool, struct t_progress *pr)
{
	pstring &s = *root<pstring>(pool, "s");
	for (int i = 0; i < kOps; i++) {
		T_BEGIN(pr);
		op(s, i);
		T_END(pr);
	}
}

bool check(mnemo_pool *pool, int k)
{
	pstring *s = root<pstring>(pool, "s");
	uint64_t blocks = 1; /* the root object */
	if (!s || !string_is(*s, model(k), &blocks))
		return false;
	heap_holds(pool, blocks);
	return true;
}

void vec_work(mnemo_pool *pool, struct t_progress *pr)
{
	pvector &v = *root<pvector>(pool, "v");
	for (int i = 0; i < kVecOps; i++) {
		T_BEGIN(pr);
		vec_op(v, i);
		T_END(pr);
	}
}

bool vec_check(mnemo_pool *pool, int k)
{
	const pvector *v = root<pvector>(pool, "v");
	std::vector<std::string> m = vec_model(k);
	if (!v || v->size() != m.size() || v->size() > v->capacity())
		return false;
	uint64_t blocks = 1 + (v->capacity() > 0);
	for (size_t i = 0; i < m.size(); i++)
		if (!string_is((*v)[i], m[i], &blocks))
			return false;
	/* The elements past the end are empty (all zero). */
	for (size_t i = m.size(); i < v->capacity(); i++)
		if (v->data()[i].capacity() || v->data()[i].size())
			return false;
	heap_holds(pool, blocks);
	return true;
}

template <class T> const char *base_pool(const char *tag, const char *name)
{
	const char *base = t_path(tag);
	mnemo::pool p = mnemo::pool::create(base, 16 << 20);
	p.root<T>(name);
	p.close();
	return base;
}

} // namespace

Test(containers_string_crash, string_durable_map, .timeout = 900)
{
	setenv("MNEMO_HEAP_GC", "off", 1); /* a leak would stay */
	t_crash_modes(base_pool<pstring>("sdur", "s"), work, check, kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}

Test(containers_string_crash, string_volatile_map, .timeout = 900)
{
	unsetenv("MNEMO_HEAP_GC");
	t_crash_modes(base_pool<pstring>("svol", "s"), work, check, kSeeds);
}

Test(containers_string_crash, vector_of_strings, .timeout = 900)
{
	setenv("MNEMO_HEAP_GC", "off", 1);
	t_crash_modes(base_pool<pvector>("vdur", "v"), vec_work, vec_check,
		      kSeeds);
	unsetenv("MNEMO_HEAP_GC");
}
