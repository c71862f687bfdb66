/* loadgen: C load generator of the proxy benchmark (loopback only).
 *
 * usage: loadgen setup -d DEST [-s SOCKS] [-n N]
 *        loadgen rate  -d DEST [-s SOCKS] [-c CLIENTS] [-t SECONDS]
 *        loadgen bulk  -d DEST [-s SOCKS] [-c STREAMS] [-t SECONDS] [-w WARMUP]
 *
 * With -s, every connection goes through the SOCKS5 proxy on 127.0.0.1:SOCKS (greeting
 * with no authentication, then CONNECT 127.0.0.1:DEST, each waited for as a client
 * would); without it, straight to 127.0.0.1:DEST (the sink, or a forwarder in front of
 * it). DEST speaks the sink protocol (sink.c).
 *
 * A transaction is one connection per request: connect, SOCKS5 greeting and CONNECT,
 * send "R", read the answer "r", close.
 *   setup: N sequential transactions (default 2000); prints each one's time from
 *          socket() to the answer in microseconds, one per line, then a summary line.
 *   rate:  CLIENTS threads (default 50) run transactions back to back for SECONDS
 *          (default 2); prints the completed transactions and the rate.
 *   bulk:  STREAMS connections (default 1) in one epoll thread push bytes to the sink
 *          (mode T, a count never reached) for WARMUP (default 0.3 s) and then SECONDS;
 *          prints the bytes sent in the measured SECONDS only, when the buffers along
 *          the way are already full, so bytes sent equal bytes delivered (total= is
 *          every byte sent, warm-up included: for CPU per byte).
 * Summary lines start with "# MODE" followed by key=value fields. Errors are counted and
 * printed (errors=N); the exit status is 1 when any transaction failed.
 */
#include "cload.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>

#define BULK_BUF (1 << 20)

static int dest_port = -1, socks_port = -1;

