"""What the app remembers between runs (QSettings) and where it keeps admin tokens (the OS keyring).

The settings file is the platform's usual place unless `LEAFDOC_DESKTOP_SETTINGS` (or the
`settings_path` argument) names an INI file: tests and portable installs use that.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import quote

from PySide6.QtCore import QSettings

SETTINGS_ENV = "LEAFDOC_DESKTOP_SETTINGS"
KEYRING_SERVICE = "leafdoc-desktop"


def open_settings(path: str | Path | None = None) -> QSettings:
    path = path or os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, "leafdoc", "leafdoc-desktop")


def get_int(settings: QSettings, key: str, default: int) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default


def get_str(settings: QSettings, key: str, default: str = "") -> str:
    value = settings.value(key, default)
    return value if isinstance(value, str) else default


class TokenStore:
    """Admin tokens per server: the OS keyring when there is one, else the settings file.

    A machine without a keyring backend (a headless Linux box, a minimal desktop) is normal, not an
    error: the token then lives in the settings file, readable only by this user.

    A keyring call can take seconds (a locked keyring waits for its password, a remote backend for the
    network), so the app makes it in a worker thread: the `from_keyring`, `to_keyring` and
    `drop_from_keyring` halves touch no QSettings and may run anywhere; the settings halves
    (`from_settings`, `kept`, `forget_in_settings`) run on the UI thread that owns the QSettings.
    `get`, `set` and `forget` do both halves in one go, for scripts and tests.
    """

    def __init__(self, settings: QSettings):
        self.settings = settings
        self.last_place = ""  # "keyring" or "settings": where the last token was kept or found

    @staticmethod
    def _key(server: str) -> str:
        return "admin_tokens/" + quote(server.rstrip("/"), safe="")

    # ---- the keyring half (blocking; any thread) ----------------------------------------------

    @staticmethod
    def from_keyring(server: str) -> str | None:
        return _keyring_call("get_password", KEYRING_SERVICE, server.rstrip("/")) or None

    @staticmethod
    def to_keyring(server: str, token: str) -> bool:
        return _keyring_call("set_password", KEYRING_SERVICE, server.rstrip("/"), token, ok=True)

    @staticmethod
    def drop_from_keyring(server: str) -> None:
        _keyring_call("delete_password", KEYRING_SERVICE, server.rstrip("/"))

    # ---- the settings half (the thread that owns the QSettings) ------------------------------

    def from_settings(self, server: str) -> str | None:
        value = self.settings.value(self._key(server))
        return value if isinstance(value, str) and value else None

    def found(self, server: str, keyring_token: str | None) -> str | None:
        """The token to use, given what the keyring answered: the keyring's, else the settings file's."""
        token = keyring_token or self.from_settings(server)
        if token:
            self.last_place = "keyring" if keyring_token else "settings"
        return token

    def kept(self, server: str, token: str, in_keyring: bool) -> str:
        """Finish keeping a token once the keyring has answered; returns where: "keyring" or "settings"."""
        if in_keyring:
            self.settings.remove(self._key(server))
            self.last_place = "keyring"
        else:
            self.settings.setValue(self._key(server), token)
            self.last_place = "settings"
        self.settings.sync()
        if self.last_place == "settings":
            _owner_only(self.settings.fileName())
        return self.last_place

    def forget_in_settings(self, server: str) -> None:
        self.settings.remove(self._key(server))
        self.settings.sync()

    # ---- both halves at once (blocking) ------------------------------------------------------

    def get(self, server: str) -> str | None:
        return self.found(server, self.from_keyring(server))

    def set(self, server: str, token: str) -> str:
        """Keep the token; returns where: "keyring" or "settings"."""
        return self.kept(server, token, self.to_keyring(server, token))

    def forget(self, server: str) -> None:
        self.drop_from_keyring(server)
        self.forget_in_settings(server)


def _owner_only(path: str) -> None:
    """The settings file holds a token: readable and writable by this user only."""
    if os.name == "posix" and path and os.path.isfile(path):
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)


def _keyring_call(name: str, *args, ok: bool = False):
    """Call keyring.<name>; None (or False) when there is no keyring or it refuses, quietly."""
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return False if ok else None
    try:
        result = getattr(keyring, name)(*args)
    except (keyring.errors.KeyringError, RuntimeError, OSError):
        return False if ok else None
    return True if ok else result
