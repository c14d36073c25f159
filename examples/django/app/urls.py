from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path


def hits(request):
    """Count requests in the cache: every hit is a get and a set upstream."""
    cache.add("hits", 0, timeout=None)
    return HttpResponse("hits=%d\n" % cache.incr("hits"), content_type="text/plain")


urlpatterns = [path("", hits)]
