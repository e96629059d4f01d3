/*
 * policy/throttle.c - failed-login throttling per client address and per user.
 *
 * Owns:  three tables (addresses, users and (address, user) pairs), each a chained hash index
 *        with a keyed hash and an LRU list in one array of at most AUTH_THROTTLE_MAX entries;
 *        windows, lockouts, checks in progress, the delay before a failure's reply.
 * Never: sleeps, reads a clock (callers pass now) or checks passwords; does I/O other than
 *        getrandom() for the hash seed.
 * Limits: policy/auth.h (AUTH_THROTTLE_MAX, AUTH_ADDR_MAX, AUTH_USER_MAX, AUTH_USER_FACTOR).
 */
#include "policy/auth.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "policy/authutil.h"
#include "util/str.h"
#include "util/xmalloc.h"

/*
 * Three tables of the same shape: addresses (key addr, user NULL), users (key "" and user)
 * and (address, user) pairs. Address and user entries hold counts; a pair entry holds how
 * many of the failures in its address's and its user's current windows it added, each tagged
 * with that window's epoch, so a success takes back exactly those and a pair left over from
 * an earlier window takes back nothing.
 */
#define THR_NIL UINT32_MAX
#define THR_BUCKETS 16384       /* power of two, > AUTH_THROTTLE_MAX */

enum { THR_ADDR, THR_USER, THR_PAIR, THR_NTAB };

struct thr_ent {
    char addr[AUTH_ADDR_MAX];   /* "" in the user table */
    char *user;                 /* NULL in the address table */
    uint32_t hnext;             /* next in hash chain, or in the free list */
    uint32_t prev, next;        /* LRU list: head has the latest activity */
    unsigned failures;          /* address, user: in the current window */
    unsigned inflight;          /* address, user: checks in progress */
    bool locked;
    uint64_t epoch;             /* address, user: the current window (changes on a reset) */
    time_t first;               /* first failure of the current window */
    time_t last;                /* latest activity */
    time_t locked_until;
    uint64_t addr_epoch, user_epoch;    /* pair: the windows its counts belong to */
    unsigned addr_n, user_n;            /* pair: failures it added to them */
};

struct thr_tab {
    struct thr_ent *e;
    uint32_t nalloc, nused;     /* allocated entries; high-water mark of used ones */
    uint32_t freelist;
    uint32_t count;
    uint32_t head, tail;
    uint32_t *bucket;
};

struct auth_throttle {
    unsigned max_failures, window_s, lockout_s;
    struct thr_tab tab[THR_NTAB];
    uint64_t seed;
    uint64_t epochs;            /* last epoch handed out */
};

struct auth_throttle *auth_throttle_new(unsigned max_failures, unsigned window_s,
    unsigned lockout_s)
{
    struct auth_throttle *t = xcalloc(1, sizeof *t);

    t->max_failures = max_failures;
    t->window_s = window_s;
    t->lockout_s = lockout_s;
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        b->freelist = b->head = b->tail = THR_NIL;
        b->bucket = xmalloc(THR_BUCKETS * sizeof *b->bucket);
        for (size_t i = 0; i < THR_BUCKETS; i++)
            b->bucket[i] = THR_NIL;
    }
    /* A keyed hash keeps clients from choosing colliding keys; the seed changes nothing else. */
    if (authutil_random(&t->seed, sizeof t->seed, GRND_NONBLOCK) == -1)
        t->seed = (uint64_t)(uintptr_t)t ^ (uint64_t)getpid();
    return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
    if (t == NULL)
        return;
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        for (uint32_t i = 0; i < b->nused; i++)
            free(b->e[i].user);
        free(b->e);
        free(b->bucket);
    }
    free(t);
}

size_t auth_throttle_count(const struct auth_throttle *t)
{
    return t != NULL ? t->tab[THR_ADDR].count : 0;
}

/* The limit of failures plus checks in progress for an entry of table k; 0: none. */
static unsigned thr_limit(const struct auth_throttle *t, int k)
{
    if (k == THR_USER)
        return t->max_failures > UINT_MAX / AUTH_USER_FACTOR ? UINT_MAX :
            t->max_failures * AUTH_USER_FACTOR;
    return t->max_failures;
}

static uint32_t thr_hash(const struct auth_throttle *t, const char *addr, const char *user)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;

    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    if (user != NULL) {
        h ^= 0x100;                             /* not an octet: ends the address */
        h *= 0x100000001b3ULL;
        for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ULL;
        }
    }
    h ^= h >> 29;
    return (uint32_t)h & (THR_BUCKETS - 1);
}

