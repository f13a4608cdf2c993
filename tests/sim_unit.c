/*
 * sim_unit.c -- the sim backend itself is strict: only lines flushed and then
 * fenced survive a simulated crash; tearing keeps whole 8-byte words.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define WORDS 512

/* In a child on the sim backend: write `val` to all words; flush the first
 * quarter and fence, flush the second quarter only; then crash at the next
 * persist point (or close, when crash_at is 0). */
static void child(const char *path, uint64_t val, int crash_at, bool tear)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		t_sim_env(crash_at, tear, 12345);
		mnemo_pool *p = t_open(path, MNEMO_BACKEND_SIM);
		uint64_t *d;
		cr_assert_eq(mnemo_region_find(p, "d", (void **)&d, NULL), 0);
		for (int i = 0; i < WORDS; i++)
			d[i] = val;
		mnemo_persist(d, WORDS / 4 * 8);
		mnemo_flush(d + WORDS / 4, WORDS / 4 * 8);
		mnemo_fence(); /* crash_at == 2: dies here */
		mnemo_pool_close(&p);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), crash_at ? MNEMO_SIM_CRASH_EXIT : 0);
}

static uint64_t *reopen(const char *path, mnemo_pool **p)
{
	*p = t_open(path, MNEMO_BACKEND_FILE);
	uint64_t *d;
	cr_assert_eq(mnemo_region_find(*p, "d", (void **)&d, NULL), 0);
	return d;
}

static const char *setup(void)
{
	const char *path = t_path("sim");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *a;
	cr_assert_eq(mnemo_region_create(p, "d", WORDS * 8, &a), 0);
	mnemo_pool_close(&p);
	return path;
}

Test(sim, only_flushed_and_fenced_lines_survive)
{
	const char *path = setup();
	child(path, 7, 2, false);
	mnemo_pool *p;
	uint64_t *d = reopen(path, &p);
	for (int i = 0; i < WORDS; i++)
		cr_assert_eq(d[i], i < WORDS / 4 ? 7u : 0u, "word %d", i);
	mnemo_pool_close(&p);
}

Test(sim, close_drops_unfenced_stores)
{
	const char *path = setup();
	child(path, 9, 0, false); /* no crash: the second fence makes q2 durable */
	mnemo_pool *p;
	uint64_t *d = reopen(path, &p);
	for (int i = 0; i < WORDS; i++)
		cr_assert_eq(d[i], i < WORDS / 2 ? 9u : 0u, "word %d", i);
	mnemo_pool_close(&p);
}

Test(sim, tear_keeps_whole_words)
{
	const char *path = setup();
	child(path, 0x1111111111111111ull, 2, true);
	mnemo_pool *p;
	uint64_t *d = reopen(path, &p);
	int old = 0, new = 0;
	for (int i = 0; i < WORDS; i++) {
		cr_assert(d[i] == 0 || d[i] == 0x1111111111111111ull, "word %d torn", i);
		if (i < WORDS / 4)
			cr_assert_eq(d[i], 0x1111111111111111ull);
		else
			d[i] ? new++ : old++;
	}
	cr_assert(old > 0 && new > 0, "tearing kept %d and lost %d words", new, old);
	mnemo_pool_close(&p);
}

Test(sim, bad_crash_setting_is_an_error)
{
	const char *path = setup();
	setenv("MNEMO_SIM_CRASH_AT", "soon", 1);
	mnemo_pool *p = NULL;
	cr_assert_eq(mnemo_pool_open(path, MNEMO_BACKEND_SIM, &p), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_SIM_CRASH_AT"));
	unsetenv("MNEMO_SIM_CRASH_AT");
}
