/*
 * tallyd: the server. A thin main: parse options, take the data directory, open the store,
 * start the writer and the HTTP threads, wait for SIGTERM/SIGINT/SIGHUP, then stop in order
 * (stop accepting, let in-flight commands commit and answer, stop the writer, close).
 *
 * SIGHUP stops cleanly too: tallyd has nothing to reload, and it comes when the terminal of a
 * `make run` closes or an ssh session drops, where its default action (exit at once, no
 * drain, no snapshot) was what an audit found.
 *
 * Signals are blocked before any thread starts, so every thread inherits the mask and only
 * this main thread receives them, synchronously, through sigwait: no handler code runs in
 * signal context.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/event.h"
#include "engine/engine.h"
#include "store/store.h"
#include "sys/fdlimit.h"
#include "sys/heap.h"
#include "sys/rtprio.h"
#include "sys/tzdb.h"
#include "sys/wallclock.h"
#include "util/cmdline.h"

#define TALLYD_THREADS_MAX 64

/*
 * A second SIGINT or SIGTERM while draining (a client that never finishes, an operator who
 * will not wait): exit now. Not a second SIGHUP: a closing terminal may send two (the kernel's
 * and the shell's), and neither means impatience; it stays blocked, so it does nothing. A 2xx is
 * only ever sent for what is on disk, so this loses no acknowledged change, as a kill -9 does not;
 * the next start reads the rest back.
 */
static void *stop_now_on_signal(void *arg)
{
    int sig;
    sigwait(arg, &sig);
    static const char message[] = "tallyd: second signal: stopping now\n";
    ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
    (void)ignored; /* exiting either way */
    _exit(1);
}

static const char usage[] =
    "usage: tallyd [options]\n"
    "\n"
    "Tally's server: the Lago-compatible REST API on the embedded SQLite store.\n"
    "\n"
    "options (--name value or --name=value):\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:3000; port 0 picks one)\n"
    "  --data-dir DIR       where the database lives (default ./data)\n"
    "  --threads N          HTTP threads (default 2)\n"
    "  --max-body BYTES     largest request body accepted (default 1048576, or 1 KiB per\n"
    "                       event of the largest batch if that is more)\n"
    "  --max-batch N        events per POST /events/batch (default 100, at most 10000)\n"
    "  --snapshot-every N   save the event identity set (a forked child writes it) once N\n"
    "                       more events are stored, or a quarter of the last snapshot's\n"
    "                       if more (default 5000000; 0: only at a clean stop). A start,\n"
    "                       after a crash or not, reads back the events after the snapshot\n"
    "                       and every event from the oldest one a current billing period\n"
    "                       counts: late in a busy month, most of that month's events\n"
    "  --realtime-http      run the HTTP threads under SCHED_FIFO (needs CAP_SYS_NICE,\n"
    "                       which root in a container may lack, or ulimit -r of 1 or\n"
    "                       more; refused before the start otherwise): when every core\n"
    "                       is busy, a read such as current usage does not wait for a\n"
    "                       core (costs ingest)\n"
    "  --quiet              no per-request log lines\n"
    "  --help               this text\n"
    "\n"
    "SIGTERM, SIGINT and SIGHUP stop it cleanly (requests read whole are answered; exit 0, or\n"
    "1 after the disk refused a sync of the log); a second SIGTERM or SIGINT stops it at once,\n"
    "losing nothing acknowledged (exit 1).\n"
    "\n"
    "Create an organization and its API key first with: tally org create NAME\n";

struct options {
    char host[CMDLINE_HOST_MAX];
    uint16_t port;
    const char *data_dir;
    unsigned threads;
    size_t body_max;
    bool body_max_given;
    size_t event_batch_max;
    int64_t snapshot_every;
    bool quiet;
    bool realtime_http;
};

