"""zenaton.toml + environment + .env, resolved into one frozen Config.

Precedence for the app id, token and environment (as the original agent read
them), and for the store's url (ZENATON_STORE_URL): process environment, then the
project's .env, then zenaton.toml.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenaton_runtime.errors import ConfigError
from zenaton_runtime.models import HEARTBEAT_INTERVAL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "zenaton.toml"
DEFAULT_STORE = "sqlite:///.zenaton/zenaton.db"

# section -> key -> (type, default)
SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "project": {
        "name": (str, None),
        "env": (str, "dev"),
        "boot": (str, "boot.py"),
        "module": (str, None),
        "timezone": (str, "UTC"),
    },
    "store": {"url": (str, DEFAULT_STORE), "durability": (str, "full")},
    "daemon": {
        "concurrency": (int, 8),
        "reload": (bool, True),
        "http": (str, "127.0.0.1:4001"),
        "cache_size": (int, 1000),
        "stop_grace": ((int, float), 10.0),
        "decision_timeout": ((int, float), 10.0),
        # seconds a daemon's lease on a shared PostgreSQL store lasts without a heartbeat
        "lease_ttl": ((int, float), 15.0),
        "log_format": (str, "plain"),
        "log_file": (str, None),
    },
    "dashboard": {"host": (str, "127.0.0.1"), "port": (int, 8025)},
    # how long finished instances are kept, by status (a duration: "90s", "12h", "30d", "2w"); none: forever
    "retention": {"completed": (str, None), "killed": (str, None), "failed": (str, None)},
}

DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in "90s", "15m", "12h", "30d" or "2w"; a ConfigError naming ``what`` otherwise."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f'{what} must be a positive duration like "90s", "15m", "12h", "30d" or "2w", not {text!r}')
    return float(match[1]) * DURATION_UNITS[match[2]]


@dataclass(frozen=True)
class Config:
    root: Path
    app_id: str
    api_token: str | None
    env: str
    boot: str | None
    module: str | None
    timezone: str
    store_url: str  # absolute
    durability: str
    concurrency: int
    reload: bool
    http: str
    cache_size: int
    stop_grace: float
    decision_timeout: float
    lease_ttl: float
    log_format: str  # "plain" or "json"
    log_file: Path | None  # absolute; None: stderr
    dashboard_host: str
    dashboard_port: int
    # [retention]: seconds a finished instance is kept after its last update, by status; empty: forever
    retention: dict[str, float]
    has_config_file: bool
    dotenv: dict[str, str]  # the project's .env, which the daemon exports to its tasks

    @property
    def state_dir(self) -> Path:
        return self.root / ".zenaton"


def find_root(start: Path) -> tuple[Path, bool]:
    """The nearest directory holding zenaton.toml (or else a boot.py), from start upwards."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory, True
    for directory in (start, *start.parents):
        if (directory / "boot.py").is_file():
            return directory, False
    raise ConfigError(
        f"no zenaton project found in {start} or its parents (no {CONFIG_FILE} or boot.py); "
        "run `zenaton init` to create one"
    )


def read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}{_quoted_line(text, str(error))}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    values: dict[str, dict[str, Any]] = {}
    for section, content in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}])")
        for key, value in content.items():
            if key not in SCHEMA[section]:
                known = ", ".join(SCHEMA[section])
                raise ConfigError(f"{path}: unknown key {section}.{key} (known in [{section}]: {known})")
            expected = SCHEMA[section][key][0]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                want = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
                article = "an" if want[0] in "aeiou" else "a"
                raise ConfigError(f"{path}: {section}.{key} must be {article} {want}, not {value!r}")
        values[section] = content
    return values


@dataclass(frozen=True)
class Overrides:
    """Command-line settings that win over everything (the original agent's `listen` options)."""

    env: str | None = None
    boot: str | None = None
    dotenv: Path | None = None
    app_id: str | None = None
    api_token: str | None = None


def _quoted_line(text: str, message: str) -> str:
    """The offending line itself, so the key at fault is visible next to its line number."""
    match = re.search(r"line (\d+)", message)
    if not match:
        return ""
    lines = text.splitlines()
    number = int(match[1])
    return f": {lines[number - 1].strip()!r}" if 0 < number <= len(lines) else ""


