/*
 * child: the wrapped command (SPEC §4).
 *
 * Spawned only after every listener is bound, with stdio inherited and
 * every signal at its default and an empty signal mask (memtunnel ignores
 * SIGPIPE, the child must not).  With a terminal it stays in memtunnel's
 * process group, so interactive commands behave as when run bare; without
 * one it gets a group of its own, so that stopping it after a fatal error
 * reaches every process it started.  It gets SIGTERM if memtunnel dies.
 *
 * The signals of SPEC §4 reach the child exactly once: forwarded, except
 * where the child already got them itself (SIGTERM on Heroku, terminal
 * signals while we share the terminal's foreground group).  One taken
 * before the child exists is held and forwarded as soon as the command
 * runs.  The fork happens with every signal blocked, so none runs
 * memtunnel's handlers in the new process; one sent to memtunnel's group
 * that reaches it there is dropped when memtunnel forwards that signal
 * anyway.  SIGCHLD reaps every child, orphans included when memtunnel is
 * PID 1.
 */
#ifndef MEMTUNNEL_CHILD_H
#define MEMTUNNEL_CHILD_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"

struct child;

/* Called once when the child has exited; code is its exit code or 128+S. */
typedef void (*child_exit_cb)(struct child *ch, int code, void *arg);

/*
 * Watch the signals of SPEC §4 and SIGCHLD on loop (before the child
 * exists, so that no exit is missed).  cfg must outlive the child.
 * Returns NULL when out of memory.
 */
struct child *child_new(uv_loop_t *loop, const struct config *cfg,
                        child_exit_cb cb, void *arg);

/*
 * Start argv (argv[0] searched in PATH) with envp.  Returns 0, or the
 * shell's status for a command that cannot run: 127 (not found) or 126
 * (not executable, or any other exec failure), with *err set to the errno
 * and one error line logged.
 */
int child_spawn(struct child *ch, char *const argv[], char *const envp[],
                int *err);

pid_t child_pid(const struct child *ch);

/* SIGTERM now, SIGKILL after grace_ms if it is still running. */
void child_terminate(struct child *ch, uint32_t grace_ms);

/* Stop forwarding and let the loop end: the watchers stay installed (a
 * late signal is ignored, not fatal) but no longer keep the loop alive. */
void child_release(struct child *ch);

/* Close the watchers and the timer (idempotent); child_free only after
 * the loop ran their close callbacks. */
void child_close(struct child *ch);
void child_free(struct child *ch);

/*
 * exec*() of argv in place of this process (MEMTUNNEL_ENABLED=false, or
 * nested), with the signal state memtunnel was started with: sigpipe is
 * SIGPIPE's inherited disposition, put back first (an ignored signal stays
 * ignored across exec); memtunnel changes no other disposition nor its mask
 * before this.  Returns only on failure, with SIGPIPE ignored again, 127 or
 * 126 and *err set.
 */
int child_exec(char *const argv[], const struct sigaction *sigpipe, int *err);

/* Pure: a wait(2) status as a shell reports it: N, or 128+S. */
int child_exit_code(int wait_status);

/*
 * Pure: should memtunnel pass `sig` on to the child?  tty_foreground says
 * whether memtunnel (and so the child) is in the terminal's foreground
 * process group, where the terminal delivers SIGINT, SIGQUIT and SIGWINCH
 * to the child itself.
 */
int child_forwards(int sig, enum config_switch forward_sigterm, int on_heroku,
                   int tty_foreground);

/* The signals that are watched and may be forwarded, 0-terminated. */
extern const int child_signals[];

#endif
