/*
 * vmi-forensics guest workload (runs inside the sample VM, statically linked).
 *
 * Builds a stable, known process tree, waits until every member is fully set
 * up, then prints the guest's own view of /proc ("ground truth") on the
 * console between markers, announces READY, waits for the host to take its
 * memory snapshot (the host answers "GO" on the console), collects the same
 * view a second time and prints it, so the host can check nothing changed
 * across the snapshot.
 *
 * Tree (names set with prctl(PR_SET_NAME) / pthread_setname_np, <= 15 chars):
 *
 *   vmi-wl-root            uid 0                  collector (the only process that does work)
 *   +- vmi-wl-a            uid 0
 *   |  +- vmi-wl-a1        uid/gid 1000/1000      3 extra threads vmi-wl-a1-t1..t3
 *   |  +- vmi-wl-a2        uid 1001, gid 1002
 *   +- vmi-wl-b            uid/gid 1000/1000      4 extra threads vmi-wl-b-w1..w4
 *   |  +- vmi-wl-b1        uid/gid 1000/1000
 *   |     +- vmi-wl-b1x    uid/gid 1000/1000      (depth 4)
 *   +- vmi-wl-c            ruid 1001 euid 1002, rgid 1002 egid 1001 (real != effective)
 *      +- "vmi-wl (c1) x"  uid 0; comm with spaces and parentheses
 *
 * Every process (and thread) except the collector just blocks in pause().
 *
 * Console protocol (each line ends in '\n'; the tty adds '\r'):
 *   @@VMI-BEGIN <n>
 *   P <tab> pid ppid threads uid gid euid egid start_ticks comm   (tab separated)
 *   T <tab> tid tgid comm
 *   K <tab> KEY <tab> value                                       (system facts: /proc/version,
 *                                                                  cmdline, iomem, kcore, boot time, kallsyms)
 *   @@VMI-END <n> lines=<payload lines> crc32=<hex of payload bytes>
 *   @@VMI-READY          (after collection 1; host stops the VM, dumps, continues)
 * Collection 1 is printed only after the view has been stable for a few seconds.
 * The host writes "GO\n" to the console, then collection 2 is printed and
 *   @@VMI-KALLSYMS bytes=<n> crc32=<hex>   (after collection 2, see dump_kallsyms)
 *   @@VMI-DONE
 *
 * LiME mode (argv[3] = path of lime.ko, see samples/README.md): after the kallsyms dump the
 * collector forks `/sbin/insmod <lime.ko> path=tcp:4444 format=lime timeout=0`, waits for the exec
 * and prints
 *   @@VMI-LIME-START pid=<insmod pid>
 * The host reads the dump over TCP, stops the VM, saves memory.raw, continues and writes "GO";
 * the collector reaps insmod and prints collection 3 (K facts LIME_INSMOD_*: the insmod process
 * that existed while lime.ko dumped), then @@VMI-DONE. The host checks collection 3 equals 1.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ready_pipe[2];

static void die(const char *what) {
    dprintf(2, "vmi-workload: %s: %s\n", what, strerror(errno));
    _exit(1);
}

static void set_name(const char *name) {
    if (prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) != 0) die("prctl");
}

static void set_ids(gid_t rg, gid_t eg, uid_t ru, uid_t eu) {
    /* groups first, while still privileged */
    gid_t g = rg;
    if (setgroups(1, &g) != 0) die("setgroups");
    if (setresgid(rg, eg, eg) != 0) die("setresgid");
    if (setresuid(ru, eu, eu) != 0) die("setresuid");
}

static void signal_ready(void) {
    char c = 'r';
    if (write(ready_pipe[1], &c, 1) != 1) die("ready write");
}

static void *thread_main(void *arg) {
    pthread_setname_np(pthread_self(), (const char *)arg);
    for (;;) pause();
    return NULL;
}

