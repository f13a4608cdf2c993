/*
 * counter.c -- the demo: persistent state that survives kill -9.
 *
 * Keeps, in a named region of a pool:
 *   - a counter bumped with mnemo_store64 (atomic and durable);
 *   - a message updated with a shadow update (never half-written);
 *   - a RAWL log with one record per tick.
 * Run it, kill -9 it at any moment, run it again: it resumes where the last
 * completed tick left off and checks that the three agree.
 *
 *   usage: counter [POOL] [TICKS]     (POOL defaults to the default pool)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mnemosyne.h>

struct message {
	uint64_t tick;
	char text[56];
};

struct state {
	uint64_t counter;
	struct message *current; /* points into msg[]; a raw pointer */
	struct message msg[2];
};

static int die(const char *what)
{
	fprintf(stderr, "counter: %s: %s\n", what, mnemo_errormsg());
	return 1;
}

static struct state *find_state(mnemo_pool *pool)
{
	struct state *s;
	if (mnemo_region_find(pool, "counter-demo", (void **)&s, NULL) == 0)
		return s;
	if (mnemo_region_create(pool, "counter-demo", sizeof(*s), (void **)&s))
		return NULL;
	printf("new pool: starting from zero\n");
	return s;
}

static int last_record(const uint64_t *w, size_t n, void *arg)
{
	if (n == 1)
		*(uint64_t *)arg = w[0];
	return 0;
}

static void report(struct state *s, mnemo_rawl *log)
{
	uint64_t last = 0;
	mnemo_rawl_foreach(log, last_record, &last);
	const char *msg = s->current ? s->current->text : "(none)";
	printf("recovered: counter=%llu message=\"%s\" last log record=%llu\n",
	       (unsigned long long)s->counter, msg, (unsigned long long)last);
	/* Tick order: log, then message, then counter; a kill may land
	 * between any two, so each lags the previous by at most one. */
	uint64_t mt = s->current ? s->current->tick : 0;
	if (mt > last || last - mt > 1 || s->counter > mt || mt - s->counter > 1)
		printf("INCONSISTENT STATE\n");
}

static int tick(struct state *s, mnemo_rawl *log, uint64_t i)
{
	if (mnemo_rawl_space(log) < 1 && mnemo_rawl_truncate(log, SIZE_MAX))
		return -1;
	if (mnemo_rawl_append(log, &i, 1))
		return -1;
	struct message m = {.tick = i};
	snprintf(m.text, sizeof(m.text), "tick %llu at %ld", (unsigned long long)i,
		 (long)time(NULL));
	struct message *spare = s->current == &s->msg[0] ? &s->msg[1] : &s->msg[0];
	if (mnemo_shadow_update((void **)&s->current, spare, &m, sizeof(m)))
		return -1;
	return mnemo_store64(&s->counter, i);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	long ticks = argc > 2 ? strtol(argv[2], NULL, 10) : -1;
	mnemo_pool *pool;
	mnemo_rawl *log;
	if (mnemo_pool_open(path, MNEMO_CREATE, &pool))
		return die("opening the pool");
	struct state *s = find_state(pool);
	if (!s)
		return die("creating the state region");
	if (mnemo_rawl_open(pool, "counter-demo", 4096, &log))
		return die("opening the log");
	printf("pool %s (%s backend) mapped at %p\n",
	       path ? path : mnemo_pool_default_path(), mnemo_pool_backend(pool),
	       mnemo_pool_base(pool));
	report(s, log);
	for (long n = 0; ticks < 0 || n < ticks; n++) {
		if (tick(s, log, s->counter + 1))
			return die("tick");
		printf("counter=%llu\n", (unsigned long long)s->counter);
		fflush(stdout);
		usleep(100000);
	}
	mnemo_rawl_close(&log);
	return mnemo_pool_close(&pool) ? die("closing the pool") : 0;
}
