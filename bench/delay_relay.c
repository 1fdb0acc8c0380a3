/* bm-delay-relay: a TCP relay on loopback that delays every byte by a fixed
 * time in each direction, to benchmark an agent on a slow (long) link.
 *
 *   bm-delay-relay --listen PORT --target HOST:PORT [--delay-ms 125]
 *                  [--max-queue-bytes 8M] [--max-conns 64]
 *
 * Each accepted connection gets its own connection to the target.  Bytes
 * read from one side are queued with their arrival time and written to the
 * other side once --delay-ms has passed, so a request/response pair sees
 * 2 x delay of round-trip time (125 ms each way = 250 ms RTT).  A direction
 * whose queue holds --max-queue-bytes stops reading (TCP backpressure), so
 * memory is bounded by max-conns x 2 x max-queue-bytes.  One thread, poll(),
 * non-blocking sockets.  When either side closes, the pair is closed once
 * the other direction's queue is flushed or immediately on an error.
 * Prints "relay: listening on PORT -> HOST:PORT, delay D ms" and runs until
 * SIGTERM/SIGINT.
 *
 * Owns: the listening socket, every connection pair and their queues. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_CHUNK 65536

typedef struct s_chunk {
    struct s_chunk *next;
    int64_t due_ms;
    size_t off, len;
    char data[S_CHUNK];
} s_chunk_t;

typedef struct {
    s_chunk_t *head, *tail;
    size_t bytes;
    bool eof;          /* the source closed: shut down writing once flushed */
} s_queue_t;

typedef struct {
    int fd[2];         /* 0: client, 1: target */
    s_queue_t q[2];    /* q[i]: bytes read from fd[i], to be written to fd[1-i] */
    bool connected;    /* the target connection completed */
    bool dead;
} s_pair_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void s_queue_free(s_queue_t *q)
{
    while (q->head) {
        s_chunk_t *c = q->head;
        q->head = c->next;
        free(c);
    }
    q->tail = NULL;
    q->bytes = 0;
}

static void s_pair_close(s_pair_t *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] >= 0)
            close(p->fd[i]);
        p->fd[i] = -1;
        s_queue_free(&p->q[i]);
    }
    p->dead = true;
}

/* Reads what fd i has into its queue.  Returns -1 on an error. */
static int s_read(s_pair_t *p, int i, int64_t delay, size_t cap)
{
    s_queue_t *q = &p->q[i];
    while (q->bytes < cap && !q->eof) {
        s_chunk_t *c = malloc(sizeof *c);
        if (!c)
            return -1;
        ssize_t n = read(p->fd[i], c->data, S_CHUNK);
        if (n <= 0) {
            free(c);
            if (n == 0) {
                q->eof = true;
                return 0;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        }
        c->next = NULL;
        c->due_ms = s_ms() + delay;
        c->off = 0;
        c->len = (size_t)n;
        if (q->tail)
            q->tail->next = c;
        else
            q->head = c;
        q->tail = c;
        q->bytes += (size_t)n;
    }
    return 0;
}

/* Writes the due part of queue i to the other side.  Returns -1 on error. */
static int s_write(s_pair_t *p, int i, int64_t now)
{
    s_queue_t *q = &p->q[i];
    int out = p->fd[1 - i];
    while (q->head && q->head->due_ms <= now) {
        s_chunk_t *c = q->head;
        ssize_t n = write(out, c->data + c->off, c->len - c->off);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->off += (size_t)n;
        q->bytes -= (size_t)n;
        if (c->off < c->len)
            return 0;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        free(c);
    }
    if (!q->head && q->eof)
        shutdown(out, SHUT_WR);
    return 0;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: bm-delay-relay --listen PORT --target HOST:PORT [--delay-ms 125]\n"
               "                      [--max-queue-bytes BYTES] [--max-conns N]\n");
}

