/*
 * kv.c -- options and the timed loop of the natural-layout key-value
 * benchmark (kv.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "kv.h"

void kv_parse(int argc, char **argv, struct bench_opts *o, const char *extra)
{
	bench_parse(argc, argv, o, extra);
	o->keyspace = o->preload; /* overwrites only */
	if (o->preload < o->threads)
		bench_die(o, "--preload: at least one key per thread");
}

struct worker {
	const struct bench_opts *o;
	const struct kv_system *s;
	unsigned t;
	uint64_t lines, fences;
};

static void *run_share(void *arg)
{
	struct worker *w = arg;
	const struct bench_opts *o = w->o;
	unsigned char *val = malloc(o->vsize);
	if (!val)
		bench_die(o, "out of memory");
	struct bench_seq q;
	bench_seq_init(&q, o);
	q.s ^= (uint64_t)w->t * 0x9e3779b97f4a7c15ull;
	if (q.s == 0)
		q.s = 1;
	uint64_t per = o->preload / o->threads; /* keys of each thread */
	if (w->s->reset_counts)
		w->s->reset_counts();
	for (uint64_t i = 0; i < o->ops / o->threads; i++) {
		uint64_t key =
			bench_key(bench_seq_next(&q) % per * o->threads + w->t);
		bench_fill_value(val, o->vsize, key, i + 1);
		w->s->overwrite(key, val);
	}
	if (w->s->read_counts)
		w->s->read_counts(&w->lines, &w->fences);
	free(val);
	return NULL;
}

uint64_t kv_timed_loop(const struct bench_opts *o, const struct kv_system *s,
		       uint64_t *ops, double *lines, double *fences)
{
	struct worker w[64];
	pthread_t th[64];
	for (unsigned t = 0; t < o->threads; t++)
		w[t] = (struct worker){o, s, t, 0, 0};
	uint64_t t0 = bench_now_ns();
	if (o->threads == 1) {
		run_share(&w[0]);
	} else {
		for (unsigned t = 0; t < o->threads; t++)
			if (pthread_create(&th[t], NULL, run_share, &w[t]))
				bench_die(o, "pthread_create failed");
		for (unsigned t = 0; t < o->threads; t++)
			pthread_join(th[t], NULL);
	}
	uint64_t ns = bench_now_ns() - t0;
	*ops = o->ops / o->threads * o->threads;
	*lines = *fences = s->read_counts ? 0 : -1;
	for (unsigned t = 0; s->read_counts && t < o->threads; t++) {
		*lines += (double)w[t].lines;
		*fences += (double)w[t].fences;
	}
	return ns;
}
