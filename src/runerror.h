/*
 * run_error: a failure that is not the configuration's fault: out of
 * memory, a library that refuses what always works, a port that cannot be
 * had.  Reported as one error line (`at=`, `setting=` when one may help,
 * `reason=`) and exit EXIT_SOFTWARE.  Configuration errors are struct
 * config_error (config.h): they name the flag or variable at fault and
 * exit EXIT_USAGE or EXIT_CONFIG.
 */
#ifndef MEMTUNNEL_RUNERROR_H
#define MEMTUNNEL_RUNERROR_H

struct run_error {
    const char *at;          /* the line's at= ("listen-failed"); NULL: none */
    const char *setting;     /* a setting that can avoid it ("--listen"), or NULL */
    char msg[400];           /* one line, no newline */
};

#endif