static void start_threads(const char *const *names, int n) {
    pthread_t t;
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t, NULL, thread_main, (void *)names[i]);
        if (e) { errno = e; die("pthread_create"); }
    }
}

static void block_forever(void) {
    signal_ready();
    close(ready_pipe[1]);
    for (;;) pause();
}

/* fork a child that runs fn; returns in the parent */
static void spawn(void (*fn)(void)) {
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) { fn(); _exit(0); }
}

static const char *const a1_threads[] = {"vmi-wl-a1-t1", "vmi-wl-a1-t2", "vmi-wl-a1-t3"};
static const char *const b_threads[] = {"vmi-wl-b-w1", "vmi-wl-b-w2", "vmi-wl-b-w3", "vmi-wl-b-w4"};

static void proc_a1(void) {
    set_name("vmi-wl-a1");
    set_ids(1000, 1000, 1000, 1000);
    start_threads(a1_threads, 3);
    block_forever();
}
static void proc_a2(void) {
    set_name("vmi-wl-a2");
    set_ids(1002, 1002, 1001, 1001);
    block_forever();
}
static void proc_a(void) {
    set_name("vmi-wl-a");
    spawn(proc_a1);
    spawn(proc_a2);
    block_forever();
}
static void proc_b1x(void) {
    set_name("vmi-wl-b1x");
    block_forever();
}
static void proc_b1(void) {
    set_name("vmi-wl-b1");
    spawn(proc_b1x);
    block_forever();
}
static void proc_b(void) {
    set_name("vmi-wl-b");
    set_ids(1000, 1000, 1000, 1000);
    spawn(proc_b1);           /* fork before the threads: only the caller is copied anyway */
    start_threads(b_threads, 4);
    block_forever();
}
static void proc_c1(void) {
    set_name("vmi-wl (c1) x");
    block_forever();
}
static void proc_c(void) {
    set_name("vmi-wl-c");
    spawn(proc_c1);           /* c1 stays uid 0 */
    set_ids(1002, 1001, 1001, 1002);
    block_forever();
}
#define TREE_PROCS 8 /* processes below the root that signal readiness */

/* ---------------------------------------------------------------- output */

static char out[1 << 20];
static size_t out_len;

static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + out_len, sizeof out - out_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof out - out_len) { errno = ENOSPC; die("output buffer"); }
    out_len += (size_t)n;
}

static uint32_t crc32_buf(const char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= (unsigned char)p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        p += w; n -= (size_t)w;
    }
}

static void say(const char *s) { write_all(1, s, strlen(s)); }

/* ---------------------------------------------------------------- /proc */

static ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0) { if (errno == EINTR) continue; close(fd); return -1; }
        if (r == 0) break;
        len += (size_t)r;
        if (len == cap - 1) break;
    }
    close(fd);
    buf[len] = 0;
    return (ssize_t)len;
}

/* splits /proc/<id>/stat: comm is between the first '(' and the LAST ')' */
static int parse_stat(const char *buf, char *comm, size_t comm_cap, char **rest) {
    const char *l = strchr(buf, '(');
    const char *r = strrchr(buf, ')');
    if (!l || !r || r < l) return -1;
    size_t n = (size_t)(r - l - 1);
    if (n >= comm_cap) n = comm_cap - 1;
    memcpy(comm, l + 1, n);
    comm[n] = 0;
    *rest = (char *)r + 1; /* " S ppid ..." : field 3 onwards */
    return 0;
}

/*
 * /proc shows a workqueue worker as "kworker/1:1-events" (or "+events" while it
 * runs a work item): procfs appends the description of the worker's latest work
 * (wq_worker_comm), which changes from moment to moment. Strip that suffix and
 * keep the worker's id exactly as /proc shows it: "kworker/<cpu>:<id>[H]" or
 * "kworker/u<pool>:<id>". Rescuers ("kworker/R-<workqueue>" since 6.9, shown
 * untruncated since 6.10) and "kworker/dying" keep their whole name.
 */
