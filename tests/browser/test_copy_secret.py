"""The Copy button next to a one-time secret, in a real browser: the Clipboard API, the
fallback when there is none, and the outcome said in the live region (in the reader's
language)."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

NO_CLIPBOARD_API = "Object.defineProperty(navigator, 'clipboard', {value: undefined});"
NO_COPY_COMMAND = "document.execCommand = () => false;"


def _new_token(page, button="Create token"):
    page.goto("/o/acme/tokens/")
    page.locator("#id_name").fill("nightly script")
    page.get_by_role("button", name=button).click()
    field = page.locator("#token-value")
    expect(field).to_have_value(re.compile(r"^hgm_"))
    return field


def _grant_clipboard(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)


def test_copy_puts_the_token_on_the_clipboard(new_page, member, live_server):
    page = new_page(member)
    _grant_clipboard(page, live_server)
    field = _new_token(page)
    token = field.input_value()
    assert token.startswith("hgm_")
    copy = page.get_by_role("button", name="Copy", exact=True)
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator('[data-copy-status="token-value"]')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token


@pytest.mark.parametrize("path", ["invitation", "webhook"])
def test_the_other_secrets_copy_too(new_page, admin, live_server, settings, path):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # a loopback address; nothing is sent to it
    page = new_page(admin)
    _grant_clipboard(page, live_server)
    if path == "invitation":
        page.goto("/o/acme/members/")
        page.locator("#id_email").fill("guest@acme.test")
        page.get_by_role("button", name="Send invitation").click()
        field_id = "invite-link"
    else:
        page.goto("/o/acme/webhooks/")
        page.locator("#id_url").fill("http://127.0.0.1:9/hook")
        page.get_by_role("button", name="Add endpoint").click()
        field_id = "secret-value"
    value = page.locator(f"#{field_id}").input_value()
    assert value
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator(f'[data-copy-status="{field_id}"]')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == value


def test_without_the_clipboard_api_the_copy_command_is_used(new_page, member, live_server):
    page = new_page(member)
    _grant_clipboard(page, live_server)
    page.add_init_script(NO_CLIPBOARD_API)
    field = _new_token(page)
    token = field.input_value()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator('[data-copy-status="token-value"]')).to_have_text("Copied")
    selected = page.evaluate(
        "() => { const f = document.getElementById('token-value');"
        " return f.value.substring(f.selectionStart, f.selectionEnd); }"
    )
    assert selected == token


def test_when_nothing_can_copy_the_text_is_selected_for_the_keyboard(new_page, member):
    page = new_page(member)  # no clipboard permission either
    page.add_init_script(NO_CLIPBOARD_API + NO_COPY_COMMAND)
    field = _new_token(page)
    token = field.input_value()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator('[data-copy-status="token-value"]')).to_have_text(
        "Selected: press Ctrl+C (⌘C on a Mac) to copy."
    )
    expect(field).to_be_focused()
    assert (
        page.evaluate(
            "() => { const f = document.getElementById('token-value');"
            " return f.value.substring(f.selectionStart, f.selectionEnd); }"
        )
        == token
    )


def test_copied_is_said_in_chinese(new_page, member, live_server):
    from accounts.models import User

    User.objects.filter(pk=member.user_id).update(language="zh-hans")
    page = new_page(member, locale="zh-CN", timezone_id="Asia/Shanghai")
    _grant_clipboard(page, live_server)
    _new_token(page, button="创建令牌")
    copy = page.get_by_role("button", name="复制", exact=True)
    copy.click()
    status = page.locator('[data-copy-status="token-value"]')
    expect(status).to_have_text("已复制")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_attribute("role", "status")
