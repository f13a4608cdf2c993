/*
 * mnemosyne_unordered_map.hpp -- mnemo::unordered_map<K, V, Hash, Eq>: a
 * hash map that lives in a pool, with the members and meaning of
 * std::unordered_map.  K and V are trivially copyable or relocatable
 * (mnemo::string; see mnemosyne_vector.hpp).
 *
 *   auto &m = pool.root<mnemo::unordered_map<mnemo::string, uint64_t>>("w");
 *   mnemo::transaction([&] { ++m["word"]; });  // one durable transaction
 *   ++m["word"];                 // two: the insertion, then the add
 *   if (m.contains(std::string_view(w))) ...
 *
 * Layout (32 bytes, in the pool): buckets_ points to a heap block of
 * nbuckets_ chain heads (or is null with nbuckets_ 0); size_ counts the
 * nodes; gen_ counts the rehashes.  A node is a heap block {next[2],
 * hash, key, value}: a chain runs through the live link next[gen_ & 1]
 * (the other one is free, for the next rehash); hash is
 * mix(Hash()(key)), stored so that a rehash reads no key.
 * Invariants: nbuckets_ is 0 or a power of two (at least kMinBuckets);
 * node n is in chain hash & (nbuckets_ - 1); no two nodes have equal
 * keys; size_ is the number of nodes; size_ <= nbuckets_ after every
 * insertion (load factor at most 1: an insertion that would pass it
 * doubles the buckets first, in its own transaction).  All zero is an
 * empty map.
 *
 * Chaining, not open addressing: a node never moves, so a reference to a
 * value (a mnemo::string's chars, a V &) stays valid until its key is
 * erased, as in std::unordered_map, and an erasure frees one block and
 * writes one link; a rehash writes each node's free link and a fresh
 * array with plain stores (see move_to) and logs a few words, so neither
 * growth nor a map's size is bounded by the transaction log.  Erasing
 * logs two words per key (the link and the free): clear and the
 * destructor of a map of n keys must fit 2n words in the log
 * (MNEMO_TX_LOG_SIZE).

 * Every member runs in one transaction, joining the caller's if one is
 * open: a mutation is durable and atomic (a crash leaves the map as before
 * or after it) and the reads are isolated from other threads' commits.
 * Outside any transaction each call is its own; the iterators, the
 * references and the keys and values they give read memory as it is
 * then: don't use them while another thread mutates the map, unless
 * inside a transaction.
 *
 * Iterators are invalidated by a rehash (an insertion that grows the
 * map, reserve, rehash) and by erasing their node; references to keys
 * and values only by erasing their node (or clear, or the destructor).
 * Hash and Eq are default-constructed at each use (the map stores none):
 * they must be stateless, and Hash must give the same value in every run
 * (std::hash of integers and strings in libstdc++ does).
 */
#ifndef MNEMOSYNE_UNORDERED_MAP_HPP
#define MNEMOSYNE_UNORDERED_MAP_HPP 1

#include <cstdint>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mnemosyne.hpp"
#include "mnemosyne_string.hpp"
#include "mnemosyne_vector.hpp"

/* Hashes a mnemo::string as its chars (read in a transaction), and a
 * std::string_view alike: transparent, so a map keyed by mnemo::string is
 * searched with a std::string_view (or const char *) with no copy. */
template <> struct std::hash<mnemo::string> {
	using is_transparent = void;
	size_t operator()(std::string_view s) const noexcept
	{
		return std::hash<std::string_view>()(s);
	}
	size_t operator()(const mnemo::string &s) const
	{
		return (*this)(std::string_view(s.str()));
	}
};

