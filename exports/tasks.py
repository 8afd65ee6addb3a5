"""Queue entry points for exports: load by id, call a service."""

from exports import services


def build_export(export_id: int) -> str:
    return services.build_export(export_id=export_id)


def dispatch_waiting() -> int:
    return services.dispatch_waiting()


def expire_exports() -> int:
    return services.expire_exports()
