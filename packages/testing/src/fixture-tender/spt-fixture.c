/*
 * spt-fixture: a stand-in for the Solo5 spt tender (runnc's nabla-run) in tests. It takes the spt option
 * grammar, builds the guest command line exactly as the tender does, splits it exactly as a frankenlibc
 * unikernel does (libiberty buildargv rules, then envp / --config / -- argv), and execve()s the "kernel" (a
 * static Linux executable) with that argv and envp. Nothing here is taken from Solo5 or frankenlibc; it
 * follows their documented behaviour so the launcher can be tested end to end without a sandbox.
 *
 * Tender options (before the kernel): --mem=N, --net:NAME=IFACE|@FD, --net-mac:NAME=HWADDR,
 * --block:NAME=PATH, --x-exec-heap, --help, --version, and a bare -- ending the options.
 *
 * Manifest: the one embedded in the kernel by the fixture Solo5's `solo5-elftool gen-manifest` (ELF section
 * .note.solo5.manifest: "SOLO5-MFT1" then one "BLOCK_BASIC|NET_BASIC NAME" line per device); else, if
 * <kernel>.manifest exists, each line "block NAME" or "net NAME" declares a device. Undeclared devices are
 * refused ("Resource not declared in manifest"), and every declared device must be attached (as the real
 * tender does with the manifest baked into the unikernel).
 *
 * Extra environment passed to the kernel (the guest never sees these under real Solo5):
 *   NABLA_FIXTURE_CONFIG=<the --config string>   (only when --config was given)
 *   NABLA_FIXTURE_MEM=<MB>, NABLA_FIXTURE_EXEC_HEAP=0|1,
 *   NABLA_FIXTURE_BLOCK_<NAME>=<path>, NABLA_FIXTURE_NET_<NAME>=<iface>
 *   NABLA_FIXTURE_CMDLINE=<the joined command line>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>

#include "mft.h"

#define SPT_CMDLINE_SIZE 8192
#define MAX_DEVICES 16

static const char *prog = "spt-fixture";

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

struct device {
    char kind[8];   /* "block" or "net" */
    char name[68];
    int declared;
    const char *value; /* path / iface when attached */
};

static struct device devices[MAX_DEVICES];
static int ndevices;
static int have_manifest;

static struct device *find_device(const char *kind, const char *name, size_t namelen)
{
    for (int i = 0; i < ndevices; i++) {
        if (strcmp(devices[i].kind, kind) == 0 && strlen(devices[i].name) == namelen &&
            strncmp(devices[i].name, name, namelen) == 0)
            return &devices[i];
    }
    return NULL;
}

static struct device *add_device(const char *kind, const char *name, size_t namelen)
{
    if (ndevices == MAX_DEVICES)
        die("too many devices");
    if (namelen == 0 || namelen >= sizeof devices[0].name)
        die("invalid device name");
    struct device *d = &devices[ndevices++];
    snprintf(d->kind, sizeof d->kind, "%s", kind);
    memcpy(d->name, name, namelen);
    d->name[namelen] = 0;
    return d;
}

static void load_manifest(const char *kernel)
{
    struct mft_entry e[MFT_MAX_ENTRIES];
    int entries = mft_read(kernel, e);
    if (entries == MFT_INVALID)
        die("%s: Invalid or unsupported manifest", kernel);
    if (entries != MFT_NONE) {
        have_manifest = 1;
        for (int i = 0; i < entries; i++) {
            const char *t = e[i].type;
            const char *kind = strcmp(t, "BLOCK_BASIC") == 0 ? "block" : strcmp(t, "NET_BASIC") == 0 ? "net" : NULL;
            if (!kind)
                die("%s: Invalid or unsupported manifest", kernel);
            add_device(kind, e[i].name, strlen(e[i].name))->declared = 1;
        }
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.manifest", kernel);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    have_manifest = 1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char kind[16], name[80];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%15s %79s", kind, name) != 2 ||
            (strcmp(kind, "block") != 0 && strcmp(kind, "net") != 0))
            die("%s: malformed manifest line: %s", path, line);
        struct device *d = add_device(kind, name, strlen(name));
        d->declared = 1;
    }
    fclose(f);
}

