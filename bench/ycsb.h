/*
 * ycsb.h -- the application study (issue 20): YCSB-style workloads on
 * key-value stores, every update durable when it returns.  One program per
 * store (ycsb_<store>.cc) links the driver (ycsb.cc) and defines
 * ycsb_open(); the driver loads the records, then runs the workloads.
 *
 * Keys are 64-bit: record i has key ycsb_key(i), a bijective mix, so keys
 * are spread as YCSB's hashed "user<n>" keys are.  Stores that take byte
 * strings get the key big-endian (ycsb_key_bytes), so byte order is
 * numeric order and scans see the same sequence in every store.
 *
 * Workloads (YCSB core, request distribution zipfian, theta 0.99,
 * scrambled over the records):
 *   A 50% read, 50% update        B 95% read, 5% update
 *   C 100% read                   F 50% read, 50% read-modify-write
 *   E 95% scan (1..100 records from a zipfian key), 5% insert of a new key
 */
#ifndef BENCH_YCSB_H
#define BENCH_YCSB_H 1

#include <cstddef>
#include <cstdint>
#include <string>

struct ycsb_opts {
	const char *dir = "/dev/shm";
	uint64_t records = 1000000;
	uint64_t ops = 200000;  /* per workload, over all threads */
	size_t value = 100;     /* bytes */
	unsigned threads = 1;
	const char *workloads = "CBAFE";
	const char *kind = "";  /* --kind, for programs with two stores */
	uint64_t seed = 1;
	double max_seconds = 10; /* a workload stops after this long */
	bool quiet = false;
};

/* A store under test.  Every call may come from any of --threads threads
 * at once; put() and rmw() are durable when they return (except for the
 * DRAM ceilings, std::map and std::unordered_map). */
class ycsb_store {
public:
	virtual ~ycsb_store() = default;
	/* The load: n records (key, value) before any op, from one thread;
	 * need not be durable one by one (load_done makes them so). */
	virtual void load(uint64_t key, const char *v, size_t n) = 0;
	virtual void load_done() {}
	/* Copy the value of key into out; false if it is absent. */
	virtual bool read(uint64_t key, std::string &out) = 0;
	/* Insert or overwrite, durably. */
	virtual void put(uint64_t key, const char *v, size_t n) = 0;
	/* Read key and write a new value in one atomic, durable step (the
	 * default reads, then puts: not atomic, which YCSB allows). */
	virtual void rmw(uint64_t key, const char *v, size_t n)
	{
		std::string old;
		read(key, old);
		put(key, v, n);
	}
	/* Read up to n records from the first key >= key in key order; the
	 * count.  Unordered stores return SIZE_MAX (workload E is skipped). */
	virtual size_t scan(uint64_t key, size_t n)
	{
		(void)key;
		(void)n;
		return SIZE_MAX;
	}
	/* Everything the store keeps on disk or in a pool lives under
	 * --dir; the driver removes it after the run. */
};

/* Defined by each store's program: its name in the results (e.g.
 * "lmdb"; may depend on --kind), and the store, fresh, under dir. */
const char *ycsb_name(const ycsb_opts &o);
ycsb_store *ycsb_open(const ycsb_opts &o, const std::string &dir);

uint64_t ycsb_key(uint64_t i);
/* key big-endian into out[8] */
void ycsb_key_bytes(uint64_t key, unsigned char out[8]);
uint64_t ycsb_key_from(const unsigned char in[8]);
[[noreturn]] void ycsb_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
