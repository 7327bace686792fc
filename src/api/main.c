/* main.c: offload-api, the FastCGI responder: a fixed pool of threads behind spawn-fcgi. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "api/http.h"
#include "api/routes.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "store/db.h"

#define API_MAX_THREADS 256

static void usage(FILE *f)
{
	fprintf(f,
		"usage: offload-api [-c FILE] [--verbose]\n"
		"\n"
		"The Offload HTTP API as a FastCGI responder. It does not listen by itself:\n"
		"run it under spawn-fcgi, which passes the listening socket on descriptor 0:\n"
		"  spawn-fcgi -n -s /run/offload/api.sock -- /usr/sbin/offload-api\n"
		"\n"
		"  -c, --config FILE  configuration file (default: $OFFLOAD_CONFIG, then\n"
		"                     " SYSCONFDIR "/offload/offload.conf)\n"
		"  -v, --verbose      log more\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"\n"
		"Keys read: [database] *, [api] public_base_url threads, [files] dir url_ttl_s,\n"
		"[plans] sandbox payg base_pro. SIGTERM or SIGINT: finish the requests in\n"
		"progress and exit.\n");
}

/*
 * How connections reach the threads.
 *
 * libfcgi serves one connection per thread: FCGX_Accept_r on a connection nginx keeps open
 * (fastcgi_keep_conn) blocks that thread reading the connection's next request, so a
 * thread is pinned to an idle kept connection while new connections wait in the listen
 * backlog behind it. Measured with 4 threads and "keepalive 2" in nginx's upstream: p99 of
 * GET went from 21 ms to 1.4 s. So no thread ever waits on a connection here: one
 * dispatcher thread holds every idle connection in epoll (EPOLLONESHOT) and accepts new
 * ones; a connection with a request waiting is queued, and the first free thread serves
 * that one request with libfcgi, then hands the connection back to epoll (or libfcgi has
 * closed it when nginx did not ask to keep it). A kept idle connection costs a file
 * descriptor, not a thread, so nginx's keepalive may be any size.
 *
 * libfcgi has no call to serve an already accepted descriptor; FCGX_Request's ipcFd and
 * keepConnection fields (declared in fcgiapp.h "below here") are set directly. Their
 * meaning has not changed since libfcgi 2.4.0: ipcFd is the connection, and
 * FCGX_Accept_r only accepts when it is negative; keepConnection, set from the request's
 * FCGI_KEEP_CONN flag, tells FCGX_Finish_r not to close it.
 */

/* Connections with a request waiting, for the threads; a ring of descriptors. */
#define CONNQ_SIZE 8192

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	int fds[CONNQ_SIZE];
	size_t head, len;
	int stopping;
} connq = { .lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER };

static int epfd = -1;   /* idle connections and the listening socket */
static int stopfd = -1; /* eventfd: main tells the dispatcher to stop */

/* Queues fd for a thread: 0, or -1 when the queue is full (the caller closes fd). */
static int connq_push(int fd)
{
	int rc = -1;

	pthread_mutex_lock(&connq.lock);
	if (connq.len < CONNQ_SIZE && !connq.stopping) {
		connq.fds[(connq.head + connq.len) % CONNQ_SIZE] = fd;
		connq.len++;
		pthread_cond_signal(&connq.ready);
		rc = 0;
	}
	pthread_mutex_unlock(&connq.lock);
	return rc;
}

/* The next connection with a request waiting, or -1 once stopping. */
static int connq_pop(void)
{
	int fd = -1;

	pthread_mutex_lock(&connq.lock);
	while (connq.len == 0 && !connq.stopping)
		pthread_cond_wait(&connq.ready, &connq.lock);
	if (!connq.stopping) {
		fd = connq.fds[connq.head];
		connq.head = (connq.head + 1) % CONNQ_SIZE;
		connq.len--;
	}
	pthread_mutex_unlock(&connq.lock);
	return fd;
}

