"""Looking into the test Swift account directly (plain HTTP, no gateway code):
listings, manifests, and the pieces no object references any more."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from testservers.swift import SwiftServer

NO_PROXY = {"http": "", "https": ""}


class SwiftAccount:
    def __init__(self, server: SwiftServer) -> None:
        self.server = server
        self._token = ""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``path`` is relative to the storage URL (``container/object``), unquoted."""
        url = f"{self.server.storage_url}/{quote(path)}" if path else self.server.storage_url
        for _ in range(2):
            if not self._token:
                self._token = self.server.auth_token()
            headers = {"X-Auth-Token": self._token, **kwargs.pop("headers", {})}
            resp = requests.request(
                method, url, headers=headers, proxies=NO_PROXY, timeout=60, **kwargs
            )
            if resp.status_code != 401:
                return resp
            self._token = ""
        return resp

    def names(self, container: str, prefix: str = "") -> list[str]:
        out: list[str] = []
        while True:
            params = {"format": "json", "prefix": prefix, "marker": out[-1] if out else ""}
            resp = self.request("GET", container, params=params)
            if resp.status_code == 404:
                return out
            resp.raise_for_status()
            page = resp.json() if resp.status_code == 200 else []
            if not page:
                return out
            out.extend(item["name"] for item in page)

    def manifest(self, container: str, name: str) -> list[dict[str, Any]] | None:
        """The SLO manifest lines of an object, None if it is not an SLO."""
        resp = self.request("GET", f"{container}/{name}", params={"multipart-manifest": "get"})
        if resp.status_code == 404 or resp.headers.get("X-Static-Large-Object") != "True":
            return None
        resp.raise_for_status()
        lines: list[dict[str, Any]] = resp.json()
        return lines

    def segments_of(self, container: str, name: str) -> list[tuple[str, str, int]]:
        """The (container, object, size) leaves of an object, through sub-manifests."""
        leaves: list[tuple[str, str, int]] = []
        for line in self.manifest(container, name) or []:
            seg_container, _, seg_name = line["name"].lstrip("/").partition("/")
            if line.get("sub_slo"):
                leaves.extend(self.segments_of(seg_container, seg_name))
            else:
                leaves.append((seg_container, seg_name, int(line["bytes"])))
        return leaves

    def referenced(self, container: str) -> set[str]:
        """Everything the objects of ``container`` reference (segments and
        sub-manifests, as ``container/name``)."""
        seen: set[str] = set()

        def walk(c: str, n: str) -> None:
            for line in self.manifest(c, n) or []:
                path = line["name"].lstrip("/")
                seen.add(path)
                if line.get("sub_slo"):
                    sub_c, _, sub_n = path.partition("/")
                    walk(sub_c, sub_n)

        for name in self.names(container):
            walk(container, name)
        return seen

    def orphans(self, container: str, segments: str) -> list[str]:
        """Pieces in ``segments`` no object of ``container`` references; an
        ownership marker counts while the object it names exists."""
        objects = set(self.names(container))
        referenced = self.referenced(container)
        out = []
        for name in self.names(segments):
            if f"{segments}/{name}" in referenced:
                continue
            if name.endswith("/owner"):
                owner = self.request("GET", f"{segments}/{name}").text
                if owner in objects:
                    continue
            out.append(name)
        return out
