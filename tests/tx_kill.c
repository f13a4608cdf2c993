/*
 * tx_kill.c -- kill -9 stress of durable transactions on the file backend.
 * The child runs two threads: one through the C API (MNEMO_TX), one through
 * the GCC TM ABI (__transaction_atomic).  Each transaction either moves
 * money between accounts (the total is constant) or inserts a node taken
 * from an arena into a list (list length == counter == arena top), and
 * counts itself.  Small logs make truncation passes frequent.  After each
 * kill the parent recovers the pool and checks every invariant, and that
 * the commit count grew (each child signals readiness after its first
 * commit, and only then may it be killed).  Each transaction also rewrites
 * a 2 KiB stamp array, which widens the write-back window a kill can hit.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define KILLS 100
#define ACCTS 64
#define NODES 4096
#define STAMPS 256

struct node {
	uint64_t next; /* index + 1; 0 ends the list */
	uint64_t value;
};

struct world {
	uint64_t acct[ACCTS];
	uint64_t commits, top, head, length;
	/* every transaction rewrites all of these with its commit number: a
	 * kill during write-back leaves them mixed unless recovery replays */
	uint64_t stamp[STAMPS];
	struct node node[NODES];
};

static struct world *g_w;
static int g_ready_fd; /* t_ready() after each commit, from both threads */

static uint64_t step(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

/* ---- the C API thread ---- */

static void c_count(void)
{
	uint64_t c = mnemo_tx_get64(&g_w->commits) + 1, buf[STAMPS];
	for (int i = 0; i < STAMPS; i++)
		buf[i] = c;
	mnemo_tx_store(g_w->stamp, buf, sizeof(buf));
	mnemo_tx_set64(&g_w->commits, c);
}

static void c_transfer(unsigned from, unsigned to, uint64_t amt)
{
	int rc;
	MNEMO_TX(rc) {
		uint64_t f = mnemo_tx_get64(&g_w->acct[from]);
		if (f >= amt) {
			mnemo_tx_set64(&g_w->acct[from], f - amt);
			mnemo_tx_set64(&g_w->acct[to],
				       mnemo_tx_get64(&g_w->acct[to]) + amt);
		}
		c_count();
	}
	if (rc)
		_exit(3);
	t_ready(g_ready_fd);
}

static void c_insert(uint64_t value)
{
	int rc;
	MNEMO_TX(rc) {
		uint64_t top = mnemo_tx_get64(&g_w->top);
		if (top < NODES) {
			struct node n = {mnemo_tx_get64(&g_w->head), value};
			mnemo_tx_store(&g_w->node[top], &n, sizeof(n));
			mnemo_tx_set64(&g_w->top, top + 1);
			mnemo_tx_set64(&g_w->head, top + 1);
			mnemo_tx_set64(&g_w->length,
				       mnemo_tx_get64(&g_w->length) + 1);
		}
		c_count();
	}
	if (rc)
		_exit(4);
	t_ready(g_ready_fd);
}

static void *c_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg;
	for (;;) {
		uint64_t r = step(&s);
		if (r % 8 == 0)
			c_insert(r);
		else
			c_transfer(r % ACCTS, (r >> 8) % ACCTS, (r >> 20) % 50);
	}
	return NULL;
}

/* ---- the TM ABI thread ---- */

__attribute__((transaction_safe)) static void tm_count(void)
{
	uint64_t c = ++g_w->commits;
	for (int i = 0; i < STAMPS; i++)
		g_w->stamp[i] = c;
}

__attribute__((noinline)) static void tm_transfer(unsigned from, unsigned to,
						   uint64_t amt)
{
	__transaction_atomic {
		if (g_w->acct[from] >= amt) {
			g_w->acct[from] -= amt;
			g_w->acct[to] += amt;
		}
		tm_count();
	}
}

__attribute__((noinline)) static void tm_insert(uint64_t value)
{
	__transaction_atomic {
		uint64_t top = g_w->top;
		if (top < NODES) {
			g_w->node[top].next = g_w->head;
			g_w->node[top].value = value;
			g_w->top = top + 1;
			g_w->head = top + 1;
			g_w->length++;
		}
		tm_count();
	}
}

