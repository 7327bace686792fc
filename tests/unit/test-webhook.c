/* test-webhook.c: unit tests for webhook signing (Standard Webhooks), the retry schedule,
 * and the lease engine's backoff and lease check. */
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "store/lease.h"
#include "webhook/deliver.h"

/* The Standard Webhooks specification's published example (also computed with Python's
 * hmac module when this test was written). */
#define VECTOR_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VECTOR_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VECTOR_TS 1614265330
#define VECTOR_BODY "{\"test\": 2432232314}"
#define VECTOR_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* A second secret (bytes 1..32) and the signatures of one message with each key, computed
 * independently with: base64(hmac.new(key, b'evt_x_case_completed_1.1700000000.{"a":1}',
 * sha256).digest()). */
#define NEW_SECRET "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define ROT_ID "evt_x_case_completed_1"
#define ROT_TS 1700000000
#define ROT_BODY "{\"a\":1}"
#define ROT_SIG_NEW "v1,nwS9rFB5PbyBCLnujCak8x4nLBHkOFtWkTPjAHJXGfA="
#define ROT_SIG_OLD "v1,97Vr6pZUaujHKqivzDwkuZnjQQ7f004bRj+jFHIg5DE="

static void test_sign_vector(void)
{
	char out[256];

	test_begin("sign: Standard Webhooks example vector");
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), out, sizeof out) == 0);
	test_assert_str(out, VECTOR_SIG);
	/* An empty previous secret is no rotation. */
	test_assert(webhook_sign(VECTOR_SECRET, "", VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), out, sizeof out) == 0);
	test_assert_str(out, VECTOR_SIG);
	/* The whsec_ prefix is optional. */
	test_assert(webhook_sign(VECTOR_SECRET + 6, NULL, VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), out, sizeof out) == 0);
	test_assert_str(out, VECTOR_SIG);
	test_end();
}

static void test_sign_body_matters(void)
{
	char a[128], b[128], c[128], d[128];

	test_begin("sign: id, timestamp and every body byte are covered");
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), a, sizeof a) == 0);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, "{\"test\":2432232314}",
				 strlen("{\"test\":2432232314}"), b, sizeof b) == 0);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS + 1, VECTOR_BODY,
				 strlen(VECTOR_BODY), c, sizeof c) == 0);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, "msg_other", VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), d, sizeof d) == 0);
	test_assert(strcmp(a, b) != 0);
	test_assert(strcmp(a, c) != 0);
	test_assert(strcmp(a, d) != 0);
	/* A body with a NUL byte is signed over its length, not up to the NUL. */
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, "ab\0c", 4, b,
				 sizeof b) == 0);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, "ab", 2, c,
				 sizeof c) == 0);
	test_assert(strcmp(b, c) != 0);
	test_end();
}

static void test_sign_rotation(void)
{
	char out[256];

	test_begin("sign: during a rotation both signatures, current first, space separated");
	test_assert(webhook_sign(NEW_SECRET, NULL, ROT_ID, ROT_TS, ROT_BODY, strlen(ROT_BODY), out,
				 sizeof out) == 0);
	test_assert_str(out, ROT_SIG_NEW);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, ROT_ID, ROT_TS, ROT_BODY, strlen(ROT_BODY), out,
				 sizeof out) == 0);
	test_assert_str(out, ROT_SIG_OLD);
	test_assert(webhook_sign(NEW_SECRET, VECTOR_SECRET, ROT_ID, ROT_TS, ROT_BODY,
				 strlen(ROT_BODY), out, sizeof out) == 0);
	test_assert_str(out, ROT_SIG_NEW " " ROT_SIG_OLD);
	test_end();
}

static void test_sign_errors(void)
{
	char out[256], long_secret[89];

	test_begin("sign: malformed secrets and short buffers are errors");
	test_assert(webhook_sign("whsec_not base64!", NULL, "m", 1, "{}", 2, out, sizeof out) < 0);
	test_assert(webhook_sign("whsec_", NULL, "m", 1, "{}", 2, out, sizeof out) < 0);
	test_assert(webhook_sign(NULL, NULL, "m", 1, "{}", 2, out, sizeof out) < 0);
	test_assert(webhook_sign(VECTOR_SECRET, "whsec_%%%%", "m", 1, "{}", 2, out, sizeof out) < 0);
	/* 66 bytes: longer than the Standard Webhooks maximum of 64. */
	memset(long_secret, 'A', 88);
	long_secret[88] = '\0';
	test_assert(webhook_sign(long_secret, NULL, "m", 1, "{}", 2, out, sizeof out) < 0);
	/* 64 bytes: the maximum. */
	long_secret[86] = '=';
	long_secret[87] = '=';
	test_assert(webhook_sign(long_secret, NULL, "m", 1, "{}", 2, out, sizeof out) == 0);
	/* "v1," + 44 base64 characters + NUL = 48 bytes. */
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), out, 47) < 0);
	test_assert(webhook_sign(VECTOR_SECRET, NULL, VECTOR_ID, VECTOR_TS, VECTOR_BODY,
				 strlen(VECTOR_BODY), out, 48) == 0);
	test_assert_str(out, VECTOR_SIG);
	test_end();
}

