/* main.c: offload-api, the FastCGI responder: a fixed pool of threads behind spawn-fcgi. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "api/conns.h"
#include "api/http.h"
#include "api/routes.h"
#include "api/validate.h"
#include "common/cfg.h"
#include "common/cli.h"
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
		"[plans] sandbox payg base_pro, [sms] (see offload.conf(5)). SIGTERM or SIGINT: finish the requests in\n"
		"progress and exit.\n");
}

static void serve(FCGX_Request *req, void *arg)
{
	struct api_thread *t = arg;

	(void)req; /* it is t->req */
	routes_dispatch(t);
}

static int load_settings(struct cfg *cfg, struct api_settings *s, int64_t *threads_r)
{
	const char *err;
	const char *url;
	size_t len;

	if (cfg_get_int(cfg, "api", "threads", 32, 1, API_MAX_THREADS, threads_r, &err) < 0 ||
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
	if (sms_config_load(cfg, &s->sms, &err) < 0) {
		log_error("%s: %s", cfg_path(cfg), err);
		return -1;
	}
	validate_set_sms(s->sms.enabled);
	validate_set_sms_sender(s->sms.sender);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPTIONS };
	struct api_settings settings;
	struct api_thread *threads = NULL;
	FCGX_Request **reqs = NULL;
	void **args = NULL;
	struct cfg *cfg = NULL;
	struct cli cli = { .program = "offload-api", .usage = usage, .usage_status = 2 };
	const char *err;
	int64_t n_threads = 0;
	sigset_t sigs;
	int c, r, sig, rc = 1;

	memset(&settings, 0, sizeof settings);
	cli_start(&cli);
	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1)
		if ((r = cli_option(&cli, c)) != CLI_NEXT)
			return r;
	if ((r = cli_config_no_operands(&cli, argc, &cfg)) != CLI_NEXT)
		return r;
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

	threads = xcalloc((size_t)n_threads, sizeof *threads);
	reqs = xcalloc((size_t)n_threads, sizeof *reqs);
	args = xcalloc((size_t)n_threads, sizeof *args);
	for (int64_t i = 0; i < n_threads; i++) {
		struct api_thread *t = &threads[i];

		t->settings = &settings;
		t->db = db_new(cfg, &err);
		if (!t->db) {
			log_error("%s", err);
			goto stop;
		}
		reqs[i] = &t->req;
		args[i] = t;
	}
	/* spawn-fcgi passes the listening socket as descriptor 0. */
	if (conns_start(0, reqs, args, (size_t)n_threads, serve) < 0)
		goto stop;
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
	conns_stop();
	for (int64_t i = 0; threads && i < n_threads; i++)
		db_close(&threads[i].db);
	curl_global_cleanup();
	db_library_end();
out:
	free(threads);
	free(reqs);
	free(args);
	free(settings.public_base_url);
	free(settings.files_dir);
	sms_config_free(&settings.sms);
	cfg_free(&cfg);
	return rc;
}
