"""The workers' links (heygem_site/links.py) are exactly what the URLconf reverses."""

import pytest
from django.urls import reverse

from heygem_site import links


@pytest.mark.parametrize("slug", ["acme", "rival-films-2"])
def test_links_match_the_urlconf(slug):
    assert links.batch_page(slug, 7) == reverse("jobs:batch", args=[slug, 7])
    assert links.export_page(slug, 8) == reverse("exports:detail", args=[slug, 8])
    assert links.export_download_api(slug, 9) == reverse("api:export-download", args=[slug, 9])
    assert links.notifications_page(slug) == reverse("accounts:notifications", args=[slug])