/* --block:NAME=PATH or --net:NAME=IFACE */
static int handle_device(const char *arg, const char *prefix, const char *kind)
{
    size_t plen = strlen(prefix);
    if (strncmp(arg, prefix, plen) != 0)
        return 0;
    const char *name = arg + plen;
    const char *eq = strchr(name, '=');
    if (!eq || eq == name || eq[1] == 0)
        die("Malformed argument to %s: `%s'", prefix, arg);
    size_t namelen = (size_t)(eq - name);
    struct device *d = find_device(kind, name, namelen);
    if (!d) {
        if (have_manifest) {
            /* The real tender's words (spt_module_block.c, spt_module_net.c), then its usage error. */
            fprintf(stderr, "%s: Resource not declared in manifest: '%.*s'\n", prog, (int)namelen, name);
            die("Invalid option: `%s'", arg);
        }
        d = add_device(kind, name, namelen);
    }
    if (d->value)
        die("%s device '%s' attached twice", kind, d->name);
    d->value = eq + 1;
    if (strcmp(kind, "block") == 0) {
        int fd = open(d->value, O_RDWR);
        if (fd < 0)
            die("%s: Could not open: %s", d->value, strerror(errno));
        close(fd);
    } else if (d->value[0] == '@') {
        char *end;
        long fd = strtol(d->value + 1, &end, 10);
        if (*end || fd < 0 || fcntl((int)fd, F_GETFD) < 0)
            die("%s: not an open file descriptor", d->value);
    } else if (if_nametoindex(d->value) == 0) {
        die("Could not attach interface: %s: %s", d->value, strerror(errno));
    }
    return 1;
}

