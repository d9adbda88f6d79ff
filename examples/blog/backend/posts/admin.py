from django.contrib import admin

from .models import BeatRun, Post, ReleaseRun


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "created", "word_count")
    search_fields = ("title", "body")
    readonly_fields = ("word_count", "summary", "created")


@admin.register(BeatRun)
class BeatRunAdmin(admin.ModelAdmin):
    list_display = ("id", "at")


@admin.register(ReleaseRun)
class ReleaseRunAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "at")
