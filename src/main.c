/*
 * main: mode dispatch and exit codes.  The only file that exits.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/cpuid.h>

#include "buf.h"
#include "check_mode.h"
#include "child.h"
#include "childenv.h"
#include "config.h"
#include "exitcode.h"
#include "log.h"
#include "tls.h"
#include "tlsconn.h"
#include "tunnel.h"

#ifndef MEMTUNNEL_VERSION
#define MEMTUNNEL_VERSION "0.0.0"
#endif

/* How long the exit waits for a stalled log reader. */
#define LOG_STOP_MS 2000

extern char **environ;

/* --help: this, then every row of the option table, then usage_tail. */
static const char usage_head[] =
"usage: memtunnel [OPTIONS] [--] COMMAND [ARG...]   wrap COMMAND\n"
"       memtunnel [OPTIONS]                         tunnel only, until Ctrl-C\n"
"       memtunnel check [OPTIONS] [--json]          diagnose every upstream\n"
"       memtunnel --help | --version\n"
"\n"
"Opens one local plaintext listener per memcached node and tunnels each\n"
"connection over verified TLS to its node.\n"
"\n"
"Options and the variables that set them too (a flag wins over its variable;\n"
"a variable set to the empty string counts as unset):\n";

static const char usage_tail[] =
"\n"
"The command's environment gets neither the inline MEMTUNNEL_CA, _CERT, _KEY\n"
"nor MEMTUNNEL_USERNAME, _PASSWORD, and gets MEMTUNNEL_ACTIVE=1.\n"
"\n"
"In tunnel-only mode memtunnel prints MEMCACHE_SERVERS=... on stdout once it\n"
"listens.  Exit codes: the command's (wrapper mode), 128+S when it was killed\n"
"by signal S, 126/127 when it cannot be run, 64 usage, 69 check found an\n"
"upstream failing, 70 tunnel failure, 78 configuration.\n"
"\n"
"memtunnel check connects to every upstream as the tunnel would and prints\n"
"the address, times, TLS version and suite, session resumption, the\n"
"certificate chain, the verdict with what to set when it fails, and a\n"
"memcache round trip, with a SASL login when the node's credentials are set.\n"
"A node gets only the pair beside the variable its address came from\n"
"(MEMCACHIER_SERVERS: MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD; likewise\n"
"MEMCACHEDCLOUD_ and MEMCACHE_), or MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD,\n"
"which override it and are the only pair for --servers and MEMTUNNEL_SERVERS.\n"
"No credential goes to a server that was not verified (--verify none).\n";

#define HELP_WIDTH 79
#define HELP_INDENT 8

/* text as lines of at most HELP_WIDTH columns, each indented; a word
 * longer than a line gets a line of its own. */
