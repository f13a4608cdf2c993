/*
 * mnemosyne_string.hpp -- mnemo::string: a string of chars that lives in a
 * pool, with the members and meaning of std::string.
 *
 *   mnemo::pool pool = mnemo::pool::open_or_create("app.pool", 64 << 20);
 *   auto &s = pool.root<mnemo::string>("greeting");
 *   s = "hello";                // one durable transaction
 *   s.append(", world");        // another
 *   std::puts(s.c_str());       // a read
 *
 * Layout (24 bytes, in the pool; no inline short-string storage):
 *   data_  the heap block of the chars, cap_ + 1 bytes or more, or null
 *   size_  chars in the string
 *   cap_   chars the block holds before the string must move (its NUL
 *          not counted): the block's size rounded up to 16, less one
 * Invariants: data_ is null iff cap_ is 0, and then size_ is 0 (the empty
 * string needs no block, and an all-zero string is empty); otherwise
 * size_ <= cap_, data_[0, size_) are the chars, which may include NUL
 * bytes, and data_[size_] is NUL.  The object itself must live in a pool
 * (a root, a region, a make_persistent object, a mnemo::vector element):
 * a block is allocated from the pool that holds it.
 *
 * Every mutating member is one durable transaction, joining the caller's
 * if one is open, so a crash or an exception leaves the string as it was
 * before or after the call.  Writes within capacity() are logged (so they
 * must fit the transaction log, MNEMO_TX_LOG_SIZE); growth beyond it
 * takes a fresh block of twice the capacity or more, which is written
 * with plain stores and flushed, durable before the commit's record (the
 * log holds none of it), and frees the old block at commit.  An
 * assignment of more than kFreshMin chars takes a fresh block of its
 * size too, so neither growth nor assignment is bounded by the log.
 *
 * Reading: str() and compare() (and the comparisons, which compare
 * sizes first) read the chars in a transaction (the caller's, or one of
 * their own), so they see one consistent value, with the transaction's
 * own writes, whatever other threads do.  size(), operator[] and at() read a field at a time:
 * isolated inside a transaction, plain memory outside one.  data(),
 * c_str(), the iterators and the std::string_view conversion give memory
 * as it is: not the caller's uncommitted writes, and, outside a
 * transaction, changed by another thread's commit.  They are invalidated
 * by any mutation that takes a fresh block (growth beyond capacity(),
 * reserve, a long assignment), as with std::string.
 */
#ifndef MNEMOSYNE_STRING_HPP
#define MNEMOSYNE_STRING_HPP 1

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "mnemosyne.hpp"

namespace mnemo {

class string {
public:
	using value_type = char;
	using size_type = size_t;
	using const_iterator = const char *;
	static constexpr bool mnemo_zero_is_empty = true;
	/* May be a mnemo::vector element (see mnemosyne_vector.hpp). */
	static constexpr bool mnemo_relocatable = true;
	/* An assignment longer than this takes a fresh block. */
	static constexpr size_t kFreshMin = 4096;
	static constexpr size_t npos = std::string::npos;

	/* Char i: reading converts (as operator[] const reads); assigning
	 * is one transaction that finds the char (and checks the index)
	 * inside it. */
	class reference {
	public:
		operator char() const { return std::as_const(*s_)[i_]; }
		reference &operator=(char c)
		{
			transaction([&] {
				s_->check_index(i_);
				detail::tx_set(detail::tx_get(&s_->data_) + i_,
					       c);
			});
			return *this;
		}
		reference &operator=(const reference &o)
		{
			return *this = char(o);
		}

	private:
		friend class string;
		reference(string *s, size_t i) : s_(s), i_(i) {}
		string *s_;
		size_t i_;
	};

	string() = default;
	/* For make_persistent<mnemo::string>(view): in a pool only. */
	explicit string(std::string_view s) { assign(s); }
	string(const string &) = delete;
	/* Copies o's chars (read in the transaction). */
	string &operator=(const string &o)
	{
		if (this != &o)
			transaction([&] { assign(o.str()); });
		return *this;
	}
	/* Frees the block (in a transaction); for delete_persistent.  A
	 * failure there leaves the block to the leak collection. */
	~string()
	{
		try {
			if (detail::tx_get(&data_))
				mnemo_reset();
		} catch (const error &) {
		}
	}

