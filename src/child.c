/*
 * child: spawn, forward signals, reap, and stop the wrapped command.
 */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

const int child_signals[] = {
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, 0
};

#define NSIGNALS (sizeof child_signals / sizeof child_signals[0] - 1)

struct child {
    const struct config *cfg;
    pid_t pid;
    int exited;
    int closed;
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
        return 128 + WTERMSIG(st);
    return 70;
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
    return err == ENOENT || err == ENOTDIR ? 127 : 126;
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
    log_event(LOG_DEBUG, "signal-forwarded", "signal", strsignal(signum), NULL);
    kill(ch->pid, signum);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct child *ch = t->data;
    if (ch->exited)
        return;
    log_event(LOG_WARN, "child-killed", "reason",
              "still running after the grace period (--grace)", NULL);
    kill(ch->pid, SIGKILL);
}

/* Where PATH finds `name` as execvp would, into buf.  0 or an errno. */
static int find_in_path(const char *name, char *buf, size_t len)
{
    if (strchr(name, '/')) {
        snprintf(buf, len, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, len, "%.*s%s%s", (int)n, path, n ? "/" : "", name);
        if (access(buf, X_OK) == 0)
            return 0;
        path += n + (path[n] == ':');
    }
    return ENOENT;
}

/*
 * An executable file that is not a binary and has no #! line: run it with
 * /bin/sh, as execvp and every shell do.
 */
static int spawn_script(struct child *ch, posix_spawnattr_t *attr,
                        char *const argv[], char *const envp[])
{
    char path[4096];
    size_t argc = 0;

    if (find_in_path(argv[0], path, sizeof path) != 0)
        return ENOEXEC;
    while (argv[argc])
        argc++;
    char **sh = calloc(argc + 2, sizeof *sh);
    if (sh == NULL)
        return ENOMEM;
    sh[0] = "/bin/sh";
    sh[1] = path;
    for (size_t i = 1; i < argc; i++)
        sh[i + 1] = argv[i];
    int r = posix_spawn(&ch->pid, "/bin/sh", NULL, attr, sh, envp);
    free(sh);
    return r == 0 ? 0 : ENOEXEC;
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

int child_spawn(struct child *ch, char *const argv[], char *const envp[],
                int *err)
{
    /* Every signal at its default and none blocked, whatever memtunnel
     * ignores or handles (a shell would do the same). */
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int r = posix_spawnp(&ch->pid, argv[0], NULL, &attr, argv, envp);
    if (r == ENOEXEC)
        r = spawn_script(ch, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    if (r != 0) {
        *err = r;
        ch->exited = 1;
        log_exec_failure(argv[0], r);
        return exec_status(r);
    }
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)ch->pid);
    log_event(LOG_DEBUG, "child-started", "pid", pid, "command", argv[0], NULL);
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
    kill(ch->pid, SIGTERM);
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

int child_exec(char *const argv[], int *err)
{
    execvp(argv[0], argv);
    *err = errno;
    log_exec_failure(argv[0], errno);
    return exec_status(errno);
}
