"""The chat widget in a real browser: headless Chromium (the system's, e.g. Debian's ``chromium``)
driven by Playwright, against the real service (``qa-service serve`` on a loopback port, the real
model, the small corpus tests/data/widget_corpus.yaml).

Needs Chromium (``apt-get install chromium``; another binary with CHROMIUM_PATH), Playwright for
Python (the ``test`` extra) and axe-core (``npm ci --prefix tests/browser``; ``make test`` runs it).
Without them these tests skip, except under CI where they fail. Screenshots of the main states go to
tests/browser/screenshots/ (not committed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qa_service.build.pipeline import build_index
from qa_service.model.embedder import SentenceTransformerEmbedder
from qa_service.settings import DEFAULT_MODEL, Settings
from qa_service.tooling.bench import free_port, start_server
from tests.conftest import DATA, ROOT, skip_outside_ci

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Dialog,
        FloatRect,
        Locator,
        Page,
        Route,
        ViewportSize,
    )

pytestmark = [pytest.mark.model, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"

CLINIC = {"name": "Riverside Back Clinic", "phone": "+1 555 0100", "contact": "https://clinic.example/contact"}
HEAT_QUESTION = "is ice or heat better for my back spasm"
CLARIFY_QUESTION = "which stretches help my back"
OFF_TOPIC_QUESTION = "recipe for banana bread"
URGENT_QUESTION = "I have crushing chest pain"
MESSAGES = ".qa-log > .qa-message:not(.qa-typing)"
FRIENDLY_ERRORS = {
    "offline": "Could not reach the FAQ service",
    "timeout": "taking too long to answer",
    "429": "many questions in a short time",
    "503": "not available right now",
}


def _require(available: bool, what: str) -> None:
    """Skip on a developer machine without a browser-test dependency; fail in CI, which must run them."""
    if not available:
        skip_outside_ci(
            f"{what} is not installed; the widget's browser tests need it (see README, 'Chat widget')",
            f"{what} is missing: CI runs the browser tests (bash .ci/run installs it)",
        )


def _playwright_installed() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ servers


class HostSite:
    """Another web site (http://localhost:PORT, a different origin and site than the service's
    http://127.0.0.1:PORT) where a clinic embeds the widget."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@dataclass(frozen=True)
class Service:
    url: str
    feedback_db: Path


@pytest.fixture(scope="session")
def browser_installed() -> None:
    _require(_playwright_installed(), "Playwright for Python (pip install -e '.[test]')")
    _require(CHROMIUM.is_file(), f"Chromium ({CHROMIUM}; apt-get install chromium, or set CHROMIUM_PATH)")


@pytest.fixture(scope="session")
def service(
    browser_installed: None,
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: SentenceTransformerEmbedder,
    host_site: HostSite,
) -> Iterator[Service]:
    """qa-service serve with the widget corpus (built without fine-tuning: seconds, not minutes)."""
    base = tmp_path_factory.mktemp("widget")
    (base / "corpus").mkdir()
    shutil.copy(DATA / "widget_corpus.yaml", base / "corpus" / "widget.yaml")
    env = {
        "QA_CORPUS_DIR": str(base / "corpus"),
        "QA_INDEX_DIR": str(base / "index"),
        "QA_MODEL": DEFAULT_MODEL,
        "QA_FINETUNE": "false",
        "QA_FEEDBACK_DB": str(base / "feedback.sqlite3"),
        "QA_RATE_LIMIT_PER_MINUTE": "0",
        "QA_RELOAD_POLL_SECONDS": "0",
        "QA_CLINIC_NAME": CLINIC["name"],
        "QA_CLINIC_PHONE": CLINIC["phone"],
        "QA_CLINIC_CONTACT_URL": CLINIC["contact"],
        "QA_CORS_ORIGINS": json.dumps([host_site.origin]),
    }
    build_settings = Settings(  # type: ignore[call-arg]
        _env_file=None, corpus_dir=base / "corpus", index_dir=base / "index", model=DEFAULT_MODEL, finetune=False
    )
    build_index(build_settings, real_embedder)
    with pytest.MonkeyPatch.context() as patch:  # the server sees only these settings, no developer .env
        for name in list(os.environ):
            if name.startswith("QA_"):
                patch.delenv(name)
        patch.chdir(base)
        server = start_server(env, timeout=120)
    yield Service(server.base_url, base / "feedback.sqlite3")
    server.stop()


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="session")
def browser(service: Service) -> Iterator[Browser]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # the first answers load the model's caches on a small CPU
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"])
        yield browser
        browser.close()


