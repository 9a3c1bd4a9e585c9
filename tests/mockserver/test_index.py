"""`GET /`: a newcomer who opens the mock's root finds every API, its docs and the credentials and
the live panel from there."""

from __future__ import annotations

import httpx

from mockserver.testing import RunningMock


def test_the_root_names_each_api_its_docs_and_the_credentials(mock_server: RunningMock) -> None:
    # Over the socket: the links are followed as a newcomer would, so one naming another host or port fails here
    # (`mock_server.client()` hands any URL to the app). One client, as a bare `httpx.get` builds an SSL context.
    with httpx.Client() as http:
        index = http.get(mock_server.base_url + "/")
        assert index.status_code == 200 and index.headers["content-type"] == "application/json"
        apis = index.json()["apis"]
        assert set(apis) == {"magicline", "seam", "vms", "control"}
        for name, api in apis.items():
            assert api["base_url"] == mock_server.urls[name]
            assert http.get(api["docs"]).status_code == 200
            assert "openapi" in http.get(api["contract"]).json()
        credentials = http.get(index.json()["credentials"])
        assert credentials.status_code == 200 and credentials.json()["vms"][0]["login"] == "alice@demo.test"
        panel = http.get(index.json()["panel"])
        assert panel.status_code == 200 and panel.headers["content-type"].startswith("text/html")
        assert http.head(mock_server.base_url + "/").status_code == 200


def test_a_browser_gets_a_page_of_links(mock_server: RunningMock) -> None:
    with mock_server.client() as http:
        page = http.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("magicline", "seam", "vms"):
        assert f'href="{mock_server.urls[name]}/docs/"' in page.text
    assert f'href="{mock_server.urls["control"]}/credentials"' in page.text
    assert f'href="{mock_server.urls["control"]}/panel"' in page.text


def test_only_the_root_is_the_index(mock_server: RunningMock) -> None:
    with mock_server.client() as http:
        assert http.get("/nothing-here").status_code == 404
        assert http.post("/").status_code in (404, 405)
