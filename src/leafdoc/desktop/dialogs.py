"""Every error the app shows is one readable dialog: what went wrong, then what to do about it, in the app's own
actions (`in_app_words`: the server's hints name `leafdoc` commands and API routes). Also the app's other small
dialogs: confirmations, the admin token, where to save a file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget

from leafdoc.api_client import ApiError
from leafdoc.core.i18n import N_, gettext
from leafdoc.desktop.prefs import get_str
from leafdoc.words.job_phases import LEARN_FIELD_LABEL

NOTHING_TO_ROLL_BACK = (
    "No earlier version served on this server, so there is nothing to roll back to. To serve another version, pick "
    "it in the table and press “Serve the selected version”."
)
# What the server (and leafdoc's API client) say in `leafdoc` commands, API routes and fields, said in the app's own
# actions: (error code, words in its message, what to do here). The Diagnose tab's (marked N_) are said in its language.
APP_HINTS = [
    (
        "no_model",
        "no model is serving",
        N_(
            "Serve a model version first: in the Retrain tab, pick one under “3. Model versions” and press “Serve the "
            "selected version” (this needs the server's admin token), or ask whoever runs the server."
        ),
    ),
    (
        None,
        "Cannot reach the leafdoc server",
        N_(
            "Check that the server is running and that its address is right (Server menu ▸ Connect to a server…), or "
            "use the app's own server (Server menu ▸ Use the built-in server)."
        ),
    ),
    ("unknown_crop", "", N_("Pick one of the crops in the Crop box, or “I don't know”.")),
    ("unknown_language", "", N_("Pick another language in the Language box.")),
    ("conflict", "roll back", NOTHING_TO_ROLL_BACK),
    ("conflict", "already serving", "Nothing to do: press Refresh to see which version serves."),
    ("not_found", "not in the registry", "Press Refresh to list the versions this server holds."),
    ("not_found", "no readable image", "Upload photos to it first (Retrain tab, “1. Add labelled photos”)."),
    ("bad_config", "no dataset named", "Upload photos first (Retrain tab, “1. Add labelled photos”), then retrain."),
    (
        "invalid_request",
        "refuses field photos",
        f"If the new photos are field photos the model should learn to answer, tick “{LEARN_FIELD_LABEL}” and start "
        "again. To keep the check, whoever runs the server sets LEAFDOC_FIELD_DIRS to folders of field photos.",
    ),
]


def in_app_words(exc: BaseException, lang: str = "en") -> BaseException:
    """The server's error with its hint in the app's actions (in `lang` where it has them) when the hint names a
    `leafdoc` command, an API route or field ("Promote a version instead: `leafdoc models promote VERSION`, or POST
    /v1/models/{version}/promote"); such a hint the app has no words for is left out, as written for another face."""
    if not isinstance(exc, ApiError) or not exc.hint or not ("`" in exc.hint or "/v1/" in exc.hint):
        return exc
    for code, words, hint in APP_HINTS:
        if exc.code == code and words in exc.message:
            return ApiError(exc.message, gettext(lang, hint), exc.status, exc.code)
    return ApiError(exc.message, None, exc.status, exc.code)


def describe(error: BaseException | str, lang: str = "en") -> tuple[str, str]:
    """(what went wrong, what to do) for any exception, in plain words; what to do in the app's actions, in `lang` where
    the app has them (`in_app_words`)."""
    if isinstance(error, str):
        return error, ""
    if isinstance(error, ApiError):
        error = in_app_words(error, lang)
        hint = error.hint or ""
        if error.status == 401 and not hint:
            hint = "Check the admin token (LEAFDOC_ADMIN_TOKEN on the server)."
        return _sentence(error.message), hint
    if isinstance(error, FileNotFoundError):
        return f"{error.filename}: no such file or folder.", "It may have been moved or deleted; pick it again."
    if isinstance(error, PermissionError):
        return f"{error.filename}: permission denied.", "Pick a file or folder you are allowed to read or write."
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}.", "Check the disk and the file name, then try again."
    return f"Something unexpected went wrong: {error.__class__.__name__}: {error}", (
        "Try again; if it keeps happening, report it with what you were doing."
    )


def _sentence(text: str) -> str:
    """Server messages start in lower case ("the admin token is wrong."); a file name stays as it is."""
    text = text.strip()
    first = text.split(" ", 1)[0]
    return text[:1].upper() + text[1:] if first.isalpha() and first.islower() else text


def show_error(
    parent: QWidget | None, title: str, error: BaseException | str, hint: str = "", lang: str = "en"
) -> QMessageBox:
    """A warning box that does not block: the rest of the app keeps running behind it. `lang`: the language of what
    it says to do about a server's error (describe)."""
    text, what_to_do = describe(error, lang)
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("leafdocError")
    box.setTextFormat(Qt.TextFormat.PlainText)
    info = "\n".join(x for x in (hint, what_to_do) if x)
    if info:
        box.setInformativeText(info)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.show()
    return box


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_token(parent: QWidget | None, server: str, again: bool = False) -> str | None:
    prompt = (
        ("That token was refused. " if again else "")
        + f"Admin token of the server {server}\n(uploads, retraining and promotion need it; it is kept in your "
        "system's password store, or where there is none, in this app's settings file, readable by you only)"
    )
    text, ok = QInputDialog.getText(parent, "Admin token", prompt, QLineEdit.EchoMode.Password)
    text = text.strip()
    return text if ok and text else None


def ask_save_path(parent: QWidget, settings: QSettings, title: str, file_name: str, kind: str) -> Path | None:
    """Where to save a file (None if the user cancelled): offered in the folder saved to last, which is
    remembered; the suffix of `file_name` is added when the user's name lacks it. `kind`: "PNG images"."""
    suffix = Path(file_name).suffix
    folder = get_str(settings, "folders/save", str(Path.home()))
    name, _ = QFileDialog.getSaveFileName(parent, title, str(Path(folder) / file_name), f"{kind} (*{suffix})")
    if not name:
        return None
    path = Path(name)
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    settings.setValue("folders/save", str(path.parent))
    return path
