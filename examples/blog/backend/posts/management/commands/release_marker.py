from django.conf import settings
from django.core.management.base import BaseCommand

from posts.models import ReleaseRun


class Command(BaseCommand):
    help = "Records that the release phase ran (one row per run, with APP_VERSION)."

    def handle(self, *args, **options):
        ReleaseRun.objects.create(version=settings.APP_VERSION)
        self.stdout.write(f"release phase of {settings.APP_VERSION}: {ReleaseRun.objects.count()} runs so far")
