/* insert-baseline.c: the writes of POST /cases done straight to MariaDB, for the benchmark. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/db.h"

#define BASELINE_MAX_THREADS 1024
#define BASELINE_MAX_SECONDS 3600

/* Latency histogram: 10 µs steps below 100 ms, then 1 ms steps below 10.1 s, then one
 * bucket for everything slower. Fixed size, so a long run cannot grow it. */
#define HIST_FINE_US 10
#define HIST_FINE_N 10000
#define HIST_COARSE_US 1000
#define HIST_COARSE_N 10000
#define HIST_N (HIST_FINE_N + HIST_COARSE_N + 1)

/* The statements of cases_create() in src/api/cases.c, word for word, so that MariaDB does
 * the same work for both (the monthly-cap queries are not here: the stack's client has the
 * UNLIMITED plan, for which offload-api skips them too). */
static const char insert_case[] =
	"INSERT INTO cases (id, client_id, client_reference_id, status, channel, created_at,"
	" updated_at, next_action_at, attempt_count, max_attempts, follow_up_delay_hours,"
	" counterparty_address, goal, counterparty, sender_persona, constraints_json,"
	" result_schema, metadata, client_webhook_url)"
	" VALUES (?, ?, ?, 'CREATED', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char insert_event[] =
	"INSERT INTO events (case_id, type, state, available_at, created_at)"
	" VALUES (?, 'CASE_CREATED', 'pending', ?, ?)";

/* The stored form of the body tests/bench/bench posts (validate.c writes compact JSON). */
static const char goal_json[] =
	"{\"objective\":\"Collect a signed W-9 from the vendor\",\"knowledge\":"
	"{\"vendorName\":\"Northstar Supplies\",\"reason\":\"AP onboarding\"}}";
static const char counterparty_json[] =
	"{\"address\":\"ap@northstar.example\",\"name\":\"Maya Chen\",\"company\":"
	"\"Northstar Supplies\",\"timezone\":\"America/Los_Angeles\",\"customData\":"
	"{\"vendorId\":\"vendor_2048\"}}";
static const char persona_json[] =
	"{\"name\":\"Avery\",\"role\":\"Accounts Payable\",\"company\":\"Example Corp\","
	"\"tone\":\"friendly, concise\"}";
static const char constraints_json[] = "[\"Email only\"]";
static const char result_schema_json[] =
	"{\"type\":\"object\",\"properties\":{\"signedW9Received\":{\"type\":\"boolean\"},"
	"\"receivedAt\":{\"type\":\"string\"}},\"required\":[\"signedW9Received\"]}";
static const char metadata_json[] = "{\"source\":\"offload-bench\",\"n\":1}";

/* The start line: every thread connects, says so, and waits for main to start the clock. */
struct start {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t ready;            /* threads that have tried to connect */
	int go;                  /* set by main with the deadline */
	struct timespec deadline;
};

struct job {
	struct cfg *cfg;
	const char *client_id;
	const char *reference;
	struct start *start;
	int failed_open;                 /* db_open failed: the thread did not run */
	uint64_t done;                   /* committed transactions */
	uint64_t errors;                 /* transactions that failed after their retries */
	uint64_t hist[HIST_N];
	struct timespec finished;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: insert-baseline -c FILE -k CLIENT_ID [-t THREADS] [-d SECONDS] [-r REF]\n"
		"\n"
		"Does what POST /cases does in MariaDB, without HTTP: per transaction one\n"
		"INSERT INTO cases (a case-sized row) and one INSERT INTO events, then COMMIT;\n"
		"THREADS connections in parallel for SECONDS. Prints one line:\n"
		"  transactions=N seconds=S tps=X p50_ms=A p99_ms=B errors=E\n"
		"\n"
		"  -c FILE     offload configuration ([database] keys), e.g. STACKDIR/offload.conf\n"
		"  -k ID       an existing client id (cases.client_id has a foreign key)\n"
		"  -t THREADS  connections, one per thread (default 16, at most %d)\n"
		"  -d SECONDS  how long to run (default 10, at most %d)\n"
		"  -r REF      client_reference_id of the rows (default offload-bench)\n",
		BASELINE_MAX_THREADS, BASELINE_MAX_SECONDS);
}

