// mnemosyne_vector.hpp stands alone (compile-only check, with -pedantic).
#include <mnemosyne_vector.hpp>

int main()
{
	return mnemo::zero_is_empty<mnemo::vector<int>>::value ? 0 : 1;
}