/* Stops the threads after their current request; closes the connections still queued. */
static void connq_stop(void)
{
	pthread_mutex_lock(&connq.lock);
	connq.stopping = 1;
	while (connq.len > 0) {
		close(connq.fds[connq.head]);
		connq.head = (connq.head + 1) % CONNQ_SIZE;
		connq.len--;
	}
	pthread_cond_broadcast(&connq.ready);
	pthread_mutex_unlock(&connq.lock);
}

/* Watches fd for its next request (once: the event disarms it). 0 or -1. */
static int watch(int fd, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd };

	return epoll_ctl(epfd, op, fd, &ev);
}

/* A connection epoll reported: queue it when a request has arrived, close it when nginx
 * closed its end (an idle kept connection nginx dropped). */
static void connection_ready(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (watch(fd, EPOLL_CTL_MOD) < 0)
			close(fd);
		return;
	}
	if (n <= 0) {
		close(fd);
		return;
	}
	if (connq_push(fd) < 0) {
		log_warn("more than %d connections waiting for a thread; closing one", CONNQ_SIZE);
		close(fd);
	}
}

static void *dispatch(void *arg)
{
	struct epoll_event evs[64];
	int listen_fd = *(int *)arg;

	for (;;) {
		int n = epoll_wait(epfd, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == stopfd)
				return NULL;
			if (fd != listen_fd) {
				connection_ready(fd);
				continue;
			}
			for (;;) {
				int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

				if (c < 0) {
					if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
					    errno != ECONNABORTED)
						log_warn("accept: %s", strerror(errno));
					break;
				}
				if (watch(c, EPOLL_CTL_ADD) < 0) {
					log_warn("epoll_ctl: %s", strerror(errno));
					close(c);
				}
			}
			if (watch(listen_fd, EPOLL_CTL_MOD) < 0) {
				log_error("epoll_ctl on the listening socket: %s", strerror(errno));
				return NULL;
			}
		}
	}
	return NULL;
}

static void *serve(void *arg)
{
	struct api_thread *t = arg;
	int fd;

	while ((fd = connq_pop()) >= 0) {
		t->req.ipcFd = fd;
		/* FCGX_Accept_r first finishes the previous request: it must not close fd. */
		t->req.keepConnection = 1;
		if (FCGX_Accept_r(&t->req) < 0) {
			/* A malformed or truncated request: libfcgi closed the connection and its
			 * accept on the listening descriptor -1 failed at once. */
			t->req.ipcFd = -1;
			continue;
		}
		routes_dispatch(t);
		FCGX_Finish_r(&t->req);
		fd = t->req.ipcFd;
		t->req.ipcFd = -1;
		if (fd >= 0 && watch(fd, EPOLL_CTL_MOD) < 0)
			close(fd);
	}
	return NULL;
}