@dataclass
class PageWatch:
    """What a page did that it should not: uncaught errors, dialogs, CSP violations."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_violations.append(message.text)

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


class Pages:
    """Opens pages in fresh browser contexts and watches each one."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[tuple[BrowserContext, PageWatch]] = []

    def open(self, viewport: ViewportSize | None = None, **options: Any) -> Page:
        context = self.browser.new_context(viewport=viewport or {"width": 1100, "height": 760}, **options)
        page = context.new_page()
        watch = PageWatch()
        page.on("console", watch.console)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        page.on("dialog", watch.dialog)
        self.opened.append((context, watch))
        return page

    def watch(self, page: Page) -> PageWatch:
        return next(watch for context, watch in self.opened if context is page.context)


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    """After the test, no page may have thrown, opened a dialog or broken its Content-Security-Policy."""
    pages = Pages(browser)
    yield pages
    for context, watch in pages.opened:
        context.close()
        assert watch.errors == [], "uncaught errors in the page"
        assert watch.dialogs == [], "a dialog opened"
        assert watch.csp_violations == [], "Content-Security-Policy violations"


class Widget:
    """The widget on a page (Playwright's CSS selectors pierce its open shadow root)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.launcher = page.locator("clinic-faq-widget .qa-launcher")
        self.panel = page.locator("clinic-faq-widget .qa-panel")
        self.input = page.get_by_label("Your question")
        self.messages = page.locator(f"clinic-faq-widget {MESSAGES}")

    def open(self) -> None:
        self.launcher.click()
        from playwright.sync_api import expect

        expect(self.panel).to_be_visible()

    def ask(self, question: str) -> Locator:
        """Type a question, send it, and return the reply once it is shown."""
        from playwright.sync_api import expect

        before = self.messages.count()
        self.input.fill(question)
        self.input.press("Enter")
        expect(self.messages).to_have_count(before + 2)
        return self.messages.last

    def focused(self) -> str:
        """The class of the element focused inside the widget ('' when focus is elsewhere)."""
        return str(
            self.page.evaluate(
                "() => { const root = document.querySelector('clinic-faq-widget')?.shadowRoot;"
                " const el = root && root.activeElement; return el ? el.className : ''; }"
            )
        )

    def screenshot(self, name: str) -> None:
        """Save the widget (panel and launcher) to tests/browser/screenshots/NAME.png."""
        boxes = [box for box in (self.panel.bounding_box(), self.launcher.bounding_box()) if box]
        left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
        right, bottom = max(b["x"] + b["width"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
        margin = 12
        x, y = max(0.0, left - margin), max(0.0, top - margin)
        clip: FloatRect = {"x": x, "y": y, "width": right - x + margin, "height": bottom - y + margin}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", clip=clip)


@pytest.fixture
def demo(pages: Pages, service: Service) -> Widget:
    page = pages.open()
    page.goto(f"{service.url}/demo")
    return Widget(page)


def expect_(locator: Locator) -> Any:
    from playwright.sync_api import expect

    return expect(locator)


# ------------------------------------------------------------------------------------------ tests


def test_the_greeting_and_an_answer_with_its_list_and_linked_source(demo: Widget) -> None:
    demo.open()
    assert demo.focused() == "qa-input"
    greeting = demo.messages.first
    expect_(greeting).to_contain_text("automated assistant")
    expect_(greeting).to_contain_text("not a doctor or nurse")
    expect_(greeting).to_contain_text("Not for emergencies")
    expect_(greeting).to_contain_text(CLINIC["name"])
    log = demo.page.get_by_role("log", name="Conversation")
    expect_(log).to_have_attribute("aria-live", "polite")

    reply = demo.ask(HEAT_QUESTION)
    expect_(reply).to_have_class(re.compile(r"\bqa-answered\b"))
    expect_(reply.locator(".qa-matched")).to_have_text("FAQ question: Should I use heat or ice on a back spasm?")
    expect_(reply.locator(".qa-answer > p").first).to_have_text(
        "Use ice during the first 24 to 36 hours, then heat to relax the muscle:"
    )
    expect_(reply.locator(".qa-answer ul > li")).to_have_text(
        ["ice for swelling, 15 minutes at a time", "heat for stiffness, such as a warm bath or a heating pad"]
    )
    expect_(reply.locator(".qa-answer ol > li")).to_have_text(
        ["wrap the heat pack in a towel", "never sleep on a heating pad"]
    )
    source = reply.locator(".qa-source a")
    expect_(source).to_have_attribute("href", "https://example.org/back-spasm-faq#heat")
    expect_(source).to_have_attribute("target", "_blank")
    expect_(source).to_have_attribute("rel", "noopener noreferrer")
    expect_(reply.locator(".qa-source")).to_contain_text("Back Spasm Treatment FAQ")
    expect_(reply.locator(".qa-source")).to_contain_text("by Dr. Jane Example")
    expect_(reply.locator(".qa-disclaimer")).to_contain_text("not medical advice")
    expect_(reply.get_by_role("group", name="Was this helpful?")).to_be_visible()

    contact = demo.page.locator("clinic-faq-widget .qa-contact-bar")
    expect_(contact.get_by_role("link", name="Contact the clinic")).to_have_attribute("href", CLINIC["contact"])
    expect_(contact.get_by_role("link", name=f"Call {CLINIC['phone']}")).to_have_attribute("href", "tel:+15550100")
    demo.screenshot("answered")


def test_clarify_offers_the_close_questions_and_shows_the_one_picked(demo: Widget) -> None:
    demo.open()
    reply = demo.ask(CLARIFY_QUESTION)
    expect_(reply).to_have_class(re.compile(r"\bqa-clarify\b"))
    expect_(reply.locator(".qa-message-text")).to_have_text(
        "I found more than one possible answer. Did you mean one of these?"
    )
    choices = reply.get_by_role("group", name="Choose the question you meant:").get_by_role("button")
    expect_(choices).to_have_count(2)
    demo.screenshot("clarify")

    lower = reply.get_by_role("button", name="Which stretches help my lower back?")
    with demo.page.expect_response(re.compile(r"/v1/faq/stretch-lower-back$")) as response:
        lower.click()
    assert response.value.status == 200
    expect_(demo.messages).to_have_count(5)  # greeting, question, clarify, the pick, its answer
    expect_(demo.messages.nth(3)).to_have_text("You: Which stretches help my lower back?")
    answer = demo.messages.last
    expect_(answer.locator(".qa-answer")).to_have_text(re.compile("^Knee-to-chest stretches"))
    expect_(answer.get_by_role("group", name="Was this helpful?")).to_be_visible()


def test_a_follow_up_carries_the_conversation_and_clear_forgets_it(demo: Widget) -> None:
    demo.open()
    demo.ask(HEAT_QUESTION)  # answered with the heat-or-ice entry
    with (
        demo.page.expect_request(re.compile(r"/v1/ask$")) as sent,
        demo.page.expect_response(re.compile(r"/v1/ask$")) as received,
    ):
        follow_up = demo.ask("how long should I keep it on for?")
    assert sent.value.post_data_json["context"] == [{"question": HEAT_QUESTION, "answer_id": "heat-or-ice"}]
    reply = received.value.json()
    if reply["context"] is not None:  # read as a follow-up: the widget says of what
        expect_(follow_up.locator(".qa-about")).to_have_text(f"Answering about: {reply['context']}")
    else:
        expect_(follow_up.locator(".qa-about")).to_have_count(0)
    demo.screenshot("follow-up")

    demo.page.get_by_role("button", name="Clear conversation").click()
    with demo.page.expect_request(re.compile(r"/v1/ask$")) as after_clear:
        demo.ask("how long do back spasms last")
    assert "context" not in after_clear.value.post_data_json  # a new conversation: nothing carried over
    stored = demo.page.evaluate("() => [JSON.stringify(localStorage), JSON.stringify(sessionStorage)]")
    assert stored == ["{}", "{}"]  # the turns live in the page's memory only


def test_no_answer_gives_the_fallback_and_the_clinic_contact(demo: Widget) -> None:
    demo.open()
    reply = demo.ask(OFF_TOPIC_QUESTION)
    expect_(reply).to_have_class(re.compile(r"\bqa-no_answer\b"))
    expect_(reply).to_contain_text("Our FAQ does not cover that topic")  # the service's message, as sent
    expect_(reply.get_by_role("link", name="Contact the clinic")).to_have_attribute("href", CLINIC["contact"])
    expect_(reply.get_by_role("link", name=f"Call {CLINIC['phone']}")).to_be_visible()
    expect_(reply.get_by_role("group")).to_have_count(0)  # no feedback on a non-answer
    demo.screenshot("no-answer")


def test_an_emergency_gets_an_alert_that_cannot_be_missed(demo: Widget) -> None:
    demo.open()
    reply = demo.ask(URGENT_QUESTION)
    expect_(reply).to_have_attribute("role", "alert")
    expect_(reply).to_contain_text("Possible emergency")
    expect_(reply).to_contain_text(
        "Your message may describe a medical emergency. Call your local emergency number now"
    )
    colours = reply.evaluate("el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]")
    assert colours == ["rgb(179, 38, 30)", "rgb(255, 255, 255)"]  # white on red: 6.5:1
    expect_(demo.page.get_by_role("alert")).to_have_count(1)
    demo.screenshot("urgent")


def test_feedback_is_posted_and_stored(demo: Widget, service: Service) -> None:
    demo.open()
    reply = demo.ask(HEAT_QUESTION)
    yes = reply.get_by_role("button", name="Yes")
    with demo.page.expect_response(lambda r: r.url.endswith("/v1/feedback")) as response:
        yes.click()
    assert response.value.status == 201 and response.value.json() == {"recorded": True}
    assert response.value.request.post_data_json == {
        "answer_id": "heat-or-ice",
        "helpful": True,
        "question": HEAT_QUESTION,
    }
    expect_(reply.locator(".qa-feedback-status")).to_have_text("Thank you for your feedback.")
    expect_(yes).to_have_attribute("aria-pressed", "true")
    with sqlite3.connect(service.feedback_db) as db:
        rows = db.execute("SELECT answer_id, helpful FROM feedback WHERE question = ?", (HEAT_QUESTION,)).fetchall()
    assert ("heat-or-ice", 1) in rows


def _failing(kind: str) -> Callable[[Route], None]:
    def fail(route: Route) -> None:
        if kind == "offline":
            route.abort("internetdisconnected")
        elif kind == "timeout":
            pass  # never answered: the widget gives up after data-timeout seconds
        else:
            body = {"error": {"code": "x", "message": "<b>server says no</b>", "details": []}}
            route.fulfill(status=int(kind), json=body, headers={"retry-after": "1"})

    return fail


@pytest.mark.parametrize("kind", ["offline", "timeout", "429", "503"])
def test_errors_are_friendly_and_retry_sends_the_question_again(demo: Widget, kind: str) -> None:
    page = demo.page
    if kind == "timeout":  # the demo page, with a one-second timeout in its embed tag

        def short_timeout(route: Route) -> None:
            response = route.fetch()
            page_html = response.text().replace('src="widget.js" async', 'src="widget.js" async data-timeout="1"')
            route.fulfill(response=response, body=page_html)

        page.route(re.compile(r"/demo$"), short_timeout)
        page.reload()
    page.route(re.compile(r"/v1/ask$"), _failing(kind))
    demo.open()
    demo.input.fill(HEAT_QUESTION)
    demo.input.press("Enter")
    if kind == "timeout":  # while the service is silent: the typing indicator, and Send waits
        expect_(page.locator("clinic-faq-widget .qa-typing")).to_be_visible()
        expect_(page.get_by_role("button", name="Send")).to_be_disabled()
    expect_(demo.messages).to_have_count(3)
    reply = demo.messages.last
    expect_(page.locator("clinic-faq-widget .qa-typing")).to_have_count(0)
    expect_(reply).to_have_class(re.compile(r"\bqa-error\b"))
    expect_(reply).to_contain_text(FRIENDLY_ERRORS[kind])
    expect_(reply).not_to_contain_text("server says no")
    if kind == "timeout":
        demo.screenshot("error")

    page.unroute(re.compile(r"/v1/ask$"))
    reply.get_by_role("button", name="Retry").click()
    assert demo.focused() == "qa-input"
    answer = demo.messages.last
    expect_(answer).to_have_class(re.compile(r"\bqa-answered\b"))
    expect_(page.locator("clinic-faq-widget .qa-error")).to_have_count(0)
    expect_(page.locator("clinic-faq-widget .qa-user")).to_have_count(1)  # the retry did not repeat the question


def test_keyboard_only(demo: Widget) -> None:
    page = demo.page
    for _ in range(20):  # from the top of the page to the launcher with Tab alone
        page.keyboard.press("Tab")
        if demo.focused() == "qa-launcher":
            break
    assert demo.focused() == "qa-launcher"
    outline = demo.launcher.evaluate(
        "el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth"
    )
    assert outline == "solid 3px"  # visible focus

    page.keyboard.press("Enter")
    expect_(demo.panel).to_be_visible()
    expect_(demo.launcher).to_have_attribute("aria-expanded", "true")
    assert demo.focused() == "qa-input"
    page.keyboard.type(CLARIFY_QUESTION)
    page.keyboard.press("Enter")
    expect_(demo.messages).to_have_count(3)
    for _ in range(8):  # back from the input to the last suggestion
        page.keyboard.press("Shift+Tab")
        if demo.focused() == "qa-suggestion":
            break
    assert demo.focused() == "qa-suggestion"
    page.keyboard.press("Enter")
    expect_(demo.messages).to_have_count(5)
    expect_(demo.messages.last).to_have_class(re.compile(r"\bqa-answered\b"))

    page.keyboard.press("Escape")
    expect_(demo.panel).to_be_hidden()
    assert demo.focused() == "qa-launcher"
    expect_(demo.launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")  # reopens with the conversation kept
    expect_(demo.messages).to_have_count(5)
    for _ in range(30):
        page.keyboard.press("Shift+Tab")
        if "qa-clear" in demo.focused():
            break
    assert "qa-clear" in demo.focused()
    page.keyboard.press("Enter")
    expect_(demo.messages).to_have_count(1)  # just the greeting again
    assert demo.focused() == "qa-input"
    page.keyboard.press("Escape")
    assert demo.focused() == "qa-launcher"


def test_text_from_the_api_and_the_user_is_never_html(demo: Widget) -> None:
    payload = "<img src=x onerror=\"window.__xss='question';alert('q')\"> <script>alert(1)</script>"
    question = f"can I bring my own pillow {payload}"
    demo.open()
    reply = demo.ask(question)
    expect_(demo.messages.nth(1)).to_have_text(f"You: {question}")
    expect_(reply).to_have_class(re.compile(r"\bqa-answered\b"))
    answer = reply.locator(".qa-answer")
    expect_(answer).to_contain_text("""<img src=x onerror="window.__xss='answer';alert('answer')">""")
    expect_(answer).to_contain_text("<script>window.__xss='script';alert('script')</script>")
    expect_(answer).to_contain_text("""<a href="javascript:alert('link')">click</a>""")
    source = reply.locator(".qa-source")
    expect_(source).to_contain_text("<b>Clinic</b> policy <img src=x")
    expect_(source.locator("a")).to_have_count(0)  # a javascript: URL is not a link
    injected = demo.page.evaluate(
        """() => {
            const root = document.querySelector('clinic-faq-widget').shadowRoot;
            return {
                elements: root.querySelectorAll('img, script, b, iframe, object').length,
                unsafeLinks: [...root.querySelectorAll('a')].filter(a => !/^(https?|tel):/.test(a.href)).length,
            };
        }"""
    )
    assert injected == {"elements": 0, "unsafeLinks": 0}
    demo.page.wait_for_timeout(300)  # time for an injected image to fail and run its onerror
    assert demo.page.evaluate("() => window.__xss") is None


def test_on_a_phone_the_panel_takes_the_screen(pages: Pages, service: Service) -> None:
    page = pages.open(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto(f"{service.url}/demo")
    widget = Widget(page)
    box = widget.launcher.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375 and box["y"] + box["height"] <= 667  # on screen
    widget.launcher.tap()
    expect_(widget.panel).to_be_visible()
    assert widget.panel.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 667}
    widget.ask(HEAT_QUESTION)
    overflow = page.evaluate(
        """() => {
            const root = document.querySelector('clinic-faq-widget').shadowRoot;
            const log = root.querySelector('.qa-log');
            return [document.documentElement.scrollWidth, log.scrollWidth - log.clientWidth];
        }"""
    )
    assert overflow == [375, 0]  # no horizontal scrolling, on the page or in the conversation
    form = page.locator("clinic-faq-widget .qa-form").bounding_box()
    assert form is not None and form["y"] + form["height"] <= 667  # the input stays on screen
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "phone.png")
    widget.page.get_by_role("button", name="Close chat").tap()
    expect_(widget.panel).to_be_hidden()
    expect_(widget.launcher).to_be_visible()


@pytest.fixture(scope="session")
def axe_script() -> str:
    _require(AXE.is_file(), f"axe-core ({AXE.relative_to(ROOT)}; npm ci --prefix tests/browser)")
    return AXE.read_text(encoding="utf-8")


def test_no_serious_accessibility_violations(axe_script: str, demo: Widget, pages: Pages) -> None:
    page = demo.page
    demo.open()
    for question in (HEAT_QUESTION, CLARIFY_QUESTION, OFF_TOPIC_QUESTION, URGENT_QUESTION):
        demo.ask(question)
    assert pages.watch(page).csp_violations == []  # checked now: axe itself sets inline styles while it runs
    # evaluated through the devtools protocol: the page's CSP lets no inline script in
    page.evaluate(axe_script)

    def serious_violations() -> list[str]:
        results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    assert serious_violations() == []  # every kind of reply in the conversation
    page.keyboard.press("Escape")
    expect_(demo.panel).to_be_hidden()
    assert serious_violations() == []  # the page with the launcher only
    pages.watch(page).csp_violations.clear()


def test_embedded_on_another_site(pages: Pages, service: Service, host_site: HostSite) -> None:
    """A clinic's own page (another origin and site) loads the widget from the service and calls its API
    (CORS, QA_CORS_ORIGINS); the page's aggressive CSS does not reach into the widget."""
    host_site.pages["/clinic.html"] = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sunny Clinic</title>