namespace mnemo {

namespace detail {
/* The bits of a hash spread over the low ones that pick the bucket
 * (std::hash of an integer is the integer). */
inline uint64_t mix_hash(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	return h ^ (h >> 33);
}
template <class F, class = void> struct transparent : std::false_type {};
template <class F>
struct transparent<F, std::void_t<typename F::is_transparent>>
	: std::true_type {};
/* What a reference to a key or value gives, a pair of them. */
template <class F, class S> struct ref_pair {
	F first;
	S second;
};
/* A trivially copyable value of a persistent container, as
 * unordered_map::operator[] gives it: reading converts, assigning is one
 * transaction. */
template <class V> class mapped_ref {
public:
	operator V() const
	{
		V v;
		transaction([&] { v = detail::tx_get(p_); });
		return v;
	}
	mapped_ref &operator=(const V &v)
	{
		transaction([&] { detail::tx_set(p_, v); });
		return *this;
	}
	mapped_ref &operator=(const mapped_ref &o) { return *this = V(o); }
	template <class U = V, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	mapped_ref &operator+=(const V &x) { return add(x); }
	template <class U = V, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	mapped_ref &operator-=(const V &x) { return add(V(0) - x); }
	template <class U = V, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	mapped_ref &operator++() { return add(V(1)); }
	template <class U = V, class = std::enable_if_t<std::is_arithmetic_v<U>>>
	mapped_ref &operator--() { return add(V(0) - V(1)); }

	/* The value at p. */
	explicit mapped_ref(V *p) : p_(p) {}
	mapped_ref(const mapped_ref &) = default;

private:
	/* Read and write in one transaction (two threads adding
	 * to one value lose nothing). */
	mapped_ref &add(const V &x)
	{
		transaction([&] {
			detail::tx_set(p_, V(detail::tx_get(p_) + x));
		});
		return *this;
	}
	V *p_;
};
} // namespace detail

template <class K, class V, class Hash = std::hash<K>,
	  class Eq = std::equal_to<K>>
class unordered_map {
	static constexpr bool kPlainK = std::is_trivially_copyable_v<K>;
	static constexpr bool kPlainV = std::is_trivially_copyable_v<V>;
	static_assert(kPlainK || relocatable<K>::value,
		      "mnemo::unordered_map: K must be trivially copyable or "
		      "relocatable (mnemo::string)");
	static_assert(kPlainV || relocatable<V>::value,
		      "mnemo::unordered_map: V must be trivially copyable or "
		      "relocatable (mnemo::string)");
	static_assert(alignof(K) <= 16 && alignof(V) <= 16,
		      "heap blocks are 16-byte aligned");

	/* A heap block; never constructed (zeroed memory is its start). */
	struct node {
		/* The chain's next node (or null) through link gen_ & 1;
		 * the other link is free for the next rehash. */
		node *next[2];
		uint64_t hash; /* mix_hash(Hash()(key)): fixed */
		K key; /* fixed while the node lives */
		V value;
	};
	static constexpr uint64_t kMinBuckets = 16;

	/* Whether Q may be looked up: K itself, what converts to K, or
	 * anything a transparent Hash takes. */
	template <class Q>
	using if_key = std::enable_if_t<detail::transparent<Hash>::value ||
					std::is_convertible_v<const Q &, K>>;

public:
	using key_type = K;
	using mapped_type = V;
	using size_type = size_t;
	using hasher = Hash;
	using key_equal = Eq;
	static constexpr bool mnemo_zero_is_empty = true;

	using mapped_ref = detail::mapped_ref<V>;

	/* What reading a key gives: a copy of a trivially copyable one. */
	using key_view = std::conditional_t<kPlainK, K, const K &>;
	using reference = std::conditional_t<kPlainV, mapped_ref, V &>;
	using const_reference = std::conditional_t<kPlainV, V, const V &>;

	template <bool Const> class iter;
	using iterator = iter<false>;
	using const_iterator = iter<true>;

