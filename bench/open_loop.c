/*
 * bench/open_loop: an open-loop HTTP/1.1 load generator for latency at a stated rate.
 *
 * Closed-loop clients (wrk, the node probes) send the next request when the last one answers,
 * so a slow answer delays the requests behind it and is counted once: their percentiles are
 * kinder than what a client at a fixed rate sees, and their rate is whatever the server
 * allows. Here request i is due at start + i/RATE whatever happened before; it goes out on the
 * first idle keep-alive connection, and its latency runs from when it was due to its last
 * answer byte, so time spent queued behind slow answers counts.
 *
 *   build/release/bench/bench_open_loop URL KEY KIND RATE SECONDS [CONNECTIONS]
 *
 * KIND: authorizations (a hold of 100 tokens on a random subscription s0..s999, expiring in a
 * minute), events (a batch of 100 events with unique transaction ids over s0..s999, as
 * bench/events.lua) or usage (GET the current usage of a random customer cN and its
 * subscription sN). Prints one line: requests due and answered, the rate reached, non-2xx
 * answers, and latency percentiles in milliseconds.
 *
 * One thread, epoll, no allocation after start; bounded by MAX_CONNECTIONS and MAX_REQUESTS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_CONNECTIONS = 1024,
    MAX_REQUESTS = 20 * 1000 * 1000, /* RATE x SECONDS */
    REQUEST_BYTES = 64 * 1024,
    ANSWER_BYTES = 256 * 1024,
};

enum kind { KIND_AUTHORIZATIONS, KIND_EVENTS, KIND_USAGE };

struct connection {
    int fd;
    bool busy;
    int64_t due_nsec; /* when the request it carries was due */
    char *out;        /* the request being written: out[sent..out_len) remains */
    size_t out_len, sent;
    char *in; /* the answer so far */
    size_t in_len;
};

struct run {
    struct sockaddr_in addr;
    char host[64];
    const char *key;
    enum kind kind;
    unsigned run_id;
    uint64_t serial; /* requests built so far: makes transaction ids unique */
    uint64_t random;
    int64_t *latency_nsec;
    size_t answered, failed;
};

static int64_t now_nsec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t next_random(struct run *r)
{
    r->random ^= r->random << 13;
    r->random ^= r->random >> 7;
    r->random ^= r->random << 17;
    return r->random;
}

/* Writes the body of the next request into buf (REQUEST_BYTES); returns its length. */
static size_t build_body(struct run *r, char *buf)
{
    size_t n = 0;
    if (r->kind == KIND_AUTHORIZATIONS) {
        return (size_t)snprintf(buf, REQUEST_BYTES,
                                "{\"authorization\":{\"external_subscription_id\":\"s%u\","
                                "\"code\":\"tokens\",\"properties\":{\"tokens\":100},"
                                "\"expires_in\":60}}",
                                (unsigned)(next_random(r) % 1000));
    }
    n += (size_t)snprintf(buf, REQUEST_BYTES, "{\"events\":[");
    for (int i = 0; i < 100; i++) {
        uint64_t c = r->serial * 100 + (uint64_t)i;
        n += (size_t)snprintf(buf + n, REQUEST_BYTES - n,
                              "%s{\"transaction_id\":\"ol%u-%llu\",\"external_subscription_id\":"
                              "\"s%llu\",\"code\":\"tokens\",\"properties\":{\"tokens\":%llu,"
                              "\"model\":\"large\",\"kind\":\"output\"}}",
                              i ? "," : "", r->run_id, (unsigned long long)c,
                              (unsigned long long)(c % 1000), (unsigned long long)(100 + c % 4000));
    }
    n += (size_t)snprintf(buf + n, REQUEST_BYTES - n, "]}");
    return n;
}

static void start_request(struct run *r, struct connection *c, int64_t due_nsec)
{
    r->serial++;
    if (r->kind == KIND_USAGE) {
        unsigned n = (unsigned)(next_random(r) % 1000);
        int len = snprintf(c->out, REQUEST_BYTES,
                           "GET /api/v1/customers/c%u/current_usage?external_subscription_id=s%u"
                           " HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
                           n, n, r->host, r->key);
        c->out_len = (size_t)len;
    } else {
        char body[REQUEST_BYTES];
        size_t body_len = build_body(r, body);
        const char *path =
            r->kind == KIND_AUTHORIZATIONS ? "/api/v1/authorizations" : "/api/v1/events/batch";
        int head = snprintf(c->out, REQUEST_BYTES,
                            "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                            path, r->host, r->key, body_len);
        memcpy(c->out + head, body, body_len);
        c->out_len = (size_t)head + body_len;
    }
    c->sent = 0;
    c->in_len = 0;
    c->busy = true;
    c->due_nsec = due_nsec;
}

/* Writes what the socket takes; false when the connection failed. */
static bool send_some(struct connection *c)
{
    while (c->sent < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->sent, c->out_len - c->sent, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN;
        c->sent += (size_t)w;
    }
    return true;
}

/* The answer's total length once its head is in, or 0 while incomplete. */
static size_t answer_length(const struct connection *c)
{
    const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->in) + 4;
    const char *cl = memmem(c->in, head, "Content-Length:", 15);
    if (!cl)
        cl = memmem(c->in, head, "content-length:", 15);
    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
    return c->in_len >= head + body ? head + body : 0;
}

