"""S3 settings: the one place that turns the AWS environment, profiles and `--storage-option` into
what each client needs.

    settings = resolve(storage_options)      # the AWS environment / profile, then the options on top
    fsspec_options(settings)                 # s3fs: listing and reading videos, OUT's files, presigned links
    delta_options(settings)                  # delta-rs: OUT's Delta tables (DuckDB reads their Arrow datasets)
    with s3_errors("s3://bucket/prefix"):    # any client's failure -> one-line UserError naming what to check
        ...

Sources, lowest first (the order AWS's own tools use):
- the environment: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION;
- a profile (AWS_PROFILE or `profile=NAME`) in ~/.aws/config and ~/.aws/credentials, or the files
  AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE name (botocore reads them: `endpoint_url` and
  `region` of the profile, or of its `services` section's `s3`, and its keys);
- `--storage-option KEY=VALUE` (s3fs's names: endpoint_url, key, secret, token, region, profile,
  anon), which win over both.
An http:// endpoint from any source is allowed for every client (delta-rs needs AWS_ALLOW_HTTP).

Secrets stay in memory. Nothing here logs them or puts them in an error, `redact` removes every
secret this process has resolved from a message, and what a Ray task is given is the user's
`--storage-option` dict (never the environment's or a profile's keys): a worker resolves those from its
own environment, profile or instance role (README, "S3").
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from jobs.common.errors import UserError

log = logging.getLogger(__name__)

# The variables that decide the settings (the cache key of `resolve`).
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
# Credential providers whose keys are plain values (handed to delta-rs as they are); the others
# (instance role, assume-role, SSO) refresh, and delta-rs's own AWS chain is left to find them.
STATIC_CREDENTIALS = {"env", "shared-credentials-file", "config-file", "explicit"}
DEFAULT_REGION = "us-east-1"
ENDPOINT_TIMEOUT_S = 5.0

_SECRETS: set[str] = set()  # every secret this process resolved: `redact` removes them from messages


@dataclass(frozen=True)
class S3Settings:
    """Resolved S3 settings. Secrets are kept out of repr (logs, tracebacks)."""

    endpoint_url: str | None = None  # None: AWS S3 itself
    region: str = DEFAULT_REGION
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    static_credentials: bool = True  # False: a refreshing provider (instance role, SSO) that each client asks itself
    profile: str | None = None
    anon: bool = False
    extra: tuple[tuple[str, object], ...] = ()  # other fsspec options given with --storage-option, as given

    @property
    def allow_http(self) -> bool:
        return bool(self.endpoint_url) and self.endpoint_url.startswith("http://")


def resolve(storage_options: dict | None = None) -> S3Settings:
    """The environment and profile, then `storage_options` (s3fs names) on top."""
    options = dict(storage_options or {})
    environment = tuple(os.environ.get(name) for name in AWS_VARIABLES)
    return _resolve(tuple(sorted((k, _hashable(v)) for k, v in options.items())), environment)


@lru_cache(maxsize=64)
def _resolve(options_key: tuple, environment: tuple) -> S3Settings:
    options = {key: _unhashable(value) for key, value in options_key}
    client_kwargs = dict(options.pop("client_kwargs", None) or {})
    anon = options.pop("anon", False) is True
    profile = options.pop("profile", None) or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    session = _botocore_session(profile)
    scoped = dict(session.get_scoped_config())  # the profile was found by _botocore_session
    endpoint = (
        options.pop("endpoint_url", None)
        or client_kwargs.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or _profile_endpoint(session, scoped)
    )
    region = (
        options.pop("region", None)
        or client_kwargs.pop("region_name", None)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or scoped.get("region")
        or DEFAULT_REGION
    )
    key, secret, token = options.pop("key", None), options.pop("secret", None), options.pop("token", None)
    static = True
    if key is None and secret is None and not anon:
        key, secret, token, static = _session_credentials(session)
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    _SECRETS.update(value for value in (secret, token) if value and len(value) >= 4)
    return S3Settings(
        endpoint_url=str(endpoint).rstrip("/") if endpoint else None,
        region=str(region),
        key=key,
        secret=secret,
        token=token,
        static_credentials=static,
        profile=profile,
        anon=anon,
        extra=tuple(sorted((k, _hashable(v)) for k, v in options.items())),
    )


def fsspec_options(settings: S3Settings) -> dict:
    """s3fs keyword arguments. Refreshing credentials are left to s3fs's botocore (it refreshes them)."""
    options: dict = {key: _unhashable(value) for key, value in settings.extra}
    client_kwargs = dict(options.pop("client_kwargs", None) or {})
    client_kwargs["region_name"] = settings.region
    options["client_kwargs"] = client_kwargs
    if settings.endpoint_url:
        options["endpoint_url"] = settings.endpoint_url
    if settings.anon:
        options["anon"] = True
    elif settings.static_credentials and settings.key:
        options.update(key=settings.key, secret=settings.secret)
        if settings.token:
            options["token"] = settings.token
    elif settings.profile:
        options["profile"] = settings.profile
    return options


