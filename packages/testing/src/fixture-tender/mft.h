/*
 * The Solo5 manifest as the fixture solo5-elftool embeds it and the fixture tender and elftool read it back:
 * ELF section .note.solo5.manifest holding "SOLO5-MFT1", then one "TYPE NAME" line per device. Shared by
 * spt-fixture.c (also the fixture Solo5's tenders/spt/spt_main.c, where this file is tenders/spt/mft.h) and
 * the fixture Solo5's elftool/elftool.c. Written for nabla-build's tests; nothing here is taken from Solo5.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MFT_NAME_MAX 67
#define MFT_MAX_ENTRIES 64
#define MFT_SECTION ".note.solo5.manifest"
#define MFT_MAGIC "SOLO5-MFT1"
/* mft_read: the file has no manifest section; the manifest is malformed. */
#define MFT_NONE (-1)
#define MFT_INVALID (-2)

struct mft_entry {
    char name[MFT_NAME_MAX + 1];
    char type[32];
};

/*
 * The contents of section `want` of the ELF64 file `path` (NUL-terminated, malloc'd), or NULL when the file is
 * not ELF64 or has no such section.
 */
static char *elf_section(const char *path, const char *want)
{
    char *out = NULL, *names = NULL;
    Elf64_Shdr *sh = NULL;
    Elf64_Ehdr eh;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
        eh.e_shstrndx >= eh.e_shnum)
        goto done;
    sh = calloc(eh.e_shnum, sizeof *sh);
    if (!sh || pread(fd, sh, eh.e_shnum * sizeof *sh, (off_t)eh.e_shoff) != (ssize_t)(eh.e_shnum * sizeof *sh))
        goto done;
    Elf64_Shdr *strs = &sh[eh.e_shstrndx];
    names = calloc(1, strs->sh_size + 1);
    if (!names || pread(fd, names, strs->sh_size, (off_t)strs->sh_offset) != (ssize_t)strs->sh_size)
        goto done;
    for (int i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_name >= strs->sh_size || strcmp(names + sh[i].sh_name, want) != 0 || sh[i].sh_type == SHT_NOBITS)
            continue;
        out = calloc(1, sh[i].sh_size + 1);
        if (out && pread(fd, out, sh[i].sh_size, (off_t)sh[i].sh_offset) != (ssize_t)sh[i].sh_size) {
            free(out);
            out = NULL;
        }
        break;
    }
done:
    free(names);
    free(sh);
    close(fd);
    return out;
}

/*
 * Reads the manifest embedded in `path` into e[0..MFT_MAX_ENTRIES) (further lines are ignored): the number of
 * devices, MFT_NONE when there is no manifest section, MFT_INVALID when the magic line is missing or a line is
 * not "TYPE NAME".
 */
static int mft_read(const char *path, struct mft_entry *e)
{
    char *text = elf_section(path, MFT_SECTION);
    if (!text)
        return MFT_NONE;
    int entries = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, MFT_MAGIC) != 0)
        entries = MFT_INVALID;
    while (entries >= 0 && entries < MFT_MAX_ENTRIES && (line = strtok_r(NULL, "\n", &save))) {
        int end = 0; /* a name longer than MFT_NAME_MAX is invalid, not cut short */
        if (sscanf(line, "%31s %67s%n", e[entries].type, e[entries].name, &end) != 2 || (line[end] && line[end] != ' '))
            entries = MFT_INVALID;
        else
            entries++;
    }
    free(text);
    return entries;
}
