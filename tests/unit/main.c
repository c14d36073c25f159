/*
 * The unit test runner: every suite, forked per test unless CK_FORK=no.
 * `unit_tests NAME...` runs only the suites named; `unit_tests --list`
 * prints their names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
    { "buf", buf_suite },           { "child", child_suite },
    { "childenv", childenv_suite }, { "certinfo", certinfo_suite },
    { "config", config_suite },     { "ident", ident_suite },
    { "listener", listener_suite }, { "logfmt", logfmt_suite },
    { "spin", spin_suite },         { "stats", stats_suite },
    { "resume", resume_suite },     { "tlsconn", tlsconn_suite },
    { "upstream", upstream_suite }, { "reason", reason_suite },
    { "advice", advice_suite },     { "auth", auth_suite },
    { "mcframe", mcframe_suite },
};
#define NSUITES (sizeof suites / sizeof suites[0])

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NSUITES; i++)
            printf("%s\n", suites[i].name);
        return EXIT_SUCCESS;
    }
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; argc < 2 && i < NSUITES; i++)
        srunner_add_suite(sr, suites[i].make());
    for (int a = 1; a < argc; a++) {
        size_t i = 0;
        while (i < NSUITES && strcmp(argv[a], suites[i].name) != 0)
            i++;
        if (i == NSUITES) {
            fprintf(stderr, "unit_tests: no suite named \"%s\" (--list shows them)\n", argv[a]);
            srunner_free(sr);
            return 2;
        }
        srunner_add_suite(sr, suites[i].make());
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