def delta_options(settings: S3Settings) -> dict[str, str]:
    """delta-rs object_store options (strings)."""
    delta: dict[str, str] = {
        "conditional_put": "etag",  # atomic commits on S3 without a lock table
        # a store that is down for longer than this fails the command with one line, and a re-run
        # resumes; shorter outages are ridden out
        "max_retries": "6",
        "retry_timeout": "30s",
        "AWS_REGION": settings.region,
    }
    if settings.endpoint_url:
        delta["AWS_ENDPOINT_URL"] = settings.endpoint_url
        if settings.allow_http:
            delta["AWS_ALLOW_HTTP"] = "true"
    if settings.anon:
        delta["AWS_SKIP_SIGNATURE"] = "true"
    elif settings.static_credentials and settings.key:
        delta["AWS_ACCESS_KEY_ID"] = settings.key
        delta["AWS_SECRET_ACCESS_KEY"] = settings.secret or ""
        if settings.token:
            delta["AWS_SESSION_TOKEN"] = settings.token
    elif settings.profile:
        delta["AWS_PROFILE"] = settings.profile
    return delta


def check_endpoint(settings: S3Settings, url: str) -> None:
    """UserError within seconds when a configured endpoint does not accept connections (instead of
    each client's retries); AWS S3 itself (no endpoint) is not probed."""
    if settings.endpoint_url:
        _check_reachable(settings.endpoint_url, url)


@lru_cache(maxsize=16)
def _check_reachable(endpoint: str, url: str) -> None:
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=ENDPOINT_TIMEOUT_S).close()
    except OSError as error:
        raise UserError(
            f"{url}: the S3 endpoint {endpoint} does not answer ({error.strerror or error}); "
            "check AWS_ENDPOINT_URL / --storage-option endpoint_url and that the server is up"
        ) from None


# --- errors -------------------------------------------------------------------------------------

_ACCESS_DENIED = "access denied; check that these credentials may read (and, for OUT, write) {where}"
_READ_ONLY = (
    "access denied on a write; these credentials can read {where} but not write it (read-only?): use credentials that may write OUT"
)

# (markers in any client's error text, what to say); the first that matches wins. botocore's error
# codes, delta-rs / object_store's messages and HTTP statuses.
_PROBLEMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "AuthorizationHeaderMalformed"),
        "the access key or secret is wrong; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the profile, or --storage-option key / secret",
    ),
    (
        ("NoSuchBucket", "bucket does not exist", "The specified bucket does not exist"),
        "the bucket {bucket} does not exist; create it or check the name and the endpoint",
    ),
    (("AccessDenied", "Access Denied", "403 Forbidden", "status: 403", "Forbidden"), _ACCESS_DENIED),
    (
        ("Unable to locate credentials", "NoCredentialsError", "no credentials", "MissingCredentials"),
        "no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role",
    ),
    (
        ("NotImplemented", "501 Not Implemented", "If-None-Match", "conditional put", "ConditionalPut"),
        "the store does not support conditional writes (If-None-Match), which OUT's commits need; use AWS S3, SeaweedFS, MinIO or Ceph RGW",
    ),
    (
        ("Connection refused", "EndpointConnectionError", "Could not connect", "error sending request", "dns error", "timed out"),
        "the S3 endpoint does not answer; check AWS_ENDPOINT_URL / --storage-option endpoint_url and that the server is up",
    ),
)