	/* A forward iterator over the nodes, bucket by bucket.  *it gives
	 * a pair-like {first, second}: the key (key_view) and the value
	 * (reference, or const_reference for a const_iterator). */
	template <bool Const> class iter {
		using second_t =
			std::conditional_t<Const,
					   typename unordered_map::const_reference,
					   typename unordered_map::reference>;

	public:
		using iterator_category = std::forward_iterator_tag;
		using value_type = detail::ref_pair<key_view, second_t>;
		using reference = value_type;
		using difference_type = std::ptrdiff_t;
		struct pointer {
			mutable value_type r;
			value_type *operator->() const { return &r; }
		};

		iter() = default;
		/* An iterator converts to a const_iterator. */
		template <bool C = Const, class = std::enable_if_t<C>>
		iter(const iter<false> &o)
			: heads_(o.heads_), nb_(o.nb_), b_(o.b_), n_(o.n_),
			  lk_(o.lk_), gen_(o.gen_)
		{
		}
		value_type operator*() const
		{
			return {unordered_map::key_of(n_), second()};
		}
		pointer operator->() const { return {**this}; }
		/* The iterator changes only once the step's transaction is
		 * through: a conflict may run it again. */
		iter &operator++()
		{
			iter at = *this;
			transaction([&] {
				at = *this;
				at.n_ = follow(&n_->next[lk_], gen_);
				if (!at.n_)
					at.settle(b_ + 1);
			});
			*this = at;
			return *this;
		}
		iter operator++(int)
		{
			iter old = *this;
			++*this;
			return old;
		}
		friend bool operator==(const iter &a, const iter &b)
		{
			return a.n_ == b.n_;
		}
		friend bool operator!=(const iter &a, const iter &b)
		{
			return a.n_ != b.n_;
		}

	private:
		friend class unordered_map;
		iter(node **heads, uint64_t nb, uint64_t b, node *n,
		     unsigned lk, const uint64_t *gen)
			: heads_(heads), nb_(nb), b_(b), n_(n), lk_(lk),
			  gen_(gen)
		{
		}
		second_t second() const
		{
			if constexpr (kPlainV && Const)
				return detail::tx_get(&n_->value);
			else if constexpr (kPlainV)
				return mapped_ref(&n_->value);
			else
				return n_->value;
		}
		/* The first node of bucket b or after (the end: null). */
		void settle(uint64_t b)
		{
			for (n_ = nullptr; b < nb_ && !n_; b++)
				n_ = follow(heads_ + b, gen_);
			b_ = b - 1;
		}
		template <bool> friend class iter;
		node **heads_ = nullptr;
		uint64_t nb_ = 0;
		uint64_t b_ = 0;
		node *n_ = nullptr; /* null: the end */
		unsigned lk_ = 0; /* the live link */
		const uint64_t *gen_ = nullptr; /* the map's rehash count */
	};

	unordered_map() = default;
	unordered_map(const unordered_map &) = delete;
	unordered_map &operator=(const unordered_map &) = delete;
	/* Frees the nodes and the buckets (in a transaction); for
	 * delete_persistent.  A failure leaves them to the leak collection. */
	~unordered_map()
	{
		try {
			if (detail::tx_get(&buckets_))
				transaction([&] { release(); });
		} catch (const error &) {
		}
	}

	size_t size() const { return (size_t)detail::tx_get(&size_); }
	bool empty() const { return size() == 0; }
	size_t bucket_count() const { return (size_t)detail::tx_get(&nbuckets_); }
	float load_factor() const
	{
		float r = 0;
		transaction([&] {
			uint64_t nb = detail::tx_get(&nbuckets_);
			r = nb ? (float)detail::tx_get(&size_) / (float)nb : 0;
		});
		return r;
	}
	/* Fixed: an insertion never leaves more nodes than buckets. */
	float max_load_factor() const { return 1.0f; }

	iterator begin() { return first<false>(); }
	iterator end() { return {}; }
	const_iterator begin() const { return first<true>(); }
	const_iterator end() const { return {}; }
	const_iterator cbegin() const { return begin(); }
	const_iterator cend() const { return end(); }