/* The epoll set with the listening socket (non-blocking) and the stop eventfd. 0 or -1. */
static int dispatch_init(int listen_fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = -1 };
	int flags = fcntl(listen_fd, F_GETFL);

	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("descriptor %d: %s", listen_fd, strerror(errno));
		return -1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (epfd < 0 || stopfd < 0) {
		log_error("epoll/eventfd: %s", strerror(errno));
		return -1;
	}
	ev.data.fd = stopfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, stopfd, &ev) < 0 || watch(listen_fd, EPOLL_CTL_ADD) < 0) {
		log_error("epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int load_settings(struct cfg *cfg, struct api_settings *s, int64_t *threads_r)
{
	const char *err;
	const char *url;
	size_t len;

	if (cfg_get_int(cfg, "api", "threads", 8, 1, API_MAX_THREADS, threads_r, &err) < 0 ||
	    cfg_get_int(cfg, "files", "url_ttl_s", 3600, 1, 7 * 86400, &s->url_ttl_s, &err) < 0 ||
	    plans_load_caps(cfg, s->caps, &err) < 0) {
		log_error("%s: %s", cfg_path(cfg), err);
		return -1;
	}
	url = cfg_get(cfg, "api", "public_base_url", "http://localhost");
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	if (len == 0 || len > 512 || strpbrk(url, "\r\n ?#")) {
		log_error("%s: [api] public_base_url: must be an absolute URL without query",
			  cfg_path(cfg));
		return -1;
	}
	s->public_base_url = xstrndup(url, len);
	s->files_dir = xstrdup(cfg_get(cfg, "files", "dir", "/var/lib/offload/files"));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct api_settings settings;
	struct api_thread *threads = NULL;
	pthread_t *tids = NULL;
	struct cfg *cfg = NULL;
	const char *config_path = NULL, *err;
	int64_t n_threads = 0;
	size_t started = 0;
	pthread_t dispatcher;
	int dispatching = 0, listen_fd = 0; /* spawn-fcgi passes the socket as descriptor 0 */
	sigset_t sigs;
	int c, sig, rc = 1;

	memset(&settings, 0, sizeof settings);
	log_init("offload-api");
	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("offload-api %s\n", PACKAGE_VERSION);
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
	cfg = cfg_load(config_path, &err);
	if (!cfg) {
		log_error("%s", err);
		return 1;
	}
	if (load_settings(cfg, &settings, &n_threads) < 0)
		goto out;

	/* Libraries that are not thread-safe to initialise, before any thread starts. */
	if (db_library_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    FCGX_Init() != 0) {
		log_error("library initialisation failed");
		goto out;
	}
	if (FCGX_IsCGI()) {
		log_error("not started as a FastCGI responder: run it under spawn-fcgi "
			  "(descriptor 0 must be the listening socket); see --help");
		goto out;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (dispatch_init(listen_fd) < 0)
		goto out;
	threads = xcalloc((size_t)n_threads, sizeof *threads);
	tids = xcalloc((size_t)n_threads, sizeof *tids);
	for (int64_t i = 0; i < n_threads; i++) {
		struct api_thread *t = &threads[i];
		int e;

		t->settings = &settings;
		t->db = db_new(cfg, &err);
		if (!t->db) {
			log_error("%s", err);
			break;
		}
		/* Listening descriptor -1: connections come from the dispatcher, never accept(). */
		FCGX_InitRequest(&t->req, -1, 0);
		e = pthread_create(&tids[i], NULL, serve, t);
		if (e != 0) {
			log_error("pthread_create: %s", strerror(e));
			db_close(&t->db);
			break;
		}
		started++;
	}
	if (started != (size_t)n_threads)
		goto stop;
	if ((c = pthread_create(&dispatcher, NULL, dispatch, &listen_fd)) != 0) {
		log_error("pthread_create: %s", strerror(c));
		goto stop;
	}
	dispatching = 1;
	log_info("serving with %lld threads (config %s)", (long long)n_threads, cfg_path(cfg));

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP ignored: restart the service to reload the configuration");
			continue;
		}
		log_info("signal %d: finishing requests in progress", sig);
		break;
	}
	rc = 0;
stop:
	/* No new connections, then every thread finishes its request and leaves. */
	if (dispatching) {
		uint64_t one = 1;

		if (write(stopfd, &one, sizeof one) != sizeof one)
			log_warn("eventfd write: %s", strerror(errno));
		pthread_join(dispatcher, NULL);
	}
	shutdown(listen_fd, SHUT_RDWR);
	connq_stop();
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	for (size_t i = 0; i < started; i++) {
		FCGX_Free(&threads[i].req, 1);
		db_close(&threads[i].db);
	}
	if (started != (size_t)n_threads)
		rc = 1;
	curl_global_cleanup();
	db_library_end();
out:
	if (epfd >= 0)
		close(epfd);
	if (stopfd >= 0)
		close(stopfd);
	free(threads);
	free(tids);
	free(settings.public_base_url);
	free(settings.files_dir);
	cfg_free(&cfg);
	return rc;
}
