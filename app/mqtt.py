"""The one place paho-mqtt is imported: URLs, client construction and connection handling.

Every tila service talks MQTT 3.1.1 (the embedded demo broker speaks nothing newer; Mosquitto does
both) with paho's VERSION2 callbacks. Subscriptions are made in ``on_connect`` so that a reconnect
restores them, and a connect that failed never counts as connected.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


class UrlError(ValueError):
    """An MQTT URL that cannot be used."""


#: Query parameters an MQTT URL may carry. TLS: ``ca`` (PEM file of the CA certificates that sign the
#: broker's certificate; default: the system's), ``cert`` and ``key`` (a client certificate and its
#: private key, for a broker that asks for one; ``key`` may be left out when ``cert`` holds both).
#: ``password_file``: the password is the first line of this file, so it need not sit in the
#: command line or the environment.
QUERY_KEYS = ("ca", "cert", "key", "password_file")
#: A password file is one short line; anything longer is not one.
MAX_PASSWORD_FILE = 4096
#: While a broker keeps refusing or cannot be reached, the first attempt is logged as a warning and
#: then every this many attempts (paho backs off to 30 s: about every 10 minutes), not every one.
LOG_EVERY_FAILURES = 20
#: CONNACK codes (as paho reports them, MQTT 5 numbering) that mean the credentials were refused.
AUTH_REFUSED = (134, 135)  # Bad user name or password, Not authorized


@dataclass(slots=True, frozen=True)
class MqttUrl:
    """``mqtt[s]://[user[:password]@]host[:port][?ca=PATH&cert=PATH&key=PATH&password_file=PATH]``"""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    password_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlError(f"not an MQTT URL: {url!r} ({exc})") from exc
        if parts.scheme not in ("mqtt", "mqtts"):
            raise UrlError(f"MQTT URL must start with mqtt:// or mqtts://, not {url!r}")
        if not parts.hostname:
            raise UrlError(f"MQTT URL has no host: {url!r}")
        if parts.path not in ("", "/") or parts.fragment:
            raise UrlError(f"MQTT URL takes no path or #fragment: {url!r}")
        tls = parts.scheme == "mqtts"
        options = _query(parts.query, url)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        password_file = options.get("password_file")
        if password_file is not None:
            if not username:
                raise UrlError(f"MQTT URL has a password_file but no user name: {url!r}")
            if parts.password is not None:
                raise UrlError(f"MQTT URL has both a password and a password_file: {url!r}")
            password = read_password_file(password_file)
        ca, cert, key = options.get("ca"), options.get("cert"), options.get("key")
        if (ca or cert or key) and not tls:
            raise UrlError(f"MQTT URL has TLS options (ca, cert, key) but is not mqtts://: {url!r}")
        if key and not cert:
            raise UrlError(f"MQTT URL has a key but no cert: {url!r}")
        parsed = cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            username=username,
            password=password,
            tls=tls,
            ca=ca,
            cert=cert,
            key=key,
            password_file=password_file,
        )
        if tls:
            parsed.ssl_context()  # a missing or unreadable CA, certificate or key is an error now
        return parsed

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings: the broker's certificate checked (against ``ca`` or the system's CAs),
        with its host name; the client certificate when given. Raises UrlError naming the file."""
        for what, path in (("CA file", self.ca), ("client certificate", self.cert), ("client key", self.key)):
            if path is not None:
                _check_readable(path, what)
        try:
            ctx = ssl.create_default_context(cafile=self.ca)
        except (ssl.SSLError, OSError) as exc:
            raise UrlError(f"MQTT URL: CA file {self.ca}: not PEM CA certificates ({_reason(exc)})") from None
        if self.cert:
            try:
                ctx.load_cert_chain(self.cert, self.key)
            except (ssl.SSLError, OSError) as exc:
                raise UrlError(
                    f"MQTT URL: client certificate {self.cert}"
                    + (f" with key {self.key}" if self.key else "")
                    + f" cannot be used ({_reason(exc)})"
                ) from None
        return ctx

    def __str__(self) -> str:
        # Never print the password; the files' paths are no secret and tell which ones are in use.
        user = f"{self.username}@" if self.username else ""
        query = "&".join(f"{k}={getattr(self, k)}" for k in QUERY_KEYS if getattr(self, k))
        base = f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"
        return f"{base}?{query}" if query else base


def _query(query: str, url: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if key not in QUERY_KEYS:
            raise UrlError(f"MQTT URL takes only {', '.join(QUERY_KEYS)} as query, not {key[:40]!r}: {url!r}")
        # unquote, not unquote_plus: a '+' in a path is a '+'.
        value = unquote(value)
        if not eq or not value:
            raise UrlError(f"MQTT URL has an empty {key}: {url!r}")
        if key in options:
            raise UrlError(f"MQTT URL has {key} twice: {url!r}")
        options[key] = value
    return options


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return getattr(exc, "reason", None) or str(exc) or type(exc).__name__


def _check_readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UrlError(f"MQTT URL: {what} {path}: {exc.strerror or exc}") from None


def read_password_file(path: str) -> str:
    """The password in a file: its first line, without the line end (files made with ``echo``
    end in one). Raises UrlError for a file that is missing, unreadable, empty or not one line."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PASSWORD_FILE + 1)
    except OSError as exc:
        raise UrlError(f"MQTT URL: password_file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PASSWORD_FILE:
        raise UrlError(f"MQTT URL: password_file {path} is longer than {MAX_PASSWORD_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UrlError(f"MQTT URL: password_file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    if len(lines) > 1 and any(line.strip() for line in lines[1:]):
        raise UrlError(f"MQTT URL: password_file {path} holds more than one line")
    password = lines[0] if lines else ""
    if not password:
        raise UrlError(f"MQTT URL: password_file {path} is empty")
    return password


Message = paho.MQTTMessage
topic_matches = paho.topic_matches_sub


class Connection:
    """A paho client with tila's connection habits.

    ``subscriptions`` are (filter, qos) pairs made on every connect; ``on_message`` receives only
    messages that match them (the embedded demo broker also sends retained messages matching other
    clients' subscriptions). ``status`` is (topic, online payload, offline payload): the offline one
    is the retained last will, the online one is published retained after each connect.
    Callbacks run on paho's network thread and must not block.
    """

    def __init__(
        self,
        url: MqttUrl,
        client_id: str,
        *,
        persistent: bool = False,
        subscriptions: Iterable[tuple[str, int]] = (),
        on_message: Callable[[Message], None] | None = None,
        status: tuple[str, bytes, bytes] | None = None,
        manual_ack: bool = False,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        on_publish: Callable[[int], None] | None = None,
        max_inflight: int = 20,
        keepalive: int = 30,
    ) -> None:
        self.url = url
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connect_cb = on_connect
        self._on_disconnect_cb = on_disconnect
        self.status = status
        self.connected = threading.Event()
        #: Set once the broker has acknowledged this connection's subscriptions.
        self.subscribed = threading.Event()
        self.keepalive = keepalive
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=paho.MQTTv311,
            manual_ack=manual_ack,
        )
        # Reconnect with exponential backoff (paho's own: 1 s doubling to 30 s).
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(max_inflight)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set_context(url.ssl_context())
        if status:
            self.client.will_set(status[0], status[2], qos=1, retain=True)
        self._failures = 0
        self.client.on_connect = self._handle_connect
        self.client.on_connect_fail = self._handle_connect_fail
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_message = self._handle_message
        self.client.on_subscribe = self._handle_subscribe
        if on_publish is not None:
            self.client.on_publish = lambda client, userdata, mid, reason_code, properties: on_publish(mid)

    # -- lifecycle

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting until :meth:`stop`."""
        self.client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, publish_offline: bool = True, flush_timeout: float = 2.0) -> None:
        """Disconnect cleanly after what was published has been acknowledged (up to a timeout).

        The retained status then says ``offline`` (a clean disconnect sends no last will).
        """
        if self.status and publish_offline and self.connected.is_set():
            self.publish(self.status[0], self.status[2], qos=1, retain=True)
        self.flush(flush_timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    # -- use

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> paho.MQTTMessageInfo:
        """Publish; a QoS 1/2 message published while disconnected waits in paho until it reconnects."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def pending(self) -> int:
        """QoS 1/2 messages not yet acknowledged by the broker."""
        # paho keeps them in _out_messages until their PUBACK (paho-mqtt 2.x); the message infos
        # cannot tell, since one published while disconnected never reports success.
        return len(self.client._out_messages)

    def flush(self, timeout: float) -> bool:
        """Wait until every QoS 1/2 message published so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending():
                return True
            time.sleep(0.01)
        return not self.pending()

    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    # -- paho callbacks (network thread)

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            hint = (
                "check the user name and password (or password_file) and the broker's ACL"
                if reason_code in AUTH_REFUSED
                else "check the broker's log"
            )
            self._log_failure("MQTT connect to %s refused: %s; %s", self.url, reason_code, hint)
            return
        self._failures = 0
        log.info("MQTT connected to %s as %s", self.url, self.client_id)
        if self.subscriptions:
            client.subscribe(self.subscriptions)
        if self.status:
            client.publish(self.status[0], self.status[1], qos=1, retain=True)
        self.connected.set()
        if self._on_connect_cb:
            self._on_connect_cb()

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError``: the exception says why (refused, no route,
        # a TLS certificate that does not verify).
        exc = sys.exc_info()[1]
        self._log_failure("MQTT connect to %s failed: %s; retrying", self.url, exc or "unknown reason")

    def _log_failure(self, msg: str, *args: Any) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % LOG_EVERY_FAILURES == 0:
            suffix = f" (attempt {self._failures})" if self._failures > 1 else ""
            log.warning(msg + suffix, *args)

    def _handle_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("MQTT subscription refused by %s: %s", self.url, failed[0])
            return
        self.subscribed.set()

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was:
            level = logging.INFO if reason_code == 0 else logging.WARNING
            log.log(level, "MQTT disconnected from %s: %s", self.url, reason_code)
        if self._on_disconnect_cb:
            self._on_disconnect_cb()

    def _handle_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if not any(topic_matches(f, msg.topic) for f, _ in self.subscriptions):
            if msg.qos and client._manual_ack:
                client.ack(msg.mid, msg.qos)
            return
        if self._on_message is not None:
            try:
                self._on_message(msg)
            except Exception:  # a bad message must never kill paho's network thread
                log.exception("handling a message on %s failed", msg.topic[:120])
