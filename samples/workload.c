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
 * Open files (for lsof-like plugins; every process has fds 0-2 on /dev/console, inherited from
 * /init; the ready pipe is closed in every child). Each process opens its files before it
 * signals ready (and before its threads start, which share its fd table), so they are stable
 * when the truth is collected and when the snapshot is taken:
 *
 *   vmi-wl-root   (before spawning) mkdir /run, /run/vmi and mounts a tmpfs on /run/vmi
 *                 ("size=1m,mode=1777"); it keeps no fd of its own besides 0-2
 *   vmi-wl-b      /etc/passwd        O_RDONLY, 5 bytes read (pos 5)
 *                 /tmp/vmi-wl-b.log  O_WRONLY|O_CREAT|O_APPEND 0644, 100 bytes written
 *                 /run/vmi/state.db  O_RDWR|O_CREAT 0600, 4096 bytes written, lseek to 123
 *                 /run/vmi/deleted.bin  O_RDWR|O_CREAT 0600, 10 bytes written, then unlinked
 *                                    (readlink: "/run/vmi/deleted.bin (deleted)")
 *                 /dev/null          O_WRONLY
 *                 /run/vmi           O_RDONLY|O_DIRECTORY
 *   vmi-wl-a1     a pipe (both ends), eventfd(5, EFD_NONBLOCK), epoll_create1(0) watching the
 *                 eventfd and the pipe's read end (EPOLLIN), inotify_init1(IN_NONBLOCK) watching
 *                 /tmp (IN_CREATE|IN_DELETE), timerfd_create(CLOCK_MONOTONIC, 0) (disarmed)
 *   vmi-wl-a      (after spawning a1 and a2, which do not inherit them) a netlink socket
 *                 (NETLINK_ROUTE, bound with nl_pid 0: the kernel assigns the port id, no groups)
 *                 and an unbound packet socket (AF_PACKET, SOCK_DGRAM, protocol 0: it receives
 *                 nothing, so its counters stay put)
 *   vmi-wl-root   also bind-mounts /run/vmi on /mnt/vmi-bind (before spawning)
 *   vmi-wl-c      socketpair(AF_UNIX, SOCK_STREAM) (both ends), AF_UNIX stream listening on
 *                 /tmp/vmi-wl.sock, TCP listening on 127.0.0.1:7777, a TCP connection to it and
 *                 its accepted end (both ESTABLISHED), UDP bound to 0.0.0.0:5353, AF_UNIX datagram
 *                 bound to the abstract name "\0vmi-wl-abstract" (/proc/net/unix: @vmi-wl-abstract),
 *                 TCP6 listening on [::1]:7778 and UDP6 bound to [::]:5354 (left out, with a
 *                 warning on stderr, if the guest has no IPv6 loopback)
 *
 * Memory maps (for maps, malfind and elfs; every process also has its static executable, [heap],
 * [stack], [vvar] and [vdso], and each thread its own anonymous stack):
 *
 *   vmi-wl-b      /etc/passwd mapped read-only, private (offset 0, one page); /run/vmi/state.db
 *                 mapped read-write, shared (offset 4096 of an 8 KiB file, one page); 3 anonymous
 *                 read-write pages, written
 *   vmi-wl (c1) x an anonymous read-write-execute page holding code (nop sled, ret), named
 *                 "vmi-wl-rwx" with PR_SET_VMA_ANON_NAME where the kernel has it ([anon:vmi-wl-rwx])
 *
 * Capabilities and mounts: c1 (uid 0) drops CAP_SYS_MODULE from its bounding set, adds
 * CAP_NET_RAW to its inheritable set and raises it in its ambient set; it also unshares its mount
 * namespace (made private) and mounts a tmpfs "vmi-private" on /mnt/vmi-private there. Before the
 * tree starts the collector writes three known lines to /dev/kmsg (see log_known_lines).
 *
 * Any other failure to set them up kills the process (die()), so the tree never becomes ready
 * and the boot fails loudly.
 *
 * Console protocol (each line ends in '\n'; the tty adds '\r'):
 *   @@VMI-BEGIN <n>
 *   P <tab> pid ppid threads uid gid euid egid start_ticks comm   (tab separated)
 *   T <tab> tid tgid comm
 *   F <tab> pid fd link flags pos mnt_id ino dev mode size atime_ns mtime_ns ctime_ns
 *                                                                 (open files, see collect_fds)
 *   M <tab> line                                                  (/proc/modules, line by line)
 *   MP <tab> module param value                                   (module parameters, see
 *                                                                  read_module_params)
 *   N <tab> table <tab> line                                      (sockets: every line but the
 *                                                                  header of /proc/net/<table>,
 *                                                                  verbatim, see collect_net)
 *   V <tab> pid <tab> line                                        (/proc/PID/maps, line by line)
 *   C <tab> pid inh prm eff bnd amb                               (/proc/PID/status Cap* values)
 *   NS <tab> pid <tab> mnt namespace inode                        (/proc/PID/ns/mnt)
 *   MI <tab> mnt namespace inode <tab> line                       (/proc/PID/mountinfo of the first
 *                                                                  pid seen in each namespace)
 *   L <tab> line                                                  (/dev/kmsg records, one per line,
 *                                                                  as the kernel formats them;
 *                                                                  collection 1 only, see
 *                                                                  collect_kmsg)
 *   K <tab> KEY <tab> value                                       (system facts: /proc/version,
 *                                                                  cmdline, iomem, kcore, boot time, kallsyms,
 *                                                                  net namespace, cpuinfo flags)
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
 *
 * Rootkit mode (argv[4] = path of vmi_rootkit.ko, samples/rootkit/): once the tree is up the
 * collector runs `/sbin/insmod <vmi_rootkit.ko> hide_pid=<pid of vmi-wl-a2>` and requires it to
 * succeed, before the view must settle. The module unlinks vmi-wl-a2 from the task list (it stays
 * in the pid table, so /proc and the truth still show it), hides itself from the module list and
 * sysfs, and replaces sys_call_table[__NR_kill]; its printk lines are in the kernel log (truth
 * kmsg.txt). Collection 1 gains K facts ROOTKIT_HIDDEN_PID and ROOTKIT_HIDDEN_COMM.
 *
 * Park mode (argv[5] = "park", argv[6] = a module to load later, the VMExit sample): the tree
 * gains vmi-wl-d, whose threads each block in one known system call (see proc_d), its child
 * vmi-wl-d1 and vmi-wl-e (see proc_e); every collection gains
 *   S <tab> tid <tab> pid <tab> /proc/PID/task/TID/syscall           (every user thread but the
 *                                                                  collector's own)
 * After the kallsyms dump the collector makes known changes for a second snapshot (see
 * make_changes), waits until the view is stable again and prints collection 3 with K facts
 * DIFF_* naming them, then
 *   @@VMI-READY-B        (host stops the VM, saves memory-b.raw, continues, writes "GO")
 * and collection 4 (the host checks it equals 3), then @@VMI-DONE.
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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ready_pipe[2];
#define ROOTKIT_VICTIM "vmi-wl-a2" /* rootkit mode: the process vmi_rootkit.ko hides (run_rootkit) */
static pid_t rootkit_hidden_pid;
static int park_mode;     /* argv[5] == "park": proc_d and proc_e run, S lines are collected */
static int main_argc;     /* main's argc and argv: c1 rewrites its copy of the strings (see proc_c1) */
static char **main_argv;
extern char **environ;

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

/* fork a child that runs fn; returns in the parent. The child keeps only the ready pipe's write
 * end (closed once it is ready), so its open files are 0-2 and what it opens itself. */
static pid_t spawn(void (*fn)(void)) {
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        close(ready_pipe[0]);
        ready_pipe[0] = -1; /* the child's own children must not close a reused fd number */
        fn();
        _exit(0);
    }
    return p;
}