static void *tm_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg;
	for (;;) {
		uint64_t r = step(&s);
		if (r % 8 == 0)
			tm_insert(r);
		else
			tm_transfer(r % ACCTS, (r >> 8) % ACCTS, (r >> 20) % 50);
		t_ready(g_ready_fd); /* the transaction committed */
	}
	return NULL;
}

static void child(const char *path, uint64_t seed, int ready_fd)
{
	g_ready_fd = ready_fd;
	mnemo_pool *p = t_open(path, 0);
	if (mnemo_region_find(p, "world", (void **)&g_w, NULL))
		_exit(1);
	pthread_t t;
	pthread_create(&t, NULL, tm_thread, (void *)(uintptr_t)(seed | 1));
	c_thread((void *)(uintptr_t)(seed * 3 | 1));
}

static uint64_t verify(const char *path)
{
	mnemo_pool *p = t_open(path, 0);
	/* pmem: CPU flushes on the file backend (the guest's DAX mount
	 * gives the dax backend, which flushes with the CPU anyway) */
	const char *dur = getenv("MNEMO_DURABILITY"), *b = mnemo_pool_backend(p);
	if (dur && strcmp(dur, "pmem") == 0 && strncmp(b, "file", 4) == 0)
		cr_assert_str_eq(b, "file(pmem)");
	struct world *w;
	cr_assert_eq(mnemo_region_find(p, "world", (void **)&w, NULL), 0);
	uint64_t total = 0;
	for (int i = 0; i < ACCTS; i++)
		total += w->acct[i];
	cr_assert_eq(total, ACCTS * 1000u, "total balance changed");
	cr_assert_eq(w->top, w->length, "arena top %llu, list length %llu",
		     (unsigned long long)w->top, (unsigned long long)w->length);
	uint64_t len = 0;
	for (uint64_t h = w->head; h; h = w->node[h - 1].next) {
		cr_assert_leq(h, w->top, "list points past the arena top");
		cr_assert_leq(++len, w->top, "list has a cycle");
	}
	cr_assert_eq(len, w->length, "list length %llu, counter %llu",
		     (unsigned long long)len, (unsigned long long)w->length);
	for (int i = 0; i < STAMPS; i++)
		cr_assert_eq(w->stamp[i], w->commits, "stamp %d is %llu, commits "
			     "%llu: a transaction is half applied", i,
			     (unsigned long long)w->stamp[i],
			     (unsigned long long)w->commits);
	uint64_t commits = w->commits;
	mnemo_pool_close(&p);
	return commits;
}

/* The world in a fresh pool at path, then `kills` kill -9 rounds. */
static void kill_rounds(const char *path, int kills)
{
	setenv("MNEMO_TX_LOG_SIZE", "16K", 1);
	t_create(path, 4 << 20);
	mnemo_pool *p = t_open(path, 0);
	struct world *w;
	cr_assert_eq(mnemo_region_create(p, "world", sizeof(*w), (void **)&w), 0);
	int rc;
	MNEMO_TX(rc) {
		for (int i = 0; i < ACCTS; i++)
			mnemo_tx_set64(&w->acct[i], 1000);
	}
	cr_assert_eq(rc, 0);
	mnemo_pool_close(&p);

	t_kill_loop(path, kills, child, verify);
	/* t_kill_loop saw the count grow with each kill */
	uint64_t last = verify(path);
	cr_assert_geq(last, (uint64_t)kills, "a committed transaction was lost");
}

Test(tx_kill, random_kill9_then_recover, .timeout = 300)
{
	kill_rounds(t_path("txkill"), KILLS);
}

/* MNEMO_DURABILITY=pmem: CPU flushes, and log records written with
 * non-temporal stores (scm::device::stream), which a kill must not lose
 * once their commit returned. */
Test(tx_kill, random_kill9_with_cpu_flushes, .timeout = 300)
{
	setenv("MNEMO_DURABILITY", "pmem", 1);
	kill_rounds(t_path("txkill-pmem"), KILLS / 2);
}
