"""A one-view Django app whose cache client, pymemcache, cannot authenticate.

memtunnel logs in on every connection for it (MEMTUNNEL_AUTH, a config var:
memcachier on MemCachier, memcached for a memcached started with -Y) and
sets MEMCACHE_SERVERS to its local listeners (127.0.0.1:p1,127.0.0.1:p2,
one per server, in order) before it starts the app. So the settings below
name no credentials: with MEMTUNNEL_AUTH set, the app's environment holds
none. On MemCachier:

    heroku config:set MEMTUNNEL_AUTH=memcachier MEMTUNNEL_TLS_PORT=11219
"""
import os

SECRET_KEY = os.environ.get("SECRET_KEY", "example-only-set-SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "app.urls"
WSGI_APPLICATION = "app.wsgi.application"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": os.environ.get("MEMCACHE_SERVERS", "127.0.0.1:11211").split(","),
        "OPTIONS": {
            "no_delay": True,
            "connect_timeout": 2,
            "timeout": 2,
        },
    }
}