static int64_t elapsed_us(const struct timespec *a, const struct timespec *b)
{
	return ((int64_t)b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void hist_add(uint64_t *hist, int64_t us)
{
	size_t i;

	if (us < 0)
		us = 0;
	if (us < (int64_t)HIST_FINE_US * HIST_FINE_N)
		i = (size_t)(us / HIST_FINE_US);
	else if (us < (int64_t)HIST_FINE_US * HIST_FINE_N + (int64_t)HIST_COARSE_US * HIST_COARSE_N)
		i = HIST_FINE_N + (size_t)((us - (int64_t)HIST_FINE_US * HIST_FINE_N) / HIST_COARSE_US);
	else
		i = HIST_N - 1;
	hist[i]++;
}

/* The upper edge of bucket i in milliseconds (what wrk's percentiles also report). */
static double hist_edge_ms(size_t i)
{
	if (i < HIST_FINE_N)
		return (double)((i + 1) * HIST_FINE_US) / 1000.0;
	if (i < HIST_FINE_N + HIST_COARSE_N)
		return (double)(HIST_FINE_US * HIST_FINE_N + (i - HIST_FINE_N + 1) * HIST_COARSE_US) /
		       1000.0;
	return 1e9;
}

static double hist_percentile_ms(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t want, seen = 0;

	if (total == 0)
		return 0.0;
	want = (uint64_t)((double)total * p / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < HIST_N; i++) {
		seen += hist[i];
		if (seen >= want)
			return hist_edge_ms(i);
	}
	return hist_edge_ms(HIST_N - 1);
}

/* One creation as cases_create() does it, with its retry after a deadlock: 0 or -1. */
static int create_one(struct db *db, const struct job *job)
{
	char case_id[37];
	int64_t now = util_now_ms();

	util_uuid_v4(case_id);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct db_arg cargs[] = {
			DB_STR(case_id), DB_STR(job->client_id), DB_STR(job->reference),
			DB_STR("EMAIL"), DB_INT(now), DB_INT(now), DB_INT(OFFLOAD_NEVER_MS),
			DB_INT(3), DB_INT(72), DB_STR("ap@northstar.example"), DB_STR(goal_json),
			DB_STR(counterparty_json), DB_STR(persona_json), DB_STR(constraints_json),
			DB_STR(result_schema_json), DB_STR(metadata_json),
			DB_STR("https://hooks.example.com/offload"),
		};
		struct db_arg eargs[] = { DB_STR(case_id), DB_INT(now), DB_INT(now) };

		if (db_begin(db) < 0)
			return -1;
		if (db_query(db, insert_case, cargs, sizeof cargs / sizeof cargs[0], NULL) == 0 &&
		    db_query(db, insert_event, eargs, 3, NULL) == 0 && db_commit(db) == 0)
			return 0;
		db_rollback(db);
		if (db_errno(db) != DB_ER_LOCK_DEADLOCK)
			return -1;
	}
	return -1;
}

static void *run(void *arg)
{
	struct job *job = arg;
	struct start *st = job->start;
	struct timespec deadline, t0, t1;
	struct db *db;
	const char *err;
	int logged = 0;

	/* Connect before the clock starts: offload-api's connections are open too. */
	db = db_open(job->cfg, &err);
	if (!db) {
		log_error("%s", err);
		job->failed_open = 1;
	}
	pthread_mutex_lock(&st->lock);
	st->ready++;
	pthread_cond_broadcast(&st->cond);
	while (!st->go)
		pthread_cond_wait(&st->cond, &st->lock);
	deadline = st->deadline;
	pthread_mutex_unlock(&st->lock);
	if (!db)
		return NULL;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!before(&t0, &deadline))
			break;
		if (create_one(db, job) < 0) {
			if (!logged++)
				log_error("transaction failed: %s", db_error(db));
			job->errors++;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		job->done++;
		hist_add(job->hist, elapsed_us(&t0, &t1));
	}
	clock_gettime(CLOCK_MONOTONIC, &job->finished);
	db_close(&db);
	return NULL;
}

