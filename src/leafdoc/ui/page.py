"""The Gradio page: its tabs (one module each: diagnose_tab, dataset_tab, retrain_tab, review_tab,
monitor_tab), every action an HTTP call through LeafdocClient; and the page as Gradio's ASGI app, with what a
visitor may make Gradio open or serve (`build_app`). What the tabs share is in ui/common.py.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount

from leafdoc.core.i18n import N_, gettext
from leafdoc.core.settings import Settings
from leafdoc.ui.carry import HEAD as CARRY_HEAD
from leafdoc.ui.common import EXAMPLES, GUIDE_PHOTOS, PageFiles, share_admin_token
from leafdoc.ui.dataset_tab import dataset_tab
from leafdoc.ui.diagnose_tab import diagnose_tab
from leafdoc.ui.downscale import HEAD as DOWNSCALE_HEAD
from leafdoc.ui.history import CSS as HISTORY_CSS
from leafdoc.ui.history import HEAD as HISTORY_HEAD
from leafdoc.ui.i18n import page_i18n, t
from leafdoc.ui.language import SWITCH_CSS, page_language, switch_html
from leafdoc.ui.monitor_tab import monitor_tab
from leafdoc.ui.phone import CSS as PHONE_CSS
from leafdoc.ui.phone import HEAD as PHONE_HEAD
from leafdoc.ui.queue_guard import answer_visitors_mistakes, limit_visitor_events
from leafdoc.ui.retrain_tab import retrain_tab
from leafdoc.ui.review_tab import review_tab
from leafdoc.ui.screen_reader import CSS as SCREEN_READER_CSS
from leafdoc.ui.screen_reader import HEAD as SCREEN_READER_HEAD
from leafdoc.ui.where import use_page_folder

CSS = """
#leafdoc-header { display: flex; align-items: center; gap: 0.8em; }
#leafdoc-header h1 { margin: 0; font-size: 2em; }
#leafdoc-header p { margin: 0.1em 0 0 0; font-size: 1.05em; }
.block.verdict { border-radius: 10px; padding: 0.2em 1em 0.6em 1em !important; border: 2px solid transparent !important;
                 min-height: 8em; }