/* ---------------------------------------------------------------- open files (see the header) */

static void write_bytes(int fd, char c, size_t n, const char *what) {
    char buf[4096];
    if (n > sizeof buf) { errno = EINVAL; die(what); }
    memset(buf, c, n);
    if (write(fd, buf, n) != (ssize_t)n) die(what);
}

static int open_or_die(const char *path, int flags, mode_t mode) {
    int fd = open(path, flags, mode);
    if (fd < 0) die(path);
    return fd;
}

/* the collector, before spawning: a tmpfs every uid may create files in */
static void make_run_vmi(void) {
    if (mkdir("/run", 0755) != 0 && errno != EEXIST) die("mkdir /run");
    if (mkdir("/run/vmi", 0755) != 0) die("mkdir /run/vmi");
    if (mount("tmpfs", "/run/vmi", "tmpfs", 0, "size=1m,mode=1777") != 0) die("mount tmpfs /run/vmi");
    if (mkdir("/mnt", 0755) != 0 && errno != EEXIST) die("mkdir /mnt");
    if (mkdir("/mnt/vmi-bind", 0755) != 0) die("mkdir /mnt/vmi-bind");
    if (mkdir("/mnt/vmi-private", 0755) != 0) die("mkdir /mnt/vmi-private");
    if (mount("/run/vmi", "/mnt/vmi-bind", NULL, MS_BIND, NULL) != 0) die("bind mount /mnt/vmi-bind");
}

/* the collector, before spawning: known lines in the kernel log, with their own level (<prio> =
 * facility * 8 + level; the kernel forces facility 0, kern, to 1, user, for what user space
 * writes), one with a tab and non-ASCII bytes (/dev/kmsg readers see them escaped as \x09 and
 * \xc3\xa9). Each ends in a newline: a record without one stays open for a continuation, and
 * /dev/kmsg shows it only once another record follows. */
static void log_known_lines(void) {
    static const char *const lines[] = {"<5>vmi-wl: kernel log line one (user.notice)\n",
                                        "<12>vmi-wl: user.warning line with facility 1\n",
                                        "<14>vmi-wl: tab\there, caf\xc3\xa9 (user.info)\n"};
    int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open /dev/kmsg");
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (write(fd, lines[i], strlen(lines[i])) != (ssize_t)strlen(lines[i])) die("write /dev/kmsg");
    close(fd);
}

static void open_files_b(void) {
    char c5[5];
    int fd = open_or_die("/etc/passwd", O_RDONLY, 0);
    if (read(fd, c5, sizeof c5) != (ssize_t)sizeof c5) die("read /etc/passwd");
    fd = open_or_die("/tmp/vmi-wl-b.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
    write_bytes(fd, 'b', 100, "write /tmp/vmi-wl-b.log");
    fd = open_or_die("/run/vmi/state.db", O_RDWR | O_CREAT, 0600);
    write_bytes(fd, 's', 4096, "write /run/vmi/state.db");
    if (lseek(fd, 123, SEEK_SET) != 123) die("lseek /run/vmi/state.db");
    fd = open_or_die("/run/vmi/deleted.bin", O_RDWR | O_CREAT, 0600);
    write_bytes(fd, 'd', 10, "write /run/vmi/deleted.bin");
    if (unlink("/run/vmi/deleted.bin") != 0) die("unlink /run/vmi/deleted.bin");
    open_or_die("/dev/null", O_WRONLY, 0);
    open_or_die("/run/vmi", O_RDONLY | O_DIRECTORY, 0);
}

static void open_files_a1(void) {
    int p[2];
    if (pipe(p) != 0) die("pipe");
    int efd = eventfd(5, EFD_NONBLOCK);
    if (efd < 0) die("eventfd");
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = efd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) die("epoll_ctl eventfd");
    ev.data.fd = p[0];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0) die("epoll_ctl pipe");
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0) die("inotify_init1");
    if (inotify_add_watch(in, "/tmp", IN_CREATE | IN_DELETE) < 0) die("inotify_add_watch /tmp");
    if (timerfd_create(CLOCK_MONOTONIC, 0) < 0) die("timerfd_create");
}

static int socket_or_die(int domain, int type, const char *what) {
    int fd = socket(domain, type, 0);
    if (fd < 0) die(what);
    return fd;
}

