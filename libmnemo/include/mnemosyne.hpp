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
 * pool is an RAII pool handle whose root<T>(name) is the named root
 * object (zero-filled in a transaction the first time); make_persistent
 * and delete_persistent create and destroy objects in a pool's heap, in
 * a transaction (an abort frees); allocator<T> is a standard allocator
 * over a pool's heap.  mnemosyne_vector.hpp has a persistent vector,
 * mnemosyne_string.hpp a persistent string, mnemosyne_unordered_map.hpp
 * a persistent hash map.
 *
 * Needs C++17 and exceptions.  Errors throw mnemo::error (code() is the
 * negative errno-style code, what() the libmnemo message).
 */
#ifndef MNEMOSYNE_HPP
#define MNEMOSYNE_HPP 1

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
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

namespace detail {
/* Transactional reads and writes of persistent fields (outside a
 * transaction a read is plain, a write throws -EINVAL). */
template <class T> T tx_get(const T *p)
{
	T v;
	check(mnemo_tx_load(&v, p, sizeof(T)));
	return v;
}
template <class T> void tx_set(T *p, const T &v)
{
	check(mnemo_tx_store(p, &v, sizeof(T)));
}
/* A block for one T in pool's heap (inside the caller's transaction);
 * throws if there is none. */
template <class T> void *alloc_for(mnemo_pool *pool, unsigned flags)
{
	void *m = mnemo_heap_alloc(pool, sizeof(T),
				   alignof(T) > 16 ? alignof(T) : 0, flags);
	if (!m)
		raise(-(errno ? errno : ENOMEM));
	return m;
}
/* Serializes the making of named roots, of every type, in this process
 * (one pool has one process). */
inline std::mutex &root_mutex()
{
	static std::mutex m;
	return m;
}
/* Whether T has the scan hint mnemo_prefetch() (mnemo::string). */
template <class T, class = void> struct has_prefetch : std::false_type {};
template <class T>
struct has_prefetch<T, std::void_t<decltype(std::declval<const T &>()
						  .mnemo_prefetch())>>
	: std::true_type {};
} // namespace detail

/*
 * Whether an all-zero T is a valid, empty T: true of trivial types, and
 * declared by the library's containers (static constexpr bool
 * mnemo_zero_is_empty = true).  root<T> needs it.
 */
template <class T, class = void> struct zero_is_empty
	: std::bool_constant<std::is_trivially_default_constructible_v<T> &&
			     std::is_trivially_copyable_v<T>> {};
template <class T>
struct zero_is_empty<T, std::void_t<decltype(T::mnemo_zero_is_empty)>>
	: std::bool_constant<T::mnemo_zero_is_empty> {};

/* Create a T in pool's heap (in a transaction: an abort frees it).  The
 * constructor's own plain stores go to the fresh block, which nothing
 * else can reach before the commit, and are flushed: a transaction that
 * allocated makes them durable before its record (mnemo_heap_alloc(3)),
 * with one fence for all its fresh blocks.  A conflict runs the
 * transaction again, forwarding the arguments again: pass lvalues where
 * a move would empty one. */
template <class T, class... A> T *make_persistent_in(mnemo_pool *pool, A &&...a)
{
	T *obj = nullptr;
	transaction([&] {
		void *m = detail::alloc_for<T>(pool, 0);
		obj = ::new (m) T(std::forward<A>(a)...);
		mnemo_flush(obj, sizeof(T));
	});
	return obj;
}

/* make_persistent_in the default pool (mnemo_default_pool()). */
template <class T, class... A> T *make_persistent(A &&...a)
{
	mnemo_pool *pool = mnemo_default_pool();
	if (!pool)
		detail::raise(-errno);
	return make_persistent_in<T>(pool, std::forward<A>(a)...);
}

/* Destroy and free obj (in a transaction: it takes effect at commit).
 * T's destructor must change persistent memory only through the
 * transaction (it runs again if a conflict reruns it). */
template <class T> void delete_persistent(T *obj)
{
	if (!obj)
		return;
	transaction([&] {
		obj->~T();
		detail::check(mnemo_heap_free(obj, 0));
	});
}

/*
 * A standard allocator (std::allocator_traits) over a pool's heap.
 * allocate and deallocate are each a transaction, joining the caller's as
 * make_persistent does: inside one, an abort frees what it allocated and
 * a deallocation takes effect at commit.  The blocks are the pool's, but
 * a std container's stores to them are not logged: a container whose
 * state must survive a crash writes it in transactions (or is a mnemo::
 * container).  Allocators compare equal when they use the same pool.
 */
