/* bm_config: typed `key = value` config files, described by a config map.
 *
 * Borrowed from Fluent Bit's config maps: each program declares a table of
 * entries (key, type, default, offset into its own config struct, bounds, one
 * line of help).  Loading applies the defaults, reads the file, validates each
 * value against its entry and refuses unknown keys and missing required ones,
 * naming file and line.  The same table prints the documentation for --help.
 *
 * File format: one `key = value` per line; `#` starts a comment line; blank
 * lines are ignored; a value may be wrapped in double quotes to keep leading
 * or trailing blanks.  A key of type STRLIST may appear several times (each
 * line adds one value).  Sizes take K, M, G suffixes (powers of 1024);
 * durations take ms, s, m, h suffixes (default unit: ms).
 *
 * Ownership: strings and lists written into the target struct are heap
 * copies owned by that struct; bm_config_free releases them.
 *
 * Why not inih (Debian's libinih-dev, r55), a well-kept INI parser: it
 * would take over only the smallest part of this module, splitting lines
 * into section/key/value and calling back.  What the programs need is the
 * rest, and inih has none of it: typed values with units (sizes, durations)
 * and bounds checked against a table, unknown and missing keys refused by
 * name, repeated keys as lists, defaults applied from the same table that
 * prints --help and the packages' commented config files, and messages that
 * name file, line and key.  inih also reads what we must not: `:` as a
 * separator and, by default, inline ` ;` comments, which would cut a
 * conninfo or a password.  The line handling here is a part of
 * bm_config_load (about 75 lines, the rest is the map) with unit tests
 * (test_common); the config map is the part worth having. */
#ifndef BM_CONFIG_H
#define BM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bm_err.h"

typedef enum {
    BM_CFG_STR,         /* char *                                    */
    BM_CFG_INT,         /* int64_t, within [min, max]                 */
    BM_CFG_BOOL,        /* bool: true/false/yes/no/on/off/1/0          */
    BM_CFG_SIZE,        /* int64_t bytes, within [min, max]            */
    BM_CFG_DURATION,    /* int64_t milliseconds, within [min, max]     */
    BM_CFG_STRLIST,     /* bm_strlist_t, one value per line            */
} bm_cfg_type_t;

typedef struct {
    char **items;
    size_t count;
} bm_strlist_t;

typedef struct {
    const char *key;
    bm_cfg_type_t type;
    const char *default_value;  /* NULL: no default */
    bool required;              /* must be set in the file */
    size_t offset;              /* offsetof(your_struct, field) */
    int64_t min, max;           /* bounds for INT, SIZE, DURATION */
    const char *help;
} bm_cfg_entry_t;

/* Applies the defaults of `map` (terminated by an entry with key == NULL) to
 * `target`.  Cannot fail on a well-formed map. */
void bm_config_defaults(const bm_cfg_entry_t *map, void *target);

/* Applies defaults, then reads `path`.  Returns 0, or -1 with err naming the
 * file, the line and what is wrong; on error target still holds only valid
 * values and must be released with bm_config_free. */
int bm_config_load(const char *path, const bm_cfg_entry_t *map, void *target,
                   bm_err_t *err);

/* Sets one key from text, as if read from a file (for command-line
 * overrides).  Returns 0 or -1 with err. */
int bm_config_set(const bm_cfg_entry_t *map, void *target, const char *key,
                  const char *value, bm_err_t *err);

/* Frees the strings and lists of target.  Safe to call twice. */
void bm_config_free(const bm_cfg_entry_t *map, void *target);

/* Writes the documentation of every key (type, default, help). */
void bm_config_print_help(FILE *out, const bm_cfg_entry_t *map);

#endif
