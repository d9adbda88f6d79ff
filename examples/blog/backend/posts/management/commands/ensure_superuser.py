import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Creates the superuser DJANGO_SUPERUSER_USERNAME (password from DJANGO_SUPERUSER_PASSWORD or the " \
        "file in DJANGO_SUPERUSER_PASSWORD_FILE) when it does not exist; does nothing otherwise."

    def handle(self, *args, **options):
        name = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        if not name:
            self.stdout.write("DJANGO_SUPERUSER_USERNAME not set: no superuser made")
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        path = os.environ.get("DJANGO_SUPERUSER_PASSWORD_FILE")
        if path:
            with open(path) as f:
                password = f.read().strip()
        User = get_user_model()
        if User.objects.filter(username=name).exists():
            self.stdout.write(f"superuser {name} exists")
            return
        User.objects.create_superuser(name, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password)
        self.stdout.write(f"superuser {name} created")
