/* splice_fwd: minimal TCP port forwarder with splice(2), the "relay limit" of the proxy
 * benchmark: what any relay on this machine can reach, with no protocol, policy or
 * language runtime in the way.
 *
 * usage: splice_fwd -t TARGET_PORT [-p PORT]   (prints "port N", serves until SIGTERM)
 *
 * Each accepted connection on 127.0.0.1:PORT gets its own thread, which dials
 * 127.0.0.1:TARGET_PORT and starts a second thread for the way back. Each direction
 * moves bytes socket -> pipe -> socket with blocking splice(2) through its own pipe
 * (1 MiB where the system allows), so the data never enters user space. EOF on one side
 * is passed on as a half-close (shutdown SHUT_WR); an error closes both directions.
 */
#include "cload.h"

#include <fcntl.h>
#include <pthread.h>

#define CHUNK (1 << 20)

static int target_port;
static pthread_attr_t joinable; /* small stacks: a thread per direction */

struct pair {
    int client;
};

struct flow {
    int src, dst;
};

/* Move src -> dst until EOF or an error. Returns 0 on EOF, -1 on an error. */
static int pump(int src, int dst) {
    int p[2];
    int rc = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    (void)fcntl(p[1], F_SETPIPE_SZ, CHUNK); /* EPERM past the user's pipe budget: 64K */
    for (;;) {
        ssize_t n = splice(src, NULL, p[1], NULL, CHUNK, SPLICE_F_MOVE);
        if (n == 0) {
            rc = 0;
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        while (n > 0) {
            ssize_t m = splice(p[0], NULL, dst, NULL, (size_t)n, SPLICE_F_MOVE);
            if (m < 0 && errno == EINTR)
                continue;
            if (m <= 0)
                goto out;
            n -= m;
        }
    }
out:
    close(p[0]);
    close(p[1]);
    return rc;
}

static void *back(void *arg) {
    struct flow *f = arg;
    if (pump(f->src, f->dst) == 0)
        shutdown(f->dst, SHUT_WR);
    else {
        shutdown(f->src, SHUT_RDWR);
        shutdown(f->dst, SHUT_RDWR);
    }
    return NULL;
}

static void *serve(void *arg) {
    struct pair *pr = arg;
    struct sockaddr_in a = loopback(target_port);
    struct flow down;
    pthread_t t;
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof a) < 0) {
        if (up >= 0)
            close(up);
        close(pr->client);
        free(pr);
        return NULL;
    }
    set_nodelay(up);
    down.src = up;
    down.dst = pr->client;
    if (pthread_create(&t, &joinable, back, &down) != 0) {
        close(up);
        close(pr->client);
        free(pr);
        return NULL;
    }
    if (pump(pr->client, up) == 0)
        shutdown(up, SHUT_WR);
    else {
        shutdown(pr->client, SHUT_RDWR);
        shutdown(up, SHUT_RDWR);
    }
    pthread_join(t, NULL);
    close(up);
    close(pr->client);
    free(pr);
    return NULL;
}

int main(int argc, char **argv) {
    int port = 0, opt, lfd;
    pthread_attr_t attr;
    cload_name = "splice_fwd";
    target_port = -1;
    while ((opt = getopt(argc, argv, "p:t:")) != -1) {
        if (opt == 'p')
            port = parse_port(optarg);
        else if (opt == 't')
            target_port = parse_port(optarg);
        else
            target_port = -1, optind = argc;
    }
    if (target_port <= 0) {
        fprintf(stderr, "usage: splice_fwd -t TARGET_PORT [-p PORT]\n");
        return 2;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_loopback(port, 0);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    pthread_attr_init(&joinable);
    pthread_attr_setstacksize(&joinable, 128 * 1024);
    for (;;) {
        pthread_t t;
        struct pair *pr;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                usleep(10000);
                continue;
            }
            die("accept");
        }
        set_nodelay(fd);
        pr = malloc(sizeof *pr);
        if (pr == NULL)
            die("malloc");
        pr->client = fd;
        if (pthread_create(&t, &attr, serve, pr) != 0) {
            close(fd);
            free(pr);
        }
    }
}
