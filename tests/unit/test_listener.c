/*
 * listener_accept_error_kind: which accept errors pass, which shed, which
 * are fatal.
 */
#include <errno.h>

#include <uv.h>

#include "listener.h"
#include "suites.h"

static const struct {
    int err;
    enum listener_accept_kind kind;
} cases[] = {
    { UV_EMFILE, LISTENER_SHED },
    { UV_ENFILE, LISTENER_SHED },
    /* Linux accept(2): errors pending on the new connection, and a
     * firewall's refusal, are that connection's. */
    { UV_ENETDOWN, LISTENER_RETRY },
    { UV_EPROTO, LISTENER_RETRY },
    { UV_ENOPROTOOPT, LISTENER_RETRY },
    { UV_EHOSTDOWN, LISTENER_RETRY },
    { UV_ENONET, LISTENER_RETRY },
    { UV_EHOSTUNREACH, LISTENER_RETRY },
    { UV_ENOTSUP, LISTENER_RETRY },
    { -EOPNOTSUPP, LISTENER_RETRY },
    { UV_ENETUNREACH, LISTENER_RETRY },
    { UV_EPERM, LISTENER_RETRY },
    { UV_ECONNABORTED, LISTENER_RETRY },
    { UV_ETIMEDOUT, LISTENER_RETRY },
    { UV_ENOMEM, LISTENER_RETRY },
    { UV_ENOBUFS, LISTENER_RETRY },
    { UV_EINTR, LISTENER_RETRY },
    { UV_EAGAIN, LISTENER_RETRY },
    /* The listening socket itself is broken. */
    { UV_EBADF, LISTENER_FATAL },
    { UV_EINVAL, LISTENER_FATAL },
    { UV_ENOTSOCK, LISTENER_FATAL },
    { UV_EFAULT, LISTENER_FATAL },
    { UV_EOF, LISTENER_FATAL },
    { -99999, LISTENER_FATAL },
};

START_TEST(accept_error_kind)
{
    ck_assert_msg(listener_accept_error_kind(cases[_i].err) == cases[_i].kind,
                  "%s (%d): want kind %d", uv_err_name(cases[_i].err),
                  cases[_i].err, (int)cases[_i].kind);
}
END_TEST

Suite *listener_suite(void)
{
    Suite *s = suite_create("listener");
    TCase *tc = tcase_create("accept_errors");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, accept_error_kind, 0, sizeof cases / sizeof cases[0]);
    suite_add_tcase(s, tc);
    return s;
}
