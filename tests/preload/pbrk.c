/*
 * pbrk.c -- memory from sbrk under MNEMO_SBRK=pool persists with the
 * break: each run checks the records that earlier runs appended between
 * the first break (kept in a persistent global) and the current one, then
 * appends one.  Prints the number of runs so far.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnemosyne.h"

struct rec {
	long n;
	char msg[56];
};

MNEMO_PERSISTENT struct rec *base;

int main(void)
{
	if (!base)
		base = sbrk(0);
	struct rec *end = sbrk(0);
	long runs = end - base;
	for (long i = 0; i < runs; i++) {
		char want[56];
		snprintf(want, sizeof(want), "record %ld", i + 1);
		if (base[i].n != i + 1 || strcmp(base[i].msg, want) != 0) {
			printf("bad record %ld\n", i);
			return 1;
		}
	}
	struct rec *r = sbrk(sizeof(*r));
	if (r != end)
		return 2;
	r->n = runs + 1;
	snprintf(r->msg, sizeof(r->msg), "record %ld", r->n);
	printf("runs=%ld\n", runs + 1);
	return 0;
}
