"""The command line: ``python -m adapter COMMAND`` (CONTRACT.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import getpass
import logging
import os
import sys
from collections.abc import Callable

import account_xml

from . import passwords
from .app import (
    ACCOUNT_REMOVAL_PATH, FETCH_PATH, PUSH_TOKEN_PATH, SEND_PATH, announce, cli_invocation,
    create_app, migrate_database, webhook_secrets,
)
from .providers import check_providers
from .store.outbox import STATES
from .config import Config, ConfigError, load_config
from .logs import configure_logging
from .messaging.numbers import UnusableNumber, region_of, to_e164
from .store import (
    UNAVAILABLE, Account, AccountExists, DatabaseUnavailable, DatabaseUrlError,
    NumberRoutedElsewhere, Store, problem,
)

log = logging.getLogger("adapter")


# How ``serve`` runs uvicorn; bench/ serves its baseline the same way.
UVICORN_SETTINGS = {
    "access_log": False,  # adapter.access_log.AccessLog logs requests with secrets masked
    "log_config": None,  # keep the logging set up in main() (adapter.logs)
    "server_header": False,
    # The adapter serves no WebSockets, and uvicorn's WebSocket protocols log
    # each handshake's path with its query (an Acrobits password, say).
    "ws": "none",
    # Bounds each request's head (size, time); serve passes the configured bounds.
    "http": "adapter.http_server:BoundedHttpToolsProtocol",
}


class CommandError(Exception):
    """A failure to report as one line on stderr."""


# Where `serve` records the URL it serves at when public_url is not set, so
# that `account-xml` and `provider urls` print URLs of the running server.
SERVED_URL_SETTING = "served_url"


# -- commands ------------------------------------------------------------------


def cmd_serve(args, config: Config) -> None:
    import uvicorn

    from .http_server import bounded_protocol

    config = served_config(config, args.host, args.port)
    # Opened and migrated here first, so that a database that cannot be
    # reached is one line on stderr, not a traceback from inside uvicorn.
    asyncio.run(run_with_store(prepare_to_serve, args, config))
    # The app's lifespan migrates the database and logs first-start hints.
    uvicorn.run(create_app(config), host=args.host, port=args.port, **{
        **UVICORN_SETTINGS,
        "http": bounded_protocol(config.max_header_bytes, config.header_timeout_seconds)})


def served_config(config: Config, host: str, port: int) -> Config:
    """Without a public_url, the apps and carriers are pointed at the
    address this server listens on."""
    if config.public_url_set:
        return config
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return dataclasses.replace(config, public_url=f"http://{reachable}:{port}")


async def prepare_to_serve(args, config: Config, store: Store) -> None:
    await migrate_database(store)
    if not config.public_url_set:
        log.warning("public_url is not set: Account XML and carrier callbacks use %s, this "
                    "server; set public_url to the address phones and carriers reach",
                    config.public_url)
        await store.put_setting(SERVED_URL_SETTING, config.public_url)
    await announce(store, config)


async def public_config(config: Config, store: Store) -> Config:
    """``config`` with the URL `serve` last served at when no public_url is set."""
    if config.public_url_set:
        return config
    served = await store.setting(SERVED_URL_SETTING)
    return dataclasses.replace(config, public_url=served) if served else config


async def cmd_migrate(args, config: Config, store: Store) -> None:
    applied = await store.migrate()
    if applied:
        print(f"applied migrations {', '.join(map(str, applied))} to {store.description}")
    else:
        print(f"{store.description} is up to date")


def _password(args, prompt: str) -> str:
    if args.password is not None:
        password = args.password
    elif os.environ.get("ADAPTER_PASSWORD"):
        password = os.environ["ADAPTER_PASSWORD"]
    elif sys.stdin.isatty():
        password = getpass.getpass(f"{prompt}: ")
        if password != getpass.getpass("again: "):
            raise CommandError("the two passwords differ")
    else:
        raise CommandError("no password given: use --password, $ADAPTER_PASSWORD or a terminal")
    if not password:
        raise CommandError("the password must not be empty")
    return password


def _username(text: str) -> str:
    if not text or len(text) > 255 or any(c.isspace() or not c.isprintable() for c in text):
        raise CommandError(f"invalid username {text!r}: use 1-255 printable characters, no spaces")
    return text


def _display_name(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) > 255 or not text.isprintable():
        raise CommandError(f"invalid display name {text!r}: use up to 255 printable "
                           "characters (no tabs or line breaks)")
    return text.strip() or None


def _cell(text: str) -> str:
    """A value for one tab-separated column: control characters (a name
    stored before they were refused) are shown escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


