/* sink: one-thread epoll sink/echo server on 127.0.0.1 for the proxy benchmark.
 *
 * usage: sink [-p PORT]     (prints "port N", then serves until SIGTERM)
 *
 * The first byte a connection sends chooses its mode (the protocol of the Python sink that
 * bench_proxy.py had before, plus R):
 *   T + 8-byte big-endian count N: discard N bytes, then answer "k" (bulk transfer);
 *                                  a count that is never reached just discards;
 *   E: echo every later byte;   H: hold (read and drop, answer nothing);
 *   R: answer "r" at once, then hold (one request, one answer: connection setup).
 * Any other first byte: hold. The sink closes a connection when its peer does.
 */
#include "cload.h"

#include <fcntl.h>
#include <sys/epoll.h>

#define BUF (1 << 20)

struct conn {
    int fd;
    char mode;          /* 0 until the first byte */
    unsigned char head[9];
    int hlen;
    uint64_t left;      /* bytes still to discard in mode T */
};

static char buf[BUF];

static void finish(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Account n discarded bytes of a T stream; answer "k" when the count is reached. */
static void count_bytes(struct conn *c, uint64_t n) {
    if (c->left == 0)
        return;
    c->left = n >= c->left ? 0 : c->left - n;
    if (c->left == 0)
        (void)!send(c->fd, "k", 1, MSG_NOSIGNAL);
}

/* The first bytes of a connection: its mode and, for T, the count. Returns the number
 * of bytes of data that belong to the mode's payload (after the header). */
static ssize_t header(struct conn *c, const unsigned char *data, ssize_t n) {
    ssize_t used = 0;
    if (c->hlen == 0 && n > 0) {
        c->head[c->hlen++] = data[used++];
        if (c->head[0] != 'T') {
            c->mode = (char)c->head[0];
            if (c->mode == 'R')
                (void)!send(c->fd, "r", 1, MSG_NOSIGNAL);
            return n - used;
        }
    }
    while (c->hlen < 9 && used < n)
        c->head[c->hlen++] = data[used++];
    if (c->hlen == 9) {
        uint64_t v = 0;
        for (int i = 1; i < 9; i++)
            v = v << 8 | c->head[i];
        c->mode = 'T';
        c->left = v;
        if (v == 0)
            (void)!send(c->fd, "k", 1, MSG_NOSIGNAL);
    }
    return n - used;
}

static void readable(int ep, struct conn *c) {
    for (int round = 0; round < 8; round++) {
        ssize_t n;
        if (c->mode == 'T') {
            /* TCP discards with MSG_TRUNC (no copy to user space), capped at the count so
             * a later byte is never swallowed. */
            size_t want = c->left && c->left < BUF ? (size_t)c->left : BUF;
            n = recv(c->fd, buf, want, MSG_TRUNC | MSG_DONTWAIT);
        } else {
            n = recv(c->fd, buf, BUF, MSG_DONTWAIT);
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            finish(ep, c);
            return;
        }
        if (c->mode == 0) {
            ssize_t rest = header(c, (unsigned char *)buf, n);
            if (c->mode == 'T')
                count_bytes(c, (uint64_t)rest);
            else if (c->mode == 'E' && rest > 0)
                (void)!send(c->fd, buf + (n - rest), (size_t)rest, MSG_NOSIGNAL);
        } else if (c->mode == 'T') {
            count_bytes(c, (uint64_t)n);
        } else if (c->mode == 'E') {
            (void)!send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
        }
        if (n < BUF)
            return;
    }
}

int main(int argc, char **argv) {
    int port = 0, opt, lfd, ep;
    struct epoll_event ev, events[256];
    cload_name = "sink";
    while ((opt = getopt(argc, argv, "p:")) != -1) {
        if (opt == 'p')
            port = parse_port(optarg);
        else {
            fprintf(stderr, "usage: sink [-p PORT]\n");
            return 2;
        }
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_loopback(port, SOCK_NONBLOCK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c != NULL) {
                readable(ep, c);
                continue;
            }
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        fprintf(stderr, "sink: accept: %s\n", strerror(errno));
                    break;
                }
                set_nodelay(fd);
                c = calloc(1, sizeof *c);
                if (c == NULL)
                    die("calloc");
                c->fd = fd;
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                    close(fd);
                    free(c);
                }
            }
        }
    }
}
