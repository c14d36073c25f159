"""A one-view Django app whose cache is MemCachier, reached through memtunnel.

memtunnel rewrites MEMCACHIER_SERVERS to its local listeners
(127.0.0.1:p1,127.0.0.1:p2, one per server, in order) before it starts the
app, so these settings are the ones MemCachier documents for plaintext.
The SASL login runs inside the tunnel.
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

_options = {
    "binary": True,  # SASL needs the binary protocol
    "behaviors": {
        "tcp_nodelay": True,
        "ketama": True,  # consistent hashing over the node list
        "remove_failed": 4,
        "retry_timeout": 2,
        "dead_timeout": 10,
    },
}
if os.environ.get("MEMCACHIER_USERNAME"):
    _options["username"] = os.environ["MEMCACHIER_USERNAME"]
    _options["password"] = os.environ.get("MEMCACHIER_PASSWORD", "")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
        "LOCATION": os.environ.get("MEMCACHIER_SERVERS", "127.0.0.1:11211").split(","),
        "OPTIONS": _options,
    }
}
