"""What is uploaded: sizes, counts, concurrency and the protocol used."""

from __future__ import annotations

from dataclasses import dataclass

from bench.sizes import human

MiB = 1 << 20


@dataclass(frozen=True)
class Scenario:
    kind: str  # tus | ietf | qiniu-form | qiniu-v1 | qiniu-v2
    size: int
    count: int = 1
    concurrency: int = 1
    chunk: int = 8 * MiB  # tus / ietf PATCH size
    part: int = 4 * MiB  # qiniu-v2 part size (the SDK's default)

    @property
    def name(self) -> str:
        head = f"{self.count}x{human(self.size)}"
        conc = f" c{self.concurrency}" if self.concurrency > 1 else ""
        part = f" p{human(self.part)}" if self.kind == "qiniu-v2" and self.part != 4 * MiB else ""
        # the whole file in one request (IETF: with a progress 104 per 16 MiB slice)
        one = self.kind in ("tus", "ietf") and self.chunk >= self.size > 8 * MiB
        whole = " one PATCH" if one else ""
        return f"{self.kind} {head}{conc}{part}{whole}"

    @property
    def total_bytes(self) -> int:
        return self.size * self.count

    @property
    def qiniu(self) -> bool:
        return self.kind.startswith("qiniu")

    def size_args(self) -> list[str]:
        return ["--size", str(self.size), "--count", str(self.count), "-c", str(self.concurrency)]

    def load_args(self, base_url: str, tus_path: str, ak: str, sk: str) -> list[str]:
        if self.kind in ("tus", "ietf"):
            return [
                self.kind,
                "--url",
                base_url + tus_path,
                "--chunk",
                str(self.chunk),
                *self.size_args(),
            ]
        if self.kind == "qiniu-form":
            return ["qiniu-form", "--url", base_url, "--ak", ak, "--sk", sk, *self.size_args()]
        return [
            "qiniu-sdk",
            "--url",
            base_url,
            "--ak",
            ak,
            "--sk",
            sk,
            "--version",
            self.kind.removeprefix("qiniu-"),
            "--part-size",
            str(self.part),
            *self.size_args(),
        ]


FULL = [
    Scenario("tus", 512 * MiB),
    Scenario("tus", 512 * MiB, chunk=512 * MiB),
    Scenario("ietf", 512 * MiB, chunk=512 * MiB),
    Scenario("tus", 8 * MiB, count=64, concurrency=64),
    Scenario("tus", 1 * MiB, count=200, concurrency=32),
    Scenario("ietf", 1 * MiB, count=200, concurrency=32),
    Scenario("qiniu-form", 1 * MiB, count=200, concurrency=32),
    # above qiniu.form_buffer: S3 multipart on the final key, no copy
    Scenario("qiniu-form", 16 * MiB, count=16, concurrency=4),
    Scenario("qiniu-v1", 64 * MiB),
    Scenario("qiniu-v2", 64 * MiB),
    Scenario("qiniu-v2", 64 * MiB, part=8 * MiB),  # parts ≥ S3's minimum: stored once
]

QUICK = [
    Scenario("tus", 16 * MiB),
    Scenario("tus", 1 * MiB, count=8, concurrency=8),
    Scenario("ietf", 1 * MiB, count=8, concurrency=8),
    Scenario("tus", 256 * 1024, count=20, concurrency=8),
    Scenario("qiniu-form", 256 * 1024, count=20, concurrency=8),
    Scenario("qiniu-v1", 12 * MiB),
    Scenario("qiniu-v2", 12 * MiB),
]

#: single tus uploads of growing size, 8 MiB PATCHes: peak RSS must not grow
RSS_SIZES = [64 * MiB, 512 * MiB, 2048 * MiB]
#: peak RSS must not grow with uploads made one after another: what one
#: request leaves in a reference cycle waits for a full collection (a part's
#: collected bytes once did: 488 MB after nine of these)
RSS_SUSTAINED = [
    Scenario("qiniu-v2", 64 * MiB, part=8 * MiB),
    Scenario("qiniu-v2", 64 * MiB, part=8 * MiB, count=8),
]
