"""Which server the app talks to, and the admin token for it.

One `Session` per window. It owns the `LeafdocClient` every tab uses, the built-in server when the
app started one, and asking for, checking and remembering the admin token.

The system keyring can take seconds to answer (locked, or a slow backend), so it is never called on
the UI thread: the token is read in the background after connecting, and an admin action asked for
before it has arrived waits for it (rather than asking for a token the keyring already holds). A keyring
that has not answered in KEYRING_WAIT_MS (locked, its password prompt never seen) is not waited for: the
settings file's token is used, or the user is asked, and tokens are kept in the settings file from then on.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QWidget

from leafdoc.api_client import ApiError, LeafdocClient
from leafdoc.desktop import dialogs
from leafdoc.desktop.local_server import LocalServer
from leafdoc.desktop.prefs import TokenStore
from leafdoc.desktop.tasks import Tasks


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url and "://" not in url:
        url = "http://" + url
    return url


KEYRING_WAIT_MS = 10_000


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
        # Keyring calls run one at a time, in the order asked: a token kept and then forgotten ends
        # forgotten, and a read started at connecting finishes before anything is written.
        self.keyring = Tasks(self, threads=1)
        self.token_loading = False  # the keyring has not answered for this server yet
        self.keyring_silent = False  # it once did not answer in KEYRING_WAIT_MS: it is not used again
        self._waiting_for_token: list[tuple[QWidget, Callable[[], None]]] = []

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
        self.client = LeafdocClient(url)
        self.settings.setValue("server/url", url)
        self._load_token(self.client)
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
        self.token_loading = False
        self._waiting_for_token = []
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
        # A token just entered may still be on its way to the keyring: let that finish and write the
        # settings-file fallback if it was refused. A keyring that hangs is left behind.
        if self.keyring.pool.waitForDone(2000):
            QCoreApplication.sendPostedEvents(self.keyring)
        self.keyring.shutdown(0)

    # ---- the admin token ----------------------------------------------------------------------

    def _load_token(self, client: LeafdocClient) -> None:
        """Read the server's token from the keyring in the background, then the settings file."""
        self.token_loading = True
        self._waiting_for_token = []

        def loaded(from_keyring: str | None, timed_out: bool = False) -> None:
            if client is not self.client or not self.token_loading or self._closing:
                return  # (a keyring answering after the app stopped waiting is ignored)
            self.token_loading = False
            self.keyring_silent = self.keyring_silent or timed_out
            if not client.admin_token:
                client.admin_token = self.tokens.found(client.base_url, from_keyring)
            self.token_changed.emit()
            waiting, self._waiting_for_token = self._waiting_for_token, []
            for parent, action in waiting:
                self.with_admin(parent, action)

        if self.keyring_silent:
            loaded(None)
            return
        self.keyring.run(self.tokens.from_keyring, client.base_url, on_done=loaded, on_error=lambda _: loaded(None))
        QTimer.singleShot(KEYRING_WAIT_MS, self, lambda: loaded(None, timed_out=True))

    def _keep_token(self, client: LeafdocClient, token: str) -> None:
        """Keep an accepted token: the keyring in the background, the settings file if it refuses."""
        url = client.base_url
        self.tokens.last_place = ""
        if self.keyring_silent:  # it would wait behind the call that never came back
            self.tokens.kept(url, token, False)
            self.token_changed.emit()
            return

        def stored(in_keyring: bool) -> None:
            if client.admin_token == token:  # not refused or changed while the keyring was busy
                self.tokens.kept(url, token, in_keyring)
                self.token_changed.emit()

        self.keyring.run(self.tokens.to_keyring, url, token, on_done=stored, on_error=lambda _: stored(False))

    def _forget_token(self) -> None:
        url = self.client.base_url
        self.client.admin_token = None
        self.tokens.last_place = ""
        self.tokens.forget_in_settings(url)
        self.keyring.run(self.tokens.drop_from_keyring, url, on_error=lambda _: None)
        self.token_changed.emit()

    def token_status(self) -> str:
        if self.builtin:
            return "the built-in server's own token (nothing to enter)"
        if self.client is None:
            return "not connected"
        if self.token_loading:
            return "reading it from the system keyring…"
        if not self.client.admin_token:
            silent = " (the system keyring did not answer)" if self.keyring_silent else ""
            return f"not entered yet{silent}: you will be asked the first time it is needed"
        place = {"keyring": "the system keyring", "settings": "the app's settings file"}.get(self.tokens.last_place)
        return f"entered (kept in {place})" if place else "entered (being saved…)"

    def with_admin(self, parent: QWidget, action: Callable[[], None]) -> None:
        """Run action once the client holds an admin token: ask for one the first time and check it."""
        client = self.client
        if client is None:
            dialogs.show_error(parent, "Not connected", "The app is not connected to a leafdoc server yet.")
            return
        if client.admin_token:
            action()
            return
        if self.token_loading:  # asked again once the keyring has answered
            if (parent, action) not in self._waiting_for_token:
                self._waiting_for_token.append((parent, action))
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
            self._keep_token(client, token)
            self.token_changed.emit()
            action()

        self.tasks.run(check, on_done=accepted, on_error=lambda exc: self.admin_error(parent, exc))

    def change_token(self, parent: QWidget) -> None:
        if self.client is None or self.builtin or self.token_loading:
            return
        self._forget_token()
        self.with_admin(parent, lambda: None)

    def admin_error(self, parent: QWidget, exc: BaseException, title: str = "Admin token") -> None:
        """Show an admin action's error; a refused token is forgotten so the next try asks again."""
        if isinstance(exc, ApiError) and exc.status == 401 and self.client is not None and not self.builtin:
            self._forget_token()
            dialogs.show_error(
                parent,
                "Admin token refused",
                exc,
                hint="The token was not kept; you will be asked again next time.",
            )
            return
        dialogs.show_error(parent, title, exc)
