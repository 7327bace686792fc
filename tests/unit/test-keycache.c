/* test-keycache.c: the API-key cache's bounds (doc/api.md, "Authentication";
 * doc/operator-guide.md, "API hosts and workers": at most 1 s, never across a reconnection). */
#include <string.h>

#include "api/keycache.h"
#include "test.h"

static void hash_of(unsigned char h[32], unsigned char first, unsigned char last)
{
	memset(h, 0x5a, 32);
	h[0] = first;
	h[31] = last;
}

static struct store_api_key key_of(const char *client, int active)
{
	struct store_api_key k;

	memset(&k, 0, sizeof k);
	strcpy(k.client_id, client);
	k.active = active;
	k.plan = PLAN_PAYG;
	return k;
}

static void test_ttl(void)
{
	unsigned char h[32];
	struct store_api_key k = key_of("11111111-1111-4111-8111-111111111111", 1), got;
	uint64_t gen = 0;
	const int64_t t0 = 5000000;

	test_begin("an entry is used for less than 1 s after its read started, never at 1 s");
	keycache_clear();
	hash_of(h, 1, 1);
	test_assert(!keycache_get(h, t0, 7, &got, &gen));
	keycache_put(h, &k, t0, 7);
	test_assert(keycache_get(h, t0, 7, &got, &gen) && gen == 7);
	test_assert(strcmp(got.client_id, k.client_id) == 0 && got.active == 1 && got.plan == PLAN_PAYG);
	test_assert(keycache_get(h, t0 + KEYCACHE_TTL_US - 1, 7, &got, &gen));
	test_assert(!keycache_get(h, t0 + KEYCACHE_TTL_US, 7, &got, &gen));
	test_assert(!keycache_get(h, t0 + 10 * KEYCACHE_TTL_US, 7, &got, &gen));
	/* A clock that went backwards does not make an entry young. */
	test_assert(!keycache_get(h, t0 - 1, 7, &got, &gen));
	test_assert(KEYCACHE_TTL_US <= 1000000);
	test_end();
}

static void test_generation(void)
{
	unsigned char h[32];
	struct store_api_key k = key_of("22222222-2222-4222-8222-222222222222", 1), got;
	uint64_t gen = 0;

	test_begin("a reconnection (another connection count) invalidates every entry");
	keycache_clear();
	hash_of(h, 2, 2);
	keycache_put(h, &k, 100, 3);
	test_assert(keycache_get(h, 200, 3, &got, &gen));
	test_assert(!keycache_get(h, 200, 4, &got, &gen));
	test_assert(!keycache_get(h, 200, 2, &got, &gen));
	test_end();
}

static void test_keys_apart(void)
{
	unsigned char a[32], b[32], c[32];
	struct store_api_key ka = key_of("33333333-3333-4333-8333-333333333333", 1);
	struct store_api_key kb = key_of("44444444-4444-4444-8444-444444444444", 0), got;
	uint64_t gen = 0;

	test_begin("keys that share a slot never answer for each other; deactivated state kept");
	keycache_clear();
	hash_of(a, 9, 1);
	hash_of(b, 9, 2); /* same first bytes: same slot, other key */
	hash_of(c, 10, 1);
	keycache_put(a, &ka, 100, 1);
	test_assert(!keycache_get(b, 100, 1, &got, &gen));
	test_assert(!keycache_get(c, 100, 1, &got, &gen));
	keycache_put(b, &kb, 100, 1);
	test_assert(keycache_get(b, 100, 1, &got, &gen) && got.active == 0 &&
		    strcmp(got.client_id, kb.client_id) == 0);
	test_assert(!keycache_get(a, 100, 1, &got, &gen));
	test_end();

	test_begin("an older read never replaces a fresher entry of the same key");
	keycache_clear();
	keycache_put(a, &kb, 500, 1);   /* read at 500: inactive */
	keycache_put(a, &ka, 400, 1);   /* a slower read that started at 400: active */
	test_assert(keycache_get(a, 600, 1, &got, &gen) && got.active == 0);
	test_end();

	test_begin("keycache_clear forgets everything");
	keycache_put(c, &ka, 100, 1);
	keycache_clear();
	test_assert(!keycache_get(c, 100, 1, &got, &gen));
	test_end();
}

int main(void)
{
	test_ttl();
	test_generation();
	test_keys_apart();
	return test_done();
}
