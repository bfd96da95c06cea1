"""In a real Chromium: the dashboard logs in without putting the token in a URL the server
sees, runs under the Content-Security-Policy without violations, and the API docs render
from the bundled assets with no request leaving the gateway's origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    expect,
)

from shared.config import Settings
from tests.block_factory import all_blocks
from tests.gateway_harness import RunningGateway, publish

pytestmark = pytest.mark.browser

TOKEN = "browser-s3cret"
WAIT_MS = 10_000


@pytest.fixture()
def secured(settings: Settings) -> Iterator[RunningGateway]:
    secured = settings.model_copy(update={"api_token": TOKEN})
    publish(secured, *all_blocks())
    with RunningGateway(secured) as gw:
        yield gw


class Watch:
    """Page errors, CSP violations and every host the page requested."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.csp: list[str] = []
        self.hosts: set[str] = set()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", self._console)
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob"):  # in-page resources, no network
            self.hosts.add(url.netloc)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp.append(message.text)


async def test_dashboard_logs_in_from_the_url_fragment_and_connects(
    browser: Browser, secured: RunningGateway
) -> None:
    page = await browser.new_page()
    watch = Watch(page)
    await page.goto(f"{secured.url}/#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)
    await expect(page.locator("body")).to_have_attribute("data-sequence", "4", timeout=WAIT_MS)
    assert TOKEN not in page.url  # removed from the address bar and the history
    cookies = await page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        ("aegis_session", True, "Strict")
    ]
    assert watch.errors == [] and watch.csp == []
    assert watch.hosts == {f"127.0.0.1:{secured.port}"}


async def test_dashboard_asks_for_the_token_when_it_has_no_session(
    browser: Browser, secured: RunningGateway
) -> None:
    page = await browser.new_page()
    asked: list[str] = []

    async def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept(TOKEN)

    page.on("dialog", answer)
    await page.goto(secured.url)
    await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)
    assert asked == ["AegisMatrix access token"]


async def test_a_declined_token_prompt_says_token_needed_not_offline(
    browser: Browser, secured: RunningGateway
) -> None:
    page = await browser.new_page()

    async def decline(dialog: Dialog) -> None:
        await dialog.dismiss()

    page.on("dialog", decline)
    await page.goto(secured.url)
    await expect(page.get_by_test_id("run-status")).to_have_text("TOKEN NEEDED", timeout=WAIT_MS)
    await expect(page.get_by_test_id("run-status")).to_have_attribute("title", re.compile("reload"))


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock"), ("/redoc", "h1")])
async def test_api_docs_render_offline_under_the_csp(
    browser: Browser, secured: RunningGateway, path: str, rendered: str
) -> None:
    page = await browser.new_page()
    watch = Watch(page)
    await page.context.request.post(f"{secured.url}/api/v1/login", data={"token": TOKEN})
    await page.goto(secured.url + path)
    await expect(page.locator(rendered).first).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text("/api/v1/document").first).to_be_attached(timeout=WAIT_MS)
    assert watch.hosts == {f"127.0.0.1:{secured.port}"}, watch.hosts
    assert watch.csp == [] and watch.errors == []