	size_t size() const { return (size_t)detail::tx_get(&size_); }
	size_t length() const { return size(); }
	size_t capacity() const { return (size_t)detail::tx_get(&cap_); }
	static constexpr size_t max_size() { return kMax; }
	bool empty() const { return size() == 0; }
	/* Never null: an empty string without a block gives a static "". */
	const char *data() const
	{
		const char *d = detail::tx_get(&data_);
		return d ? d : "";
	}
	const char *c_str() const { return data(); }
	/* A hint for scans (mnemo::map's iterators): start fetching the
	 * chars.  The pointer is read as it is in memory, outside any
	 * transaction; a stale one only wastes the fetch (a prefetch never
	 * faults). */
	void mnemo_prefetch() const
	{
		__builtin_prefetch(__atomic_load_n(&data_, __ATOMIC_RELAXED));
	}
	const_iterator begin() const { return data(); }
	const_iterator end() const { return data() + size(); }
	operator std::string_view() const { return {data(), size()}; }
	/* A copy, read in a transaction. */
	std::string str() const
	{
		std::string out;
		transaction([&] {
			out.resize(size());
			if (!out.empty())
				detail::check(mnemo_tx_load(
					out.data(), detail::tx_get(&data_),
					out.size()));
		});
		return out;
	}

	reference operator[](size_t i) { return reference(this, i); }
	/* Index size() reads the terminating NUL. */
	char operator[](size_t i) const
	{
		const char *d = detail::tx_get(&data_);
		return d ? detail::tx_get(d + i) : '\0';
	}
	reference at(size_t i)
	{
		check_index(i);
		return (*this)[i];
	}
	char at(size_t i) const
	{
		check_index(i);
		return (*this)[i];
	}

	/* Negative, zero or positive as *this sorts before, with or after s
	 * (chars compared as unsigned char, as std::string does). */
	int compare(std::string_view s) const { return cmp(s); }
	int compare(const string &o) const
	{
		int r = 0;
		transaction([&] { r = cmp(o.str()); });
		return r;
	}

	/* Searches and copies of a part: on one consistent value (str()),
	 * with std::string's meaning and return values (npos: not found). */
	size_t find(std::string_view s, size_t pos = 0) const
	{
		return str().find(s, pos);
	}
	size_t find(char c, size_t pos = 0) const { return str().find(c, pos); }
	size_t rfind(std::string_view s, size_t pos = npos) const
	{
		return str().rfind(s, pos);
	}
	size_t rfind(char c, size_t pos = npos) const
	{
		return str().rfind(c, pos);
	}
	bool starts_with(std::string_view s) const
	{
		std::string v = str();
		return v.size() >= s.size() && v.compare(0, s.size(), s) == 0;
	}
	bool ends_with(std::string_view s) const
	{
		std::string v = str();
		return v.size() >= s.size() &&
		       v.compare(v.size() - s.size(), s.size(), s) == 0;
	}
	bool contains(std::string_view s) const { return find(s) != npos; }
	/* Throws std::out_of_range if pos > size(). */
	std::string substr(size_t pos = 0, size_t n = npos) const
	{
		std::string v = str();
		if (pos > v.size())
			throw std::out_of_range("mnemo::string::substr: pos "
						"out of range");
		return v.substr(pos, n);
	}

	/* The chars [pos, pos + min(n, size() - pos)) replaced by s, in one
	 * transaction; s may be (part of) this string's own value.  Throws
	 * std::out_of_range if pos > size(), std::length_error if the result
	 * would be too long.  Within capacity() the moved tail and s are
	 * logged; beyond it the string moves to a fresh block (as append). */
	string &replace(size_t pos, size_t n, std::string_view s)
	{
		transaction([&] {
			std::string tmp, tail;
			std::string_view v = own(s, tmp);
			uint64_t sz = detail::tx_get(&size_);
			if (pos > sz)
				throw std::out_of_range("mnemo::string: pos "
							"out of range");
			uint64_t cut = n < sz - pos ? n : sz - pos;
			check_length(sz - cut, v.size());
			char *d = detail::tx_get(&data_);
			tail.resize(sz - pos - cut);
			if (!tail.empty())
				detail::check(mnemo_tx_load(tail.data(),
							    d + pos + cut,
							    tail.size()));
			splice(pos, v, tail);
		});
		return *this;
	}
	string &insert(size_t pos, std::string_view s)
	{
		return replace(pos, 0, s);
	}
	string &erase(size_t pos = 0, size_t n = npos)
	{
		return replace(pos, n, std::string_view());
	}

	/* s may be (part of) this string's own value. */
	string &assign(const char *s, size_t n)
	{
		transaction([&] {
			std::string tmp;
			std::string_view v = own({s, n}, tmp);
			uint64_t cap = detail::tx_get(&cap_);
			if (v.size() > cap || v.size() > kFreshMin) {
				check_length(0, v.size());
				rebuild(v.size(), 0, v.size(), [&](char *m) {
					std::memcpy(m, v.data(), v.size());
				});
			} else if (cap) {
				char *d = detail::tx_get(&data_);
				detail::check(mnemo_tx_store(d, v.data(),
							     v.size()));
				set_end(d, v.size());
			}
		});
		return *this;
	}
	string &assign(std::string_view s) { return assign(s.data(), s.size()); }
	string &operator=(std::string_view s) { return assign(s); }
	string &operator=(const char *s) { return assign(std::string_view(s)); }