/* The tender's setup_cmdline(): words joined by single spaces, at most SPT_CMDLINE_SIZE - 1 bytes. */
static void setup_cmdline(char *cmdline, int argc, char **argv)
{
    size_t cmdline_free = SPT_CMDLINE_SIZE;
    cmdline[0] = 0;
    for (; *argv; argc--, argv++) {
        size_t alen = (size_t)snprintf(cmdline, cmdline_free, "%s%s", *argv, (argc > 1) ? " " : "");
        if (alen >= cmdline_free)
            die("Guest command line too long (max=%d characters)", SPT_CMDLINE_SIZE - 1);
        cmdline_free -= alen;
        cmdline += alen;
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* libiberty buildargv rules, as the guest applies them. Returns a NULL-terminated array. */
static char **tokenize(const char *input, int *count)
{
    size_t cap = 8, n = 0;
    char **words = malloc(cap * sizeof *words);
    char *buf = malloc(strlen(input) + 1);
    int squote = 0, dquote = 0, bsquote = 0;
    if (!words || !buf)
        die("out of memory");
    do {
        while (is_space(*input))
            input++;
        char *arg = buf;
        while (*input) {
            if (is_space(*input) && !squote && !dquote && !bsquote)
                break;
            if (bsquote) {
                bsquote = 0;
                *arg++ = *input;
            } else if (*input == '\\') {
                bsquote = 1;
            } else if (squote) {
                if (*input == '\'')
                    squote = 0;
                else
                    *arg++ = *input;
            } else if (dquote) {
                if (*input == '"')
                    dquote = 0;
                else
                    *arg++ = *input;
            } else if (*input == '\'') {
                squote = 1;
            } else if (*input == '"') {
                dquote = 1;
            } else {
                *arg++ = *input;
            }
            input++;
        }
        *arg = 0;
        if (n + 2 > cap) {
            cap *= 2;
            words = realloc(words, cap * sizeof *words);
            if (!words)
                die("out of memory");
        }
        words[n++] = strdup(buf);
        words[n] = NULL;
        while (is_space(*input))
            input++;
    } while (*input);
    free(buf);
    *count = (int)n;
    return words;
}

/* A small strict JSON checker: the config must be one JSON object. */
static const char *js;
static int json_value(int depth);
static void json_ws(void)
{
    while (*js == ' ' || *js == '\t' || *js == '\n' || *js == '\r')
        js++;
}
static int json_string(void)
{
    if (*js++ != '"')
        return 0;
    while (*js && *js != '"') {
        if ((unsigned char)*js < 0x20)
            return 0;
        if (*js == '\\') {
            js++;
            if (*js == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", js[i]) || !js[i])
                        return 0;
                js += 4;
            } else if (!*js || !strchr("\"\\/bfnrt", *js)) {
                return 0;
            }
        }
        js++;
    }
    return *js++ == '"';
}
static int json_value(int depth)
{
    if (depth > 64)
        return 0;
    json_ws();
    if (*js == '{' || *js == '[') {
        char close = *js == '{' ? '}' : ']';
        int object = *js == '{';
        js++;
        json_ws();
        if (*js == close) {
            js++;
            return 1;
        }
        for (;;) {
            if (object) {
                json_ws();
                if (!json_string())
                    return 0;
                json_ws();
                if (*js++ != ':')
                    return 0;
            }
            if (!json_value(depth + 1))
                return 0;
            json_ws();
            if (*js == ',') {
                js++;
                continue;
            }
            return *js++ == close;
        }
    }
    if (*js == '"')
        return json_string();
    if (!strncmp(js, "true", 4) || !strncmp(js, "null", 4)) {
        js += 4;
        return 1;
    }
    if (!strncmp(js, "false", 5)) {
        js += 5;
        return 1;
    }
    char *end;
    strtod(js, &end);
    if (end == js || *js == '+' || *js == '.')
        return 0;
    js = end;
    return 1;
}
static int json_object_ok(const char *s)
{
    js = s;
    json_ws();
    if (*js != '{')
        return 0;
    if (!json_value(0))
        return 0;
    json_ws();
    return *js == 0;
}

static char *concat(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 1);
    if (!s)
        die("out of memory");
    strcpy(s, a);
    strcat(s, b);
    return s;
}

int main(int argc, char **argv)
{
    long mem = 512;
    int exec_heap = 0;

    argc--;
    argv++;
    /* First pass, as the tender: find the kernel (first word not starting with '-', or after "--"). */
    char **a = argv;
    while (*a && (*a)[0] == '-') {
        if (strcmp(*a, "--") == 0) {
            a++;
            break;
        }
        if (strcmp(*a, "--help") == 0 || strcmp(*a, "--version") == 0) {
            fprintf(stderr, "%s: spt fixture tender (tests only)\n", prog);
            return strcmp(*a, "--help") == 0;
        }
        a++;
    }
    if (!*a)
        die("Missing KERNEL operand");
    const char *kernel = *a;
    if (access(kernel, R_OK) != 0)
        die("%s: Could not open: %s", kernel, strerror(errno));
    load_manifest(kernel);

    /* Second pass: the options. */
    while (*argv && (*argv)[0] == '-') {
        const char *o = *argv;
        if (strcmp(o, "--") == 0) {
            argc--;
            argv++;
            break;
        }
        if (strncmp(o, "--mem=", 6) == 0) {
            char *end;
            mem = strtol(o + 6, &end, 10);
            if (*end || mem <= 0)
                die("Malformed argument to --mem");
        } else if (strcmp(o, "--x-exec-heap") == 0) {
            exec_heap = 1;
        } else if (strncmp(o, "--net-mac:", 10) == 0) {
            /* accepted, not checked */
        } else if (!handle_device(o, "--block:", "block") && !handle_device(o, "--net:", "net")) {
            die("Invalid option: `%s'", o);
        }
        argc--;
        argv++;
    }
    if (*argv != kernel)
        die("internal error: option scan did not stop at the kernel");
    argc--;
    argv++;

    int missing = 0;
    for (int i = 0; i < ndevices; i++) {
        if (devices[i].declared && !devices[i].value) {
            fprintf(stderr, "%s: Device '%s' of type %s declared but not attached.\n", prog, devices[i].name,
                    strcmp(devices[i].kind, "block") == 0 ? "BLOCK_BASIC" : "NET_BASIC");
            missing = 1;
        }
    }
    if (missing)
        die("All declared devices must be attached. See --help for syntax.");

    static char cmdline[SPT_CMDLINE_SIZE];
    setup_cmdline(cmdline, argc, argv);

    /* The guest: tokenize, then split envp / --config / argv like frankenlibc's build_params(). */
    int ntok;
    char **tok = tokenize(cmdline, &ntok);
    char **envp = calloc((size_t)ntok + 8 + (size_t)ndevices, sizeof *envp);
    char **gargv = calloc((size_t)ntok + 2, sizeof *gargv);
    if (!envp || !gargv)
        die("out of memory");
    int envc = 0, gargc = 0, i = 0;
    const char *config = NULL;
    do {
        int isconf = 0;
        if (strncmp(tok[i], "-c", 2) == 0 || strncmp(tok[i], "--config", 8) == 0) {
            i++;
            if (tok[i] == NULL)
                break;
            isconf = 1;
            config = tok[i];
        }
        if (strncmp(tok[i], "--", 2) == 0) {
            i++;
            break;
        }
        if (!isconf)
            envp[envc++] = tok[i];
        i++;
    } while (tok[i] != NULL);
    gargv[gargc++] = "solo5";
    for (; i < ntok; i++)
        gargv[gargc++] = tok[i];
    gargv[gargc] = NULL;

    if (config) {
        if (config[0] == 0)
            die("--config is empty");
        if (!json_object_ok(config))
            die("--config is not a JSON object: %s", config);
        envp[envc++] = concat("NABLA_FIXTURE_CONFIG=", config);
    }
    char num[32];
    snprintf(num, sizeof num, "%ld", mem);
    envp[envc++] = concat("NABLA_FIXTURE_MEM=", num);
    envp[envc++] = concat("NABLA_FIXTURE_EXEC_HEAP=", exec_heap ? "1" : "0");
    envp[envc++] = concat("NABLA_FIXTURE_CMDLINE=", cmdline);
    for (int d = 0; d < ndevices; d++) {
        if (!devices[d].value)
            continue;
        char key[128];
        snprintf(key, sizeof key, "NABLA_FIXTURE_%s_%s=", strcmp(devices[d].kind, "block") == 0 ? "BLOCK" : "NET",
                 devices[d].name);
        envp[envc++] = concat(key, devices[d].value);
    }
    envp[envc] = NULL;

    fflush(NULL);
    execve(kernel, gargv, envp);
    die("%s: execve failed: %s", kernel, strerror(errno));
}
