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

#define CEILING_MAX_THREADS 256

/* The same envelope and the same headers offload-api sends with a 200, so that the only
 * difference left between this responder and a real route is the route's own work. */
static const char body[] = "{\"ok\":true,\"data\":{}}";

struct ceiling_thread {
	FCGX_Request req;
	pthread_t tid;
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
		"  -t THREADS  threads, each blocked in FCGX_Accept_r (default 5, at most %d)\n"
		"SIGTERM or SIGINT: finish the requests in progress and exit.\n",
		CEILING_MAX_THREADS);
}

static void *serve(void *arg)
{
	struct ceiling_thread *t = arg;
	char head[256];
	int head_len;

	/* libfcgi's FCGX_FPrintF has no %zu: the header is formatted here, once. */
	head_len = snprintf(head, sizeof head,
			    "Status: 200 OK\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
			    sizeof body - 1);
	if (head_len < 0 || (size_t)head_len >= sizeof head)
		return NULL;
	while (FCGX_Accept_r(&t->req) >= 0) {
		FCGX_PutStr(head, head_len, t->req.out);
		FCGX_PutStr(body, (int)(sizeof body - 1), t->req.out);
		FCGX_Finish_r(&t->req);
	}
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
	struct ceiling_thread *threads = NULL;
	long n_threads = 5;
	size_t started = 0;
	sigset_t sigs;
	int c, sig, e, rc = 1;

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
	if (!threads) {
		fprintf(stderr, "fcgi-ceiling: out of memory\n");
		return 1;
	}
	for (long i = 0; i < n_threads; i++) {
		FCGX_InitRequest(&threads[i].req, 0, 0);
		e = pthread_create(&threads[i].tid, NULL, serve, &threads[i]);
		if (e != 0) {
			fprintf(stderr, "fcgi-ceiling: pthread_create: %s\n", strerror(e));
			goto stop;
		}
		started++;
	}
	fprintf(stderr, "fcgi-ceiling: serving with %ld threads\n", n_threads);
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
stop:
	/* Wake every thread blocked in accept(): shut the listening socket down. */
	FCGX_ShutdownPending();
	shutdown(0, SHUT_RDWR);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i].tid, NULL);
	for (size_t i = 0; i < started; i++)
		FCGX_Free(&threads[i].req, 1);
	free(threads);
	return rc;
}