static void open_files_c(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");

    int fd = socket_or_die(AF_UNIX, SOCK_STREAM, "socket AF_UNIX");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", "/tmp/vmi-wl.sock");
    if (bind(fd, (struct sockaddr *)&un, sizeof un) != 0) die("bind /tmp/vmi-wl.sock");
    if (listen(fd, 4) != 0) die("listen /tmp/vmi-wl.sock");

    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(7777)};
    in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lfd = socket_or_die(AF_INET, SOCK_STREAM, "socket AF_INET tcp");
    if (bind(lfd, (struct sockaddr *)&in4, sizeof in4) != 0) die("bind 127.0.0.1:7777");
    if (listen(lfd, 4) != 0) die("listen 127.0.0.1:7777");
    /* an ESTABLISHED pair: the loopback handshake completes inside connect(), then accept()
     * takes the server end off the queue (the listener's accept queue is empty again) */
    fd = socket_or_die(AF_INET, SOCK_STREAM, "socket AF_INET tcp client");
    if (connect(fd, (struct sockaddr *)&in4, sizeof in4) != 0) die("connect 127.0.0.1:7777");
    if (accept(lfd, NULL, NULL) < 0) die("accept 127.0.0.1:7777");

    in4.sin_port = htons(5353);
    in4.sin_addr.s_addr = htonl(INADDR_ANY);
    fd = socket_or_die(AF_INET, SOCK_DGRAM, "socket AF_INET udp");
    if (bind(fd, (struct sockaddr *)&in4, sizeof in4) != 0) die("bind udp 0.0.0.0:5353");

    /* abstract name: sun_path[0] = 0 and the length covers the name only (no trailing NUL), so
     * /proc/net/unix shows it as "@vmi-wl-abstract" */
    static const char abstract[] = "vmi-wl-abstract";
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    memcpy(ab.sun_path + 1, abstract, strlen(abstract));
    socklen_t ab_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract));
    fd = socket_or_die(AF_UNIX, SOCK_DGRAM, "socket AF_UNIX dgram");
    if (bind(fd, (struct sockaddr *)&ab, ab_len) != 0) die("bind @vmi-wl-abstract");

    /* IPv6 may be missing (no IPv6 at all, or no ::1 on lo): warn and go on without it. ::1 is
     * tentative (bind: EADDRNOTAVAIL) until its DAD work has run, so that is retried for 3 s. */
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(7778), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int e = 0;
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        if (errno != EAFNOSUPPORT) die("socket AF_INET6 tcp");
        e = errno;
    } else {
        int r;
        for (int i = 0; (r = bind(fd, (struct sockaddr *)&in6, sizeof in6)) != 0 && errno == EADDRNOTAVAIL && i < 30; i++)
            usleep(100000);
        if (r != 0) {
            if (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT) die("bind [::1]:7778");
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        dprintf(2, "vmi-workload: warning: no IPv6 loopback (%s); vmi-wl-c has no [::1]:7778 and no [::]:5354 socket\n",
                strerror(e));
        return;
    }
    if (listen(fd, 4) != 0) die("listen [::1]:7778");

    /* UDP6 only next to the TCP6 socket, so the truth has both IPv6 sockets or neither */
    in6.sin6_port = htons(5354);
    in6.sin6_addr = in6addr_any;
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&in6, sizeof in6) != 0) {
        e = errno;
        if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL) die("udp6 [::]:5354");
        if (fd >= 0) close(fd);
        dprintf(2, "vmi-workload: warning: no IPv6 UDP (%s); vmi-wl-c has no [::]:5354 socket\n", strerror(e));
    }
}

/* vmi-wl-a, after spawning its children: a netlink and a packet socket (see the header) */
static void open_files_a(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (fd < 0) die("socket AF_NETLINK");
    struct sockaddr_nl nl;
    memset(&nl, 0, sizeof nl);
    nl.nl_family = AF_NETLINK; /* nl_pid 0: the kernel assigns the port id; no groups */
    if (bind(fd, (struct sockaddr *)&nl, sizeof nl) != 0) die("bind AF_NETLINK");
    /* protocol 0: no packet type is hooked, so it receives nothing and /proc/net/packet stays put */
    socket_or_die(AF_PACKET, SOCK_DGRAM, "socket AF_PACKET");
}

/* vmi-wl-b: file-backed and anonymous mappings (see the header); the fds are closed again */
static void map_files_b(void) {
    int fd = open_or_die("/etc/passwd", O_RDONLY, 0);
    if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED) die("mmap /etc/passwd");
    close(fd);
    fd = open_or_die("/run/vmi/mapped.bin", O_RDWR | O_CREAT, 0600);
    if (ftruncate(fd, 8192) != 0) die("ftruncate /run/vmi/mapped.bin");
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
    if (shared == MAP_FAILED) die("mmap /run/vmi/mapped.bin");
    memset(shared, 'm', 4096);
    close(fd);
    char *anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) die("mmap anonymous");
    memset(anon, 'a', 3 * 4096);
}

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* c1: an anonymous rwx page with code in it (a nop sled and ret), named where the kernel can */
static void map_rwx_c1(void) {
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) die("mmap rwx");
    memset(code, 0x90, 64);
    code[64] = 0xc3;
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)code, 4096, (unsigned long)"vmi-wl-rwx"); /* EINVAL
        without CONFIG_ANON_VMA_NAME: then the page is plain anonymous memory */
}

/* c1: bounding set without CAP_SYS_MODULE, CAP_NET_RAW inheritable and ambient */
static void set_caps_c1(void) {
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_MODULE, 0, 0, 0) != 0) die("PR_CAPBSET_DROP");
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0) die("capget");
    data[0].inheritable |= 1u << CAP_NET_RAW;
    if (syscall(SYS_capset, &hdr, data) != 0) die("capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0) die("PR_CAP_AMBIENT_RAISE");
}