	template <class Q, class = if_key<Q>> iterator find(const Q &k)
	{
		return found<false>(k);
	}
	template <class Q, class = if_key<Q>>
	const_iterator find(const Q &k) const
	{
		return found<true>(k);
	}
	template <class Q, class = if_key<Q>> size_t count(const Q &k) const
	{
		return contains(k) ? 1 : 0;
	}
	template <class Q, class = if_key<Q>> bool contains(const Q &k) const
	{
		return find(k) != end();
	}
	/* Throws std::out_of_range if k is not a key. */
	template <class Q, class = if_key<Q>> reference at(const Q &k)
	{
		iterator it = find(k);
		if (it == end())
			throw std::out_of_range("mnemo::unordered_map::at: no "
						"such key");
		return it.second();
	}
	template <class Q, class = if_key<Q>>
	const_reference at(const Q &k) const
	{
		const_iterator it = find(k);
		if (it == end())
			throw std::out_of_range("mnemo::unordered_map::at: no "
						"such key");
		return it.second();
	}
	/* The value of k, inserted (value-initialized: zero, or empty) if
	 * k is not a key.  Inserting and a later assignment through the
	 * result are two transactions: m[k] = v in a transaction of the
	 * caller's, or insert_or_assign, makes them one. */
	template <class Q, class = if_key<Q>> reference operator[](const Q &k)
	{
		return try_emplace(k).first.second();
	}

	/* Inserts k with the value made from a (nothing: value-initialized;
	 * for a relocatable V, at most one argument, which V assigns from)
	 * unless k is a key already; the iterator points at k's node. */
	template <class Q, class... A>
	std::pair<iterator, bool> try_emplace(const Q &k, const A &...a)
	{
		std::pair<iterator, bool> r;
		transaction([&] {
			uint64_t h = hash_of(k);
			node *n = lookup(k, h);
			r.second = !n;
			if (!n)
				n = add(h, k, a...);
			r.first = at_node(n, h);
		});
		return r;
	}
	template <class Q, class... A>
	std::pair<iterator, bool> emplace(const Q &k, const A &...a)
	{
		return try_emplace(k, a...);
	}
	template <class Q, class A>
	std::pair<iterator, bool> insert(const std::pair<Q, A> &kv)
	{
		return try_emplace(kv.first, kv.second);
	}
	/* Inserts k with value v, or assigns v to k's value. */
	template <class Q, class A>
	std::pair<iterator, bool> insert_or_assign(const Q &k, const A &v)
	{
		std::pair<iterator, bool> r;
		transaction([&] {
			uint64_t h = hash_of(k);
			node *n = lookup(k, h);
			r.second = !n;
			if (n)
				assign(n, v);
			else
				n = add(h, k, v);
			r.first = at_node(n, h);
		});
		return r;
	}

	/* Erases k's node (its blocks are freed at commit); 1 or 0. */
	template <class Q, class = if_key<Q>> size_t erase(const Q &k)
	{
		size_t r = 0;
		transaction([&] {
			uint64_t h = hash_of(k);
			node **link = link_of(k, h);
			if (link) {
				unlink(link);
				r = 1;
			}
		});
		return r;
	}
	/* Erases pos's node; gives the iterator after it. */
	iterator erase(const_iterator pos)
	{
		iterator next;
		transaction([&] {
			const_iterator after = pos;
			++after;
			next = iterator(after.heads_, after.nb_, after.b_,
					after.n_, after.lk_, after.gen_);
			uint64_t nb = detail::tx_get(&nbuckets_);
			node **link = heads() +
				      (detail::tx_get(&pos.n_->hash) & (nb - 1));
			while (follow(link, &gen_) != pos.n_)
				link = &detail::tx_get(link)->next[live()];
			unlink(link);
		});
		return next;
	}
	iterator erase(iterator pos) { return erase(const_iterator(pos)); }