.verdict h2 { font-size: 1.6em !important; margin: 0.4em 0 0.2em 0 !important; }
.block.verdict-ok { background: #eef8ee; border-color: #4f9d4f !important; }
.block.verdict-sick { background: #fff6e5; border-color: #d9902b !important; }
.block.verdict-unsure, .block.verdict-error { background: #fdf1f1; border-color: #c94a4a !important; }
.block.verdict-empty { background: #f5f7f5; border-color: #d8ddd8 !important; color: #555; }
#top-k .confidence { display: none; }  /* Gradio's rounded figure (0.999: "100%"); ours is in the label */
/* a toast's title is its kind in English ("Warning", "Info": Gradio writes the kind, whatever the title given) over
   words in the page's language; its icon and colour say the kind */
.toast-title { display: none !important; }
/* each bar's label on its own row over the bar, in the page's font, the whole row wide: Gradio's monospace label
   beside a dashed leader wrapped "Tomato — Tomato yellow leaf / curl virus · >99%" in half the row on a phone; a
   name too long for one line splits into two even lines, its share kept with its last words */
#top-k .line { display: none !important; }
#top-k .label { display: block !important; }
#top-k .text { font-family: var(--font); line-height: 1.3; text-wrap: balance; overflow-wrap: anywhere; }
#top-k .confidence-set { margin-bottom: 0.7em; }
.block.status-error { background: #fdf1f1; border: 2px solid #c94a4a !important; border-radius: 8px;
                      padding: 0.3em 0.9em !important; }
.block.status-ok { background: #eef8ee; border: 2px solid #4f9d4f !important; border-radius: 8px;
                   padding: 0.3em 0.9em !important; }
.small-note { color: #666; font-size: 0.9em; }
.verdict blockquote { border-left: 4px solid #c94a4a !important; background: #fdf1f1; margin: 0.6em 0 !important;
                      padding: 0.4em 0.8em !important; color: #222 !important; font-style: normal !important; }
.guide-entry { border-radius: 8px; padding: 0.4em !important; border-top: 4px solid transparent;
               justify-content: flex-start !important; }
.guide-good { background: #eef8ee; border-top-color: #4f9d4f; }
.guide-bad { background: #fdf1f1; border-top-color: #c94a4a; }
.guide-photo { flex: 0 0 150px !important; height: 150px !important; }
.guide-photo img { height: 150px !important; width: 100% !important; object-fit: contain !important; }
.guide-entry p { font-size: 0.9em; margin: 0.2em 0 !important; }
/* the tab shown, and a keyboard's place: Soft's green 500 tab name was 2.3:1 on white, its lime focus ring 1.3:1 and
   a drop-down's highlighted choice 1.04:1 (the accessibility review of session 72) */
button[role="tab"][aria-selected="true"] { color: var(--primary-700) !important; }
[role="listbox"] li.item.active { background: var(--primary-100) !important; outline: 2px solid var(--primary-700);
                            outline-offset: -2px; }
/* A phone or computer in dark mode: Gradio turns its own parts dark, so the boxes leafdoc colours are dark too, with
   light words (they kept their pale backgrounds under near-white text: 1.02:1) */
.dark .block.verdict-ok, .dark .block.status-ok, .dark .guide-good { background: #14301a; }
.dark .block.verdict-sick { background: #33260c; }
/* one line a selector list: Gradio's handling of ".dark" missed a list's selectors on a second line */
.dark .block.verdict-unsure, .dark .block.verdict-error { background: #3a1717; }
.dark .block.status-error, .dark .guide-bad { background: #3a1717; }
.dark .verdict blockquote { background: #3a1717; color: #f4eaea !important; }
.dark .block.verdict-empty { background: #1f2321; border-color: #3d433f !important; color: #c9cfc9; }
.dark .small-note { color: #b9bdb9; }
.dark button[role="tab"][aria-selected="true"] { color: var(--primary-400) !important; }
.dark [role="listbox"] li.item.active { background: var(--primary-900) !important; outline-color: var(--primary-400); }
"""

HEADER = """
<div id="leafdoc-header">
  <svg width="52" height="52" viewBox="0 0 64 64" aria-hidden="true">
    <path d="M54 8C30 8 10 20 10 40c0 6 2 11 5 15 3-12 11-23 25-30-11 9-18 19-21 32 4 2 8 3 13 3 20 0 30-22 22-52z"
          fill="#3f8f3f"/>
  </svg>
  <div>
    <h1>leafdoc</h1>
    <p>{sentence}</p>
  </div>
</div>
"""
HEADER_SENTENCE = N_(
    "Photograph a sick leaf and get a diagnosis in seconds, with a heat map of the spots that led to it. "
    "The model knows the diseases it was trained on; when it is not sure, it says so."
)
FOOTER = N_(
    "leafdoc · [API documentation](../docs) · answers come from the leafdoc service; "
    "a diagnosis is advice, not a lab test."
)


def header_html(lang: str = "en") -> str:
    """The page's header, its sentence in `lang` (set again in the visitor's language as the page loads)."""
    return HEADER.format(sentence=html.escape(gettext(lang, HEADER_SENTENCE), quote=False))


def page_words(request: gr.Request):
    """The language links (the page's own marked), the header's and the footer's words in the page's language
    (ui/language.py), as the page loads."""
    lang = page_language(request)
    return switch_html(lang), header_html(lang), gettext(lang, FOOTER)


def theme() -> gr.themes.Base:
    # System fonts only: the page must not wait for a font server (farms, offline machines).
    return gr.themes.Soft(
        primary_hue="green",
        secondary_hue="lime",
        neutral_hue="stone",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    ).set(
        # Soft's green labels on pale green were 2:1 ("Leaf photo", "Crop (if you know it)", "Pick what it is, then
        # Send"), its grey hints 2.2-2.5:1 and its lime links 3:1: read in sunlight on a phone. Each is now over
        # 4.5:1 (WCAG AA), measured in Chromium (tests/e2e/test_ui_phone.py).
        block_label_text_color="*primary_800",
        block_title_text_color="*primary_800",
        body_text_color_subdued="*neutral_600",
        link_text_color="*secondary_800",
        link_text_color_visited="*secondary_800",
        link_text_color_hover="*secondary_700",
        button_primary_background_fill="*primary_700",  # white on Soft's green 500 was 2.3:1 ("Diagnose")
        button_primary_background_fill_hover="*primary_800",
        button_primary_border_color="*primary_700",
        checkbox_label_background_fill_selected="*primary_700",  # Monitor's "per hour" chosen: white on 500, 2.3:1
        input_border_color_focus="*primary_700",
        # dark mode: white on Soft's green 600 was 3.3:1 (the labels, "Diagnose"); the focus ring lime 300
        block_label_background_fill_dark="*primary_800",
        block_title_background_fill_dark="*primary_800",
        button_primary_background_fill_dark="*primary_700",
        button_primary_background_fill_hover_dark="*primary_800",
        button_primary_border_color_dark="*primary_700",
        checkbox_label_background_fill_selected_dark="*primary_700",
        input_border_color_focus_dark="*primary_400",
        link_text_color_dark="*secondary_300",
        link_text_color_visited_dark="*secondary_300",
        link_text_color_hover_dark="*secondary_200",
    )


# ---- the page ---------------------------------------------------------------------------------------


def build_page(settings: Settings, folder: Path) -> gr.Blocks:
    """The page; `folder` is its own folder for Gradio's uploads and cache (see `use_page_folder`)."""
    with gr.Blocks(
        title="leafdoc · plant disease diagnosis", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as blocks:
        files = PageFiles(
            folder=folder.resolve(),
            examples=frozenset(p.resolve() for p in EXAMPLES),
            uploads=lambda: blocks.upload_file_set,
        )
        switch = gr.HTML(switch_html())  # the page in another language: ?lang= (ui/i18n.py)
        header = gr.HTML(header_html())
        with gr.Tabs():
            with gr.Tab(t("tab_diagnose"), id="diagnose"):
                diagnose_tab(settings, files, blocks)
            with gr.Tab(t("tab_dataset"), id="dataset") as tab:
                dataset_tab(settings, blocks, tab)
            with gr.Tab(t("tab_retrain"), id="retrain") as tab:
                tokens = [retrain_tab(settings, blocks, files, tab)]
            with gr.Tab(t("tab_review"), id="review") as tab:
                tokens.append(review_tab(settings, tab))
            with gr.Tab(t("tab_monitor"), id="monitor") as tab:
                tokens.append(monitor_tab(settings, tab))
        share_admin_token(tokens)  # the admin types the token once, in any of the admin tabs
        footer = gr.Markdown(FOOTER, elem_classes=["small-note"])
        # The admin tabs' names are in the page's language (on a phone they sit beside the Diagnose tab's); what is
        # in them (Dataset, Retrain, Review, Monitor) stays English: it is for the people who run the server.
        blocks.load(page_words, None, [switch, header, footer])
    return blocks


def blocked_paths(settings: Settings, folder: Path, served: tuple[Path, ...] = ()) -> list[str]:
    """What Gradio must never copy or serve even if a later change allowed it: the data home's own files, the served
    model, and the system temp dir, where other programs keep their files (other Gradio pages' uploads among them) and
    which Gradio takes a handler's files from by default.

    Gradio's blocked paths win over its allowed ones, so when the page's folder or a file it serves (`served`: the
    example photos, when leafdoc is installed under the temp dir, e.g. a clone in /tmp) is inside the temp dir, the
    temp dir's entries are blocked one by one instead, all but those on the way to what the page needs
    (`_around`); an entry made after the page was built is then outside the block, and Gradio still serves it
    to no one: it is neither uploaded through the page nor allowed."""
    paths = [settings.queue_path, settings.models_dir, settings.mlruns_dir, settings.model_dir]
    if settings.catalog_url.startswith("sqlite:///"):
        paths.append(Path(settings.catalog_url.removeprefix("sqlite:///")))
    if "://" not in settings.store_location:
        paths.append(Path(settings.store_location))
    temp = Path(tempfile.gettempdir()).resolve()
    needed = [p.resolve() for p in (folder, *served)]
    if any(p.is_relative_to(temp) for p in needed):
        paths.extend(_around(temp, needed))
    else:
        paths.append(temp)
    return [str(Path(p).resolve()) for p in paths if p is not None]


def _around(root: Path, needed: list[Path]) -> list[Path]:
    """The entries of the folder `root` that lead to none of the `needed` paths (resolved), and inside each that leads
    to one, the same again, down to the needed paths themselves. Gradio compares blocked paths lower-cased, so an
    entry on the way to a needed path only in case, or through a link, is not blocked either (that would block it)."""
    blocked = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        try:
            real = entry.resolve()
        except (OSError, RuntimeError):  # a link that loops
            blocked.append(entry)
            continue
        inside = [p for p in needed if p.is_relative_to(real)]
        if inside and real == entry:
            if real not in inside and real.is_dir():
                blocked.extend(_around(real, inside))
        elif not any(_leads_to(real, p) for p in needed):
            blocked.append(entry)
    return blocked


def _leads_to(entry: Path, path: Path) -> bool:
    """Whether blocking `entry` blocks `path` in Gradio's lower-cased comparison."""
    entry_text, path_text = str(entry).lower(), str(path).lower()
    return path_text == entry_text or path_text.startswith(entry_text.rstrip(os.sep) + os.sep)


def build_app(settings: Settings, path: str = "/ui") -> tuple[FastAPI, gr.Blocks]:
    """The page as Gradio's own ASGI app, configured for `path`, and its Blocks (see ui/mount.py).

    What a visitor can make Gradio open or serve (a visitor sends paths, not files):
    - Gradio's uploads and cache go to the page's own folder, which nothing else writes to;
    - events take only files from that folder (Gradio's "uploaded by a user" check, which Gradio skips
      for a page that was mounted rather than launched: `has_launched` below), and handlers open only
      what the upload route wrote there or an example photo (`PageFiles`);
    - the `file=` route serves only that folder, the example photos and the photo guide's (exact files, not
      their folder);
    - errors Gradio raises reach the visitor as a bare "Error" (`show_error=False`): their text names
      server paths. The page's own handlers catch everything and say what went wrong themselves.
    """
    folder = use_page_folder(settings)
    # Served as they are and never copied: a copy would be deleted with the cache after an hour.
    gr.set_static_paths([*EXAMPLES, *GUIDE_PHOTOS])
    blocks = build_page(settings, folder)
    holder = FastAPI()  # gr.mount_gradio_app configures the page for `path`; ui/mount.py serves it there
    gr.mount_gradio_app(
        holder,
        blocks,
        path=path,
        # The page's public path for every URL Gradio writes: without it the answers of its /run/ routes (not
        # queued: an example photo's loading) named files under the server's root, /gradio_api/file=..., a 404
        # (Gradio strips the whole request path, mount included, from their URL to find the root).
        root_path=path,
        theme=theme(),
        css=CSS + PHONE_CSS + HISTORY_CSS + SWITCH_CSS + SCREEN_READER_CSS,
        # large photos are made smaller in the browser before upload (ui/downscale.py); the visitor's history;
        # the answer said to a screen reader (ui/screen_reader.py)
        head=DOWNSCALE_HEAD + HISTORY_HEAD + PHONE_HEAD + SCREEN_READER_HEAD + CARRY_HEAD,
        footer_links=[],
        run_history=False,
        show_error=False,
        max_file_size=settings.max_image_bytes,  # the API's limit for a photo (ui/guard.py enforces it)
        ssr_mode=False,
        mcp_server=False,
        i18n=page_i18n(),  # the page's words in the browser's language (ui/i18n.py)
        allowed_paths=[str(p) for p in (*EXAMPLES, *GUIDE_PHOTOS)],
        blocked_paths=blocked_paths(settings, folder, (*EXAMPLES, *GUIDE_PHOTOS)),
    )
    # Gradio checks that an event's files were uploaded by a visitor only once `launch()` has run; a mounted
    # page is never launched, so without this any path a visitor names is copied into the cache and served.
    blocks.has_launched = True
    hide_gradio_version(blocks)
    quiet_queue(blocks)
    limit_visitor_events(blocks, settings.ui_events_per_visitor, settings.ui_events_total)  # ui/queue_guard.py
    [app] = [r.app for r in holder.routes if isinstance(r, Mount) and r.path == path]
    answer_visitors_mistakes(app)
    return app, blocks


# What the page's answers give as Gradio's version: its major version only. Gradio wrote its exact release into
# /ui/config, the page's HTML (the same config) and /ui/gradio_api/openapi.json, for any visitor: a scanner's way to
# pick the known bugs of that release (docs/security.md, L3). Gradio's own page does not read it (its scripts carry
# their version); the Python gradio_client does, to choose its protocol (it compares with 3.36.1 and 4.29.0, and
# without a version takes the page for Gradio 2 and sends its config to a Hugging Face service), so a version stays.
PUBLIC_GRADIO_VERSION = gr.__version__.split(".")[0]


def hide_gradio_version(blocks) -> None:
    """The page's config (/ui/config, the HTML), any config Gradio makes again, and its OpenAPI description give
    PUBLIC_GRADIO_VERSION (for every Gradio app of this process: the page is its only one). `VERSION` is Gradio's
    own name in both modules (gradio/blocks.py `get_config_file`, gradio/routes.py `openapi_schema`): if a Gradio
    renames it, tests/e2e/test_security_round3.py fails."""
    import gradio.blocks
    import gradio.routes

    for module in (gradio.blocks, gradio.routes):
        if hasattr(module, "VERSION"):
            module.VERSION = PUBLIC_GRADIO_VERSION
    blocks.config["version"] = PUBLIC_GRADIO_VERSION


# How often Gradio's queue looks for new events while it has none, and for progress to send. Gradio's own values
# off Windows (1 ms, 10 ms) woke the page's process over 1,000 times a second with no visitor: 4.0-4.5% of a core
# for ever (2026-11-27), about 2% of a two-core machine the API workers could not use. Gradio's values on Windows,
# taken here, put an event off by up to 50 ms (25 on average, against the 100s of ms a diagnosis takes to show) and
# leave the idle page's process 0.5% of a core (1.0% at 20 ms). tests/e2e/test_serve_workers.py measures it.
QUEUE_IDLE_POLL_SECONDS = 0.05
QUEUE_PROGRESS_POLL_SECONDS = 0.1


def quiet_queue(blocks) -> None:
    """Gradio's queue polls less often while it is idle (QUEUE_IDLE_POLL_SECONDS). Its attributes are Gradio's
    own (gradio/queueing.py, `Queue.__init__`): a Gradio without them keeps its defaults, and the page test's
    measure of the idle process fails."""
    queue = getattr(blocks, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = QUEUE_IDLE_POLL_SECONDS
        queue.progress_update_sleep_when_free = QUEUE_PROGRESS_POLL_SECONDS
