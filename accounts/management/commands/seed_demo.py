import os

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.services import organization_create

DEMO_EMAIL = "demo@heygem.local"
DEMO_ORG_SLUG = "demo"


class Command(BaseCommand):
    help = "Create the demo organization and its owner (idempotent) and print the credentials."

    @transaction.atomic
    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "heygem-demo")
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(DEMO_EMAIL, password, full_name="Demo Owner")
        organization = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
        if organization is None:
            organization = organization_create(user=user, name="Demo Studio", slug=DEMO_ORG_SLUG)
        elif not Membership.objects.filter(user=user, organization=organization).exists():
            self.stderr.write(f"{DEMO_ORG_SLUG!r} exists without the demo user; left as it is.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo login: {DEMO_EMAIL} / {password}  (organization “{organization.name}”)"
            )
        )
