/* replay_main: runs a libFuzzer harness over files and directories of
 * inputs without libFuzzer, so the seed corpus is a regression test in the
 * normal and the sanitizer builds (ctest -L unit).
 *
 *   fuzz_receiver_replay PATH...    (a file, or a directory of files)
 *
 * Exits 0 when every input ran (a finding aborts), 1 when a path cannot be
 * read.  Owns nothing beyond one input at a time. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open \"%s\"\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger, cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading \"%s\"\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 0, n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                rc |= s_run_file(path) < 0;
                n++;
            }
            if (d)
                closedir(d);
            else
                rc = 1;
        } else {
            rc |= s_run_file(argv[i]) < 0;
            n++;
        }
    }
    printf("replay: %d inputs\n", n);
    return rc;
}