static bool thr_same(const struct thr_ent *e, const char *addr, const char *user)
{
    if (strcmp(e->addr, addr) != 0)
        return false;
    if (user == NULL || e->user == NULL)
        return user == NULL && e->user == NULL;
    return strcmp(e->user, user) == 0;
}

static uint32_t thr_find(const struct auth_throttle *t, int k, const char *addr,
    const char *user)
{
    const struct thr_tab *b = &t->tab[k];

    for (uint32_t i = b->bucket[thr_hash(t, addr, user)]; i != THR_NIL; i = b->e[i].hnext) {
        if (thr_same(&b->e[i], addr, user))
            return i;
    }
    return THR_NIL;
}

static void lru_unlink(struct thr_tab *b, uint32_t i)
{
    struct thr_ent *e = &b->e[i];

    if (e->prev != THR_NIL)
        b->e[e->prev].next = e->next;
    else
        b->head = e->next;
    if (e->next != THR_NIL)
        b->e[e->next].prev = e->prev;
    else
        b->tail = e->prev;
    e->prev = e->next = THR_NIL;
}

static void lru_push_head(struct thr_tab *b, uint32_t i)
{
    struct thr_ent *e = &b->e[i];

    e->prev = THR_NIL;
    e->next = b->head;
    if (b->head != THR_NIL)
        b->e[b->head].prev = i;
    b->head = i;
    if (b->tail == THR_NIL)
        b->tail = i;
}

/* Mark entry i of table k active at now: the newest in its LRU list. */
static void thr_touch(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_tab *b = &t->tab[k];

    b->e[i].last = now;
    lru_unlink(b, i);
    lru_push_head(b, i);
}

static void thr_remove(struct auth_throttle *t, int k, uint32_t i)
{
    struct thr_tab *b = &t->tab[k];
    struct thr_ent *e = &b->e[i];
    uint32_t *pp = &b->bucket[thr_hash(t, e->addr, e->user)];

    while (*pp != i)
        pp = &b->e[*pp].hnext;
    *pp = e->hnext;
    lru_unlink(b, i);
    e->addr[0] = '\0';
    free(e->user);
    e->user = NULL;
    e->hnext = b->freelist;
    b->freelist = i;
    b->count--;
}

/* Seconds from a to b, 0 if the clock went backwards. */
static unsigned long long elapsed(time_t a, time_t b)
{
    return b > a ? (unsigned long long)(b - a) : 0;
}

/* An address or user entry: forget a lockout or a window that has run out at now. */
static void thr_refresh(struct auth_throttle *t, struct thr_ent *e, time_t now)
{
    if (e->locked) {
        if (now < e->locked_until)
            return;
        e->locked = false;
    } else if (e->failures == 0 || elapsed(e->first, now) < t->window_s) {
        return;
    }
    e->failures = 0;
    e->epoch = ++t->epochs;                     /* pairs of the old window count no more */
}

/* Does entry i of table k remember nothing that matters at now? (Refreshes it first.) */
static bool thr_idle(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_ent *e = &t->tab[k].e[i];

    if (k == THR_PAIR) {
        /* Its counts belong to windows that began by e->last; such a window, and the
         * lockout it may have led to, are over by then. */
        return elapsed(e->last, now) >= (unsigned long long)t->window_s + t->lockout_s;
    }
    thr_refresh(t, e, now);
    return e->inflight == 0 && e->failures == 0 && !e->locked;
}

/* Forget idle entries at the cold end of each LRU list. */
static void thr_sweep(struct auth_throttle *t, time_t now)
{
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        while (b->tail != THR_NIL && thr_idle(t, k, b->tail, now))
            thr_remove(t, k, b->tail);
    }
}

/* The entry for the key in table k, refreshed, or THR_NIL (an idle one is dropped). */
static uint32_t thr_lookup(struct auth_throttle *t, int k, const char *addr, const char *user,
    time_t now)
{
    uint32_t i = thr_find(t, k, addr, user);

    if (i != THR_NIL && thr_idle(t, k, i, now)) {
        thr_remove(t, k, i);
        return THR_NIL;
    }
    return i;
}

/*
 * A new entry for the key in table k, or THR_NIL if the table is full of entries with
 * checks in progress. At capacity the entry with the oldest activity and no check in
 * progress is forgotten to make room.
 */
