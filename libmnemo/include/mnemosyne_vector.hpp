/*
 * mnemosyne_vector.hpp -- mnemo::vector<T>: a vector of trivially copyable
 * T (or of relocatable T: mnemo::string) that lives in a pool, with the
 * members and meaning of std::vector.
 *
 *   mnemo::pool pool = mnemo::pool::open_or_create("app.pool", 64 << 20);
 *   auto &v = pool.root<mnemo::vector<uint64_t>>("numbers");
 *   v.push_back(42);            // one durable transaction
 *   uint64_t x = v[0];          // a read (transactional inside one)
 *
 * Invariants (in the pool): data_ points to a heap block of cap_ elements
 * (or is null with cap_ 0); size_ <= cap_; elements [0, size_) are the
 * vector's.  Every mutating member is one durable transaction, joining
 * the caller's if one is open, so a crash leaves the vector as it was
 * before or after the call.  The object itself must live in a pool (in a
 * root, a region, or made with make_persistent): an all-zero vector is
 * empty.
 *
 * Reading: inside a transaction every read is isolated from other
 * threads; outside one, size(), operator[] and the iterators read plain
 * memory, which another thread's commit may change under them.
 * Iterators and data() are invalidated by anything that may reallocate
 * (push_back or resize beyond capacity(), reserve), as with std::vector;
 * data() and the iterators read memory as it is, not the transaction's
 * own uncommitted writes: inside a transaction, use operator[].
 *
 * Relocatable elements (relocatable<T> below, mnemo::string): operator[]
 * const and at() const return const T &; the reference assigns anything
 * T assigns from (v[k] = std::string_view(s)), each assignment one
 * transaction that finds the element inside it, and its operator-> and
 * get() give the element itself (v[k]->append(...)); push_back takes
 * what T assigns from; the elements that pop_back, resize, clear and the
 * destructor remove are reset (mnemo_reset: their blocks freed), so
 * elements [size_, cap_) are all zero.
 */
#ifndef MNEMOSYNE_VECTOR_HPP
#define MNEMOSYNE_VECTOR_HPP 1

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "mnemosyne.hpp"

