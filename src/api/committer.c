/* committer.c: group commit for POST /cases, one queue per process. */
#include <pthread.h>
#include <stddef.h>

#include "api/committer.h"
#include "store/case_create.h"

/* Where a queued request stands. */
enum waiter_state {
	WAITER_QUEUED, /* waiting for a leader to take it, or for the lead */
	WAITER_LEAD,   /* handed the lead: commit the queue from its head */
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

/* The process's queue. busy: a leader exists (running a batch, or handed the lead). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *head, *tail;
static int busy;

/* Takes the batch from the head of the queue (the leader's own entry first). Locked. */
static size_t take_batch(struct waiter **batch, struct store_case_create **items)
{
	size_t n = 0;

	while (head && n < STORE_CASE_BATCH_MAX) {
		batch[n] = head;
		items[n] = head->item;
		head->state = WAITER_TAKEN;
		head = head->next;
		n++;
	}
	if (!head)
		tail = NULL;
	return n;
}

/* Commits one batch led by me (whose entry heads the queue) and wakes its members. */
static void lead(struct db *db, struct waiter *me)
{
	struct waiter *batch[STORE_CASE_BATCH_MAX];
	struct store_case_create *items[STORE_CASE_BATCH_MAX];
	size_t n = take_batch(batch, items);

	pthread_mutex_unlock(&lock);
	store_case_create_batch(db, items, n);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		batch[i]->state = WAITER_DONE;
		if (batch[i] != me)
			pthread_cond_signal(&batch[i]->cond);
	}
	/* Those who queued during the commit are the next batch, led by the first of them. */
	if (head) {
		head->state = WAITER_LEAD;
		pthread_cond_signal(&head->cond);
	} else {
		busy = 0;
	}
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
	if (!busy) {
		busy = 1;
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