/* c1: its own mount namespace, private, with a tmpfs only it sees */
static void unshare_mounts_c1(void) {
    if (unshare(CLONE_NEWNS) != 0) die("unshare CLONE_NEWNS");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
    if (mount("vmi-private", "/mnt/vmi-private", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=700") != 0)
        die("mount tmpfs /mnt/vmi-private");
}

static const char *const a1_threads[] = {"vmi-wl-a1-t1", "vmi-wl-a1-t2", "vmi-wl-a1-t3"};
static const char *const b_threads[] = {"vmi-wl-b-w1", "vmi-wl-b-w2", "vmi-wl-b-w3", "vmi-wl-b-w4"};

static void proc_a1(void) {
    set_name("vmi-wl-a1");
    set_ids(1000, 1000, 1000, 1000);
    open_files_a1();
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
    open_files_a();           /* after the forks: a1 and a2 do not inherit them */
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
    open_files_b();           /* after the fork: b1 does not inherit them */
    map_files_b();
    start_threads(b_threads, 4);
    block_forever();
}
/*
 * c1's arguments and environment hold bytes that are not UTF-8, for psaux and envars: the last
 * argument's first byte becomes 0xff, and the first environment string's first value byte 0xfe
 * (both in place: /proc/PID/cmdline and environ read the original argument and environment
 * areas). Lengths and NULs stay, so the layout addresses do not move.
 */
static void rewrite_c1_strings(void) {
    if (main_argc > 1 && main_argv[main_argc - 1][0] != 0) main_argv[main_argc - 1][0] = (char)0xff;
    if (environ && environ[0]) {
        char *eq = strchr(environ[0], '=');
        if (eq && eq[1] != 0) eq[1] = (char)0xfe;
    }
}

static void proc_c1(void) {
    set_name("vmi-wl (c1) x");
    rewrite_c1_strings();
    map_rwx_c1();
    set_caps_c1();
    unshare_mounts_c1();
    block_forever();
}
static void proc_c(void) {
    set_name("vmi-wl-c");
    spawn(proc_c1);           /* c1 stays uid 0 */
    set_ids(1002, 1001, 1001, 1002);
    open_files_c();           /* after the fork: c1 does not inherit them */
    block_forever();
}
/*
 * Park mode: vmi-wl-d's threads each block for good in one system call made through syscall(2),
 * so the call is exactly the one named (glibc's wrappers pick other calls: nanosleep() is
 * clock_nanosleep, open() is openat):
 *   vmi-wl-d       wait4(pid of vmi-wl-d1, &status, 0, NULL)   (d1 pauses for good)
 *   d-read         read(fd of an empty pipe, buf, 64)          (d holds the write end too)
 *   d-accept       accept(fd listening on 127.0.0.1:7788, &addr, &len)
 *   d-nanosleep    nanosleep({86400, 5}, NULL)
 *   d-fifo         openat(AT_FDCWD, "/run/vmi/vmi-fifo", O_RDONLY|O_CLOEXEC)  (no writer ever)
 *   d-futex        futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL)
 */
#define PARK_FIFO "/run/vmi/vmi-fifo"
static int park_pipe[2], park_listener;
static volatile uint32_t park_futex_word;
static void *park_read(void *arg) {
    (void)arg;
    static char buf[64];
    pthread_setname_np(pthread_self(), "d-read");
    for (;;) syscall(SYS_read, park_pipe[0], buf, sizeof buf);
    return NULL;
}
static void *park_accept(void *arg) {
    (void)arg;
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    pthread_setname_np(pthread_self(), "d-accept");
    for (;;) syscall(SYS_accept, park_listener, &peer, &len);
    return NULL;
}
static void *park_nanosleep(void *arg) {
    (void)arg;
    static const struct timespec day = {86400, 5};
    pthread_setname_np(pthread_self(), "d-nanosleep");
    for (;;) syscall(SYS_nanosleep, &day, NULL);
    return NULL;
}
static void *park_fifo(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "d-fifo");
    for (;;) syscall(SYS_openat, AT_FDCWD, PARK_FIFO, O_RDONLY | O_CLOEXEC);
    return NULL;
}
static void *park_futex(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "d-futex");
    for (;;) syscall(SYS_futex, &park_futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}
/*
 * vmi-wl-d1 holds /run/vmi/d1-before.txt open. On SIGUSR1 (between the two snapshots) it opens
 * /run/vmi/d1-after.txt, then closes the first (so the new file gets another fd number), and
 * rewrites its command line in place: argv[0]'s first bytes become "d1-usr1" (length and NULs
 * stay, so /proc/PID/cmdline reads the new bytes from the same area).
 */
#define D1_BEFORE "/run/vmi/d1-before.txt"
#define D1_AFTER "/run/vmi/d1-after.txt"
static int d1_file = -1;
static void d1_on_usr1(int sig) {
    (void)sig;
    int fd = open(D1_AFTER, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) _exit(3);
    close(d1_file);
    d1_file = fd;
    static const char renamed[] = "d1-usr1";
    for (size_t i = 0; i < sizeof renamed - 1 && main_argv[0][i] != 0; i++) main_argv[0][i] = renamed[i];
}
static void proc_d1(void) {
    set_name("vmi-wl-d1");
    d1_file = open_or_die(D1_BEFORE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct sigaction sa = {.sa_handler = d1_on_usr1};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction SIGUSR1");
    block_forever();
}
/*
 * vmi-wl-e (park mode, child of the collector) holds /run/vmi/e.log and a UDP socket bound to
 * 127.0.0.1:7790; the collector kills it between the two snapshots, and vmi-wl-f takes its pid.
 * vmi-wl-f (started between the snapshots) holds /run/vmi/f.log and a TCP socket listening on
 * 127.0.0.1:7791.
 */
static void bind_loopback_or_die(int fd, int port, const char *what) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die(what);
}
static void proc_e(void) {
    set_name("vmi-wl-e");
    open_or_die("/run/vmi/e.log", O_WRONLY | O_CREAT, 0600);
    bind_loopback_or_die(socket_or_die(AF_INET, SOCK_DGRAM, "e udp"), 7790, "e bind 127.0.0.1:7790");
    block_forever();
}
static void proc_f(void) {
    set_name("vmi-wl-f");
    open_or_die("/run/vmi/f.log", O_WRONLY | O_CREAT, 0600);
    int fd = socket_or_die(AF_INET, SOCK_STREAM, "f tcp");
    bind_loopback_or_die(fd, 7791, "f bind 127.0.0.1:7791");
    if (listen(fd, 1) != 0) die("f listen");
    block_forever();
}
static void proc_d(void) {
    set_name("vmi-wl-d");
    pid_t child = fork();
    if (child < 0) die("fork d1");
    if (child == 0) {
        close(ready_pipe[0]);
        proc_d1();
        _exit(0);
    }
    if (pipe2(park_pipe, O_CLOEXEC) != 0) die("park pipe");
    if (mkfifo(PARK_FIFO, 0600) != 0) die("mkfifo " PARK_FIFO);
    park_listener = socket_or_die(AF_INET, SOCK_STREAM, "park listener");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7788)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(park_listener, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(park_listener, 1) != 0)
        die("park listener bind/listen");
    void *(*const parked[])(void *) = {park_read, park_accept, park_nanosleep, park_fifo, park_futex};
    for (size_t i = 0; i < sizeof parked / sizeof parked[0]; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, parked[i], NULL);
        if (e) { errno = e; die("pthread_create (park)"); }
    }
    signal_ready();
    close(ready_pipe[1]);
    int status;
    for (;;) syscall(SYS_wait4, child, &status, 0, NULL);
}

