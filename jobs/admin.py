from django.contrib import admin

from jobs.models import Asset, Batch, Output, Project, RenderJob, Script, Tag


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "created_at"]
    list_select_related = ["organization"]
    search_fields = ["name"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "organization"]
    list_select_related = ["organization"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["original_name", "kind", "organization", "duration", "bytes", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["organization"]
    search_fields = ["original_name", "sha256"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Script)
class ScriptAdmin(admin.ModelAdmin):
    list_display = ["__str__", "voice", "organization", "audio", "created_at"]
    list_select_related = ["organization", "audio"]
    search_fields = ["text"]
    raw_id_fields = ["organization", "audio", "created_by"]


class RenderJobInline(admin.TabularInline):
    model = RenderJob
    extra = 0
    fields = [
        "avatar", "audio", "script", "output_name", "status", "frames_done", "frames_total",
        "attempts", "error",
    ]  # fmt: skip
    readonly_fields = fields
    can_delete = False


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "engine", "created_at"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "created_by"]
    inlines = [RenderJobInline]


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "status", "attempts", "worker_host", "device", "queued_at"]
    list_filter = ["status", "engine"]
    list_select_related = ["batch"]
    raw_id_fields = ["batch", "avatar", "audio", "script"]


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["name", "job", "bytes", "duration", "created_at"]
    list_select_related = ["job"]
    raw_id_fields = ["job"]
    readonly_fields = ["sha256", "crc32", "bytes"]