static void test_schedule_default(void)
{
	static const int64_t want[] = { 5, 300, 1800, 7200, 18000, 36000, 21600 };
	struct webhook_schedule s;
	const char *err = NULL;
	int64_t total = 0;

	test_begin("schedule: the default parses to 7 waits, about a day in all");
	test_assert(webhook_schedule_parse(WEBHOOK_DEFAULT_SCHEDULE, &s, &err) == 0);
	test_assert(s.n == 7);
	for (size_t i = 0; i < 7 && i < s.n; i++) {
		test_assert(s.waits_s[i] == want[i]);
		total += s.waits_s[i];
	}
	test_assert(total == 84905); /* 23.6 h: "about a day" (doc/api.md, "Webhooks") */
	test_end();
}

static void test_schedule_parse(void)
{
	static const char *const bad[] = {
		"", " ", ",", "5,", ",5", "5,,6", "0", "5,0", "-5", "5s", "abc", "5;6", "1.5",
		"604801", "99999999999999999999999", "5 6", NULL,
	};
	struct webhook_schedule s;
	const char *err = NULL;
	char many[400] = "1";

	test_begin("schedule: spaces allowed, malformed lists refused");
	test_assert(webhook_schedule_parse(" 1 , 2,3 ", &s, &err) == 0);
	test_assert(s.n == 3 && s.waits_s[0] == 1 && s.waits_s[1] == 2 && s.waits_s[2] == 3);
	test_assert(webhook_schedule_parse("604800", &s, &err) == 0 && s.n == 1);
	for (size_t i = 0; bad[i]; i++) {
		err = NULL;
		if (webhook_schedule_parse(bad[i], &s, &err) == 0) {
			fprintf(stderr, "accepted bad schedule \"%s\"\n", bad[i]);
			test_assert(!"bad schedule accepted");
		}
		test_assert(err != NULL);
	}
	for (int i = 1; i < WEBHOOK_MAX_RETRIES; i++)
		strcat(many, ",1");
	test_assert(webhook_schedule_parse(many, &s, &err) == 0 && s.n == WEBHOOK_MAX_RETRIES);
	strcat(many, ",1");
	test_assert(webhook_schedule_parse(many, &s, &err) < 0);
	test_end();
}

static void test_retry_wait(void)
{
	struct webhook_schedule s;
	const char *err;
	int64_t prev = 0;

	test_begin("retry wait: schedule entry ±10 %, growing, -1 when used up");
	test_assert(webhook_schedule_parse(WEBHOOK_DEFAULT_SCHEDULE, &s, &err) == 0);
	test_assert(webhook_retry_wait_ms(&s, 1, 0x80000000u) == 5000);
	test_assert(webhook_retry_wait_ms(&s, 2, 0x80000000u) == 300000);
	test_assert(webhook_retry_wait_ms(&s, 1, 0) == 4500);
	test_assert(webhook_retry_wait_ms(&s, 1, 0xffffffffu) >= 5499 &&
		    webhook_retry_wait_ms(&s, 1, 0xffffffffu) <= 5500);
	for (uint32_t r = 0; r < 0xfff00000u; r += 0x0ff00001u) {
		int64_t w = webhook_retry_wait_ms(&s, 3, r);

		test_assert(w >= 1620000 && w <= 1980000);
	}
	/* With the worst jitter each wait still exceeds the previous one at its best. */
	for (int64_t a = 1; a <= 5; a++) {
		int64_t lo = webhook_retry_wait_ms(&s, a, 0);

		test_assert(lo > prev);
		prev = webhook_retry_wait_ms(&s, a, 0xffffffffu);
	}
	test_assert(webhook_retry_wait_ms(&s, 7, 0x80000000u) == 21600000);
	test_assert(webhook_retry_wait_ms(&s, 8, 0x80000000u) == -1);
	test_assert(webhook_retry_wait_ms(&s, 0, 0x80000000u) == -1);
	test_assert(webhook_retry_wait_ms(&s, -3, 0x80000000u) == -1);
	test_end();
}

/* The lease engine's backoff for events: 30 s doubling to 1 h, each within ±20 %. */
static void test_lease_backoff(void)
{
	static const int64_t base_s[] = { 30, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600 };

	test_begin("lease backoff");
	for (int64_t attempts = 0; attempts < 10; attempts++) {
		int64_t base = base_s[attempts] * 1000;

		for (int i = 0; i < 200; i++) {
			int64_t w = store_lease_backoff_ms(attempts);

			test_assert(w >= base - base / 5 && w <= base + base / 5);
		}
	}
	test_assert(store_lease_backoff_ms(1000000) <= 3600000 + 720000);
	test_end();
}

/* The lease check is the same text in every statement that finishes a leased row. */
static void test_lease_held_text(void)
{
	test_begin("lease check text");
	test_assert_str(STORE_LEASE_HELD("e."),
			"e.lease_owner = ? AND e.attempts = ? AND e.state = 'pending'");
	test_assert_str(STORE_LEASE_HELD(""),
			"lease_owner = ? AND attempts = ? AND state = 'pending'");
	test_assert(strlen(STORE_IN_LIST) == 2 * STORE_IN_MAX - 1);
	test_end();
}

int main(void)
{
	test_lease_backoff();
	test_lease_held_text();
	test_sign_vector();
	test_sign_body_matters();
	test_sign_rotation();
	test_sign_errors();
	test_schedule_default();
	test_schedule_parse();
	test_retry_wait();
	return test_done();
}
