/* log.c: one-line log records on stderr, written with a single write() so threads do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_program = "offload";
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warning", "info", "debug" };
/* sd-daemon(3) priority prefixes: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const char *const journal_prefixes[] = { "<3>", "<4>", "<6>", "<7>" };
static int log_to_journal;

int log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	/* systemd.exec(5): JOURNAL_STREAM is "device:inode" of the stream it connected to
	 * stdout/stderr. A child whose stderr was redirected elsewhere inherits the variable, so
	 * it counts only when fd 2 is still that very stream. */
	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *program)
{
	log_program = program;
	log_to_journal = log_stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, m;

	if (!log_enabled(level))
		return;
	/* Under systemd the "<N>" prefix gives each line its priority in the journal (journald
	 * strips it: SyslogLevelPrefix=yes is the default), so journalctl -p err finds errors. */
	n = snprintf(line, sizeof line, "%s%s: %s: ", log_to_journal ? journal_prefixes[level] : "",
		     log_program, level_names[level]);
	if (n < 0)
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	/* A log line is one line: a newline inside the text would forge a second record. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
