from django.urls import path

from . import views

urlpatterns = [
    path("login", views.login),
    path("me", views.me),
    path("posts", views.posts),
    path("posts/<int:post_id>", views.post_detail),
    path("stats", views.stats),
]
