"""The web page: a Gradio app mounted in the FastAPI app at /ui, talking to the API over HTTP.

`mount.py` mounts it without importing Gradio (slow to import): the page is built on the first request
to /ui. `page.py` is the Gradio page; `text.py` the words it shows, as pure functions of API answers.
"""

from leafdoc.ui.mount import UI_PATH, api_base, mount_ui

__all__ = ["UI_PATH", "api_base", "mount_ui"]
