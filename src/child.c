/*
 * child: spawn, forward signals, reap, and stop the wrapped command.
 */
#define _GNU_SOURCE             /* pipe2 */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcode.h"
#include "log.h"

extern char **environ;

const int child_signals[] = {
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, 0
};

#define NSIGNALS (sizeof child_signals / sizeof child_signals[0] - 1)

struct child {
    const struct config *cfg;
    pid_t pid;
    int exited;
    int closed;
    int own_group;                /* in its own process group */
    int terminating;              /* child_terminate was called */
    sigset_t held;                /* forwarded once the child exists */
    child_exit_cb cb;
    void *arg;
    uv_signal_t sigchld;
    uv_signal_t sigs[NSIGNALS];
    uv_timer_t kill_timer;
};

int child_exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return EXIT_SIGNAL + WTERMSIG(st);
    return EXIT_SOFTWARE;
}

int child_forwards(int sig, enum config_switch forward_sigterm, int on_heroku,
                   int tty_foreground)
{
    switch (sig) {
    case SIGTERM:
        /* Heroku signals every process in the dyno itself; a second
         * SIGTERM makes some servers skip their graceful shutdown. */
        if (forward_sigterm == CONFIG_AUTO)
            return !on_heroku;
        return forward_sigterm == CONFIG_YES;
    case SIGINT:
    case SIGQUIT:
    case SIGWINCH:
        /* The terminal sent these to its whole foreground group. */
        return !tty_foreground;
    default:
        return 1;
    }
}

static int tty_foreground(void)
{
    return isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
}

static int exec_status(int err)
{
    return err == ENOENT || err == ENOTDIR ? EXIT_NOTFOUND : EXIT_NOEXEC;
}

static const char *exec_reason(int err)
{
    switch (err) {
    case ENOENT: return "command not found";
    case EACCES: return "permission denied (not executable?)";
    case ENOEXEC: return "not an executable format";
    default: return strerror(err);
    }
}

static void log_exec_failure(const char *cmd, int err)
{
    log_event(LOG_ERROR, "exec-failed", "command", cmd,
              "reason", exec_reason(err), NULL);
}

/* Reap every child that has exited: ours, and orphans handed to us as
 * PID 1.  libuv's own process handles are not used, so nothing else
 * waits for children in this process. */
static void on_sigchld(uv_signal_t *h, int signum)
{
    struct child *ch = h->data;
    int st;
    pid_t pid;

    (void)signum;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid != ch->pid || ch->exited)
            continue;
        ch->exited = 1;
        uv_timer_stop(&ch->kill_timer);
        /* Being stopped, the child is gone: what it started goes too. */
        if (ch->terminating && ch->own_group)
            kill(-ch->pid, SIGKILL);
        int code = child_exit_code(st);
        if (WIFSIGNALED(st)) {
            log_event(LOG_INFO, "child-exited", "signal",
                      strsignal(WTERMSIG(st)), NULL);
        } else {
            char c[8];
            snprintf(c, sizeof c, "%d", code);
            log_event(LOG_INFO, "child-exited", "status", c, NULL);
        }
        ch->cb(ch, code, ch->arg);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct child *ch = h->data;

    if (ch->exited)
        return;
    if (!child_forwards(signum, ch->cfg->forward_sigterm, ch->cfg->on_heroku,
                        tty_foreground())) {
        log_event(LOG_DEBUG, "signal-not-forwarded", "signal",
                  strsignal(signum), NULL);
        return;
    }
    /* Not started yet: kill(0, sig) would signal our whole process
     * group, memtunnel included.  Hold it and forward it once the child
     * exists (SPEC §4: exactly once), like a signal that arrives while
     * child_spawn blocks them all.  main() runs no loop iteration between
     * child_new and child_spawn, so today this is a guard. */
    if (ch->pid == 0) {
        log_event(LOG_DEBUG, "signal-held", "signal", strsignal(signum), NULL);
        sigaddset(&ch->held, signum);
        return;
    }
    log_event(LOG_DEBUG, "signal-forwarded", "signal", strsignal(signum), NULL);
    kill(ch->pid, signum);
}

