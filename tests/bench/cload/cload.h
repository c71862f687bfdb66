/* Shared helpers of the C benchmark tools (loadgen, sink, splice_fwd): loopback only.
 *
 * Every tool that listens binds 127.0.0.1, prints "port N" as its first line on stdout
 * (flushed) and then runs until SIGTERM or SIGINT. Errors go to stderr, prefixed with
 * the tool's name. See README.md beside this file for the sink protocol.
 */
#ifndef CLOAD_H
#define CLOAD_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *cload_name = "cload";

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...);

#include <stdarg.h>
static void die(const char *fmt, ...) {
    va_list ap;
    int err = errno;
    fprintf(stderr, "%s: ", cload_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (err)
        fprintf(stderr, ": %s", strerror(err));
    fputc('\n', stderr);
    exit(2);
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static inline int parse_port(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535) {
        errno = 0;
        die("bad port %s", s);
    }
    return (int)v;
}

/* Raise the soft fd limit to the hard one (thousands of connections in flight). */
static inline void raise_nofile(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* Listen on 127.0.0.1:port (0: any free port) and print "port N" on stdout. */
static inline int listen_loopback(int port, int flags) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    int one = 1;
    struct sockaddr_in a = loopback(port);
    socklen_t len = sizeof a;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind 127.0.0.1:%d", port);
    if (listen(fd, 4096) < 0)
        die("listen");
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("getsockname");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

#endif
