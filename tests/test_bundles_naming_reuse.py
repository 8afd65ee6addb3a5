"""Bundles named after what they hold; a ready bundle with the same videos handed out again
instead of a rebuild (pages, API, audit); the Bundles list's download and expiry columns."""

from __future__ import annotations

import datetime as dt
import re
from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone, translation

from accounts import services as account_services
from accounts.audit import verify_chain
from accounts.models import AuditEvent
from exports import services
from exports.models import Export
from exports.scope import FILENAME_MAX_BYTES, safe_component, scope_from_params
from jobs.models import Project
from tests.api.helpers import Api

pytestmark = pytest.mark.django_db

#: 2026-12-07 06:36 UTC is 14:36 in Shanghai
WHEN = dt.datetime(2026, 12, 7, 6, 36, tzinfo=dt.UTC)
FORBIDDEN = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def _scope(membership, **params):
    q = QueryDict(mutable=True)
    for key, value in params.items():
        q.setlist(key, value if isinstance(value, list) else [str(value)])
    return scope_from_params(membership, q)


def _asked(membership, **params) -> Export:
    export, created = services.export_request(
        membership=membership, scope=_scope(membership, **params)
    )
    assert created
    return export


def _built(membership, capture, **params) -> Export:
    with capture(execute=True):
        export = _asked(membership, **params)
    export.refresh_from_db()
    assert export.status == Export.Status.READY, export.error
    return export


@pytest.fixture
def shanghai(member):
    member.user.time_zone = "Asia/Shanghai"
    member.user.save(update_fields=["time_zone"])
    return member


def _assert_safe(name: str, export: Export) -> None:
    assert not FORBIDDEN.search(name), name
    assert name.endswith(f"_{export.pk}.zip")  # what partials_suffix finds
    assert len(name.encode()) <= FILENAME_MAX_BYTES
    stem = name.rsplit("_", 3)[0]
    assert stem == stem.rstrip(" .") and stem.strip()


