// mnemosyne_string.hpp stands alone (compile-only check, with -pedantic).
#include <mnemosyne_string.hpp>

int main()
{
	return mnemo::zero_is_empty<mnemo::string>::value ? 0 : 1;
}
