/* util/cmdline: see cmdline.h. */
#include "util/cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has_equals(const char *arg)
{
    return arg[0] == '-' && arg[1] == '-' && strchr(arg, '=') != NULL;
}

int cmdline_split_equals(int argc, char **argv, char ***out)
{
    size_t count = 0, names = 0;
    for (int i = 0; i < argc; i++) {
        bool split = i > 0 && has_equals(argv[i]);
        count += split ? 2 : 1;
        names += split ? strlen(argv[i]) + 1 : 0;
    }
    /* one block: the array, then the names' copies (each "--name" NUL-terminated) */
    char **args = malloc((count + 1) * sizeof *args + names);
    if (!args)
        return -1;
    char *copies = (char *)(args + count + 1);
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        if (i == 0 || !has_equals(argv[i])) {
            args[n++] = argv[i];
            continue;
        }
        const char *eq = strchr(argv[i], '=');
        size_t len = (size_t)(eq - argv[i]);
        memcpy(copies, argv[i], len);
        copies[len] = '\0';
        args[n++] = copies;
        copies += len + 1;
        args[n++] = (char *)eq + 1;
    }
    args[n] = NULL;
    *out = args;
    return (int)n;
}

int cmdline_run(const char *program, int argc, char **argv, int (*run)(int argc, char **argv))
{
    char **args;
    int count = cmdline_split_equals(argc, argv, &args);
    if (count < 0) {
        fprintf(stderr, "%s: out of memory\n", program);
        return 1;
    }
    int status = run(count, args);
    free(args);
    return status;
}

bool cmdline_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!text || !*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false; /* past 2^64 - 1 */
        v = v * 10 + digit;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cmdline_parse_listen(const char *text, char host[CMDLINE_HOST_MAX], uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon)
        return false;
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= CMDLINE_HOST_MAX || memchr(h, ']', hlen))
        return false;
    uint64_t p;
    if (!cmdline_parse_u64(colon + 1, 0, 65535, &p))
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return true;
}