async def _existing(store: Store, username: str) -> Account:
    account = await store.account(username)
    if account is None:
        raise CommandError(f"no account {username!r}")
    return account


async def cmd_account_add(args, config: Config, store: Store) -> None:
    username = _username(args.username)
    try:
        number = to_e164(args.number, config.default_region)
    except UnusableNumber as exc:
        raise CommandError(f"--number: {exc}") from None
    if args.provider is not None and args.provider not in config.providers:
        configured = ", ".join(sorted(config.providers)) or "none"
        raise CommandError(
            f"--provider {args.provider!r} is not configured in {config.source} "
            f"(configured: {configured})"
        )
    if args.provider is not None:
        carrier = check_providers(config)[args.provider].cls
        if carrier.reachable is not None and region_of(number) not in carrier.reachable:
            raise CommandError(f"--number: {args.provider!r} ({carrier.type}) cannot send from "
                               f"{number}, a number of {region_of(number) or 'no known country'}")
    display_name = _display_name(args.display_name)
    password_hash = passwords.hash_password(_password(args, f"password for {username}"),
                                            config.passwords)
    try:
        await store.create_account(
            username=username, password_hash=password_hash, number=number,
            provider=args.provider, display_name=display_name,
        )
    except AccountExists:
        raise CommandError(f"account {username!r} already exists") from None
    except NumberRoutedElsewhere as exc:
        raise CommandError(
            f"{exc.number} already routes through provider {exc.provider or 'loopback'!r}; "
            "accounts sharing a number share its provider"
        ) from None
    print(f"added account {username} with number {number} ({args.provider or 'on-net only'})")


async def cmd_account_list(args, config: Config, store: Store) -> None:
    accounts = await store.list_accounts()
    if not accounts:
        # On stderr: a script reading the list still sees an empty one.
        print(f"no accounts in {store.description}; add one with: {cli_invocation(config)} "
              "account add USERNAME --number NUMBER", file=sys.stderr)
    for account in accounts:
        print("\t".join(_cell(value) for value in [
            account.username, account.number, account.provider or "loopback",
            account.display_name or ""]))


async def cmd_account_remove(args, config: Config, store: Store) -> None:
    removed = await store.remove_account(args.username)
    if removed is None:
        raise CommandError(f"no account {args.username!r}")
    print(f"removed account {args.username} and its messages: {removed}")


async def cmd_account_passwd(args, config: Config, store: Store) -> None:
    await _existing(store, args.username)
    password_hash = passwords.hash_password(
        _password(args, f"new password for {args.username}"), config.passwords)
    await store.set_password_hash(args.username, password_hash)
    print(f"changed the password of {args.username}")


async def cmd_account_xml(args, config: Config, store: Store) -> None:
    account = await _existing(store, args.username)
    config = await public_config(config, store)
    urls = account_xml.ServiceUrls(
        send=config.public(SEND_PATH), fetch=config.public(FETCH_PATH),
        push_token=config.public(PUSH_TOKEN_PATH),
        account_removal=config.public(ACCOUNT_REMOVAL_PATH))
    sys.stdout.write(
        account_xml.render(username=account.username, display_name=account.display_name,
                           urls=urls, title=args.title)
    )


async def cmd_provider_urls(args, config: Config, store: Store) -> None:
    spec = check_providers(config).get(args.name)
    if spec is None:
        configured = ", ".join(sorted(config.providers)) or "none"
        raise CommandError(f"no provider {args.name!r} in {config.source} (configured: {configured})")
    secret = (await webhook_secrets(store, config))[args.name]
    provider = spec.build(await public_config(config, store), secret, http=None)
    if not provider.off_net:
        raise CommandError(f"provider {args.name!r} is {provider.type}: it takes no callbacks")
    for kind, url in provider.portal_urls().items():
        print(f"{kind} {url}")


async def cmd_outbox_list(args, config: Config, store: Store) -> None:
    for job in await store.jobs(args.state, args.limit):
        print("\t".join([str(job.id), job.state, job.kind, job.provider or "-",
                         str(job.message_id or "-"), str(job.attempts),
                         job.due_at.strftime("%Y-%m-%dT%H:%M:%SZ"), job.last_error or ""]))


async def cmd_outbox_retry(args, config: Config, store: Store) -> None:
    if not await store.retry_job(args.id):
        raise CommandError(f"no job {args.id} that can be retried (unknown, or running now)")
    print(f"job {args.id} queued again")