#define PF_WQ_WORKER_FLAG 0x00000020u
static void kernel_comm(char *comm, unsigned flags) {
    if (!(flags & PF_WQ_WORKER_FLAG) || strncmp(comm, "kworker/", 8) != 0) return;
    char *p = comm + 8;
    if (*p == 'u') p++;
    if (!isdigit((unsigned char)*p)) return;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != ':' || !isdigit((unsigned char)*p)) return;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == 'H') p++;
    if (*p == '-' || *p == '+') *p = 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int numeric_entries(const char *dir, int *ids, int cap) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        if (n < cap) ids[n++] = atoi(e->d_name);
    }
    closedir(d);
    qsort(ids, (size_t)n, sizeof *ids, cmp_int);
    return n;
}

static void status_ids(const char *status, const char *key, long *real, long *eff) {
    const char *p = strstr(status, key);
    *real = *eff = -1;
    if (p) sscanf(p + strlen(key), "%ld %ld", real, eff);
}

static int online_cpus = 1; /* CPUs in the initial affinity mask (= online CPUs) */

static char fbuf[1 << 16];
static char kbuf[1 << 16];

static void kallsyms_facts(void) {
    /* a few symbol addresses: the KASLR ground truth */
    static const char *const want[] = {"_text", "init_task", "init_top_pgt", "page_offset_base",
                                       "vmemmap_base", "vmalloc_base", "pgdir_shift", "ptrs_per_p4d",
                                       "phys_base", "linux_banner"};
    enum { NW = sizeof want / sizeof want[0] };
    int found[NW] = {0};
    FILE *f = fopen("/proc/kallsyms", "re");
    if (!f) return;
    char line[512], addr[64], type[8], name[256];
    int left = NW;
    while (left && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3) continue;
        if (strchr(line, '[')) continue; /* module symbols */
        for (int i = 0; i < NW; i++)
            if (!found[i] && strcmp(name, want[i]) == 0) {
                found[i] = 1; left--;
                emit("K\tKALLSYMS_%s\t0x%s\n", want[i], addr);
            }
    }
    fclose(f);
}

/*
 * Physical memory map as the kernel sees it (/proc/iomem, root sees real addresses): the
 * top-level "System RAM" ranges (exactly what lime.ko dumps) and the "Kernel code" range,
 * each as start-end (inclusive, hex), space separated.
 */
static void iomem_facts(void) {
    static char ram[4096], code[256];
    size_t ram_len = 0, code_len = 0;
    ram[0] = code[0] = 0;
    FILE *f = fopen("/proc/iomem", "re");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long s, e;
        int name_at = 0;
        if (sscanf(line, " %llx-%llx : %n", &s, &e, &name_at) != 2 || !name_at) continue;
        char *name = line + name_at;
        name[strcspn(name, "\n")] = 0;
        char *dst = NULL;
        size_t cap = 0, *len = NULL;
        if (line[0] != ' ' && strcmp(name, "System RAM") == 0) dst = ram, cap = sizeof ram, len = &ram_len;
        else if (strcmp(name, "Kernel code") == 0) dst = code, cap = sizeof code, len = &code_len;
        if (!dst || *len >= cap) continue;
        int n = snprintf(dst + *len, cap - *len, "%s0x%llx-0x%llx", *len ? " " : "", s, e);
        if (n > 0) *len += (size_t)n;
    }
    fclose(f);
    emit("K\tIOMEM_SYSTEM_RAM\t%s\n", ram);
    emit("K\tIOMEM_KERNEL_CODE\t%s\n", code);
}

/*
 * The kernel image's and the direct map's placement as the kernel itself states them in the
 * program headers of /proc/kcore (fs/proc/kcore.c): the KCORE_TEXT segment has p_vaddr = _text
 * and p_paddr = __pa_symbol(_text); every KCORE_RAM segment has p_vaddr = __va(p_paddr), so
 * p_vaddr - p_paddr is the direct map's base (page_offset_base); the other segments (vmalloc,
 * modules, vmemmap, vsyscall) have p_paddr = -1. Read once, at start: the first open of
 * /proc/kcore builds the kernel's list of RAM segments, which should happen before the process
 * view is checked for stability, not between the collections. Kept as K lines for every collection.
 */
