/* libpv.c -- a dlopen'd library with a persistent global. */
#include "mnemosyne.h"

MNEMO_PERSISTENT int lib_counter = 1000;
int lib_neighbour = 3;

int lib_bump(void)
{
	lib_neighbour++;
	return ++lib_counter * 10 + lib_neighbour;
}