	string &append(const char *s, size_t n)
	{
		transaction([&] {
			std::string tmp;
			std::string_view v = own({s, n}, tmp);
			uint64_t sz = detail::tx_get(&size_);
			check_length(sz, v.size());
			uint64_t end = sz + v.size();
			if (end > detail::tx_get(&cap_)) {
				rebuild(grown(end), sz, end, [&](char *m) {
					std::memcpy(m + sz, v.data(), v.size());
				});
			} else if (!v.empty()) {
				char *d = detail::tx_get(&data_);
				detail::check(mnemo_tx_store(d + sz, v.data(),
							     v.size()));
				set_end(d, end);
			}
		});
		return *this;
	}
	string &append(std::string_view s) { return append(s.data(), s.size()); }
	string &operator+=(std::string_view s) { return append(s); }
	string &operator+=(char c) { return append(&c, 1); }
	void push_back(char c) { append(&c, 1); }

	/* Throws std::out_of_range on an empty string. */
	void pop_back()
	{
		transaction([&] {
			uint64_t sz = detail::tx_get(&size_);
			if (sz == 0)
				throw std::out_of_range("mnemo::string::"
							"pop_back: empty");
			set_end(detail::tx_get(&data_), sz - 1);
		});
	}
	/* Keeps the block, as std::string does (mnemo_reset frees it). */
	void clear()
	{
		transaction([&] {
			if (detail::tx_get(&size_))
				set_end(detail::tx_get(&data_), 0);
		});
	}
	void reserve(size_t n)
	{
		transaction([&] {
			if (n <= detail::tx_get(&cap_))
				return;
			check_length(0, n);
			uint64_t sz = detail::tx_get(&size_);
			rebuild(grown(n), sz, sz, [](char *) {});
		});
	}
	/* New chars are c; within capacity() their writing is logged. */
	void resize(size_t n, char c = '\0')
	{
		transaction([&] {
			uint64_t sz = detail::tx_get(&size_);
			if (n < sz) {
				set_end(detail::tx_get(&data_), n);
			} else if (n > detail::tx_get(&cap_)) {
				check_length(0, n);
				rebuild(grown(n), sz, n, [&](char *m) {
					std::memset(m + sz, c, n - sz);
				});
			} else if (n > sz) {
				char *d = detail::tx_get(&data_);
				detail::check(mnemo_tx_memset(d + sz, c, n - sz));
				set_end(d, n);
			}
		});
	}
	/* Empty, with no block: frees the block (at commit) and leaves the
	 * string all-zero.  mnemo::vector calls it on the elements it
	 * removes. */
	void mnemo_reset()
	{
		transaction([&] {
			char *d = detail::tx_get(&data_);
			if (!d) /* all zero already */
				return;
			detail::check(mnemo_heap_free(d, 0));
			detail::tx_set(&data_, (char *)nullptr);
			detail::tx_set(&size_, (uint64_t)0);
			detail::tx_set(&cap_, (uint64_t)0);
		});
	}

private:
	static constexpr uint64_t kMax = UINT64_C(1) << 48; /* chars */

	/* Whether a string of `has` chars can take `more`. */
	static void check_length(uint64_t has, uint64_t more)
	{
		if (more > kMax - has)
			throw std::length_error("mnemo::string: too long");
	}

	void check_index(size_t i) const
	{
		if (i >= size())
			throw std::out_of_range("mnemo::string::at: index out "
						"of range");
	}

	/* The capacity growth to `need` chars asks for: doubling. */
	uint64_t grown(uint64_t need) const
	{
		uint64_t twice = detail::tx_get(&cap_) * 2;
		return twice > need ? twice : need;
	}

	/* The string ends at n: its NUL and its size. */
	void set_end(char *d, uint64_t n)
	{
		detail::tx_set(d + n, '\0');
		detail::tx_set(&size_, n);
	}

	/* s, or if it lies in this string's block, a copy of it read
	 * through the transaction into tmp: the block's memory does not
	 * hold the transaction's own writes yet, and may be replaced. */
	std::string_view own(std::string_view s, std::string &tmp) const
	{
		uintptr_t d = (uintptr_t)detail::tx_get(&data_);
		uintptr_t p = (uintptr_t)s.data();
		if (!d || s.empty() || p + s.size() <= d ||
		    p > d + detail::tx_get(&cap_))
			return s;
		tmp.resize(s.size());
		detail::check(mnemo_tx_load(tmp.data(), s.data(), s.size()));
		return tmp;
	}

