/*
 * mnemosyne_map.hpp -- mnemo::map<K, V, Compare>: an ordered map that lives
 * in a pool, a B+-tree, with the members and meaning of std::map.
 *
 *   mnemo::pool pool = mnemo::pool::open_or_create("app.pool", 64 << 20);
 *   auto &m = pool.root<mnemo::map<uint64_t, mnemo::string>>("index");
 *   m[42] = std::string_view("answer");   // one durable transaction
 *   for (auto it = m.lower_bound(40); it != m.end(); ++it) ...
 *
 * Keys: trivially copyable K ordered by Compare (stateless), or
 * mnemo::string ordered as std::string (looked up by std::string_view).
 * Values: trivially copyable V, stored in the leaf up to kInlineMax bytes
 * and out of line above (the leaf holds a pointer to a heap block of one
 * V: big values would cut a leaf's fanout to a few entries and make every
 * shift and split copy kilobytes), or relocatable V (mnemo::string),
 * stored in the leaf.
 *
 * Layout (in the pool).  The map object: root_, head_ and tail_ (the
 * first and last leaf), size_, height_ (0: empty; 1: the root is a leaf),
 * and two scratch slots that are all zero between operations.  Nodes are
 * heap blocks of at most kNodeBytes (256, four cache lines) unless a
 * node must grow to hold kMinFanout slots:
 *   leaf   n, level 0, prev, next, key[kLeafCap], val[kLeafCap]
 *   inner  n, level, key[kInnerCap], kid[kInnerCap + 1]
 * Invariants: keys of a node strictly ascending; in an inner node the
 * keys of kid[i] are >= key[i-1] and < key[i]; every leaf is at depth
 * height_ - 1; leaves are chained in key order by next and prev, from
 * head_ to tail_; a node other than the root holds at least half its
 * capacity (kLeafMin, kInnerMin); the root leaf holds at least one entry
 * and the root inner node at least one key; slots at and past n are all
 * zero; size_ counts the entries.  Inner keys are copies (a string key
 * owns its own block there).
 *
 * Every mutating member is one durable transaction, joining the caller's
 * if one is open: a crash, an abort or an exception leaves the map as it
 * was before or after the call.  Read members (find, lower_bound, at,
 * ...) run in a transaction too, so they see one consistent tree whatever
 * other threads commit; two threads may use one map at once, each inside
 * its transactions (writers conflict on size_ and are serialized by the
 * STM's retries).  Nodes a transaction creates are written through it
 * (logged, about 256 bytes a node), never with plain stores, so a
 * concurrent reader holding a stale pointer is stopped by the STM's
 * validation rather than reading fresh memory.
 *
 * Iterators are (leaf, index): any insertion or erasure may split, merge
 * or rebalance leaves and move entries, so it invalidates every iterator
 * and every reference into the map (as a std::vector's insert does);
 * erase(it) returns a valid iterator to the next entry.  Iterating outside
 * a transaction reads a word at a time: do it only when no other thread
 * writes; scan inside a transaction to see one consistent state.
 */
#ifndef MNEMOSYNE_MAP_HPP
#define MNEMOSYNE_MAP_HPP 1

#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mnemosyne.hpp"
#include "mnemosyne_string.hpp"
#include "mnemosyne_vector.hpp"

