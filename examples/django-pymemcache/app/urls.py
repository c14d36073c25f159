from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path


def hits(request):
    """Count requests in the cache, then store a value and read it back:
    the page shows what came back through the tunnel."""
    cache.add("hits", 0, timeout=None)
    n = cache.incr("hits")
    cache.set("last", "visit %d" % n, timeout=300)
    return HttpResponse("hits=%d\nlast=%s\n" % (n, cache.get("last")), content_type="text/plain")


urlpatterns = [path("", hits)]
