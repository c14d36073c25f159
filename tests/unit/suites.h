/* Every Check suite of the unit tests, one per module of src/. */
#ifndef MEMTUNNEL_TEST_SUITES_H
#define MEMTUNNEL_TEST_SUITES_H

#include <check.h>

Suite *advice_suite(void);
Suite *auth_suite(void);
Suite *buf_suite(void);
Suite *child_suite(void);
Suite *childenv_suite(void);
Suite *certinfo_suite(void);
Suite *config_suite(void);
Suite *ident_suite(void);
Suite *listener_suite(void);
Suite *logfmt_suite(void);
Suite *mcframe_suite(void);
Suite *reason_suite(void);
Suite *resume_suite(void);
Suite *spin_suite(void);
Suite *stats_suite(void);
Suite *tlsconn_suite(void);
Suite *upstream_suite(void);

#endif
