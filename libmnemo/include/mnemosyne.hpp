/*
 * mnemosyne.hpp -- header-only C++ wrappers of libmnemo's transactions.
 *
 *   mnemo::transaction([&] { acct[a] = acct[a] - 5; acct[b] = acct[b] + 5; });
 *
 * transaction(f) runs f as one durable transaction, again from the start
 * after a conflict; an exception leaving f rolls everything back and is
 * rethrown.  tx_scope is the RAII form (abort unless commit() is called;
 * no automatic retry: a conflict throws mnemo::conflict).  p<T> is a field
 * of persistent memory whose assignment is logged and whose reads see the
 * transaction's own writes.  Nested transactions flatten: an abort at any
 * depth aborts the outermost one.
 *
 * Needs C++17 and exceptions.  Errors throw mnemo::error (code() is the
 * negative errno-style code, what() the libmnemo message).
 */
#ifndef MNEMOSYNE_HPP
#define MNEMOSYNE_HPP 1

#include <cerrno>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "mnemosyne.h"

namespace mnemo {

class error : public std::runtime_error {
public:
	explicit error(int code)
		: std::runtime_error(mnemo_errormsg()), code_(code)
	{
	}
	int code() const noexcept { return code_; }

private:
	int code_;
};

/* The transaction conflicted with another and was rolled back. */
class conflict : public error {
public:
	explicit conflict(int code) : error(code) {}
};

namespace detail {
[[noreturn]] inline void raise(int rc)
{
	if (rc == -EAGAIN)
		throw conflict(rc);
	throw error(rc);
}
inline void check(int rc)
{
	if (rc)
		raise(rc);
}
} // namespace detail

/* Run body() as a transaction (joining the caller's, if any). */
template <class F> void transaction(F &&body)
{
	if (mnemo_tx_depth() > 0) { /* flattened into the outer one */
		detail::check(mnemo_tx_status());
		std::forward<F>(body)();
		return;
	}
	for (;;) {
		detail::check(mnemo_tx_begin());
		try {
			body();
		} catch (const conflict &) {
			mnemo_tx_abort();
			continue;
		} catch (...) {
			mnemo_tx_abort();
			throw;
		}
		int rc = mnemo_tx_commit();
		if (rc == 0)
			return;
		if (rc != -EAGAIN)
			detail::raise(rc);
	}
}

/* RAII: begins in the constructor, aborts in the destructor unless
 * commit() succeeded. */
class tx_scope {
public:
	tx_scope() { detail::check(mnemo_tx_begin()); }
	~tx_scope()
	{
		if (!done_)
			mnemo_tx_abort();
	}
	void commit()
	{
		done_ = true;
		detail::check(mnemo_tx_commit());
	}
	tx_scope(const tx_scope &) = delete;
	tx_scope &operator=(const tx_scope &) = delete;

private:
	bool done_ = false;
};

/*
 * A field in persistent memory.  Trivial, so it can be placed in a region
 * as is.  Reads outside a transaction are plain reads; assignments outside
 * one throw (-EINVAL).
 */
template <class T> class p {
	static_assert(std::is_trivially_copyable_v<T>,
		      "p<T> needs a trivially copyable T");

public:
	p() = default;
	p(const p &) = delete;

	T get() const
	{
		T out;
		detail::check(mnemo_tx_load(&out, &v_, sizeof(T)));
		return out;
	}
	operator T() const { return get(); }

	p &operator=(const T &x)
	{
		detail::check(mnemo_tx_store(&v_, &x, sizeof(T)));
		return *this;
	}
	p &operator=(const p &o) { return *this = o.get(); }

	template <class U = T, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	p &operator+=(const T &x) { return *this = get() + x; }
	template <class U = T, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	p &operator-=(const T &x) { return *this = get() - x; }
	template <class U = T, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	p &operator++() { return *this += 1; }
	template <class U = T, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	p &operator--() { return *this -= 1; }

	/* The raw storage, for reading outside any transaction. */
	const T &raw() const { return v_; }

private:
	T v_;
};

} // namespace mnemo

#endif /* MNEMOSYNE_HPP */