def problem_of(error: BaseException, url: str, storage_options: dict | None = None) -> str | None:
    """One line naming `url` and what to check, when `error` (or what caused it) is an S3 failure.

    A bare 403 (a HEAD request has no error body) is told apart by asking the store once more
    (`_probe`): a wrong key or secret, or credentials that may read but not write."""
    text = " ".join(_chain_texts(error)).lower()
    for markers, advice in _PROBLEMS:
        if any(marker.lower() in text for marker in markers):
            if advice is _ACCESS_DENIED:
                advice = _probe(url, storage_options) or advice
            return f"{url}: " + advice.format(bucket=_bucket(url), where=url)
    return None


@contextlib.contextmanager
def s3_errors(url: str, storage_options: dict | None = None) -> Iterator[None]:
    """Any client's S3 failure inside becomes a one-line UserError naming `url` (others pass through)."""
    if not url.startswith(("s3://", "s3a://")):
        yield
        return
    try:
        yield
    except UserError:
        raise
    except Exception as error:  # s3fs / botocore, delta-rs and pyarrow each raise their own kinds
        problem = problem_of(error, url, storage_options)
        if problem is None:
            raise
        raise UserError(problem) from error


def _probe(url: str, storage_options: dict | None) -> str | None:
    """What a 403 meant, from a one-key listing of `url`'s prefix with the same settings: the
    store's error code (wrong key, wrong secret, denied), or None when the listing works (then a
    write was refused: read-only credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    settings = resolve(storage_options)
    parts = urlsplit(url)
    try:
        _client(settings).list_objects_v2(Bucket=parts.netloc, Prefix=parts.path.lstrip("/"), MaxKeys=1)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        for markers, advice in _PROBLEMS:
            if code and any(marker.lower() == code.lower() for marker in markers):
                return advice
        return None if code else _ACCESS_DENIED
    except BotoCoreError:
        return None
    return _READ_ONLY


def _client(settings: S3Settings):
    """A botocore S3 client with these settings (for `_probe`)."""
    session = _botocore_session(settings.profile)
    credentials = {}
    if settings.static_credentials and settings.key:
        credentials = dict(aws_access_key_id=settings.key, aws_secret_access_key=settings.secret, aws_session_token=settings.token)
    return session.create_client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, **credentials)


def _bucket(url: str) -> str:
    return urlsplit(url).netloc or url


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SECRET_OPTION = re.compile(r"\b(secret|token)=\S+")  # --storage-option secret=… / token=… on a command line


def redact(text: str) -> str:
    """`text` without colour codes and without any secret this process resolved (nor the value of a
    `secret=` / `token=` storage option in a command line)."""
    text = _SECRET_OPTION.sub(r"\1=***", _ANSI.sub("", text))
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets and colour codes from every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


# --- botocore: profiles and the credential chain ------------------------------------------------


def _botocore_session(profile: str | None):
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)  # not "Found credentials in …" on every command
    session = botocore.session.Session()
    if profile:
        try:
            session.set_config_variable("profile", profile)
            session.get_scoped_config()
        except ProfileNotFound:
            raise UserError(f"AWS profile {profile!r} is not in {_config_files()}; check AWS_PROFILE or --storage-option profile") from None
    return session


def _profile_endpoint(session, scoped: dict) -> str | None:
    """The profile's S3 endpoint: its `services` section's `s3.endpoint_url`, else its `endpoint_url`."""
    services = scoped.get("services")
    if services:
        section = (session.full_config.get("services") or {}).get(services) or {}
        s3 = section.get("s3") or {}
        if isinstance(s3, dict) and s3.get("endpoint_url"):
            return s3["endpoint_url"]
    return scoped.get("endpoint_url")


def _session_credentials(session) -> tuple[str | None, str | None, str | None, bool]:
    """(key, secret, token, static) from botocore's chain; (None, None, None, True) when none is found."""
    from botocore.exceptions import BotoCoreError

    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise UserError(f"cannot read AWS credentials: {error}") from None
    if credentials is None:
        return None, None, None, True
    if credentials.method not in STATIC_CREDENTIALS:
        return None, None, None, False
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token, True


def _config_files() -> str:
    config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return f"{config} / {credentials}"


def _chain_texts(error: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield f"{type(current).__name__} {current}"
        current = current.__cause__ or current.__context__


def _hashable(value: object) -> object:
    if isinstance(value, dict):
        return ("__dict__", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    return value


def _unhashable(value: object) -> object:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__dict__":
        return {k: _unhashable(v) for k, v in value[1]}
    return value
