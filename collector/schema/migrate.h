/* migrate: versioned schema migrations, embedded in the binaries.
 *
 * Migrations are the files collector/migrations/NNN_name.sql, compiled into
 * the program (embed_sql.cmake).  bm_migrate applies the pending ones in
 * order, each in its own transaction, under an advisory lock so that several
 * collectors starting at once do not race, and records them in
 * schema_migrations with a checksum; an applied migration whose text changed
 * is refused rather than silently skipped. */
#ifndef BM_MIGRATE_H
#define BM_MIGRATE_H

#include <libpq-fe.h>

#include "bm_err.h"

typedef struct {
    int version;            /* NNN of the file name */
    const char *name;       /* file name */
    const char *sql;        /* file content */
} bm_migration_t;

/* Terminated by an entry with name == NULL; generated at build time. */
extern const bm_migration_t bm_migrations[];

/* Applies pending migrations.  *applied (may be NULL) gets how many were
 * applied.  Returns 0, or -1 with err naming the migration that failed. */
int bm_migrate(PGconn *conn, int *applied, bm_err_t *err);

/* The highest applied version, 0 on an empty database, -1 with err. */
int bm_migrate_current(PGconn *conn, bm_err_t *err);

#endif