/* The signals held before the child existed, forwarded once each (like
 * standard signals, several of one kind pending are one). */
static void forward_held(struct child *ch)
{
    for (size_t i = 0; i < NSIGNALS; i++) {
        if (!sigismember(&ch->held, child_signals[i]))
            continue;
        log_event(LOG_DEBUG, "signal-forwarded", "signal",
                  strsignal(child_signals[i]), NULL);
        kill(ch->pid, child_signals[i]);
    }
    sigemptyset(&ch->held);
}

/* Stopping reaches the whole process group when the child has its own. */
static void stop_tree(struct child *ch, int sig)
{
    kill(ch->own_group ? -ch->pid : ch->pid, sig);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct child *ch = t->data;
    if (ch->exited)
        return;
    log_event(LOG_WARN, "child-killed", "reason",
              "still running after the grace period (--grace)", NULL);
    stop_tree(ch, SIGKILL);
}

struct child *child_new(uv_loop_t *loop, const struct config *cfg,
                        child_exit_cb cb, void *arg)
{
    struct child *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return NULL;
    ch->cfg = cfg;
    ch->cb = cb;
    ch->arg = arg;
    sigemptyset(&ch->held);

    /* Watch SIGCHLD before the child exists, so its exit cannot be missed. */
    uv_signal_init(loop, &ch->sigchld);
    ch->sigchld.data = ch;
    uv_signal_start(&ch->sigchld, on_sigchld, SIGCHLD);
    for (size_t i = 0; i < NSIGNALS; i++) {
        uv_signal_init(loop, &ch->sigs[i]);
        ch->sigs[i].data = ch;
        uv_signal_start(&ch->sigs[i], on_signal, child_signals[i]);
    }
    uv_timer_init(loop, &ch->kill_timer);
    ch->kill_timer.data = ch;
    return ch;
}

/*
 * In the new process, between fork and exec: only async-signal-safe calls.
 * The command gets every signal at its default and none blocked (memtunnel
 * ignores SIGPIPE and handles others; a shell would reset them too), and
 * SIGTERM when memtunnel dies, even of SIGKILL: the app must not run on
 * without its tunnel.  Without a terminal it gets a process group of its
 * own, so that stopping it reaches every process it started.  With one it
 * stays in memtunnel's group, which owns the terminal's foreground.
 *
 * It starts with every signal blocked (child_spawn forks so), as libuv's
 * uv_spawn does: until the dispositions are reset, a signal would run
 * memtunnel's handler here, and libuv's writes to the signal pipe this
 * process shares with memtunnel, which would forward it a second time.
 * A signal pending here was sent to memtunnel's process group, so
 * memtunnel got it too: one it forwards (in forwarded) is dropped, so that
 * the command gets it exactly once; any other takes effect when the mask
 * is emptied, just before exec.
 */
/*
 * glibc keeps the signals it uses itself (thread cancellation and setxid,
 * below SIGRTMIN) from sigaction(), but an ignored one stays ignored across
 * exec, and memtunnel may have been started so: posix_spawn leaves them
 * ignored in what it starts (GNU make does, for every recipe).  The command
 * must start with every signal at its default, so set these with the
 * system call itself.  Between fork and exec: async-signal-safe.
 */
static void reset_libc_signals(void)
{
    struct {                            /* the kernel's struct sigaction */
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } k = { SIG_DFL, 0, NULL, 0 };

    for (int sig = 32; sig < SIGRTMIN; sig++)
        syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
}