namespace mnemo {

template <class K, class V, class Compare = std::less<K>> class map {
	static constexpr bool kStrKey = std::is_same_v<K, string>;
	static constexpr bool kPlainV = std::is_trivially_copyable_v<V>;
	static_assert(std::is_trivially_copyable_v<K> || kStrKey,
		      "mnemo::map keys: trivially copyable or mnemo::string");
	static_assert(kPlainV || relocatable<V>::value,
		      "mnemo::map values: trivially copyable or relocatable");
	static_assert(!kStrKey || std::is_same_v<Compare, std::less<K>>,
		      "mnemo::string keys are ordered as std::string");
	static_assert(std::is_empty_v<Compare>,
		      "a comparator in persistent memory must be stateless");
	static_assert(alignof(K) <= 8 && alignof(V) <= 16,
		      "keys align to 8 bytes at most, values to 16");

public:
	/* Trivially copyable values above this size are stored out of
	 * line. */
	static constexpr size_t kInlineMax = 32;
	static constexpr size_t kNodeBytes = 256;
	static constexpr size_t kMinFanout = 4;

private:
	static constexpr bool kOutOfLine =
		kPlainV && (sizeof(V) > kInlineMax || alignof(V) > 8);
	/* The bytes of a slot: moved as they are (keys and values are
	 * trivially copyable or relocatable). */
	template <class T> struct raw {
		alignas(T) unsigned char b[sizeof(T)];
	};
	using kslot = raw<K>;
	using vslot = std::conditional_t<kOutOfLine, raw<V *>, raw<V>>;
	static constexpr size_t fit(size_t hdr, size_t per, size_t extra)
	{
		size_t n = (kNodeBytes - hdr - extra) / per;
		return n < kMinFanout ? kMinFanout : n;
	}

public:
	static constexpr size_t kLeafCap =
		fit(24, sizeof(kslot) + sizeof(vslot), 0);
	static constexpr size_t kInnerCap = fit(8, sizeof(kslot) + 8, 8);
	static constexpr size_t kLeafMin = kLeafCap / 2;
	static constexpr size_t kInnerMin = kInnerCap / 2;

	using key_type = K;
	using mapped_type = V;
	using size_type = size_t;
	using key_compare = Compare;
	/* What lookups take: K, or std::string_view for string keys. */
	using key_arg = std::conditional_t<kStrKey, std::string_view, K>;
	/* A key held outside the map. */
	using key_copy = std::conditional_t<kStrKey, std::string, K>;
	static constexpr bool mnemo_zero_is_empty = true;

private:
	struct leaf {
		uint32_t n, level;
		leaf *prev, *next;
		kslot key[kLeafCap];
		vslot val[kLeafCap];
	};
	struct inner {
		uint32_t n, level;
		kslot key[kInnerCap];
		void *kid[kInnerCap + 1];
	};
	/* One level of a descent: the node and the kid taken. */
	struct step {
		inner *node;
		uint32_t idx;
	};
	static constexpr int kMaxHeight = 48;

public:
	/* A plain value in the map: reads convert, an assignment is one
	 * transaction.  Invalidated as iterators are.  (A template, so that
	 * a map of relocatable values never instantiates it.) */
	template <class W> class basic_value_ref {
	public:
		basic_value_ref(const basic_value_ref &) = default;
		operator W() const { return get(); }
		W get() const { return detail::tx_get(p_); }
		basic_value_ref &operator=(const W &v)
		{
			transaction([&] { detail::tx_set(p_, v); });
			return *this;
		}
		basic_value_ref &operator=(const basic_value_ref &o)
		{
			return *this = o.get();
		}

	private:
		friend class map;
		explicit basic_value_ref(W *p) : p_(p) {}
		W *p_;
	};
	using value_ref = basic_value_ref<V>;
	using first_type = std::conditional_t<kStrKey, const K &, K>;
	using mapped_ref = std::conditional_t<kPlainV, value_ref, V &>;
	using mapped_cref = std::conditional_t<kPlainV, V, const V &>;

	/* What an iterator yields: .first the key (a copy of a plain one),
	 * .second the value (mapped_ref or, const, mapped_cref). */
	template <bool C> struct entry {
		first_type first;
		std::conditional_t<C, mapped_cref, mapped_ref> second;
	};

	template <bool C> class iter {
	public:
		using iterator_category = std::bidirectional_iterator_tag;
		using value_type = entry<C>;
		using reference = entry<C>;
		using difference_type = ptrdiff_t;
		struct pointer {
			entry<C> e;
			entry<C> *operator->() { return &e; }
		};
		iter() = default;
		template <bool D, class = std::enable_if_t<C && !D>>
		iter(const iter<D> &o) : m_(o.m_), lf_(o.lf_), pos_(o.pos_)
		{
		}
		reference operator*() const { return m_->entry_at<C>(lf_, pos_); }
		pointer operator->() const { return pointer{**this}; }
		iter &operator++()
		{
			if (++pos_ >= detail::tx_get(&lf_->n)) {
				lf_ = detail::tx_get(&lf_->next);
				pos_ = 0;
				prefetch_leaf(lf_);
			}
			return *this;
		}
		iter &operator--()
		{
			if (!lf_)
				last(detail::tx_get(&m_->tail_));
			else if (pos_ == 0)
				last(detail::tx_get(&lf_->prev));
			else
				pos_--;
			return *this;
		}
		iter operator++(int) { iter t = *this; ++*this; return t; }
		iter operator--(int) { iter t = *this; --*this; return t; }
		bool operator==(const iter &o) const
		{
			return lf_ == o.lf_ && pos_ == o.pos_;
		}
		bool operator!=(const iter &o) const { return !(*this == o); }

	private:
		friend class map;
		void last(leaf *l)
		{
			lf_ = l;
			pos_ = detail::tx_get(&l->n) - 1;
		}
		template <bool> friend class iter;
		iter(const map *m, leaf *l, uint32_t p) : m_(m), lf_(l), pos_(p) {}
		const map *m_ = nullptr;
		leaf *lf_ = nullptr;
		uint32_t pos_ = 0;
	};
	using iterator = iter<false>;
	using const_iterator = iter<true>;

	/* m[k]: assigning is insert_or_assign(k, x), one transaction;
	 * reading (or get()) inserts a default value if k is absent, as
	 * std::map's does. */
	class slot_ref {
	public:
		slot_ref(const slot_ref &) = default;
		template <class U> slot_ref &operator=(const U &x)
		{
			m_->insert_or_assign(key_arg(k_), x);
			return *this;
		}
		slot_ref &operator=(const slot_ref &o)
		{
			if constexpr (kPlainV)
				return *this = o.get();
			else
				return *this = o.get().str();
		}
		/* The value: a copy of a plain one, the element itself (valid
		 * until the map's next mutation) of a relocatable one. */
		mapped_ref get() const
		{
			return m_->try_emplace(key_arg(k_)).first->second;
		}
		operator mapped_cref() const { return get(); }
		template <class W = V, class = std::enable_if_t<
					       !std::is_trivially_copyable_v<W>>>
		W *operator->() const
		{
			return &get();
		}

	private:
		friend class map;
		slot_ref(map *m, key_arg k) : m_(m), k_(k) {}
		map *m_;
		key_copy k_;
	};

	map() = default;
	map(const map &) = delete;
	map &operator=(const map &) = delete;
	/* Frees every node (in a transaction); for delete_persistent. */
	~map()
	{
		try {
			if (detail::tx_get(&root_))
				clear();
		} catch (const error &) {
		}
	}

	size_t size() const { return (size_t)detail::tx_get(&size_); }
	bool empty() const { return size() == 0; }
	/* Levels of the tree (0 when empty). */
	unsigned height() const { return (unsigned)detail::tx_get(&height_); }

	iterator begin() { return {this, detail::tx_get(&head_), 0}; }
	iterator end() { return {this, nullptr, 0}; }
	const_iterator begin() const { return {this, detail::tx_get(&head_), 0}; }
	const_iterator end() const { return {this, nullptr, 0}; }
	const_iterator cbegin() const { return begin(); }
	const_iterator cend() const { return end(); }

	iterator find(key_arg k) { return mut(std::as_const(*this).find(k)); }
	const_iterator find(key_arg k) const
	{
		const_iterator it;
		transaction([&] {
			it = lower_bound(k);
			if (it != end() && cmp_at(it.lf_->key + it.pos_, k) != 0)
				it = end();
		});
		return it;
	}
	size_t count(key_arg k) const { return find(k) != end(); }
	bool contains(key_arg k) const { return count(k) != 0; }
	iterator lower_bound(key_arg k) { return mut(std::as_const(*this).lower_bound(k)); }
	iterator upper_bound(key_arg k) { return mut(std::as_const(*this).upper_bound(k)); }
	const_iterator lower_bound(key_arg k) const { return bound(k, false); }
	const_iterator upper_bound(key_arg k) const { return bound(k, true); }

	/* Throws std::out_of_range if k is absent. */
	mapped_cref at(key_arg k) const
	{
		const_iterator it = find(k);
		if (it == end())
			throw std::out_of_range("mnemo::map::at: no such key");
		return it->second;
	}
	mapped_ref at(key_arg k)
	{
		iterator it = find(k);
		if (it == end())
			throw std::out_of_range("mnemo::map::at: no such key");
		return it->second;
	}
	slot_ref operator[](key_arg k) { return slot_ref(this, k); }

	/* The value of an inserted entry is V(args...) for a plain V, or
	 * assigned from the one argument for a relocatable one (empty
	 * without). */
	template <class... A>
	std::pair<iterator, bool> try_emplace(key_arg k, const A &...a)
	{
		static_assert(sizeof...(A) <= 1 || kPlainV,
			      "a relocatable value is assigned from one argument");
		std::pair<iterator, bool> r;
		transaction([&] {
			auto args = std::make_tuple(detach(a)...);
			r = place(k);
			if (r.second)
				std::apply([&](const auto &...d) {
					set_value(r.first, d...);
				}, args);
		});
		return r;
	}
	template <class... A>
	std::pair<iterator, bool> emplace(key_arg k, const A &...a)
	{
		return try_emplace(k, a...);
	}
	/* A value argument that may be an element of this very map
	 * (m.insert_or_assign(9, m.at(8))): read into a copy before place()
	 * moves entries, which invalidates every reference into a leaf. */
	template <class U> static decltype(auto) detach(const U &x)
	{
		if constexpr (std::is_same_v<U, string>)
			return std::string(x.str());
		else if constexpr (kPlainV && std::is_convertible_v<const U &, V>)
			return V(x);
		else
			return (x); /* a view, a std::string, ...: not ours */
	}

	/* kv.first the key, kv.second the value (a std::pair). */
	template <class P> std::pair<iterator, bool> insert(const P &kv)
	{
		return try_emplace(key_arg(kv.first), kv.second);
	}
	template <class U>
	std::pair<iterator, bool> insert_or_assign(key_arg k, const U &x)
	{
		std::pair<iterator, bool> r;
		transaction([&] {
			const auto &v = detach(x);
			r = place(k);
			set_value(r.first, v);
		});
		return r;
	}

	size_t erase(key_arg k)
	{
		size_t n = 0;
		transaction([&] { n = erase_key(k); });
		return n;
	}
	/* Returns the iterator to the entry after it. */
	iterator erase(iterator it)
	{
		iterator next;
		transaction([&] {
			key_copy k = key_of(it.lf_->key + it.pos_);
			erase_key(k);
			next = lower_bound(k);
		});
		return next;
	}
	iterator erase(const_iterator it) { return erase(mut(it)); }

	/* Frees every node; one transaction, whose log grows with the
	 * nodes (and, for string keys or values, the entries). */
	void clear()
	{
		transaction([&] {
			void *r = detail::tx_get(&root_);
			if (r)
				free_tree(r, detail::tx_get(&height_) - 1);
			detail::check(mnemo_tx_memset(&root_, 0, kHeaderBytes));
		});
	}

	/* The invariants above, checked in a transaction: "" if they
	 * hold, else what broke (for tests and tools); *nodes (if given)
	 * gets the number of nodes, each one heap block. */
	std::string mnemo_check(uint64_t *nodes = nullptr) const
	{
		std::string why;
		transaction([&] {
			walk w;
			why = check_all(w);
			if (nodes)
				*nodes = w.nodes;
		});
		return why;
	}

private:
	/* ---- slots ---- */
	static K *key_ptr(const kslot *s) { return (K *)(void *)s->b; }
	/* Scans: start fetching the next leaf and what l's values point to
	 * (a string's chars), before the entries are read one at a time and
	 * each would wait for its own miss.  Plain reads of l, outside the
	 * transaction: only hints, which a stale or torn value cannot make
	 * wrong (a prefetch never faults).  l may be null. */
	static void prefetch_leaf(const leaf *l)
	{
		if (!l)
			return;
		__builtin_prefetch(__atomic_load_n(&l->next, __ATOMIC_RELAXED));
		if constexpr (!kOutOfLine && detail::has_prefetch<V>::value) {
			uint32_t n = __atomic_load_n(&l->n, __ATOMIC_RELAXED);
			for (uint32_t i = 0; i < n && i < kLeafCap; i++)
				((const V *)(const void *)l->val[i].b)
					->mnemo_prefetch();
		}
	}
	static V *val_ptr(const vslot *s)
	{
		if constexpr (kOutOfLine)
			return detail::tx_get((V *const *)(const void *)s->b);
		else
			return (V *)(void *)s->b;
	}
	template <class N> static N load(const N *p)
	{
		N img;
		detail::check(mnemo_tx_load(&img, p, sizeof(N)));
		return img;
	}
	template <class N> static void store(N *p, const N &img)
	{
		detail::check(mnemo_tx_store(p, &img, sizeof(N)));
	}
	template <class T> static void zero(T &x) { std::memset(&x, 0, sizeof(T)); }

	/* <0, 0 or >0 as the key at pool slot s sorts before, with or after
	 * k. */
	static int cmp_at(const kslot *s, const key_arg &k)
	{
		if constexpr (kStrKey) {
			return key_ptr(s)->compare(k);
		} else {
			K a = detail::tx_get(key_ptr(s));
			return Compare{}(a, k) ? -1 : Compare{}(k, a) ? 1 : 0;
		}
	}
	static key_copy key_of(const kslot *s)
	{
		if constexpr (kStrKey)
			return key_ptr(s)->str();
		else
			return detail::tx_get(key_ptr(s));
	}
	/* The first of n slots whose key is >= k (upper: > k). */
	static uint32_t search(const kslot *s, uint32_t n, const key_arg &k,
			       bool upper)
	{
		uint32_t lo = 0, hi = n;
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;
			int c = cmp_at(s + mid, k);
			if (c < 0 || (upper && c == 0))
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}

	/* The raw bytes of a new key: a string's block is made through the
	 * scratch slot, then owned by the bytes, which leave it zero. */
	kslot make_key(const key_arg &k)
	{
		kslot s;
		if constexpr (kStrKey) {
			key_ptr(&skey_)->assign(k);
			detail::check(mnemo_tx_load(&s, &skey_, sizeof(s)));
			detail::check(mnemo_tx_memset(&skey_, 0, sizeof(s)));
		} else {
			std::memcpy(s.b, &k, sizeof(K));
		}
		return s;
	}
	/* A fresh block of `bytes` from this map's pool (an abort frees
	 * it). */
	void *alloc(size_t bytes)
	{
		detail::check(mnemo_heap_alloc_to(&fresh_, bytes, 0));
		void *p = detail::tx_get(&fresh_);
		detail::tx_set(&fresh_, (void *)nullptr);
		return p;
	}
	static void release(void *p) { detail::check(mnemo_heap_free(p, 0)); }
	static void drop_key(kslot *s)
	{
		if constexpr (kStrKey)
			key_ptr(s)->mnemo_reset();
	}
	/* Frees what the entry at pool slot i of lf owns. */
	static void drop_entry(leaf *lf, uint32_t i)
	{
		drop_key(lf->key + i);
		if constexpr (kOutOfLine)
			release(val_ptr(lf->val + i));
		else if constexpr (!kPlainV)
			val_ptr(lf->val + i)->mnemo_reset();
	}

	/* ---- descent ---- */
	/* The leaf where k belongs; path[0, *depth) the inner nodes. */
	leaf *descend(const key_arg &k, step *path, int *depth) const
	{
		void *p = detail::tx_get(&root_);
		uint64_t h = detail::tx_get(&height_);
		if (h > kMaxHeight)
			throw std::length_error("mnemo::map: corrupt height");
		int d = 0;
		for (; h > 1; h--, d++) {
			inner *in = (inner *)p;
			uint32_t n = detail::tx_get(&in->n);
			uint32_t i = search(in->key, n, k, true);
			path[d] = {in, i};
			p = detail::tx_get(&in->kid[i]);
		}
		*depth = d;
		return (leaf *)p;
	}
	const_iterator bound(const key_arg &k, bool upper) const
	{
		const_iterator it = end();
		transaction([&] {
			it = end();
			if (!detail::tx_get(&root_))
				return;
			step path[kMaxHeight];
			int d;
			leaf *lf = descend(k, path, &d);
			uint32_t n = detail::tx_get(&lf->n);
			uint32_t i = search(lf->key, n, k, upper);
			if (i < n)
				it = const_iterator(this, lf, i);
			else
				it = const_iterator(this, detail::tx_get(&lf->next), 0);
			prefetch_leaf(it.lf_);
		});
		return it;
	}
	iterator mut(const_iterator it) { return iterator(this, it.lf_, it.pos_); }

	template <bool C> entry<C> entry_at(leaf *lf, uint32_t i) const
	{
		first_type f = first_at(lf->key + i);
		if constexpr (kPlainV && C)
			return {f, detail::tx_get(val_ptr(lf->val + i))};
		else if constexpr (kPlainV)
			return {f, value_ref(val_ptr(lf->val + i))};
		else
			return {f, *val_ptr(lf->val + i)};
	}
	static first_type first_at(const kslot *s)
	{
		if constexpr (kStrKey)
			return *key_ptr(s);
		else
			return detail::tx_get(key_ptr(s));
	}

	/* ---- insertion ---- */
	/* The entry of k: found, or inserted with a zero (empty) value, or
	 * for an out-of-line value a fresh block to be written. */
	std::pair<iterator, bool> place(const key_arg &k)
	{
		if (!detail::tx_get(&root_))
			new_root_leaf();
		step path[kMaxHeight];
		int d;
		leaf *lf = descend(k, path, &d);
		uint32_t n = detail::tx_get(&lf->n);
		uint32_t i = search(lf->key, n, k, false);
		if (i < n && cmp_at(lf->key + i, k) == 0)
			return {iterator(this, lf, i), false};
		kslot ks = make_key(k);
		vslot vs;
		zero(vs);
		if constexpr (kOutOfLine) {
			V *b = (V *)alloc(sizeof(V));
			std::memcpy(vs.b, &b, sizeof(b));
		}
		iterator at = leaf_insert(lf, i, ks, vs, path, d);
		detail::tx_set(&size_, detail::tx_get(&size_) + 1);
		return {at, true};
	}
	void new_root_leaf()
	{
		leaf *lf = (leaf *)alloc(sizeof(leaf));
		leaf img;
		zero(img);
		store(lf, img);
		detail::tx_set(&root_, (void *)lf);
		detail::tx_set(&head_, lf);
		detail::tx_set(&tail_, lf);
		detail::tx_set(&height_, (uint64_t)1);
	}
	/* Put (ks, vs) at slot i of lf, splitting it if full. */
	iterator leaf_insert(leaf *lf, uint32_t i, const kslot &ks,
			     const vslot &vs, step *path, int d)
	{
		leaf img = load(lf);
		if (img.n < kLeafCap) {
			shift_right(img.key, img.n, i, ks);
			shift_right(img.val, img.n, i, vs);
			img.n++;
			store(lf, img);
			return iterator(this, lf, i);
		}
		/* All kLeafCap + 1 entries in order, then halved. */
		kslot keys[kLeafCap + 1];
		vslot vals[kLeafCap + 1];
		std::memcpy(keys, img.key, sizeof(img.key));
		std::memcpy(vals, img.val, sizeof(img.val));
		shift_right(keys, kLeafCap, i, ks);
		shift_right(vals, kLeafCap, i, vs);
		const uint32_t l = (kLeafCap + 1) / 2, r = kLeafCap + 1 - l;
		leaf *rt = (leaf *)alloc(sizeof(leaf));
		leaf rimg;
		zero(rimg);
		rimg.n = r;
		rimg.prev = lf;
		rimg.next = img.next;
		std::memcpy(rimg.key, keys + l, r * sizeof(kslot));
		std::memcpy(rimg.val, vals + l, r * sizeof(vslot));
		zero(img.key);
		zero(img.val);
		std::memcpy(img.key, keys, l * sizeof(kslot));
		std::memcpy(img.val, vals, l * sizeof(vslot));
		img.n = l;
		img.next = rt;
		if (rimg.next)
			detail::tx_set(&rimg.next->prev, rt);
		else
			detail::tx_set(&tail_, rt);
		store(lf, img);
		store(rt, rimg);
		kslot sep = make_key(key_arg(key_of(rt->key)));
		insert_up(path, d, sep, rt);
		return i < l ? iterator(this, lf, i) : iterator(this, rt, i - l);
	}
	/* Slots [i, n) of s move up one; x goes to slot i. */
	template <class S>
	static void shift_right(S *s, uint32_t n, uint32_t i, const S &x)
	{
		std::memmove(s + i + 1, s + i, (n - i) * sizeof(S));
		s[i] = x;
	}
	/* Slot i of s (of n) leaves; the rest move down; the last is zeroed. */
	template <class S> static void shift_left(S *s, uint32_t n, uint32_t i)
	{
		std::memmove(s + i, s + i + 1, (n - i - 1) * sizeof(S));
		zero(s[n - 1]);
	}
	/* Key sep and its right kid go into the parents on path[0, d). */
	void insert_up(step *path, int d, kslot sep, void *right)
	{
		while (d > 0) {
			step s = path[--d];
			inner img = load(s.node);
			if (img.n < kInnerCap) {
				shift_right(img.key, img.n, s.idx, sep);
				shift_right(img.kid, img.n + 1, s.idx + 1, right);
				img.n++;
				store(s.node, img);
				return;
			}
			right = split_inner(s.node, img, s.idx, &sep, right);
		}
		new_root(sep, right);
	}
	/* Splits full node (image img) with *sep and right put in at kid i;
	 * the middle key goes up: it is left in *sep, the new right node
	 * returned. */
	void *split_inner(inner *node, inner &img, uint32_t i, kslot *sep,
			  void *right)
	{
		kslot keys[kInnerCap + 1];
		void *kids[kInnerCap + 2];
		std::memcpy(keys, img.key, sizeof(img.key));
		std::memcpy(kids, img.kid, sizeof(img.kid));
		shift_right(keys, kInnerCap, i, *sep);
		shift_right(kids, kInnerCap + 1, i + 1, right);
		const uint32_t m = (kInnerCap + 1) / 2, r = kInnerCap - m;
		inner *rt = (inner *)alloc(sizeof(inner));
		inner rimg;
		zero(rimg);
		rimg.n = r;
		rimg.level = img.level;
		std::memcpy(rimg.key, keys + m + 1, r * sizeof(kslot));
		std::memcpy(rimg.kid, kids + m + 1, (r + 1) * sizeof(void *));
		zero(img.key);
		zero(img.kid);
		std::memcpy(img.key, keys, m * sizeof(kslot));
		std::memcpy(img.kid, kids, (m + 1) * sizeof(void *));
		img.n = m;
		*sep = keys[m];
		store(node, img);
		store(rt, rimg);
		return rt;
	}
	void new_root(const kslot &sep, void *right)
	{
		uint64_t h = detail::tx_get(&height_);
		if (h >= kMaxHeight)
			throw std::length_error("mnemo::map: too deep");
		inner *rt = (inner *)alloc(sizeof(inner));
		inner img;
		zero(img);
		img.n = 1;
		img.level = (uint32_t)h;
		img.key[0] = sep;
		img.kid[0] = detail::tx_get(&root_);
		img.kid[1] = right;
		store(rt, img);
		detail::tx_set(&root_, (void *)rt);
		detail::tx_set(&height_, h + 1);
	}

	/* ---- the value of an entry ---- */
	/* No argument: a value-initialized V (a zero or empty one). */
	void set_value(iterator at)
	{
		if constexpr (kPlainV)
			detail::tx_set(val_ptr(at.lf_->val + at.pos_), V{});
	}
	template <class U> void set_value(iterator at, const U &x)
	{
		V *p = val_ptr(at.lf_->val + at.pos_);
		if constexpr (kPlainV) {
			detail::tx_set(p, V(x));
		} else if constexpr (std::is_same_v<U, V>) {
			/* it may be in this map: copied before anything moves */
			std::string tmp = x.str();
			*p = std::string_view(tmp);
		} else {
			*p = x;
		}
	}
	template <class A, class B, class... C>
	void set_value(iterator at, const A &a, const B &b, const C &...c)
	{
		detail::tx_set(val_ptr(at.lf_->val + at.pos_), V(a, b, c...));
	}

	/* ---- erasure ---- */
	size_t erase_key(const key_arg &k)
	{
		if (!detail::tx_get(&root_))
			return 0;
		step path[kMaxHeight];
		int d;
		leaf *lf = descend(k, path, &d);
		uint32_t n = detail::tx_get(&lf->n);
		uint32_t i = search(lf->key, n, k, false);
		if (i == n || cmp_at(lf->key + i, k) != 0)
			return 0;
		drop_entry(lf, i);
		leaf img = load(lf);
		shift_left(img.key, img.n, i);
		shift_left(img.val, img.n, i);
		img.n--;
		store(lf, img);
		detail::tx_set(&size_, detail::tx_get(&size_) - 1);
		fix_leaf(lf, img, path, d);
		return 1;
	}
	/* lf (image img) lost an entry: borrow from or merge with a
	 * sibling under the same parent. */
	void fix_leaf(leaf *lf, leaf &img, step *path, int d)
	{
		if (d == 0) {
			if (img.n == 0)
				drop_root_leaf(lf);
			return;
		}
		if (img.n >= kLeafMin)
			return;
		step s = path[d - 1];
		inner *par = s.node;
		if (s.idx > 0) {
			leaf *l = (leaf *)detail::tx_get(&par->kid[s.idx - 1]);
			leaf limg = load(l);
			if (limg.n > kLeafMin)
				return borrow_leaf(l, limg, lf, img, par, s.idx - 1, false);
			merge_leaves(l, limg, lf, img, par, s.idx - 1);
		} else {
			leaf *r = (leaf *)detail::tx_get(&par->kid[1]);
			leaf rimg = load(r);
			if (rimg.n > kLeafMin)
				return borrow_leaf(lf, img, r, rimg, par, 0, true);
			merge_leaves(lf, img, r, rimg, par, 0);
		}
		inner pimg = load(par);
		fix_inner(par, pimg, path, d - 1);
	}
	void drop_root_leaf(leaf *lf)
	{
		release(lf);
		detail::check(mnemo_tx_memset(&root_, 0, kHeaderBytes));
	}
	/* Moves one entry between neighbours l and r (from r to l if
	 * to_left); par's key sep (between them) becomes r's first key. */
	void borrow_leaf(leaf *l, leaf &limg, leaf *r, leaf &rimg, inner *par,
			 uint32_t sep, bool to_left)
	{
		if (to_left) {
			limg.key[limg.n] = rimg.key[0];
			limg.val[limg.n] = rimg.val[0];
			limg.n++;
			shift_left(rimg.key, rimg.n, 0);
			shift_left(rimg.val, rimg.n, 0);
			rimg.n--;
		} else {
			shift_right(rimg.key, rimg.n, 0, limg.key[limg.n - 1]);
			shift_right(rimg.val, rimg.n, 0, limg.val[limg.n - 1]);
			rimg.n++;
			zero(limg.key[limg.n - 1]);
			zero(limg.val[limg.n - 1]);
			limg.n--;
		}
		store(l, limg);
		store(r, rimg);
		drop_key(par->key + sep);
		kslot k = make_key(key_arg(key_of(r->key)));
		detail::check(mnemo_tx_store(par->key + sep, &k, sizeof(k)));
	}
	/* r's entries join l; r leaves the chain and par (key sep). */
	void merge_leaves(leaf *l, leaf &limg, leaf *r, leaf &rimg, inner *par,
			  uint32_t sep)
	{
		std::memcpy(limg.key + limg.n, rimg.key, rimg.n * sizeof(kslot));
		std::memcpy(limg.val + limg.n, rimg.val, rimg.n * sizeof(vslot));
		limg.n += rimg.n;
		limg.next = rimg.next;
		if (rimg.next)
			detail::tx_set(&rimg.next->prev, l);
		else
			detail::tx_set(&tail_, l);
		store(l, limg);
		release(r);
		drop_key(par->key + sep);
		remove_sep(par, sep);
	}
	/* Key i and kid i + 1 leave par. */
	static void remove_sep(inner *par, uint32_t i)
	{
		inner img = load(par);
		shift_left(img.key, img.n, i);
		shift_left(img.kid, img.n + 1, i + 1);
		img.n--;
		store(par, img);
	}
	/* node (image img) lost a key: rotate through or merge with a
	 * sibling under the same parent; an empty root gives way to its
	 * kid. */
	void fix_inner(inner *node, inner &img, step *path, int d)
	{
		if (d == 0) {
			if (img.n == 0) {
				detail::tx_set(&root_, img.kid[0]);
				detail::tx_set(&height_,
					       detail::tx_get(&height_) - 1);
				release(node);
			}
			return;
		}
		if (img.n >= kInnerMin)
			return;
		step s = path[d - 1];
		inner *par = s.node;
		inner pimg = load(par);
		if (s.idx > 0) {
			inner *l = (inner *)pimg.kid[s.idx - 1];
			inner limg = load(l);
			if (limg.n > kInnerMin)
				return rotate(l, limg, node, img, par, pimg, s.idx - 1, false);
			merge_inner(l, limg, node, img, par, pimg, s.idx - 1);
		} else {
			inner *r = (inner *)pimg.kid[1];
			inner rimg = load(r);
			if (rimg.n > kInnerMin)
				return rotate(node, img, r, rimg, par, pimg, 0, true);
			merge_inner(node, img, r, rimg, par, pimg, 0);
		}
		fix_inner(par, pimg, path, d - 1);
	}
	/* One key and kid move between neighbours l and r through par's key
	 * sep (bytes move: no key is copied or freed). */
	void rotate(inner *l, inner &limg, inner *r, inner &rimg, inner *par,
		    inner &pimg, uint32_t sep, bool to_left)
	{
		if (to_left) {
			limg.key[limg.n] = pimg.key[sep];
			limg.kid[limg.n + 1] = rimg.kid[0];
			limg.n++;
			pimg.key[sep] = rimg.key[0];
			shift_left(rimg.key, rimg.n, 0);
			shift_left(rimg.kid, rimg.n + 1, 0);
			rimg.n--;
		} else {
			shift_right(rimg.key, rimg.n, 0, pimg.key[sep]);
			shift_right(rimg.kid, rimg.n + 1, 0, limg.kid[limg.n]);
			rimg.n++;
			pimg.key[sep] = limg.key[limg.n - 1];
			zero(limg.key[limg.n - 1]);
			limg.kid[limg.n] = nullptr;
			limg.n--;
		}
		store(l, limg);
		store(r, rimg);
		store(par, pimg);
	}
	/* r joins l with par's key sep between them; pimg is updated. */
	void merge_inner(inner *l, inner &limg, inner *r, inner &rimg,
			 inner *par, inner &pimg, uint32_t sep)
	{
		limg.key[limg.n] = pimg.key[sep];
		std::memcpy(limg.key + limg.n + 1, rimg.key, rimg.n * sizeof(kslot));
		std::memcpy(limg.kid + limg.n + 1, rimg.kid,
			    (rimg.n + 1) * sizeof(void *));
		limg.n += rimg.n + 1;
		store(l, limg);
		release(r);
		shift_left(pimg.key, pimg.n, sep);
		shift_left(pimg.kid, pimg.n + 1, sep + 1);
		pimg.n--;
		store(par, pimg);
	}

	/* ---- clear ---- */
	void free_tree(void *p, uint64_t level)
	{
		if (level == 0) {
			leaf *lf = (leaf *)p;
			uint32_t n = detail::tx_get(&lf->n);
			for (uint32_t i = 0; i < n; i++)
				drop_entry(lf, i);
		} else {
			inner *in = (inner *)p;
			uint32_t n = detail::tx_get(&in->n);
			for (uint32_t i = 0; i < n; i++)
				drop_key(in->key + i);
			for (uint32_t i = 0; i <= n; i++)
				free_tree(detail::tx_get(&in->kid[i]), level - 1);
		}
		release(p);
	}

	/* ---- the checker ---- */
	struct walk {
		uint64_t entries = 0;
		uint64_t nodes = 0;
		leaf *prev = nullptr; /* the last leaf seen, in order */
		std::string why;
	};
	std::string check_all(walk &w) const
	{
		void *r = detail::tx_get(&root_);
		uint64_t h = detail::tx_get(&height_);
		if (!r) {
			bool ok = !h && !detail::tx_get(&head_) &&
				  !detail::tx_get(&tail_) && !detail::tx_get(&size_);
			return ok ? "" : "an empty map with a non-zero header";
		}
		if (h == 0 || h > kMaxHeight)
			return "bad height";
		check_node(r, h - 1, true, nullptr, nullptr, w);
		if (w.why.empty() && w.prev != detail::tx_get(&tail_))
			w.why = "tail_ is not the last leaf";
		if (w.why.empty() && w.entries != detail::tx_get(&size_))
			w.why = "size_ is not the number of entries";
		if (w.why.empty() && !zero_bytes(&fresh_, sizeof(fresh_) + sizeof(skey_)))
			w.why = "scratch slots not zero";
		return w.why;
	}
	static bool zero_bytes(const void *p, size_t n)
	{
		unsigned char b[64];
		for (size_t off = 0; off < n; off += sizeof(b)) {
			size_t c = n - off < sizeof(b) ? n - off : sizeof(b);
			detail::check(mnemo_tx_load(b, (const char *)p + off, c));
			for (size_t i = 0; i < c; i++)
				if (b[i])
					return false;
		}
		return true;
	}
	/* Keys of p (at level) within [lo, hi) (null: unbounded), sorted;
	 * its fill; its slots past n zero; leaves in chain order. */
	void check_node(void *p, uint64_t level, bool root, const kslot *lo,
			const kslot *hi, walk &w) const
	{
		if (!w.why.empty())
			return;
		w.nodes++;
		uint32_t n = detail::tx_get((uint32_t *)p);
		uint32_t lvl = detail::tx_get((uint32_t *)p + 1);
		size_t cap = level ? kInnerCap : kLeafCap;
		size_t min = root ? 1 : level ? kInnerMin : kLeafMin;
		if (lvl != level || n > cap || n < min) {
			w.why = "node level or fill out of bounds";
			return;
		}
		const kslot *keys = level ? ((inner *)p)->key : ((leaf *)p)->key;
		if (!keys_ordered(keys, n, lo, hi)) {
			w.why = "keys out of order or out of their parent's range";
			return;
		}
		if (level == 0)
			return check_leaf((leaf *)p, w);
		inner *in = (inner *)p;
		if (!zero_bytes(in->key + n, (kInnerCap - n) * sizeof(kslot)) ||
		    !zero_bytes(in->kid + n + 1, (kInnerCap - n) * 8))
			w.why = "inner slots past n not zero";
		for (uint32_t i = 0; i <= n; i++)
			check_node(detail::tx_get(&in->kid[i]), level - 1, false,
				   i ? in->key + i - 1 : lo, i < n ? in->key + i : hi, w);
	}
	void check_leaf(leaf *lf, walk &w) const
	{
		uint32_t n = detail::tx_get(&lf->n);
		leaf *want = w.prev ? detail::tx_get(&w.prev->next)
				    : detail::tx_get(&head_);
		if (want != lf || detail::tx_get(&lf->prev) != w.prev)
			w.why = "leaf chain broken";
		else if (!zero_bytes(lf->key + n, (kLeafCap - n) * sizeof(kslot)) ||
			 !zero_bytes(lf->val + n, (kLeafCap - n) * sizeof(vslot)))
			w.why = "leaf slots past n not zero";
		w.prev = lf;
		w.entries += n;
	}
	static bool less(const kslot *a, const kslot *b)
	{
		return cmp_at(a, key_arg(key_of(b))) < 0;
	}
	static bool keys_ordered(const kslot *k, uint32_t n, const kslot *lo,
				 const kslot *hi)
	{
		for (uint32_t i = 0; i < n; i++) {
			if (i && !less(k + i - 1, k + i))
				return false;
			if ((lo && less(k + i, lo)) || (hi && !less(k + i, hi)))
				return false;
		}
		return true;
	}

	/* The header: all zero is an empty map.  fresh_ and skey_ are
	 * scratch, zero between operations: fresh_ receives a new block
	 * (mnemo_heap_alloc_to needs a persistent destination), skey_ a new
	 * string key's block before its bytes move into a node. */
	void *root_ = nullptr;
	leaf *head_ = nullptr;
	leaf *tail_ = nullptr;
	uint64_t size_ = 0;
	uint64_t height_ = 0;
	static constexpr size_t kHeaderBytes = 5 * 8;
	void *fresh_ = nullptr;
	kslot skey_{};
};

} // namespace mnemo

#endif /* MNEMOSYNE_MAP_HPP */