int main(int argc, char **argv)
{
    long listen_port = 0, delay = 125, max_conns = 64;
    long long cap = 8LL << 20;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bm-delay-relay: missing value for \"%s\"\n", argv[i]);
            return 2;
        }
        const char *a = argv[i], *v = argv[++i];
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        bool num_ok = !errno && end != v && !*end;
        if (!strcmp(a, "--target")) {
            target = v;
            continue;
        }
        if (!num_ok) {
            fprintf(stderr, "bm-delay-relay: %s: \"%s\" is not a number\n", a, v);
            return 2;
        }
        if (!strcmp(a, "--listen") && x >= 1 && x <= 65535)
            listen_port = (long)x;
        else if (!strcmp(a, "--delay-ms") && x >= 0 && x <= 60000)
            delay = (long)x;
        else if (!strcmp(a, "--max-queue-bytes") && x >= S_CHUNK && x <= (1LL << 30))
            cap = x;
        else if (!strcmp(a, "--max-conns") && x >= 1 && x <= 1000)
            max_conns = (long)x;
        else {
            fprintf(stderr, "bm-delay-relay: %s: \"%s\" is unknown or out of range\n", a, v);
            return 2;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET};
    char host[64];
    const char *colon = target ? strrchr(target, ':') : NULL;
    if (!listen_port || !colon || (size_t)(colon - target) >= sizeof host) {
        s_usage(stderr);
        return 2;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    long tport = strtol(colon + 1, NULL, 10);
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 || tport < 1 || tport > 65535) {
        fprintf(stderr, "bm-delay-relay: --target: \"%s\" is not IPv4:PORT\n", target);
        return 2;
    }
    dst.sin_port = htons((uint16_t)tport);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&la, sizeof la) < 0 || listen(ls, 64) < 0 ||
        s_nonblock(ls) < 0) {
        fprintf(stderr, "bm-delay-relay: listen on port %ld: %s\n", listen_port, strerror(errno));
        return 1;
    }
    s_pair_t *pairs = calloc((size_t)max_conns, sizeof *pairs);
    struct pollfd *pfd = calloc((size_t)max_conns * 2 + 1, sizeof *pfd);
    if (!pairs || !pfd) {
        fprintf(stderr, "bm-delay-relay: out of memory\n");
        return 1;
    }
    for (long i = 0; i < max_conns; i++)
        pairs[i] = (s_pair_t){.fd = {-1, -1}, .dead = true};
    printf("relay: listening on %ld -> %s, delay %ld ms\n", listen_port, target, delay);
    fflush(stdout);

    while (!s_stop) {
        int64_t now = s_ms(), next_due = -1;
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (long i = 0; i < max_conns; i++) {
            s_pair_t *p = &pairs[i];
            for (int d = 0; d < 2; d++) {
                short ev = 0;
                if (p->dead) {
                    pfd[n++] = (struct pollfd){.fd = -1};
                    continue;
                }
                if (d == 1 && !p->connected) {
                    ev = POLLOUT;
                } else {
                    if (!p->q[d].eof && p->q[d].bytes < (size_t)cap && p->connected)
                        ev |= POLLIN;
                    /* Writable wanted for the other direction's due bytes. */
                    s_queue_t *in = &p->q[1 - d];
                    if (in->head && in->head->due_ms <= now && p->connected)
                        ev |= POLLOUT;
                    if (in->head && (next_due < 0 || in->head->due_ms < next_due))
                        next_due = in->head->due_ms;
                }
                pfd[n++] = (struct pollfd){.fd = p->fd[d], .events = ev};
            }
        }
        int timeout = 200;
        if (next_due >= 0)
            timeout = next_due <= now ? 0 : (int)(next_due - now < 200 ? next_due - now : 200);
        if (poll(pfd, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bm-delay-relay: poll: %s\n", strerror(errno));
            return 1;
        }
        now = s_ms();
        if (pfd[0].revents & POLLIN) {
            int c;
            while ((c = accept(ls, NULL, NULL)) >= 0) {
                long slot = -1;
                for (long i = 0; i < max_conns && slot < 0; i++)
                    if (pairs[i].dead)
                        slot = i;
                int t = slot >= 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
                if (t < 0 || s_nonblock(c) < 0 || s_nonblock(t) < 0) {
                    fprintf(stderr, "bm-delay-relay: refusing a connection (%s)\n",
                            slot < 0 ? "too many connections" : strerror(errno));
                    close(c);
                    if (t >= 0)
                        close(t);
                    continue;
                }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                s_pair_t *p = &pairs[slot];
                *p = (s_pair_t){.fd = {c, t}};
                if (connect(t, (struct sockaddr *)&dst, sizeof dst) == 0)
                    p->connected = true;
                else if (errno != EINPROGRESS)
                    s_pair_close(p);
            }
        }
        for (long i = 0; i < max_conns; i++) {
            s_pair_t *p = &pairs[i];
            if (p->dead)
                continue;
            struct pollfd *f = &pfd[1 + i * 2];
            if (!p->connected) {
                if (f[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
                    int e = 0;
                    socklen_t el = sizeof e;
                    getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &e, &el);
                    if (e)
                        s_pair_close(p);
                    else
                        p->connected = true;
                }
                continue;
            }
            bool bad = false;
            for (int d = 0; d < 2 && !bad; d++)
                if (f[d].revents & (POLLIN | POLLHUP | POLLERR))
                    bad = s_read(p, d, delay, (size_t)cap) < 0;
            for (int d = 0; d < 2 && !bad; d++)
                bad = s_write(p, d, now) < 0;
            if (bad || (p->q[0].eof && p->q[1].eof && !p->q[0].head && !p->q[1].head))
                s_pair_close(p);
        }
    }
    for (long i = 0; i < max_conns; i++)
        if (!pairs[i].dead)
            s_pair_close(&pairs[i]);
    close(ls);
    free(pairs);
    free(pfd);
    return 0;
}