#define START_KERNEL_MAP 0xffffffff80000000ull /* __START_KERNEL_map: the kernel image's mapping */
static char kcore_lines[512];

static void read_kcore_facts(void) {
    static Elf64_Phdr ph[256];
    Elf64_Ehdr eh;
    unsigned long long text_v = 0, text_p = 0, base = 0;
    int texts = 0, rams = 0, mismatched = 0;
    kcore_lines[0] = 0;
    int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
        (size_t)eh.e_phnum > sizeof ph / sizeof ph[0]) {
        close(fd);
        return;
    }
    size_t len = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
    ssize_t got = pread(fd, ph, len, (off_t)eh.e_phoff);
    close(fd);
    if (got != (ssize_t)len) return;
    for (int i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_paddr == (Elf64_Addr)-1) continue;
        if (ph[i].p_vaddr >= START_KERNEL_MAP) { /* KCORE_TEXT */
            text_v = ph[i].p_vaddr;
            text_p = ph[i].p_paddr;
            texts++;
        } else { /* KCORE_RAM */
            unsigned long long b = ph[i].p_vaddr - ph[i].p_paddr;
            if (rams++ == 0) base = b;
            else if (b != base) mismatched = 1;
        }
    }
    int n = 0;
    if (texts == 1)
        n = snprintf(kcore_lines, sizeof kcore_lines, "K\tKCORE_TEXT_VADDR\t0x%llx\nK\tKCORE_TEXT_PADDR\t0x%llx\n",
                     text_v, text_p);
    if (n >= 0 && (size_t)n < sizeof kcore_lines && rams > 0 && !mismatched)
        snprintf(kcore_lines + n, sizeof kcore_lines - (size_t)n, "K\tKCORE_DIRECT_MAP_BASE\t0x%llx\n", base);
}

static long long ts_ns(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }

/*
 * When the guest booted, on its wall clock, as the kernel keeps it: timekeeper offs_real -
 * offs_boot (what getboottime64() returns), i.e. CLOCK_REALTIME - CLOCK_BOOTTIME at any moment.
 * CLOCK_REALTIME is read between two CLOCK_BOOTTIME reads b1 <= b2, so the exact value lies in
 * [r - b2, r - b1]; the narrowest of 64 such intervals is printed as its middle BOOT_WALL_NS and
 * its half-width BOOT_WALL_NS_ERROR (nanoseconds): the exact value is BOOT_WALL_NS +- ERROR.
 * PROC_STAT_BTIME is /proc/stat's btime, the same boot time in whole seconds. A task's creation
 * time is this boot time plus its start_boottime (start_ticks * 10 ms, truncated to the tick).
 */
static void boot_time_facts(void) {
    long long best_lo = 0, best_hi = -1;
    for (int i = 0; i < 64; i++) {
        struct timespec b1, r, b2;
        if (clock_gettime(CLOCK_BOOTTIME, &b1) != 0 || clock_gettime(CLOCK_REALTIME, &r) != 0 ||
            clock_gettime(CLOCK_BOOTTIME, &b2) != 0)
            return;
        long long lo = ts_ns(&r) - ts_ns(&b2), hi = ts_ns(&r) - ts_ns(&b1);
        if (best_hi < best_lo || hi - lo < best_hi - best_lo) {
            best_lo = lo;
            best_hi = hi;
        }
    }
    long long width = best_hi - best_lo;
    emit("K\tBOOT_WALL_NS\t%lld\n", best_lo + width / 2);
    emit("K\tBOOT_WALL_NS_ERROR\t%lld\n", (width + 1) / 2);
    if (read_file("/proc/stat", fbuf, sizeof fbuf) >= 0) {
        char *p = strstr(fbuf, "\nbtime ");
        if (p) emit("K\tPROC_STAT_BTIME\t%llu\n", strtoull(p + 7, NULL, 10));
    }
}