	/* Move to a fresh block for `want` chars holding the first `keep`
	 * chars (a transactional read: the chars this transaction wrote
	 * are still in its write set), then what fill(m) writes at
	 * m[keep, n); the size becomes n and the rest of the block zero
	 * (no stale words for the leak collection's conservative scan).
	 * The block is this transaction's own until it commits, so it is
	 * written with plain stores (logging them would bound a string by
	 * the log's size) and flushed: the commit makes them durable before
	 * its record (mnemo_heap_alloc(3): one fence for all the fresh
	 * blocks of the transaction).  The old block is freed at commit,
	 * so an abort or a crash before it keeps the old value. */
	template <class F> void rebuild(uint64_t want, uint64_t keep,
					uint64_t n, F &&fill)
	{
		uint64_t bytes = (want + 16) & ~UINT64_C(15); /* want + 1, up */
		char *old = detail::tx_get(&data_);
		detail::check(mnemo_heap_alloc_to((void **)&data_, bytes, 0));
		char *m = detail::tx_get(&data_);
		if (keep)
			detail::check(mnemo_tx_load(m, old, keep));
		fill(m);
		std::memset(m + n, 0, bytes - n);
		mnemo_flush(m, bytes);
		detail::tx_set(&cap_, bytes - 1);
		detail::tx_set(&size_, n);
		if (old)
			detail::check(mnemo_heap_free(old, 0));
	}

	/* In replace's transaction: the chars from pos on become v then
	 * tail (already read out of the block). */
	void splice(uint64_t pos, std::string_view v, const std::string &tail)
	{
		uint64_t end = pos + v.size() + tail.size();
		if (end > detail::tx_get(&cap_)) {
			rebuild(grown(end), pos, end, [&](char *m) {
				std::memcpy(m + pos, v.data(), v.size());
				std::memcpy(m + pos + v.size(), tail.data(),
					    tail.size());
			});
			return;
		}
		char *d = detail::tx_get(&data_);
		if (!d) /* empty, no block, nothing to write */
			return;
		if (!v.empty())
			detail::check(mnemo_tx_store(d + pos, v.data(), v.size()));
		if (!tail.empty())
			detail::check(mnemo_tx_store(d + pos + v.size(),
						     tail.data(), tail.size()));
		set_end(d, end);
	}

	/* compare(s) in a transaction, chunk by chunk. */
	int cmp(std::string_view s) const
	{
		int r = 0;
		transaction([&] {
			uint64_t n = detail::tx_get(&size_);
			const char *d = detail::tx_get(&data_);
			uint64_t k = n < s.size() ? n : s.size();
			char buf[256];
			for (uint64_t off = 0; off < k; off += sizeof(buf)) {
				size_t c = k - off < sizeof(buf)
						   ? (size_t)(k - off)
						   : sizeof(buf);
				detail::check(mnemo_tx_load(buf, d + off, c));
				r = std::char_traits<char>::compare(
					buf, s.data() + off, c);
				if (r)
					return;
			}
			r = n < s.size() ? -1 : n > s.size() ? 1 : 0;
		});
		return r;
	}

	char *data_ = nullptr;
	uint64_t size_ = 0;
	uint64_t cap_ = 0;
};

/* Comparisons with a std::string_view (or anything that converts to one:
 * const char *, std::string) on either side, and between two strings;
 * free functions, so that a container's element reference that converts
 * to const mnemo::string & compares too (v[k] == "key").  Equality
 * compares the chars only when the sizes are equal. */
inline bool operator==(const string &a, std::string_view b)
{
	return a.size() == b.size() && a.compare(b) == 0;
}
inline bool operator==(std::string_view a, const string &b)
{
	return b == a;
}
inline bool operator==(const string &a, const string &b)
{
	return a.size() == b.size() && a.compare(b) == 0;
}
inline bool operator!=(const string &a, std::string_view b)
{
	return !(a == b);
}
inline bool operator!=(std::string_view a, const string &b)
{
	return !(b == a);
}
inline bool operator!=(const string &a, const string &b)
{
	return a.compare(b) != 0;
}
inline bool operator<(const string &a, std::string_view b)
{
	return a.compare(b) < 0;
}
inline bool operator<(std::string_view a, const string &b)
{
	return b.compare(a) > 0;
}
inline bool operator<(const string &a, const string &b)
{
	return a.compare(b) < 0;
}

} // namespace mnemo

#endif /* MNEMOSYNE_STRING_HPP */
