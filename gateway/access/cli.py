"""``upload-gateway token``: print a credential for business services and
tests — an upload token (``Authorization: UpToken <token>`` on tus, or a
Qiniu SDK's token), or with ``--jwt`` a JWT (``Authorization: Bearer``)
signed with ``access.jwt.secret``. Both carry the same put policy."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from backends.units import parse_duration
from gateway.access.jwt_tokens import POLICY_CLAIM
from gateway.access.tokens import KeyPair, make_policy, mint
from gateway.config import GatewayConfig


def _token(args: argparse.Namespace, load: Callable[[str | None], GatewayConfig]) -> int:
    try:
        extra: dict[str, Any] = json.loads(args.policy) if args.policy else {}
    except ValueError as exc:
        print(f"--policy is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(extra, dict):
        print("--policy must be a JSON object", file=sys.stderr)
        return 2
    if args.end_user:
        extra["endUser"] = args.end_user
    try:
        expires = parse_duration(args.expires)
    except ValueError as exc:
        print(f"--expires: {exc}", file=sys.stderr)
        return 2
    if args.jwt:
        return _jwt(args, load, expires, extra)
    if args.access_key and args.secret_key:
        pair = KeyPair(args.access_key, args.secret_key)
    else:
        keys = load(args.config).qiniu.keys
        chosen = [k for k in keys if not args.access_key or k.access_key == args.access_key]
        if not chosen:
            print("no matching key pair in qiniu.keys", file=sys.stderr)
            return 2
        pair = KeyPair(chosen[0].access_key, chosen[0].secret_key)
    print(mint(pair, make_policy(args.bucket, args.key, expires, extra)))
    return 0


def _jwt(
    args: argparse.Namespace,
    load: Callable[[str | None], GatewayConfig],
    expires: float,
    extra: dict[str, Any],
) -> int:
    import jwt

    settings = load(args.config).access.jwt
    if settings is None or not settings.secret:
        print("--jwt needs access.jwt with an HS* secret in the config", file=sys.stderr)
        return 2
    policy = make_policy(args.bucket, args.key, expires, extra)
    claims: dict[str, Any] = {"exp": policy.pop("deadline"), POLICY_CLAIM: policy}
    if "endUser" in policy:
        claims["sub"] = policy.pop("endUser")
    if settings.audience:
        claims["aud"] = settings.audience
    if settings.issuer:
        claims["iss"] = settings.issuer
    print(jwt.encode(claims, settings.secret, algorithm=settings.algorithms[0]))
    return 0


def add_token_command(
    subparsers: Any, load: Callable[[str | None], GatewayConfig]
) -> argparse.ArgumentParser:
    """Register ``token`` on the CLI's subparsers; ``load`` reads the config."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "token", help="print an upload token (tus and Qiniu) or, with --jwt, a JWT"
    )
    p.add_argument("-c", "--config", help="config.yaml holding qiniu.keys (or access.jwt)")
    p.add_argument("--bucket", required=True)
    p.add_argument("--key", help="restrict to this key (scope bucket:key)")
    p.add_argument("--expires", default="1h", help="lifetime, e.g. 3600, 30m, 1h (default 1h)")
    p.add_argument("--policy", help="extra put-policy fields as a JSON object")
    p.add_argument("--end-user", help="endUser (the JWT's sub): uploads belong to this user")
    p.add_argument("--jwt", action="store_true", help="a JWT signed with access.jwt.secret")
    p.add_argument("--access-key", help="which configured key pair (default: the first)")
    p.add_argument("--secret-key", help="sign with this secret instead of the config's")
    p.set_defaults(func=lambda args: _token(args, load))
    return p