static void print_wrapped(FILE *out, const char *text)
{
    size_t col = 0;

    while (*text != '\0') {
        size_t word = strcspn(text, " ");

        if (col > 0 && col + 1 + word > HELP_WIDTH) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0)
            col = (size_t)fprintf(out, "%*s", HELP_INDENT, "");
        else
            col += (size_t)fprintf(out, " ");
        col += fwrite(text, 1, word, out);
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

/* --help, its option lines made from the option table. */
static void print_help(FILE *out)
{
    char head[128], text[1024];

    fputs(usage_head, out);
    for (size_t i = 0; i < config_nopts; i++) {
        fprintf(out, "  %s\n", config_opt_head(&config_opts[i], head,
                                               sizeof(head)));
        print_wrapped(out, config_opt_describe(&config_opts[i], text,
                                               sizeof(text)));
    }
    fputs(usage_tail, out);
}

/* Which AES the linked wolfSSL uses: Debian's library has no AES-NI code
 * (~30x slower AES-GCM); the buildpack's static build does. */
static const char *aes_impl(void)
{
#if defined(WOLFSSL_AESNI)
    return IS_INTEL_AESNI(cpuid_get_flags()) ? "AES-NI" : "AES in software";
#elif defined(WOLFSSL_ARMASM)
    return "ARMv8 crypto extensions";
#else
    return "AES in software";
#endif
}

/* A configuration error: the setting at fault; exit EXIT_USAGE or
 * EXIT_CONFIG (err->status). */
static void report(const struct config_error *err)
{
    log_event(LOG_ERROR, err->status == EXIT_USAGE ? "usage-error"
                                                   : "config-error",
              "setting", err->name[0] ? err->name : NULL,
              "reason", err->msg, NULL);
}

/* Any other failure before the tunnel runs: exit EXIT_SOFTWARE. */
static int report_fault(const struct run_error *fault)
{
    log_event(LOG_ERROR, fault->at, "setting", fault->setting,
              "reason", fault->msg, NULL);
    return EXIT_SOFTWARE;
}

/* Everything one run of the tunnel (and its child, when wrapping) owns. */
struct app {
    uv_loop_t loop;
    const struct config *cfg;
    struct tunnel *tunnel;
    struct child *child;           /* NULL in tunnel-only mode */
    uv_signal_t sigint, sigterm;   /* tunnel-only mode: stop on these */
    uv_timer_t fault;              /* MEMTUNNEL_TEST_FATAL_AFTER */
    int have_fault;
    int have_signals;              /* sigint and sigterm were initialised */
    int stopping;
    int status;
    int fatal;
};

/* Close what keeps the loop alive besides the tunnel's connections. */
/*
 * Stop serving: connections may finish (bounded by --connect-timeout) and
 * the loop then runs dry.  The signal watchers stay installed but stop
 * holding the loop, so that a signal during the drain is ignored instead
 * of killing memtunnel with the child's status unreported; they are
 * closed once the loop is done.
 */
static void stop(struct app *app, int status)
{
    if (app->stopping)
        return;
    app->stopping = 1;
    app->status = status;
    tunnel_close(app->tunnel, app->cfg->connect_timeout_ms);
    if (app->child) {
        child_release(app->child);
    } else {
        uv_unref((uv_handle_t *)&app->sigint);
        uv_unref((uv_handle_t *)&app->sigterm);
    }
    if (app->have_fault && !uv_is_closing((uv_handle_t *)&app->fault))
        uv_close((uv_handle_t *)&app->fault, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->stopping)
        return;
    log_event(LOG_INFO, "stopping", "signal", strsignal(signum), NULL);
    stop(app, 0);
}

static void on_child_exit(struct child *ch, int code, void *arg)
{
    struct app *app = arg;
    (void)ch;
    stop(app, app->fatal ? EXIT_SOFTWARE : code);
}

/*
 * The process-fatal path (SPEC §4): the tunnel has logged why; stop the
 * child (SIGTERM, SIGKILL after --grace) and exit 70 once it is gone.
 */
static void on_fatal(void *arg, const char *reason)
{
    struct app *app = arg;
    (void)reason;
    app->fatal = 1;
    if (app->child)
        child_terminate(app->child, app->cfg->grace_ms);
    else
        stop(app, EXIT_SOFTWARE);
}

static void on_fault(uv_timer_t *t)
{
    struct app *app = t->data;
    tunnel_fatal(app->tunnel, "failure injected by MEMTUNNEL_TEST_FATAL_AFTER");
}

/*
 * MEMTUNNEL_TEST_FATAL_AFTER=SECONDS makes the tunnel fail that long after
 * start, so that tests can prove the fatal path (child stopped, exit 70)
 * without breaking a real socket.  Not for production use.
 */
static void arm_fault(struct app *app)
{
    const char *v = getenv("MEMTUNNEL_TEST_FATAL_AFTER");
    char *end;
    double secs;

    if (v == NULL || *v == '\0')
        return;
    secs = strtod(v, &end);
    if (*end != '\0' || secs < 0 || secs > 3600)
        return;
    uv_timer_init(&app->loop, &app->fault);
    app->fault.data = app;
    uv_timer_start(&app->fault, on_fault, (uint64_t)(secs * 1000), 0);
    app->have_fault = 1;
}

/* The listener lists for the child's environment, one per source. */
static int start_child(struct app *app, char *const envp[])
{
    const struct config *cfg = app->cfg;
    const char *lists[cfg->nsources ? cfg->nsources : 1];
    char *bufs[cfg->nsources ? cfg->nsources : 1];
    struct childenv ce;
    int err = 0, status = 0;

    memset(bufs, 0, sizeof bufs);
    for (size_t k = 0; k < cfg->nsources; k++) {
        size_t len = cfg->sources[k].count * (CONFIG_HOST_MAX + 10) + 1;
        if ((bufs[k] = malloc(len)) == NULL) {
            status = EXIT_SOFTWARE;
            goto out;
        }
        tunnel_addresses(app->tunnel, cfg->sources[k].first,
                         cfg->sources[k].count, bufs[k], len);
        lists[k] = bufs[k];
    }
    if (childenv_build(&ce, envp, cfg->sources, cfg->nsources, lists,
                       cfg->auth != CONFIG_AUTH_NONE) < 0) {
        status = EXIT_SOFTWARE;
        goto out;
    }
    app->child = child_new(&app->loop, cfg, on_child_exit, app);
    if (app->child == NULL)
        status = EXIT_SOFTWARE;
    else
        status = child_spawn(app->child, cfg->command, ce.envp, &err);
    childenv_free(&ce);
out:
    for (size_t k = 0; k < cfg->nsources; k++)
        free(bufs[k]);
    if (status == EXIT_SOFTWARE)
        log_event(LOG_ERROR, "out-of-memory", "reason", "starting the command",
                  NULL);
    return status;
}

/*
 * memtunnel holds the client key and, in its buffers, the app's plaintext:
 * unless MEMTUNNEL_DUMPABLE asks for cores (debugging), it is not
 * dumpable, so it leaves no core and other users cannot read its
 * /proc/PID/environ or attach to it.  The child regains the default at
 * exec, so the app is unaffected.
 */
static void set_dumpable(const struct config *cfg)
{
    char reason[64];

    if (cfg->dumpable || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
        return;
    snprintf(reason, sizeof reason, "PR_SET_DUMPABLE: %s", strerror(errno));
    log_event(LOG_WARN, "prctl-failed", "reason", reason, NULL);
}

/*
 * The inline key's text lives in the environment block (cfg->key_pem
 * points into it), where /proc/PID/environ and a core would show it for as
 * long as memtunnel runs.  Once the TLS context holds the key, wipe the
 * text and forget the pointer: nothing reads it again.
 */
static void forget_inline_key(struct config *cfg)
{
    if (cfg->key_pem == NULL)
        return;
    explicit_bzero((char *)cfg->key_pem, strlen(cfg->key_pem));
    cfg->key_pem = NULL;
}

/*
 * Every tunnelled connection costs two descriptors; the usual soft limit
 * of 1024 would cap memtunnel at ~500 connections.  Raise it to the hard
 * limit (as servers such as nginx and redis do) and say what it is.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    char n[24];

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        snprintf(n, sizeof n, "unlimited");
    else
        snprintf(n, sizeof n, "%llu", (unsigned long long)rl.rlim_cur);
    log_event(LOG_INFO, "fd-limit", "limit", n, NULL);
}

/*
 * Tunnel-only and wrapper mode: listen on every address, then either print
 * the address list and serve until a signal, or start the child and serve
 * until it exits.
 */
static int run(const struct config *cfg, struct tls_ctx *tls, char *const envp[])
{
    struct app app;
    struct run_error err;
    char list[4096];

    memset(&app, 0, sizeof app);
    memset(&err, 0, sizeof err);
    app.cfg = cfg;
    if (uv_loop_init(&app.loop) < 0) {
        log_event(LOG_ERROR, "loop-failed", NULL);
        return EXIT_SOFTWARE;
    }
    app.tunnel = tunnel_new(&app.loop, cfg, tls);
    if (app.tunnel == NULL) {
        log_event(LOG_ERROR, "out-of-memory", NULL);
        uv_loop_close(&app.loop);
        return EXIT_SOFTWARE;
    }
    tunnel_on_fatal(app.tunnel, on_fatal, &app);
    /* From here on a stalled reader of stderr must not stall the tunnel. */
    log_start(STDERR_FILENO, LOG_QUEUE_BYTES);
    if (tunnel_listen(app.tunnel, &err) < 0) {
        app.status = report_fault(&err);
        tunnel_close(app.tunnel, 0);
        goto out;
    }

    if (cfg->mode == CONFIG_MODE_WRAP) {
        int status = start_child(&app, envp);
        if (status != 0) {
            stop(&app, status);
            goto out;
        }
        /* After the spawn: the app keeps the limits it was given. */
        raise_fd_limit();
    } else {
        raise_fd_limit();
        tunnel_addresses(app.tunnel, 0, cfg->nservers, list, sizeof list);
        printf("MEMCACHE_SERVERS=%s\n", list);
        fflush(stdout);
        uv_signal_init(&app.loop, &app.sigint);
        uv_signal_init(&app.loop, &app.sigterm);
        app.have_signals = 1;
        app.sigint.data = app.sigterm.data = &app;
        uv_signal_start(&app.sigint, on_stop_signal, SIGINT);
        uv_signal_start(&app.sigterm, on_stop_signal, SIGTERM);
    }
    arm_fault(&app);
out:
    uv_run(&app.loop, UV_RUN_DEFAULT);
    /* Only the unreferenced signal watchers are left; close them. */
    if (app.child)
        child_close(app.child);
    if (app.have_signals) {
        uv_close((uv_handle_t *)&app.sigint, NULL);
        uv_close((uv_handle_t *)&app.sigterm, NULL);
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);
    tunnel_free(app.tunnel);
    child_free(app.child);
    if (uv_loop_close(&app.loop) != 0) {
        /* Only reachable if a handle was left open: a bug. */
        log_event(LOG_ERROR, "loop-failed", "reason", "handles left open", NULL);
        if (app.status == 0)
            app.status = EXIT_SOFTWARE;
    }
    /* The last lines (child-exited, stats) go out, unless the reader has
     * stalled: then exit anyway, a little later. */
    log_stop(LOG_STOP_MS);
    return app.status;
}

int main(int argc, char *argv[])
{
    struct config cfg;
    struct config_error err;
    struct sigaction ignore, sigpipe;
    sigset_t none;
    int status;

    /* libuv does not suppress SIGPIPE; a write to a reset socket must fail
     * with EPIPE, not kill the tunnel.  The inherited disposition is kept
     * for exec mode, whose command must get it unchanged. */
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &sigpipe);

    memset(&err, 0, sizeof err);
    if (config_parse(&cfg, argc, argv, environ, &err) < 0) {
        report(&err);
        return err.status;
    }
    switch (cfg.mode) {
    case CONFIG_MODE_HELP:
        print_help(stdout);
        config_free(&cfg);
        return 0;
    case CONFIG_MODE_VERSION:
        printf("memtunnel %s (wolfSSL %s, %s; libuv %s)\n", MEMTUNNEL_VERSION,
               LIBWOLFSSL_VERSION_STRING, aes_impl(), uv_version_string());
        config_free(&cfg);
        return 0;
    case CONFIG_MODE_EXEC: {
        /* Disabled, or already inside a memtunnel: become the command. */
        int e;
        status = child_exec(cfg.command, &sigpipe, &e);
        config_free(&cfg);
        return status;
    }
    case CONFIG_MODE_TUNNEL:
    case CONFIG_MODE_WRAP:
    case CONFIG_MODE_CHECK:
        break;
    }
    /* The tunnel watches SIGCHLD and the signals it forwards or stops on:
     * a mask inherited from the caller would hide them (the child gets an
     * empty one of its own). */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    log_set_level((enum log_level)cfg.log_level);
    set_dumpable(&cfg);

    if (tls_global_init() < 0) {
        log_event(LOG_ERROR, "tls-failed", "reason", "cannot initialise wolfSSL",
                  NULL);
        config_free(&cfg);
        return EXIT_SOFTWARE;
    }
    struct run_error fault = { 0 };
    struct tls_ctx *tls = tls_ctx_new(&cfg, &err, &fault);
    forget_inline_key(&cfg);
    if (tls == NULL && fault.at) {
        status = report_fault(&fault);
    } else if (tls == NULL) {
        report(&err);
        status = err.status;
    } else {
        tlsconn_setup_ctx(tls);
        if (cfg.verify == CONFIG_VERIFY_NONE)
            log_event(LOG_WARN, "verify-disabled", "reason", "--verify none: "
                      "upstream certificates are not checked; anyone on the "
                      "path can read and change the traffic", NULL);
        if (cfg.mode == CONFIG_MODE_CHECK)
            status = check_run(&cfg, tls, cfg.json, stdout);
        else
            status = run(&cfg, tls, environ);
        tls_ctx_free(tls);
    }
    tls_global_cleanup();
    buf_pool_drain();
    config_free(&cfg);
    return status;
}
