"""The workspace a command, a job or an experiment works in: settings -> catalog, store and registry.

Written once here, so every entry point opens the same things the same way (and closes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog
from leafdoc.data.store import BlobStore, open_store
from leafdoc.model_versions import Registry


@dataclass
class Workspace:
    settings: Settings
    catalog: Catalog
    store: BlobStore
    _registry: Registry | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        catalog = Catalog(settings.catalog_url)
        return cls(settings, catalog, open_store(settings.store_location, settings.s3_endpoint_url))

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.settings, self.catalog, self.store)
        return self._registry

    @property
    def cache_dir(self) -> Path:
        return self.settings.cache_dir

    def close(self) -> None:
        self.catalog.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
