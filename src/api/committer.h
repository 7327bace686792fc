/* committer.h: group commit for POST /cases: concurrent requests of one process share one
 * transaction (leader/follower, as MySQL's binary log group commit). */
#ifndef OFFLOAD_COMMITTER_H
#define OFFLOAD_COMMITTER_H

struct db;
struct store_case_create;

/*
 * Creates the case of item and returns when its outcome is known (item->outcome; a
 * CREATED case has committed). The calling thread queues item; when fewer than two batches
 * are being committed it becomes a leader at once: it takes its own item and every other
 * queued one (up to STORE_CASE_BATCH_MAX), runs store_case_create_batch on its own
 * connection db, and wakes each waiting thread with its outcome; the lead then passes to
 * the first of the items that queued meanwhile. There is no timer: a lone request is
 * committed at once. Otherwise the thread waits until a leader has committed its item, or
 * until it is handed the lead. item must stay valid until this returns; db is used only
 * while this thread leads. Thread-safe.
 */
void committer_create(struct db *db, struct store_case_create *item);

#endif