namespace mnemo {

/*
 * Whether T may be a vector element though not trivially copyable: T
 * declares static constexpr bool mnemo_relocatable = true (mnemo::string
 * does) when its bytes may move to another address as they are (the
 * vector's growth copies them), an all-zero T is an empty one, its member
 * mnemo_reset() frees what the T owns and leaves it all zero, and its
 * assignments and mnemo_reset() are each a transaction (joining the
 * caller's).
 */
template <class T, class = void> struct relocatable : std::false_type {};
template <class T>
struct relocatable<T, std::void_t<decltype(T::mnemo_relocatable)>>
	: std::bool_constant<T::mnemo_relocatable> {};

template <class T> class vector {
	static constexpr bool kPlain = std::is_trivially_copyable_v<T>;
	static_assert(kPlain || relocatable<T>::value,
		      "mnemo::vector<T> needs a trivially copyable T or a "
		      "relocatable one (mnemo::string)");
	static_assert(alignof(T) <= 16, "heap blocks are 16-byte aligned");
	/* Enables a member for relocatable elements only. */
	template <class W>
	using if_relocatable = std::enable_if_t<!std::is_trivially_copyable_v<W>>;

public:
	using value_type = T;
	using size_type = size_t;
	using const_iterator = const T *;
	/* What reading an element gives: a copy of a trivially copyable T,
	 * a reference to a relocatable one. */
	using const_reference = std::conditional_t<kPlain, T, const T &>;
	static constexpr bool mnemo_zero_is_empty = true;

	/* Element i: reading converts (as operator[] const reads);
	 * assigning is one transaction that finds the element (and checks
	 * the index) inside it, so a reallocation by another thread cannot
	 * come in between. */
	class reference {
	public:
		operator const_reference() const
		{
			return std::as_const(*v_)[i_];
		}
		reference &operator=(const T &x) { return assign(x); }
		reference &operator=(const reference &o)
		{
			return assign(const_reference(o));
		}
		/* Relocatable T: whatever T assigns from. */
		template <class U, class W = T, class = if_relocatable<W>>
		reference &operator=(const U &x)
		{
			return assign(x);
		}
		/* Relocatable T: the element (index checked), to call its
		 * members; a reallocation of the vector invalidates it. */
		template <class W = T, class = if_relocatable<W>> W &get() const
		{
			v_->check_index(i_);
			return v_->data_mut()[i_];
		}
		template <class W = T, class = if_relocatable<W>>
		W *operator->() const
		{
			return &get();
		}

	private:
		template <class U> reference &assign(const U &x)
		{
			transaction([&] {
				v_->check_index(i_);
				T *e = v_->data_mut() + i_;
				if constexpr (kPlain)
					detail::tx_set(e, x);
				else
					*e = x;
			});
			return *this;
		}
		friend class vector;
		reference(vector *v, size_t i) : v_(v), i_(i) {}
		vector *v_;
		size_t i_;
	};

	vector() = default;
	vector(const vector &) = delete;
	vector &operator=(const vector &) = delete;
	/* Frees the storage (in a transaction); for delete_persistent.  A
	 * failure there leaves the block to the leak collection. */
	~vector()
	{
		try {
			if (detail::tx_get(&data_))
				transaction([&] { release(); });
		} catch (const error &) {
		}
	}

	size_t size() const { return (size_t)detail::tx_get(&size_); }
	size_t capacity() const { return (size_t)detail::tx_get(&cap_); }
	bool empty() const { return size() == 0; }
	const T *data() const { return detail::tx_get(&data_); }
	const_iterator begin() const { return data(); }
	const_iterator end() const { return data() + size(); }

	reference operator[](size_t i) { return reference(this, i); }
	const_reference operator[](size_t i) const
	{
		if constexpr (kPlain)
			return detail::tx_get(data() + i);
		else
			return data()[i];
	}
	reference at(size_t i)
	{
		check_index(i);
		return (*this)[i];
	}
	const_reference at(size_t i) const
	{
		check_index(i);
		return (*this)[i];
	}
	reference front() { return at(0); }
	reference back() { return at(size() - 1); }

	void push_back(const T &v) { push(v); }
	/* Relocatable T: a new element assigned from v. */
	template <class U, class W = T, class = if_relocatable<W>>
	void push_back(const U &v)
	{
		push(v);
	}
	void pop_back()
	{
		transaction([&] {
			uint64_t n = detail::tx_get(&size_);
			if (n == 0)
				throw std::out_of_range("mnemo::vector::pop_back: "
							"empty");
			reset(n - 1, n);
			detail::tx_set(&size_, n - 1);
		});
	}
	/* New elements are value-initialized (zero).  Beyond capacity() they
	 * are a fresh zeroed block; within it, the zeroing is logged (so it
	 * must fit the transaction log: MNEMO_TX_LOG_SIZE). */
	void resize(size_t n)
	{
		transaction([&] {
			uint64_t old = detail::tx_get(&size_);
			uint64_t cap = detail::tx_get(&cap_);
			uint64_t upto = n < cap ? n : cap; /* within capacity */
			reset(n, old);
			if (upto > old)
				detail::check(mnemo_tx_memset(
					data_mut() + old, 0,
					(upto - old) * sizeof(T)));
			if (n > cap)
				grow(n);
			detail::tx_set(&size_, (uint64_t)n);
		});
	}
	void reserve(size_t n)
	{
		transaction([&] {
			if (n > detail::tx_get(&cap_))
				grow(n);
		});
	}
	void clear()
	{
		transaction([&] {
			reset(0, detail::tx_get(&size_));
			detail::tx_set(&size_, (uint64_t)0);
		});
	}

private:
	T *data_mut() const { return detail::tx_get(&data_); }

	template <class U> void push(const U &v)
	{
		transaction([&] {
			uint64_t n = detail::tx_get(&size_);
			if (n == detail::tx_get(&cap_))
				grow(n + 1);
			if constexpr (kPlain)
				detail::tx_set(data_mut() + n, v);
			else /* element n is all zero: an empty T */
				data_mut()[n] = v;
			detail::tx_set(&size_, n + 1);
		});
	}

	/* Relocatable T: reset elements [from, to), which are leaving. */
	void reset(uint64_t from, uint64_t to)
	{
		if constexpr (!kPlain) {
			T *d = data_mut();
			for (uint64_t i = from; i < to; i++)
				d[i].mnemo_reset();
		}
	}

	void check_index(size_t i) const
	{
		if (i >= size())
			throw std::out_of_range("mnemo::vector::at: index out "
						"of range");
	}

	/* Move the elements to a new zeroed block of at least `need`
	 * elements (doubling); the old one is freed at commit.  The new
	 * block is this transaction's own until it commits, so the copy is
	 * made with plain stores (logging it would bound a vector by the
	 * log's size) and flushed: a transaction that allocated fences
	 * before writing its record (mnemo_heap_alloc(3)), as an early
	 * write-back may make the record durable before the copy.  One
	 * more fence per transaction that reallocates, whatever it
	 * reallocates. */
	void grow(uint64_t need)
	{
		uint64_t cap = detail::tx_get(&cap_);
		uint64_t n = detail::tx_get(&size_);
		uint64_t want = cap * 2 > need ? cap * 2 : need;
		if (want < 4)
			want = 4;
		if (want > SIZE_MAX / sizeof(T))
			throw std::length_error("mnemo::vector: too large");
		T *old = detail::tx_get(&data_);
		detail::check(mnemo_heap_alloc_to((void **)&data_,
						  want * sizeof(T),
						  MNEMO_HEAP_ZERO));
		T *m = detail::tx_get(&data_);
		/* A transactional read: the elements this transaction wrote
		 * are still in its write set. */
		if (n) {
			detail::check(mnemo_tx_load(m, old, n * sizeof(T)));
			mnemo_flush(m, n * sizeof(T)); /* durable before
							* the record */
		}
		detail::tx_set(&cap_, want);
		if (old)
			detail::check(mnemo_heap_free(old, 0));
	}

	void release()
	{
		reset(0, detail::tx_get(&size_));
		T *d = detail::tx_get(&data_);
		if (d)
			detail::check(mnemo_heap_free(d, 0));
		detail::tx_set(&data_, (T *)nullptr);
		detail::tx_set(&size_, (uint64_t)0);
		detail::tx_set(&cap_, (uint64_t)0);
	}

	T *data_ = nullptr;
	uint64_t size_ = 0;
	uint64_t cap_ = 0;
};

} // namespace mnemo

#endif /* MNEMOSYNE_VECTOR_HPP */
