/*
 * pvars.c -- persistent globals under the interposer, in two builds that
 * lay the section out differently (-DV2: variables reordered, one grown,
 * one removed, one added), with ordinary neighbours around the section.
 *
 *   pvars show     print every variable
 *   pvars bump     change every persistent variable and the neighbours
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mnemosyne.h"

int neighbour_data = 11; /* .data, before the section */
#ifndef V2
MNEMO_PERSISTENT long counter = 100;
MNEMO_PERSISTENT char text[32] = "initial";
MNEMO_PERSISTENT short grows = 7;
MNEMO_PERSISTENT int removed = 5;
static MNEMO_PERSISTENT int local_x;
#else
MNEMO_PERSISTENT long grows = 7; /* short in v1: cannot carry over */
MNEMO_PERSISTENT int added = 42;
static MNEMO_PERSISTENT int local_x;
MNEMO_PERSISTENT char text[32] = "initial";
MNEMO_PERSISTENT long counter = 100;
#endif
int neighbour_bss; /* .bss, after the section */

static int same_page(const void *a, const void *b)
{
	return (uintptr_t)a >> 12 == (uintptr_t)b >> 12;
}

static void show(void)
{
	printf("counter=%ld text=%s grows=%ld local_x=%d", counter, text,
	       (long)grows, local_x);
#ifdef V2
	printf(" added=%d", added);
#else
	printf(" removed=%d", removed);
#endif
	printf(" neighbours=%d,%d shared_page=%d\n", neighbour_data,
	       neighbour_bss,
	       same_page(&neighbour_data, &counter) ||
		       same_page(&neighbour_bss, &counter));
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "bump") == 0) {
		counter++;
		local_x += 3;
		grows += 1;
		snprintf(text, sizeof(text), "run%ld", counter);
		neighbour_data = 99; /* must not outlive the run */
		neighbour_bss = 98;
	}
	show();
	return 0;
}