#define TREE_PROCS 8 /* processes below the root that signal readiness */
#define PARK_PROCS 3 /* park mode: vmi-wl-d, vmi-wl-d1 and vmi-wl-e */

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

/* the numeric entries of dir, sorted; own_fd_dir: dir is the collector's own /proc/<pid>/fd, whose
 * listing shows the fd of the DIR reading it, which is left out */
static int numeric_entries(const char *dir, int *ids, int cap, int own_fd_dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, skip = own_fd_dir ? dirfd(d) : -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        int id = atoi(e->d_name);
        if (id == skip) continue;
        if (n < cap) ids[n++] = id;
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

/* the value of a "key:\tvalue" line of an fdinfo file into val ("?" stays if there is none) */
static void fdinfo_field(const char *info, const char *key, char *val, size_t cap) {
    size_t kl = strlen(key);
    for (const char *p = info; *p;) {
        if (strncmp(p, key, kl) == 0) {
            p += kl;
            p += strspn(p, " \t");
            size_t n = strcspn(p, "\n");
            if (n > 0 && n < cap) {
                memcpy(val, p, n);
                val[n] = 0;
            }
            return;
        }
        const char *nl = strchr(p, '\n');
        if (!nl) return;
        p = nl + 1;
    }
}

/*
 * The F lines of one process: every fd in /proc/<pid>/fd, sorted. link is readlink() of the fd's
 * /proc link, exactly ("/run/vmi/deleted.bin (deleted)", "pipe:[123]", "socket:[456]",
 * "anon_inode:[eventfd]"); flags (octal text as printed), pos and mnt_id come from
 * /proc/<pid>/fdinfo/<fd>; ino, dev (major:minor), mode (octal, the whole st_mode), size and the
 * times (ns since the epoch) from stat() of the /proc link, which follows it to the open file
 * (deleted files, pipes, sockets and anon inodes too). A field that cannot be read is "?". Only
 * fds that exist across the snapshot may appear: in the collector's own listing the DIR reading
 * it is left out, and nothing else of the collector is open meanwhile (read_file() opens fdinfo
 * after the listing is closed). Kernel threads have no fds.
 */
static void collect_fds(int pid) {
    static int fds[65536];
    char path[64], link[4096], flags[32], pos[32], mnt_id[32], st_text[256];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    int n = numeric_entries(path, fds, 65536, pid == (int)getpid());
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fds[i]);
        ssize_t ll = readlink(path, link, sizeof link - 1);
        if (ll < 0 && errno == ENOENT) continue; /* closed (or exited) meanwhile */
        if (ll < 0) snprintf(link, sizeof link, "?");
        else link[ll] = 0;
        struct stat st;
        if (stat(path, &st) == 0)
            snprintf(st_text, sizeof st_text, "%llu\t%u:%u\t%o\t%lld\t%lld\t%lld\t%lld", (unsigned long long)st.st_ino,
                     major(st.st_dev), minor(st.st_dev), (unsigned)st.st_mode, (long long)st.st_size,
                     ts_ns(&st.st_atim), ts_ns(&st.st_mtim), ts_ns(&st.st_ctim));
        else
            snprintf(st_text, sizeof st_text, "?\t?\t?\t?\t?\t?\t?");
        snprintf(flags, sizeof flags, "?");
        snprintf(pos, sizeof pos, "?");
        snprintf(mnt_id, sizeof mnt_id, "?");
        snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", pid, fds[i]);
        if (read_file(path, fbuf, sizeof fbuf) >= 0) {
            fdinfo_field(fbuf, "pos:", pos, sizeof pos);
            fdinfo_field(fbuf, "flags:", flags, sizeof flags);
            fdinfo_field(fbuf, "mnt_id:", mnt_id, sizeof mnt_id);
        }
        emit("F\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", pid, fds[i], link, flags, pos, mnt_id, st_text);
    }
}

/* the M lines: /proc/modules line by line, in its order (root sees the real addresses) */
static void collect_modules(void) {
    ssize_t len = read_file("/proc/modules", kbuf, sizeof kbuf);
    if (len < 0) die("read /proc/modules");
    if ((size_t)len >= sizeof kbuf - 1) { errno = EFBIG; die("/proc/modules"); }
    for (char *line = kbuf; *line;) {
        char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        emit("M\t%.*s\n", (int)n, line);
        if (!eol) break;
        line = eol + 1;
    }
}

/*
 * The N lines: the guest's socket tables, /proc/net/<table> (this network namespace's, the only
 * one), every line but the header, verbatim (tcp, udp and netlink pad theirs with spaces); a
 * table the kernel does not have (no IPv6: tcp6, udp6) is left out.
 */
static void collect_net(void) {
    static const char *const tables[] = {"tcp", "tcp6", "udp", "udp6", "unix", "netlink", "packet"};
    char path[64];
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        snprintf(path, sizeof path, "/proc/net/%s", tables[t]);
        ssize_t len = read_file(path, kbuf, sizeof kbuf);
        if (len < 0) continue;
        if ((size_t)len >= sizeof kbuf - 1) { errno = EFBIG; die(path); }
        char *line = strchr(kbuf, '\n'); /* the header line is left out */
        for (line = line ? line + 1 : NULL; line && *line;) {
            char *eol = strchr(line, '\n');
            size_t n = eol ? (size_t)(eol - line) : strlen(line);
            emit("N\t%s\t%.*s\n", tables[t], (int)n, line);
            line = eol ? eol + 1 : NULL;
        }
    }
}

