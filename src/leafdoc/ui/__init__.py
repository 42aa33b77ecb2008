"""The web page: a Gradio app mounted in the FastAPI app at /ui, talking to the API over HTTP.

`mount.py` mounts it without importing Gradio (slow to import): the page is built on the first request
to /ui. `page.py` is the Gradio page; `text.py` the words it shows, as pure functions of API answers;
`where.py` the page's own folder and the API it talks to. With several API workers the page runs in a
process of its own (`server.py`) and each worker forwards /ui to it (`proxy.py`).
"""

from leafdoc.ui.mount import UI_PATH, mount_ui
from leafdoc.ui.where import api_base

__all__ = ["UI_PATH", "api_base", "mount_ui"]
