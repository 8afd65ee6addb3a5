"""The audit log: append-only, hash-chained, verifiable, and never forked by concurrency."""

import itertools
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection

from accounts import services
from accounts.audit import Target, record_event, verify_chain
from accounts.models import AuditEvent, Organization
from accounts.permissions import Role
from tests.factories import OrganizationFactory, UserFactory


@pytest.fixture
def busy_org(db, owner, member):
    """An organization with a handful of real events from real services."""
    org = owner.organization
    services.invitation_create(membership=owner, email="a@x.test", role=Role.VIEWER)
    services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
    token, _ = services.api_token_create(membership=owner, name="ci", expires_in_days=3)
    services.api_token_revoke(membership=owner, token=token)
    return org


def _verify(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return False, out.getvalue() + err.getvalue() + str(exc)
    return True, out.getvalue() + err.getvalue()


def _seqs(org):
    return list(
        AuditEvent.objects.filter(organization=org).order_by("seq").values_list("pk", "seq")
    )


@pytest.mark.django_db
def test_services_write_a_valid_chain(busy_org, outsider):
    events = list(AuditEvent.objects.filter(organization=busy_org).order_by("seq"))
    assert [e.action for e in events] == [
        "invitation.created",
        "member.role_changed",
        "token.created",
        "token.revoked",
    ]
    assert events[0].prev_hash == ""
    for previous, current in itertools.pairwise(events):
        assert current.prev_hash == previous.hash
    assert verify_chain(busy_org).ok
    ok, output = _verify()
    assert ok, output
    assert "ok    acme: 4 events verified" in output


@pytest.mark.django_db
def test_orm_cannot_update_or_delete(busy_org):
    event = AuditEvent.objects.filter(organization=busy_org).first()
    event.action = "forged"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert verify_chain(busy_org).ok


@pytest.mark.django_db
def test_altered_row_is_named(busy_org):
    pk, seq = _seqs(busy_org)[1]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET total_bytes = 1 WHERE id = %s", [pk])
    ok, output = _verify("--org", "acme")
    assert not ok
    assert f"row id={pk} (seq {seq}" in output
    assert "does not match its hash" in output


@pytest.mark.django_db
def test_forged_hash_is_caught(busy_org):
    (pk, _), (_next_pk, _) = _seqs(busy_org)[1:3]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET hash = %s WHERE id = %s", ["f" * 64, pk])
    ok, output = _verify()
    assert not ok
    assert f"row id={pk}" in output  # its own content no longer matches


@pytest.mark.django_db
def test_deleted_middle_row_is_caught(busy_org):
    pk, _seq = _seqs(busy_org)[1]
    next_pk = _seqs(busy_org)[2][0]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [pk])
    ok, output = _verify()
    assert not ok
    assert f"row id={next_pk}" in output and "deleted" in output


@pytest.mark.django_db
def test_deleted_last_row_is_caught(busy_org):
    pk, _ = _seqs(busy_org)[-1]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [pk])
    ok, output = _verify()
    assert not ok
    assert "rows were deleted from (or added to) its end" in output


@pytest.mark.django_db
def test_inserted_row_is_caught(busy_org):
    last = AuditEvent.objects.filter(organization=busy_org).order_by("-seq").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_auditevent (organization_id, seq, actor_label, action, "
            "target_type, target_id, target_label, user_agent, outcome, detail, created_at, "
            "prev_hash, hash) VALUES (%s, %s, 'x', 'export.downloaded', '', '', '', '', "
            "'success', '{}', %s, %s, %s)",
            [busy_org.pk, last.seq + 1, last.created_at, last.hash, "e" * 64],
        )
    ok, output = _verify()
    assert not ok
    assert f"seq {last.seq + 1}" in output


@pytest.mark.django_db
def test_other_organizations_are_reported_separately(busy_org, outsider):
    pk, _ = _seqs(busy_org)[0]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET ip = '10.0.0.1' WHERE id = %s", [pk])
    ok, output = _verify("--org", "rival")
    assert ok, output
    ok, output = _verify()
    assert not ok and "BAD   acme" in output and "ok    rival" in output


@pytest.mark.django_db
def test_unknown_org():
    ok, output = _verify("--org", "nope")
    assert not ok and "No organization" in output


@pytest.mark.django_db
def test_event_fields_round_trip(owner):
    event = record_event(
        organization=owner.organization,
        action="export.built",
        actor=owner.user,
        target=Target("export", "7", "Batch 七 — 中文.zip"),
        file_count=40,
        total_bytes=5 * 1024**3,
        detail={"scope": {"batch": 3}, "seconds": 1.25},
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash == event.hash
    assert stored.total_bytes == 5 * 1024**3
    assert verify_chain(owner.organization).ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    """Threads append to one organization at once; the chain must stay a single line.

    Runs on SQLite (IMMEDIATE transactions) and, in the scale-out pass, on PostgreSQL where
    the head row lock does the queueing.
    """
    org = OrganizationFactory()
    user = UserFactory()
    threads_n, per_thread = 6, 8
    errors = []
    barrier = threading.Barrier(threads_n)

    def writer(n):
        try:
            barrier.wait()
            for i in range(per_thread):
                record_event(
                    organization=Organization.objects.get(pk=org.pk), action=f"t{n}.{i}", actor=user
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seqs = [s for _, s in _seqs(org)]
    assert seqs == list(range(1, threads_n * per_thread + 1))
    report = verify_chain(org)
    assert report.ok, report.problem
