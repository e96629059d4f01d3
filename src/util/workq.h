/*
 * util/workq.h - worker threads for blocking disk work, with completions on the loop.
 *
 * Owns:  the threads, the job queue and the completion queue (an eventfd the loop watches).
 * Never: runs a completion anywhere but on the loop thread.
 */
#ifndef POSTEL_UTIL_WORKQ_H
#define POSTEL_UTIL_WORKQ_H

struct event_base;
struct workq;

/* A job: fn runs on a worker thread, then done runs on the loop thread. Caller-owned storage,
 * which must stay valid until done has run. */
struct workq_job {
    void (*fn)(struct workq_job *j);
    void (*done)(struct workq_job *j);
    struct workq_job *next;
};

/* Start n threads whose completions are delivered on base. Aborts on failure (startup). */
struct workq *workq_new(struct event_base *base, unsigned n);
/* Queue a job. */
void workq_submit(struct workq *q, struct workq_job *j);
/* Jobs queued or running. */
unsigned workq_pending(const struct workq *q);
/* Finish queued jobs, stop the threads, run the remaining completions, free. */
void workq_free(struct workq *q);

#endif