/* Reads what arrived; false when the connection failed. Records a completed answer. */
static bool receive_some(struct run *r, struct connection *c)
{
    for (;;) {
        if (c->in_len == ANSWER_BYTES)
            return false;
        ssize_t got = recv(c->fd, c->in + c->in_len, ANSWER_BYTES - c->in_len, 0);
        if (got == 0)
            return false;
        if (got < 0)
            return errno == EAGAIN;
        c->in_len += (size_t)got;
        size_t len = answer_length(c);
        if (len == 0)
            continue;
        bool ok = c->in_len > 12 && c->in[9] == '2';
        if (!ok)
            r->failed++;
        r->latency_nsec[r->answered++] = now_nsec() - c->due_nsec;
        c->busy = false;
        return true;
    }
}

static int connect_one(const struct run *r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&r->addr, sizeof r->addr) < 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double at_quantile(const int64_t *sorted, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return (double)sorted[i < n ? i : n - 1] / 1e6;
}

static bool parse_url(struct run *r, const char *url)
{
    unsigned a, b, c, d, port;
    if (sscanf(url, "http://%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5 || port > 65535)
        return false;
    snprintf(r->host, sizeof r->host, "%u.%u.%u.%u:%u", a, b, c, d, port);
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons((uint16_t)port);
    r->addr.sin_addr.s_addr = htonl(a << 24 | b << 16 | c << 8 | d);
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr,
                "usage: %s URL KEY authorizations|events|usage RATE SECONDS [CONNECTIONS]\n",
                argv[0]);
        return 2;
    }
    static struct run r;
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    long conns = argc > 6 ? atol(argv[6]) : 32;
    size_t total = (size_t)(rate * seconds);
    r.key = argv[2];
    r.kind = strcmp(argv[3], "events") == 0  ? KIND_EVENTS
             : strcmp(argv[3], "usage") == 0 ? KIND_USAGE
                                             : KIND_AUTHORIZATIONS;
    r.run_id = (unsigned)getpid() ^ (unsigned)now_nsec();
    r.random = 0x9e3779b97f4a7c15ull ^ r.run_id;
    if (!parse_url(&r, argv[1]) || rate <= 0 || seconds <= 0 || total == 0 ||
        total > MAX_REQUESTS || conns < 1 || conns > MAX_CONNECTIONS) {
        fprintf(stderr,
                "bad arguments (URL as http://127.0.0.1:PORT, RATE x SECONDS <= %d, "
                "CONNECTIONS 1..%d)\n",
                MAX_REQUESTS, MAX_CONNECTIONS);
        return 2;
    }
    r.latency_nsec = calloc(total, sizeof *r.latency_nsec);
    struct connection *cs = calloc((size_t)conns, sizeof *cs);
    int ep = epoll_create1(0);
    if (!r.latency_nsec || !cs || ep < 0)
        return 1;
    for (long i = 0; i < conns; i++) {
        cs[i].fd = connect_one(&r);
        cs[i].out = malloc(REQUEST_BYTES);
        cs[i].in = malloc(ANSWER_BYTES);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = (uint64_t)i};
        if (cs[i].fd < 0 || !cs[i].out || !cs[i].in ||
            epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) {
            fprintf(stderr, "cannot connect to %s\n", argv[1]);
            return 1;
        }
    }

    int64_t start = now_nsec(), interval = (int64_t)(1e9 / rate);
    int64_t deadline = start + (int64_t)(seconds * 1e9) + 10 * 1000000000ll; /* 10 s to drain */
    size_t issued = 0;
    for (;;) {
        int64_t now = now_nsec();
        /* every request due by now goes out on an idle connection; the rest wait their turn */
        for (long i = 0; i < conns && issued < total && start + (int64_t)issued * interval <= now;
             i++) {
            if (cs[i].busy)
                continue;
            start_request(&r, &cs[i], start + (int64_t)issued * interval);
            issued++;
            if (!send_some(&cs[i])) {
                fprintf(stderr, "connection %ld failed while sending\n", i);
                return 1;
            }
        }
        if (r.answered == total || now > deadline)
            break;
        int64_t next = issued < total ? start + (int64_t)issued * interval - now : 1000000;
        if (next < 0)
            next = 0; /* due but every connection busy: wait for an answer */
        bool all_busy = true;
        for (long i = 0; i < conns && all_busy; i++)
            all_busy = cs[i].busy;
        if (all_busy)
            next = 1000000;
        struct timespec timeout = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
        struct epoll_event evs[64];
        int n = epoll_pwait2(ep, evs, 64, &timeout, NULL);
        for (int k = 0; k < n; k++) {
            struct connection *c = &cs[evs[k].data.u64];
            bool alive = !c->busy || (send_some(c) && receive_some(&r, c));
            if (!alive) {
                fprintf(stderr, "connection %llu closed by the server\n",
                        (unsigned long long)evs[k].data.u64);
                return 1;
            }
        }
    }
    double elapsed = (double)(now_nsec() - start) / 1e9;
    qsort(r.latency_nsec, r.answered, sizeof *r.latency_nsec, compare_i64);
    const int64_t *l = r.latency_nsec;
    size_t n = r.answered;
    printf("%s: %zu due at %.0f/s over %.0f s, %zu answered (%.0f/s), non-2xx %zu, "
           "%ld connections; latency from when due: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
           "p99.9 %.2f ms, max %.2f ms\n",
           argv[3], total, rate, seconds, n, (double)n / elapsed, r.failed, conns,
           n ? at_quantile(l, n, 0.5) : 0, n ? at_quantile(l, n, 0.9) : 0,
           n ? at_quantile(l, n, 0.99) : 0, n ? at_quantile(l, n, 0.999) : 0,
           n ? at_quantile(l, n, 1) : 0);
    return r.failed == 0 && n == total ? 0 : 1;
}