static int exact_read(int fd, unsigned char *out, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, out + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A connected socket to DEST (through SOCKS5 with -s), or -1. */
static int open_stream(void) {
    struct sockaddr_in a = loopback(socks_port > 0 ? socks_port : dest_port);
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    unsigned char reply[10];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* a hung peer: an error */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    set_nodelay(fd);
    if (socks_port > 0) {
        unsigned char req[10] = {5, 1, 0, 1, 127, 0, 0, 1, 0, 0};
        req[8] = (unsigned char)(dest_port >> 8);
        req[9] = (unsigned char)(dest_port & 0xff);
        if (send_all(fd, "\x05\x01\x00", 3) < 0 || exact_read(fd, reply, 2) < 0)
            goto fail;
        if (reply[0] != 5 || reply[1] != 0)
            goto fail;
        if (send_all(fd, req, sizeof req) < 0 || exact_read(fd, reply, 10) < 0)
            goto fail;
        if (reply[1] != 0)
            goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* One transaction up to the answer; returns the open socket (the caller closes it). */
static int transact(void) {
    unsigned char r;
    int fd = open_stream();
    if (fd < 0)
        return -1;
    if (send_all(fd, "R", 1) < 0 || exact_read(fd, &r, 1) < 0 || r != 'r') {
        close(fd);
        return -1;
    }
    return fd;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_setup(long n) {
    double *us = malloc(sizeof(double) * (size_t)n);
    long ok = 0, errors = 0;
    if (us == NULL)
        die("malloc");
    for (long i = 0; i < n; i++) {
        double t0 = now_s();
        int fd = transact();
        double t1 = now_s();
        if (fd < 0) {
            errors++;
            continue;
        }
        close(fd);
        us[ok++] = (t1 - t0) * 1e6;
        printf("%.1f\n", us[ok - 1]);
    }
    if (ok > 0) {
        qsort(us, (size_t)ok, sizeof *us, cmp_double);
        printf("# setup n=%ld p50=%.1f p99=%.1f max=%.1f errors=%ld\n", ok, us[ok / 2],
               us[(long)((double)ok * 0.99)], us[ok - 1], errors);
    } else {
        printf("# setup n=0 errors=%ld\n", errors);
    }
    free(us);
    return errors ? 1 : 0;
}

struct worker {
    pthread_t thread;
    double deadline;
    long done, errors;
};

static pthread_barrier_t start_line;

static void *rate_worker(void *arg) {
    struct worker *w = arg;
    pthread_barrier_wait(&start_line);
    while (now_s() < w->deadline) {
        int fd = transact();
        if (fd < 0) {
            w->errors++;
            usleep(1000);
            continue;
        }
        close(fd);
        w->done++;
    }
    return NULL;
}

static int run_rate(int clients, double seconds) {
    struct worker *ws = calloc((size_t)clients, sizeof *ws);
    long done = 0, errors = 0;
    double t0, elapsed;
    if (ws == NULL)
        die("calloc");
    pthread_barrier_init(&start_line, NULL, (unsigned)clients + 1);
    for (int i = 0; i < clients; i++)
        if (pthread_create(&ws[i].thread, NULL, rate_worker, &ws[i]) != 0)
            die("pthread_create");
    t0 = now_s();
    for (int i = 0; i < clients; i++)
        ws[i].deadline = t0 + seconds;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < clients; i++) {
        pthread_join(ws[i].thread, NULL);
        done += ws[i].done;
        errors += ws[i].errors;
    }
    elapsed = now_s() - t0;
    printf("# rate clients=%d conns=%ld seconds=%.3f per_s=%.1f errors=%ld\n", clients, done,
           elapsed, (double)done / elapsed, errors);
    free(ws);
    return errors ? 1 : 0;
}

static int run_bulk(int streams, double seconds, double warmup) {
    static char payload[BULK_BUF];
    unsigned char head[9] = {'T', 0x40, 0, 0, 0, 0, 0, 0, 0}; /* 2^62 bytes: never reached */
    struct epoll_event ev, events[64];
    int *fds = calloc((size_t)streams, sizeof *fds);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned long long sent = 0, at_start = 0;
    double t_start, t_end, t_measure = 0;
    int measuring = 0;
    if (fds == NULL || ep < 0)
        die("bulk set-up");
    memset(payload, 'x', sizeof payload);
    for (int i = 0; i < streams; i++) {
        fds[i] = open_stream();
        if (fds[i] < 0 || send_all(fds[i], head, sizeof head) < 0) {
            printf("# bulk streams=%d bytes=0 seconds=0 gbps=0 total=0 errors=1\n", streams);
            return 1;
        }
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        ev.events = EPOLLOUT;
        ev.data.fd = fds[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            die("epoll_ctl");
    }
    t_start = now_s();
    t_end = t_start + warmup + seconds;
    for (;;) {
        double now = now_s();
        int n;
        if (!measuring && now >= t_start + warmup) {
            measuring = 1;
            at_start = sent;
            t_measure = now;
        }
        if (now >= t_end)
            break;
        n = epoll_wait(ep, events, 64, 100);
        for (int i = 0; i < n; i++) {
            ssize_t w = send(events[i].data.fd, payload, sizeof payload, MSG_NOSIGNAL);
            if (w > 0)
                sent += (unsigned long long)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                printf("# bulk streams=%d bytes=0 seconds=0 gbps=0 total=0 errors=1\n", streams);
                return 1;
            }
        }
    }
    {
        double elapsed = now_s() - t_measure;
        unsigned long long bytes = sent - at_start;
        printf("# bulk streams=%d bytes=%llu seconds=%.3f gbps=%.3f total=%llu errors=0\n",
               streams, bytes, elapsed, (double)bytes / elapsed / 1e9, sent);
    }
    for (int i = 0; i < streams; i++)
        close(fds[i]);
    close(ep);
    free(fds);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen setup|rate|bulk -d DEST [-s SOCKS] [-n N] [-c CLIENTS]"
                    " [-t SECONDS] [-w WARMUP]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *mode;
    long n = 2000;
    int clients = -1, opt;
    double seconds = 2.0, warmup = 0.3;
    cload_name = "loadgen";
    if (argc < 2)
        usage();
    mode = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "d:s:n:c:t:w:")) != -1) {
        switch (opt) {
        case 'd': dest_port = parse_port(optarg); break;
        case 's': socks_port = parse_port(optarg); break;
        case 'n': n = atol(optarg); break;
        case 'c': clients = atoi(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        default: usage();
        }
    }
    if (dest_port <= 0 || n <= 0 || seconds <= 0 || warmup < 0)
        usage();
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "setup") == 0)
        return run_setup(n);
    if (strcmp(mode, "rate") == 0)
        return run_rate(clients > 0 ? clients : 50, seconds);
    if (strcmp(mode, "bulk") == 0)
        return run_bulk(clients > 0 ? clients : 1, seconds, warmup);
    usage();
    return 2;
}
