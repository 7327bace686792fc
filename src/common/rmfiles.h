/* rmfiles.h: removing the stored files of a deleted case (its directory under [files] dir). */
#ifndef OFFLOAD_RMFILES_H
#define OFFLOAD_RMFILES_H

#include <stdint.h>

/*
 * Removes base/rel, a file named by a row of the database (relative to the files directory).
 * A rel that is absolute or climbs out with ".." is refused and not touched (returns 0 and
 * logs it). Returns 1 removed, 0 there was nothing to remove, -1 on an error (logged, with
 * *error_r a static text).
 */
int rmfiles_one(const char *base, const char *rel, const char **error_r);

/*
 * Removes the directory base/name and everything in it (name is one path component, such
 * as a case id; its subdirectories are followed at most 4 levels deep, never through a
 * symbolic link). A directory that does not exist is no error. Adds the files removed to
 * *n_r. 0, or -1 on an error (logged, *error_r a static text); what was removed stays
 * removed.
 */
int rmfiles_dir(const char *base, const char *name, int64_t *n_r, const char **error_r);

#endif
