from django.apps import AppConfig


class HeygemSiteConfig(AppConfig):
    name = "heygem_site"
    verbose_name = "HeyGem Studio site"

    def ready(self) -> None:
        from heygem_site import checks  # noqa: F401  (registers the system checks)
