"""The JSON API (contract: examples/blog/API.md). Token authentication, no sessions or CSRF."""

import json

from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import BeatRun, Post, ReleaseRun, Token
from .tasks import analyse_post


def error(status, message):
    return JsonResponse({"error": message}, status=status)


def token_user(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    kind, _, key = header.partition(" ")
    if kind != "Token" or not key:
        return None
    t = Token.objects.select_related("user").filter(key=key.strip()).first()
    return t.user if t and t.user.is_active else None


@csrf_exempt
def login(request):
    if request.method != "POST":
        return error(405, "use POST")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return error(400, "the body is not JSON")
    user = authenticate(request, username=data.get("username", ""), password=data.get("password", ""))
    if user is None:
        return error(401, "wrong username or password")
    return JsonResponse({"token": Token.issue(user).key, "username": user.username})


def me(request):
    user = token_user(request)
    if user is None:
        return error(401, "log in first")
    return JsonResponse({"username": user.username})


@csrf_exempt
def posts(request):
    if request.method == "GET":
        items = Post.objects.select_related("author")[:100]
        return JsonResponse([p.as_json() for p in items], safe=False)
    if request.method != "POST":
        return error(405, "use GET or POST")
    user = token_user(request)
    if user is None:
        return error(401, "log in first")
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return error(400, "the body is not JSON")
        image = None
    else:
        data = request.POST
        image = request.FILES.get("image")
    title = (data.get("title") or "").strip()
    if not title:
        return error(400, "a title is required")
    post = Post(title=title[:200], body=data.get("body") or "", author=user)
    if image is not None:
        post.image = image
    post.save()
    analyse_post.delay(post.id)
    return JsonResponse(post.as_json(detail=True), status=201)


def post_detail(request, post_id):
    post = Post.objects.select_related("author").filter(id=post_id).first()
    if post is None:
        return error(404, "no such post")
    return JsonResponse(post.as_json(detail=True))


def stats(request):
    last = BeatRun.objects.order_by("-at").first()
    return JsonResponse(
        {
            "posts": Post.objects.count(),
            "beat_runs": BeatRun.objects.count(),
            "last_beat": last.at.isoformat() if last else None,
            "release_runs": ReleaseRun.objects.count(),
        }
    )