/* the P and T lines of one /proc walk into out[] (replacing its content) */
static void collect_procs(void) {
    static int pids[65536], tids[65536];
    out_len = 0;
    char path[256], comm[64];

    int np = numeric_entries("/proc", pids, 65536);
    if (np < 0) die("opendir /proc");
    for (int i = 0; i < np; i++) {
        int pid = pids[i];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (read_file(path, fbuf, sizeof fbuf) < 0) continue; /* vanished */
        char *rest;
        if (parse_stat(fbuf, comm, sizeof comm, &rest) != 0) continue;
        /* rest: " state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
         *        utime stime cutime cstime priority nice num_threads itrealvalue starttime" */
        char state;
        long ppid, nthreads;
        unsigned flags;
        unsigned long long start;
        if (sscanf(rest, " %c %ld %*d %*d %*d %*d %u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld %*d %llu",
                   &state, &ppid, &flags, &nthreads, &start) != 5)
            continue;
        kernel_comm(comm, flags);
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        if (read_file(path, kbuf, sizeof kbuf) < 0) continue;
        long uid, euid, gid, egid;
        status_ids(kbuf, "\nUid:", &uid, &euid);
        status_ids(kbuf, "\nGid:", &gid, &egid);
        emit("P\t%d\t%ld\t%ld\t%ld\t%ld\t%ld\t%ld\t%llu\t%s\n", pid, ppid, nthreads, uid, gid, euid, egid,
             start, comm);

        snprintf(path, sizeof path, "/proc/%d/task", pid);
        int nt = numeric_entries(path, tids, 65536);
        for (int j = 0; j < nt; j++) {
            snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tids[j]);
            if (read_file(path, fbuf, sizeof fbuf) < 0) continue;
            char tcomm[64];
            if (parse_stat(fbuf, tcomm, sizeof tcomm, &rest) != 0) continue;
            unsigned tflags = 0;
            sscanf(rest, " %*c %*d %*d %*d %*d %*d %u", &tflags);
            kernel_comm(tcomm, tflags);
            emit("T\t%d\t%d\t%s\n", tids[j], pid, tcomm);
        }
    }
}

/* appends the K facts to out[] and prints everything as section n */
static void finish_and_print(int n) {

    if (read_file("/proc/version", fbuf, sizeof fbuf) >= 0) {
        fbuf[strcspn(fbuf, "\n")] = 0;
        emit("K\tPROC_VERSION\t%s\n", fbuf);
    }
    struct utsname u;
    if (uname(&u) == 0) emit("K\tUNAME_R\t%s\n", u.release);
    if (read_file("/proc/sys/kernel/randomize_va_space", fbuf, sizeof fbuf) >= 0)
        emit("K\tRANDOMIZE_VA_SPACE\t%ld\n", strtol(fbuf, NULL, 10));
    emit("K\tCLK_TCK\t%ld\n", sysconf(_SC_CLK_TCK));
    emit("K\tPAGE_SIZE\t%ld\n", sysconf(_SC_PAGESIZE));
    emit("K\tNPROC_ONLN\t%d\n", online_cpus); /* not sysconf(): that reads sysfs */
    if (read_file("/proc/cpuinfo", fbuf, sizeof fbuf) >= 0) {
        int la57 = 0;
        char *flags = strstr(fbuf, "\nflags");
        if (flags) {
            char *eol = strchr(flags + 1, '\n');
            if (eol) *eol = 0;
            la57 = strstr(flags, " la57") != NULL;
        }
        emit("K\tCPU_LA57\t%d\n", la57);
    }
    if (read_file("/proc/cmdline", fbuf, sizeof fbuf) >= 0) {
        fbuf[strcspn(fbuf, "\n")] = 0;
        emit("K\tCMDLINE\t%s\n", fbuf);
    }
    if (read_file("/proc/meminfo", fbuf, sizeof fbuf) >= 0) {
        long kb = -1;
        char *p = strstr(fbuf, "MemTotal:");
        if (p) sscanf(p + 9, "%ld", &kb);
        emit("K\tMEMTOTAL_KB\t%ld\n", kb);
    }
    emit("K\tCOLLECTOR_PID\t%d\n", (int)getpid());
    boot_time_facts();
    emit("%s", kcore_lines);
    iomem_facts();
    kallsyms_facts();

    size_t lines = 0;
    for (size_t i = 0; i < out_len; i++) lines += out[i] == '\n';
    char head[64], tail[128];
    snprintf(head, sizeof head, "\n@@VMI-BEGIN %d\n", n);
    snprintf(tail, sizeof tail, "@@VMI-END %d lines=%zu crc32=%08x\n", n, lines, crc32_buf(out, out_len));
    say(head);
    write_all(1, out, out_len);
    say(tail);
}

