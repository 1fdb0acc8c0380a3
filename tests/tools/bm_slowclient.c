/* bm-slowclient: a slow-loris client for the dashboard's tests.
 *
 *   bm-slowclient HOST PORT CONNECTIONS SECONDS [INTERVAL_MS]
 *
 * Holds CONNECTIONS TCP connections to HOST:PORT for SECONDS, each sending
 * the start of an HTTP request and then one more header line every
 * INTERVAL_MS (default 5000): a request that never ends.  A connection the
 * server closes is opened again at once, as an attacker would.  Prints
 * "opened=N closed_by_server=M" at the end.  Exits 0, or 2 on bad
 * arguments.  Owns its sockets only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX 1024

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_open(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        close(fd);
        return -1;
    }
    static const char start[] = "GET /api/health HTTP/1.1\r\nHost: x\r\n";
    if (send(fd, start, sizeof start - 1, MSG_NOSIGNAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: bm-slowclient HOST PORT CONNECTIONS SECONDS [INTERVAL_MS]\n");
        return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    int port = atoi(argv[2]), n = atoi(argv[3]), secs = atoi(argv[4]);
    int interval = argc == 6 ? atoi(argv[5]) : 5000;
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || port < 1 || port > 65535 || n < 1 ||
        n > S_MAX || secs < 1 || interval < 10) {
        fprintf(stderr, "bm-slowclient: bad arguments\n");
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    int fds[S_MAX];
    long long next[S_MAX], opened = 0, closed = 0, end = s_now_ms() + secs * 1000LL;
    for (int i = 0; i < n; i++) {
        fds[i] = s_open(&sa);
        opened += fds[i] >= 0;
        next[i] = s_now_ms() + interval;
    }
    char buf[4096];
    while (s_now_ms() < end) {
        struct pollfd p[S_MAX];
        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};   /* fd -1: skipped */
        poll(p, (nfds_t)n, 100);
        long long now = s_now_ms();
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0) {
                if (now >= next[i]) {   /* and again, as an attacker would */
                    fds[i] = s_open(&sa);
                    opened += fds[i] >= 0;
                    next[i] = now + (fds[i] >= 0 ? interval : 200);
                }
                continue;
            }
            int dead = 0;
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                dead = recv(fds[i], buf, sizeof buf, 0) <= 0;   /* closed, or an answer */
            if (!dead && now >= next[i]) {
                dead = send(fds[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) < 0;
                next[i] = now + interval;
            }
            if (dead) {
                close(fds[i]);
                closed++;
                fds[i] = -1;
                next[i] = now + 200;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("opened=%lld closed_by_server=%lld\n", opened, closed);
    return 0;
}
