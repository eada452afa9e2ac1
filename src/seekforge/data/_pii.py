"""Personal data in a table: Microsoft Presidio's recognizers (e-mail addresses, phone numbers, card
numbers checked by their Luhn digit, IBANs, US social security numbers, IP addresses; people's names when a
spaCy English model is installed) run over a seeded sample of each text and category column's cells; and
the ``privacy`` cleaning step that drops, hashes or masks what they find.

A column whose sampled cells mostly hold personal data (``column_share``) is a personal-data column (an
e-mail column); elsewhere the findings are spans inside free text (a review that quotes a phone number).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any, get_args

import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.data.clean_config import PiiEntity

#: What is looked for, by Presidio's entity names.
ENTITIES: tuple[str, ...] = get_args(PiiEntity)
#: spaCy English models Presidio finds names with, best first (none ships with seekforge: names are
#: checked where one is installed).
SPACY_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_trf")
#: A finding counts from this recognizer score (Presidio scores a bare phone-number pattern 0.4).
MIN_SCORE = 0.4
#: Cells of each column looked at by the profile.
SAMPLE_CELLS = 200
#: Kinds of column whose cells are read as text.
TEXT_KINDS = ("text", "category")


@functools.lru_cache(maxsize=1)
def analyzer() -> tuple[Any, str | None]:
    """Presidio's analyzer, and the spaCy model it finds names with (None: names are not checked).

    Raises:
        MissingDependencyError: Presidio is not installed (with the command that installs it).
    """
    # the e-mail recognizer's domain check reads the public suffix list: from the copy tldextract ships,
    # never from the network
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    presidio = require("presidio_analyzer", purpose="Finding personal data")
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    spacy = require("spacy", purpose="Finding personal data")
    found = spacy_model()

    class _Engine(SpacyNlpEngine):  # type: ignore[misc]
        """spaCy with the installed English model, or a blank English pipeline (patterns only)."""

        def load(self) -> None:
            self.nlp = {"en": spacy.load(found) if found else spacy.blank("en")}

    engine = _Engine(models=[{"lang_code": "en", "model_name": found or "blank"}])
    engine.load()
    from presidio_analyzer import predefined_recognizers as known

    # the recognizers of ENTITIES only: loading every predefined one takes seconds and finds what is not asked
    recognizers = [known.EmailRecognizer(), known.PhoneRecognizer(), known.CreditCardRecognizer(),
                   known.IbanRecognizer(), known.UsSsnRecognizer(), known.IpRecognizer()]  # fmt: skip
    if found:
        recognizers.append(known.SpacyRecognizer(supported_entities=["PERSON"]))
    registry = presidio.RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    return presidio.AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"]), found


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def spacy_model() -> str | None:
    """The installed spaCy English model names are found with (None: names are not checked)."""
    return next((name for name in SPACY_MODELS if _installed(name)), None)


def entities_checked(wanted: Iterable[str] = ENTITIES) -> list[str]:
    """The entities this install looks for: names only with a spaCy model."""
    model = spacy_model()
    return [e for e in wanted if e != "PERSON" or model is not None]


#: What every pattern entity needs somewhere in a text: an @ (e-mail), a run of 7+ digits with separators
#: (phone, card, SSN, IPv4), hex groups with colons (IPv6), a country code and check digits (IBAN).
#: Texts without any are not handed to Presidio, whose import alone takes seconds.
CANDIDATE = re.compile(r"@|\d[\d\s().+/-]{5,}\d|[0-9a-fA-F]{1,4}:[0-9a-fA-F:]{2,}|[A-Z]{2}\d{2} ?[A-Z0-9]{4}")


def find(text: str, entities: Sequence[str]) -> list[Any]:
    """Presidio's findings in ``text`` scoring at least :data:`MIN_SCORE`, overlaps resolved (the
    higher score wins)."""
    if "PERSON" not in entities and not CANDIDATE.search(text):
        return []
    engine, _ = analyzer()
    results = engine.analyze(text=text, language="en", entities=list(entities), score_threshold=MIN_SCORE)
    kept: list[Any] = []
    for result in sorted(results, key=lambda r: (-r.score, r.start)):
        if all(result.end <= k.start or result.start >= k.end for k in kept):
            kept.append(result)
    return sorted(kept, key=lambda r: r.start)


def masked(value: str) -> str:
    """An example safe to show: letters and digits past the first two and before the last two become *."""
    if len(value) <= 4:
        return "*" * len(value)
    middle = re.sub(r"[A-Za-z0-9]", "*", value[2:-2])
    return value[:2] + middle + value[-2:]


def scan_column(
    column: pd.Series, entities: Sequence[str], *, sample: int = SAMPLE_CELLS, seed: int = 0
) -> dict[str, Any]:
    """Findings in a seeded sample of ``column``'s non-empty cells: cells holding each entity, with up to
    three masked examples."""
    present = column.dropna().astype(str)
    present = present[present.str.strip() != ""]
    if len(present) > sample:
        present = present.sample(sample, random_state=seed)
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    with_any = 0
    for text in present:
        findings = find(text, entities)
        with_any += bool(findings)
        for entity in {f.entity_type for f in findings}:
            counts[entity] = counts.get(entity, 0) + 1
        for f in findings:
            shown = examples.setdefault(f.entity_type, [])
            example = masked(text[f.start : f.end])
            if len(shown) < 3 and example not in shown:
                shown.append(example)
    checked = len(present)
    return {
        "cells_checked": checked,
        "cells_with_pii": with_any,
        "share": with_any / checked if checked else 0.0,
        "entities": {
            e: {"cells": counts[e], "examples": examples[e]} for e in sorted(counts, key=lambda e: -counts[e])
        },
    }


def pii_profile(
    frame: pd.DataFrame, kinds: dict[str, str], *, seed: int = 0, column_share: float = 0.5
) -> dict[str, Any]:
    """Personal data in ``frame``'s text and category columns; ``checked: False`` (with the command that
    installs Presidio) where it is not installed."""
    from seekforge.core.deps import ensure
    from seekforge.core.errors import MissingDependencyError

    try:
        ensure("presidio_analyzer", purpose="Finding personal data")
        ensure("spacy", purpose="Finding personal data")
    except MissingDependencyError as exc:
        return {"checked": False, "why": exc.message, "hint": exc.hint}
    model = spacy_model()
    entities = entities_checked()
    columns = {}
    for name, kind in kinds.items():
        if kind in TEXT_KINDS:
            found = scan_column(frame[name], entities, seed=seed)
            if found["cells_with_pii"]:
                columns[name] = {**found, "pii_column": found["share"] >= column_share}
    return {
        "checked": True,
        "entities": entities,
        "names": f"spaCy {model}"
        if model
        else "not checked: no spaCy English model is installed (python -m spacy download en_core_web_sm)",
        "sample_cells": SAMPLE_CELLS,
        "columns": columns,
    }


def protect(
    frame: pd.DataFrame, kinds: dict[str, str], *, action: str, entities: Sequence[str] | None, column_share: float,
    keep: Sequence[str] = (),
) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """The ``privacy`` cleaning step: personal-data columns dropped (``drop``) or each value replaced by
    its hash (``hash``) or masked (``mask``); spans of personal data inside other text cells replaced by
    their entity (``<EMAIL_ADDRESS>``), their hash or a mask. Every distinct value of the text and category
    columns is checked; ``keep`` columns (the label) are left as they are. Returns the new frame and what
    was done.

    Raises:
        ConfigError: Nothing to look for (only PERSON asked, and no spaCy model installed).
    """
    wanted = entities_checked(entities or ENTITIES)
    if not wanted:
        raise ConfigError(
            "clean.privacy.entities: names (PERSON) are found with a spaCy English model, and none is installed",
            hint="python -m spacy download en_core_web_sm, or list other entities",
        )
    columns, touched = [], {}
    data = frame
    for name, kind in kinds.items():
        if kind not in TEXT_KINDS or name in keep or name not in data.columns:
            continue
        cells = data[name].map(lambda v: v if isinstance(v, str) else None)
        distinct = [v for v in cells.dropna().unique() if v.strip()]
        findings = {v: found for v in distinct if (found := find(v, wanted))}
        if not findings:
            continue
        present = cells.dropna()
        share = float(present.isin(findings.keys()).mean()) if len(present) else 0.0
        if share >= column_share:
            columns.append(name)
            if action == "drop":
                data = data.drop(columns=[name])
            else:
                data = data.assign(**{name: data[name].map(lambda v: v if pd.isna(v) else _cover(str(v), action))})
            continue
        rewritten = {v: _replace_spans(v, found, action) for v, found in findings.items()}
        touched[name] = int(cells.isin(rewritten.keys()).sum())
        data = data.assign(
            **{name: data[name].map(lambda v, new=rewritten: new.get(v, v) if isinstance(v, str) else v)}
        )
    return data, {"step": "privacy", "action": action, "columns": columns, "cells_rewritten": touched,
                  "entities": wanted}  # fmt: skip


def _cover(value: str, action: str) -> str:
    if action == "hash":
        return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    return masked(value)


def _replace_spans(text: str, findings: list[Any], action: str) -> str:
    """``text`` with each finding replaced through Presidio's anonymizer: ``<ENTITY>`` (drop), its
    sha256 (hash) or a mask."""
    if not findings:
        return text
    anonymizer = require("presidio_anonymizer", purpose="Removing personal data")
    from presidio_anonymizer.entities import OperatorConfig

    operator = {
        "drop": OperatorConfig("replace"),
        # Presidio's own hash operator salts each value at random: the same address would hash differently
        "hash": OperatorConfig("custom", {"lambda": lambda value: _cover(value, "hash")}),
        "mask": OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 100, "from_end": False}),
    }[action]
    engine = _anonymizer(anonymizer)
    return str(engine.anonymize(text=text, analyzer_results=findings, operators={"DEFAULT": operator}).text)


@functools.lru_cache(maxsize=1)
def _anonymizer(module: Any) -> Any:
    return module.AnonymizerEngine()
