/*
 * util/container.h - container_of(): from a pointer to a member back to its struct.
 *
 * Owns:  the one definition of container_of (callbacks get an embedded tpool_job, event or
 *        list node and need the object around it).
 * Never: checks that ptr really points into a `type`; the caller knows.
 */
#ifndef POSTEL_UTIL_CONTAINER_H
#define POSTEL_UTIL_CONTAINER_H

#include <stddef.h>

/* The struct type whose member member is at ptr (a pointer to that member, not NULL). */
#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
