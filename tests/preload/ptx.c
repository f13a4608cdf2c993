/*
 * ptx.c -- under MNEMO_MALLOC=all, blocks that libc or the program
 * allocate between a transaction's begin and its abort survive the abort
 * (the interposer allocates outside the thread's transaction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnemosyne.h"

int main(void)
{
	char *keep[64];
	mnemo_tx_begin();
	for (int i = 0; i < 64; i++) {
		keep[i] = malloc(100);
		snprintf(keep[i], 100, "block %d", i);
	}
	char *grown = realloc(keep[0], 5000);
	mnemo_tx_abort();
	keep[0] = grown;
	/* Reused blocks would be overwritten by these. */
	for (int i = 0; i < 64; i++)
		memset(malloc(100), 'x', 100);
	int bad = strcmp(grown, "block 0") != 0;
	for (int i = 1; i < 64; i++) {
		char want[100];
		snprintf(want, sizeof(want), "block %d", i);
		bad |= strcmp(keep[i], want) != 0;
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	printf("%s\n", bad ? "clobbered" : "intact");
	return bad;
}
