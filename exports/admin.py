from django.contrib import admin

from exports.models import Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "label",
        "status",
        "file_count",
        "zip_bytes",
        "requested_at",
    ]
    list_filter = ["status", "scope", "storage"]
    list_select_related = ["organization"]
    search_fields = ["label", "filename", "requested_by_label"]
    raw_id_fields = ["organization", "requested_by", "project", "batch"]
    readonly_fields = ["scope_key", "storage_key", "filename", "zip_bytes", "error"]
