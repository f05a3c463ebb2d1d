"""A pytest plugin: a candidate project's own test run checks its runner against the reference.

Installed with the package (entry point ``pytest11``), it does nothing unless
``--conformance-candidate=SPEC`` is given, so that it is inert in any project
that merely has the package installed (ours included). With it, the session
gets ordinary test items, under the node id prefix ``conformance``:

* ``conformance::corpus::<file>``: one per scenario of the shipped corpus
  (``conformance/shipped_corpus/``, package data) and of each ``--conformance-corpus
  DIR``, replayed as ``conformance replay`` does;
* ``conformance::lifecycle``: the lifecycle state machine
  (``conformance.lifecycle_machine``), for runner and loop candidates;
* ``conformance::fuzz``: a campaign (``conformance.campaign``) with the
  seed, examples and budget given, as ``conformance run`` makes one.

A failing item names each divergence group's clause and category, its
minimal scenario and the path of its reproducer script
(``conformance.reproducer``), written under ``--conformance-out`` with
``findings.json``, the findings of the whole session, which ``conformance
expectations update --from`` turns into an expectations file. With
``--conformance-expectations FILE`` an item whose findings are all expected is
reported as xfailed (the expectation's reason is the xfail reason), a new
finding fails it, and an expectation that no item matched is stale: a
terminal summary line and a JUnit suite property, not a failure (a shorter
run may not reach it), unless ``--conformance-strict-expectations``.

Hypothesis settings come from a profile registered here: ``conformance-ci``
(derandomized, few examples, no deadline: the same result on every CI run)
or ``conformance-nightly`` (many examples and a larger budget), selected by
``--conformance-profile``. Nothing here uses the global ``random``: every
seed is explicit, so pytest-randomly reseeding it changes nothing.

The seed, candidate, profile and versions (Python, the candidate's, this
package's, Hypothesis's, pytest's) are JUnit suite properties
(``pytest --junitxml``) and part of the terminal header.
"""

from __future__ import annotations

import json
import platform
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pytest
from hypothesis import HealthCheck, settings

#: The Hypothesis profiles the plugin registers; ``--conformance-profile`` picks one.
CI_PROFILE, NIGHTLY_PROFILE = "conformance-ci", "conformance-nightly"
#: Per profile: the fuzz budget (s) and seed used when the command line gives none (None: a random seed).
PROFILE_DEFAULTS: Dict[str, Tuple[float, Optional[int]]] = {CI_PROFILE: (20.0, 0), NIGHTLY_PROFILE: (600.0, None)}
#: The node id prefix of every item the plugin adds (``-k conformance``, ``--deselect conformance::fuzz``).
PREFIX = "conformance"
#: Clause ids as the spec writes them (``R-9``, ``R14-2``), to file a lifecycle violation under one.
_CLAUSE = re.compile(r"\b([A-Z]\d*-\d+)\b")


def _register_profiles() -> None:
    """Register both profiles; registering is all: they are used by our items only, never loaded globally."""
    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    settings.register_profile(
        CI_PROFILE, max_examples=30, stateful_step_count=8, derandomize=True, database=None, **common
    )
    settings.register_profile(NIGHTLY_PROFILE, max_examples=500, stateful_step_count=12, **common)


_register_profiles()


# ---------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "asyncio runner conformance (runner-conformance)")
    group.addoption("--conformance-candidate", metavar="SPEC", help="runner to check (as conformance run's)")
    group.addoption("--conformance-candidate-kind", choices=("runner", "run", "loop"), help="force its kind")
    group.addoption("--conformance-expectations", metavar="FILE", help="TOML file of known divergences")
    group.addoption(
        "--conformance-strict-expectations", action="store_true", help="fail the session on stale expectations"
    )
    group.addoption("--conformance-budget", type=float, metavar="S", help="fuzz time budget (default: profile's)")
    group.addoption("--conformance-examples", type=int, metavar="N", help="fuzz scenarios (default: the budget's)")
    group.addoption("--conformance-seed", type=int, metavar="N", help="fuzz seed (default: the profile's)")
    group.addoption("--conformance-timeout", type=float, metavar="S", help="per-scenario limit (default adaptive)")
    group.addoption("--conformance-corpus", action="append", default=[], metavar="DIR", help="also replay this corpus")
    group.addoption(
        "--conformance-profile", choices=(CI_PROFILE, NIGHTLY_PROFILE), default=CI_PROFILE, help="Hypothesis profile"
    )
    group.addoption("--conformance-out", metavar="DIR", help="findings and reproducers (default reports/conformance)")


