"""Logging in through the form and creating a project, as a person does it in the browser."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Project
from tests.browser.helpers import screenshot
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]


def test_log_in_through_the_form(page, owner, outsider):
    page.goto("/o/acme/projects/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/o/acme/projects/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "login")

    page.get_by_label("E-mail").fill("owner@acme.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct")
    expect(page.get_by_label("E-mail")).to_have_value("owner@acme.test")  # kept what was typed

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/o/acme/projects/$"))  # back where they wanted to go
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    switcher = page.locator("details.switcher")  # the organization list, in the header's menu
    expect(switcher).to_be_visible()
    expect(switcher).not_to_contain_text("Rival Films")  # not their organization

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto("/o/acme/projects/")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_create_a_project_on_the_projects_page(new_page, member, outsider):
    page = new_page(member)
    page.goto("/")
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Projects").click()
    expect(page.get_by_text("No projects yet.")).to_be_visible()

    form = page.locator("form", has=page.get_by_role("button", name="Create project"))
    form.get_by_label("Description").fill("Dealer videos for the spring campaign.")
    form.get_by_role("button", name="Create project").click()  # no name: refused
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(form.get_by_label("Description")).to_have_value("Dealer videos for the spring campaign.")
    assert not Project.objects.exists()

    form.get_by_label("Name").fill("Spring campaign")
    form.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Spring campaign")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Project “Spring campaign” created.")
    expect(page.get_by_role("link", name="New batch")).to_be_visible()
    project = Project.objects.get()
    assert project.organization.slug == "acme"
    assert page.url.endswith(f"/o/acme/projects/{project.pk}/")

    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Projects").click()
    row = page.get_by_role("row", name=re.compile("Spring campaign"))
    expect(row).to_be_visible()
    expect(row.get_by_role("cell").nth(1)).to_have_text("0")  # no batches yet
    screenshot(page, "projects")