	/* Erases every node (each free is logged); the bucket count stays
	 * (a fresh zeroed array: nothing logged per bucket). */
	void clear()
	{
		transaction([&] {
			uint64_t nb = detail::tx_get(&nbuckets_);
			free_nodes();
			node **old = heads();
			if (nb) {
				detail::check(mnemo_heap_alloc_to(
					(void **)&buckets_, nb * sizeof(node *),
					MNEMO_HEAP_ZERO));
				detail::check(mnemo_heap_free(old, 0));
			}
			detail::tx_set(&size_, (uint64_t)0);
		});
	}
	/* Room for n keys without a rehash. */
	void reserve(size_t n) { rehash(n); }
	/* At least n buckets, and at least size(): a power of two. */
	void rehash(size_t n)
	{
		transaction([&] {
			uint64_t want = kMinBuckets;
			uint64_t need = detail::tx_get(&size_);
			need = need > n ? need : n;
			while (want < need) {
				if (want > (UINT64_MAX >> 5))
					throw std::length_error("mnemo::"
						"unordered_map: too large");
				want *= 2;
			}
			if (want != detail::tx_get(&nbuckets_))
				move_to(want);
		});
	}

	/* The validator: whether the invariants above hold (read in a
	 * transaction).  Walks every node. */
	bool mnemo_check() const
	{
		bool ok = true;
		transaction([&] { ok = check_all(); });
		return ok;
	}

private:
	node **heads() const { return detail::tx_get(&buckets_); }
	/* The node a link points at, read in the transaction, then gen_
	 * read again.  A rehash relinks nodes with plain stores (move_to),
	 * which move no stripe version, so a transaction that read gen_
	 * before a rehash committed cannot tell a rewritten link by its
	 * version; but its second read of gen_, whose version the rehash
	 * moved, fails the STM's validation, and the transaction runs again
	 * before it follows a link that a later rehash rewrote. */
	static node *follow(node *const *link, const uint64_t *gen)
	{
		node *n = detail::tx_get(link);
		if (gen)
			(void)detail::tx_get(gen);
		return n;
	}
	unsigned live() const { return (unsigned)(detail::tx_get(&gen_) & 1); }

	static key_view key_of(node *n)
	{
		if constexpr (kPlainK)
			return detail::tx_get(&n->key);
		else
			return n->key;
	}

	template <class Q> static uint64_t hash_of(const Q &k)
	{
		if constexpr (detail::transparent<Hash>::value)
			return detail::mix_hash(Hash()(k));
		else
			return detail::mix_hash(Hash()(static_cast<K>(k)));
	}

	template <class Q> static bool same_key(node *n, const Q &k)
	{
		if constexpr (kPlainK && detail::transparent<Eq>::value)
			return Eq()(key_of(n), k);
		else if constexpr (kPlainK)
			return Eq()(key_of(n), static_cast<K>(k));
		else if constexpr (std::is_same_v<Eq, std::equal_to<K>>)
			return n->key == k; /* the free operator== */
		else
			return Eq()(n->key, k);
	}

	/* The link (a bucket head or a node's next) that points at k's
	 * node, or null if k is not a key. */
	template <class Q> node **link_of(const Q &k, uint64_t h) const
	{
		uint64_t nb = detail::tx_get(&nbuckets_);
		if (!nb)
			return nullptr;
		node **link = heads() + (h & (nb - 1));
		unsigned lk = live();
		for (node *n; (n = follow(link, &gen_)); link = &n->next[lk])
			if (detail::tx_get(&n->hash) == h && same_key(n, k))
				return link;
		return nullptr;
	}
	template <class Q> node *lookup(const Q &k, uint64_t h) const
	{
		node **link = link_of(k, h);
		return link ? detail::tx_get(link) : nullptr;
	}