/*
 * The MP lines (module, parameter, value) of every module in /proc/modules: each file in
 * /sys/module/<module>/parameters/, sorted by name, value = its content without the trailing
 * newline; files that cannot be read (write-only parameters, mode 0200) are left out. Read ONCE,
 * at start (/init loads the modules before the workload runs), because the collector must not
 * touch sysfs later (see the lesson in main()); the same lines are printed in every collection,
 * so a module loaded later (lime.ko, before collection 3) has M lines but no MP lines.
 */
static char mp_lines[1 << 16];
static size_t mp_len;

static int cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void read_module_params(void) {
    static char mods[1 << 16], params[512][256];
    ssize_t len = read_file("/proc/modules", mods, sizeof mods);
    if (len < 0) die("read /proc/modules");
    if ((size_t)len >= sizeof mods - 1) { errno = EFBIG; die("/proc/modules"); }
    for (char *line = mods; *line;) {
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        char name[128], dir[256], path[600];
        DIR *d = NULL;
        if (sscanf(line, "%127s", name) == 1) {
            snprintf(dir, sizeof dir, "/sys/module/%s/parameters", name);
            d = opendir(dir); /* none: the module has no parameters in sysfs */
        }
        if (d) {
            int n = 0;
            struct dirent *e;
            while ((e = readdir(d)))
                if (e->d_name[0] != '.' && n < 512) snprintf(params[n++], sizeof params[0], "%s", e->d_name);
            closedir(d);
            qsort(params, (size_t)n, sizeof params[0], cmp_name);
            for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/%.255s", dir, params[i]);
                ssize_t vl = read_file(path, kbuf, sizeof kbuf);
                if (vl < 0) continue;
                if (vl > 0 && kbuf[vl - 1] == '\n') kbuf[vl - 1] = 0;
                int w = snprintf(mp_lines + mp_len, sizeof mp_lines - mp_len, "MP\t%s\t%s\t%s\n", name, params[i], kbuf);
                if (w < 0 || (size_t)w >= sizeof mp_lines - mp_len) { errno = ENOSPC; die("module parameters"); }
                mp_len += (size_t)w;
            }
        }
        if (!eol) break;
        line = eol + 1;
    }
}

/*
 * One /proc walk into out[] (replacing its content): per process its P line, its threads' T lines
 * and its fds' F lines, then the M lines of /proc/modules, the MP lines read at start and the N
 * lines of /proc/net.
 */
/* A line: the user address-space layout /proc/PID/stat shows the (root) collector, then
 * /proc/PID/cmdline and /proc/PID/environ in hex, for processes with arguments (kernel threads
 * have none). Both are the process's own memory: reading them from the snapshot through the
 * process's page tables must give these bytes. `rest` is the stat line after the comm. */
static void collect_args(int pid, const char *rest) {
    unsigned long long field[64] = {0}; /* field[k]: stat field k (1-based; 3 is the state) */
    int k = 3;
    for (const char *p = rest; *p && k < 64;) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *end;
        field[k] = k == 3 ? 0 : strtoull(p, &end, 10); /* negative fields wrap; none is used */
        if (k == 3) end = (char *)p + 1;
        if (end == p) break;
        p = end;
        k++;
    }
    if (k <= 51 || field[49] <= field[48]) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    ssize_t n = read_file(path, kbuf, 4097);
    if (n <= 0) return;
    static char hexed[2 * 4096 + 1], env_hexed[2 * 8192 + 1];
    for (ssize_t i = 0; i < n; i++) snprintf(hexed + 2 * i, 3, "%02x", (unsigned char)kbuf[i]);
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    ssize_t e = read_file(path, kbuf, 8193);
    if (e < 0 || e >= 8192) return; /* more environment than that (maybe cut short) is not ours */
    for (ssize_t i = 0; i < e; i++) snprintf(env_hexed + 2 * i, 3, "%02x", (unsigned char)kbuf[i]);
    env_hexed[2 * e] = 0;
    emit("A\t%d\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%s\t%s\n", pid, field[48], field[49], field[50],
         field[51], field[26], field[27], field[28], hexed, env_hexed);
}

/* C line: the capability sets of /proc/PID/status (hex, as printed) */
static void collect_caps(int pid, const char *status) {
    static const char *const keys[] = {"\nCapInh:", "\nCapPrm:", "\nCapEff:", "\nCapBnd:", "\nCapAmb:"};
    char values[5][32];
    for (int i = 0; i < 5; i++) {
        snprintf(values[i], sizeof values[i], "?");
        const char *p = strstr(status, keys[i]);
        if (p) sscanf(p + strlen(keys[i]), " %31s", values[i]);
    }
    emit("C\t%d\t%s\t%s\t%s\t%s\t%s\n", pid, values[0], values[1], values[2], values[3], values[4]);
}

/* emits prefix + line for every line of text */
static void emit_lines(const char *prefix, const char *text) {
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        emit("%s%.*s\n", prefix, (int)n, line);
        if (!eol) break;
        line = eol + 1;
    }
}

/* V lines: /proc/PID/maps verbatim (kernel threads have none) */
static void collect_maps(int pid) {
    char path[64], prefix[32];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    ssize_t len = read_file(path, kbuf, sizeof kbuf);
    if (len < 0) return;
    if ((size_t)len >= sizeof kbuf - 1) { errno = EFBIG; die(path); }
    snprintf(prefix, sizeof prefix, "V\t%d\t", pid);
    emit_lines(prefix, kbuf);
}

/* NS line: the process's mount namespace; MI lines: the first process seen in a namespace has its
 * /proc/PID/mountinfo printed (every process of a namespace sees the same mounts here: all share
 * the root directory "/") */
static unsigned long long seen_mnt_ns[256];
static int n_seen_mnt_ns;

