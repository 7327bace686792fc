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
 * GET went from 21 ms to 1.4 s. So no thread ever waits on one connection here: every idle
 * connection and the listening socket are in one epoll set, with EPOLLONESHOT, and all
 * threads wait in epoll_wait on it (the kernel wakes one waiter per event). The thread that
 * gets a connection serves that one request with libfcgi and puts the connection back into
 * the set (unless libfcgi closed it because nginx did not ask to keep it); the thread that
 * gets the listening socket accepts what is pending and adds it to the set. A kept idle
 * connection costs a file descriptor, not a thread, so nginx's keepalive may be any size,
 * and no request is handed from one thread to another.
 *
 * libfcgi has no call to serve an already accepted descriptor; FCGX_Request's ipcFd and
 * keepConnection fields (declared in fcgiapp.h "below here") are set directly. Their
 * meaning has not changed since libfcgi 2.4.0: ipcFd is the connection, and
 * FCGX_Accept_r only accepts when it is negative (the requests are made with listening
 * descriptor -1, so that accept fails at once); keepConnection, set from the request's
 * FCGI_KEEP_CONN flag, tells FCGX_Finish_r not to close it.
 */

struct worker {
	FCGX_Request *req;
	void *arg;
	pthread_t tid;
};

static conns_handler *handler;
static struct worker *workers;
static size_t n_workers;
static int listen_sock = -1;
static int epfd = -1;   /* idle connections, the listening socket and stopfd */
static int stopfd = -1; /* eventfd, readable once stopping (level-triggered: wakes every thread) */

/* Watches fd for its next event (once: the event disarms it). 0 or -1. */
static int watch(int fd, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd };

	return epoll_ctl(epfd, op, fd, &ev);
}

/* Out of descriptors or memory: the pending connection stays in the backlog and epoll would
 * report it again at once. Pause a little instead of spinning, and say so once a second. */
static void accept_starved(int err)
{
	static time_t last_log;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != __atomic_load_n(&last_log, __ATOMIC_RELAXED)) {
		__atomic_store_n(&last_log, now.tv_sec, __ATOMIC_RELAXED);
		log_warn("accept: %s; connections wait in the backlog (raise the open-file limit, "
			 "or lower nginx's upstream keepalive)", strerror(err));
	}
	usleep(10000);
}

/* Accepts every pending connection into the epoll set, then watches the socket again. */
static void accept_pending(void)
{
	for (;;) {
		int c = accept4(listen_sock, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_starved(errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			break;
		}
		if (watch(c, EPOLL_CTL_ADD) < 0) {
			log_warn("epoll_ctl: %s", strerror(errno));
			close(c);
		}
	}
	if (watch(listen_sock, EPOLL_CTL_MOD) < 0)
		log_error("epoll_ctl on the listening socket: %s", strerror(errno));
}

/* Serves the request that has arrived on fd (or sees that nginx closed it). */
static void serve_one(struct worker *w, int fd)
{
	FCGX_Request *req = w->req;

	req->ipcFd = fd;
	/* FCGX_Accept_r first finishes the previous request: it must not close fd. */
	req->keepConnection = 1;
	if (FCGX_Accept_r(req) < 0) {
		/* Closed by nginx (an idle kept connection it dropped), or a malformed or
		 * truncated request: libfcgi closed the descriptor, and its accept on the
		 * listening descriptor -1 failed at once. */
		req->ipcFd = -1;
		return;
	}
	handler(req, w->arg);
	FCGX_Finish_r(req);
	fd = req->ipcFd;
	req->ipcFd = -1;
	if (fd >= 0 && watch(fd, EPOLL_CTL_MOD) < 0)
		close(fd);
}

static void *serve(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev;

	for (;;) {
		int n = epoll_wait(epfd, &ev, 1, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		if (n == 0)
			continue;
		if (ev.data.fd == stopfd)
			break;
		if (ev.data.fd == listen_sock)
			accept_pending();
		else
			serve_one(w, ev.data.fd);
	}
	return NULL;
}

/* The epoll set with the listening socket (made non-blocking) and stopfd. 0 or -1. */
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
	if (epoll_init(listen_fd) < 0) {
		conns_stop();
		return -1;
	}
	workers = xcalloc(n ? n : 1, sizeof *workers);
	for (size_t i = 0; i < n; i++) {
		workers[i].req = reqs[i];
		workers[i].arg = args[i];
		/* Listening descriptor -1: connections come from epoll, never accept(). */
		FCGX_InitRequest(reqs[i], -1, 0);
		e = pthread_create(&workers[i].tid, NULL, serve, &workers[i]);
		if (e != 0) {
			log_error("pthread_create: %s", strerror(e));
			conns_stop();
			return -1;
		}
		n_workers++;
	}
	return 0;
}

void conns_stop(void)
{
	uint64_t one = 1;

	/* stopfd stays readable: each thread leaves epoll_wait once it has finished the
	 * request it is serving (epoll passes a level-triggered event on to the next waiter). */
	if (stopfd >= 0 && write(stopfd, &one, sizeof one) != sizeof one)
		log_warn("eventfd write: %s", strerror(errno));
	for (size_t i = 0; i < n_workers; i++)
		pthread_join(workers[i].tid, NULL);
	if (listen_sock >= 0)
		shutdown(listen_sock, SHUT_RDWR);
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
