#!/usr/bin/env python3
"""The console in a real headless Chromium (Debian's, driven by Playwright).

Run by `tests/api/console.rs` against a live `prompter` with auth required;
it can also be run by hand against one (see docs/console.md). Creates its
data through the JSON API, then walks every page as a user would. Fails on
any failed check and on any browser console error other than the network
messages of the 4xx answers it provokes on purpose. Saves one screenshot per
page under $PROMPTER_UI_SCREENSHOTS.

Environment:
  PROMPTER_UI_BASE         http://127.0.0.1:PORT
  PROMPTER_UI_ORG          the org the keys belong to
  PROMPTER_UI_ORG_KEY      an admin key for the whole org (workspace picker)
  PROMPTER_UI_WS_KEY       a write key fixed to workspace PROMPTER_UI_WS
  PROMPTER_UI_WS           that workspace (the data goes there)
  PROMPTER_UI_DRIFT_ID     a template of that workspace with a drift event
  PROMPTER_UI_OPEN_BASE    (optional) a server on the same database with auth off
  PROMPTER_UI_SCREENSHOTS  where screenshots go
  CHROMIUM                 the browser (default /usr/bin/chromium)
"""

import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright, expect

BASE = os.environ["PROMPTER_UI_BASE"].rstrip("/")
ORG = os.environ["PROMPTER_UI_ORG"]
WS = os.environ["PROMPTER_UI_WS"]
ORG_KEY = os.environ["PROMPTER_UI_ORG_KEY"]
WS_KEY = os.environ["PROMPTER_UI_WS_KEY"]
DRIFT_ID = os.environ["PROMPTER_UI_DRIFT_ID"]
OPEN_BASE = os.environ.get("PROMPTER_UI_OPEN_BASE", "").rstrip("/")
SHOTS = os.environ.get("PROMPTER_UI_SCREENSHOTS", "target/ui-screenshots")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

XSS_NAME = '<script>window.__xss=1</script>'
XSS_TEXT = '"><img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>'

failures = []
step_name = "setup"


def check(cond, what):
    if not cond:
        failures.append(f"[{step_name}] {what}")
        print(f"FAIL [{step_name}] {what}", flush=True)


def step(name):
    global step_name
    step_name = name
    print(f"== {name}", flush=True)


# ------------------------------------------------------------------ API


def call(method, path, body=None, key=ORG_KEY, query=None):
    url = BASE + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as res:
            text = res.read().decode()
            return res.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, (json.loads(text) if text else None)


def create(name, user, system="You are terse.", ws=WS, model="gpt-4o"):
    status, body = call("POST", "/api/prompt-templates", {
        "org_id": ORG, "workspace_id": ws, "name": name, "model_id": model,
        "system_instructions": system, "user_prompt_template": user,
        "country_set": ["uk", "de"], "inference_params": {"temperature": 0.2},
    })
    assert status == 201, (status, body)
    return body["id"]


def move(name, label, revision, force=False):
    status, body = call("PUT", f"/api/prompts/{urllib.parse.quote(name, safe='')}/labels/{label}",
                        {"revision": revision, "force": force},
                        query={"org_id": ORG, "workspace_id": WS})
    assert status == 200, (status, body)


def seed():
    """Prompts, revisions, labels and results, all through the API."""
    ids = {}
    # greeting: r1 uses {{brand}}; r2 also {{tone}} (a contract change).
    ids["g1"] = create("greeting", "Say hello to {{brand}}.\nKeep it short.")
    ids["g2"] = create("greeting", "Say hello to {{brand}} in a {{tone}} tone.\nKeep it short.\nSign as Prompter.",
                       system="You are terse and friendly.")
    ids["g3"] = create("greeting", "Say hi to {{brand}}.\nKeep it short.")
    move("greeting", "production", 1)
    move("greeting", "staging", 3)
    # 24 more prompts for pagination (page size 20) and search.
    for i in range(24):
        create(f"item-{i:02d}", f"Prompt number {i} about {{{{brand}}}}.")
    # XSS strings as a prompt name and in the texts.
    ids["xss"] = create(XSS_NAME, XSS_TEXT, system=XSS_TEXT)
    # Results: runs of r2 in two countries.
    for country in ["uk", "de", "uk"]:
        status, body = call("POST", f"/api/prompt-templates/{ids['g2']}/run",
                            {"rendered_prompt": f"Say hello to Acme ({country})", "country": country,
                             "brand_name": "Acme"})
        assert status == 200, (status, body)
        ids.setdefault("results", []).append(body)
    return ids


