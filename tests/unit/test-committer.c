/* test-committer.c: the group committer of POST /cases (src/api/committer.c) against a fake
 * store: every request answered with its own outcome, at most two batches at once, a leader's
 * own request in its batch, requests that wait together share a batch, a lone one at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/committer.h"
#include "store/case_create.h"
#include "test.h"

#define THREADS 24
#define PER_THREAD 150

/* What the fake store saw. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int in_flight, max_in_flight;
static size_t batches, biggest, rows, bad_batches;
static int delay_us = 200;
static struct store_case_create *last_items[STORE_CASE_BATCH_MAX];

/* A stand-in for the real batch: outcomes from the case id's first character, a short
 * pause as a transaction would take, and counts. */
size_t store_case_create_batch(struct db *db, struct store_case_create *const *items, size_t n)
{
	struct timespec ts = { 0, delay_us * 1000L };
	size_t failed = 0;

	(void)db;
	pthread_mutex_lock(&seen_lock);
	in_flight++;
	if (in_flight > max_in_flight)
		max_in_flight = in_flight;
	batches++;
	if (n > biggest)
		biggest = n;
	if (n < 1 || n > STORE_CASE_BATCH_MAX)
		bad_batches++;
	rows += n;
	memcpy(last_items, items, (n < STORE_CASE_BATCH_MAX ? n : STORE_CASE_BATCH_MAX) * sizeof *items);
	pthread_mutex_unlock(&seen_lock);
	nanosleep(&ts, NULL);
	for (size_t i = 0; i < n; i++) {
		if (items[i]->outcome != STORE_CASE_CREATE_PENDING)
			bad_batches++; /* an item committed twice */
		switch (items[i]->row.id[0]) {
		case 'L':
			items[i]->outcome = STORE_CASE_CREATE_LIMITED;
			break;
		case 'F':
			items[i]->outcome = STORE_CASE_CREATE_FAILED;
			failed++;
			break;
		default:
			items[i]->outcome = STORE_CASE_CREATE_CREATED;
			break;
		}
	}
	pthread_mutex_lock(&seen_lock);
	in_flight--;
	pthread_mutex_unlock(&seen_lock);
	return failed;
}

struct worker {
	int index;
	int wrong; /* requests answered with another request's outcome */
};

static void *work(void *arg)
{
	struct worker *w = arg;
	static const char kinds[] = "CLFC";

	for (int i = 0; i < PER_THREAD; i++) {
		struct store_case_create item;
		enum store_case_create_outcome want;
		char kind = kinds[(w->index + i) % 4];

		memset(&item, 0, sizeof item);
		item.row.id[0] = kind;
		item.outcome = STORE_CASE_CREATE_PENDING;
		/* Each thread's own db pointer: only this thread uses it, while it leads. */
		committer_create((struct db *)(uintptr_t)(w->index + 1), &item);
		want = kind == 'L' ? STORE_CASE_CREATE_LIMITED :
		       kind == 'F' ? STORE_CASE_CREATE_FAILED : STORE_CASE_CREATE_CREATED;
		if (item.outcome != want)
			w->wrong++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t tids[THREADS];
	struct worker ws[THREADS];
	int wrong = 0;

	test_begin("concurrent requests: own outcomes, shared batches, at most two at once");
	for (int i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){ .index = i };
		test_assert(pthread_create(&tids[i], NULL, work, &ws[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(tids[i], NULL);
		wrong += ws[i].wrong;
	}
	test_assert(wrong == 0);
	test_assert(bad_batches == 0);
	test_assert(rows == (size_t)THREADS * PER_THREAD);
	test_assert(max_in_flight <= 2);
	test_assert(max_in_flight == 2);
	test_assert(biggest > 1);
	test_assert(batches < rows);
	printf("# %zu requests in %zu batches (largest %zu), %d at once at most\n", rows, batches,
	       biggest, max_in_flight);
	test_end();
}

static void test_lone(void)
{
	struct store_case_create item;
	size_t before = batches;

	test_begin("a lone request is a batch of one, committed at once");
	delay_us = 0;
	memset(&item, 0, sizeof item);
	item.row.id[0] = 'C';
	committer_create((struct db *)1, &item);
	test_assert(item.outcome == STORE_CASE_CREATE_CREATED);
	test_assert(batches == before + 1);
	test_assert(last_items[0] == &item);
	test_end();
}

int main(void)
{
	test_concurrent();
	test_lone();
	return test_done();
}