<style>
  * {{ font-family: "Comic Sans MS", cursive !important; color: #ff00ff !important; letter-spacing: 4px; }}
  button {{ background: lime !important; border-radius: 0 !important; }}
  div {{ display: inline !important; }}
</style></head>
<body><h1>Sunny Clinic</h1><p>Welcome.</p>
<script src="{service.url}/widget.js" async data-color="#f5c518" data-position="left"
        data-title="Ask Sunny Clinic" data-contact-url="/contact" data-contact-label="Write to us"></script>
</body></html>"""
    page = pages.open()
    page.goto(f"{host_site.origin}/clinic.html")
    widget = Widget(page)
    expect_(widget.launcher).to_be_visible()
    style = widget.launcher.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return [s.color, s.backgroundColor, s.borderRadius, s.letterSpacing, s.fontFamily]; }"
    )
    assert style[:4] == ["rgb(0, 0, 0)", "rgb(245, 197, 24)", "999px", "normal"]  # black text on a light accent
    assert "Comic Sans" not in style[4]
    box = widget.launcher.bounding_box()
    assert box is not None and box["x"] < 100  # data-position="left"

    widget.open()
    expect_(page.locator("clinic-faq-widget .qa-title")).to_have_text("Ask Sunny Clinic")
    link = page.locator("clinic-faq-widget .qa-contact-bar").get_by_role("link", name="Write to us")
    expect_(link).to_have_attribute("href", f"{host_site.origin}/contact")
    with page.expect_response(lambda r: r.url.endswith("/v1/ask") and r.request.method == "POST") as response:
        reply = widget.ask(HEAT_QUESTION)
    assert response.value.url == f"{service.url}/v1/ask"
    assert response.value.request.all_headers()["origin"] == host_site.origin
    assert response.value.all_headers()["access-control-allow-origin"] == host_site.origin
    expect_(reply).to_have_class(re.compile(r"\bqa-answered\b"))
    widget.screenshot("embedded")
