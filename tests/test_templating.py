"""The Jinja2 environment of the pages keeps the meaning the pages had under Django's language."""

import datetime as dt
import re

import pytest
from django.contrib.staticfiles import finders
from django.template import defaultfilters, engines
from django.utils import timezone

from heygem_site import templating
from tests.factories import MembershipFactory


def render(source: str, **context) -> str:
    return engines["jinja2"].from_string(source).render(context)


@pytest.mark.parametrize("fmt", ["Y-m-d", "Y-m-d H:i", "Y-m-d H:i:s"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_isodate_is_djangos_date_filter_in_the_current_time_zone(settings, fmt, zone):
    settings.TIME_ZONE = zone
    moment = dt.datetime(2026, 1, 31, 23, 59, 58, tzinfo=dt.UTC)
    with timezone.override(zone):
        shown = defaultfilters.date(timezone.localtime(moment), fmt)
        # The shown local time, labelled: the UTC instant and the zone it is shown in.
        expected = f'<time datetime="2026-01-31T23:59:58Z" title="{zone}">{shown}</time>'
        assert templating.isodate(moment, fmt) == expected
        assert render("{{ m|isodate(f) }}", m=moment, f=fmt) == expected
        assert render("{{ m|date(f) }}", m=moment, f=fmt) == expected
        expected = shown
    if zone == "Asia/Shanghai":
        assert expected.startswith("2026-02-01")  # the local day, not the UTC one


def test_isodate_hands_other_formats_and_values_to_django():
    day = dt.date(2026, 3, 4)
    assert templating.isodate(day, "Y-m-d") == "2026-03-04"
    assert templating.isodate(None, "Y-m-d") == ""
    moment = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
    with timezone.override("UTC"):
        assert templating.isodate(moment, "N j, Y") == (
            '<time datetime="2026-03-04T05:06:00Z" title="UTC">March 4, 2026</time>'
        )
    naive = dt.datetime(2026, 3, 4, 5, 6)
    assert templating.isodate(naive, "Y-m-d H:i") == "2026-03-04 05:06"  # no zone to name


def test_default_takes_over_any_false_value_as_in_django():
    for value in (None, "", 0, [], False):
        assert render('{{ v|default("—") }}', v=value) == "—"
    assert render('{{ missing|default("—") }}') == "—"
    assert render('{{ v|default("—") }}', v="x") == "x"
    assert render('{{ v|default_if_none("—") }}', v=0) == "0"
    assert render('{{ v|default_if_none("—") }}', v=None) == "—"


def test_missing_values_and_their_attributes_are_empty():
    assert render("[{{ nothing.organization.slug }}]") == "[]"
    assert render("{% if nothing.organization %}yes{% else %}no{% endif %}") == "no"


def test_html_pages_escape_and_text_mails_do_not():
    dangerous = "<b>O'Brien & co</b>"
    html = engines["jinja2"].env.from_string("{{ v }}")  # strings: escaped
    assert html.render(v=dangerous) == "&lt;b&gt;O&#39;Brien &amp; co&lt;/b&gt;"
    env = engines["jinja2"].env
    assert env.autoescape("page.html") is True
    assert env.autoescape("emails/notification.txt") is False


@pytest.mark.django_db
def test_can_reads_the_permission_table():
    owner = MembershipFactory(role="owner")
    viewer = MembershipFactory(role="viewer")
    source = '{{ m|can("member.invite") }}'
    assert render(source, m=owner) == "True"
    assert render(source, m=viewer) == "False"
    assert render(source, m=None) == "False"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "page"),
    [("members/invite/", "members/"), ("tokens/new/", "tokens/"), ("projects/new/", "projects/")],
)
def test_post_only_addresses_send_a_get_to_the_page_with_the_form(client, address, page):
    owner = MembershipFactory(role="owner")
    client.force_login(owner.user)
    slug = owner.organization.slug
    response = client.get(f"/o/{slug}/{address}")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{slug}/{page}"


@pytest.mark.django_db
def test_pages_name_an_icon_that_exists(client, settings):
    """Without one, browsers ask for /favicon.ico on every page view: a 404 and a log line."""
    html = client.get("/login/").content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', html)
    assert href, "no icon link in the page head"
    assert href[1].startswith(settings.STATIC_URL)
    assert finders.find(href[1].removeprefix(settings.STATIC_URL))


@pytest.mark.django_db
def test_a_page_masks_its_csrf_token_once_for_all_its_forms(client):
    """Every form of a page carries the same masked token: it is built once per page, not
    once per form (32 system-random draws each, a quarter of the members page's time)."""
    owner = MembershipFactory(role="owner")
    for _ in range(3):
        MembershipFactory(organization=owner.organization, role="member")
    client.force_login(owner.user)
    html = client.get(f"/o/{owner.organization.slug}/members/").content.decode()
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert len(tokens) >= 7  # log out, a role and a remove form per member, the invitation
    assert len(set(tokens)) == 1