/*
 * After collection 2 (the snapshot is already taken), the whole /proc/kallsyms
 * of this boot is streamed to QEMU's isa-debugcon (I/O port 0xe9, binary-safe
 * and much faster than the serial console); the console gets its size/crc32.
 */
#define DEBUGCON_PORT 0xe9
static void dump_kallsyms(void) {
    static char data[32 << 20];
    size_t len = 0;
    int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { say("@@VMI-KALLSYMS error=open\n"); return; }
    for (;;) {
        ssize_t r = read(fd, data + len, sizeof data - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof data) break;
    }
    close(fd);
    if (ioperm(DEBUGCON_PORT, 1, 1) != 0) { say("@@VMI-KALLSYMS error=ioperm\n"); return; }
    for (size_t i = 0; i < len; i += 4096) {
        size_t n = len - i < 4096 ? len - i : 4096;
        outsb(DEBUGCON_PORT, data + i, (unsigned long)n);
    }
    char line[128];
    snprintf(line, sizeof line, "@@VMI-KALLSYMS bytes=%zu crc32=%08x\n", len, crc32_buf(data, len));
    say(line);
}

/* cpu < 0: all CPUs */
static void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (cpu < 0 ? c < 64 : c == cpu) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* waits (up to timeout_s) for a line starting with "GO" on stdin */
static void wait_for_go(int timeout_s) {
    char line[256];
    size_t len = 0;
    for (int waited = 0; waited < timeout_s * 10;) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r < 0) { if (errno == EINTR) continue; return; }
        if (r == 0) { waited++; continue; }
        ssize_t got = read(0, line + len, sizeof line - 1 - len);
        if (got <= 0) { sleep(1); waited += 10; continue; }
        len += (size_t)got;
        line[len] = 0;
        if (strstr(line, "GO")) return;
        if (len > 128) len = 0;
    }
}

/*
 * LiME mode: runs lime.ko from a child of the collector, so the guest has exactly one more process
 * (insmod, uid 0, child of the collector) while the dump runs. Its pid and start time are read
 * from /proc once it has exec'd; after the host's "GO" (dump received, memory.raw saved) it is
 * reaped and collection 3 is printed with those facts.
 */