static void collect_mounts(int pid) {
    char path[64], link[64], prefix[48];
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0) return;
    link[n] = 0;
    unsigned long long ns = 0;
    if (sscanf(link, "mnt:[%llu]", &ns) != 1) return;
    emit("NS\t%d\t%llu\n", pid, ns);
    for (int i = 0; i < n_seen_mnt_ns; i++)
        if (seen_mnt_ns[i] == ns) return;
    if (n_seen_mnt_ns == 256) return;
    seen_mnt_ns[n_seen_mnt_ns++] = ns;
    snprintf(path, sizeof path, "/proc/%d/mountinfo", pid);
    ssize_t len = read_file(path, kbuf, sizeof kbuf);
    if (len < 0) return;
    if ((size_t)len >= sizeof kbuf - 1) { errno = EFBIG; die(path); }
    snprintf(prefix, sizeof prefix, "MI\t%llu\t", ns);
    emit_lines(prefix, kbuf);
}

/*
 * L lines: every record /dev/kmsg has, as the kernel formats it ("prio,seq,usec,flags;text" and
 * its " KEY=value" dictionary lines; bytes outside printable ASCII and '\\' as \xNN). Printed in
 * collection 1 only: the log may grow after it (every record it holds precedes the snapshot).
 */
static void collect_kmsg(void) {
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) die("open /dev/kmsg");
    static char rec[8192 + 1];
    for (int records = 0; records < 100000; records++) {
        ssize_t r = read(fd, rec, sizeof rec - 1);
        if (r < 0 && errno == EPIPE) continue; /* overwritten while we read: the next one */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;                     /* EAGAIN: no more */
        rec[r] = 0;
        emit_lines("L\t", rec);
    }
    close(fd);
}

/* S line: the system call the thread is blocked in, as /proc/PID/task/TID/syscall shows it
 * ("nr arg1 .. arg6 sp pc", "-1 sp pc" outside one, "running") */
#define PF_KTHREAD_FLAG 0x00200000u
static void collect_syscall(int pid, int tid) {
    char path[96], line[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
    ssize_t n = read_file(path, line, sizeof line);
    if (n <= 0) return;
    line[strcspn(line, "\n")] = 0;
    emit("S\t%d\t%d\t%s\n", tid, pid, line);
}

static void collect_procs(void) {
    static int pids[65536], tids[65536];
    out_len = 0;
    n_seen_mnt_ns = 0;
    char path[256], comm[64];

    int np = numeric_entries("/proc", pids, 65536, 0);
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
        collect_caps(pid, kbuf);
        collect_args(pid, rest);
        collect_maps(pid);
        collect_mounts(pid);

        snprintf(path, sizeof path, "/proc/%d/task", pid);
        int nt = numeric_entries(path, tids, 65536, 0);
        for (int j = 0; j < nt; j++) {
            snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tids[j]);
            if (read_file(path, fbuf, sizeof fbuf) < 0) continue;
            char tcomm[64];
            if (parse_stat(fbuf, tcomm, sizeof tcomm, &rest) != 0) continue;
            unsigned tflags = 0;
            sscanf(rest, " %*c %*d %*d %*d %*d %*d %u", &tflags);
            kernel_comm(tcomm, tflags);
            emit("T\t%d\t%d\t%s\n", tids[j], pid, tcomm);
            if (park_mode && pid != (int)getpid() && !(tflags & PF_KTHREAD_FLAG)) collect_syscall(pid, tids[j]);
        }
        collect_fds(pid);
    }
    collect_modules();
    emit("%s", mp_lines);
    collect_net();
}

