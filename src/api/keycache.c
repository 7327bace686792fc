/* keycache.c: API keys remembered for at most a second, shared by the threads of offload-api. */
#include <pthread.h>
#include <string.h>

#include "api/keycache.h"
#include "common/util.h"
#include "store/auth.h"
#include "store/db.h"

/* Direct-mapped by the hash's first bytes: a collision only costs a database read. Only
 * keys that exist are stored, so the table cannot be filled with invented keys. */
#define KEYCACHE_SLOTS 1024

struct entry {
	unsigned char hash[32];
	struct store_api_key key;
	int64_t read_at_us;  /* monotonic time when the database read started */
	uint64_t generation; /* db_connections_made() before that read */
	int used;
};

/* One lock for all threads: held for a 32-byte compare and a copy, far below the cost of
 * the database round trip it saves. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry table[KEYCACHE_SLOTS];

static size_t slot_of(const unsigned char hash[32])
{
	return ((size_t)hash[0] | (size_t)hash[1] << 8) % KEYCACHE_SLOTS;
}

int keycache_get(const unsigned char key_hash[32], int64_t now_us, uint64_t generation,
		 struct store_api_key *key_r, uint64_t *generation_r)
{
	struct entry *e = &table[slot_of(key_hash)];
	int hit = 0;

	pthread_mutex_lock(&lock);
	if (e->used && e->generation == generation && now_us >= e->read_at_us &&
	    now_us - e->read_at_us < KEYCACHE_TTL_US && memcmp(e->hash, key_hash, 32) == 0) {
		*key_r = e->key;
		*generation_r = e->generation;
		hit = 1;
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

void keycache_put(const unsigned char key_hash[32], const struct store_api_key *key,
		  int64_t read_at_us, uint64_t generation)
{
	struct entry *e = &table[slot_of(key_hash)];

	pthread_mutex_lock(&lock);
	/* Never replace a fresher entry of the same key by this one. */
	if (!(e->used && memcmp(e->hash, key_hash, 32) == 0 && e->read_at_us > read_at_us)) {
		memcpy(e->hash, key_hash, 32);
		e->key = *key;
		e->read_at_us = read_at_us;
		e->generation = generation;
		e->used = 1;
	}
	pthread_mutex_unlock(&lock);
}

int keycache_lookup(struct db *db, const unsigned char key_hash[32], struct store_api_key *key_r,
		    uint64_t *generation_r, const char **error_r)
{
	int64_t now = util_now_us();
	uint64_t generation = db_connections_made();
	int found;

	if (keycache_get(key_hash, now, generation, key_r, generation_r))
		return 1;
	/* The time and the connection count are taken before the read: the entry then ages
	 * from a moment at which the database state it holds was not yet read. */
	*generation_r = generation;
	found = store_api_key_lookup(db, key_hash, key_r, error_r);
	if (found == 1)
		keycache_put(key_hash, key_r, now, generation);
	return found;
}

void keycache_clear(void)
{
	pthread_mutex_lock(&lock);
	memset(table, 0, sizeof table);
	pthread_mutex_unlock(&lock);
}