static uint32_t thr_add(struct auth_throttle *t, int k, const char *addr, const char *user,
    time_t now)
{
    struct thr_tab *b = &t->tab[k];
    struct thr_ent *e;
    uint32_t i, h;

    if (b->count >= AUTH_THROTTLE_MAX) {
        /* Entries with checks in progress are at most the checks running: a short walk. */
        for (i = b->tail; i != THR_NIL && b->e[i].inflight > 0; i = b->e[i].prev)
            ;
        if (i == THR_NIL)
            return THR_NIL;
        thr_remove(t, k, i);
    }
    if (b->freelist != THR_NIL) {
        i = b->freelist;
        b->freelist = b->e[i].hnext;
    } else {
        if (b->nused == b->nalloc) {
            uint32_t ncap = b->nalloc ? b->nalloc * 2 : 64;
            if (ncap > AUTH_THROTTLE_MAX)
                ncap = AUTH_THROTTLE_MAX;
            b->e = xreallocarray(b->e, ncap, sizeof *b->e);
            b->nalloc = ncap;
        }
        i = b->nused++;
    }
    b->count++;
    e = &b->e[i];
    memset(e, 0, sizeof *e);
    (void)str_copy(e->addr, sizeof e->addr, addr);
    e->user = user != NULL ? xstrdup(user) : NULL;
    e->epoch = ++t->epochs;
    e->first = e->last = now;
    h = thr_hash(t, e->addr, e->user);
    e->hnext = b->bucket[h];
    b->bucket[h] = i;
    e->prev = e->next = THR_NIL;
    lru_push_head(b, i);
    return i;
}

/* The keys as stored: truncated address, user name cut at AUTH_USER_MAX octets. */
static void thr_keys(const char *addr, const char *user, char *ka, size_t kasz, char *ku,
    size_t kusz)
{
    (void)str_copy(ka, kasz, addr != NULL ? addr : "");    /* truncated: a coarser key */
    (void)str_copy(ku, kusz, user != NULL ? user : "");
}

/* Entry i of table k (or THR_NIL) has reached its limit, counting checks in progress. */
static bool thr_full(const struct auth_throttle *t, int k, uint32_t i)
{
    const struct thr_ent *e;
    unsigned limit = thr_limit(t, k);

    if (i == THR_NIL || limit == 0)
        return false;
    e = &t->tab[k].e[i];
    return e->failures >= limit || e->inflight >= limit - e->failures;
}

static enum auth_gate thr_gate(struct auth_throttle *t, const char *ka, const char *ku,
    time_t now, unsigned *delay_ms, uint32_t *ai, uint32_t *ui)
{
    enum auth_gate g;
    unsigned f;

    *ai = thr_lookup(t, THR_ADDR, ka, NULL, now);
    *ui = thr_lookup(t, THR_USER, "", ku, now);
    if ((*ai != THR_NIL && t->tab[THR_ADDR].e[*ai].locked) ||
        (*ui != THR_NIL && t->tab[THR_USER].e[*ui].locked))
        return AUTH_GATE_LOCKED;
    f = *ai != THR_NIL ? t->tab[THR_ADDR].e[*ai].failures : 0;
    if (thr_full(t, THR_ADDR, *ai) || thr_full(t, THR_USER, *ui))
        g = AUTH_GATE_BUSY;
    else
        g = f > 0 ? AUTH_GATE_DELAY : AUTH_GATE_OPEN;
    if (f > 4)
        f = 4;
    if (delay_ms != NULL && f > 0)
        *delay_ms = 1000u << (f - 1);           /* 1 s, 2 s, 4 s, 8 s */
    return g;
}

enum auth_gate auth_throttle_check(struct auth_throttle *t, const char *addr, const char *user,
    time_t now, unsigned *delay_ms)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    uint32_t ai, ui;

    if (delay_ms != NULL)
        *delay_ms = 0;
    if (t->window_s == 0)
        return AUTH_GATE_OPEN;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    return thr_gate(t, ka, ku, now, delay_ms, &ai, &ui);
}

enum auth_gate auth_throttle_begin(struct auth_throttle *t, const char *addr, const char *user,
    time_t now)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    enum auth_gate g;
    uint32_t ai, ui;

    if (t->window_s == 0)
        return AUTH_GATE_OPEN;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    thr_sweep(t, now);
    g = thr_gate(t, ka, ku, now, NULL, &ai, &ui);
    if (g == AUTH_GATE_BUSY || g == AUTH_GATE_LOCKED)
        return g;
    if (ai == THR_NIL && (ai = thr_add(t, THR_ADDR, ka, NULL, now)) == THR_NIL)
        return AUTH_GATE_BUSY;
    if (ui == THR_NIL && (ui = thr_add(t, THR_USER, "", ku, now)) == THR_NIL) {
        if (thr_idle(t, THR_ADDR, ai, now))
            thr_remove(t, THR_ADDR, ai);
        return AUTH_GATE_BUSY;
    }
    t->tab[THR_ADDR].e[ai].inflight++;
    t->tab[THR_USER].e[ui].inflight++;
    thr_touch(t, THR_ADDR, ai, now);
    thr_touch(t, THR_USER, ui, now);
    return g;
}

