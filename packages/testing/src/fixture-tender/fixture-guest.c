/*
 * fixture-guest: the "unikernel" the fixture tender execs in tests (built with gcc -static). It prints a
 * greeting and then one line
 *     NABLA-GUEST {"argv":[...],"envp":[...]}
 * (JSON, every string escaped), so tests can check exactly what arrived. Behaviour by argv[1]:
 *     exit N          exit with status N after printing
 *     sleep N         sleep N seconds after printing, then exit 0
 *     serve PORT      answer TCP on 0.0.0.0:PORT: "+PONG" to RESP PING, an HTTP/1.0 200 to anything else
 * With -DSOLO5_ABI=N the binary carries a Solo5 ABI1 note for the spt target with version N.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef SOLO5_ABI
struct abi1_note {
    uint32_t n_namesz, n_descsz, n_type;
    char n_name[8];
    uint32_t abi_target, abi_version, reserved0, reserved1;
};
__attribute__((section(".note.solo5.abi"), aligned(4), used)) static const struct abi1_note solo5_abi_note = {
    6, 16, 0x31494241, "Solo5", 2, SOLO5_ABI, 0, 0,
};
#endif

static void put_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void put_json_array(char **v)
{
    putchar('[');
    for (int i = 0; v[i]; i++) {
        if (i)
            putchar(',');
        put_json_string(v[i]);
    }
    putchar(']');
}

static void serve(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 8) < 0) {
        perror("fixture-guest: serve");
        exit(3);
    }
    printf("listening on port %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        char buf[512];
        ssize_t n = read(c, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            const char *reply = strstr(buf, "PING") ? "+PONG\r\n"
                                                    : "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
            (void)!write(c, reply, strlen(reply));
        }
        close(c);
    }
}

int main(int argc, char **argv, char **envp)
{
    printf("hello from the fixture guest\n");
    printf("NABLA-GUEST {\"argv\":");
    put_json_array(argv);
    printf(",\"envp\":");
    put_json_array(envp);
    printf("}\n");
    fprintf(stderr, "fixture guest: %d args\n", argc);
    fflush(NULL);
    if (argc > 2 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    if (argc > 2 && strcmp(argv[1], "sleep") == 0) {
        sleep((unsigned)atoi(argv[2]));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "serve") == 0)
        serve(atoi(argv[2]));
    return 0;
}
