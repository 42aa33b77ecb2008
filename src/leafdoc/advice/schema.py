"""The shape of one knowledge file (knowledge/*.toml). Pydantic checks every file on load, so a missing
field or a typo is reported with the file and the field's name, not found later by a grower."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, computed_field, model_validator

PathogenKind = Literal["fungus", "oomycete", "bacterium", "virus", "mite", "insect", "fungal complex"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """A reference the entry rests on: a book, a bulletin, a fact sheet. A URL only when it was checked."""

    title: str = Field(min_length=3)
    author: str | None = Field(None, description="Authors or editors, as the reference names them.")
    publisher: str = Field(min_length=2, description="Publisher, university extension service or society.")
    year: int | None = Field(None, ge=1900, le=2100)
    url: HttpUrl | None = None


class Pathogen(_Strict):
    name: str = Field(min_length=3, description="Scientific name(s), with synonyms a reader may meet.")
    kind: PathogenKind
    common_name: str | None = None


class Confusion(_Strict):
    """A condition this one is often taken for, and how to tell them apart on the leaf."""

    label: str = Field(description="The other entry's label (must exist in the knowledge base).")
    how_to_tell: str = Field(min_length=20)
    measured: str | None = Field(
        None, description="How often leafdoc's starter model mixed the two up, and on which photos."
    )


class Actions(_Strict):
    """What to do, in this order: cultural practices first, then biological, then chemical options named by
    active-ingredient group (FRAC / IRAC code), never by brand."""

    cultural: list[str] = Field(min_length=1)
    biological: list[str] = Field(default_factory=list)
    chemical: list[str] = Field(default_factory=list)


class Entry(_Strict):
    label: str = Field(min_length=3, description="The model's label, exactly as in labels.json.")
    crop: str
    crop_scientific: str
    condition: str = Field(description="The disease's common name, or 'Healthy'.")
    healthy: bool = False
    summary: str = Field(min_length=40, max_length=400, description="Two or three sentences shown with the answer.")
    pathogen: Pathogen | None = None
    symptoms: str = Field(min_length=40)
    confused_with: list[Confusion] = Field(default_factory=list)
    spread: str | None = Field(None, description="How it spreads and what favours it.")
    actions: Actions | None = None
    keep_doing: list[str] = Field(default_factory=list, description="For a healthy leaf: what to keep doing.")
    when_to_call: str = Field(min_length=20, description="When to call an extension service or an agronomist.")
    urgent: str | None = Field(
        None,
        min_length=20,
        description="Set for a disease that cannot wait (late blight): why, in one sentence. An answer about a milder "
        "look-alike then warns when this one is among its top candidates (advice/lookalikes.py).",
    )
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _healthy_or_sick(self) -> Entry:
        if self.healthy:
            if not self.keep_doing:
                raise ValueError("a healthy entry needs `keep_doing`")
            if self.pathogen is not None:
                raise ValueError("a healthy entry has no `pathogen`")
        else:
            missing = [k for k in ("pathogen", "spread", "actions") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"a disease entry needs {', '.join(missing)}")
        return self

    @computed_field
    @property
    def title(self) -> str:
        return f"{self.crop} — {self.condition}"
