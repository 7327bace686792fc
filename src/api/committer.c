/* committer.c: group commit for POST /cases, one queue per process. */
#include <pthread.h>
#include <stddef.h>

#include "api/committer.h"
#include "store/case_create.h"

/* Where a queued request stands. */
enum waiter_state {
	WAITER_QUEUED, /* waiting for a leader to take it, or for the lead */
	WAITER_LEAD,   /* handed the lead: commit a batch from the queue */
	WAITER_TAKEN,  /* in the batch a leader is committing */
	WAITER_DONE,   /* committed or failed: item->outcome says which */
};

/* A request waiting in the queue; lives on its thread's stack. */
struct waiter {
	struct store_case_create *item;
	pthread_cond_t cond;     /* signalled when state changes to LEAD or DONE */
	enum waiter_state state;
	struct waiter *next;
};

/*
 * How many batches may be in flight at once. Two, so that the next batch forms and runs its
 * statements while the previous one waits for its COMMIT (MySQL's group commit pipelines
 * its stages the same way); with one, every round trip of the leader is a pause for the
 * whole process, which a machine short of CPU makes long (measured: fewer requests/s than
 * one transaction per request, though less CPU per case). Concurrent batches of one capped
 * client queue on its row lock, so caps stay exact.
 */
#define COMMITTER_LEADERS 2

/* The process's queue, and its leaders: threads committing a batch, or handed the lead and
 * about to. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *head, *tail;
static unsigned leaders;

static void unlink_waiter(struct waiter *w)
{
	struct waiter **p = &head, *prev = NULL;

	while (*p != w) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = w->next;
	if (tail == w)
		tail = prev;
	w->next = NULL;
}

/* Hands the free leader places to the first requests still queued. Locked. */
static void promote(void)
{
	for (struct waiter *w = head; w && leaders < COMMITTER_LEADERS; w = w->next) {
		if (w->state != WAITER_QUEUED)
			continue;
		w->state = WAITER_LEAD;
		leaders++;
		pthread_cond_signal(&w->cond);
	}
}

/* The batch of leader me: its own request, then the queue from its head. Locked. */
static size_t take_batch(struct waiter *me, struct waiter **batch)
{
	size_t n = 0;

	unlink_waiter(me);
	me->state = WAITER_TAKEN;
	batch[n++] = me;
	while (head && n < STORE_CASE_BATCH_MAX) {
		struct waiter *w = head;

		head = w->next;
		if (!head)
			tail = NULL;
		w->next = NULL;
		/* Handed the lead but not running yet: it rides along, its place is free. */
		if (w->state == WAITER_LEAD)
			leaders--;
		w->state = WAITER_TAKEN;
		batch[n++] = w;
	}
	return n;
}

/* Commits one batch led by me and wakes its members. Locked; unlocks while committing. */
static void lead(struct db *db, struct waiter *me)
{
	struct waiter *batch[STORE_CASE_BATCH_MAX];
	struct store_case_create *items[STORE_CASE_BATCH_MAX];
	size_t n = take_batch(me, batch);

	for (size_t i = 0; i < n; i++)
		items[i] = batch[i]->item;
	promote();
	pthread_mutex_unlock(&lock);
	store_case_create_batch(db, items, n);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		batch[i]->state = WAITER_DONE;
		if (batch[i] != me)
			pthread_cond_signal(&batch[i]->cond);
	}
	/* Those who queued during the commit are the next batch, led by the first of them. */
	leaders--;
	promote();
}

void committer_create(struct db *db, struct store_case_create *item)
{
	struct waiter me = { .item = item, .state = WAITER_QUEUED };
	pthread_cond_init(&me.cond, NULL);
	pthread_mutex_lock(&lock);
	if (tail)
		tail->next = &me;
	else
		head = &me;
	tail = &me;
	if (leaders < COMMITTER_LEADERS) {
		leaders++;
		me.state = WAITER_LEAD;
	}
	while (me.state != WAITER_DONE) {
		if (me.state == WAITER_LEAD)
			lead(db, &me);
		else
			pthread_cond_wait(&me.cond, &lock);
	}
	pthread_mutex_unlock(&lock);
	pthread_cond_destroy(&me.cond);
}
