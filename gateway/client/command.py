"""``upload-gateway upload PATH...``: argument parsing and the run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .resume_store import default_path

if TYPE_CHECKING:  # imported when the command runs: `serve` does not load the client
    from .session import Result, Settings

DEFAULT_ENDPOINT = "http://127.0.0.1:1080"


def add_upload_command(sub: Any) -> None:
    p = sub.add_parser(
        "upload",
        help="upload files or directories (tus or Qiniu), resumably, with progress",
        description="Upload files (directories recursively) and print each file's URL. "
        "An interrupted run continues where the server stopped when run again.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--endpoint",
        default=os.environ.get("UPLOAD_GATEWAY_ENDPOINT", DEFAULT_ENDPOINT),
        help="tus: the creation URL (a bare host gets /files/); qiniu: the upload host "
        f"(env UPLOAD_GATEWAY_ENDPOINT; default {DEFAULT_ENDPOINT})",
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=os.environ.get("UPLOAD_GATEWAY_TOKEN"),
        help="upload token: sent as 'Authorization: UpToken T' (env UPLOAD_GATEWAY_TOKEN)",
    )
    auth.add_argument(
        "--jwt",
        default=os.environ.get("UPLOAD_GATEWAY_JWT"),
        help="JWT, sent as 'Authorization: Bearer J' (tus; env UPLOAD_GATEWAY_JWT)",
    )
    p.add_argument(
        "--protocol",
        choices=["tus", "ietf", "qiniu"],
        default="tus",
        help="tus 1.0 (default), ietf (the IETF resumable-upload draft, newest rules) or qiniu",
    )
    p.add_argument(
        "--chunk-size",
        default="0",
        help="bytes per request: tus PATCH (default: the rest of the file), "
        "Qiniu part (default 4MiB, at least 1MiB)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="send a file as N parts at once (tus concatenation / Qiniu v2 parts)",
    )
    p.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="K=V",
        help="extra metadata (tus Upload-Metadata; Qiniu x-qn-meta-K); repeatable",
    )
    p.add_argument(
        "--key",
        help="qiniu: the object key (with several files, a prefix to their names); "
        "default: the token's scope key, else the file's name",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument(
        "--progress",
        choices=["auto", "bars", "lines", "none"],
        default="auto",
        help="on stderr: bars on a terminal, else a line per second (auto)",
    )
    p.add_argument("--limit-rate", default="0", help="at most this many bytes per second")
    p.add_argument("--retries", type=int, default=10, help="tries per request (default 10)")
    p.add_argument(
        "--resume-file",
        type=Path,
        default=None,
        help=f"where unfinished uploads are remembered (default {default_path()})",
    )
    p.add_argument("--no-resume", action="store_true", help="neither reuse nor remember uploads")
    p.set_defaults(func=upload_command)


class UsageError(Exception):
    pass


def _settings(args: argparse.Namespace) -> Settings:
    from backends.units import parse_size

    from .body import RateLimit
    from .retry import Backoff
    from .session import Settings

    try:
        chunk = parse_size(args.chunk_size)
        rate = parse_size(args.limit_rate)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not 1 <= args.parallel <= 64:
        raise UsageError("--parallel must be between 1 and 64")
    if args.retries < 1:
        raise UsageError("--retries must be at least 1")
    metadata: dict[str, str] = {}
    for item in args.metadata:
        k, sep, v = item.partition("=")
        if not sep or not k or " " in k or "," in k:
            raise UsageError(f"--metadata {item!r}: expected KEY=VALUE (no space or comma in KEY)")
        metadata[k] = v
    endpoint = args.endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--endpoint {endpoint!r}: expected http(s)://host[:port][/path]")
    if args.protocol in ("tus", "ietf") and parts.path in ("", "/"):
        endpoint = urlunsplit((parts.scheme, parts.netloc, "/files/", "", ""))
    if args.protocol != "qiniu" and args.key is not None:
        raise UsageError("--key is for --protocol qiniu: a tus server names the object itself")
    if args.protocol == "qiniu" and not args.token:
        raise UsageError("--protocol qiniu needs --token (a Qiniu upload token)")
    if args.protocol == "qiniu" and args.jwt:
        raise UsageError("--jwt is for tus: Qiniu uploads carry an upload token")
    authorization = None
    if args.token:
        authorization = f"UpToken {args.token}"
    elif args.jwt:
        authorization = f"Bearer {args.jwt}"
    return Settings(
        endpoint=endpoint,
        authorization=authorization,
        chunk_size=chunk,
        parallel=args.parallel,
        metadata=metadata,
        key=args.key,
        backoff=Backoff(attempts=args.retries),
        limit=RateLimit(rate),
    )


def _record(result: Result) -> dict[str, Any]:
    return {
        "path": str(result.file.path),
        "name": result.file.name,
        "size": result.file.size,
        "url": result.url,
        "upload": result.upload,
        "key": result.key,
        "resumed_from": result.resumed_from,
        "instant": result.instant,
    }


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    import aiohttp

    from .files import expand
    from .ietf import IetfClient
    from .progress import reporter
    from .qiniu import QiniuClient
    from .resume_store import ResumeStore
    from .retry import UploadError
    from .session import Context
    from .tus import TusClient

    files = expand(args.paths)
    store = None if args.no_resume else ResumeStore(args.resume_file or default_path())
    failed = 0
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=300)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        reporter(args.progress, sum(f.size for f in files), len(files)) as rep,
    ):
        ctx = Context(http, settings, store, rep)
        client: TusClient | QiniuClient
        if args.protocol == "qiniu":
            client = QiniuClient(ctx, args.token, len(files))
        elif args.protocol == "ietf":
            client = IetfClient(ctx)
        else:
            client = TusClient(ctx)
        for file in files:
            progress = rep.start_file(file.name, file.size)
            try:
                result = await client.upload(file, progress)
            except (UploadError, OSError) as exc:
                failed += 1
                rep.file_done(file.name, f"failed {file.name}: {exc}")
                if args.json:
                    print(
                        json.dumps({"path": str(file.path), "name": file.name, "error": str(exc)})
                    )
                continue
            progress.set(file.size)
            note = f" (resumed at {result.resumed_from} bytes)" if result.resumed_from else ""
            if result.instant:
                note = " (already stored: the server had these bytes, none sent)"
            rep.file_done(file.name, f"done {file.name}{note}")
            if args.json:
                print(json.dumps(_record(result)), flush=True)
            elif len(files) == 1:
                print(result.url, flush=True)
            else:
                print(f"{file.name}\t{result.url}", flush=True)
    return 1 if failed else 0


def upload_command(args: argparse.Namespace) -> int:
    from .files import PathError
    from .retry import UploadError

    try:
        settings = _settings(args)
        return asyncio.run(_run(args, settings))
    except (UsageError, PathError) as exc:
        print(f"upload-gateway upload: {exc}", file=sys.stderr)
        return 2
    except UploadError as exc:
        print(f"upload-gateway upload: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