@dataclass
class Options:
    """The command line's choices, defaults filled in from the profile."""

    candidate: str
    kind: Optional[str]
    profile: str
    seed: int
    budget: float
    examples: Optional[int]
    timeout: Optional[float]
    corpora: List[Path]
    out: Path
    expectations: Optional[str]
    strict: bool

    @classmethod
    def of(cls, config: pytest.Config) -> Optional[Options]:
        candidate = config.getoption("conformance_candidate")
        if not candidate:
            return None
        profile = config.getoption("conformance_profile")
        budget, seed = PROFILE_DEFAULTS[profile]
        given_seed = config.getoption("conformance_seed")
        out = config.getoption("conformance_out")
        return cls(
            candidate=candidate,
            kind=config.getoption("conformance_candidate_kind"),
            profile=profile,
            seed=given_seed if given_seed is not None else seed if seed is not None else secrets.randbelow(2**32),
            budget=config.getoption("conformance_budget") or budget,
            examples=config.getoption("conformance_examples"),
            timeout=config.getoption("conformance_timeout"),
            corpora=[Path(path) for path in config.getoption("conformance_corpus")],
            out=Path(out) if out else config.rootpath / "reports" / "conformance",
            expectations=config.getoption("conformance_expectations"),
            strict=config.getoption("conformance_strict_expectations"),
        )


# ------------------------------------------------------------ the session


class ConformanceFailure(Exception):
    """An item's verdict: its text is the whole failure report (no traceback: it would say nothing more)."""


@dataclass
class State:
    """One session's worker pair (started on first use, shared by every item), findings and verdicts."""

    options: Options
    expectations: Any = None
    pair: Any = None
    candidate_info: Dict[str, Any] = field(default_factory=dict)
    reference_info: Dict[str, Any] = field(default_factory=dict)
    #: Every item's findings document, merged at the end into ``findings.json``.
    documents: List[Dict[str, Any]] = field(default_factory=list)
    #: Per gated item, the expectations it left unmatched: stale overall are those no item matched.
    unmatched: List[Set[Any]] = field(default_factory=list)
    properties: Dict[str, str] = field(default_factory=dict)

    def start(self) -> Any:
        """The pair, started now if it is not: a candidate that cannot start fails the item that needs it."""
        if self.pair is None:
            self.pair, self.candidate_info, self.reference_info = _start_pair(self.options)
            self.properties["conformance_candidate_version"] = str(self.candidate_info.get("version", ""))
            self.properties["conformance_candidate_python"] = str(self.candidate_info.get("python", ""))
        return self.pair

    def stale(self) -> List[Any]:
        """Expectations that apply here and that no item's findings matched."""
        if not self.unmatched:
            return []
        return sorted(set.intersection(*self.unmatched), key=lambda entry: entry.clause)

    def close(self) -> None:
        if self.pair is not None:
            self.pair.close()
            self.pair = None


_STATE = pytest.StashKey[State]()


def _start_pair(options: Options) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
    """As ``conformance run`` starts them: the candidate first, whose kind picks the reference."""
    from conformance.isolation import WorkerPair, WorkerProcess, split_spec

    name, python = split_spec(options.candidate)
    candidate = WorkerProcess(name, options.kind, python=python)
    candidate_info = {**candidate.start()["ready"], **_where(candidate)}
    reference = WorkerProcess("reference.run" if candidate_info["kind"] == "run" else "reference", python=python)
    try:
        reference_info = {**reference.start()["ready"], **_where(reference)}
    except BaseException:
        candidate.close()
        raise
    return WorkerPair(reference, candidate), candidate_info, reference_info


def _where(worker: Any) -> Dict[str, str]:
    return {key: worker.info.get(key, "") for key in ("python", "executable")}


def pytest_configure(config: pytest.Config) -> None:
    options = Options.of(config)
    if options is None:
        return  # inert: no candidate, no items, no properties
    state = State(options)
    if options.expectations:
        from conformance import expectations

        try:
            state.expectations = expectations.load(options.expectations)
        except expectations.ExpectationsError as exc:
            raise pytest.UsageError(str(exc)) from None
    state.properties.update(_properties(options))
    config.stash[_STATE] = state


def _properties(options: Options) -> Dict[str, str]:
    """What a CI run's JUnit XML should say about how the verdict was reached."""
    from conformance.report import packages

    installed = packages()
    return {
        "conformance_candidate": options.candidate,
        "conformance_seed": str(options.seed),
        "conformance_profile": options.profile,
        "conformance_budget_s": str(options.budget),
        "conformance_examples": "" if options.examples is None else str(options.examples),
        "python": platform.python_version(),
        "platform": platform.system(),
        **{f"version_{name}": installed.get(name, "") for name in ("runner-conformance", "hypothesis", "pytest")},
    }


