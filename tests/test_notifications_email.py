"""Notifications: the optional e-mail copies (batch finished, bundle ready, bundle failed),
the preference that switches them, and the JSON the header badge polls."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Notification, User
from accounts.services import notify
from exports import services as export_services
from exports.models import Export
from exports.scope import scope_from_params
from jobs.models import Batch
from jobs.services import batch_check_completed

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SITE = "https://studio.example.com"


class ExplodingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server unreachable")


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE + "/"  # a trailing slash must not double up in links


def _mail_me(membership, on=True):
    User.objects.filter(pk=membership.user_id).update(email_notifications=on)
    membership.user.refresh_from_db()


def _batch_scope(membership, batch):
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    return scope_from_params(membership, q)


@pytest.fixture
def finished_batch(member, make_outputs):
    batch, _ = make_outputs(member, ["one.mp4", "two.mp4"], batch_name="Spring")
    Batch.objects.filter(pk=batch.pk).update(created_by=member.user)
    return batch


# --- the e-mails ------------------------------------------------------------------------------


class TestEmailsWhenOn:
    def test_batch_finished(
        self, member, finished_batch, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        with django_capture_on_commit_callbacks(execute=True):
            assert batch_check_completed(batch_id=finished_batch.pk)
        assert len(mailoutbox) == 1
        sent = mailoutbox[0]
        assert sent.to == ["member@acme.test"]
        assert sent.subject.startswith("[Acme Media] Batch finished: ")
        assert "2 of 2 videos rendered" in sent.subject
        link = f"{SITE}/o/acme/batches/{finished_batch.pk}/"
        assert "2 of 2 videos rendered" in sent.body
        assert link in sent.body.splitlines()
        assert f"{SITE}/o/acme/notifications/" in sent.body  # where to switch them off
        html, mimetype = sent.alternatives[0]
        assert mimetype == "text/html" and f'href="{link}"' in html
        assert member.user.notifications.get().kind == "batch.completed"

    def test_export_ready_with_its_link(
        self, member, finished_batch, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        with django_capture_on_commit_callbacks(execute=True):
            export, _ = export_services.export_request(
                membership=member, scope=_batch_scope(member, finished_batch)
            )
        export.refresh_from_db()
        assert export.status == Export.Status.READY
        assert len(mailoutbox) == 1
        sent = mailoutbox[0]
        assert sent.subject.startswith("[Acme Media] Bundle ready: ")
        assert "is ready (2 videos)" in sent.body
        assert f"{SITE}/o/acme/exports/{export.pk}/" in sent.body.splitlines()

    def test_export_failed_with_the_reason(
        self, member, finished_batch, settings, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        settings.EXPORT_HARD_LIMIT_S = -1
        export, _ = export_services.export_request(
            membership=member, scope=_batch_scope(member, finished_batch)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert export_services.build_export(export_id=export.pk) == "failed"
        assert len(mailoutbox) == 1
        sent = mailoutbox[0]
        assert sent.subject.startswith("[Acme Media] Bundle failed: ")
        assert "Stopped after the -1 s limit for one bundle." in sent.body
        assert f"{SITE}/o/acme/exports/{export.pk}/" in sent.body
        assert "Stopped after the -1 s limit" in sent.alternatives[0][0]

    def test_sent_only_after_the_transaction_commits(
        self, member, org, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        with django_capture_on_commit_callbacks() as callbacks:
            notify(user=member.user, organization=org, kind="export.ready", message="Ready.")
            assert mailoutbox == []
        assert mailoutbox == [] and len(callbacks) == 1
        callbacks[0]()
        assert len(mailoutbox) == 1

    def test_text_is_not_html_escaped_and_subject_is_one_line(
        self, member, org, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        message = "The bundle “Q&A <final>” failed: disk full\nsecond line"
        with django_capture_on_commit_callbacks(execute=True):
            notify(user=member.user, organization=org, kind="export.failed", message=message)
        sent = mailoutbox[0]
        assert "\n" not in sent.subject and "Q&A <final>" in sent.subject
        assert message in sent.body
        assert "Q&amp;A &lt;final&gt;" in sent.alternatives[0][0]
        assert "Open it here" not in sent.body  # no link, no dangling line for one


class TestEmailsWhenOff:
    def test_off_by_default_and_no_mail_for_any_event(
        self, member, finished_batch, settings, mailoutbox, django_capture_on_commit_callbacks
    ):
        assert member.user.email_notifications is False
        with django_capture_on_commit_callbacks(execute=True):
            batch_check_completed(batch_id=finished_batch.pk)
            export, _ = export_services.export_request(
                membership=member, scope=_batch_scope(member, finished_batch)
            )
        settings.EXPORT_HARD_LIMIT_S = -1
        Export.objects.filter(pk=export.pk).update(status="failed")
        again, _ = export_services.export_request(
            membership=member, scope=_batch_scope(member, finished_batch)
        )
        with django_capture_on_commit_callbacks(execute=True):
            export_services.build_export(export_id=again.pk)
        kinds = sorted(member.user.notifications.values_list("kind", flat=True))
        assert kinds == ["batch.completed", "export.failed", "export.ready"]
        assert mailoutbox == []

    def test_others_preference_does_not_matter(
        self, member, owner, org, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(owner)
        with django_capture_on_commit_callbacks(execute=True):
            notify(user=member.user, organization=org, kind="export.ready", message="Ready.")
        assert mailoutbox == []

    def test_inactive_user_gets_no_mail(
        self, member, org, mailoutbox, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        User.objects.filter(pk=member.user_id).update(is_active=False)
        member.user.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            notify(user=member.user, organization=org, kind="export.ready", message="Ready.")
        assert mailoutbox == []


class TestMailFailure:
    @pytest.fixture(autouse=True)
    def _mail_server_down(self, settings):
        settings.EMAIL_BACKEND = f"{__name__}.ExplodingBackend"

    def test_export_still_ready_notification_stored_error_logged(
        self, member, finished_batch, caplog, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        caplog.set_level(logging.ERROR, logger="accounts.notification_emails")
        with django_capture_on_commit_callbacks(execute=True):
            export, _ = export_services.export_request(
                membership=member, scope=_batch_scope(member, finished_batch)
            )
        export.refresh_from_db()
        assert export.status == Export.Status.READY
        note = member.user.notifications.get()
        assert note.kind == "export.ready" and note.read_at is None
        errors = [r for r in caplog.records if r.name == "accounts.notification_emails"]
        assert len(errors) == 1 and errors[0].levelno == logging.ERROR
        assert f"could not e-mail notification {note.pk} (export.ready)" in errors[0].getMessage()
        assert "SMTP server unreachable" in caplog.text  # the traceback is kept

    def test_batch_completion_is_not_broken(
        self, member, finished_batch, caplog, django_capture_on_commit_callbacks
    ):
        _mail_me(member)
        with django_capture_on_commit_callbacks(execute=True):
            assert batch_check_completed(batch_id=finished_batch.pk) is True
        finished_batch.refresh_from_db()
        assert finished_batch.completed_at is not None
        assert member.user.notifications.get().kind == "batch.completed"
        assert "could not e-mail notification" in caplog.text

    def test_a_broken_template_is_logged_too(
        self, member, org, caplog, monkeypatch, django_capture_on_commit_callbacks
    ):
        from accounts import notification_emails

        def broken(*args, **kwargs):
            raise RuntimeError("template exploded")

        monkeypatch.setattr(notification_emails, "render_to_string", broken)
        _mail_me(member)
        with django_capture_on_commit_callbacks(execute=True):
            notify(user=member.user, organization=org, kind="export.ready", message="Ready.")
        assert Notification.objects.filter(user=member.user).count() == 1
        assert "template exploded" in caplog.text


def test_mail_settings_come_from_the_environment(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "VAR_DIR": str(tmp_path),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": "587",
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": "true",
        "DEFAULT_FROM_EMAIL": "Studio <studio@example.com>",
        "SITE_URL": "https://studio.example.com",
        "NOTIFICATION_POLL_MS": "12000",
    }
    code = (
        "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, "
        "s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, "
        "s.DEFAULT_FROM_EMAIL, s.SITE_URL, s.NOTIFICATION_POLL_MS, sep='|')"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split("|") == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.com",
        "587",
        "mailer",
        "s3cret",
        "True",
        "Studio <studio@example.com>",
        "https://studio.example.com",
        "12000",
    ]
    default = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        default.stdout.strip().splitlines()[-1].split("|")[0]
        == "django.core.mail.backends.console.EmailBackend"
    )


# --- the preference ---------------------------------------------------------------------------


class TestPreferenceForm:
    url = "/o/acme/notifications/preferences/"

    def test_page_shows_the_choice_off_by_default(self, login, member):
        response = login(member).get("/o/acme/notifications/")
        html = response.content.decode()
        assert response.status_code == 200
        assert 'action="/o/acme/notifications/preferences/"' in html
        assert re.search(r'<input[^>]*value="off"[^>]*checked', html)
        assert not re.search(r'<input[^>]*value="on"[^>]*checked', html)
        assert "member@acme.test" in html

    def test_switch_on_and_off(self, login, member, mailoutbox):
        client = login(member)
        response = client.post(self.url, {"email_notifications": "on"})
        assert response.status_code == 302 and response["Location"] == "/o/acme/notifications/"
        member.user.refresh_from_db()
        assert member.user.email_notifications is True
        page = client.get("/o/acme/notifications/").content.decode()
        assert "E-mail notifications are on: they go to member@acme.test." in page
        assert re.search(r'<input[^>]*value="on"[^>]*checked', page)
        client.post(self.url, {"email_notifications": "off"})
        member.user.refresh_from_db()
        assert member.user.email_notifications is False
        assert mailoutbox == []  # switching sends nothing by itself

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({}, "Choose whether you want these e-mails."),
            ({"email_notifications": "sometimes"}, "Select a valid choice."),
        ],
    )
    def test_invalid_answer_shows_the_error_and_keeps_what_was_sent(
        self, login, member, data, error
    ):
        _mail_me(member, on=True)
        response = login(member).post(self.url, data)
        assert response.status_code == 400
        html = response.content.decode()
        assert error in html and 'role="alert"' in html
        form = response.context["preference_form"]
        assert form.is_bound and form.data.get("email_notifications") == data.get(
            "email_notifications"
        )
        # The page shows what was sent, not the stored "on" again.
        assert not re.search(r'<input[^>]*value="on"[^>]*checked', html)
        member.user.refresh_from_db()
        assert member.user.email_notifications is True

    def test_only_post_members_and_logged_in(self, client, login, member, outsider):
        assert client.post(self.url, {"email_notifications": "on"}).status_code == 302  # login
        assert login(member).get(self.url).status_code == 405
        assert login(outsider).post(self.url, {"email_notifications": "on"}).status_code == 404
        outsider.user.refresh_from_db()
        assert outsider.user.email_notifications is False


# --- the badge's JSON -------------------------------------------------------------------------


def _note(membership, message, **extra):
    return Notification.objects.create(
        user=membership.user,
        organization=membership.organization,
        kind="export.ready",
        level="success",
        message=message,
        link="/o/x/exports/1/",
        **extra,
    )


class TestUnreadJson:
    url = "/o/acme/notifications/unread.json"

    def test_counts_own_unread_in_this_organization_only(
        self, login, member, owner, other_org, make_member
    ):
        elsewhere = make_member(other_org, email="member@acme.test")  # same person, other org
        first = _note(member, "first")
        second = _note(member, "second")
        _note(member, "already read", read_at=timezone.now())
        _note(owner, "the owner's")
        _note(elsewhere, "in the other organization")
        response = login(member).get(self.url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert "no-store" in response["Cache-Control"]
        data = response.json()
        assert data["unread"] == 2
        assert [n["message"] for n in data["latest"]] == ["second", "first"]
        assert data["latest"][0] == {
            "id": second.pk,
            "kind": "export.ready",
            "level": "success",
            "message": "second",
            "link": "/o/x/exports/1/",
            "created_at": second.created_at.isoformat(),
        }
        first.refresh_from_db()
        assert first.read_at is None  # polling marks nothing read

    def test_latest_is_capped(self, login, member):
        for i in range(8):
            _note(member, f"n{i}")
        data = login(member).get(self.url).json()
        assert data["unread"] == 8 and len(data["latest"]) == 5

    def test_other_organization_is_404(self, login, outsider, member):
        _note(member, "secret")
        response = login(outsider).get(self.url)
        assert response.status_code == 404
        assert b"secret" not in response.content

    def test_anonymous_gets_401_json(self, client, org):
        response = client.get(self.url)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"

    def test_query_count_does_not_grow(self, login, member):
        client = login(member)

        def queries():
            with CaptureQueriesContext(connection) as captured:
                assert client.get(self.url).status_code == 200
            return [q["sql"] for q in captured.captured_queries]

        _note(member, "one")
        few = queries()
        Notification.objects.bulk_create(
            Notification(
                user=member.user, organization=member.organization, kind="k", message=f"m{i}"
            )
            for i in range(40)
        )
        many = queries()
        assert len(few) == len(many)
        assert len([sql for sql in many if "accounts_notification" in sql]) == 2

    def test_badge_markup_on_every_org_page(self, login, member, settings):
        settings.NOTIFICATION_POLL_MS = 750
        html = login(member).get("/o/acme/").content.decode()
        assert 'data-unread-url="/o/acme/notifications/unread.json"' in html
        assert 'data-poll-ms="750"' in html
        assert re.search(r'<span class="count" data-unread-count hidden>', html)
        assert re.search(r'<script src="/static/js/notifications\.js" defer></script>', html)
        assert re.search(r'<span class="sr-only" aria-live="polite"[^>]*data-unread-live>', html)
        assert "<script>" not in html
        _note(member, "new")
        html = login(member).get("/o/acme/").content.decode()
        assert '<span class="count" data-unread-count>' in html
        assert "<span data-unread-number>1</span>" in html


def test_console_backend_by_default_in_settings_module():
    """The project default (outside the test run's locmem backend) prints mail to the console."""
    source = (ROOT / "heygem_site" / "settings" / "__init__.py").read_text()
    assert 'env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")' in source
    assert mail.get_connection().__class__.__module__.endswith("locmem")
