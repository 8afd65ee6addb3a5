from django.core.management.base import BaseCommand, CommandError

from accounts.audit import verify_chain
from accounts.models import Organization


class Command(BaseCommand):
    help = "Verify the audit hash chain of every organization (or one, with --org)."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")

    def handle(self, *args, org=None, **options):
        organizations = Organization.objects.order_by("slug")
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"No organization with the slug {org!r}.")
        failures = 0
        for organization in organizations:
            report = verify_chain(organization)
            if report.ok:
                self.stdout.write(f"ok    {organization.slug}: {report.checked} events verified")
            else:
                failures += 1
                self.stderr.write(f"BAD   {organization.slug}: {report.problem}")
        if failures:
            raise CommandError(f"The audit chain is broken in {failures} organization(s).")
        self.stdout.write(self.style.SUCCESS("The audit chain is intact."))
