"""The workers' links (core/links.py) are exactly what the URLconf reverses."""

import pytest
from django.urls import reverse

from core import links


@pytest.mark.parametrize("slug", ["acme", "rival-films-2"])
def test_links_match_the_urlconf(slug):
    assert links.batch_page(slug, 7) == reverse("jobs:batch", args=[slug, 7])
    assert links.export_page(slug, 8) == reverse("exports:detail", args=[slug, 8])
    assert links.export_download_api(slug, 9) == reverse("api:export-download", args=[slug, 9])
    assert links.notifications_page(slug) == reverse("accounts:notifications", args=[slug])


@pytest.mark.parametrize("site", ["https://studio.example.com", "https://studio.example.com/"])
def test_absolute_joins_the_site_and_a_path_once(settings, site):
    settings.SITE_URL = site
    assert links.absolute("/o/acme/") == "https://studio.example.com/o/acme/"
    assert links.absolute("o/acme/") == "https://studio.example.com/o/acme/"
    assert links.absolute("https://elsewhere.example/x") == "https://elsewhere.example/x"
    assert links.absolute("") == ""
