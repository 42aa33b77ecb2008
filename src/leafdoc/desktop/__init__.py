"""The desktop app (`leafdoc desktop`): a PySide6 window for people who are not programmers.

It talks to a leafdoc server over HTTP only, through `leafdoc.api_client` (the same client as the web
page), so it shows the same answers. With no server named it starts one for itself on loopback and
stops it on exit. Nothing here imports TensorFlow.
"""
