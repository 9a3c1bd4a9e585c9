"""`GET /`: a newcomer who opens the mock's root finds every API, its docs and the credentials and
the live panel from there."""

from __future__ import annotations

import httpx

from mockserver.testing import RunningMock


def test_the_root_names_each_api_its_docs_and_the_credentials(mock_server: RunningMock) -> None:
    index = httpx.get(mock_server.base_url + "/")
    assert index.status_code == 200 and index.headers["content-type"] == "application/json"
    apis = index.json()["apis"]
    assert set(apis) == {"magicline", "seam", "vms", "control"}
    for name, api in apis.items():
        assert api["base_url"] == mock_server.urls[name]
        assert httpx.get(api["docs"]).status_code == 200
        assert "openapi" in httpx.get(api["contract"]).json()
    credentials = httpx.get(index.json()["credentials"])
    assert credentials.status_code == 200 and credentials.json()["vms"][0]["login"] == "alice@demo.test"
    panel = httpx.get(index.json()["panel"])
    assert panel.status_code == 200 and panel.headers["content-type"].startswith("text/html")
    assert httpx.head(mock_server.base_url + "/").status_code == 200


def test_a_browser_gets_a_page_of_links(mock_server: RunningMock) -> None:
    page = httpx.get(mock_server.base_url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("magicline", "seam", "vms"):
        assert f'href="{mock_server.urls[name]}/docs/"' in page.text
    assert f'href="{mock_server.urls["control"]}/credentials"' in page.text
    assert f'href="{mock_server.urls["control"]}/panel"' in page.text


def test_only_the_root_is_the_index(mock_server: RunningMock) -> None:
    assert httpx.get(mock_server.base_url + "/nothing-here").status_code == 404
    assert httpx.post(mock_server.base_url + "/").status_code in (404, 405)