/* 1 if word occurs in s as a whole word (between blanks, ':' or the ends) */
static int has_word(const char *s, const char *word) {
    size_t n = strlen(word);
    for (const char *p = s; (p = strstr(p, word)); p += n) {
        int starts = p == s || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':';
        int ends = p[n] == 0 || p[n] == ' ' || p[n] == '\t' || p[n] == '\n';
        if (starts && ends) return 1;
    }
    return 0;
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
        int la57 = 0, pti = 0;
        char *flags = strstr(fbuf, "\nflags");
        if (flags) {
            char *eol = strchr(flags + 1, '\n');
            if (eol) *eol = 0;
            la57 = strstr(flags, " la57") != NULL;
            pti = has_word(flags, "pti"); /* kernel page-table isolation is on */
        }
        emit("K\tCPU_LA57\t%d\n", la57);
        emit("K\tCPU_PTI\t%d\n", pti);
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
    if (rootkit_hidden_pid > 0) {
        emit("K\tROOTKIT_HIDDEN_PID\t%d\n", (int)rootkit_hidden_pid);
        emit("K\tROOTKIT_HIDDEN_COMM\t%s\n", ROOTKIT_VICTIM);
    }
    char ns[64]; /* procfs only formats the namespace's inode number: "net:[4026531840]" */
    ssize_t ns_len = readlink("/proc/self/ns/net", ns, sizeof ns - 1);
    if (ns_len > 0) {
        ns[ns_len] = 0;
        emit("K\tNET_NS\t%s\n", ns);
    }
    if (n == 1) collect_kmsg();
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

/*
 * Rootkit mode: loads the sample rootkit, telling it to hide ROOTKIT_VICTIM (a leaf of the tree
 * with no threads or children, blocked for good). Any failure kills the collector: a rootkit
 * sample whose rootkit did not load must not be built.
 */
/* the pid of the (first) process named `name`, or -1 */
static pid_t pid_of(const char *name) {
    DIR *d = opendir("/proc");
    if (!d) die("opendir /proc");
    struct dirent *e;
    char path[300], comm[64], *rest;
    pid_t found = -1;
    while ((e = readdir(d)) != NULL && found <= 0) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (read_file(path, fbuf, sizeof fbuf) > 0 && parse_stat(fbuf, comm, sizeof comm, &rest) == 0 &&
            strcmp(comm, name) == 0)
            found = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static void run_rootkit(const char *ko) {
    rootkit_hidden_pid = pid_of(ROOTKIT_VICTIM);
    if (rootkit_hidden_pid <= 0) { errno = ESRCH; die("rootkit: no " ROOTKIT_VICTIM); }
    char arg[32];
    snprintf(arg, sizeof arg, "hide_pid=%d", (int)rootkit_hidden_pid);
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        execl("/sbin/insmod", "insmod", ko, arg, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(p, &status, 0) < 0)
        if (errno != EINTR) die("rootkit: waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { errno = EIO; die("rootkit: insmod failed"); }
    char line[96];
    snprintf(line, sizeof line, "@@VMI-ROOTKIT hid pid=%d comm=%s\n", (int)rootkit_hidden_pid, ROOTKIT_VICTIM);
    say(line);
}

/*
 * Collects until the view has been identical for `stable` consecutive one-second checks (at most
 * 90 s); the walks rotate over the CPUs so any per-CPU lazy work they cause happens now. The last
 * collection stays in `out`.
 */
static void collect_when_stable(int stable) {
    long ncpu = online_cpus;
    static char prev[sizeof out];
    size_t prev_len = 0;
    int same = 0;
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
}

/*
 * Park mode's changes between the two snapshots, each required (a failure kills the collector, so
 * the boot is retried): vmi-wl-e is killed and reaped; the next pid is made e's
 * (/proc/sys/kernel/ns_last_pid) and vmi-wl-f is started with it, so the second snapshot has a
 * reused pid with a new start time; vmi-wl-d1 gets SIGUSR1 (a file opened, one closed, its command
 * line rewritten, see d1_on_usr1); `module` is loaded and cpuid unloaded. diff_facts gets the K
 * facts naming them, for collections 3 and 4.
 */
static pid_t park_e_pid;
static char diff_facts[512];
static void make_changes(const char *module) {
    if (park_e_pid <= 0 || kill(park_e_pid, SIGKILL) != 0) die("kill vmi-wl-e");
    int status;
    while (waitpid(park_e_pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid vmi-wl-e");
    char last[32];
    int n = snprintf(last, sizeof last, "%d", (int)park_e_pid - 1);
    int fd = open_or_die("/proc/sys/kernel/ns_last_pid", O_WRONLY, 0);
    if (write(fd, last, (size_t)n) != n) die("write ns_last_pid");
    close(fd);
    if (pipe2(ready_pipe, O_CLOEXEC) != 0) die("pipe");
    pid_t f = spawn(proc_f);
    close(ready_pipe[1]);
    char c;
    if (read(ready_pipe[0], &c, 1) != 1) die("vmi-wl-f not ready");
    close(ready_pipe[0]);
    if (f != park_e_pid) { errno = EAGAIN; die("vmi-wl-f did not get vmi-wl-e's pid"); }
    pid_t d1 = pid_of("vmi-wl-d1");
    if (d1 <= 0 || kill(d1, SIGUSR1) != 0) die("signal vmi-wl-d1");
    int ko = open_or_die(module, O_RDONLY | O_CLOEXEC, 0);
    if (syscall(SYS_finit_module, ko, "", 0) != 0) die("finit_module");
    close(ko);
    if (syscall(SYS_delete_module, "cpuid", O_NONBLOCK) != 0) die("delete_module cpuid");
    const char *base = strrchr(module, '/');
    char loaded[64];
    snprintf(loaded, sizeof loaded, "%s", base ? base + 1 : module);
    loaded[strcspn(loaded, ".")] = 0;
    snprintf(diff_facts, sizeof diff_facts,
             "K\tDIFF_EXITED_PID\t%d\nK\tDIFF_STARTED_PID\t%d\nK\tDIFF_SIGNALLED_PID\t%d\n"
             "K\tDIFF_LOADED_MODULE\t%s\nK\tDIFF_UNLOADED_MODULE\tcpuid\n",
             (int)park_e_pid, (int)f, (int)d1, loaded);
}

static void run_second_snapshot(const char *module, int stable) {
    if (!module[0]) { errno = EINVAL; die("park mode needs a module to load (argv[6])"); }
    make_changes(module);
    collect_when_stable(stable);
    emit("%s", diff_facts);
    finish_and_print(3);
    say("@@VMI-READY-B\n");
    wait_for_go(900);
    sleep(2);
    collect_procs();
    emit("%s", diff_facts);
    finish_and_print(4);
}

int main(int argc, char **argv) {
    main_argc = argc;
    main_argv = argv;
    /* argv[1]: seconds to wait after the tree is up; argv[2]: stable checks wanted;
     * argv[3] (optional, may be empty): lime.ko, see run_lime(); argv[4] (optional, may be empty):
     * vmi_rootkit.ko, see run_rootkit(); argv[5] (optional): "park", see proc_d() */
    int settle = argc > 1 ? atoi(argv[1]) : 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    set_name("vmi-wl-root");
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) > 0) online_cpus = CPU_COUNT(&all);
    read_kcore_facts();
    read_module_params(); /* sysfs: only now, see the lesson below */
    make_run_vmi();
    log_known_lines();
    signal(SIGCHLD, SIG_DFL);
    if (pipe2(ready_pipe, O_CLOEXEC) != 0) die("pipe");

    park_mode = argc > 5 && strcmp(argv[5], "park") == 0;
    spawn(proc_a);
    spawn(proc_b);
    spawn(proc_c);
    if (park_mode) {
        spawn(proc_d);
        park_e_pid = spawn(proc_e);
    }
    close(ready_pipe[1]);

    /* wait until all 8 descendants are named, re-credentialed and threaded */
    int ready = 0;
    char c;
    while (ready < TREE_PROCS + (park_mode ? PARK_PROCS : 0)) {
        ssize_t r = read(ready_pipe[0], &c, 1);
        if (r == 1) ready++;
        else if (r == 0) { errno = EPIPE; die("tree died before ready"); }
        else if (errno != EINTR) die("ready read");
    }
    close(ready_pipe[0]);
    say("@@VMI-TREE-UP\n");
    if (argc > 4 && argv[4][0]) run_rootkit(argv[4]);
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
    const int stable = argc > 2 ? atoi(argv[2]) : 4;
    collect_when_stable(stable);
    finish_and_print(1);
    say("@@VMI-READY\n");
    wait_for_go(900);
    sleep(2);
    collect_procs();
    finish_and_print(2);
    dump_kallsyms();
    if (argc > 3 && argv[3][0]) run_lime(argv[3]);
    if (park_mode) run_second_snapshot(argc > 6 ? argv[6] : "", stable);
    say("@@VMI-DONE\n");
    for (;;) pause(); /* the host quits QEMU */
}
