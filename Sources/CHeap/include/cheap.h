#ifndef PARLEY_CHEAP_H
#define PARLEY_CHEAP_H

/// Hands the heap memory glibc keeps after frees back to the system (malloc_trim). Long-running front
/// ends call it now and then, so their memory follows what they hold rather than their busiest moment.
/// glibc's malloc.h extensions are not visible through Swift's Glibc module, hence this one C function.
void parley_release_free_memory(void);

#endif
