/* case_list.h: GET /cases: a client's cases, newest change first, a page at a time. */
#ifndef OFFLOAD_STORE_CASE_LIST_H
#define OFFLOAD_STORE_CASE_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "store/types.h"

struct db;

/* Most cases one page may hold. */
#define STORE_CASE_LIST_MAX 200

/* Which cases to list (doc/api.md, "Listing and polling"). */
struct store_case_list_query {
	const char *client_id;            /* the caller: only its cases */
	unsigned statuses;                /* bit (1u << status) per wanted status; 0: any */
	const char *client_reference_id;  /* only cases with this reference, or NULL */
	int has_since;                    /* only cases updated at or after updated_since */
	int64_t updated_since;
	int has_cursor;                   /* only cases after the cursor's case in the order */
	int64_t cursor_updated_at;        /* the last case of the previous page */
	const char *cursor_id;
	size_t limit;                     /* 1..STORE_CASE_LIST_MAX */
};

/* One listed case: enough to load it and to continue after it. */
struct store_case_list_row {
	char id[37];
	int64_t updated_at;
};

/*
 * Lists the cases of q ordered by updated_at, then id, both descending. Fills
 * rows_r[0..*n_r-1] (the caller's array holds q->limit rows) and sets *more_r to 1 when
 * more cases follow the page. Returns 0, or -1 on a database error (db_error(db)).
 */
int store_case_list(struct db *db, const struct store_case_list_query *q,
		    struct store_case_list_row *rows_r, size_t *n_r, int *more_r);

#endif
