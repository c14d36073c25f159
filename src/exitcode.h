/*
 * exitcode: memtunnel's exit statuses, in one place (SPEC §2; README "Exit
 * codes").  The numbers are sysexits(3)'s and the shell's.
 *
 *   the child's    wrapper mode: the child exited normally
 *   128+S          the child was killed by signal S (EXIT_SIGNAL + S)
 *   126            the command cannot be executed
 *   127            the command was not found
 *   64             usage error (the shape of the command line)
 *   69             memtunnel check: an upstream failed
 *   70             fatal tunnel error (a listener failed), internal error
 *   78             configuration error (a value is wrong)
 */
#ifndef MEMTUNNEL_EXITCODE_H
#define MEMTUNNEL_EXITCODE_H

#define EXIT_USAGE 64           /* sysexits EX_USAGE */
#define EXIT_UNAVAILABLE 69     /* sysexits EX_UNAVAILABLE */
#define EXIT_SOFTWARE 70        /* sysexits EXIT_SOFTWARE */
#define EXIT_CONFIG 78          /* sysexits EX_CONFIG */
#define EXIT_NOEXEC 126         /* shell: found but cannot be executed */
#define EXIT_NOTFOUND 127       /* shell: command not found */
#define EXIT_SIGNAL 128         /* shell: 128+S for a child killed by S */

#endif