def load_config(
    project: Path | None = None,
    *,
    env: str | None = None,
    environ: dict[str, str] | None = None,
    overrides: Overrides | None = None,
) -> Config:
    """Find the project from ``project`` (or the working directory) and resolve its config."""
    given = overrides or Overrides(env=env)
    try:
        root, has_file = find_root(project or Path.cwd())
    except ConfigError:
        if not given.boot:
            raise
        root, has_file = (project or Path.cwd()).resolve(), False
    values = read_toml(root / CONFIG_FILE) if has_file else {}

    def get(section: str, key: str) -> Any:
        return values.get(section, {}).get(key, SCHEMA[section][key][1])

    environ = dict(os.environ if environ is None else environ)
    dotenv = read_dotenv(root / (given.dotenv or ".env"), required=given.dotenv is not None)

    def setting(variable: str, fallback: Any) -> Any:
        value = environ.get(variable)
        try:
            (value or "").encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8: they could never name an environment
            raise ConfigError(f"the environment variable {variable} is not valid UTF-8 text: {value!r}") from None
        return value or dotenv.get(variable) or fallback

    concurrency = get("daemon", "concurrency")
    if concurrency < 1:
        raise ConfigError(f"{root / CONFIG_FILE}: daemon.concurrency must be at least 1, not {concurrency}")
    durability = get("store", "durability")
    if durability not in ("full", "fast"):
        raise ConfigError(f'{root / CONFIG_FILE}: store.durability must be "full" or "fast", not {durability!r}')
    log_format = get("daemon", "log_format")
    if log_format not in ("plain", "json"):
        raise ConfigError(f'{root / CONFIG_FILE}: daemon.log_format must be "plain" or "json", not {log_format!r}')
    retention = {
        status: parse_duration(get("retention", status), f"{root / CONFIG_FILE}: retention.{status}")
        for status in SCHEMA["retention"]
        if get("retention", status) is not None
    }
    lease_ttl = float(get("daemon", "lease_ttl"))
    # The loop renews the lease between two steps, and one decision may hold it that long.
    shortest = float(get("daemon", "decision_timeout")) + 2 * HEARTBEAT_INTERVAL
    if lease_ttl < shortest:
        raise ConfigError(
            f"{root / CONFIG_FILE}: daemon.lease_ttl must be at least daemon.decision_timeout + "
            f"{2 * HEARTBEAT_INTERVAL:g} s ({shortest:g}), not {lease_ttl:g}"
        )
    port = get("dashboard", "port")
    if not 0 <= port <= 65535:
        raise ConfigError(f"{root / CONFIG_FILE}: dashboard.port must be from 0 to 65535, not {port}")
    return Config(
        root=root,
        app_id=given.app_id or setting("ZENATON_APP_ID", get("project", "name") or root.name),
        api_token=given.api_token or setting("ZENATON_API_TOKEN", None),
        env=given.env or env or setting("ZENATON_APP_ENV", get("project", "env")),
        boot=given.boot or get("project", "boot"),
        module=get("project", "module"),
        timezone=get("project", "timezone"),
        store_url=absolute_store_url(setting("ZENATON_STORE_URL", get("store", "url")), root),
        durability=durability,
        concurrency=concurrency,
        reload=get("daemon", "reload"),
        http=get("daemon", "http"),
        cache_size=get("daemon", "cache_size"),
        stop_grace=float(get("daemon", "stop_grace")),
        decision_timeout=float(get("daemon", "decision_timeout")),
        lease_ttl=lease_ttl,
        log_format=log_format,
        log_file=root / get("daemon", "log_file") if get("daemon", "log_file") else None,
        dashboard_host=get("dashboard", "host"),
        dashboard_port=port,
        retention=retention,
        has_config_file=has_file,
        dotenv=dotenv,
    )


def read_dotenv(path: Path, *, required: bool = False) -> dict[str, str]:
    if not path.is_file():
        if required:
            raise ConfigError(f"env file not found: {path}")
        return {}
    from dotenv import dotenv_values  # here: only a project with a .env pays for the import

    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return {k: v for k, v in values.items() if v is not None}


def absolute_store_url(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = Path(url[len(prefix) :])
        if not path.is_absolute():
            path = root / path
        return prefix + str(path)
    return url
