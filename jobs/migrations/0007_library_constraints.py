"""One library entry per content and kind (deleted entries aside), and one number per job in
its batch. Apart from 0006, whose data changes must be committed first (PostgreSQL does not
alter a table with foreign-key checks still pending)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_library_and_job_numbers"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="asset",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deleted_at__isnull", True)),
                fields=("organization", "kind", "sha256"),
                name="uniq_asset_content",
            ),
        ),
        migrations.AddConstraint(
            model_name="renderjob",
            constraint=models.UniqueConstraint(
                fields=("batch", "number"), name="uniq_job_number"
            ),
        ),
    ]
