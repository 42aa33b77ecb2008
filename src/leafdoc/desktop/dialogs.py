"""Every error the app shows is one readable dialog: what went wrong, then what to do about it. Also the
app's other small dialogs: confirmations, the admin token, where to save a file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget

from leafdoc.api_client import ApiError
from leafdoc.desktop.prefs import get_str


def describe(error: BaseException | str) -> tuple[str, str]:
    """(what went wrong, what to do) for any exception, in plain words."""
    if isinstance(error, str):
        return error, ""
    if isinstance(error, ApiError):
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


def show_error(parent: QWidget | None, title: str, error: BaseException | str, hint: str = "") -> QMessageBox:
    """A warning box that does not block: the rest of the app keeps running behind it."""
    text, what_to_do = describe(error)
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
        "system's password store)"
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