/* Count a failure in address or user entry i of table k. Returns whether it was counted. */
static bool thr_count_failure(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_ent *e = &t->tab[k].e[i];
    unsigned limit = thr_limit(t, k);

    thr_refresh(t, e, now);
    if (e->locked)
        return false;                           /* refused attempts do not extend it */
    if (e->failures == 0)
        e->first = now;
    if (e->failures < UINT_MAX)
        e->failures++;
    if (limit != 0 && e->failures >= limit) {
        e->locked = true;
        e->locked_until = now + (time_t)t->lockout_s;
    }
    thr_touch(t, k, i, now);
    return true;
}

/* A pair's share n (of the window epoch) no longer counts in address or user entry i. */
static void thr_take_back(struct auth_throttle *t, int k, uint32_t i, uint64_t epoch,
    unsigned n)
{
    struct thr_ent *e;

    if (i == THR_NIL)
        return;
    e = &t->tab[k].e[i];
    if (e->epoch != epoch || e->locked)
        return;
    e->failures = n < e->failures ? e->failures - n : 0;
}

/* Record a failure of (ka, ku) in the address and user entries ai, ui (THR_NIL: add one). */
static void thr_record_failure(struct auth_throttle *t, const char *ka, const char *ku,
    uint32_t ai, uint32_t ui, time_t now)
{
    bool in_a = false, in_u = false;
    struct thr_ent *p;
    uint32_t pi;

    if (ai == THR_NIL)
        ai = thr_add(t, THR_ADDR, ka, NULL, now);
    if (ui == THR_NIL)
        ui = thr_add(t, THR_USER, "", ku, now);
    if (ai != THR_NIL)
        in_a = thr_count_failure(t, THR_ADDR, ai, now);
    if (ui != THR_NIL)
        in_u = thr_count_failure(t, THR_USER, ui, now);
    if (!in_a && !in_u)
        return;
    pi = thr_find(t, THR_PAIR, ka, ku);
    if (pi == THR_NIL && (pi = thr_add(t, THR_PAIR, ka, ku, now)) == THR_NIL)
        return;                                 /* a success then takes back nothing */
    p = &t->tab[THR_PAIR].e[pi];
    if (in_a) {
        uint64_t ep = t->tab[THR_ADDR].e[ai].epoch;
        if (p->addr_epoch != ep) {
            p->addr_epoch = ep;
            p->addr_n = 0;
        }
        if (p->addr_n < UINT_MAX)
            p->addr_n++;
    }
    if (in_u) {
        uint64_t ep = t->tab[THR_USER].e[ui].epoch;
        if (p->user_epoch != ep) {
            p->user_epoch = ep;
            p->user_n = 0;
        }
        if (p->user_n < UINT_MAX)
            p->user_n++;
    }
    thr_touch(t, THR_PAIR, pi, now);
}

void auth_throttle_end(struct auth_throttle *t, const char *addr, const char *user,
    enum auth_result r, time_t now)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    uint32_t ai, ui, pi;

    if (t->window_s == 0)
        return;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    ai = thr_find(t, THR_ADDR, ka, NULL);
    ui = thr_find(t, THR_USER, "", ku);
    if (ai != THR_NIL && t->tab[THR_ADDR].e[ai].inflight > 0)
        t->tab[THR_ADDR].e[ai].inflight--;
    if (ui != THR_NIL && t->tab[THR_USER].e[ui].inflight > 0)
        t->tab[THR_USER].e[ui].inflight--;
    if (ai != THR_NIL)
        thr_refresh(t, &t->tab[THR_ADDR].e[ai], now);
    if (ui != THR_NIL)
        thr_refresh(t, &t->tab[THR_USER].e[ui], now);
    if (r == AUTH_RES_FAIL) {
        thr_record_failure(t, ka, ku, ai, ui, now);
        thr_sweep(t, now);
        return;
    }
    if (r == AUTH_RES_OK && (pi = thr_find(t, THR_PAIR, ka, ku)) != THR_NIL) {
        const struct thr_ent *p = &t->tab[THR_PAIR].e[pi];

        thr_take_back(t, THR_ADDR, ai, p->addr_epoch, p->addr_n);
        thr_take_back(t, THR_USER, ui, p->user_epoch, p->user_n);
        thr_remove(t, THR_PAIR, pi);
    }
    if (ai != THR_NIL && thr_idle(t, THR_ADDR, ai, now))
        thr_remove(t, THR_ADDR, ai);
    if (ui != THR_NIL && thr_idle(t, THR_USER, ui, now))
        thr_remove(t, THR_USER, ui);
}
