"""Take the README's picture of the panel again (docs/panel.png): `.venv/bin/python docs/panel_screenshot.py`.

A demo building at a known moment, after a VMS code was created and typed on House's keypad, a customer's QR code
was issued and Harbour Entrance went offline; shot in Debian's Chromium (see tests/mockserver/test_panel.py).
"""

from __future__ import annotations

import os
import pathlib
from datetime import UTC, datetime

import httpx
from playwright.sync_api import expect, sync_playwright

from mockserver.testing import start_mock

OUT = pathlib.Path(__file__).with_name("panel.png")
CHROMIUM = os.environ.get("DOORCODES_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "screenshot"}


def main() -> None:
    with start_mock(seed=0, start=datetime(2030, 1, 1, 8, 0, tzinfo=UTC)) as mock, sync_playwright() as playwright:
        created = httpx.post(
            mock.urls["vms"] + "/api/v1/intercom/180/codes",
            headers=VMS,
            json={"title": "Plumber", "expired_at": "2030-01-01 10:00"},
        ).json()
        httpx.get(
            mock.urls["magicline"] + "/v1/customers/1001/access-code", headers={"X-API-KEY": "demo-magicline-mission"}
        )
        httpx.put(mock.urls["control"] + "/intercoms/190/online", json={"online": False})
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(mock.urls["control"] + "/panel")
        expect(page.locator("#connection")).to_have_text("live")
        house = page.get_by_role("article", name="House")
        for digit in created["code"]:
            house.get_by_role("button", name=f"Key {digit}").click()
        house.get_by_role("button", name="Enter the code at House").click()
        expect(house.locator(".door")).to_contain_text("Unlocked")
        page.screenshot(path=str(OUT), full_page=True)
        browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
