from django.conf import settings
from django.db import connection
from django.http import JsonResponse


class HealthMiddleware:
    """Answers GET /api/health before host validation (ALLOWED_HOSTS) and the other middleware:
    health checks come from the edge and the container itself with whatever Host header they use.
    Healthy = this process answers and the database does. First on every request: a dead
    persistent database connection is dropped (see below)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # What Django 4.1's CONN_HEALTH_CHECKS does (Debian's Django is 3.2): a persistent
        # connection (CONN_MAX_AGE) the server or the network closed meanwhile is replaced before
        # this request uses it, instead of failing the request. Seen in the cluster test: two
        # requests answered 503 "server closed the connection unexpectedly" after a leader crash.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        if request.path == "/api/health":
            try:
                with connection.cursor() as c:
                    c.execute("SELECT 1")
            except Exception as e:  # noqa: BLE001 - any database failure means unhealthy
                return JsonResponse({"ok": False, "version": settings.APP_VERSION, "error": str(e)[:200]}, status=503)
            return JsonResponse({"ok": True, "version": settings.APP_VERSION})
        return self.get_response(request)