# ------------------------------------------------------------------ browser


class Console:
    """Console errors and page errors, with windows where provoked 4xx
    network messages are expected."""

    def __init__(self):
        self.allowed = set()
        self.errors = []

    def attach(self, page):
        page.on("console", self.on_console)
        page.on("pageerror", lambda e: self.errors.append(f"[{step_name}] page error: {e}"))
        page.on("dialog", lambda d: (self.errors.append(f"[{step_name}] a dialog opened: {d.message}"), d.dismiss()))

    def on_console(self, msg):
        if msg.type != "error":
            return
        m = re.search(r"status of (\d{3})", msg.text)
        if m and int(m.group(1)) in self.allowed:
            return
        self.errors.append(f"[{step_name}] console error: {msg.text}")

    def expect(self, *statuses):
        outer = self

        class Window:
            def __enter__(self):
                outer.allowed = set(statuses)

            def __exit__(self, *a):
                outer.allowed = set()

        return Window()


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def no_xss(page):
    check(page.evaluate("() => window.__xss === undefined"), "an injected script ran (window.__xss is set)")


def fields_have_labels(page):
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map(el => el.id || el.name || el.outerHTML.slice(0, 60))""")
    check(not unlabeled, f"form fields without a label: {unlabeled}")


def fits(page, width):
    sw = page.evaluate("() => document.documentElement.scrollWidth")
    check(sw <= width, f"the page is {sw} px wide at a {width} px viewport (horizontal scrolling)")


def walk(page, ctx, console, ids, q):

    # 1. Sign-in bar: no key → 401 → the bar; a bad key; a good org key.
    step("sign in: auth required, no key")
    with console.expect(401):
        page.goto(f"{BASE}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check(page.url == f"{BASE}/ui/", f"GET / redirects to /ui/ (at {page.url})")
    fields_have_labels(page)
    shot(page, "01-sign-in")

    step("sign in: a bad key shows the server's message")
    with console.expect(401):
        page.get_by_label("API key").fill("pk_bad_not-a-key")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#signin-message")).to_contain_text("refused the key")
    msg = page.locator("#signin-message").inner_text()
    check("API key" in msg or "key" in msg.lower(), f"the server's message is shown: {msg!r}")
    check(page.evaluate("() => sessionStorage.getItem('prompter.key')") is None, "a refused key is not kept")
    shot(page, "02-sign-in-bad-key")

    step("sign in: an org key shows the workspace picker")
    page.get_by_label("API key").fill(ORG_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Workspace")).to_be_visible()
    check(page.evaluate("() => sessionStorage.getItem('prompter.key')") == ORG_KEY, "the key is kept in sessionStorage")
    check(ORG_KEY not in page.url, "the key is not in the URL")
    page.get_by_label("Workspace").select_option(label=f"{ORG} / {WS}")
    expect(page.get_by_role("heading", name="Prompts")).to_be_visible()
    check(f"org_id={ORG}" in page.url and f"workspace_id={WS}" in page.url, f"the scope is in the URL: {page.url}")

    # 2. Prompts: list, pagination, search, XSS names shown literally.
    step("prompts: list and pagination")
    rows = page.locator("#prompts tbody tr")
    expect(rows).to_have_count(20)
    check(page.locator("#prompts").get_by_text("greeting", exact=True).count() == 1, "greeting is listed")
    expect(page.locator("#prompts")).to_contain_text("production → r1")
    shot(page, "03-prompts")
    xss_link = page.locator("#prompts a", has_text=XSS_NAME)
    expect(xss_link).to_have_count(1)
    no_xss(page)
    page.get_by_role("link", name="Next page →").click()
    expect(rows).to_have_count(7)  # 27 prompts (weekly-digest too): 20 + 7
    check("cursor=" in page.url, "the page cursor is in the URL")
    page.reload()
    expect(rows).to_have_count(7)
    expect(page.locator("#prompts")).to_contain_text("item-23")
    shot(page, "04-prompts-page-2")

    step("prompts: search by name")
    page.get_by_label("Search by name").fill("ITEM-1")
    page.get_by_label("Search by name").press("Enter")
    expect(rows).to_have_count(10)
    check("search=ITEM-1" in page.url, "the search is in the URL")
    shot(page, "05-prompts-search")

    step("keyboard: tab to a prompt link and open it with Enter")
    page.goto(f"{BASE}/ui/prompts?{q}&search=greeting")
    expect(rows).to_have_count(1)
    page.locator("body").click(position={"x": 5, "y": 5})
    reached = False
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.textContent") == "greeting":
            reached = True
            break
    check(reached, "the prompt link is reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="greeting", exact=True)).to_be_visible()

    # 3. Prompt: revisions, a label move with the contract warning, force, history.
    step("prompt: revisions newest first with labels")
    check(re.search(r"/ui/prompts/greeting\?", page.url) is not None, f"shareable prompt URL: {page.url}")
    revs = page.locator("#revisions tbody tr")
    expect(revs).to_have_count(3)
    check(revs.nth(0).inner_text().startswith("r3") or "r3" in revs.nth(0).inner_text(), "newest first")
    expect(revs.nth(0)).to_contain_text("staging")
    expect(revs.nth(2)).to_contain_text("production")
    fields_have_labels(page)

    step("prompt: move production to r2 → VARIABLE_CONTRACT_CHANGED → force")
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("To revision").select_option("2")
    page.get_by_role("button", name="Move label…").click()
    expect(page.locator("#confirm-text")).to_contain_text("from r1 to r2")
    check(page.evaluate("() => document.activeElement.id") == "confirm-move", "the confirm button has the focus")
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-text")).to_have_count(0)
    page.get_by_role("button", name="Move label…").click()
    expect(page.locator("#confirm-text")).to_contain_text("from r1 to r2")
    with console.expect(409):
        page.get_by_role("button", name="Confirm move").click()
        warning = page.locator("#contract-warning")
        expect(warning).to_be_visible()
    expect(warning).to_contain_text("tone")
    expect(warning).to_contain_text("MISSING_VARIABLES")
    shot(page, "06-prompt-contract-warning")
    status, body = call("GET", "/api/prompts/greeting", query={"org_id": ORG, "workspace_id": WS, "label": "production"})
    check(body.get("revision") == 1, "the label did not move before force")
    page.get_by_role("button", name=re.compile("^Force")).click()
    expect(page.get_by_role("status")).to_contain_text("now points to r2")
    status, body = call("GET", "/api/prompts/greeting", query={"org_id": ORG, "workspace_id": WS, "label": "production"})
    check(body.get("revision") == 2, f"the forced move happened (production at {body.get('revision')})")
    history = page.locator(".history", has_text="production")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history.locator("tbody tr").first).to_contain_text("r1")
    shot(page, "07-prompt-moved-history")

    # 4. Compare two revisions.
    step("compare: r1 and r2 side by side")
    page.locator("#pick-3").uncheck()
    page.locator("#pick-1").check()
    page.locator("#pick-2").check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("heading", name="Compare greeting r1 with greeting r2")).to_be_visible()
    check(f"left={ids['g1']}" in page.url and f"right={ids['g2']}" in page.url, f"compare URL: {page.url}")
    paths = page.locator("#config-diff tbody tr")
    check(paths.count() >= 2, "changed config paths listed")
    expect(page.locator("#config-diff")).to_contain_text("user_prompt_template")
    expect(page.locator("#config-diff")).to_contain_text("system_instructions")
    check(page.locator("table.diff tr.d-changed").count() >= 1, "changed lines highlighted")
    check(page.locator("table.diff tr.d-add").count() >= 1, "added lines highlighted")
    check(page.locator("table.diff tr.d-same").count() >= 1, "unchanged lines shown")
    shot(page, "08-compare")
    page.reload()
    expect(page.locator("#config-diff")).to_contain_text("user_prompt_template")

    # 5. Template: config, canonical JSON, hash, render preview.
    step("template: config, canonical JSON, variables, render with a missing variable")
    page.goto(f"{BASE}/ui/templates/{ids['g2']}")
    expect(page.get_by_role("heading", name="greeting r2")).to_be_visible()
    status, t = call("GET", f"/api/prompt-templates/{ids['g2']}")
    expect(page.locator("#config-hash")).to_have_text(t["config_hash"])
    expect(page.locator("#canonical")).to_contain_text('"user_prompt_template"')
    expect(page.locator("#variables")).to_have_text("brand, tone")
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    check(page.locator(".results tbody tr").count() == 3, "latest results listed")
    fields_have_labels(page)
    page.get_by_label("brand").fill("Acme <b>Corp</b>")
    with console.expect(422):
        page.get_by_role("button", name="Render").click()
        expect(page.locator("#missing-variables")).to_contain_text("tone")
    shot(page, "09-template-missing-variable")
    page.get_by_label("tone").fill("warm")
    page.get_by_role("button", name="Render").click()
    expect(page.locator("#render-output .message.user")).to_contain_text("Say hello to Acme <b>Corp</b> in a warm tone.")
    expect(page.locator("#render-output .message.system")).to_contain_text("You are terse and friendly.")
    shot(page, "10-template-rendered")

    # 6. Results: list with filters, one result.
    step("results: list filtered by country, then one result")
    page.get_by_role("link", name="All results, with filters →").click()
    expect(page.locator(".results tbody tr")).to_have_count(3)
    page.get_by_label("Country").fill("de")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".results tbody tr")).to_have_count(1)
    check("country=de" in page.url, "filters in the URL")
    page.get_by_label("Version").select_option(index=1)
    page.get_by_label("Country").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".results tbody tr")).to_have_count(3)
    page.get_by_label("Stored from").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No results.")).to_be_visible()
    check("since=2099-01-01T00%3A00%3A00.000Z" in page.url, f"time filter in the URL: {page.url}")
    page.get_by_label("Stored from").fill("2000-01-01T00:00")
    page.get_by_label("Stored before").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".results tbody tr")).to_have_count(3)
    page.reload()
    expect(page.locator(".results tbody tr")).to_have_count(3)
    expect(page.get_by_label("Stored before")).to_have_value("2099-01-01T00:00")
    fields_have_labels(page)
    shot(page, "11-results")
    page.locator(".results tbody tr a").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Result "))).to_be_visible()
    first = ids["results"][-1]
    expect(page.locator("#version-key")).to_have_text(first["provider_version_key"])
    expect(page.locator("#response-json")).to_be_visible()
    check(page.locator("#output").count() == 1, "the model's text is shown")
    expect(page.locator("#fingerprint")).to_have_text(first["system_fingerprint"] or "")
    shot(page, "12-result")
    page.reload()
    expect(page.locator("#version-key")).to_have_text(first["provider_version_key"])

    # 7. Drift.
    step("drift: events per provider/model, linked to the template")
    page.locator("#nav").get_by_role("link", name="Drift").click()
    expect(page.get_by_role("heading", name="Drift", exact=True)).to_be_visible()
    expect(page.locator("table.drift tbody tr")).to_have_count(1)
    shot(page, "13-drift")
    check(f"org_id={ORG}" in page.url and f"workspace_id={WS}" in page.url, f"drift URL keeps the scope: {page.url}")
    page.reload()
    expect(page.locator("table.drift tbody tr")).to_have_count(1)
    page.locator("table.drift tbody tr a").first.click()
    check(page.url.endswith(f"/ui/templates/{DRIFT_ID}"), f"the drift event links to its template ({page.url})")
    expect(page.locator("#versions tbody tr")).to_have_count(2)

    # 8. Batches: one made through the API runs to done; its items link to results.
    step("batches: a two-country batch reaches done, each item links to its result")
    status, body = call("POST", f"/api/prompt-templates/{ids['g2']}/batches",
                        {"countries": ["uk", "de"], "variables": {"tone": "warm"}, "brand_name": "Acme"})
    assert status == 202, (status, body)
    ids["batch"] = batch_id = body["batch_id"]
    page.goto(f"{BASE}/ui/prompts?{q}")
    page.locator("#nav").get_by_role("link", name="Batches").click()
    expect(page.get_by_role("heading", name="Batches", exact=True)).to_be_visible()
    check(f"org_id={ORG}" in page.url and f"workspace_id={WS}" in page.url, f"batches URL keeps the scope: {page.url}")
    expect(page.locator("#batches tbody tr")).to_have_count(1)
    expect(page.locator("#batches tbody tr progress")).to_have_attribute("max", "2")
    page.locator("#batches a.batch-link").first.click()
    check(f"/ui/batches/{batch_id}" in page.url, f"the list links to the batch ({page.url})")
    # The page polls while the batch runs: no reload here.
    expect(page.locator("#batch-state .status")).to_have_text("done")
    expect(page.locator("#batch-progress")).to_contain_text("2 of 2")
    expect(page.locator("#batch-progress progress")).to_have_attribute("value", "2")
    expect(page.locator("#items tbody tr")).to_have_count(2)
    expect(page.locator("#items tbody tr .status")).to_have_text(["done", "done"])
    countries = sorted(page.locator("#items tbody tr td:nth-child(1)").all_inner_texts())
    check(countries == ["DE", "UK"], f"one item per country: {countries}")
    expect(page.locator("#items tbody tr a")).to_have_count(2)
    no_xss(page)
    shot(page, "13b-batch")
    status, detail = call("GET", f"/api/batches/{batch_id}")
    first_result = detail["items"][0]["result_id"]
    page.locator(f"#items a[href='/ui/results/{first_result}']").click()
    expect(page.get_by_role("heading", name=re.compile("^Result "))).to_be_visible()
    check(page.url.endswith(f"/ui/results/{first_result}"), f"the item links to its result ({page.url})")
    expect(page.locator("dl.facts")).to_contain_text(detail["items"][0]["country"])
    page.go_back()
    expect(page.locator("#items tbody tr")).to_have_count(2)
    page.get_by_role("link", name=re.compile("results →")).click()
    expect(page.locator("#batch-filter")).to_be_visible()
    expect(page.locator(".results tbody tr")).to_have_count(2)
    check(f"batch_id={batch_id}" in page.url, f"the batch filter is in the URL: {page.url}")
    page.locator("#nav").get_by_role("link", name="Batches").click()
    expect(page.locator("#batches tbody tr .status")).to_have_text("done")
    expect(page.locator("#batches tbody tr")).to_contain_text("2 of 2")
    shot(page, "13a-batches")

    # XSS strings in texts, on the template page.
    step("XSS strings are shown literally")
    page.goto(f"{BASE}/ui/templates/{ids['xss']}")
    expect(page.locator("#user-text")).to_have_text(XSS_TEXT)
    expect(page.locator("#system-text")).to_have_text(XSS_TEXT)
    expect(page.get_by_role("heading", level=1)).to_contain_text(XSS_NAME)
    check(page.locator("main img").count() == 0, "no <img> was created from a prompt text")
    no_xss(page)
    shot(page, "14-xss-literal")

    # A 401 while signed in (the key no longer works) → the sign-in bar.
    step("a 401 mid-session brings back the sign-in bar with the server's message")
    page.evaluate("() => sessionStorage.setItem('prompter.key', 'pk_revoked_key')")
    with console.expect(401):
        page.locator("#nav").get_by_role("link", name="Prompts").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-message")).to_contain_text("refused the key")
    shot(page, "15-sign-in-after-401")

    # A workspace key: no picker, the scope comes from the key.
    step("a workspace key: no picker, scope from the key")
    page.get_by_label("API key").fill(WS_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Prompts")).to_be_visible()
    check(page.locator("select#workspace").count() == 0, "no workspace picker for a workspace key")
    expect(page.locator("#workspace-picker")).to_contain_text(f"{ORG} / {WS}")

    # Auth off (loopback): no key is asked; the picker lists every workspace.
    if OPEN_BASE:
        step("auth off: no key asked, workspace picker")
        page.goto(f"{OPEN_BASE}/ui/")
        expect(page.get_by_role("heading", name="Prompts")).to_be_visible()
        check(page.get_by_label("API key").count() == 0, "no key is asked with auth off")
        expect(page.locator("#session")).to_contain_text("Auth off")
        page.get_by_label("Workspace").select_option(label=f"{ORG} / {WS}")
        expect(page.locator("#prompts tbody tr")).to_have_count(20)
        shot(page, "19-auth-off")

    # 390 px wide.
    step("phone width: 390 px")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{BASE}/ui/prompts?{q}")
    expect(rows).to_have_count(20)
    fits(page, 390)
    shot(page, "16-phone-prompts")
    page.goto(f"{BASE}/ui/prompts/greeting?{q}")
    expect(revs).to_have_count(3)
    fits(page, 390)
    shot(page, "17-phone-prompt")
    page.goto(f"{BASE}/ui/templates/{ids['g2']}")
    expect(page.locator("#config-hash")).to_be_visible()
    fits(page, 390)
    shot(page, "18-phone-template")
    page.goto(f"{BASE}/ui/batches/{ids['batch']}")
    expect(page.locator("#items tbody tr")).to_have_count(2)
    fits(page, 390)
    shot(page, "18b-phone-batch")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Security headers of the console.
    step("security headers")
    res = page.request.get(f"{BASE}/ui/prompts")
    h = res.headers
    csp = h.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"CSP: {csp}")
    check("frame-ancestors 'none'" in csp and h.get("x-frame-options") == "DENY", "framing denied")
    check(h.get("x-content-type-options") == "nosniff", "nosniff")
    check(h.get("referrer-policy") == "no-referrer", "referrer policy")

    # Another site POSTs to the API: 403 CROSS_ORIGIN, nothing created.
    step("a page on another origin that POSTs to the API gets 403")
    evil = ctx.new_page()
    evil.route("http://evil.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=f"""
        <form id=f method=POST action="{BASE}/api/prompt-templates" enctype="text/plain">
        <input name='{{"org_id":"{ORG}","workspace_id":"{WS}","name":"evil","model_id":"gpt-4o","user_prompt_template":"x","pad":"' value='"}}'>
        </form>"""))
    evil.goto("http://evil.test/")
    with evil.expect_navigation() as nav:
        evil.evaluate("() => document.getElementById('f').submit()")
    res = nav.value
    check(res is not None and res.status == 403, f"cross-origin POST answered {res.status if res else None}")
    check(res is not None and "CROSS_ORIGIN" in res.text(), "with CROSS_ORIGIN")
    status, body = call("GET", "/api/prompts", query={"org_id": ORG, "workspace_id": WS, "search": "evil"})
    check(status == 200 and body["items"] == [], "nothing was created")
    evil.close()



def main():
    step("seed data through the API")
    ids = seed()
    q = urllib.parse.urlencode({"org_id": ORG, "workspace_id": WS})
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    console = Console()
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="prompter-ui-") as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=flags,
            viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="UTC")
        ctx.set_default_timeout(30000)  # CI runs this beside the rest of the suite
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        console.attach(page)
        try:
            walk(page, ctx, console, ids, q)
        except Exception:
            shot(page, "zz-failed-step")
            print(f"the page at the failure: {SHOTS}/zz-failed-step.png", flush=True)
            raise
        ctx.close()

    for e in console.errors:
        failures.append(e)
    print(f"screenshots in {SHOTS}: {sorted(os.listdir(SHOTS))}", flush=True)
    if failures:
        print("\n".join(["FAILURES:"] + failures), flush=True)
        return 1
    print("console walk: every check passed", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a Playwright timeout names the step it failed in
        print(f"FAIL [{step_name}] {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
