"""Which server the app talks to, and the admin token for it.

One `Session` per window. It owns the `LeafdocClient` every tab uses, the built-in server when the
app started one, and asking for, checking and remembering the admin token.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QWidget

from leafdoc.client import ApiError, LeafdocClient
from leafdoc.desktop import dialogs
from leafdoc.desktop.local_server import LocalServer
from leafdoc.desktop.prefs import TokenStore
from leafdoc.desktop.tasks import Tasks


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url and "://" not in url:
        url = "http://" + url
    return url


class Session(QObject):
    connecting = Signal(str)  # a message to show while waiting
    connected = Signal(dict)  # the server's /readyz answer
    connection_failed = Signal(object)  # the exception
    token_changed = Signal()

    def __init__(self, settings: QSettings, tasks: Tasks, window: QWidget):
        super().__init__(window)
        self.settings, self.tasks, self.window = settings, tasks, window
        self.tokens = TokenStore(settings)
        self.client: LeafdocClient | None = None
        self.local: LocalServer | None = None
        self.ready: dict = {}
        self.is_connected = False
        self._generation = 0  # answers for a server we have since left are ignored
        self._closing = False
        self._old_clients: list[LeafdocClient] = []

    # ---- connecting ---------------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        return self.client.base_url if self.client else ""

    @property
    def builtin(self) -> bool:
        return self.local is not None

    def connect_to(self, url: str) -> None:
        """Talk to the server at url (stopping the built-in one, if any)."""
        url = normalise_url(url)
        self._leave()
        self.client = LeafdocClient(url, admin_token=self.tokens.get(url))
        self.settings.setValue("server/url", url)
        self.token_changed.emit()
        self._check_ready(f"Connecting to {url}…")

    def start_builtin(self) -> None:
        """Start a `leafdoc serve` of our own and talk to it."""
        self._leave()
        self.local = LocalServer()
        try:
            self.local.start()
        except OSError as exc:
            self.local = None
            self.connection_failed.emit(ApiError(f"Could not start the built-in leafdoc server: {exc}."))
            return
        self.client = LeafdocClient(self.local.base, admin_token=self.local.token)
        self.token_changed.emit()
        generation = self._generation
        self.connecting.emit("Starting the built-in leafdoc server… (this takes a few seconds)")
        self.tasks.run(
            self.local.wait_ready,
            cancelled=lambda: self._closing or generation != self._generation,
            on_done=lambda ready: self._on_ready(generation, ready),
            on_error=lambda exc: self._on_failed(generation, exc),
        )

    def retry(self) -> None:
        if self.client is not None:
            self._check_ready(f"Connecting to {self.client.base_url}…")

    def _check_ready(self, message: str) -> None:
        generation = self._generation
        self.connecting.emit(message)
        self.tasks.run(
            self.client.ready,
            on_done=lambda ready: self._on_ready(generation, ready),
            on_error=lambda exc: self._on_failed(generation, exc),
        )

    def _on_ready(self, generation: int, ready: dict) -> None:
        if generation != self._generation:
            return
        self.ready = ready
        self.is_connected = True
        self.connected.emit(ready)

    def _on_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation or self._closing:
            return
        self.is_connected = False
        self.connection_failed.emit(exc)

    def _leave(self) -> None:
        self._generation += 1
        self.is_connected = False
        self.ready = {}
        if self.client is not None:
            # Tasks in flight may still be using it: close it at exit, not now.
            self._old_clients.append(self.client)
            self.client = None
        if self.local is not None:
            local, self.local = self.local, None
            self.tasks.run(local.stop)

    def close(self) -> None:
        """At exit: stop waiting and stop the built-in server (blocks until it is gone)."""
        self._closing = True
        self._generation += 1
        for client in [*self._old_clients, self.client]:
            if client is not None:
                client.close()
        self._old_clients, self.client = [], None
        if self.local is not None:
            self.local.stop()

    # ---- the admin token ----------------------------------------------------------------------

    def token_status(self) -> str:
        if self.builtin:
            return "the built-in server's own token (nothing to enter)"
        if self.client is None:
            return "not connected"
        if not self.client.admin_token:
            return "not entered yet: you will be asked the first time it is needed"
        place = "the system keyring" if self.tokens.last_place != "settings" else "the app's settings file"
        return f"entered (kept in {place})"

    def with_admin(self, parent: QWidget, action: Callable[[], None]) -> None:
        """Run action once the client holds an admin token: ask for one the first time and check it."""
        client = self.client
        if client is None:
            dialogs.show_error(parent, "Not connected", "The app is not connected to a leafdoc server yet.")
            return
        if client.admin_token:
            action()
            return
        token = dialogs.ask_token(parent, client.base_url)
        if not token:
            return

        def check() -> None:
            with LeafdocClient(client.base_url, admin_token=token) as probe:
                probe.check_token()

        def accepted(_=None) -> None:
            if self.client is not client:
                return
            client.admin_token = token
            self.tokens.set(client.base_url, token)
            self.token_changed.emit()
            action()

        self.tasks.run(check, on_done=accepted, on_error=lambda exc: self.admin_error(parent, exc))

    def change_token(self, parent: QWidget) -> None:
        if self.client is None or self.builtin:
            return
        self.tokens.forget(self.client.base_url)
        self.client.admin_token = None
        self.token_changed.emit()
        self.with_admin(parent, lambda: None)

    def admin_error(self, parent: QWidget, exc: BaseException, title: str = "Admin token") -> None:
        """Show an admin action's error; a refused token is forgotten so the next try asks again."""
        if isinstance(exc, ApiError) and exc.status == 401 and self.client is not None and not self.builtin:
            self.tokens.forget(self.client.base_url)
            self.client.admin_token = None
            self.token_changed.emit()
            dialogs.show_error(
                parent,
                "Admin token refused",
                exc,
                hint="The token was not kept; you will be asked again next time.",
            )
            return
        dialogs.show_error(parent, title, exc)