static void run_lime(const char *ko) {
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        execl("/sbin/insmod", "insmod", ko, "path=tcp:4444", "format=lime", "timeout=0", (char *)NULL);
        _exit(127);
    }
    char path[64], comm[64], *rest;
    unsigned long long start = 0;
    long ppid = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    for (int i = 0; i < 200; i++) { /* until the child has exec'd insmod (comm changes) */
        if (read_file(path, fbuf, sizeof fbuf) > 0 && parse_stat(fbuf, comm, sizeof comm, &rest) == 0 &&
            strcmp(comm, "insmod") == 0 &&
            sscanf(rest, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &ppid, &start) == 2)
            break;
        comm[0] = 0;
        usleep(50000);
    }
    char line[128];
    snprintf(line, sizeof line, "@@VMI-LIME-START pid=%d comm=%s\n", (int)p, comm);
    say(line);
    wait_for_go(1800);
    int status = 0;
    while (waitpid(p, &status, 0) < 0 && errno == EINTR) {}
    collect_procs();
    emit("K\tLIME_INSMOD_PID\t%d\n", (int)p);
    emit("K\tLIME_INSMOD_PPID\t%ld\n", ppid);
    emit("K\tLIME_INSMOD_COMM\t%s\n", comm);
    emit("K\tLIME_INSMOD_START_TICKS\t%llu\n", start);
    emit("K\tLIME_INSMOD_STATUS\t%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    finish_and_print(3);
}

int main(int argc, char **argv) {
    /* argv[1]: seconds to wait after the tree is up; argv[2]: stable checks wanted;
     * argv[3] (optional): lime.ko, see run_lime() */
    int settle = argc > 1 ? atoi(argv[1]) : 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    set_name("vmi-wl-root");
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) > 0) online_cpus = CPU_COUNT(&all);
    read_kcore_facts();
    signal(SIGCHLD, SIG_DFL);
    if (pipe2(ready_pipe, O_CLOEXEC) != 0) die("pipe");

    spawn(proc_a);
    spawn(proc_b);
    spawn(proc_c);
    close(ready_pipe[1]);

    /* wait until all 8 descendants are named, re-credentialed and threaded */
    int ready = 0;
    char c;
    while (ready < TREE_PROCS) {
        ssize_t r = read(ready_pipe[0], &c, 1);
        if (r == 1) ready++;
        else if (r == 0) { errno = EPIPE; die("tree died before ready"); }
        else if (errno != EINTR) die("ready read");
    }
    close(ready_pipe[0]);
    say("@@VMI-TREE-UP\n");
    sleep((unsigned)settle); /* let boot-time kernel threads settle */

    /*
     * Wait until the system is quiet: the kernel creates some workers lazily
     * (e.g. a second highpri kworker a few seconds after boot). Collection 1 is
     * taken once the process/thread view has been identical for `stable`
     * consecutive one-second checks (at most 90 s); the walks rotate over the
     * CPUs so any per-CPU lazy work they cause happens now.
     *
     * Lesson learnt: the collector must not touch sysfs. Closing a kernfs file
     * does kfree_rcu(); when that CPU's kvfree_rcu page cache is empty the
     * kernel queues fill_page_cache_func on system_highpri_wq, and the first
     * such work on CPU N spawns a second worker "kworker/N:1H" -- a new
     * process between collection 1 and the snapshot. glibc's
     * sysconf(_SC_NPROCESSORS_ONLN) reads /sys/devices/system/cpu/online, so
     * the CPU count comes from sched_getaffinity() instead.
     */
    long ncpu = online_cpus;
    static char prev[sizeof out];
    size_t prev_len = 0;
    int same = 0, stable = argc > 2 ? atoi(argv[2]) : 4;
    for (int i = 0; i < 90 && same < stable; i++) {
        pin_to_cpu((int)(i % ncpu));
        collect_procs();
        if (i > 0 && out_len == prev_len && memcmp(out, prev, out_len) == 0) same++;
        else same = 0;
        memcpy(prev, out, out_len);
        prev_len = out_len;
        if (same < stable) sleep(1);
    }
    pin_to_cpu(-1);
    finish_and_print(1);
    say("@@VMI-READY\n");
    wait_for_go(900);
    sleep(2);
    collect_procs();
    finish_and_print(2);
    dump_kallsyms();
    if (argc > 3 && argv[3][0]) run_lime(argv[3]);
    say("@@VMI-DONE\n");
    for (;;) pause(); /* the host quits QEMU */
}
