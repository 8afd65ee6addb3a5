"""Queue entry points: load by id, call a service. Nothing else lives here."""

from jobs import services


def render_job(job_id: int) -> str:
    return services.render_job_run(job_id=job_id)


def reap_stale_jobs() -> int:
    return services.reap_stale_jobs()
