/* fcgi-ceiling.c: the least a FastCGI route can do (a fixed JSON envelope), for the benchmark. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api/conns.h"

#define CEILING_MAX_THREADS 256

/* The same envelope and the same headers offload-api sends with a 200, so that the only
 * difference left between this responder and a real route is the route's own work. */
static const char body[] = "{\"ok\":true,\"data\":{}}";

struct ceiling_thread {
	FCGX_Request req;
	char head[256];
	int head_len;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fcgi-ceiling [-t THREADS]\n"
		"\n"
		"A FastCGI responder that answers every request with 200 and a fixed\n"
		"{\"ok\":true,\"data\":{}}: the ceiling of any FastCGI route behind the same nginx.\n"
		"Run it under spawn-fcgi (descriptor 0 is the listening socket):\n"
		"  spawn-fcgi -n -s DIR/ceiling.sock -M 0666 -- fcgi-ceiling -t 5\n"
		"\n"
		"  -t THREADS  threads serving requests (default 5, at most %d); idle connections\n"
		"              nginx keeps open wait in epoll (src/api/conns.c), as in offload-api\n"
		"SIGTERM or SIGINT: finish the requests in progress and exit.\n",
		CEILING_MAX_THREADS);
}

/* Through src/api/conns.c, as offload-api: a kept connection waits in epoll, not a thread. */
static void serve(FCGX_Request *req, void *arg)
{
	struct ceiling_thread *t = arg;

	FCGX_PutStr(t->head, t->head_len, req->out);
	FCGX_PutStr(body, (int)(sizeof body - 1), req->out);
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
	struct ceiling_thread *threads = NULL;
	long n_threads = 5;
	FCGX_Request **reqs = NULL;
	void **args = NULL;
	sigset_t sigs;
	int c, sig, rc = 1;

	while ((c = getopt(argc, argv, "t:h")) != -1) {
		switch (c) {
		case 't':
			if (parse_count(optarg, 1, CEILING_MAX_THREADS, &n_threads) < 0) {
				fprintf(stderr, "fcgi-ceiling: -t: a number from 1 to %d\n",
					CEILING_MAX_THREADS);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "fcgi-ceiling: FCGX_Init failed\n");
		return 1;
	}
	if (FCGX_IsCGI()) {
		fprintf(stderr, "fcgi-ceiling: not started as a FastCGI responder: run it under "
				"spawn-fcgi (see -h)\n");
		return 1;
	}

	/* Signals go to main's sigwait(), never to a thread in the middle of a reply. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	threads = calloc((size_t)n_threads, sizeof *threads);
	reqs = calloc((size_t)n_threads, sizeof *reqs);
	args = calloc((size_t)n_threads, sizeof *args);
	if (!threads || !reqs || !args) {
		fprintf(stderr, "fcgi-ceiling: out of memory\n");
		goto out;
	}
	for (long i = 0; i < n_threads; i++) {
		/* libfcgi's FCGX_FPrintF has no %zu: the header is formatted here, once. */
		threads[i].head_len = snprintf(threads[i].head, sizeof threads[i].head,
					       "Status: 200 OK\r\nContent-Type: application/json\r\n"
					       "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
					       sizeof body - 1);
		reqs[i] = &threads[i].req;
		args[i] = &threads[i];
	}
	if (conns_start(0, reqs, args, (size_t)n_threads, serve) < 0)
		goto out;
	fprintf(stderr, "fcgi-ceiling: serving with %ld threads\n", n_threads);
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
	conns_stop();
out:
	free(reqs);
	free(args);
	free(threads);
	return rc;
}
