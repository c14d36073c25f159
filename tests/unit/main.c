/*
 * The unit test runner: every suite, forked per test unless CK_FORK=no.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    srunner_add_suite(sr, child_suite());
    srunner_add_suite(sr, childenv_suite());
    srunner_add_suite(sr, certinfo_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, logfmt_suite());
    srunner_add_suite(sr, spin_suite());
    srunner_add_suite(sr, stats_suite());
    srunner_add_suite(sr, tlsconn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
