/*
 * util/tpool.h - worker threads for blocking disk work, with completions on the loop.
 *
 * Owns:  the threads, the job queue and the completion queue (an eventfd the loop watches).
 * Never: runs a completion anywhere but on the loop thread.
 */
#ifndef POSTEL_UTIL_TPOOL_H
#define POSTEL_UTIL_TPOOL_H

struct event_base;
struct tpool;

/* A job: fn runs on a worker thread, then done runs on the loop thread. Caller-owned storage,
 * which must stay valid until done has run. */
struct tpool_job {
    void (*fn)(struct tpool_job *j);
    void (*done)(struct tpool_job *j);
    struct tpool_job *next;
};

/* Start n threads whose completions are delivered on base. Aborts on failure (startup). */
struct tpool *tpool_new(struct event_base *base, unsigned n);
/* Queue a job. */
void tpool_submit(struct tpool *q, struct tpool_job *j);
/* Jobs queued or running. */
unsigned tpool_pending(const struct tpool *q);
/* Jobs that have not started yet are not run: their done runs on the loop as usual, without
 * fn (the caller tells by what fn would have set). Jobs running now finish. For a pool whose
 * queued work is worthless once the loop has stopped (call it before tpool_free()). */
void tpool_cancel(struct tpool *q);
/* Finish queued jobs, stop the threads, run the remaining completions, free. */
void tpool_free(struct tpool *q);

#endif