template <class T> class allocator {
public:
	using value_type = T;
	/* The default pool (mnemo_default_pool()); throws if none. */
	allocator() : pool_(mnemo_default_pool())
	{
		if (!pool_)
			detail::raise(-(errno ? errno : EINVAL));
	}
	explicit allocator(mnemo_pool *pool) noexcept : pool_(pool) {}
	template <class U>
	allocator(const allocator<U> &o) noexcept : pool_(o.get_pool())
	{
	}

	T *allocate(size_t n)
	{
		if (n > SIZE_MAX / sizeof(T))
			throw std::bad_array_new_length();
		void *m = nullptr;
		transaction([&] {
			m = mnemo_heap_alloc(pool_, n * sizeof(T),
					     alignof(T) > 16 ? alignof(T) : 0, 0);
			if (!m)
				detail::raise(-(errno ? errno : ENOMEM));
		});
		return static_cast<T *>(m);
	}
	/* Never throws (a container's destructor calls it, maybe while an
	 * exception unwinds): in a transaction that has already failed the
	 * free is skipped; the abort frees what that transaction
	 * allocated, and the leak collection anything older. */
	void deallocate(T *p, size_t) noexcept
	{
		if (mnemo_tx_depth() > 0) {
			if (mnemo_tx_status() == 0)
				mnemo_heap_free(p, 0);
			return;
		}
		for (int rc = -EAGAIN; rc == -EAGAIN;) {
			if (mnemo_tx_begin())
				return;
			mnemo_heap_free(p, 0);
			rc = mnemo_tx_commit();
		}
	}
	mnemo_pool *get_pool() const noexcept { return pool_; }

	template <class U> bool operator==(const allocator<U> &o) const noexcept
	{
		return pool_ == o.get_pool();
	}
	template <class U> bool operator!=(const allocator<U> &o) const noexcept
	{
		return pool_ != o.get_pool();
	}

private:
	mnemo_pool *pool_;
};

/* An open pool; closed by the destructor (errors there are dropped:
 * call close() to see them). */
class pool {
public:
	static pool open(const char *path, unsigned flags = 0)
	{
		mnemo_pool *p = nullptr;
		detail::check(mnemo_pool_open(path, flags, &p));
		return pool(p);
	}
	static pool create(const char *path, size_t size, unsigned flags = 0)
	{
		mnemo_pool *p = nullptr;
		detail::check(mnemo_pool_create(path, size, nullptr, flags, &p));
		return pool(p);
	}
	/* Open path, or create it with size bytes if it does not exist. */
	static pool open_or_create(const char *path, size_t size)
	{
		mnemo_pool *p = nullptr;
		int rc = mnemo_pool_open(path, 0, &p);
		if (rc == -ENOENT) {
			rc = mnemo_pool_create(path, size, nullptr, 0, &p);
			if (rc == -EEXIST) /* made by another process meanwhile */
				rc = mnemo_pool_open(path, 0, &p);
		}
		detail::check(rc);
		return pool(p);
	}

	pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
	pool &operator=(pool &&o) noexcept
	{
		if (this != &o) {
			if (p_)
				mnemo_pool_close(&p_);
			p_ = std::exchange(o.p_, nullptr);
		}
		return *this;
	}
	pool(const pool &) = delete;
	pool &operator=(const pool &) = delete;
	~pool()
	{
		if (p_)
			mnemo_pool_close(&p_);
	}
	void close()
	{
		if (p_)
			detail::check(mnemo_pool_close(&p_));
	}
	mnemo_pool *get() const noexcept { return p_; }

	/* The object the named root points to.  The first time, a zero-filled
	 * T is allocated in a transaction and the root bound to it; a crash
	 * between the two leaks the block, which the next open collects.
	 * Binding a root is not transactional, so root<T> refuses to run
	 * inside a transaction (-EINVAL); threads making the same root are
	 * serialized (one pool has one process). */
	template <class T> T &root(const char *name)
	{
		static_assert(zero_is_empty<T>::value,
			      "root<T>: an all-zero T must be a valid T");
		if (mnemo_tx_depth() > 0)
			detail::raise(-EINVAL);
		std::lock_guard<std::mutex> g(detail::root_mutex());
		void *obj = nullptr;
		int rc = mnemo_root_get(p_, name, &obj);
		if (rc == -ENOENT) {
			transaction([&] {
				obj = detail::alloc_for<T>(p_, MNEMO_HEAP_ZERO);
			});
			rc = mnemo_root_set(p_, name, obj);
		}
		detail::check(rc);
		return *static_cast<T *>(obj);
	}

	template <class T, class... A> T *make_persistent(A &&...a)
	{
		return make_persistent_in<T>(p_, std::forward<A>(a)...);
	}

private:
	explicit pool(mnemo_pool *p) : p_(p) {}
	mnemo_pool *p_ = nullptr;
};

} // namespace mnemo

#endif /* MNEMOSYNE_HPP */
