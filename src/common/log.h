/* log.h: one-line log records on stderr (journald keeps them). */
#ifndef OFFLOAD_LOG_H
#define OFFLOAD_LOG_H

enum log_level {
	LOG_LEVEL_ERROR, /* something failed and was not retried */
	LOG_LEVEL_WARN,  /* something failed and will be retried, or input was refused */
	LOG_LEVEL_INFO,  /* a state change worth keeping */
	LOG_LEVEL_DEBUG, /* only with --verbose */
};

/* Names the program in every line; keeps the pointer (use a string literal). Call it before
 * any thread starts: it also decides, once, whether stderr is the journal
 * (log_stderr_is_journal()); when it is, every line starts with its sd-daemon(3) priority
 * ("<3>" error, "<4>" warning, "<6>" info, "<7>" debug) and the text after it is unchanged. */
void log_init(const char *program);

/* 1 when $JOURNAL_STREAM names the device and inode of file descriptor 2 (systemd connected
 * stderr to journald), else 0. */
int log_stderr_is_journal(void);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
