/* libpv.c -- a dlopen'd library with persistent globals. */
#include <stddef.h>
#include <stdlib.h>

#include "mnemosyne.h"

MNEMO_PERSISTENT int lib_counter = 1000;
int lib_neighbour = 3;
/* A block from plain malloc (persistent under MNEMO_MALLOC=all). */
MNEMO_PERSISTENT char *lib_block;

int lib_bump(void)
{
	lib_neighbour++;
	return ++lib_counter * 10 + lib_neighbour;
}

/* Keeps a fresh block of n bytes holding 'k'; 0, or -1 if one is kept. */
int lib_keep(size_t n)
{
	if (lib_block)
		return -1;
	lib_block = malloc(n);
	if (!lib_block)
		return -1;
	for (size_t i = 0; i < n; i++)
		lib_block[i] = 'k';
	return 0;
}

/* Hands the kept block over to the caller. */
char *lib_take(void)
{
	char *p = lib_block;
	lib_block = NULL;
	return p;
}