	iterator at_node(node *n, uint64_t h) const
	{
		uint64_t nb = detail::tx_get(&nbuckets_);
		return iterator(heads(), nb, h & (nb - 1), n, live(), &gen_);
	}
	template <bool C, class Q> iter<C> found(const Q &k) const
	{
		iter<C> it;
		transaction([&] {
			uint64_t h = hash_of(k);
			node *n = lookup(k, h);
			if (n) {
				iterator i = at_node(n, h);
				it = iter<C>(i.heads_, i.nb_, i.b_, i.n_,
					     i.lk_, &gen_);
			}
		});
		return it;
	}
	template <bool C> iter<C> first() const
	{
		iter<C> it;
		transaction([&] {
			it = iter<C>(heads(), detail::tx_get(&nbuckets_), 0,
				     nullptr, live(), &gen_);
			it.settle(0);
		});
		return it;
	}

	/* A new node for k (the buckets doubled first if it would pass
	 * the load factor) at the head of its chain.  The block is this
	 * transaction's own until it commits: its plain fields are written
	 * with plain stores and flushed, and the commit makes them durable
	 * before its record (mnemo_heap_alloc(3)); a relocatable key or
	 * value then assigns in the transaction. */
	template <class Q, class... A> node *add(uint64_t h, const Q &k,
						const A &...a)
	{
		static_assert(kPlainV || sizeof...(A) <= 1,
			      "a relocatable value takes one argument");
		uint64_t sz = detail::tx_get(&size_);
		if (sz + 1 > detail::tx_get(&nbuckets_))
			move_to(grown(sz + 1));
		node **head = heads() + (h & (detail::tx_get(&nbuckets_) - 1));
		node *old = detail::tx_get(head);
		detail::check(mnemo_heap_alloc_to((void **)head, sizeof(node),
						  MNEMO_HEAP_ZERO));
		node *n = detail::tx_get(head);
		n->next[live()] = old;
		n->hash = h;
		if constexpr (kPlainK)
			n->key = static_cast<K>(k);
		if constexpr (kPlainV)
			n->value = V(a...);
		mnemo_flush(n, sizeof(node));
		if constexpr (!kPlainK)
			n->key = k;
		if constexpr (!kPlainV && sizeof...(A) == 1)
			n->value = (a, ...);
		detail::tx_set(&size_, sz + 1);
		return n;
	}
	template <class A> static void assign(node *n, const A &v)
	{
		if constexpr (kPlainV)
			detail::tx_set(&n->value, V(v));
		else
			n->value = v;
	}

	/* The bucket count for `need` nodes: doubling. */
	uint64_t grown(uint64_t need) const
	{
		uint64_t nb = detail::tx_get(&nbuckets_);
		nb = nb ? nb : kMinBuckets;
		while (nb < need)
			nb *= 2;
		return nb;
	}

	/* Relink every node into a fresh zeroed array of nb heads (nb a
	 * power of two) through its free link, and make that link the live
	 * one.  The array is this transaction's own, and so is every free
	 * link once gen_ is written (first: its stripe lock keeps every
	 * other transaction off the map until this one ends, so no node
	 * relinked here can be freed meanwhile): both are written with
	 * plain stores and flushed, and nothing is logged per node, so a
	 * rehash is not bounded by the log.  The links then go through
	 * mnemo_persist, not only a flush: records of earlier commits that
	 * wrote these links (when they were live, before the last rehash)
	 * may still be in the logs, and recovery would replay them over
	 * the plain stores; the persist settles them first.  (The array
	 * is fresh: no record names it.)  The
	 * exception: if this transaction rehashed already, it may have
	 * logged writes to the link that is free again, which its commit
	 * would write back over plain ones: then the links are logged.
	 * The old array is freed at commit, so an abort or a crash keeps
	 * the old chains (the free links are garbage, and unread). */
	void move_to(uint64_t nb)
	{
		uint64_t gen = detail::tx_get(&gen_);
		detail::tx_set(&gen_, gen + 1);
		/* Memory holds the committed gen_ (locked now): this
		 * transaction's first rehash iff it is still gen. */
		bool plain = *(volatile const uint64_t *)&gen_ == gen;
		unsigned lk = (unsigned)(gen & 1), to = lk ^ 1;
		node **old = heads();
		uint64_t onb = detail::tx_get(&nbuckets_);
		detail::check(mnemo_heap_alloc_to((void **)&buckets_,
						  nb * sizeof(node *),
						  MNEMO_HEAP_ZERO));
		node **fresh = heads();
		for (uint64_t b = 0; b < onb; b++) {
			node *n = detail::tx_get(old + b);
			while (n) {
				node *next = detail::tx_get(&n->next[lk]);
				node **head = fresh + (detail::tx_get(&n->hash) &
						       (nb - 1));
				if (plain) { /* strict mode allows mnemo_write */
					mnemo_write(&n->next[to], head,
						    sizeof(node *));
					mnemo_flush(&n->next[to], sizeof(node *));
				} else {
					detail::tx_set(&n->next[to], *head);
				}
				*head = n;
				n = next;
			}
		}
		if (plain) /* settle the records that wrote the links */
			mnemo_persist(fresh, nb * sizeof(node *));
		else
			mnemo_flush(fresh, nb * sizeof(node *));
		detail::tx_set(&nbuckets_, nb);
		if (old)
			detail::check(mnemo_heap_free(old, 0));
	}

