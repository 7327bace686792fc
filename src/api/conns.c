/* conns.c: FastCGI connections for a pool of threads; idle kept connections wait in epoll. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/conns.h"
#include "common/log.h"
#include "common/xalloc.h"

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

struct worker {
	FCGX_Request *req;
	void *arg;
	pthread_t tid;
};

static conns_handler *handler;
static struct worker *workers;
static size_t n_workers;
static pthread_t dispatcher;
static int dispatching;
static int listen_sock = -1;
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

/* Out of descriptors or memory: the pending connection stays in the backlog and epoll would
 * report it again at once. Pause a little instead of spinning, and say so once a second. */
static void accept_starved(int err)
{
	static time_t last_log;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != last_log) {
		log_warn("accept: %s; connections wait in the backlog (raise the open-file limit, "
			 "or lower nginx's upstream keepalive)", strerror(err));
		last_log = now.tv_sec;
	}
	usleep(10000);
}

static void *dispatch(void *arg)
{
	struct epoll_event evs[64];
	int listen_fd = listen_sock;

	(void)arg;

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
					if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
					    errno == ENOMEM)
						accept_starved(errno);
					else if (errno != EAGAIN && errno != EWOULDBLOCK &&
						 errno != EINTR && errno != ECONNABORTED)
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
	struct worker *w = arg;
	FCGX_Request *req = w->req;
	int fd;

	while ((fd = connq_pop()) >= 0) {
		req->ipcFd = fd;
		/* FCGX_Accept_r first finishes the previous request: it must not close fd. */
		req->keepConnection = 1;
		if (FCGX_Accept_r(req) < 0) {
			/* A malformed or truncated request: libfcgi closed the connection and its
			 * accept on the listening descriptor -1 failed at once. */
			req->ipcFd = -1;
			continue;
		}
		handler(req, w->arg);
		FCGX_Finish_r(req);
		fd = req->ipcFd;
		req->ipcFd = -1;
		if (fd >= 0 && watch(fd, EPOLL_CTL_MOD) < 0)
			close(fd);
	}
	return NULL;
}

/* The epoll set with the listening socket (non-blocking) and the stop eventfd. 0 or -1. */
static int epoll_init(int listen_fd)
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

int conns_start(int listen_fd, FCGX_Request *const *reqs, void *const *args, size_t n,
		conns_handler *h)
{
	int e;

	listen_sock = listen_fd;
	handler = h;
	if (epoll_init(listen_fd) < 0)
		return -1;
	workers = xcalloc(n ? n : 1, sizeof *workers);
	for (size_t i = 0; i < n; i++) {
		workers[i].req = reqs[i];
		workers[i].arg = args[i];
		/* Listening descriptor -1: connections come from the dispatcher, never accept(). */
		FCGX_InitRequest(reqs[i], -1, 0);
		e = pthread_create(&workers[i].tid, NULL, serve, &workers[i]);
		if (e != 0) {
			log_error("pthread_create: %s", strerror(e));
			conns_stop();
			return -1;
		}
		n_workers++;
	}
	e = pthread_create(&dispatcher, NULL, dispatch, NULL);
	if (e != 0) {
		log_error("pthread_create: %s", strerror(e));
		conns_stop();
		return -1;
	}
	dispatching = 1;
	return 0;
}

void conns_stop(void)
{
	if (dispatching) {
		uint64_t one = 1;

		if (write(stopfd, &one, sizeof one) != sizeof one)
			log_warn("eventfd write: %s", strerror(errno));
		pthread_join(dispatcher, NULL);
		dispatching = 0;
	}
	if (listen_sock >= 0)
		shutdown(listen_sock, SHUT_RDWR);
	connq_stop();
	for (size_t i = 0; i < n_workers; i++)
		pthread_join(workers[i].tid, NULL);
	for (size_t i = 0; i < n_workers; i++)
		FCGX_Free(workers[i].req, 1);
	n_workers = 0;
	free(workers);
	workers = NULL;
	if (epfd >= 0)
		close(epfd);
	if (stopfd >= 0)
		close(stopfd);
	epfd = stopfd = -1;
}