async def run_with_store(handler, args, config: Config) -> None:
    """Run a database command: migrate first (so any command works on a new
    database), then the command, in one event loop."""
    store = Store(config.database_url)
    try:
        if handler not in (cmd_migrate, prepare_to_serve):  # these migrate themselves
            await store.migrate()
        await handler(args, config, store)
    except UNAVAILABLE as error:
        raise CommandError(f"database error ({store.description}): {problem(error)}") from None
    finally:
        await store.close()


def _number_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return value

    return parse


# -- parser ----------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr like every other error (exit 2);
    ``--help`` still shows the usage."""

    def error(self, message: str):
        command = self.prog.removeprefix("python -m adapter").strip()
        self.exit(2, f"adapter: {command + ': ' if command else ''}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    # SUPPRESS: a subcommand's own --config default must not erase one given
    # before the subcommand name.
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="TOML config file (default: $ADAPTER_CONFIG, else ./adapter.toml)")
    parser = Parser(
        prog="python -m adapter", parents=[common],
        description="Messaging backend for Acrobits softphone apps.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(subparsers, name: str, handler: Callable, help_text: str):
        sub = subparsers.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = command(commands, "serve", cmd_serve,
                    "apply pending migrations and serve HTTP (with the background dispatcher)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_number_in(0, 65535), default=8080,
                       help="port to listen on (default 8080; 0: any free port)")
    command(commands, "migrate", cmd_migrate, "apply pending database migrations and exit")

    account = commands.add_parser("account", parents=[common], help="manage accounts",
                                  description="Manage the accounts app users sign in with.")
    account_commands = account.add_subparsers(dest="account_command", required=True,
                                              metavar="ACTION")
    add = command(account_commands, "add", cmd_account_add, "add an account with its number")
    add.add_argument("username")
    add.add_argument("--number", required=True, help="the account's phone number, any notation")
    add.add_argument("--provider", help="a [providers.NAME] instance (default: on-net only)")
    add.add_argument("--password", help="default: $ADAPTER_PASSWORD, else prompted")
    add.add_argument("--display-name", help="the name shown to the app user")
    command(account_commands, "list", cmd_account_list,
            "list accounts: username, number, provider, display name")
    remove = command(account_commands, "remove", cmd_account_remove,
                     "remove an account and its messages, in batches while the "
                     "service keeps running")
    remove.add_argument("username")
    passwd = command(account_commands, "passwd", cmd_account_passwd, "change an account's password")
    passwd.add_argument("username")
    passwd.add_argument("--password", help="default: $ADAPTER_PASSWORD, else prompted")

    provider = commands.add_parser("provider", parents=[common], help="upstream providers",
                                   description="Upstream SMS providers ([providers.NAME]).")
    provider_commands = provider.add_subparsers(dest="provider_command", required=True,
                                                metavar="ACTION")
    urls = command(provider_commands, "urls", cmd_provider_urls,
                   "print the callback URLs to paste into the provider's portal")
    urls.add_argument("name")

    outbox = commands.add_parser("outbox", parents=[common],
                                 help="the outbox: carrier sends and pushes",
                                 description="Inspect and requeue outbox jobs.")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True,
                                            metavar="ACTION")
    listing = command(outbox_commands, "list", cmd_outbox_list,
                      "list jobs, newest first: id, state, kind, provider, message, "
                      "attempts, due, last error")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--limit", type=_number_in(1, 1_000_000), default=200,
                         help="at most this many jobs (default 200)")
    retry = command(outbox_commands, "retry", cmd_outbox_retry,
                    "queue a job again now (also a failed or dead one)")
    retry.add_argument("id", type=int)

    xml = command(commands, "account-xml", cmd_account_xml,
                  "print an account's Account XML (for Cloud Softphone / Groundwire)")
    xml.add_argument("username")
    xml.add_argument("--title", help="the account title shown in the app")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = None
    try:
        config = load_config(getattr(args, "config", None))
        configure_logging(log_format=config.log_format)
        # Every command stops at a bad provider table, not only the one that would use it.
        check_providers(config)
        if inspect.iscoroutinefunction(args.handler):
            asyncio.run(run_with_store(args.handler, args, config))
        else:
            args.handler(args, config)
    except (ConfigError, CommandError, DatabaseUrlError, DatabaseUnavailable,
            account_xml.AccountXmlError) as exc:
        if config is not None and config.log_format == "json":
            log.error("%s", exc)  # one JSON object, like every other line then
        else:
            print(f"adapter: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    return 0
