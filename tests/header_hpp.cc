// The C++ headers stand alone, each with nothing before it, under
// -Wall -Wextra -Werror -pedantic (compile-only check; see
// tests/header_vector.cc and tests/header_string.cc for the containers).
#include <mnemosyne.hpp>

int main()
{
	return mnemo::zero_is_empty<int>::value ? 0 : 1;
}
