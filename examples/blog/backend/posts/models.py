import binascii
import os

from django.conf import settings
from django.db import models


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")
    image = models.ImageField(upload_to="posts/", blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # Filled by the Celery task posts.tasks.analyse_post after the post is created.
    word_count = models.PositiveIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return self.title

    def as_json(self, detail=False):
        d = {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "author": self.author.username,
            "created": self.created.isoformat(),
            "image_url": self.image.url if self.image else None,
            "word_count": self.word_count,
        }
        if detail:
            d["summary"] = self.summary
        return d


class Token(models.Model):
    """One API token per user (`Authorization: Token <key>`)."""

    key = models.CharField(max_length=40, primary_key=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    created = models.DateTimeField(auto_now_add=True)

    @classmethod
    def issue(cls, user):
        cls.objects.filter(user=user).delete()
        return cls.objects.create(user=user, key=binascii.hexlify(os.urandom(20)).decode())

    def __str__(self):
        return f"token of {self.user}"


class BeatRun(models.Model):
    """One row per run of the periodic beat task (posts.tasks.beat_tick)."""

    at = models.DateTimeField(auto_now_add=True)


class ReleaseRun(models.Model):
    """One row per run of `manage.py release_marker` in the release phase: shows that the release
    commands ran once per release."""

    version = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True)