/* Whether `a` is one of the options that take a value (the others are flags). */
static bool takes_value(const char *a)
{
    static const char *const names[] = {"--listen",   "--data-dir",  "--threads",
                                        "--max-body", "--max-batch", "--snapshot-every"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(a, names[i]) == 0)
            return true;
    return false;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    strcpy(o->host, "127.0.0.1");
    o->port = 3000;
    o->data_dir = "./data";
    o->threads = API_THREADS_DEFAULT;
    o->body_max = API_BODY_MAX_DEFAULT;
    o->event_batch_max = EVENT_BATCH_DEFAULT;
    o->snapshot_every = ENGINE_SNAPSHOT_EVERY_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        } else if (strcmp(a, "--realtime-http") == 0) {
            o->realtime_http = true;
            continue;
        } else if (!takes_value(a) && a[0] != '-') {
            /* `--quiet=1` arrives as --quiet then 1 */
            fprintf(stderr,
                    "tallyd: unexpected argument '%s' (--quiet and --realtime-http take no "
                    "value; see tallyd --help)\n",
                    a);
            return 2;
        } else if (!takes_value(a)) {
            fprintf(stderr, "tallyd: unknown option '%s' (see tallyd --help)\n", a);
            return 2;
        } else if (!v) {
            fprintf(stderr, "tallyd: %s needs a value (see tallyd --help)\n", a);
            return 2;
        } else if (strcmp(a, "--listen") == 0) {
            if (!cmdline_parse_listen(v, o->host, &o->port)) {
                fprintf(stderr, "tallyd: --listen wants HOST:PORT, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--data-dir") == 0) {
            if (!*v) {
                fprintf(stderr, "tallyd: --data-dir needs a directory\n");
                return 2;
            }
            o->data_dir = v;
        } else if (strcmp(a, "--threads") == 0) {
            if (!cmdline_parse_u64(v, 1, TALLYD_THREADS_MAX, &n)) {
                fprintf(stderr, "tallyd: --threads wants 1 to %d, got '%s'\n", TALLYD_THREADS_MAX,
                        v);
                return 2;
            }
            o->threads = (unsigned)n;
        } else if (strcmp(a, "--max-body") == 0) {
            if (!cmdline_parse_u64(v, 1024, (uint64_t)1 << 30, &n)) {
                fprintf(stderr, "tallyd: --max-body wants 1024 to 1073741824 bytes, got '%s'\n", v);
                return 2;
            }
            o->body_max = (size_t)n;
            o->body_max_given = true;
        } else if (strcmp(a, "--max-batch") == 0) {
            if (!cmdline_parse_u64(v, 1, EVENT_BATCH_LIMIT, &n)) {
                fprintf(stderr, "tallyd: --max-batch wants 1 to %d events, got '%s'\n",
                        EVENT_BATCH_LIMIT, v);
                return 2;
            }
            o->event_batch_max = (size_t)n;
        } else if (strcmp(a, "--snapshot-every") == 0) {
            if (!cmdline_parse_u64(v, 0, (uint64_t)1 << 40, &n)) {
                fprintf(stderr, "tallyd: --snapshot-every wants a number of events, got '%s'\n", v);
                return 2;
            }
            o->snapshot_every = (int64_t)n;
        }
        i++;
    }
    /* A full batch must fit in a body: about 1 KiB an event leaves room for properties. */
    if (!o->body_max_given && o->body_max < o->event_batch_max * 1024)
        o->body_max = o->event_batch_max * 1024;
    return -1;
}

/*
 * Says on stderr when the store was made or upgraded by this start: a mistyped --data-dir
 * otherwise served a new, empty store without a word (every key then refused), and an upgrade
 * cannot be undone.
 */
static void report_store(const char *data_dir, int found, int schema)
{
    if (found == 0)
        fprintf(stderr,
                "tallyd: %s held no store: a new, empty one was made there, with no "
                "organization yet (`tally --data-dir %s org create NAME` makes one); if you "
                "meant an existing store, stop tallyd and check --data-dir\n",
                data_dir, data_dir);
    else if (found < schema)
        fprintf(stderr, "tallyd: upgraded the store in %s from schema version %d to %d\n", data_dir,
                found, schema);
}

/* One line on what the start read back: a start that grows with history shows here first. */
static void report_start(struct engine *engine, int64_t usec)
{
    struct engine_start_report r;
    engine_start_report(engine, &r);
    if (r.snapshot_note[0])
        fprintf(stderr, "tallyd: the snapshot of event identities was not used: %s\n",
                r.snapshot_note);
    fprintf(stderr,
            "tallyd: started in %lld.%03lld s: %lld event identities from the snapshot, %lld "
            "stored events read back\n",
            (long long)(usec / 1000000), (long long)(usec / 1000 % 1000),
            (long long)r.snapshot_events, (long long)r.scanned_events);
}

/*
 * Raises the open-files limit for every client connection plus tallyd's own files; when the
 * hard limit stops it short, says once how many connections tallyd holds then (the rest wait
 * in the listen backlog), and returns that number.
 */
static unsigned raise_files_limit(unsigned threads)
{
    uint64_t reserve = API_FILES_RESERVE(threads), want = API_CONNECTIONS_MAX + reserve;
    uint64_t got = fdlimit_raise(want);
    if (got >= want)
        return API_CONNECTIONS_MAX;
    unsigned held = got > reserve + 16 ? (unsigned)(got - reserve) : 16;
    fprintf(stderr,
            "tallyd: the open-files limit is %llu: it holds at most %u client connections, not "
            "%d; raise the hard limit to %llu or more (ulimit -Hn, or LimitNOFILE= in a systemd "
            "unit) for all of them\n",
            (unsigned long long)got, held, API_CONNECTIONS_MAX, (unsigned long long)want);
    return held;
}

