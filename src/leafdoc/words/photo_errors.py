"""A photo the server could not read, in the grower's language: the API's message for it names the file and the
technical reason in English (imaging/photos.py, for the people who run the server and for programs); the web page
says it by the error's code in the page's language, with what to do (the i18n review of session 73: a Spanish page
showed "corrupt.jpg: not a photo leafdoc can read (is it really a photo, or text/another format?)")."""

from __future__ import annotations

from leafdoc.core.i18n import N_, gettext

BY_CODE = {
    "bad_image": N_("{file}: this file cannot be read as a photo (it may be damaged, or not be a photo)."),
    "unsupported_image_format": N_("{file}: a picture in a format leafdoc does not read."),
    "image_too_large": N_("{file}: this photo is too large for this server."),
}
WHAT_TO_DO = N_(
    "Send a photo as the phone's camera saves it (JPEG, PNG, HEIC, WebP). If an iPhone's photos are refused: "
    "Settings > Camera > Formats > Most Compatible."
)


def photo_error_words(code: str | None, name: str, lang: str) -> tuple[str, str] | None:
    """(message, what to do) in `lang` for an API error about the photo itself; None for any other error, and in
    English, where the server's own message says more."""
    if lang == "en" or code not in BY_CODE:
        return None
    return gettext(lang, BY_CODE[code]).format(file=name), gettext(lang, WHAT_TO_DO)
