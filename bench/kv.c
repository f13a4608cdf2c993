/*
 * kv.c -- options of the natural-layout key-value benchmark (kv.h).
 */
#include <pthread.h>

#include "kv.h"

void kv_parse(int argc, char **argv, struct bench_opts *o, const char *extra)
{
	bench_parse(argc, argv, o, extra);
	o->keyspace = o->preload; /* overwrites only */
	if (o->preload < o->threads)
		bench_die(o, "--preload: at least one key per thread");
}

void kv_seq_init(struct bench_seq *q, const struct bench_opts *o, unsigned t)
{
	bench_seq_init(q, o);
	q->s ^= (uint64_t)t * 0x9e3779b97f4a7c15ull;
	if (q->s == 0)
		q->s = 1;
}

uint64_t kv_seq_key(struct bench_seq *q, const struct bench_opts *o,
		    unsigned t)
{
	uint64_t per = o->preload / o->threads; /* keys of each thread */
	return bench_key(bench_seq_next(q) % per * o->threads + t);
}

void kv_run_threads(const struct bench_opts *o, struct kv_worker *w,
		    void *(*fn)(void *))
{
	pthread_t th[64];
	for (unsigned t = 0; t < o->threads; t++)
		w[t] = (struct kv_worker){.t = t};
	if (o->threads == 1) {
		fn(&w[0]);
		return;
	}
	for (unsigned t = 0; t < o->threads; t++)
		if (pthread_create(&th[t], NULL, fn, &w[t]))
			bench_die(o, "pthread_create failed");
	for (unsigned t = 0; t < o->threads; t++)
		pthread_join(th[t], NULL);
}

uint64_t kv_total_ops(const struct bench_opts *o)
{
	return o->ops / o->threads * o->threads;
}
