"""The web console in a real headless Chromium (Playwright driving Debian's ``chromium``).

A real ``rkat-rest`` serves the page; the tests click and type as a person
would. The mock provider is slowed by ``RKAT_MOCK_TOKEN_DELAY_MS`` so a turn is
visibly running while the page is looked at. Screenshots of the main views go
to ``test-artifacts/console/`` (``RKAT_TEST_ARTIFACTS`` moves it).

Without a Chromium these tests are skipped with a message saying so, unless
``RKAT_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes a missing browser
a failure: CI never skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so and skips (or fails under RKAT_REQUIRE_BROWSER=1)
    expect = None

from cli_process import RKAT, cli_env
from test_rest_server import RestServer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("RKAT_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REALM = "console"
DELAY = {"RKAT_MOCK_TOKEN_DELAY_MS": "60"}
#: What the page shows for a turn that is still streaming (generous: CI machines are slow).
WAIT_MS = 30_000


def chromium_path() -> str | None:
    """``$RKAT_CHROMIUM`` when set (that one or none), else the first Chromium found."""
    chosen = os.environ.get("RKAT_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    missing = None
    if path is None:
        missing = ("no Chromium found (apt-get install chromium chromium-driver, or set RKAT_CHROMIUM)"
                   if not os.environ.get("RKAT_CHROMIUM") else
                   f"RKAT_CHROMIUM={os.environ['RKAT_CHROMIUM']} is not an executable")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("RKAT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (RKAT_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(f"SKIPPED the console's browser tests: {missing}")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    with RestServer("--realm", REALM, "--state-root", str(root), env=DELAY) as running:
        running.state_root = root  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def post(server: RestServer, path: str, body: dict, **headers: str) -> dict:
    reply = httpx2.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def words(count: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}" for i in range(count))


def test_list_search_open_send_and_watch_it_stream(server, page):
    alpha = post(server, "/sessions", {"prompt": "first of team alpha", "labels": {"team": "alpha"}})
    post(server, "/sessions", {"prompt": "someone else's", "labels": {"team": "beta"}})

    page.goto(f"{server.url}/")
    assert page.url.endswith("/console")
    rows = page.locator("#sessions-body tr")
    rows.nth(1).wait_for()
    assert rows.count() >= 2
    alpha_row = page.locator(f'tr[data-session="{alpha["session_id"]}"]')
    assert "team=alpha" in alpha_row.inner_text() and "mock" in alpha_row.inner_text()
    shot(page, "sessions")

    page.get_by_label("Search").fill("team=alpha")
    expect(page.locator("#sessions-body tr")).to_have_count(1)
    assert page.locator("#sessions-body tr").first.get_attribute("data-session") == alpha["session_id"]

    page.get_by_role("link", name=f"Open session {alpha['session_id']}").click()
    transcript = page.locator("#transcript")
    transcript.get_by_text("Mock reply to: first of team alpha").wait_for()
    assert "first of team alpha" in transcript.locator(".message.user").first.inner_text()

    prompt = words(40)  # the mock echoes it: ~45 words at 60 ms each, a few seconds of streaming
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Send").click()
    live = page.locator("#live .text")
    expect(live).to_contain_text("word3")
    seen_while_running = live.inner_text()
    assert page.locator("#interrupt").is_visible()  # the turn had not ended when the text was there
    assert f"Mock reply to: {prompt}".startswith(seen_while_running.strip())
    assert len(seen_while_running) < len(f"Mock reply to: {prompt}")
    shot(page, "session-streaming")
    transcript.get_by_text(f"Mock reply to: {prompt}").wait_for()
    page.locator("#interrupt").wait_for(state="hidden")
    assert "stop: end_turn" in transcript.inner_text()
    # each past model call shows its usage (from the event log's turn_completed), the new turn's too
    usage = transcript.locator(".message.assistant .usage")
    expect(usage).to_have_count(2)
    assert re.fullmatch(r"usage: in \d+, out \d+", usage.last.inner_text().strip())
    page.reload()
    expect(transcript.locator(".message.assistant .usage")).to_have_count(2)
    shot(page, "session")


def test_interrupt_keeps_the_partial_answer(server, page):
    session = post(server, "/sessions", {"prompt": "short"})
    page.goto(f"{server.url}/console#/session/{session['session_id']}")
    page.locator("#transcript").get_by_text("Mock reply to: short").wait_for()
    page.get_by_label("Prompt").fill(words(300, "long"))
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#live .text")).to_contain_text("long2")
    page.get_by_role("button", name="Interrupt").click()
    page.get_by_text("The turn was interrupted; what was said is kept.").wait_for()
    last = page.locator("#transcript .message.assistant").last
    last.get_by_text("stop: cancelled").wait_for()
    kept = last.locator(".text").inner_text()
    assert kept.startswith("Mock reply to: long0 long1 long2") and "long299" not in kept
    history = httpx2.get(f"{server.url}/sessions/{session['session_id']}/history", timeout=60).json()["messages"]
    assert history[-1]["stop_reason"] == "cancelled" and history[-1]["blocks"][0]["data"]["text"] == kept


def test_a_turn_started_by_rkat_run_elsewhere_appears_live(server, page):
    session = post(server, "/sessions", {"prompt": "watch me"})
    sid = session["session_id"]
    page.goto(f"{server.url}/console#/session/{sid}")
    page.locator("#transcript").get_by_text("Mock reply to: watch me").wait_for()
    page.wait_for_timeout(300)  # the page's event stream is open once the transcript is drawn
    text = words(30, "cli")
    cli = subprocess.Popen([RKAT, "--state-root", str(server.state_root), "--realm", REALM, "run", "--resume", sid,
                            "--param", "token_delay_ms=60", text], env=cli_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        expect(page.locator("#live .text")).to_contain_text("cli2")
        assert cli.poll() is None  # seen live, while the other process was still running its turn
        page.locator("#transcript").get_by_text(f"Mock reply to: {text}").wait_for()
    finally:
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert text in page.locator("#transcript .message.user").last.inner_text()


def test_config_conflict_is_shown_then_resolved(server, page):
    page.goto(f"{server.url}/console#/config")
    area = page.get_by_label("Config document (JSON)")
    expect(area).to_have_value(re.compile("max_tool_calls"))
    mine = area.input_value().replace('"max_tool_calls": null', '"max_tool_calls": 7', 1)
    assert '"max_tool_calls": 7' in mine
    area.fill(mine)
    # Someone else writes meanwhile.
    current = httpx2.get(f"{server.url}/config", timeout=60).json()
    changed = httpx2.patch(f"{server.url}/config", json={"patch": {"agent": {"max_turns": 42}},
                                                         "expected_generation": current["generation"]}, timeout=60)
    assert changed.status_code == 200
    generation = changed.json()["generation"]
    page.get_by_role("button", name="Save").click()
    conflict = page.locator("#config-conflict")
    conflict.get_by_text("Conflict: the config changed elsewhere").wait_for()
    assert f"now generation {generation}" in conflict.inner_text()
    assert "agent.max_turns: 100 → 42" in conflict.inner_text()  # theirs
    assert "budget.max_tool_calls: null → 7" in conflict.inner_text()  # mine
    assert "null\n" not in conflict.inner_text() and "Both changed" not in conflict.inner_text()
    shot(page, "config-conflict")
    server_side = httpx2.get(f"{server.url}/config", timeout=60).json()
    assert server_side["config"]["agent"]["max_turns"] == 42  # nothing overwritten
    assert server_side["config"]["budget"]["max_tool_calls"] is None

    page.get_by_role("button", name="Load the latest, keep my edit").click()
    expect(page.locator("#config-generation")).to_have_text(str(generation))
    assert '"max_turns": 42' in area.input_value() and '"max_tool_calls": 7' in area.input_value()
    page.get_by_role("button", name="Save").click()
    page.get_by_text(f"Saved: generation {generation + 1}.").wait_for()
    final = httpx2.get(f"{server.url}/config", timeout=60).json()["config"]
    assert final["agent"]["max_turns"] == 42 and final["budget"]["max_tool_calls"] == 7

    # "Load the latest" alone throws an unsaved edit away, on purpose.
    area.fill(area.input_value().replace('"max_turns": 42', '"max_turns": 43', 1))
    page.get_by_role("button", name="Load the latest", exact=True).click()
    page.get_by_text(f"Loaded generation {generation + 1}.").wait_for()
    assert '"max_turns": 42' in area.input_value()


def test_models_and_credentials_without_keys(server, page):
    page.goto(f"{server.url}/console#/models")
    page.locator('#credentials li[data-provider="mock"]').get_by_text("credentials set").wait_for()
    assert "no credentials (set RKAT_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY)" in \
        page.locator('#credentials li[data-provider="anthropic"]').inner_text()
    assert page.locator("#models-body tr").count() > 3
    shot(page, "models")


def test_narrow_screen_and_keyboard(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        session = post(server, "/sessions", {"prompt": "on a phone"})
        page.goto(f"{server.url}/console#/session/{session['session_id']}")
        page.locator("#transcript").get_by_text("Mock reply to: on a phone").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a narrow screen ({width}px)"
        page.get_by_label("Prompt").fill("typed with the keyboard")
        page.keyboard.press("Control+Enter")
        page.locator("#transcript").get_by_text("Mock reply to: typed with the keyboard").wait_for()
        shot(page, "session-narrow")
    finally:
        context.close()


def test_token_login_on_a_non_loopback_bind(tmp_path, browser):
    with RestServer("--realm", REALM, "--state-root", str(tmp_path), "--host", "0.0.0.0",
                    "--auth-token", "s3cret") as server:
        post(server, "/sessions", {"prompt": "locked"}, Authorization="Bearer s3cret")
        port = server.url.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        assert httpx2.get(f"{base}/sessions", timeout=60).status_code == 401
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            page.goto(f"{base}/")
            page.get_by_role("heading", name="Sign in").wait_for()
            page.get_by_label("Token").fill("wrong")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("That token was refused.").wait_for()
            shot(page, "login")
            page.get_by_label("Token").fill("s3cret")
            page.get_by_role("button", name="Sign in").click()
            page.locator("#sessions-body tr").first.wait_for()
            assert page.locator("#sessions-body tr").count() == 1
            page.reload()  # kept for the tab
            page.locator("#sessions-body tr").first.wait_for()
            assert page.locator("#login-view").is_hidden()
        finally:
            context.close()


def test_a_new_session_opens_at_once_and_streams_its_first_turn(server, page):
    page.goto(f"{server.url}/console")
    prompt = words(40, "first")
    page.get_by_label("New session").fill(prompt)
    page.get_by_role("button", name="Start").click()
    live = page.locator("#live .text")
    expect(live).to_contain_text("first3")
    assert "#/session/" in page.url  # the page moved to the session while its first turn streams
    assert page.locator("#interrupt").is_visible()
    assert len(live.inner_text()) < len(f"Mock reply to: {prompt}")
    page.locator("#transcript").get_by_text(f"Mock reply to: {prompt}").wait_for()
    page.locator("#interrupt").wait_for(state="hidden")
    sid = page.url.rsplit("/", 1)[1]
    # Then the page follows the session as usual: a turn started elsewhere shows up.
    post_turn = httpx2.post(f"{server.url}/sessions/{sid}/messages", json={"prompt": "from elsewhere"}, timeout=60)
    assert post_turn.status_code == 200
    page.locator("#transcript").get_by_text("Mock reply to: from elsewhere").wait_for()


@pytest.mark.parametrize("required", [False, True])
def test_without_a_browser_it_skips_saying_so_and_ci_fails(tmp_path, required):
    """``make test`` on a machine without Chromium skips these tests, loudly; under .ci/run it fails."""
    env = {**os.environ, "RKAT_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("RKAT_REQUIRE_BROWSER", None)
    if required:
        env["RKAT_REQUIRE_BROWSER"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         f"{__file__}::test_models_and_credentials_without_keys"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    if required:
        assert run.returncode != 0, output
        assert "browser tests required (RKAT_REQUIRE_BROWSER=1) but RKAT_CHROMIUM=" in output, output
    else:
        assert run.returncode == 0, output
        assert "SKIPPED the console's browser tests: RKAT_CHROMIUM=" in output and "1 skipped" in output, output