class TestNames:
    def test_batch_in_chinese_with_the_requesters_time(self, shanghai, make_outputs):
        project = Project.objects.create(organization=shanghai.organization, name="春季推广")
        batch, _ = make_outputs(shanghai, ["a.mp4"], project=project, batch_name="北京经销商")
        export = _asked(shanghai, batch=batch.pk)
        with translation.override("zh-hans"):
            name = services.bundle_filename(export, when=WHEN)
        assert name == f"春季推广_批量任务_北京经销商_20261207_1436_{export.pk}.zip"
        with translation.override("en"):
            name = services.bundle_filename(export, when=WHEN)
        assert name == f"春季推广_batch_北京经销商_20261207_1436_{export.pk}.zip"

    def test_project_tags_and_chosen_videos(self, member, make_outputs):
        project = Project.objects.create(organization=member.organization, name="Spring promo")
        _batch, outputs = make_outputs(
            member, ["a.mp4", "b.mp4"], project=project, tags=("north", "promo")
        )
        by_project = _asked(member, project=project.pk)
        tagged = _asked(member, project=project.pk, tag=["promo", "north"])
        any_project = _asked(member, tag="north")
        chosen = _asked(member, output=[o.pk for o in outputs])
        with translation.override("en"):
            assert services.bundle_filename(by_project, when=WHEN) == (
                f"Spring promo_project_20261207_0636_{by_project.pk}.zip"
            )
            assert services.bundle_filename(tagged, when=WHEN) == (
                f"Spring promo_tag_north+promo_20261207_0636_{tagged.pk}.zip"
            )
            assert services.bundle_filename(any_project, when=WHEN) == (
                f"tag_north_20261207_0636_{any_project.pk}.zip"
            )
            assert services.bundle_filename(chosen, when=WHEN) == (
                f"2 chosen videos_20261207_0636_{chosen.pk}.zip"
            )
        with translation.override("zh-hans"):
            assert services.bundle_filename(by_project, when=WHEN).startswith("Spring promo_项目_")
            assert services.bundle_filename(tagged, when=WHEN).startswith(
                "Spring promo_标签_north+promo_"
            )

    def test_hostile_names_are_safe_everywhere_and_capped_on_bytes(self, member, make_outputs):
        project = Project.objects.create(
            organization=member.organization, name='../CON:a*b?"c<d>e|f\\g\x07\u202e. '
        )
        batch, _ = make_outputs(member, ["a.mp4"], project=project, batch_name="长" * 118 + ". ")
        export = _asked(member, batch=batch.pk)
        with translation.override("zh-hans"):
            name = services.bundle_filename(export, when=WHEN)
        _assert_safe(name, export)
        assert "\u202e" not in name and ".." not in name.split("_")[0]
        # Each forbidden character (and the bell) is an underscore; Chinese kept, cut whole.
        assert name.startswith("_CON_a_b__c_d_e_f_g__批量任务_长")
        assert "长" * 20 in name and "长" * 21 not in name  # 60 bytes of a 3-byte character

    def test_a_long_name_without_a_dot_is_cut_not_looped_on(self):
        # A path inside the ZIP (a batch's folder) longer than 200 bytes and with no
        # extension once looped for ever.
        assert safe_component("长" * 120) == "长" * 66
        assert safe_component("长" * 120 + ".mp4") == "长" * 65 + ".mp4"

    def test_a_batch_deleted_meanwhile_falls_back_on_the_label(self, member, make_outputs):
        batch, _ = make_outputs(member, ["a.mp4"], batch_name="A/B")
        export = _asked(member, batch=batch.pk)
        Export.objects.filter(pk=export.pk).update(batch=None)
        export.refresh_from_db()
        name = services.bundle_filename(export, when=WHEN)
        _assert_safe(name, export)
        assert name.startswith("Project acme › A_B_")

    def test_the_built_bundle_carries_the_name(
        self, member, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4"], batch_name="北京经销商")
        export = _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        assert re.fullmatch(rf"Project acme_batch_北京经销商_\d{{8}}_\d{{4}}_{export.pk}\.zip",
                            export.filename)  # fmt: skip
        assert export.storage_key.endswith(export.filename)


class TestReuse:
    def test_the_same_videos_are_handed_out_again_and_audited(
        self, member, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4", "b.mp4"])
        first = _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        assert len(first.fingerprint) == 64
        again, created = services.export_request(
            membership=member, scope=_scope(member, batch=batch.pk)
        )
        assert not created and again.pk == first.pk and again.status == "ready"
        assert Export.objects.count() == 1
        asked = AuditEvent.objects.filter(action="export.requested").order_by("pk")
        assert [e.detail for e in asked] == [
            {"scope": f"batch:{batch.pk}"},
            {"scope": f"batch:{batch.pk}", "reused": True},
        ]
        assert asked[1].actor == member.user and asked[1].target_id == str(first.pk)
        assert verify_chain(member.organization).ok

    @pytest.mark.parametrize("change", ["re-rendered", "added", "renamed", "expired", "swept"])
    def test_not_offered_when_anything_differs(
        self, change, member, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, outputs = make_outputs(member, ["a.mp4", "b.mp4"])
        first = _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        if change == "re-rendered":
            outputs[1].sha256 = "f" * 64
            outputs[1].save(update_fields=["sha256"])
        elif change == "added":
            other, _ = make_outputs(member, ["c.mp4"], project=batch.project)
            other.jobs.update(batch=batch, number=3)
        elif change == "renamed":
            outputs[0].name = "renamed.mp4"
            outputs[0].save(update_fields=["name"])
        elif change == "expired":
            Export.objects.filter(pk=first.pk).update(expires_at=timezone.now())
        else:
            Export.objects.filter(pk=first.pk).update(status=Export.Status.EXPIRED)
        scope = _scope(member, batch=batch.pk)
        assert services.export_ready_for(membership=member, scope=scope) is None
        second, created = services.export_request(membership=member, scope=scope)
        assert created and second.pk != first.pk and second.status == "queued"

    def test_a_fresh_build_on_request(
        self, member, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4"])
        first = _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        with django_capture_on_commit_callbacks(execute=True):
            fresh, created = services.export_request(
                membership=member, scope=_scope(member, batch=batch.pk), fresh=True
            )
        fresh.refresh_from_db()
        assert created and fresh.pk != first.pk and fresh.status == "ready"
        assert fresh.fingerprint == first.fingerprint and fresh.filename != first.filename
        # Both ready: the one that lasts longest is offered.
        offered = services.export_ready_for(membership=member, scope=_scope(member, batch=batch.pk))
        assert offered.pk == fresh.pk

    def test_another_organization_never_gets_it(
        self, member, outsider, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4"])
        _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        theirs, _ = make_outputs(outsider, ["a.mp4"])
        mine, created = services.export_request(
            membership=outsider, scope=_scope(outsider, batch=theirs.pk)
        )
        assert created and mine.organization == outsider.organization

    def test_confirm_page_offers_it_and_builds_afresh_on_request(
        self, member, login, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4"])
        client = login(member)
        slug = member.organization.slug
        first = _built(member, django_capture_on_commit_callbacks, batch=batch.pk)
        page = client.get(f"/o/{slug}/exports/new/", {"batch": batch.pk}).content.decode()
        assert "This bundle is ready" in page
        assert f'href="/o/{slug}/exports/{first.pk}/download/" data-ready-download' in page
        assert first.filename in page and "available until" in page
        assert "Build a fresh one" in page and "data-confirm-bundle" not in page

        # Asked without "fresh" (the page was open before it got ready): the ready one.
        response = client.post(f"/o/{slug}/exports/new/", {"batch": batch.pk})
        assert response.url == f"/o/{slug}/exports/{first.pk}/"
        assert Export.objects.count() == 1
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/o/{slug}/exports/new/", {"batch": batch.pk, "fresh": "1"})
        fresh = Export.objects.exclude(pk=first.pk).get()
        assert response.url == f"/o/{slug}/exports/{fresh.pk}/"

        with translation.override("zh-hans"):
            client.cookies["heygem_language"] = "zh-hans"
            member.user.language = "zh-hans"
            member.user.save(update_fields=["language"])
            page = client.get(f"/o/{slug}/exports/new/", {"batch": batch.pk}).content.decode()
        assert "这个压缩包已打包好" in page and "重新打包一个" in page

    def test_api_reuses_unless_fresh(
        self, client, member, outsider, make_outputs, django_capture_on_commit_callbacks, settings
    ):
        settings.API_THROTTLE_TOKEN = settings.API_THROTTLE_IP = ""
        _, token = account_services.api_token_create(
            membership=member, name="script", expires_in_days=None
        )
        api = Api(client, token, member.organization.slug)
        batch, _ = make_outputs(member, ["a.mp4"])
        with django_capture_on_commit_callbacks(execute=True):
            first = api.post("export-list", data={"batch": batch.pk})
        assert first.status_code == 201 and first.json()["reused"] is False
        again = api.post("export-list", data={"batch": batch.pk})
        body = again.json()
        assert again.status_code == 200 and body["reused"] is True
        assert body["id"] == first.json()["id"] and body["status"] == "ready"
        assert body["download"].endswith(f"/exports/{body['id']}/download/")
        fresh = api.post("export-list", data={"batch": batch.pk, "fresh": True})
        assert fresh.status_code == 201 and fresh.json()["reused"] is False
        assert fresh.json()["id"] != body["id"]
        # Another organization's token cannot reach this batch at all.
        _, theirs = account_services.api_token_create(
            membership=outsider, name="x", expires_in_days=None
        )
        rival = Api(client, theirs, outsider.organization.slug)
        assert rival.post("export-list", data={"batch": batch.pk}).status_code == 404


class TestList:
    def test_download_link_and_expiry_in_the_persons_zone(
        self, shanghai, viewer, outsider, login, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(shanghai, ["a.mp4"])
        ready = _built(shanghai, django_capture_on_commit_callbacks, batch=batch.pk)
        Export.objects.filter(pk=ready.pk).update(expires_at=WHEN + timedelta(days=3650))
        with django_capture_on_commit_callbacks(execute=True):
            lapsed, _ = services.export_request(
                membership=shanghai, scope=_scope(shanghai, batch=batch.pk), fresh=True
            )
        Export.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        swept = _asked(shanghai, project=batch.project_id)
        Export.objects.filter(pk=swept.pk).update(status=Export.Status.EXPIRED)

        page = login(shanghai).get("/o/acme/exports/").content.decode()
        rows = {
            int(m.group(1)): m.group(0)
            for m in re.finditer(r"<tr><td>(\d+)</td>.*?</tr>", page, re.S)
        }
        assert set(rows) == {ready.pk, lapsed.pk, swept.pk}
        assert "Expires" in page
        # 2036-12-04 06:36 UTC, shown in Shanghai
        assert ">2036-12-04 14:36</time>" in rows[ready.pk]
        assert 'title="Asia/Shanghai"' in rows[ready.pk]
        assert f'href="/o/acme/exports/{ready.pk}/download/"' in rows[ready.pk]
        for gone in (lapsed.pk, swept.pk):
            assert "<td data-expiry>expired</td>" in rows[gone]
            assert "/download/" not in rows[gone]

        # A viewer sees the expiry but may not download.
        page = login(viewer).get("/o/acme/exports/").content.decode()
        assert "data-expiry" in page and "/download/" not in page
        # Another organization sees none of it.
        page = login(outsider).get("/o/rival/exports/").content.decode()
        assert f"/o/acme/exports/{ready.pk}/" not in page
