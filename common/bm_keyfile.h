/* bm_keyfile: CURVE key files shared by the agent, the collector and the
 * branchmark tool (issue: security).
 *
 * A key is 40 characters of Z85 (ZeroMQ's encoding of 32 bytes).  A secret
 * key file holds the Z85 secret key on its first line and must not be
 * readable or writable by group or others (mode 0600 or stricter); a public
 * key is given either as the Z85 string itself or as the name of a file
 * whose first line is one.  No ZeroMQ dependency: the caller derives the
 * public key from a secret one (zmq_curve_public).  Owns nothing. */
#ifndef BM_KEYFILE_H
#define BM_KEYFILE_H

#include <stdbool.h>

#include "bm_err.h"

#define BM_Z85_KEY_LEN 40

/* True when s is exactly 40 Z85 characters. */
bool bm_z85_key_valid(const char *s);

/* Reads the secret key of path into out (41 bytes).  Fails (-1, err) when
 * the file is missing, not a regular file, readable or writable by group
 * or others ("secret key file \"x\" is readable by others (mode 0644);
 * chmod 600 it"), or does not hold a Z85 key. */
int bm_keyfile_read_secret(const char *path, char out[BM_Z85_KEY_LEN + 1], bm_err_t *err);

/* Reads a public key given as a Z85 string or a file name into out (41
 * bytes).  Returns 0 or -1 with err. */
int bm_keyfile_read_public(const char *spec, char out[BM_Z85_KEY_LEN + 1], bm_err_t *err);

#endif