static void exec_child(char *const argv[], char *const envp[], pid_t parent,
                       int own_group, const sigset_t *forwarded,
                       int report_fd)
{
    struct sigaction dfl, ign;
    sigset_t none, pending;
    int e;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    reset_libc_signals();
    if (own_group)
        setpgid(0, 0);
    /* Ignoring a signal discards it when pending (POSIX sigaction). */
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigpending(&pending);
    for (size_t i = 0; i < NSIGNALS; i++) {
        int sig = child_signals[i];
        if (sigismember(&pending, sig) && sigismember(forwarded, sig)) {
            sigaction(sig, &ign, NULL);
            sigaction(sig, &dfl, NULL);
        }
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)        /* memtunnel died before prctl */
        _exit(EXIT_NOTFOUND);
    environ = (char **)envp;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* execvp searches PATH and runs a #!-less script with /bin/sh. */
    execvp(argv[0], argv);
    e = errno;
    while (write(report_fd, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(EXIT_NOTFOUND);
}

int child_spawn(struct child *ch, char *const argv[], char *const envp[],
                int *err)
{
    sigset_t all, old, forwarded;
    int fds[2], e = 0, fg;
    ssize_t n;

    /* exec failure is reported through a close-on-exec pipe: EOF means
     * the command is running. */
    if (pipe2(fds, O_CLOEXEC) < 0) {
        *err = errno;
        ch->exited = 1;
        log_exec_failure(argv[0], *err);
        return EXIT_NOEXEC;
    }
    ch->own_group = !isatty(STDIN_FILENO);
    fg = tty_foreground();
    sigemptyset(&forwarded);
    for (size_t i = 0; i < NSIGNALS; i++)
        if (child_forwards(child_signals[i], ch->cfg->forward_sigterm,
                           ch->cfg->on_heroku, fg))
            sigaddset(&forwarded, child_signals[i]);
    pid_t parent = getpid();
    /* No handler of ours may run in the child before exec_child reset
     * them; here, a signal waits until fork has returned. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        exec_child(argv, envp, parent, ch->own_group, &forwarded, fds[1]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);
    if (pid < 0) {
        *err = errno;
        close(fds[0]);
        ch->exited = 1;
        log_exec_failure(argv[0], *err);
        return EXIT_NOEXEC;
    }
    ch->pid = pid;
    /* Set it from this side too: signals sent to the group right away
     * must not miss it. */
    if (ch->own_group)
        setpgid(pid, pid);
    while ((n = read(fds[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    if (n == (ssize_t)sizeof e) {
        /* The command could not run; the child has exited, and SIGCHLD's
         * handler will reap it without reporting (ch->exited). */
        *err = e;
        ch->exited = 1;
        log_exec_failure(argv[0], e);
        return exec_status(e);
    }
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    log_event(LOG_DEBUG, "child-started", "pid", pidtext, "command", argv[0],
              NULL);
    forward_held(ch);
    return 0;
}

pid_t child_pid(const struct child *ch)
{
    return ch->pid;
}

void child_terminate(struct child *ch, uint32_t grace_ms)
{
    if (ch->exited)
        return;
    ch->terminating = 1;
    stop_tree(ch, SIGTERM);
    uv_timer_start(&ch->kill_timer, on_kill_timer, grace_ms, 0);
}

void child_release(struct child *ch)
{
    ch->exited = 1;       /* no more forwarding or killing */
    uv_unref((uv_handle_t *)&ch->sigchld);
    for (size_t i = 0; i < NSIGNALS; i++)
        uv_unref((uv_handle_t *)&ch->sigs[i]);
    uv_timer_stop(&ch->kill_timer);
    uv_unref((uv_handle_t *)&ch->kill_timer);
}

void child_close(struct child *ch)
{
    if (ch->closed)
        return;
    ch->closed = 1;
    uv_close((uv_handle_t *)&ch->sigchld, NULL);
    for (size_t i = 0; i < NSIGNALS; i++)
        uv_close((uv_handle_t *)&ch->sigs[i], NULL);
    uv_close((uv_handle_t *)&ch->kill_timer, NULL);
}

void child_free(struct child *ch)
{
    free(ch);
}

int child_exec(char *const argv[], const struct sigaction *sigpipe, int *err)
{
    struct sigaction ours;

    sigaction(SIGPIPE, sigpipe, &ours);
    execvp(argv[0], argv);
    *err = errno;
    /* Logging must fail with EPIPE, not kill memtunnel before it exits
     * with the shell's status. */
    sigaction(SIGPIPE, &ours, NULL);
    log_exec_failure(argv[0], *err);
    return exec_status(*err);
}
