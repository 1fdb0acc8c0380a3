/* bm_keyfile: reading and checking CURVE key files; see bm_keyfile.h.
 * Owns nothing; secret key bytes read into local buffers are wiped. */
#include "bm_keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool bm_z85_key_valid(const char *s)
{
    if (!s || strlen(s) != BM_Z85_KEY_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!strchr(s_z85_chars, *p))
            return false;
    return true;
}

/* Reads the first line of an already open fd (at most 255 bytes) into out
 * without the line end.  Returns 0 or -1 with err. */
static int s_first_line(int fd, const char *path, char *out, size_t size, bm_err_t *err)
{
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return bm_err_set(err, "could not read key file \"%s\": %s", path, strerror(errno));
    buf[n] = '\0';
    size_t len = strcspn(buf, "\r\n");
    buf[len] = '\0';
    if (len + 1 > size) {
        memset(buf, 0, sizeof buf);
        return bm_err_set(err, "key file \"%s\": first line is not a 40-character Z85 key",
                          path);
    }
    memcpy(out, buf, len + 1);
    memset(buf, 0, sizeof buf);
    return 0;
}

int bm_keyfile_read_secret(const char *path, char out[BM_Z85_KEY_LEN + 1], bm_err_t *err)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return bm_err_set(err, "could not open secret key file \"%s\": %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bm_err_set(err, "secret key file \"%s\" is not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return bm_err_set(err, "secret key file \"%s\" is %s by others (mode %04o); chmod 600 it",
                          path, (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "writable",
                          (unsigned)(st.st_mode & 07777));
    }
    char line[BM_Z85_KEY_LEN + 1];
    int rc = s_first_line(fd, path, line, sizeof line, err);
    close(fd);
    if (rc < 0)
        return -1;
    if (!bm_z85_key_valid(line)) {
        memset(line, 0, sizeof line);
        return bm_err_set(err, "secret key file \"%s\": first line is not a 40-character Z85 key",
                          path);
    }
    memcpy(out, line, sizeof line);
    memset(line, 0, sizeof line);
    return 0;
}

int bm_keyfile_read_public(const char *spec, char out[BM_Z85_KEY_LEN + 1], bm_err_t *err)
{
    out[0] = '\0';
    if (!spec || !*spec)
        return bm_err_set(err, "public key is empty");
    if (bm_z85_key_valid(spec) && access(spec, F_OK) != 0) {
        memcpy(out, spec, BM_Z85_KEY_LEN + 1);
        return 0;
    }
    int fd = open(spec, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bm_err_set(err, "public key \"%s\" is neither a Z85 key nor a readable file: %s",
                          spec, strerror(errno));
    char line[BM_Z85_KEY_LEN + 1];
    int rc = s_first_line(fd, spec, line, sizeof line, err);
    close(fd);
    if (rc < 0)
        return -1;
    if (!bm_z85_key_valid(line))
        return bm_err_set(err, "public key file \"%s\": first line is not a 40-character Z85 key",
                          spec);
    memcpy(out, line, sizeof line);
    return 0;
}
