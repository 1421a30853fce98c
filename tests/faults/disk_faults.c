/*
 * A disk that fails on demand, for the API tests of what tallyd answers when its storage
 * refuses (tests/api/disk_faults.test.mjs). Preloaded into a real tallyd (LD_PRELOAD), it
 * stands between the process and the kernel for the calls that put bytes on a disk: writes to
 * regular files (write, pwrite, pwrite64) and syncs (fsync, fdatasync). Everything else, the
 * sockets and pipes and eventfds included, passes through untouched.
 *
 * What fails is read, at every such call, from the file named by TALLY_DISK_FAULTS, so a test
 * changes the disk's behaviour while tallyd runs, without signals or a side channel. Its first
 * line is one of:
 *
 *   (empty, or no file)    nothing fails
 *   write ENOSPC           every write to a regular file fails: a full disk
 *   sync EIO               every sync fails
 *   sync EIO once TAG      the next sync fails and those after it succeed, as Linux reports a
 *                          failed writeback to one fdatasync of a descriptor only; TAG names
 *                          the fault, so writing the same line again does not fail another
 *   sync EIO after N TAG   the same, for the sync after the next N (a test that knows the
 *                          order of tallyd's syncs aims at one of them)
 *
 * The once mode is the one that matters: a process that lets a later successful sync stand
 * for the failed one acknowledges changes whose pages the kernel may have dropped.
 *
 * This file is test tooling, never linked into Tally; it reads the control file with plain
 * system calls so that it never re-enters itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { CONTROL_MAX = 256 };

enum fault_kind { FAULT_WRITE, FAULT_SYNC };

/* The one-shot faults: the TAG of the one counted or fired last, and the syncs it let pass. */
static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
static char once_tag[CONTROL_MAX];
static long once_passed;
static bool once_fired;

/* The control file's first line into line (NUL-terminated, without its newline); false if
 * there is none. */
static bool read_control(char *line, size_t size)
{
    const char *path = getenv("TALLY_DISK_FAULTS");
    if (!path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, line, size - 1);
    close(fd);
    if (n <= 0)
        return false;
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    return true;
}

/* The errno a call of this kind should fail with now, or 0 to let it through. */
static int fault_now(enum fault_kind kind)
{
    char line[CONTROL_MAX];
    if (!read_control(line, sizeof line))
        return 0;
    const char *word = kind == FAULT_WRITE ? "write " : "sync ";
    size_t word_len = strlen(word);
    if (strncmp(line, word, word_len) != 0)
        return 0;
    const char *rest = line + word_len;
    int error = strncmp(rest, "ENOSPC", 6) == 0 ? ENOSPC : EIO;
    long pass = 0;
    const char *tag = NULL;
    const char *once = strstr(rest, " once ");
    const char *after = strstr(rest, " after ");
    if (once) {
        tag = once + strlen(" once ");
    } else if (after) {
        char *end;
        pass = strtol(after + strlen(" after "), &end, 10);
        tag = *end == ' ' ? end + 1 : end;
    } else {
        return error;
    }
    int answer = 0;
    pthread_mutex_lock(&once_lock);
    if (strcmp(once_tag, tag) != 0) {
        strncpy(once_tag, tag, sizeof once_tag - 1);
        once_passed = 0;
        once_fired = false;
    }
    if (!once_fired && once_passed++ == pass) {
        once_fired = true;
        answer = error;
    }
    pthread_mutex_unlock(&once_lock);
    return answer;
}

static bool is_regular_file(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* The next definition of name (the C library's, or a sanitizer's in front of it), looked up
 * once: *slot caches it for every thread. */
static void *next_symbol(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (f)
        return f;
    f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* the C library lacks a call tallyd makes: nothing sensible to do */
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    return f;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef int (*sync_fn)(int);
static void *real_write, *real_pwrite, *real_pwrite64, *real_fsync, *real_fdatasync;

/* True, with errno set, if a call of this kind on fd is to fail now. */
static bool refused(int fd, enum fault_kind kind)
{
    if (kind == FAULT_WRITE && !is_regular_file(fd))
        return false;
    int error = fault_now(kind);
    if (!error)
        return false;
    errno = error;
    return true;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    write_fn real = (write_fn)next_symbol(&real_write, "write");
    return refused(fd, FAULT_WRITE) ? -1 : real(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    pwrite_fn real = (pwrite_fn)next_symbol(&real_pwrite, "pwrite");
    return refused(fd, FAULT_WRITE) ? -1 : real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset)
{
    pwrite64_fn real = (pwrite64_fn)next_symbol(&real_pwrite64, "pwrite64");
    return refused(fd, FAULT_WRITE) ? -1 : real(fd, buf, count, offset);
}

int fsync(int fd)
{
    sync_fn real = (sync_fn)next_symbol(&real_fsync, "fsync");
    return refused(fd, FAULT_SYNC) ? -1 : real(fd);
}

int fdatasync(int fd)
{
    sync_fn real = (sync_fn)next_symbol(&real_fdatasync, "fdatasync");
    return refused(fd, FAULT_SYNC) ? -1 : real(fd);
}