/* Parses a whole decimal number within [min, max]: 0 and *out, or -1. */
static int parse_count(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL, *client_id = NULL, *reference = "offload-bench", *err;
	struct cfg *cfg = NULL;
	struct job *jobs = NULL;
	pthread_t *tids = NULL;
	struct start st = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct timespec start, last;
	long n_threads = 16, seconds = 10;
	uint64_t done = 0, errors = 0, *hist = NULL;
	size_t started = 0;
	int c, e, rc = 1, opened_all = 1;

	log_init("insert-baseline");
	while ((c = getopt(argc, argv, "c:k:t:d:r:h")) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			client_id = optarg;
			break;
		case 't':
			if (parse_count(optarg, 1, BASELINE_MAX_THREADS, &n_threads) < 0) {
				fprintf(stderr, "insert-baseline: -t: a number from 1 to %d\n",
					BASELINE_MAX_THREADS);
				return 2;
			}
			break;
		case 'd':
			if (parse_count(optarg, 1, BASELINE_MAX_SECONDS, &seconds) < 0) {
				fprintf(stderr, "insert-baseline: -d: a number from 1 to %d\n",
					BASELINE_MAX_SECONDS);
				return 2;
			}
			break;
		case 'r':
			reference = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !config_path || !client_id) {
		usage(stderr);
		return 2;
	}
	if (!util_uuid_valid(client_id) || strlen(reference) > 255) {
		fprintf(stderr, "insert-baseline: -k must be a client id (a UUID), -r at most 255 bytes\n");
		return 2;
	}
	cfg = cfg_load(config_path, &err);
	if (!cfg) {
		log_error("%s", err);
		return 1;
	}
	if (db_library_init() < 0) {
		log_error("mysql_library_init failed");
		goto out;
	}

	jobs = xcalloc((size_t)n_threads, sizeof *jobs);
	tids = xcalloc((size_t)n_threads, sizeof *tids);
	for (long i = 0; i < n_threads; i++) {
		jobs[i].cfg = cfg;
		jobs[i].client_id = client_id;
		jobs[i].reference = reference;
		jobs[i].start = &st;
		e = pthread_create(&tids[i], NULL, run, &jobs[i]);
		if (e != 0) {
			log_error("pthread_create: %s", strerror(e));
			break;
		}
		started++;
	}
	/* Connecting is not part of the measurement: the clock starts when every thread has
	 * connected. After a failed pthread_create the deadline is now, so they stop at once. */
	pthread_mutex_lock(&st.lock);
	while (st.ready < started)
		pthread_cond_wait(&st.cond, &st.lock);
	clock_gettime(CLOCK_MONOTONIC, &start);
	st.deadline = start;
	if (started == (size_t)n_threads)
		st.deadline.tv_sec += seconds;
	st.go = 1;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);

	hist = xcalloc(HIST_N, sizeof *hist);
	last = start;
	for (size_t i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		if (jobs[i].failed_open) {
			opened_all = 0;
			continue;
		}
		done += jobs[i].done;
		errors += jobs[i].errors;
		for (size_t b = 0; b < HIST_N; b++)
			hist[b] += jobs[i].hist[b];
		if (before(&last, &jobs[i].finished))
			last = jobs[i].finished;
	}
	if (started != (size_t)n_threads)
		goto end;
	if (!opened_all) {
		log_error("some connections failed; no figures");
		goto end;
	}
	{
		double secs = (double)elapsed_us(&start, &last) / 1e6;

		printf("transactions=%llu seconds=%.3f tps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%llu\n",
		       (unsigned long long)done, secs, secs > 0 ? (double)done / secs : 0.0,
		       hist_percentile_ms(hist, done, 50.0), hist_percentile_ms(hist, done, 99.0),
		       (unsigned long long)errors);
	}
	rc = 0;
end:
	free(hist);
	free(jobs);
	free(tids);
	db_library_end();
out:
	cfg_free(&cfg);
	return rc;
}
