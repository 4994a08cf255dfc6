#include "cheap.h"
#include <malloc.h>

void parley_release_free_memory(void) {
    malloc_trim(0);
}