	/* Unlink the node *link points at and free it (at commit). */
	void unlink(node **link)
	{
		node *n = detail::tx_get(link);
		detail::tx_set(link, detail::tx_get(&n->next[live()]));
		free_node(n);
		detail::tx_set(&size_, detail::tx_get(&size_) - 1);
	}
	static void free_node(node *n)
	{
		if constexpr (!kPlainK)
			n->key.mnemo_reset();
		if constexpr (!kPlainV)
			n->value.mnemo_reset();
		detail::check(mnemo_heap_free(n, 0));
	}
	/* Free every node; the heads still point at them. */
	void free_nodes()
	{
		node **h = heads();
		uint64_t nb = detail::tx_get(&nbuckets_);
		unsigned lk = live();
		for (uint64_t b = 0; b < nb; b++) {
			node *n = detail::tx_get(h + b);
			while (n) {
				node *next = detail::tx_get(&n->next[lk]);
				free_node(n);
				n = next;
			}
		}
	}
	void release()
	{
		free_nodes();
		node **h = heads();
		if (h)
			detail::check(mnemo_heap_free(h, 0));
		detail::tx_set(&buckets_, (node **)nullptr);
		detail::tx_set(&nbuckets_, (uint64_t)0);
		detail::tx_set(&size_, (uint64_t)0);
	}

	/* One chain: every node in the right bucket with the right hash
	 * and no key twice; adds its length to *count. */
	bool check_chain(uint64_t b, uint64_t nb, uint64_t *count) const
	{
		unsigned lk = live();
		for (node *n = follow(heads() + b, &gen_); n;
		     n = follow(&n->next[lk], &gen_)) {
			uint64_t h = detail::tx_get(&n->hash);
			if ((h & (nb - 1)) != b || h != hash_of(key_of(n)))
				return false;
			for (node *m = follow(&n->next[lk], &gen_); m;
			     m = follow(&m->next[lk], &gen_))
				if (same_key(m, key_of(n)))
					return false;
			if (++*count > detail::tx_get(&size_))
				return false; /* also ends a cycle */
		}
		return true;
	}
	bool check_all() const
	{
		uint64_t nb = detail::tx_get(&nbuckets_);
		if ((nb & (nb - 1)) || (nb && nb < kMinBuckets) ||
		    !nb != !heads())
			return false;
		uint64_t count = 0;
		for (uint64_t b = 0; b < nb; b++)
			if (!check_chain(b, nb, &count))
				return false;
		return count == detail::tx_get(&size_);
	}

	node **buckets_ = nullptr;
	uint64_t nbuckets_ = 0;
	uint64_t size_ = 0;
	uint64_t gen_ = 0; /* rehashes so far; gen_ & 1 is the live link */
};

} // namespace mnemo

#endif /* MNEMOSYNE_UNORDERED_MAP_HPP */