def pytest_report_header(config: pytest.Config) -> Optional[List[str]]:
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    opts = state.options
    return [
        f"conformance: candidate {opts.candidate}, seed {opts.seed}, profile {opts.profile}, "
        f"budget {opts.budget} s" + (f", {opts.examples} examples" if opts.examples else "")
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: List[pytest.Item]) -> None:
    """Add our items before ``-k``, ``-m`` and ``--deselect`` filter the list (tryfirst), so they apply to ours."""
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    added = list(_items(session, state))
    items.extend(added)
    # What a collector would have reported: the terminal's "collected N items" counts them then.
    report = pytest.CollectReport(PREFIX, "passed", None, added)
    config.hook.pytest_collectreport(report=report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    state.close()
    stale = state.stale()
    state.properties["conformance_stale"] = "; ".join(_entry_text(entry) for entry in stale)
    _write_findings(state)
    _junit_properties(session.config, state.properties)
    if stale and state.options.strict and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    lines = [f"STALE expectation {_entry_text(entry)}: matched by no finding of this run" for entry in state.stale()]
    if state.documents:
        lines.append(f"findings of this run: {state.options.out / 'findings.json'}")
    if lines:
        terminalreporter.write_sep("=", "conformance")
        for line in lines:
            terminalreporter.write_line(line)


def _entry_text(entry: Any) -> str:
    return f"{entry.status} {entry.signature or entry.clause}" + (f" ({entry.reason})" if entry.reason else "")


def _junit_properties(config: pytest.Config, properties: Dict[str, str]) -> None:
    """Global ``<property>`` elements, as the ``record_testsuite_property`` fixture writes them."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - a pytest without the stash key
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in properties.items():
        xml.add_global_property(name, value)


# ------------------------------------------------------------------ items


class ConformanceItem(pytest.Item):
    """One check of the candidate; ``check`` does the work and raises ``ConformanceFailure`` with the report."""

    def __init__(self, *, check: Callable[[State], None], state: State, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.state = state

    def runtest(self) -> None:
        self.check(self.state)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> Tuple[Any, Optional[int], str]:
        return self.path, None, self.nodeid


def _items(session: pytest.Session, state: State) -> Iterator[ConformanceItem]:
    def item(name: str, check: Callable[[State], None]) -> ConformanceItem:
        return ConformanceItem.from_parent(session, name=name, nodeid=f"{PREFIX}::{name}", check=check, state=state)

    for name, scenario in _corpus_scenarios(state.options.corpora):
        yield item(f"corpus::{name}", _replay_check(name, scenario))
    yield item("lifecycle", _lifecycle_check)
    yield item("fuzz", _fuzz_check)


def _corpus_scenarios(extra: Sequence[Path]) -> Iterator[Tuple[str, Any]]:
    """The shipped corpus, then each user corpus."""
    from conformance import corpus
    from conformance.scenario import load_file

    shipped = corpus.SHIPPED
    directories = ([shipped] if shipped.is_dir() else []) + list(extra)
    for directory in directories:
        label = "" if directory == shipped else f"{directory.name}/"
        for path in corpus.files(directory):
            scenarios = load_file(str(path))
            for index, scenario in enumerate(scenarios):
                suffix = f"[{index}]" if len(scenarios) > 1 else ""
                yield f"{label}{path.stem}{suffix}", scenario


def _replay_check(name: str, scenario: Any) -> Callable[[State], None]:
    def check(state: State) -> None:
        from conformance.campaign import replay

        result = replay(state.start(), [scenario], state.options.timeout)
        if result.statuses.get("unsupported"):
            pytest.skip(f"the candidate does not support this scenario ({state.candidate_info.get('kind')})")
        document = _document(state, result, {"replayed": name})
        _verdict(state, document, f"corpus-{_slug(name)}")

    return check


def _fuzz_check(state: State) -> None:
    from conformance.campaign import Campaign
    from strategies import scenarios

    options = state.options
    pair = state.start()
    campaign = Campaign(
        pair,
        scenarios(state.candidate_info["kind"]),
        options.seed,
        examples=options.examples,
        budget_s=options.budget,
        timeout_s=options.timeout,
    )
    result = campaign.run()
    settings_json = {"examples": options.examples, "budget_s": options.budget, "mode": "hypothesis"}
    _verdict(state, _document(state, result, settings_json), "fuzz")


def _lifecycle_check(state: State) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    from conformance.lifecycle_machine import LifecycleViolation, lifecycle_machine

    pair = state.start()
    kind = state.candidate_info["kind"]
    if kind not in ("runner", "loop"):
        pytest.skip(f"the lifecycle applies to runner and loop candidates, not {kind!r}")
    machine = lifecycle_machine(pair, kind, timeout_s=state.options.timeout or 10.0)
    try:
        run_state_machine_as_test(machine, settings=settings.get_profile(state.options.profile))
    except LifecycleViolation as exc:
        _lifecycle_verdict(state, str(exc))
        return
    _gate_or_fail(state, {"divergences": []}, "")


def _lifecycle_verdict(state: State, message: str) -> None:
    """A violation is one finding, filed under the first clause it cites, category ``lifecycle``."""
    found = _CLAUSE.search(message)
    clause = found.group(1) if found else "-"
    group = {"clause": clause, "category": "lifecycle", "signature": f"{clause} lifecycle", "count": 1}
    document = {"divergences": [group], "flaky": [], "candidate_info": state.candidate_info}
    state.documents.append(document)
    _gate_or_fail(state, document, message)


# --------------------------------------------------------------- verdicts


def _document(state: State, result: Any, run_settings: Dict[str, Any]) -> Dict[str, Any]:
    from conformance import report

    document = report.build(result, state.candidate_info, state.reference_info, run_settings)
    state.documents.append(document)
    return document


def _verdict(state: State, document: Dict[str, Any], slug: str) -> None:
    """Fail with each group's clause, minimal scenario and reproducer path; gate on expectations if given."""
    if document.get("invalid"):
        raise ConformanceFailure(f"INTERNAL: the reference could not run {len(document['invalid'])} scenario(s)")
    groups = document["divergences"] + document["flaky"]
    text = _describe(state, groups, slug) if groups else ""
    _gate_or_fail(state, document, text)


def _gate_or_fail(state: State, document: Dict[str, Any], text: str) -> None:
    """Without expectations, any finding fails; with them, new ones fail and expected ones xfail."""
    if state.expectations is None:
        if document["divergences"]:
            raise ConformanceFailure(text)
        return
    from conformance import expectations

    gate = state.expectations.gate(document, expectations.python_of(document), expectations.system_of(document))
    state.unmatched.append(set(gate.stale))
    if gate.new:
        new = ", ".join(f"{finding['status']} {finding['signature']}" for finding in gate.new)
        raise ConformanceFailure(f"NEW finding(s) not in {state.options.expectations}: {new}\n\n{text}")
    if gate.expected:
        reasons = "; ".join(
            f"{finding['signature']}: {finding['expectation'].get('reason', '')}" for finding in gate.expected
        )
        pytest.xfail(f"expected by {state.options.expectations}: {reasons}")


def _describe(state: State, groups: List[Dict[str, Any]], slug: str) -> str:
    """The failure text: per group, clause, category, count, differences, minimal scenario, reproducer path."""
    directory = state.options.out / "reproducers"
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"candidate {state.options.candidate} diverges from the reference: {len(groups)} group(s)"]
    for group in groups:
        script = directory / f"{slug}-{_slug(group['signature'])}.py"
        script.write_text(group["reproducer"], encoding="utf-8")
        lines += [
            "",
            f"clause {group['clause']} ({group['category']}): {group['count']} scenario(s)",
            *(
                f"  {d['where']}: reference {d['reference']!r}, candidate {d['candidate']!r}"
                for d in group["differences"][:3]
            ),
            f"  minimal scenario: {json.dumps(group['scenario'], sort_keys=True)}",
            f"  reproducer: {script} (run: {Path(sys.executable).name} {script})",
        ]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _write_findings(state: State) -> None:
    """One findings JSON for the whole session, for ``conformance expectations update --from``."""
    if not state.documents:
        return
    complete = [document for document in state.documents if "environment" in document]
    merged = dict(complete[-1] if complete else state.documents[-1])
    for key in ("divergences", "flaky"):
        merged[key] = _merged_groups(document.get(key, []) for document in state.documents)
    merged["settings"] = {"plugin": True, "seed": state.options.seed, "budget_s": state.options.budget}
    state.options.out.mkdir(parents=True, exist_ok=True)
    (state.options.out / "findings.json").write_text(json.dumps(merged, indent=1, sort_keys=True), encoding="utf-8")


def _merged_groups(lists: Iterator[List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Groups by signature across items: counts add up, the smallest scenario of the first one is kept."""
    merged: Dict[str, Dict[str, Any]] = {}
    for groups in lists:
        for group in groups:
            if group["signature"] in merged:
                merged[group["signature"]]["count"] += group["count"]
            else:
                merged[group["signature"]] = dict(group)
    return list(merged.values())
