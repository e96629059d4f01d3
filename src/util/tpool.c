/*
 * util/tpool.c - worker threads with completions on the event loop.
 */
#include "util/tpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"

struct tpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tpool_job *head, *tail;      /* to run */
    struct tpool_job *done_head, *done_tail;
    unsigned pending;
    bool stop;
    int efd;
    struct event *ev;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker_main(void *arg)
{
    struct tpool *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->head == NULL && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        struct tpool_job *j = q->head;
        if (j == NULL) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        pthread_mutex_unlock(&q->mu);

        j->fn(j);

        pthread_mutex_lock(&q->mu);
        j->next = NULL;
        bool was_empty = q->done_head == NULL;
        if (q->done_tail)
            q->done_tail->next = j;
        else
            q->done_head = j;
        q->done_tail = j;
        pthread_mutex_unlock(&q->mu);
        if (was_empty) {
            uint64_t one = 1;
            while (write(q->efd, &one, sizeof one) == -1 && errno == EINTR)
                ;
        }
    }
}

static void run_completions(struct tpool *q)
{
    pthread_mutex_lock(&q->mu);
    struct tpool_job *j = q->done_head;
    q->done_head = q->done_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (j) {
        struct tpool_job *next = j->next;
        pthread_mutex_lock(&q->mu);
        q->pending--;
        pthread_mutex_unlock(&q->mu);
        j->done(j);
        j = next;
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    run_completions(arg);
}

struct tpool *tpool_new(struct event_base *base, unsigned n)
{
    struct tpool *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd == -1)
        log_fatal("eventfd");
    q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, on_event, q);
    if (q->ev == NULL || event_add(q->ev, NULL) == -1)
        log_fatalx("tpool: cannot watch the completion queue");
    q->threads = xcalloc(n, sizeof *q->threads);
    q->nthreads = n;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
            log_fatalx("tpool: cannot start worker thread");
    }
    return q;
}

void tpool_submit(struct tpool *q, struct tpool_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->pending++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

unsigned tpool_pending(const struct tpool *q)
{
    return q->pending;
}

void tpool_cancel(struct tpool *q)
{
    pthread_mutex_lock(&q->mu);
    struct tpool_job *j = q->head;
    bool was_empty = q->done_head == NULL;
    q->head = q->tail = NULL;
    if (j != NULL) {
        if (q->done_tail)
            q->done_tail->next = j;
        else
            q->done_head = j;
        while (j->next != NULL)
            j = j->next;
        q->done_tail = j;
    }
    pthread_mutex_unlock(&q->mu);
    if (j != NULL && was_empty) {
        uint64_t one = 1;
        while (write(q->efd, &one, sizeof one) == -1 && errno == EINTR)
            ;
    }
}

void tpool_free(struct tpool *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    run_completions(q);
    event_free(q->ev);
    close(q->efd);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->threads);
    free(q);
}