static int serve(int argc, char **argv)
{
    struct options o = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;

    char err[STORE_ERR_MAX];
    /* static: the thread that waits for a second signal reads it, and may first run after
     * main has returned (a stack set was read after its frame was gone, under ASan) */
    static sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigset_t first_signals = stop_signals;
    sigaddset(&first_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &first_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit (ulimit -f) fails the write (EFBIG), answered and said as any failing
     * write, where the signal killed tallyd without a word (an audit) */
    signal(SIGXFSZ, SIG_IGN);

    struct engine *engine = NULL;
    struct api *api = NULL;
    struct tzdb *tzdb = NULL;
    struct store_dir_lock lock = STORE_DIR_LOCK_NONE;
    int listen_fd = -1;
    /* api_start raises the HTTP threads after the start's read-back, seconds on a large store:
     * a process that may not do so is refused now, before it touches the data directory. */
    char why[RTPRIO_ERR_MAX];
    if (o.realtime_http && !rtprio_allowed(why)) {
        snprintf(err, sizeof err, "--realtime-http: %s", why);
        goto fail;
    }
    uint16_t port = 0;
    listen_fd = api_bind(o.host, o.port, &port, err);
    if (listen_fd < 0)
        goto fail;
    if (!store_lock(o.data_dir, &lock, err))
        goto fail;
    struct store *st = store_open(o.data_dir, err);
    if (!st)
        goto fail;
    int schema = store_schema_version(st);
    report_store(o.data_dir, store_found_schema_version(st), schema);
    tzdb = tzdb_open(NULL);
    if (!tzdb) {
        snprintf(err, sizeof err, "cannot open the time zone database (is tzdata installed?)");
        store_close(st);
        goto fail;
    }
    /* before the start's long read: its warning then comes before the "started" line */
    unsigned connections_max = raise_files_limit(o.threads);
    int64_t start_usec = wallclock_monotonic_usec();
    struct engine_options engine_opts = {.snapshot_every = o.snapshot_every};
    engine = engine_start(st, tzdb, &engine_opts, err); /* takes the store */
    if (!engine) {
        store_close(st);
        goto fail;
    }
    report_start(engine, wallclock_monotonic_usec() - start_usec);
    struct api_config cfg = {.host = o.host,
                             .port = port,
                             .listen_fd = listen_fd,
                             .data_dir = o.data_dir,
                             .threads = o.threads,
                             .body_max = o.body_max,
                             .event_batch_max = o.event_batch_max,
                             .log_requests = !o.quiet,
                             .realtime_http = o.realtime_http,
                             .connections_max = connections_max};
    listen_fd = -1; /* api_start's now */
    api = api_start(&cfg, engine, tzdb, err);
    if (!api)
        goto fail;
    bool v6 = strchr(o.host, ':') != NULL;
    printf("tallyd: listening on http://%s%s%s:%u (data dir %s, schema version %d)\n",
           v6 ? "[" : "", o.host, v6 ? "]" : "", api_port(api), o.data_dir, schema);
    fflush(stdout);

    int sig = 0;
    sigwait(&first_signals, &sig);
    fprintf(stderr,
            "tallyd: %s received: draining (a second SIGINT or SIGTERM stops at once; nothing "
            "acknowledged is lost)\n",
            sig == SIGINT   ? "SIGINT"
            : sig == SIGHUP ? "SIGHUP"
                            : "SIGTERM");
    pthread_t impatient;
    if (pthread_create(&impatient, NULL, stop_now_on_signal, &stop_signals) == 0)
        pthread_detach(impatient);
    if (!api_drain(api))
        fprintf(stderr,
                "tallyd: commands still wait for the disk after %d s; waiting for their "
                "answers before closing connections\n",
                API_DRAIN_TIMEOUT_SEC);
    api_stop(api);
    bool sync_refused = engine_failed(engine); /* read before the engine goes */
    if (!engine_stop(engine, err))
        fprintf(stderr, "tallyd: %s (the next start reads back more events; nothing is lost)\n",
                err);
    tzdb_close(tzdb);
    store_unlock(&lock);
    if (sync_refused) { /* not a clean stop: what the disk refused was never acknowledged */
        fprintf(stderr, "tallyd: stopped after the disk refused a sync of the log: check the "
                        "disk before starting again (what was acknowledged is on disk)\n");
        return 1;
    }
    fprintf(stderr, "tallyd: stopped cleanly\n");
    return 0;

fail:
    fprintf(stderr, "tallyd: %s\n", err);
    if (api)
        api_stop(api);
    engine_stop(engine, NULL);
    tzdb_close(tzdb);
    store_unlock(&lock);
    if (listen_fd >= 0)
        close(listen_fd);
    return 1;
}

int main(int argc, char **argv)
{
    heap_keep_top();
    return cmdline_run("tallyd", argc, argv, serve);
}
